//! The admin's fault drills over the API: crash a supervised process, set the carrier.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::app::drills::{self, Target};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{ApiJson, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/drills/crash", post(crash))
        .route("/api/admin/drills/carrier", post(carrier))
}

#[derive(Serialize)]
struct DrillReply {
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashRequest {
    target: String,
}

async fn crash(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CrashRequest>,
) -> ApiResult<Json<DrillReply>> {
    crate::app::require_admin(&user)?;
    let target = Target::parse(&req.target)?;
    let message = drills::crash(&state, &user, target).await?;
    Ok(Json(DrillReply { message }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarrierRequest {
    mode: String,
    orders: i64,
}

async fn carrier(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CarrierRequest>,
) -> ApiResult<Json<DrillReply>> {
    let message = drills::carrier(&state, &user, &req.mode, req.orders).await?;
    Ok(Json(DrillReply { message }))
}
