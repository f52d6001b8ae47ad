//! Order routes: checkout, the user's orders, one order (JSON or markdown), the admin
//! queue and the admin's approve/reject.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, CurrentUser, RawBody, parse_json};
use super::markdown;
use crate::db::orders::{OrderDetail, OrderSummary};
use crate::domain::CompensationRun;
use crate::domain::ids::stable_hash;
use crate::domain::{OrderId, OrderStatus, Reason, ShippingAddress, Step};
use crate::durable::ingress::CallError;
use crate::durable::user_session::{CheckoutOutcome, CheckoutRequest};
use crate::durable::workflow::RejectRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/checkout", post(checkout))
        .route("/api/orders", get(list))
        .route("/api/orders/{id}", get(detail))
        .route("/api/admin/orders", get(admin_list))
        .route("/api/workflow/{id}/approve", post(approve))
        .route("/api/workflow/{id}/reject", post(reject))
}

const SESSION: &str = "UserSession";
const WORKFLOW: &str = "OrderFulfillmentWorkflow";
/// How long checkout waits for the order to reach the payment gateway.
const CHECKOUT_START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a decision waits for a just-paid order's workflow to start.
const WORKFLOW_START_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    order_id: Option<String>,
    shipping_address: String,
}

#[derive(Debug, Serialize)]
pub struct CheckoutReply {
    pub order_id: String,
    pub status: OrderStatus,
    pub awakeable_id: Option<String>,
}

/// A client's `Idempotency-Key`: 1-128 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 printable ASCII characters",
        )
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// The order id a checkout without one gets: stable for a retried request with the
/// same Idempotency-Key, random otherwise.
pub fn new_order_id(user: &str, key: Option<&str>) -> OrderId {
    let suffix = match key {
        Some(key) => {
            let hash = stable_hash(format!("{user}\0{key}").as_bytes());
            format!("{hash:016x}")
        }
        None => uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
    };
    OrderId::parse(&format!("order-{suffix}")).expect("a valid order id")
}

async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> ApiResult<(StatusCode, Json<CheckoutReply>)> {
    let key = idempotency_key(&headers)?;
    let order_id = match body.order_id {
        Some(id) => {
            OrderId::parse(&id).map_err(|e| ApiError::bad_request("invalid_order_id", e))?
        }
        None => new_order_id(user.username(), key.as_deref()),
    };
    let shipping_address = ShippingAddress::parse(&body.shipping_address)
        .map_err(|e| ApiError::bad_request("invalid_shipping_address", e))?;
    let reply = place_order(&state, &user, order_id, key, shipping_address).await?;
    Ok((StatusCode::ACCEPTED, Json(reply)))
}

