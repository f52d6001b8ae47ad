//! The page's session cookie: a signed credential (`auth::Purpose::SessionCookie`)
//! that carries its own expiry, HttpOnly, SameSite=Strict, and Secure when the page is
//! served over https.

use axum::http::{HeaderMap, header};

use crate::app::identity::SESSION_LIFETIME_SECS;

pub const COOKIE: &str = "shopflow_session";

/// A `Set-Cookie` value that carries the signed session credential `value` for as long
/// as the credential lasts (a week; signing in again starts a new one).
pub fn set_cookie(value: &str, headers: &HeaderMap) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={SESSION_LIFETIME_SECS}; HttpOnly; SameSite=Strict{}",
        secure(headers)
    )
}

/// A `Set-Cookie` value that signs the browser out.
pub fn clear_cookie(headers: &HeaderMap) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure(headers)
    )
}

/// `; Secure` when the browser reached us over https (through a TLS-terminating proxy,
/// which says so in `X-Forwarded-Proto` or `Forwarded`).
fn secure(headers: &HeaderMap) -> &'static str {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let https = text("x-forwarded-proto").is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || text(header::FORWARDED.as_str()).is_some_and(|f| {
            f.split([';', ',']).any(|part| {
                part.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    if https { "; Secure" } else { "" }
}

/// The value of our cookie in the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn cookies_are_strict_http_only_and_secure_behind_https() {
        let plain = set_cookie("alice.1.ab", &HeaderMap::new());
        assert!(plain.starts_with("shopflow_session=alice.1.ab;"), "{plain}");
        assert!(
            plain.ends_with("; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict"),
            "{plain}"
        );
        for https in [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("forwarded", "for=1.2.3.4;proto=https")]),
        ] {
            assert!(set_cookie("v", &https).ends_with("; Secure"));
            assert!(
                clear_cookie(&https).contains("Max-Age=0")
                    && clear_cookie(&https).ends_with("; Secure")
            );
        }
        let h = headers(&[
            ("cookie", "theme=dark"),
            ("cookie", "shopflow_session=v.1.ab; x=1"),
        ]);
        assert_eq!(cookie_value(&h), Some("v.1.ab"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }
}
