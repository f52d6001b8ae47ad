//! Builds and versions: what a build calls itself.

use std::path::Path;
use std::process::Command;

/// `shopflow --version` of the executable at `exe`.
fn version(exe: &Path) -> String {
    for _ in 0..100 {
        match Command::new(exe).arg("--version").output() {
            Ok(out) => {
                assert!(out.status.success(), "{exe:?} --version: {out:?}");
                return String::from_utf8(out.stdout).unwrap();
            }
            // Written just now: another thread's child may briefly hold it open.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{exe:?}: {e}"),
        }
    }
    panic!("{exe:?} stayed busy");
}

/// `--version` names the version and the build, the executable's hash: the same
/// executable is the same build, another one (here the same bytes and one more line)
/// another build.
#[test]
fn the_version_names_the_build() {
    let exe = Path::new(env!("CARGO_BIN_EXE_shopflow"));
    let first = version(exe);
    let prefix = format!("shopflow {} (build ", env!("CARGO_PKG_VERSION"));
    let id = first
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{first:?} is not `{prefix}<id>)`"));
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    assert!(id.len() == 12 && id.bytes().all(hex), "build id {id:?}");
    assert_eq!(version(exe), first, "the same executable, the same build");

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("shopflow");
    let mut bytes = std::fs::read(exe).unwrap();
    bytes.extend_from_slice(b"\nanother build\n");
    std::fs::write(&copy, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = version(&copy);
    assert!(other.starts_with(&prefix), "{other:?}");
    assert_ne!(other, first, "another executable is another build");
}
