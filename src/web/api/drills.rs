//! The admin's operations over the API: crash a supervised process, set the carrier,
//! list the builds' deployments.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::deployments::Deployment;
use crate::app::drills::{self, Target};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{ApiJson, CurrentUser};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crash))
        .routes(routes!(carrier))
        .routes(routes!(deployments))
}

/// Admin: ShopFlow's Restate deployments, one per build: the current one takes new
/// invocations, older ones run what is pinned to them until drained, then go.
#[utoipa::path(get, path = "/api/admin/deployments", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Deployment>)))]
async fn deployments(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<Deployment>>> {
    Ok(Json(crate::app::deployments::list(&state, &user).await?))
}

#[derive(Serialize, ToSchema)]
struct DrillReply {
    message: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CrashRequest {
    /// `endpoint` or `restate` (when this process supervises them).
    target: String,
}

/// Admin: crashes a supervised process (demo mode).
#[utoipa::path(post, path = "/api/admin/drills/crash", tag = "admin", security(("bearer" = [])),
    request_body = CrashRequest, responses((status = 200, body = DrillReply)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CarrierRequest {
    /// `normal`, `fail` (every booking) or `flaky` (the first two).
    mode: String,
    /// How many of the next parcels it applies to.
    orders: i64,
    /// Only parcels from this location (every location when absent).
    #[serde(default)]
    location: Option<String>,
}

/// Admin: makes the simulated carrier fail for the next orders.
#[utoipa::path(post, path = "/api/admin/drills/carrier", tag = "admin", security(("bearer" = [])),
    request_body = CarrierRequest, responses((status = 200, body = DrillReply)))]
async fn carrier(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<CarrierRequest>,
) -> ApiResult<Json<DrillReply>> {
    let message = drills::carrier(
        &state,
        &user,
        &req.mode,
        req.orders,
        req.location.as_deref(),
    )
    .await?;
    Ok(Json(DrillReply { message }))
}
