//! Refuses state-changing requests a browser sends on behalf of another site: the
//! session cookie must not let a foreign page add to a cart or approve an order.
//! API clients (curl, a payment gateway) send neither header and are unaffected.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};

use super::error::ApiError;

/// The refusal of a state-changing request that came from another site, if it did.
pub fn refusal(request: &Request) -> Option<ApiError> {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    (!safe && is_cross_origin(request.headers())).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "this request came from another site and was refused",
        )
    })
}

/// `Sec-Fetch-Site` when the browser sends it; otherwise `Origin` against `Host`.
pub fn is_cross_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN.as_str()), text(header::HOST.as_str())) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority != Some(host)
        }
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_foreign_browser_requests_are_cross_origin() {
        assert!(!is_cross_origin(&headers(&[])));
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!is_cross_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(is_cross_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(is_cross_origin(&headers(&[("origin", "null")])));
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(!is_cross_origin(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8080")
        ])));
    }
}
