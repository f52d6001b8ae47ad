//! Orders: checkout, the caller's orders, one order (JSON or the markdown view), and
//! the admin's queue and decisions.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::checkout::{self, CheckoutReply};
use crate::app::journal::JournalInvocation;
use crate::app::orders::OrderView;
use crate::app::{approvals, cancellation, orders};
use crate::db::orders::{OrderSummary, TimelineEvent};
use crate::domain::{OrderId, ShippingAddress};
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{ApiJson, CurrentUser, IdempotencyKey, RawBody, parse_json};
use crate::web::markdown;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place))
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(journal))
        .routes(routes!(timeline))
        .routes(routes!(admin_list))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    /// 1–64 of `[A-Za-z0-9_-]`; a new one when absent.
    order_id: Option<String>,
    shipping_address: String,
}

/// Checks the caller's cart out as an order and waits until it awaits payment.
#[utoipa::path(post, path = "/api/checkout", tag = "orders", security(("bearer" = [])),
    params(super::IdempotencyKeyHeader), request_body = CheckoutBody,
    responses((status = 202, description = "The order, awaiting payment", body = CheckoutReply)))]
async fn place(
    State(state): State<AppState>,
    user: CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> ApiResult<(StatusCode, Json<CheckoutReply>)> {
    let order_id = match body.order_id {
        Some(id) => orders::parse_order_id(&id)?,
        None => checkout::new_order_id(user.username(), key.as_deref()),
    };
    let address = ShippingAddress::parse(&body.shipping_address)
        .map_err(|e| ApiError::bad_request("invalid_shipping_address", e))?;
    let reply = checkout::place_order(&state, &user, order_id, address).await?;
    Ok((StatusCode::ACCEPTED, Json(reply)))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Vec<OrderSummary>)))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<OrderSummary>>> {
    Ok(Json(orders::of_user(&state, &user).await?))
}

/// One order (the caller's, or any for an admin); `Accept: text/markdown` for a
/// plain-text view.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    responses((status = 200, content((OrderView = "application/json"), (String = "text/markdown")))))]
async fn detail(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = orders::order(&state, &user, &id).await?;
    let wants_markdown = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/markdown"));
    if wants_markdown {
        let body = markdown::order(&view);
        let content_type = [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")];
        return Ok((content_type, body).into_response());
    }
    Ok(Json(view).into_response())
}

#[derive(Serialize, ToSchema)]
struct JournalReply {
    order_id: String,
    invocations: Vec<JournalInvocation>,
}

/// The order's durable steps as Restate journaled them.
#[utoipa::path(get, path = "/api/orders/{id}/journal", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    responses((status = 200, body = JournalReply)))]
async fn journal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<JournalReply>> {
    let invocations = orders::journal(&state, &user, &id).await?;
    Ok(Json(JournalReply {
        order_id: id,
        invocations,
    }))
}

/// The order's business history, oldest first, from ShopFlow's own tables (it outlives
/// Restate's journal): who did what and when, with the amounts paid and refunded.
#[utoipa::path(get, path = "/api/orders/{id}/timeline", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    responses((status = 200, body = Vec<TimelineEvent>)))]
async fn timeline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TimelineEvent>>> {
    Ok(Json(orders::timeline(&state, &user, &id).await?))
}

/// `/api/admin/orders?status=…`: nothing else is understood, so nothing else is taken.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AdminQuery {
    /// An order status; `awaiting_approval` when absent.
    status: Option<String>,
}

/// Admin: the orders in one status.
#[utoipa::path(get, path = "/api/admin/orders", tag = "admin", security(("bearer" = [])),
    params(AdminQuery), responses((status = 200, body = Vec<OrderSummary>)))]
async fn admin_list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<AdminQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<OrderSummary>>> {
    crate::app::require_admin(&user)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let status = query.status.as_deref().unwrap_or("awaiting_approval");
    Ok(Json(orders::in_status(&state, &user, status).await?))
}

#[derive(Serialize, ToSchema)]
struct DecisionReply {
    order_id: OrderId,
    /// `approved` or `rejected`.
    decision: &'static str,
}

/// Admin: approves an order awaiting approval; its workflow goes on to ship it.
#[utoipa::path(post, path = "/api/workflow/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    responses((status = 200, body = DecisionReply)))]
async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<DecisionReply>> {
    let order_id = approvals::approve(&state, &user, &id).await?;
    Ok(Json(DecisionReply {
        order_id,
        decision: "approved",
    }))
}

/// The body of a reject or cancel: optional, and then optionally a reason.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

impl ReasonBody {
    fn parse(body: &[u8]) -> ApiResult<ReasonBody> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ReasonBody::default());
        }
        parse_json(body)
    }
}

/// Admin: rejects an order awaiting approval; its saga gives back what it took.
#[utoipa::path(post, path = "/api/workflow/{id}/reject", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    request_body(content = Option<ReasonBody>, description = "Optional"),
    responses((status = 200, body = DecisionReply)))]
async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<DecisionReply>> {
    crate::app::require_admin(&user)?;
    let body = ReasonBody::parse(&body)?;
    let order_id = approvals::reject(&state, &user, &id, body.reason.as_deref()).await?;
    Ok(Json(DecisionReply {
        order_id,
        decision: "rejected",
    }))
}

#[derive(Serialize, ToSchema)]
struct CancelReply {
    order_id: OrderId,
    /// `cancelled`.
    status: &'static str,
}

/// Cancels an order that has not shipped: the payment is refunded and the stock
/// released.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    request_body(content = Option<ReasonBody>, description = "Optional"),
    responses((status = 200, body = CancelReply)))]
async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<CancelReply>> {
    let body = ReasonBody::parse(&body)?;
    let order_id = cancellation::cancel(&state, &user, &id, body.reason.as_deref()).await?;
    Ok(Json(CancelReply {
        order_id,
        status: "cancelled",
    }))
}
