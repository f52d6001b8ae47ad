//! The one error of the use cases: what went wrong, in words a client may read, with
//! a snake_case code and the kind that decides the HTTP status. Internal details are
//! logged, never shown.

use std::borrow::Cow;

use crate::durable::ingress::CallError;

pub type AppResult<T> = Result<T, AppError>;

/// A snake_case error code (`out_of_stock`), fixed or from a durable handler's refusal.
pub type Code = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or breaks a rule (400).
    #[error("{1}")]
    Invalid(Code, String),
    /// Nobody, or nobody known, is calling; or a signature does not hold (401).
    #[error("{1}")]
    Unauthorized(Code, String),
    /// The caller may not do this (403).
    #[error("{1}")]
    Forbidden(Code, String),
    /// There is no such thing, or not for this caller (404).
    #[error("{1}")]
    NotFound(Code, String),
    /// The state of things does not allow it now (409).
    #[error("{1}")]
    Conflict(Code, String),
    /// Too many attempts; try again later (429).
    #[error("{1}")]
    TooManyRequests(Code, String),
    /// Something we depend on is not there right now (503).
    #[error("{1}")]
    Unavailable(Code, String),
    /// Our own failure (500): the detail is logged, the client gets a generic message.
    #[error("something went wrong on our side; it has been logged")]
    Internal(String),
}

impl AppError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid(code.into(), message.into())
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::Unauthorized("unauthorized".into(), message.into())
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Forbidden(code.into(), message.into())
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        AppError::NotFound(code.into(), message.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict(code.into(), message.into())
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unavailable(code.into(), message.into())
    }

    /// Our own failure, logged in full here.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let detail = err.to_string();
        tracing::error!(error = %detail, "request failed");
        AppError::Internal(detail)
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid(..) => 400,
            AppError::Unauthorized(..) => 401,
            AppError::Forbidden(..) => 403,
            AppError::NotFound(..) => 404,
            AppError::Conflict(..) => 409,
            AppError::TooManyRequests(..) => 429,
            AppError::Unavailable(..) => 503,
            AppError::Internal(_) => 500,
        }
    }

    /// The snake_case code clients switch on.
    pub fn code(&self) -> &str {
        match self {
            AppError::Invalid(code, _)
            | AppError::Unauthorized(code, _)
            | AppError::Forbidden(code, _)
            | AppError::NotFound(code, _)
            | AppError::Conflict(code, _)
            | AppError::TooManyRequests(code, _)
            | AppError::Unavailable(code, _) => code,
            AppError::Internal(_) => "internal_error",
        }
    }

    /// An error with a status and code that came from elsewhere (a refusal of a durable
    /// handler, the payment callback's answer).
    pub fn from_status(status: u16, code: String, message: String) -> Self {
        let code = Code::Owned(code);
        match status {
            400 | 422 => AppError::Invalid(code, message),
            401 => AppError::Unauthorized(code, message),
            403 => AppError::Forbidden(code, message),
            404 => AppError::NotFound(code, message),
            409 => AppError::Conflict(code, message),
            429 => AppError::TooManyRequests(code, message),
            503 => AppError::Unavailable(code, message),
            _ => AppError::internal(format!("({status}) {code}: {message}")),
        }
    }
}

/// Whether a database error code names a passing state: SQLite's BUSY (5) and LOCKED
/// (6) with their extended codes; PostgreSQL's serialization failure, deadlock, lock
/// timeout, shutdown and connection classes (SQLSTATE 40001, 40P01, 55P03, 57P0x, 08xxx,
/// 53300).
fn passing(code: &str) -> bool {
    if let Ok(sqlite) = code.parse::<i32>()
        && code.len() < 5
    {
        return matches!(sqlite & 0xff, 5 | 6);
    }
    matches!(code, "40001" | "40P01" | "55P03" | "53300")
        || code.starts_with("57P")
        || code.starts_with("08")
}

impl From<sqlx::Error> for AppError {
    /// A database another process holds locked or cannot reach now, or a pool with no
    /// free connection, is a passing state (503, try again); anything else is our own
    /// failure.
    fn from(err: sqlx::Error) -> Self {
        let busy = match &err {
            sqlx::Error::PoolTimedOut => true,
            // The database server unreachable (restarting, failing over). SQLite reports
            // its own I/O failures as database errors (SQLITE_IOERR), never as `Io`.
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| passing(&code)),
            _ => false,
        };
        if busy {
            tracing::warn!(error = %err, "database busy");
            return AppError::unavailable(
                "database_busy",
                "the database is busy right now; try again in a moment",
            );
        }
        AppError::internal(err)
    }
}

impl From<CallError> for AppError {
    fn from(err: CallError) -> Self {
        match err {
            // A refusal the handler meant for the client.
            CallError::Refused {
                status,
                code: Some(code),
                message,
            } if (400..500).contains(&status) => AppError::from_status(status, code, message),
            CallError::Refused {
                status, message, ..
            } => AppError::internal(format!("durable call failed ({status}): {message}")),
            CallError::Unavailable(reason) => {
                tracing::warn!(%reason, "Restate unavailable");
                AppError::unavailable(
                    "restate_unavailable",
                    "the order engine is not reachable right now; try again shortly",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_status_and_code() {
        let e = AppError::conflict("out_of_stock", "only 3 left");
        assert_eq!(
            (e.status(), e.code(), e.to_string().as_str()),
            (409, "out_of_stock", "only 3 left")
        );
        let e = AppError::internal("disk on fire");
        assert_eq!((e.status(), e.code()), (500, "internal_error"));
        assert!(
            !e.to_string().contains("fire"),
            "internal detail stays in the log"
        );
        let refused = CallError::Refused {
            status: 409,
            code: Some("empty_cart".into()),
            message: "the cart is empty".into(),
        };
        let e = AppError::from(refused);
        assert_eq!((e.status(), e.code()), (409, "empty_cart"));
        assert_eq!(
            AppError::from(CallError::Unavailable("down".into())).status(),
            503
        );
    }
}
