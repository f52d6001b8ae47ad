//! Signing in with a password: `POST /api/session` answers a bearer token; the page's
//! sign-in form (see `ui`) gets a session cookie through the same check. Password
//! checks are slow on purpose (argon2id), so only a few run at once, and a user name
//! that keeps failing is refused for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use crate::auth::{Purpose, password, unix_now};
use crate::clock::rfc3339;
use crate::db::User;
use crate::domain::Username;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/session", post(create))
}

/// How long a token from `POST /api/session` lasts.
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// Failed sign-ins a user name may have within `FAILURE_WINDOW`...
const MAX_FAILURES: u32 = 10;
/// ...before it is refused until the window has passed.
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

/// The user whose password this is. Unknown users, users without a password and
/// wrong passwords all get the same 401, in about the same time.
pub async fn check_password(state: &AppState, username: &str, password: &str) -> ApiResult<User> {
    let wrong = || ApiError::unauthorized("wrong user name or password");
    let name = Username::parse(username.trim()).map_err(|_| wrong())?;
    if state.sign_ins.throttled(name.as_str()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed sign-ins for this user; try again in 15 minutes",
        ));
    }
    let user = state.db.user(&name).await?;
    let _permit = state
        .sign_ins
        .running
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let (password, stored) = (
        password.to_owned(),
        user.as_ref().and_then(|u| u.password_hash.clone()),
    );
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, stored.as_ref()))
        .await
        .map_err(ApiError::internal)?;
    state.sign_ins.record(name.as_str(), ok);
    match user {
        Some(user) if ok => Ok(user),
        _ => Err(wrong()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
    expires_at: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Json<TokenReply>> {
    let user = check_password(&state, &body.username, &body.password).await?;
    let expires_at = unix_now().saturating_add(TOKEN_LIFETIME_SECS);
    let name = Username::parse(&user.username).map_err(ApiError::internal)?;
    let token = state.signer.issue(
        Purpose::ApiToken,
        &name,
        &user.credential_stamp(),
        expires_at,
    );
    Ok(Json(TokenReply {
        token,
        expires_at: rfc3339(expires_at.saturating_mul(1000)),
    }))
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
