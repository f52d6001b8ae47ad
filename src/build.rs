//! This build's identity: the package version and a build id, the first 12 hex digits
//! of the SHA-256 of the running executable (or `SHOPFLOW_BUILD_ID` when it was set at
//! compile time), so two builds of one version are told apart.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The build id; the executable is read once, on first use.
pub fn id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match option_env!("SHOPFLOW_BUILD_ID") {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => executable_hash().unwrap_or_else(|e| format!("unknown ({e})")),
    })
}

/// Whether `segment` can be a build id (and so a directory name under `builds/` and
/// one segment of a URI).
pub fn is_id(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The URI the deployment of `build` is registered at: its own path under the
/// endpoint's URL.
pub fn uri(services_url: &str, build: &str) -> String {
    format!("{}/{build}", services_url.trim_end_matches('/'))
}

/// Whether the id was given at compile time (`SHOPFLOW_BUILD_ID`) rather than taken
/// from the executable's hash.
pub fn named() -> bool {
    option_env!("SHOPFLOW_BUILD_ID").is_some_and(|id| !id.is_empty())
}

/// `<version> (build <id>)`.
pub fn describe() -> String {
    format!("{VERSION} (build {})", id())
}

fn executable_hash() -> std::io::Result<String> {
    // The image this process runs, even when its file was replaced since the start.
    let image = std::path::Path::new("/proc/self/exe");
    match hash_of(image) {
        Ok(hash) => Ok(hash),
        Err(_) => hash_of(&std::env::current_exe()?),
    }
}

/// The build id of the executable at `path`: the first 12 hex digits of its SHA-256.
pub fn hash_of(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(&hasher.finalize()[..6]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_ids_are_plain_names() {
        assert!(is_id("0123456789ab"));
        assert!(is_id("test-b.1"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(!is_id(bad), "{bad:?} taken as a build id");
        }
    }
}
