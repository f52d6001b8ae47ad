//! Overload limits: the web role sheds what it cannot take now instead of queueing it
//! without bound. Requests that do work (every method but GET and HEAD: each calls
//! Restate or writes) hold one of a fixed number of slots, and get 503 `overloaded`
//! with `Retry-After` when none is free; live streams are capped per user (429) and in
//! all (503). Reads, the page and `/healthz` are never held back, so the web role
//! answers them while Restate is saturated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::error::ApiError;

/// How many of each the web role allows at once.
#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    pub in_flight: usize,
    pub streams: usize,
    pub streams_per_user: usize,
}

#[derive(Debug)]
pub struct Limits {
    config: LimitConfig,
    work: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    per_user: Arc<Mutex<HashMap<String, usize>>>,
    /// The most streams open at once since `take_peak` last looked.
    peak: AtomicUsize,
}

/// One open stream's place; given back when the stream ends.
#[derive(Debug)]
pub struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    user: String,
    per_user: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Limits {
    pub fn new(config: LimitConfig) -> Self {
        Limits {
            config,
            work: Arc::new(Semaphore::new(config.in_flight)),
            streams: Arc::new(Semaphore::new(config.streams)),
            per_user: Arc::default(),
            peak: AtomicUsize::new(0),
        }
    }

    /// How many live streams are open now.
    pub fn open_streams(&self) -> usize {
        self.config.streams - self.streams.available_permits()
    }

    /// The most streams open at once since the last call, and now.
    pub fn take_peak(&self) -> (usize, usize) {
        let now = self.open_streams();
        (self.peak.swap(now, Ordering::Relaxed).max(now), now)
    }

    /// A place for one more live stream of `user`, or why there is none.
    pub fn stream_slot(&self, user: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.get(user).copied().unwrap_or(0);
        if mine >= self.config.streams_per_user {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "{} live streams are open for this user already; close one first",
                    self.config.streams_per_user
                ),
            ));
        }
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "the server has as many live streams open as it takes; try again shortly",
            )
        })?;
        *open.entry(user.to_owned()).or_default() += 1;
        self.peak.fetch_max(self.open_streams(), Ordering::Relaxed);
        Ok(StreamSlot {
            _permit: permit,
            user: user.to_owned(),
            per_user: self.per_user.clone(),
        })
    }
}

/// A request that does work (any method but GET and HEAD) runs only with a free slot,
/// held until it is answered; `Err` is the refusal when none is free.
pub fn slot(state: &AppState, req: &Request) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(None);
    }
    let Ok(slot) = state.limits.work.clone().try_acquire_owned() else {
        tracing::warn!(
            limit = state.limits.config.in_flight,
            "overloaded: request shed"
        );
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is busy with as much work as it takes; try again shortly",
        ));
    };
    Ok(Some(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_user_and_in_all() {
        let limits = Limits::new(LimitConfig {
            in_flight: 1,
            streams: 3,
            streams_per_user: 2,
        });
        let a1 = limits.stream_slot("alice").unwrap();
        let _a2 = limits.stream_slot("alice").unwrap();
        let err = limits.stream_slot("alice").unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        let _b1 = limits.stream_slot("bob").unwrap();
        let err = limits.stream_slot("carol").unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(a1);
        let _c1 = limits.stream_slot("carol").unwrap();
        assert!(
            limits.stream_slot("alice").is_err(),
            "the total is full again"
        );
    }
}
