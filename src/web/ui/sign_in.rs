//! Signing in on the page: a form posting a user name and a password (in demo mode, the
//! user picker without one), answered with the session cookie; and signing out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppError;
use crate::app::identity;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::RawBody;
use crate::web::session;

/// The sign-in form: a user name and a password; in demo mode the user picker, which
/// needs no password. Success sets the session cookie and reloads the page as that
/// user; a refusal reloads it with the reason.
#[derive(Deserialize)]
pub struct SignIn {
    user: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let form: SignIn = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad_request("invalid_form", format!("invalid sign-in form: {e}")))?;
    let user = if state.demo && form.password.is_empty() {
        identity::by_name(&state, &form.user)
            .await
            .map_err(|_| ApiError::bad_request("unknown_user", "pick one of the listed users"))?
    } else {
        match identity::check_password(&state, &form.user, &form.password, peer.ip()).await {
            Ok(user) => user,
            Err(AppError::TooManyRequests(..)) => {
                return Ok(Redirect::to("/?signin=busy").into_response());
            }
            Err(AppError::Unauthorized(..)) => {
                return Ok(Redirect::to("/?signin=failed").into_response());
            }
            Err(e) => return Err(e.into()),
        }
    };
    // A session of the browser's from before ends: one browser, one session.
    if let Some(old) = session::cookie_value(&headers) {
        identity::end_session(&state, old).await?;
    }
    let id = identity::start_session(&state, &user).await?;
    let cookie = session::set_cookie(&id, &headers);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

/// Signing out ends the session on the server (a copy of the cookie is worth nothing
/// from then on) and clears the browser's cookie.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(id) = session::cookie_value(&headers) {
        identity::end_session(&state, id).await?;
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&headers))],
        Redirect::to("/"),
    )
        .into_response())
}