/// Starts the checkout of the user's cart as `order_id` and waits until the order
/// reaches the payment gateway (or is refused). A known order id answers with that
/// order and starts nothing.
pub async fn place_order(
    state: &AppState,
    user: &CurrentUser,
    order_id: OrderId,
    key: Option<String>,
    shipping_address: ShippingAddress,
) -> ApiResult<CheckoutReply> {
    // A known order id answers with that order and starts nothing.
    if let Some(known) = state.db.order_summary(order_id.as_str()).await? {
        if known.user_id != user.username() {
            return Err(order_id_taken(&order_id));
        }
        return checkout_reply(state, &known).await;
    }
    if let Some(pending) = state.db.pending_checkout(user.username()).await? {
        return Err(checkout_in_progress(&pending));
    }

    let request = CheckoutRequest {
        order_id: order_id.clone(),
        shipping_address,
    };
    let restate_key = match &key {
        Some(key) => format!("{order_id}:{key}"),
        None => format!("checkout:{order_id}"),
    };
    let invocation = state
        .restate
        .send(SESSION, user.username(), "Checkout", &request, &restate_key)
        .await?;

    // Checkout suspends once the payment request is registered; wait for that (or for
    // a refusal such as an empty cart or missing stock).
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(summary) = state.db.order_summary(order_id.as_str()).await?
            && state
                .db
                .payment_by_order(order_id.as_str())
                .await?
                .is_some()
        {
            return checkout_reply(state, &summary).await;
        }
        if let Some(outcome) = state.restate.output::<CheckoutOutcome>(&invocation).await? {
            let reply = CheckoutReply {
                order_id: outcome.order_id.to_string(),
                status: outcome.status,
                awakeable_id: outcome.awakeable_id,
            };
            return Ok(reply);
        }
        if started.elapsed() > CHECKOUT_START_DEADLINE {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "checkout_pending",
                format!(
                    "checkout of {order_id} has not started yet; ask again with the same order_id"
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

async fn checkout_reply(state: &AppState, summary: &OrderSummary) -> ApiResult<CheckoutReply> {
    let payment = state.db.payment_by_order(&summary.order_id).await?;
    let reply = CheckoutReply {
        order_id: summary.order_id.clone(),
        status: OrderStatus::parse(&summary.status).map_err(ApiError::internal)?,
        awakeable_id: payment.map(|p| p.awakeable_id),
    };
    Ok(reply)
}

pub fn order_id_taken(order_id: &OrderId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "order_id_taken",
        format!("order id {order_id} is already in use"),
    )
}

pub fn checkout_in_progress(order_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "checkout_in_progress",
        format!("order {order_id} is waiting for payment; the cart is locked until it settles"),
    )
}

#[derive(Serialize)]
struct OrderListItem {
    order_id: String,
    status: String,
    total_cents: i64,
    created_at: String,
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<OrderListItem>>> {
    let orders = state.db.orders_of_user(user.username()).await?;
    Ok(Json(
        orders
            .into_iter()
            .map(|o| OrderListItem {
                order_id: o.order_id,
                status: o.status,
                total_cents: o.total_cents,
                created_at: o.created_at,
            })
            .collect(),
    ))
}

/// One order as the API shows it: checkout's record merged with the workflow's status.
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub items: Vec<OrderItemView>,
    pub total_cents: i64,
    pub shipping_address: String,
    pub created_at: String,
    pub payment: PaymentView,
    pub shipment: ShipmentView,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub compensations: Vec<CompensationRun>,
}

#[derive(Debug, Serialize)]
pub struct OrderItemView {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct PaymentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awakeable_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ShipmentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

impl OrderView {
    pub fn new(order: OrderDetail) -> Self {
        let items = order
            .items
            .iter()
            .map(|l| OrderItemView {
                product_id: l.product_id.get(),
                sku: l.sku.clone(),
                name: l.name.clone(),
                quantity: l.quantity.get(),
                unit_price_cents: l.unit_price_cents.get(),
                line_total_cents: l.line_total().map_or(0, |c| c.get()),
            })
            .collect();
        let shipment = match order.shipment {
            Some((carrier, tracking_number)) => ShipmentView {
                carrier: Some(carrier),
                tracking_number: Some(tracking_number),
            },
            None => ShipmentView::default(),
        };
        Self {
            order_id: order.order_id,
            user_id: order.user_id,
            status: order.status,
            items,
            total_cents: order.total_cents.get(),
            shipping_address: order.shipping_address,
            created_at: order.created_at,
            payment: PaymentView {
                awakeable_id: order.awakeable_id,
                transaction_id: order.transaction_id,
            },
            shipment,
            steps: order.steps,
            failure_reason: order.failure_reason,
            compensations: order.compensations,
        }
    }
}

/// The index entry of an order the caller may see: their own, or any for an admin.
/// Malformed → 400; unknown or someone else's → 404.
pub async fn visible_order(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> ApiResult<(OrderId, OrderSummary)> {
    let order_id = OrderId::parse(id).map_err(|e| ApiError::bad_request("invalid_order_id", e))?;
    let not_found = || ApiError::not_found("unknown_order", format!("no order {order_id}"));
    let summary = state
        .db
        .order_summary(order_id.as_str())
        .await?
        .ok_or_else(not_found)?;
    if summary.user_id != user.username() && !user.0.is_admin() {
        return Err(not_found());
    }
    Ok((order_id, summary))
}

/// Loads an order the caller may see: their own, or any for an admin. Others → 404.
/// One query of the read model.
pub async fn load_order(state: &AppState, user: &CurrentUser, id: &str) -> ApiResult<OrderView> {
    let order_id = OrderId::parse(id).map_err(|e| ApiError::bad_request("invalid_order_id", e))?;
    let not_found = || ApiError::not_found("unknown_order", format!("no order {order_id}"));
    let order = state
        .db
        .order_detail(order_id.as_str())
        .await?
        .ok_or_else(not_found)?;
    if order.user_id != user.username() && !user.0.is_admin() {
        return Err(not_found());
    }
    Ok(OrderView::new(order))
}

async fn detail(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = load_order(&state, &user, &id).await?;
    let wants_markdown = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/markdown"));
    if wants_markdown {
        let body = markdown::order(&view);
        return Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            body,
        )
            .into_response());
    }
    Ok(Json(view).into_response())
}

pub fn require_admin(user: &CurrentUser) -> ApiResult<()> {
    if user.0.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs the admin role",
        ))
    }
}

