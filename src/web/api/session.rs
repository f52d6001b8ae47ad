//! `POST /api/session`: a user name and password for a bearer token.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::identity::{self, TOKEN_LIFETIME_SECS};
use crate::clock::rfc3339;
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct TokenReply {
    /// For `Authorization: Bearer …`.
    token: String,
    expires_at: String,
}

/// A bearer token for a user name and password; 401 for either wrong (the same answer).
/// A user name with many recent failures is answered after a pause of up to 2 s.
#[utoipa::path(post, path = "/api/session", tag = "session", request_body = Credentials,
    responses((status = 200, body = TokenReply)))]
async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Json<TokenReply>> {
    let (name, password) = (&body.username, &body.password);
    let user = identity::check_password(&state, name, password, peer.ip()).await?;
    let (token, expires_at) = identity::issue(&state, &user, TOKEN_LIFETIME_SECS)?;
    Ok(Json(TokenReply {
        token,
        expires_at: rfc3339(expires_at.saturating_mul(1000)),
    }))
}
