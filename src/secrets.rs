//! Secrets kept in the data directory: created on first use (random, mode 0600),
//! then read back on every start, so tokens, sessions and signatures survive restarts.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Keeps the data directory its owner's alone: whatever this process creates from now
/// on is private (umask 077: the database and its journal files, keys, restate-server's
/// data), the directory is made 0700 and a database file already there 0600. It holds
/// password hashes, sessions, customers' addresses and the signing keys.
pub fn keep_private(data_dir: &Path) -> std::io::Result<()> {
    // SAFETY: umask only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(data_dir)?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    for name in ["shopflow.db", "shopflow.db-wal", "shopflow.db-shm"] {
        let private = std::fs::Permissions::from_mode(0o600);
        match std::fs::set_permissions(data_dir.join(name), private) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            done => done?,
        }
    }
    Ok(())
}

/// `len` bytes from the operating system's random source.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    bytes
}

/// Reads the secret at `path`, or creates it with `create()` when there is none.
/// Creation is atomic (written aside, then linked into place), so two processes
/// starting together agree on one secret and nobody reads a half-written file.
/// A secret readable by others is refused: it may have been copied.
pub fn load_or_create(path: &Path, create: impl FnOnce() -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    match read_private(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let aside = path.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_file(&aside);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)?;
    file.write_all(&create())?;
    file.sync_all()?;
    drop(file);
    // hard_link fails when another process put its secret in place first: use that one.
    let linked = std::fs::hard_link(&aside, path);
    std::fs::remove_file(&aside)?;
    match linked {
        Ok(()) => read_private(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_private(path),
        Err(e) => Err(e),
    }
}

fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is readable by other users (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let bytes = std::fs::read(path)?;
    if bytes.is_empty() {
        return Err(std::io::Error::other(format!(
            "{} is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.key");
        let first = load_or_create(&path, || b"one".to_vec()).unwrap();
        let second = load_or_create(&path, || b"two".to_vec()).unwrap();
        assert_eq!(
            (first.as_slice(), second.as_slice()),
            (&b"one"[..], &b"one"[..])
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path, || b"three".to_vec()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_ne!(random_bytes(32), random_bytes(32));
    }
}
