//! One span and one log line per request, carrying a W3C trace id: the caller's (from
//! its `traceparent` header) or a new one, so a request's lines can be found together
//! and matched with the caller's and Restate's spans (`telemetry`). The same middleware counts and times the request for
//! `/metrics` and runs the host check and security headers (`headers::guard`): one
//! layer instead of three, as each layer costs every request a clone and a boxed future.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::metrics::{Route, method_label};
use crate::telemetry;

/// The request's span at `level` (a constant: each level is its own call site).
macro_rules! request_span {
    ($level:expr, $req:expr, $route:expr) => {
        tracing::span!(
            $level,
            "request",
            method = %$req.method(),
            route = $route.as_str(),
            path = $req.uri().path(),
            trace_id = tracing::field::Empty,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        )
    };
}

/// Middleware, outermost: the request runs in its span (method, path, trace id) through
/// the guards and the rest of the stack; when its answer starts, one line says its
/// status and latency, and the metrics count it.
///
/// Levels: a read (GET, HEAD) answered 2xx or 3xx has its span and line at DEBUG, so
/// the default `info` log holds every write, every refusal and every failure but not
/// the catalog reads a busy shop serves by the ten thousand a second; an operator who
/// wants those too sets `RUST_LOG=info,shopflow::web::trace=debug`. A 5xx is a WARN.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, route) = (method_label(req.method()), Route::of(&req));
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let span = if read {
        request_span!(tracing::Level::DEBUG, req, route)
    } else {
        request_span!(tracing::Level::INFO, req, route)
    };
    // The caller's trace or a new one: the log line names it, the Restate calls the
    // request makes carry it (`traceparent`), and exported spans belong to it.
    let name = || format!("{} {}", req.method(), route.as_str());
    let trace = telemetry::join(&span, req.headers(), name);
    // For the line of a failed request: a cheap clone.
    let uri = req.uri().clone();
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
    let (code, ms) = (status.as_u16(), took.as_secs_f64() * 1e3);
    state.metrics.observe(method, route.clone(), status, took);
    // A read's span is off at `info`: its line says what was asked itself.
    let (route, path) = (route.as_str(), uri.path());
    if status.is_server_error() {
        tracing::warn!(parent: &span, status = code, latency_ms = ms, method, route, path, "answered");
    } else if !read {
        tracing::info!(parent: &span, status = code, latency_ms = ms, "answered");
    } else if status.is_client_error() {
        tracing::info!(parent: &span, status = code, latency_ms = ms, method, route, path, "answered");
    } else {
        tracing::debug!(parent: &span, status = code, latency_ms = ms, "answered");
    }
    response
}
