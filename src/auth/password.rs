//! Passwords, stored only as argon2id hashes (PHC strings with their own salt).

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use hmac::digest::Digest;
use sha2::Sha256;

/// A new password: at least this many characters...
pub const MIN_CHARS: usize = 8;
/// ...and at most this many bytes (hashing cost grows with the length).
pub const MAX_BYTES: usize = 1024;

/// A stored password hash. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    /// Wraps a PHC string read from the database.
    pub fn from_stored(phc: String) -> PasswordHash {
        PasswordHash(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hashes a new password after checking it is acceptable.
    pub fn new(password: &str) -> Result<PasswordHash, String> {
        let chars = password.chars().count();
        if chars < MIN_CHARS || password.len() > MAX_BYTES {
            return Err(format!(
                "a password must be {MIN_CHARS} characters to {MAX_BYTES} bytes long"
            ));
        }
        if password.chars().any(char::is_control) {
            return Err("a password must not contain control characters".into());
        }
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| format!("cannot hash the password: {e}"))?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// What credentials signed for this user carry: changes with every new password,
    /// so a new password ends every token and session issued before it.
    pub fn stamp(hash: Option<&PasswordHash>) -> String {
        match hash {
            Some(h) => hex::encode(&Sha256::digest(h.0.as_bytes())[..16]),
            None => String::new(),
        }
    }
}

/// Checks `password` against `stored`. A user without a password (or an unknown user)
/// is checked against a stand-in hash, so the answer takes as long either way and
/// tells nobody which user names exist. Slow on purpose: call it off the async runtime.
pub fn verify(password: &str, stored: Option<&PasswordHash>) -> bool {
    static STAND_IN: LazyLock<PasswordHash> =
        LazyLock::new(|| PasswordHash::new("a stand-in nobody knows").expect("hashable"));
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (&*STAND_IN, false),
    };
    if password.len() > MAX_BYTES {
        return false;
    }
    let Ok(parsed) = argon2::PasswordHash::new(hash.as_str()) else {
        tracing::error!("a stored password hash is not a PHC string");
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_verify_and_change_the_stamp() {
        let hash = PasswordHash::new("correct horse").unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"), "{}", hash.as_str());
        assert!(!format!("{hash:?}").contains("argon2"));
        assert!(verify("correct horse", Some(&hash)));
        assert!(!verify("Correct horse", Some(&hash)));
        assert!(!verify("", Some(&hash)));
        assert!(!verify("a stand-in nobody knows", None));
        let again = PasswordHash::new("correct horse").unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
        assert_ne!(
            PasswordHash::stamp(Some(&hash)),
            PasswordHash::stamp(Some(&again))
        );
        assert_eq!(PasswordHash::stamp(None), "");
        for bad in ["short", "tab\there ok?", &"x".repeat(1025)] {
            assert!(PasswordHash::new(bad).is_err(), "{bad:?}");
        }
    }
}
