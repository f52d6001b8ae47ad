//! Returns and refunds: the customer's return of a delivered order, the store's
//! decisions and receipts, and goodwill refunds.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{refunds, returns};
use crate::db::orders::{Refund, ReturnRecord};
use crate::domain::ReturnItem;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{ApiJson, CurrentUser, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request))
        .routes(routes!(list))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(receive))
        .routes(routes!(goodwill))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    /// What comes back: products of the order and how many of each.
    items: Vec<ReturnItem>,
    /// Why, in one line.
    reason: String,
}

/// The customer asks to return items of their delivered order. The same
/// `Idempotency-Key` asks for the same return.
#[utoipa::path(post, path = "/api/orders/{id}/returns", tag = "returns", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id"), super::IdempotencyKeyHeader),
    request_body = ReturnBody,
    responses((status = 202, description = "The return, requested", body = ReturnRecord)))]
async fn request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<ReturnBody>,
) -> ApiResult<(StatusCode, Json<ReturnRecord>)> {
    if body.items.len() > 100 {
        return Err(ApiError::bad_request("invalid_items", "at most 100 items"));
    }
    let record = returns::request(
        &state,
        &user,
        &id,
        &body.items,
        &body.reason,
        key.as_deref(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(record)))
}

/// `/api/admin/returns?status=…`: nothing else is understood, so nothing else is taken.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReturnsQuery {
    /// A return status; every return when absent.
    status: Option<String>,
}

/// Admin: the returns in one status, oldest first (at most 500).
#[utoipa::path(get, path = "/api/admin/returns", tag = "returns", security(("bearer" = [])),
    params(ReturnsQuery), responses((status = 200, body = Vec<ReturnRecord>)))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<ReturnsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<ReturnRecord>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(
        returns::list(&state, &user, query.status.as_deref()).await?,
    ))
}

/// Admin: approves a requested return; the answer carries its label.
#[utoipa::path(post, path = "/api/admin/returns/{rid}/approve", tag = "returns", security(("bearer" = [])),
    params(("rid" = String, Path, description = "The return id")),
    responses((status = 200, description = "The return, awaiting its parcel", body = ReturnRecord)))]
async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(rid): Path<String>,
) -> ApiResult<Json<ReturnRecord>> {
    Ok(Json(returns::approve(&state, &user, &rid).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: String,
}

/// Admin: rejects a requested return, saying why.
#[utoipa::path(post, path = "/api/admin/returns/{rid}/reject", tag = "returns", security(("bearer" = [])),
    params(("rid" = String, Path, description = "The return id")), request_body = RejectBody,
    responses((status = 200, description = "The return, rejected", body = ReturnRecord)))]
async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(rid): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Json<ReturnRecord>> {
    Ok(Json(
        returns::reject(&state, &user, &rid, &body.reason).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceiveBody {
    /// Whether the goods go back on sale.
    restock: bool,
}

/// Admin: the return's parcel arrived: its lines are refunded at the price paid.
#[utoipa::path(post, path = "/api/admin/returns/{rid}/receive", tag = "returns", security(("bearer" = [])),
    params(("rid" = String, Path, description = "The return id")), request_body = ReceiveBody,
    responses((status = 200, description = "The return, refunded", body = ReturnRecord)))]
async fn receive(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(rid): Path<String>,
    ApiJson(body): ApiJson<ReceiveBody>,
) -> ApiResult<Json<ReturnRecord>> {
    Ok(Json(
        returns::receive(&state, &user, &rid, body.restock).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    amount_cents: i64,
    reason: String,
}

#[derive(Serialize, ToSchema)]
struct RefundReply {
    refund_id: String,
    amount_cents: i64,
}

/// Admin: a goodwill refund of part of the order's payment, never more than is left.
/// The same `Idempotency-Key` makes the same refund once.
#[utoipa::path(post, path = "/api/admin/orders/{id}/refunds", tag = "returns", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id"), super::IdempotencyKeyHeader),
    request_body = RefundBody, responses((status = 200, body = RefundReply)))]
async fn goodwill(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<RefundBody>,
) -> ApiResult<Json<RefundReply>> {
    let Refund {
        refund_id,
        amount_cents,
        ..
    } = refunds::goodwill(
        &state,
        &user,
        &id,
        body.amount_cents,
        &body.reason,
        key.as_deref(),
    )
    .await?;
    Ok(Json(RefundReply {
        refund_id,
        amount_cents,
    }))
}
