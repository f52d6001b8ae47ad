//! Who is calling: API tokens (signed credentials), the page's sessions (kept on the
//! server), the bare user name of demo mode, and password sign-in. Password checks are
//! slow on purpose (argon2id), so only a few run at once, and a user name that keeps
//! failing is slowed down (never refused: the right password always gets in).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{App, AppError, AppResult};
use crate::auth::{Claim, Purpose, TokenError, password, session, unix_now};
use crate::db::{Session, User};
use crate::domain::Username;

/// How long a token from a password sign-in lasts.
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// How long the page's session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// How often a session's last use is written down at most.
const TOUCH_EVERY_SECS: i64 = 60;

/// What a caller was recognised by: kept with the request, so that a live stream can
/// ask again whether it still holds (and end when it does not).
#[derive(Clone, Debug)]
pub enum Credential {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// The page's session cookie (its id).
    Session(String),
    /// Demo mode's bare `X-User-ID`.
    Demo(String),
}

/// The user a credential names, if it still holds: a token's signature, expiry and
/// the user's credential stamp; a session that exists, has not expired and was not
/// made in demo mode when demo mode is off; demo mode on for a bare name.
pub async fn authenticate(app: &App, credential: &Credential) -> AppResult<User> {
    match credential {
        Credential::Token(value) => token_user(app, value).await,
        Credential::Session(id) => session_user(app, id).await,
        Credential::Demo(name) => by_name(app, name).await,
    }
}

async fn token_user(app: &App, value: &str) -> AppResult<User> {
    let refused = |e: TokenError| AppError::unauthorized(format!("the token is refused: {e}"));
    let claim = Claim::parse(value).map_err(refused)?;
    let user = app
        .caches
        .user(&app.db, &claim.username)
        .await?
        .ok_or_else(|| AppError::unauthorized("the token names no known user"))?;
    app.signer
        .verify(
            Purpose::ApiToken,
            &claim,
            &user.credential_stamp(),
            unix_now(),
        )
        .map_err(refused)?;
    Ok(user)
}

async fn session_user(app: &App, id: &str) -> AppResult<User> {
    let refused = |why: &str| AppError::unauthorized(format!("the session {why}; sign in again"));
    if !session::well_formed(id) {
        return Err(refused("is malformed"));
    }
    let hash = session::hash(id);
    let found = app.db.session(&hash).await?;
    let now = unix_now();
    let s = found.ok_or_else(|| refused("has ended"))?;
    if s.expires_at <= now {
        return Err(refused("has expired"));
    }
    if s.demo && !app.demo {
        return Err(refused("was made in demo mode, which is off"));
    }
    let name = Username::parse(&s.username).map_err(AppError::internal)?;
    let user = app.caches.user(&app.db, &name).await?;
    let user = user.ok_or_else(|| refused("names no known user"))?;
    if now - s.last_used_at >= TOUCH_EVERY_SECS
        && let Err(e) = app.db.touch_session(&hash, now).await
    {
        // Only a record for the operator: the session itself holds.
        tracing::warn!(error = %e, "could not note a session's use");
    }
    Ok(user)
}

/// How often a live stream asks whether its credential still holds.
pub const RECHECK_EVERY: Duration = Duration::from_secs(2);

/// Returns once `credential` no longer names `username`: a token expired or outdated
/// by a new password, a session signed out, revoked or expired, demo mode off, the user
/// gone. Asked every `RECHECK_EVERY`; a look that fails (the database busy) is no end.
pub async fn ended(app: App, credential: Credential, username: String) {
    let mut every = tokio::time::interval(RECHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        match authenticate(&app, &credential).await {
            Ok(user) if user.username == username => {}
            Ok(_) | Err(AppError::Unauthorized(..)) => return,
            Err(e) => tracing::debug!(error = %e, "could not check a stream's credential"),
        }
    }
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

/// An API token for `user` that lasts `lifetime` seconds; and its expiry.
pub fn issue(app: &App, user: &User, lifetime: i64) -> AppResult<(String, i64)> {
    let name = Username::parse(&user.username).map_err(AppError::internal)?;
    let expires_at = unix_now().saturating_add(lifetime);
    let value = app.signer.issue(
        Purpose::ApiToken,
        &name,
        &user.credential_stamp(),
        expires_at,
    );
    Ok((value, expires_at))
}

/// Starts a page session for `user`: the id for the cookie. A session started while
/// demo mode is on is marked so, and ends when demo mode does.
pub async fn start_session(app: &App, user: &User) -> AppResult<String> {
    let id = session::new_id();
    let now = unix_now();
    let stored = Session {
        id_hash: session::hash(&id),
        username: user.username.clone(),
        demo: app.demo,
        created_at: now,
        last_used_at: now,
        expires_at: now.saturating_add(SESSION_LIFETIME_SECS),
    };
    app.db.create_session(&stored).await?;
    Ok(id)
}

/// Ends the page session with this id (signing out); nothing to end is no error.
pub async fn end_session(app: &App, id: &str) -> AppResult<()> {
    if session::well_formed(id) {
        app.db.end_session(&session::hash(id)).await?;
    }
    Ok(())
}

/// The user whose password this is. Unknown users, users without a password and
/// wrong passwords all get the same 401, in about the same time. A user name with many
/// recent failures is checked only after a pause (longer the more failures), so
/// guessing slows down; nothing is refused for it, so the right password still gets in.
pub async fn check_password(app: &App, username: &str, password: &str) -> AppResult<User> {
    let wrong = || AppError::unauthorized("wrong user name or password");
    let name = Username::parse(username.trim()).map_err(|_| wrong())?;
    let pause = app.sign_ins.pause(name.as_str());
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
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

/// Failed sign-ins a user name may have within `FAILURE_WINDOW` before its checks
/// pause...
const FREE_FAILURES: u32 = 5;
/// ...first for this long, doubling with each further failure...
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// ...up to this.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long failures are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names whose failures are remembered at most.
const MAX_TRACKED: usize = 10_000;

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
    /// How long a check for `name` waits first: nothing until `FREE_FAILURES` recent
    /// failures, then `FIRST_PAUSE` doubling per failure, at most `MAX_PAUSE`.
    fn pause(&self, name: &str) -> Duration {
        let failures = self.failures.lock().expect("sign-in lock");
        match failures.get(name) {
            Some((n, since)) if *n >= FREE_FAILURES && since.elapsed() < FAILURE_WINDOW => {
                let doublings = (n - FREE_FAILURES).min(16);
                FIRST_PAUSE.saturating_mul(1 << doublings).min(MAX_PAUSE)
            }
            _ => Duration::ZERO,
        }
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
    fn a_name_that_keeps_failing_is_slowed_not_refused() {
        let s = SignIns::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(s.pause("alice"), Duration::ZERO);
            s.record("alice", false);
        }
        assert_eq!(s.pause("alice"), FIRST_PAUSE);
        s.record("alice", false);
        assert_eq!(s.pause("alice"), FIRST_PAUSE * 2);
        for _ in 0..100 {
            s.record("alice", false);
        }
        assert_eq!(s.pause("alice"), MAX_PAUSE, "the pause is bounded");
        assert_eq!(s.pause("bob"), Duration::ZERO, "others are unaffected");
        s.record("alice", true);
        assert_eq!(
            s.pause("alice"),
            Duration::ZERO,
            "a success forgets the failures"
        );
    }
}
