//! Signed credentials: `<user>.<expires unix seconds>.<hex HMAC-SHA256>`. The MAC
//! covers what the credential is for (its purpose's tag), the user, the expiry and the
//! user's credential stamp (derived from the password hash), so nothing outlives its
//! expiry and a new password ends every credential issued before it. (The page's
//! sessions are not signed credentials: they live on the server, `auth::session`.)

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::Username;

/// The key file in the data directory.
pub const KEY_FILE: &str = "session.key";

/// What a credential may be used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `Authorization: Bearer` on the API.
    ApiToken,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::ApiToken => b"api-token",
        }
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the credential is malformed")]
    Malformed,
    #[error("the credential is not signed by this server")]
    BadSignature,
    #[error("the credential has expired")]
    Expired,
}

/// What a credential says before its signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub username: Username,
    pub expires_at: i64,
    tag: Vec<u8>,
}

impl Claim {
    /// Splits a credential into its parts; the user name may itself hold dots.
    pub fn parse(value: &str) -> Result<Claim, TokenError> {
        let mut parts = value.rsplitn(3, '.');
        let (Some(tag), Some(expires), Some(user)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        // One spelling only, the one `issue` writes: no leading zeros or sign in the
        // expiry, lower-case hex, the user name as stored.
        let expires_at = expires
            .parse::<i64>()
            .ok()
            .filter(|e| *e > 0 && e.to_string() == expires)
            .ok_or(TokenError::Malformed)?;
        let tag = Some(tag)
            .filter(|t| t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|t| hex::decode(t).ok())
            .filter(|t| t.len() == 32)
            .ok_or(TokenError::Malformed)?;
        let username = Username::parse(user)
            .ok()
            .filter(|u| u.as_str() == user)
            .ok_or(TokenError::Malformed)?;
        Ok(Claim {
            username,
            expires_at,
            tag,
        })
    }
}

/// Signs and checks credentials. Cheap to clone.
#[derive(Clone)]
pub struct Signer(Arc<Vec<u8>>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Signer {
        assert!(key.len() >= 32, "a signing key has at least 32 bytes");
        Signer(Arc::new(key))
    }

    /// The key in `data_dir/session.key`, created on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Signer> {
        let key = crate::secrets::load_or_create(&data_dir.join(KEY_FILE), || {
            hex::encode(crate::secrets::random_bytes(32)).into_bytes()
        })?;
        if key.len() < 32 {
            return Err(std::io::Error::other(format!(
                "{} holds fewer than 32 bytes; remove it to have a new one made",
                data_dir.join(KEY_FILE).display()
            )));
        }
        Ok(Signer::new(key))
    }

    fn mac(&self, purpose: Purpose, user: &str, expires_at: i64, stamp: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        for part in [
            purpose.tag(),
            user.as_bytes(),
            expires_at.to_string().as_bytes(),
        ] {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.update(stamp.as_bytes());
        mac
    }

    /// A credential for `user` until `expires_at` (Unix seconds). `stamp` is the user's
    /// credential stamp (see `PasswordHash::stamp`).
    pub fn issue(&self, purpose: Purpose, user: &Username, stamp: &str, expires_at: i64) -> String {
        let tag = self
            .mac(purpose, user.as_str(), expires_at, stamp)
            .finalize();
        format!("{user}.{expires_at}.{}", hex::encode(tag.into_bytes()))
    }

    /// Checks a claim's signature (in constant time) and expiry at `now`.
    pub fn verify(
        &self,
        purpose: Purpose,
        claim: &Claim,
        stamp: &str,
        now: i64,
    ) -> Result<(), TokenError> {
        self.mac(purpose, claim.username.as_str(), claim.expires_at, stamp)
            .verify_slice(&claim.tag)
            .map_err(|_| TokenError::BadSignature)?;
        if claim.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    fn check(
        s: &Signer,
        purpose: Purpose,
        value: &str,
        stamp: &str,
        now: i64,
    ) -> Result<String, TokenError> {
        let claim = Claim::parse(value)?;
        s.verify(purpose, &claim, stamp, now)?;
        Ok(claim.username.to_string())
    }

    #[test]
    fn credentials_round_trip_and_every_forgery_fails() {
        let s = signer();
        let alice = Username::parse("a.lice").unwrap();
        let token = s.issue(Purpose::ApiToken, &alice, "stamp", 1_000);
        assert!(token.starts_with("a.lice.1000."), "{token}");
        assert_eq!(
            check(&s, Purpose::ApiToken, &token, "stamp", 999).unwrap(),
            "a.lice"
        );

        use TokenError::*;
        let cases: Vec<(&str, String, &str, i64, TokenError)> = vec![
            ("expired", token.clone(), "stamp", 1_000, Expired),
            (
                "another user",
                token.replacen("a.lice", "admin", 1),
                "stamp",
                0,
                BadSignature,
            ),
            (
                "longer life",
                token.replacen(".1000.", ".9999.", 1),
                "stamp",
                0,
                BadSignature,
            ),
            (
                "new password",
                token.clone(),
                "other stamp",
                0,
                BadSignature,
            ),
            (
                "truncated tag",
                token[..token.len() - 2].to_owned(),
                "stamp",
                0,
                Malformed,
            ),
            ("no tag", "a.lice.1000".into(), "stamp", 0, Malformed),
            ("bare name", "alice".into(), "stamp", 0, Malformed),
            ("empty", String::new(), "stamp", 0, Malformed),
            (
                "negative expiry",
                token.replacen(".1000.", ".-1.", 1),
                "stamp",
                0,
                Malformed,
            ),
            (
                "signed expiry",
                token.replacen(".1000.", ".+1000.", 1),
                "stamp",
                0,
                Malformed,
            ),
            (
                "leading zero",
                token.replacen(".1000.", ".01000.", 1),
                "stamp",
                0,
                Malformed,
            ),
            (
                "upper-case tag",
                {
                    let (head, tag) = token.rsplit_once('.').unwrap();
                    format!("{head}.{}", tag.to_uppercase())
                },
                "stamp",
                0,
                Malformed,
            ),
            (
                "name in capitals",
                token.replacen("a.lice", "A.lice", 1),
                "stamp",
                0,
                Malformed,
            ),
            (
                "bad name",
                token.replacen("a.lice", "a lice", 1),
                "stamp",
                0,
                Malformed,
            ),
        ];
        for (what, value, stamp, now, want) in cases {
            assert_eq!(
                check(&s, Purpose::ApiToken, &value, stamp, now),
                Err(want),
                "{what}"
            );
        }
        // Another server's key signs nothing here.
        let other = Signer::new(b"another key, also 32 bytes long!".to_vec());
        assert_eq!(
            check(&other, Purpose::ApiToken, &token, "stamp", 0),
            Err(BadSignature)
        );
    }

    #[test]
    fn the_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = Signer::load_or_create(dir.path()).unwrap();
        let second = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, second.0);
        assert_eq!(first.0.len(), 64);
    }
}
