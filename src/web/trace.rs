//! One span and one log line per request, carrying a W3C trace id: the caller's (from
//! its `traceparent` header) or a new one, so a request's lines can be found together
//! and matched with the caller's and Restate's spans (`telemetry`). The same middleware counts and times the request for
//! `/metrics` and runs the host check and security headers (`headers::guard`): one
//! layer instead of three, as each layer costs every request a clone and a boxed future.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::metrics::{Route, method_label};
use crate::telemetry;

/// Middleware, outermost: the request runs in its span (method, path, trace id) through
/// the host check and the rest of the stack; when its answer starts, one line says its
/// status and latency, and the metrics count it.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, route) = (method_label(req.method()), Route::of(&req));
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = route.as_str(),
        path = req.uri().path(),
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    // The caller's trace or a new one: the log line names it, the Restate calls the
    // request makes carry it (`traceparent`), and exported spans belong to it.
    let name = || format!("{} {}", req.method(), route.as_str());
    let trace = telemetry::join(&span, req.headers(), name);
    let work = super::headers::guard(&state, req, next).instrument(span.clone());
    let response = match trace {
        Some(trace) => {
            span.record("trace_id", telemetry::trace_id(&trace));
            telemetry::in_trace(trace, work).await
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
