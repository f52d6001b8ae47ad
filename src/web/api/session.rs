//! `POST /api/session`: a user name and password for a bearer token.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::app::identity::{self, TOKEN_LIFETIME_SECS};
use crate::auth::Purpose;
use crate::clock::rfc3339;
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::ApiJson;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/session", post(create))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
    expires_at: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Json<TokenReply>> {
    let user = identity::check_password(&state, &body.username, &body.password).await?;
    let (token, expires_at) =
        identity::issue(&state, Purpose::ApiToken, &user, TOKEN_LIFETIME_SECS)?;
    Ok(Json(TokenReply {
        token,
        expires_at: rfc3339(expires_at.saturating_mul(1000)),
    }))
}
