//! What every request passes first and every answer carries: the `Host` allow-list
//! (a foreign name that resolves here, as in DNS rebinding, reaches nothing) and the
//! security headers (CSP, nosniff, no framing, no referrer across sites).

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{AppState, limits, origin, query};

/// The page's policy: only our own script, stylesheet and connections. Datastar
/// compiles its attribute expressions with `new Function` (hence `unsafe-eval`, the one
/// allowance); no inline script or style runs, nothing loads from elsewhere, no other
/// site may frame the page, forms post only to us.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self' 'unsafe-eval'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Everything that is not the page (JSON, SSE, scripts): nothing may run or frame it.
const OTHER_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The guards every request passes, in one place rather than a layer each (each layer
/// costs every request a clone and a boxed future): the host check, an unknown query
/// parameter, a state-changing request from another site, a free slot for work; then
/// the rest of the stack, and the security headers on its answer.
pub async fn guard(state: &AppState, request: Request, next: Next) -> Response {
    let checked = check_host(&state.allowed_hosts, &request).and_then(|()| {
        match query::refusal(&request).or_else(|| origin::refusal(&request)) {
            Some(refusal) => Err(refusal),
            None => limits::slot(state, &request),
        }
    });
    match checked {
        Ok(_slot) => with_security_headers(next.run(request).await),
        Err(refusal) => with_security_headers(refusal.into_response()),
    }
}

/// Refuses a request whose `Host` (or absolute URI's authority) is not allowed, or
/// that names its host twice (a proxy and we might each read another one).
fn check_host(allowed: &[String], request: &Request) -> Result<(), ApiError> {
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(ApiError::bad_request(
            "duplicate_host",
            "the request has more than one Host header",
        ));
    }
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
    };
    match host {
        Some(host) if is_allowed(allowed, host) => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "host_not_allowed",
            "this server does not answer for that host name (see SHOPFLOW_ALLOWED_HOSTS)",
        )),
        None => Err(ApiError::bad_request(
            "missing_host",
            "the request names no host",
        )),
    }
}

/// Whether `host` (any case, surrounding blanks ignored) is one of `allowed` (lowercase).
pub fn is_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim();
    allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
}

/// Adds the security headers to an answer; the page gets its own policy.
fn with_security_headers(mut response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let policy = if is_html { PAGE_POLICY } else { OTHER_POLICY };
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_ignoring_case() {
        let allowed = ["127.0.0.1:8080".to_owned(), "localhost:8080".to_owned()];
        assert!(is_allowed(&allowed, "127.0.0.1:8080"));
        assert!(is_allowed(&allowed, "LOCALHOST:8080"));
        for bad in [
            "evil.example:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "localhost:8080.evil.example",
            "evil.example",
            "",
        ] {
            assert!(!is_allowed(&allowed, bad), "{bad}");
        }
    }
}
