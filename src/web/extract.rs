//! Request extractors: JSON bodies with our error JSON on every rejection, and the
//! calling user from `X-User-ID` or the session cookie.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use super::session;
use crate::db::User;
use crate::domain::Username;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The raw request body, limited to `MAX_BODY_BYTES`, rejections as error JSON.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
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

/// Parses a JSON body, answering 400 `invalid_json` with serde's reason.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid request body: {e}")))
}

/// The calling user: named by `X-User-ID` (API clients) or by the UI's signed session
/// cookie. Missing, malformed, forged or unknown → 401.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

impl CurrentUser {
    pub fn username(&self) -> &str {
        &self.0.username
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
        let name = match parts.headers.get(USER_HEADER) {
            Some(_) if !state.trust_user_header => {
                return Err(ApiError::unauthorized(
                    "identification by X-User-ID is switched off on this server",
                ));
            }
            Some(header) => header
                .to_str()
                .ok()
                .and_then(|s| Username::parse(s.trim()).ok())
                .ok_or_else(|| ApiError::unauthorized("X-User-ID does not name a known user"))?,
            None => parts
                .headers
                .get(header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(session::cookie_value)
                .and_then(|value| state.session_key.verify(value))
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "name the user in the X-User-ID header, or pick a user on the page",
                    )
                })?,
        };
        match state.db.user(&name).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(ApiError::unauthorized(format!("unknown user {name}"))),
        }
    }
}