#[derive(Serialize)]
struct AdminOrderItem {
    order_id: String,
    user_id: String,
    status: String,
    total_cents: i64,
    created_at: String,
}

async fn admin_list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<Vec<AdminOrderItem>>> {
    require_admin(&user)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let status = query
        .get("status")
        .map(String::as_str)
        .unwrap_or("awaiting_approval");
    let status =
        OrderStatus::parse(status).map_err(|e| ApiError::bad_request("invalid_status", e))?;
    let orders = state.db.orders_with_status(status).await?;
    Ok(Json(
        orders
            .into_iter()
            .map(|o| AdminOrderItem {
                order_id: o.order_id,
                user_id: o.user_id,
                status: o.status,
                total_cents: o.total_cents,
                created_at: o.created_at,
            })
            .collect(),
    ))
}

/// Checks that the order exists and waits for a decision, before asking the workflow.
async fn decidable(state: &AppState, id: &str) -> ApiResult<OrderId> {
    let order_id = OrderId::parse(id).map_err(|e| ApiError::bad_request("invalid_order_id", e))?;
    let summary = state
        .db
        .order_summary(order_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_order", format!("no order {order_id}")))?;
    // Paid a moment ago: checkout is about to hand the order to its workflow.
    let just_paid = summary.status == OrderStatus::AwaitingPayment.as_str()
        && state
            .db
            .payment_by_order(order_id.as_str())
            .await?
            .is_some_and(|p| p.state == "succeeded");
    if summary.status != OrderStatus::AwaitingApproval.as_str() && !just_paid {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_awaiting_approval",
            format!("order {order_id} is {}", summary.status),
        ));
    }
    Ok(order_id)
}

/// Passes the decision to the workflow. Checkout starts the workflow asynchronously
/// right after payment, so for a moment the order is awaiting approval while the
/// workflow has not recorded anything yet: that "unknown" is waited out briefly.
async fn decide(
    state: &AppState,
    order_id: &OrderId,
    handler: &str,
    body: Option<&RejectRequest>,
) -> ApiResult<()> {
    let started = Instant::now();
    loop {
        match state
            .restate
            .call::<_, ()>(WORKFLOW, order_id.as_str(), handler, body)
            .await
        {
            Err(CallError::Refused {
                code: Some(code), ..
            }) if code == "unknown_order" && started.elapsed() < WORKFLOW_START_DEADLINE => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return Ok(result?),
        }
    }
}

#[derive(Serialize)]
struct DecisionReply {
    order_id: String,
    decision: &'static str,
}

async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<DecisionReply>> {
    let order_id = approve_order(&state, &user, &id).await?;
    Ok(Json(DecisionReply {
        order_id: order_id.to_string(),
        decision: "approved",
    }))
}

/// The admin's approval of an order that waits for it.
pub async fn approve_order(state: &AppState, user: &CurrentUser, id: &str) -> ApiResult<OrderId> {
    require_admin(user)?;
    let order_id = decidable(state, id).await?;
    decide(state, &order_id, "Approve", None).await?;
    Ok(order_id)
}

/// The admin's rejection of an order that waits for approval, with an optional reason.
pub async fn reject_order(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    reason: Option<String>,
) -> ApiResult<OrderId> {
    require_admin(user)?;
    let reason = match reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            Some(Reason::parse(text).map_err(|e| ApiError::bad_request("invalid_reason", e))?)
        }
    };
    let order_id = decidable(state, id).await?;
    decide(state, &order_id, "Reject", Some(&RejectRequest { reason })).await?;
    Ok(order_id)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: Option<String>,
}

async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<DecisionReply>> {
    require_admin(&user)?;
    // The body is optional: no body means no reason.
    let body: RejectBody = if body.iter().all(u8::is_ascii_whitespace) {
        RejectBody::default()
    } else {
        parse_json(&body)?
    };
    let order_id = reject_order(&state, &user, &id, body.reason).await?;
    Ok(Json(DecisionReply {
        order_id: order_id.to_string(),
        decision: "rejected",
    }))
}
