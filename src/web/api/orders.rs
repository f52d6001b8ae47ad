//! Orders: checkout, the caller's orders, one order (JSON or the markdown view), and
//! the admin's queue and decisions.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::app::checkout::{self, CheckoutReply};
use crate::app::journal::JournalInvocation;
use crate::app::{approvals, orders};
use crate::db::orders::OrderSummary;
use crate::domain::{OrderId, ShippingAddress};
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{ApiJson, CurrentUser, IdempotencyKey, RawBody, parse_json};
use crate::web::markdown;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/checkout", post(place))
        .route("/api/orders", get(list))
        .route("/api/orders/{id}", get(detail))
        .route("/api/orders/{id}/journal", get(journal))
        .route("/api/admin/orders", get(admin_list))
        .route("/api/workflow/{id}/approve", post(approve))
        .route("/api/workflow/{id}/reject", post(reject))
        .route("/api/orders/{id}/cancel", post(cancel))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    order_id: Option<String>,
    shipping_address: String,
}

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

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<OrderSummary>>> {
    Ok(Json(orders::of_user(&state, &user).await?))
}

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

#[derive(Serialize)]
struct JournalReply {
    order_id: String,
    invocations: Vec<JournalInvocation>,
}

/// The order's durable steps as Restate journaled them.
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

/// `/api/admin/orders?status=…`: nothing else is understood, so nothing else is taken.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminQuery {
    status: Option<String>,
}

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

#[derive(Serialize)]
struct DecisionReply {
    order_id: OrderId,
    decision: &'static str,
}

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
#[derive(Deserialize, Default)]
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

#[derive(Serialize)]
struct CancelReply {
    order_id: OrderId,
    status: &'static str,
}

async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<CancelReply>> {
    let body = ReasonBody::parse(&body)?;
    let order_id = approvals::cancel(&state, &user, &id, body.reason.as_deref()).await?;
    Ok(Json(CancelReply {
        order_id,
        status: "cancelled",
    }))
}
