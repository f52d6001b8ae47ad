//! The one error type of the web layer: every failure becomes
//! `{"error": {"code", "message"}}` with a fitting status; internal details stay in the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::durable::ingress::CallError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A failure of ours: logged in full, reported to the client without details.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The text the client sees (never internal details).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::internal(err)
    }
}

impl From<CallError> for ApiError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Refused {
                status,
                code,
                message,
            } => {
                match (StatusCode::from_u16(status), code) {
                    // A refusal the handler meant for the client.
                    (Ok(s), Some(code)) if s.is_client_error() => ApiError::new(s, &code, message),
                    _ => ApiError::internal(format!("durable call failed ({status}): {message}")),
                }
            }
            CallError::Unavailable(reason) => {
                tracing::warn!(%reason, "Restate unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "restate_unavailable",
                    "the order engine is not reachable right now; try again shortly",
                )
            }
        }
    }
}
