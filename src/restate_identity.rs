//! Request identity between restate-server and the service endpoint: Restate signs
//! every request it sends to the endpoint with an Ed25519 key, and the endpoint
//! refuses requests that are not signed with it. So a process that reaches the
//! endpoint's port directly cannot run a handler, whichever handlers it names.
//!
//! With a spawned restate-server the key pair is made on first start: the private
//! key as a PKCS#8 PEM file in the data dir (mode 0600) for restate-server, the
//! public key in Restate's `publickeyv1_<base58>` form for the endpoint.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The private key file in the data dir.
pub const KEY_FILE: &str = "restate-identity.pem";
/// restate-server's setting that names the private key file.
pub const SERVER_ENV: &str = "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE";

/// The DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A key pair: where restate-server finds the private key, and the public key the
/// endpoint checks signatures with.
#[derive(Debug, Clone)]
pub struct Identity {
    pub private_key_file: PathBuf,
    pub public_key: String,
}

/// The key pair in `data_dir`, made on first use.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Identity> {
    let path = data_dir.join(KEY_FILE);
    let pem = crate::secrets::load_or_create(&path, || {
        pem(&crate::secrets::random_bytes(32)).into_bytes()
    })?;
    let seed = seed_of(&String::from_utf8_lossy(&pem))
        .ok_or_else(|| anyhow::anyhow!("{} is not an Ed25519 private key", path.display()))?;
    Ok(Identity {
        // restate-server runs in its own directory: give it an absolute path.
        private_key_file: std::path::absolute(&path)?,
        public_key: public_key(&seed),
    })
}

fn pem(seed: &[u8]) -> String {
    let der = [&PKCS8_ED25519_PREFIX[..], seed].concat();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    )
}

fn seed_of(pem: &str) -> Option<[u8; 32]> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body.trim()).ok()?;
    let seed = der.strip_prefix(&PKCS8_ED25519_PREFIX[..])?;
    seed.try_into().ok()
}

/// Restate's form of the public key that belongs to `seed`.
fn public_key(seed: &[u8; 32]) -> String {
    let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
    format!(
        "publickeyv1_{}",
        bs58::encode(public.as_bytes()).into_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key, second.public_key);
        assert!(first.public_key.starts_with("publickeyv1_"));
        assert!(first.private_key_file.is_absolute());
        let pem = std::fs::read_to_string(&first.private_key_file).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        // The SDK takes the public key as it is.
        restate_sdk::endpoint::Endpoint::builder()
            .identity_key(&first.public_key)
            .unwrap();
    }

    #[test]
    fn public_keys_follow_rfc_8032() {
        // RFC 8032, section 7.1, test 1.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let expected =
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        assert_eq!(
            public_key(&seed),
            format!("publickeyv1_{}", bs58::encode(expected).into_string())
        );
        assert_eq!(seed_of(&pem(&seed)), Some(seed));
        assert_eq!(
            seed_of("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            None
        );
    }
}
