//! Request extractors: JSON bodies with our error JSON on every rejection, and the
//! calling user from a bearer token, the session cookie or (demo mode) `X-User-ID`.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use super::session;
use crate::app::AppError;
use crate::app::identity::{self, Credential};
use crate::db::User;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client has to send a request's body (its headers: `web::HEADER_READ_TIMEOUT`).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The raw request body, limited to `MAX_BODY_BYTES` and `BODY_READ_TIMEOUT`, rejections
/// as error JSON.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let read = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(req, state));
        let Ok(read) = read.await else {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}"),
            ));
        };
        read.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "request bodies are limited to {} KiB",
                        MAX_BODY_BYTES / 1024
                    ),
                )
            } else {
                ApiError::bad_request("invalid_body", rejection.body_text())
            }
        })
    }
}

/// A JSON body. Unlike `axum::Json` it does not insist on a content type, and every
/// failure (too large, not JSON, wrong shape) is answered with the API's error JSON.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, answering 400 `invalid_json` with serde's reason. A body must be
/// an object: serde would otherwise read a struct from an array (`[1, 2]`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_with_brace = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_with_brace {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid request body: {e}")))
}

/// The optional `Idempotency-Key` header, checked (`app::idempotency_key`).
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("idempotency-key").map(|v| v.as_bytes());
        Ok(IdempotencyKey(crate::app::idempotency_key(header)?))
    }
}

/// The calling user, and what they were recognised by (see `identity::Credential`).
#[derive(Clone, Debug)]
pub struct CurrentUser {
    user: User,
    pub credential: Credential,
}

impl CurrentUser {
    pub fn username(&self) -> &str {
        self.user.username.as_str()
    }
}

impl std::ops::Deref for CurrentUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

pub const USER_HEADER: &str = "x-user-id";

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let credential = credential(&parts.headers)?;
        let user = identity::authenticate(&state, &credential).await?;
        Ok(CurrentUser { user, credential })
    }
}

/// The calling user, who must be an admin: refused with 403 before the request's body
/// is read, so a customer learns nothing from an admin route's validation.
pub struct Admin(pub CurrentUser);

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        crate::app::require_admin(&user)?;
        Ok(Admin(user))
    }
}

/// What the request offers as its identity, in this order: `Authorization: Bearer
/// <token>`, the bare `X-User-ID` header (honoured only in demo mode), the page's
/// session cookie. None at all → 401.
fn credential(headers: &HeaderMap) -> Result<Credential, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AppError::unauthorized("Authorization must be `Bearer <token>`"))?;
        Ok(Credential::Token(token.to_owned()))
    } else if let Some(value) = headers.get(USER_HEADER) {
        Ok(Credential::Demo(
            value.to_str().unwrap_or_default().to_owned(),
        ))
    } else if let Some(value) = session::cookie_value(headers) {
        Ok(Credential::Session(value.to_owned()))
    } else {
        Err(AppError::unauthorized(
            "sign in: send `Authorization: Bearer <token>` (POST /api/session) or use the page",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Pair {
        a: i64,
        b: i64,
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_json::<Pair>(br#" {"a": 1, "b": 2}"#).is_ok());
        for body in [&b"[1, 2]"[..], b"1", b"\"x\"", b"null", b"", b"  "] {
            let err = parse_json::<Pair>(body).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body:?}");
        }
    }
}
