//! The UI's demo login: a session cookie naming the user, signed with HMAC-SHA256 so
//! a browser cannot forge another user's name. The key lives in the data directory,
//! so sessions survive a restart.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Username;

pub const COOKIE: &str = "shopflow_session";
/// A session lasts a week; picking a user again renews it.
const MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// The key that signs session cookies.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        SessionKey(bytes)
    }

    /// Reads `session.key` from the data directory, creating it (random, mode 0600)
    /// on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<SessionKey> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join("session.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => return Ok(SessionKey(bytes)),
            Ok(_) | Err(_) => {}
        }
        std::fs::create_dir_all(data_dir)?;
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(key.as_bytes())?;
        Ok(SessionKey(key.into_bytes()))
    }

    fn mac(&self, username: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(b"session:");
        mac.update(username.as_bytes());
        mac
    }

    /// The cookie value for `username`: `<username>.<hex signature>`.
    pub fn sign(&self, username: &Username) -> String {
        let tag = self.mac(username.as_str()).finalize().into_bytes();
        format!("{username}.{}", super::hex::encode(&tag))
    }

    /// The user a cookie value names, if its signature is ours.
    pub fn verify(&self, value: &str) -> Option<Username> {
        let (name, hex) = value.rsplit_once('.')?;
        let tag = super::hex::decode(hex)?;
        self.mac(name).verify_slice(&tag).ok()?;
        Username::parse(name).ok()
    }

    /// A `Set-Cookie` value that logs `username` in.
    pub fn set_cookie(&self, username: &Username) -> String {
        format!(
            "{COOKIE}={}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Lax",
            self.sign(username)
        )
    }
}

/// The value of our cookie in a `Cookie` request header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_forgeries_fail() {
        let key = SessionKey::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let alice = Username::parse("alice").unwrap();
        let value = key.sign(&alice);
        assert!(value.starts_with("alice."));
        assert_eq!(key.verify(&value).unwrap().as_str(), "alice");
        // Another name with alice's signature, a truncated tag, another key: refused.
        let forged = value.replacen("alice", "admin", 1);
        assert!(key.verify(&forged).is_none());
        assert!(key.verify(&value[..value.len() - 2]).is_none());
        assert!(key.verify("alice").is_none());
        let other = SessionKey::new(b"another key, also 32 bytes long!".to_vec());
        assert!(other.verify(&value).is_none());
        let header = format!("theme=dark; {COOKIE}={value}; x=1");
        assert_eq!(cookie_value(&header), Some(value.as_str()));
        assert!(key.set_cookie(&alice).contains("HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn the_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = SessionKey::load_or_create(dir.path()).unwrap();
        let second = SessionKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, second.0);
        assert_eq!(first.0.len(), 64);
    }
}
