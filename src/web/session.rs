//! The page's session cookie: the random id of a session kept on the server
//! (`app::identity`), HttpOnly, SameSite=Strict; behind https also Secure and named
//! with the `__Host-` prefix, so no other site or subdomain can set or scope it.

use axum::http::{HeaderMap, header};

use crate::app::identity::SESSION_LIFETIME_SECS;

/// The cookie's name over plain http (a machine of one's own).
pub const COOKIE: &str = "shopflow_session";
/// Its name behind https.
pub const SECURE_COOKIE: &str = "__Host-shopflow_session";

/// A `Set-Cookie` value that carries the session id `value` for as long as the session
/// lasts (a week; signing in again starts a new one).
pub fn set_cookie(value: &str, headers: &HeaderMap) -> String {
    let (name, secure) = naming(headers);
    format!(
        "{name}={value}; Path=/; Max-Age={SESSION_LIFETIME_SECS}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// A `Set-Cookie` value that signs the browser out.
pub fn clear_cookie(headers: &HeaderMap) -> String {
    let (name, secure) = naming(headers);
    format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

/// The cookie's name and `; Secure` behind https; the plain name otherwise.
fn naming(headers: &HeaderMap) -> (&'static str, &'static str) {
    if https(headers) {
        (SECURE_COOKIE, "; Secure")
    } else {
        (COOKIE, "")
    }
}

/// Whether the browser reached us over https (through a TLS-terminating proxy, which
/// says so in `X-Forwarded-Proto` or `Forwarded`).
fn https(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    text("x-forwarded-proto").is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || text(header::FORWARDED.as_str()).is_some_and(|f| {
            f.split([';', ',']).any(|part| {
                part.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        })
}

/// The value of our cookie in the request's `Cookie` headers: behind https only the
/// `__Host-` one.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    let (name, _) = naming(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
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
    fn cookies_are_strict_http_only_and_host_only_secure_behind_https() {
        let plain = set_cookie("abc", &HeaderMap::new());
        assert_eq!(
            plain,
            "shopflow_session=abc; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict"
        );
        for https in [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("forwarded", "for=1.2.3.4;proto=https")]),
        ] {
            let set = set_cookie("v", &https);
            assert!(
                set.starts_with("__Host-shopflow_session=v; Path=/;"),
                "{set}"
            );
            assert!(set.ends_with("; Secure"), "{set}");
            let clear = clear_cookie(&https);
            assert!(clear.starts_with("__Host-shopflow_session=;"), "{clear}");
            assert!(
                clear.contains("Max-Age=0") && clear.ends_with("; Secure"),
                "{clear}"
            );
        }
        let h = headers(&[
            ("cookie", "theme=dark"),
            ("cookie", "shopflow_session=v1; x=1"),
        ]);
        assert_eq!(cookie_value(&h), Some("v1"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
        // Behind https only the prefixed cookie counts: a plain one may have been set by
        // a neighbouring subdomain.
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("cookie", "shopflow_session=v1"),
        ]);
        assert_eq!(cookie_value(&h), None);
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("cookie", "shopflow_session=v1; __Host-shopflow_session=v2"),
        ]);
        assert_eq!(cookie_value(&h), Some("v2"));
    }
}
