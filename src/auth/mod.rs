//! Who is calling: bearer tokens that name a user and an expiry, signed with a key kept
//! in the data directory; the random ids of server-side sessions; and argon2id
//! password hashes.
//! Nothing here knows HTTP; the web role's extractor and the command line use it.

pub mod password;
pub mod session;
pub mod token;

pub use password::PasswordHash;
pub use token::{Claim, Purpose, Signer, TokenError};

/// Seconds since the Unix epoch, the clock tokens and signatures are checked against.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
