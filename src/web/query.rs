//! Query strings: a route takes the parameters it names and nothing else, so a
//! misspelt `?stauts=` is a 400 rather than silently ignored.

use axum::extract::{MatchedPath, Query, Request};

use super::error::ApiError;

/// The parameters a route (as its template) takes.
fn allowed(route: &str) -> &'static [&'static str] {
    match route {
        // A refused sign-in comes back as `/?signin=failed`.
        "/" => &["signin"],
        "/api/admin/orders" | "/api/admin/returns" => &["status"],
        // The page's actions carry datastar's signals in `?datastar=` when they GET.
        _ if route.starts_with("/ui/") => &["datastar"],
        _ => &[],
    }
}

/// The first parameter of `query` that `route` does not take; an unreadable query
/// string counts as one.
fn unknown_parameter(route: &str, uri: &axum::http::Uri) -> Option<String> {
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return Some(uri.query().unwrap_or_default().to_owned());
    };
    let allowed = allowed(route);
    pairs
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| !allowed.contains(&name.as_str()))
}

/// The refusal of a request to a known route with a parameter the route does not take,
/// if it has one.
pub fn refusal(request: &Request) -> Option<ApiError> {
    let route = request.extensions().get::<MatchedPath>()?;
    request.uri().query()?;
    let name = unknown_parameter(route.as_str(), request.uri())?;
    let message = format!("this route takes no query parameter {name:?}");
    Some(ApiError::bad_request("unknown_parameter", message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_takes_only_its_own_parameters() {
        let check = |route: &str, uri: &str| unknown_parameter(route, &uri.parse().unwrap());
        assert_eq!(
            check("/api/admin/orders", "/api/admin/orders?status=shipping"),
            None
        );
        assert_eq!(check("/", "/?signin=failed"), None);
        assert_eq!(check("/ui/stream", "/ui/stream?datastar=%7B%7D"), None);
        assert_eq!(check("/api/orders", "/api/orders?"), None, "an empty query");
        for (route, uri, name) in [
            ("/api/admin/orders", "/api/admin/orders?stauts=x", "stauts"),
            (
                "/api/admin/orders",
                "/api/admin/orders?status=x&limit=1",
                "limit",
            ),
            ("/api/orders", "/api/orders?status=x", "status"),
            ("/api/users", "/api/users?role=admin", "role"),
            ("/api/products/{id}", "/api/products/1?x", "x"),
            ("/ui/stream", "/ui/stream?datastar=1&x=2", "x"),
        ] {
            assert_eq!(check(route, uri).as_deref(), Some(name), "{uri}");
        }
    }
}
