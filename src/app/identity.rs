//! Who is calling: API tokens (signed credentials), the page's sessions (kept on the
//! server), the bare user name of demo mode, and password sign-in. Password checks are
//! slow on purpose (argon2id), so only a few run at once, and a user name that keeps
//! failing is slowed down (never refused: the right password always gets in).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, Semaphore};

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
    // Deleted when the password or role changed; and refused if it started meanwhile
    // (a sign-in that had checked the old password).
    if s.stamp != user.credential_stamp() || s.role != user.role {
        return Err(refused("was made before a new password or role"));
    }
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

/// Returns once `credential` no longer names `user` as they were (same name, same
/// role): a token expired or outdated by a new password, a session signed out, revoked
/// or expired, demo mode off, the user gone or given another role. Asked every
/// `RECHECK_EVERY`; a look that fails (the database busy) is no end.
pub async fn ended(app: App, credential: Credential, user: User) {
    let mut every = tokio::time::interval(RECHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        match authenticate(&app, &credential).await {
            Ok(now) if now.username == user.username && now.role == user.role => {}
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
    let name = user.username.clone();
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
        username: user.username.to_string(),
        stamp: user.credential_stamp(),
        role: user.role.clone(),
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

/// The user whose password this is, asked from `peer`. Unknown users, users without a
/// password and wrong passwords all get the same 401, in about the same time. A user
/// name with many recent failures is slowed down: its checks from one address take
/// turns, each after a pause (longer the more failures), so guessing slows down however
/// many requests an address sends at once. Nothing else is refused, so the right
/// password gets in, from another address at once and from the same one in its turn.
pub async fn check_password(
    app: &App,
    username: &str,
    password: &str,
    peer: IpAddr,
) -> AppResult<User> {
    let wrong = || AppError::unauthorized("wrong user name or password");
    let name = Username::parse(username.trim()).map_err(|_| wrong())?;
    let _turn = app.sign_ins.wait_turn(name.as_str(), peer).await?;
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
/// Checks of a slowed-down user name from one address that may wait for their turn;
/// more are refused (429) without a check.
const MAX_WAITING: usize = 3;
/// How long failures are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names whose failures are remembered at most.
const MAX_TRACKED: usize = 10_000;

/// Password checks in flight, recent failures per user name, and the turns of a
/// slowed-down name's checks per address. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SignIns {
    running: Arc<Semaphore>,
    failures: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
    turns: Arc<Mutex<TurnsByNameAndPeer>>,
}

type TurnsByNameAndPeer = HashMap<(String, IpAddr), Arc<Turns>>;

/// One user name's checks from one address, one at a time.
#[derive(Debug, Default)]
struct Turns {
    turn: Arc<tokio::sync::Mutex<()>>,
    waiting: AtomicUsize,
}

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            // As many as there are cores: sign-ins cannot starve everything else.
            running: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            failures: Arc::default(),
            turns: Arc::default(),
        }
    }
}

impl SignIns {
    /// Waits until a check of `name` from `peer` may run: at once while the name has
    /// few recent failures; otherwise in turn with the others from `peer`, after the
    /// pause. 429 when `MAX_WAITING` already wait.
    async fn wait_turn(&self, name: &str, peer: IpAddr) -> AppResult<Option<OwnedMutexGuard<()>>> {
        if self.pause(name).is_zero() {
            return Ok(None);
        }
        let turns = self.turns_of(name, peer);
        if turns.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            turns.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::TooManyRequests(
                "sign_in_busy".into(),
                "sign-ins for this user from this address are waiting already; try again in a few seconds".into(),
            ));
        }
        let turn = turns.turn.clone().lock_owned().await;
        turns.waiting.fetch_sub(1, Ordering::AcqRel);
        tokio::time::sleep(self.pause(name)).await;
        Ok(Some(turn))
    }

    fn turns_of(&self, name: &str, peer: IpAddr) -> Arc<Turns> {
        let mut turns = self.turns.lock().expect("sign-in lock");
        if turns.len() >= MAX_TRACKED {
            // Only those nobody holds or waits for.
            turns.retain(|_, t| Arc::strong_count(t) > 1);
        }
        turns.entry((name.to_owned(), peer)).or_default().clone()
    }

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

    #[tokio::test(start_paused = true)]
    async fn a_slowed_name_takes_turns_per_address() {
        let s = SignIns::default();
        let here: IpAddr = "10.0.0.1".parse().unwrap();
        let there: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(
            s.wait_turn("alice", here).await.unwrap().is_none(),
            "no failures: at once"
        );
        for _ in 0..FREE_FAILURES + 10 {
            s.record("alice", false);
        }
        let started = tokio::time::Instant::now();
        let first = s.wait_turn("alice", here).await.unwrap();
        assert!(first.is_some());
        assert_eq!(started.elapsed(), MAX_PAUSE, "after the pause");
        // While it runs, three more from here may wait; a fourth is refused, and another
        // address is not held up by any of them.
        let waiting: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.wait_turn("alice", here).await.map(|t| t.is_some()) })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let refused = s.wait_turn("alice", here).await.unwrap_err();
        assert!(
            matches!(refused, AppError::TooManyRequests(..)),
            "{refused:?}"
        );
        let started = tokio::time::Instant::now();
        assert!(s.wait_turn("alice", there).await.unwrap().is_some());
        assert_eq!(
            started.elapsed(),
            MAX_PAUSE,
            "another address waits only its pause"
        );
        drop(first);
        for w in waiting {
            assert!(
                w.await.unwrap().unwrap(),
                "each waiting check gets its turn"
            );
        }
    }
}
