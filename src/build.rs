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

/// `<version> (build <id>)`.
pub fn describe() -> String {
    format!("{VERSION} (build {})", id())
}

fn executable_hash() -> std::io::Result<String> {
    let mut file = std::fs::File::open(std::env::current_exe()?)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(&hasher.finalize()[..6]))
}
