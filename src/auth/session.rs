//! Session ids: the random value a session cookie carries, and the hash the server
//! keeps it under (so the stored table alone signs nobody in).

use sha2::{Digest, Sha256};

/// Random bytes in a session id (hex in the cookie).
const ID_BYTES: usize = 32;

/// A new session id: 32 random bytes, as lower-case hex.
pub fn new_id() -> String {
    hex::encode(crate::secrets::random_bytes(ID_BYTES))
}

/// Whether `value` is spelled as a session id is (64 lower-case hex digits): one
/// spelling only, so nothing else is even looked up.
pub fn well_formed(value: &str) -> bool {
    value.len() == 2 * ID_BYTES
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the server stores a session id under: its SHA-256, as hex.
pub fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_well_formed_and_stored_hashed() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(well_formed(&a), "{a}");
        for bad in [
            &a.to_uppercase(),
            &a[1..],
            &format!("{a}0"),
            "",
            &"g".repeat(64),
        ] {
            assert!(!well_formed(bad), "{bad:?} should be malformed");
        }
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a, "the id itself is not what is stored");
        assert_eq!(hash(&a), hash(&a));
    }
}
