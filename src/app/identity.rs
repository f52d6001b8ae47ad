//! Who is calling: signed credentials (API tokens, the page's session cookie), the
//! bare user name of demo mode, and password sign-in. Password checks are slow on
//! purpose (argon2id), so only a few run at once, and a user name that keeps failing
//! is refused for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{App, AppError, AppResult};
use crate::auth::{Claim, Purpose, TokenError, password, unix_now};
use crate::db::User;
use crate::domain::Username;

/// How long a token from a password sign-in lasts.
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// How long the page's session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// Failed sign-ins a user name may have within `FAILURE_WINDOW`...
const MAX_FAILURES: u32 = 10;
/// ...before it is refused until the window has passed.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names whose failures are remembered at most.
const MAX_TRACKED: usize = 10_000;

/// The user a signed credential names, if its signature, expiry and the user's
/// credential stamp hold.
pub async fn authenticate(app: &App, purpose: Purpose, value: &str) -> AppResult<User> {
    let what = match purpose {
        Purpose::ApiToken => "token",
        Purpose::SessionCookie => "session",
    };
    let refused = |e: TokenError| AppError::unauthorized(format!("the {what} is refused: {e}"));
    let claim = Claim::parse(value).map_err(refused)?;
    let user = app
        .caches
        .user(&app.db, &claim.username)
        .await?
        .ok_or_else(|| AppError::unauthorized(format!("the {what} names no known user")))?;
    app.signer
        .verify(purpose, &claim, &user.credential_stamp(), unix_now())
        .map_err(refused)?;
    Ok(user)
}

/// Demo mode only: the user a bare name names.
pub async fn by_name(app: &App, name: &str) -> AppResult<User> {
    let unknown = || AppError::unauthorized("that does not name a known user");
    if !app.demo {
        return Err(AppError::unauthorized(
            "X-User-ID is accepted only in demo mode; send `Authorization: Bearer <token>` (POST /api/session)",
        ));
    }
    let name = Username::parse(name.trim()).map_err(|_| unknown())?;
    app.caches.user(&app.db, &name).await?.ok_or_else(unknown)
}

/// A signed credential for `user` that lasts `lifetime` seconds; and its expiry.
pub fn issue(app: &App, purpose: Purpose, user: &User, lifetime: i64) -> AppResult<(String, i64)> {
    let name = Username::parse(&user.username).map_err(AppError::internal)?;
    let expires_at = unix_now().saturating_add(lifetime);
    let value = app
        .signer
        .issue(purpose, &name, &user.credential_stamp(), expires_at);
    Ok((value, expires_at))
}

/// The user whose password this is. Unknown users, users without a password and
/// wrong passwords all get the same 401, in about the same time.
pub async fn check_password(app: &App, username: &str, password: &str) -> AppResult<User> {
    let wrong = || AppError::unauthorized("wrong user name or password");
    let name = Username::parse(username.trim()).map_err(|_| wrong())?;
    if app.sign_ins.throttled(name.as_str()) {
        return Err(AppError::TooManyRequests(
            "too_many_attempts".into(),
            "too many failed sign-ins for this user; try again in 15 minutes".into(),
        ));
    }
    let user = app.db.user(&name).await?;
    let _permit = app
        .sign_ins
        .running
        .acquire()
        .await
        .map_err(AppError::internal)?;
    let (password, stored) = (
        password.to_owned(),
        user.as_ref().and_then(|u| u.password_hash.clone()),
    );
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, stored.as_ref()))
        .await
        .map_err(AppError::internal)?;
    app.sign_ins.record(name.as_str(), ok);
    match user {
        Some(user) if ok => Ok(user),
        _ => Err(wrong()),
    }
}

/// Password checks in flight and recent failures per user name. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SignIns {
    running: Arc<Semaphore>,
    failures: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
}

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            // As many as there are cores: sign-ins cannot starve everything else.
            running: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            failures: Arc::default(),
        }
    }
}

impl SignIns {
    fn throttled(&self, name: &str) -> bool {
        let failures = self.failures.lock().expect("sign-in lock");
        failures
            .get(name)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    fn record(&self, name: &str, ok: bool) {
        let mut failures = self.failures.lock().expect("sign-in lock");
        if ok {
            failures.remove(name);
            return;
        }
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        if failures.len() < MAX_TRACKED || failures.contains_key(name) {
            let entry = failures
                .entry(name.to_owned())
                .or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FAILURE_WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_keeps_failing_is_refused_until_it_succeeds() {
        let s = SignIns::default();
        for _ in 0..MAX_FAILURES - 1 {
            s.record("alice", false);
        }
        assert!(!s.throttled("alice"));
        s.record("alice", false);
        assert!(s.throttled("alice"));
        assert!(!s.throttled("bob"), "others are unaffected");
        s.record("alice", true);
        assert!(!s.throttled("alice"));
    }
}
