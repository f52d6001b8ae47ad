//! One span and one log line per request, carrying a W3C trace id: the caller's (from
//! its `traceparent` header) or a new one, so a request's lines can be found together
//! and matched with the caller's. The same middleware counts and times the request for
//! `/metrics` and runs the host check and security headers (`headers::guard`): one
//! layer instead of three, as each layer costs every request a clone and a boxed future.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::metrics::{Route, method_label};

/// Middleware, outermost: the request runs in its span (method, path, trace id) through
/// the host check and the rest of the stack; when its answer starts, one line says its
/// status and latency, and the metrics count it.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, route) = (method_label(req.method()), Route::of(&req));
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = req.uri().path(),
        trace_id = tracing::field::Empty,
    );
    // The caller's trace, or a new one when the request is logged: the log line names it
    // and the Restate calls the request makes carry it (`traceparent`).
    let given = given_trace_id(req.headers());
    let trace = given.or_else(|| (!span.is_disabled()).then(new_trace_id));
    let work = super::headers::guard(&state, req, next).instrument(span.clone());
    let response = match trace {
        Some(trace) => {
            span.record("trace_id", trace.as_str());
            crate::app::in_trace(trace, work).await
        }
        None => work.await,
    };
    let took = started.elapsed();
    let status = response.status();
    state.metrics.observe(method, route, status, took);
    tracing::info!(
        parent: &span,
        status = status.as_u16(),
        latency_ms = took.as_secs_f64() * 1e3,
        "answered"
    );
    response
}

/// The trace id of a valid `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, not all
/// zeros).
pub fn given_trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0');
    valid.then(|| parts[1].to_owned())
}

/// A new random trace id.
pub fn new_trace_id() -> String {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).expect("the OS random source");
    hex::encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(traceparent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("traceparent", traceparent.parse().unwrap());
        h
    }

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let given = given_trace_id(&with(&format!("00-{id}-00f067aa0ba902b7-01")));
        assert_eq!(given.as_deref(), Some(id));
    }

    #[test]
    fn anything_else_is_no_trace_id() {
        let zeros = "0".repeat(32);
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            &format!("00-{zeros}-00f067aa0ba902b7-01"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(given_trace_id(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(given_trace_id(&HeaderMap::new()), None);
        let id = new_trace_id();
        assert!(id.len() == 32 && id != new_trace_id());
    }
}
