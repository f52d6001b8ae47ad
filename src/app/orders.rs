//! Orders as readers see them: one query of the read model each, visible to their
//! owner and to admins; lists, counts, and the order's durable steps.

use serde::Serialize;

use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::db::orders::{OrderDetail, OrderSummary, Parcel, Refund, ReturnRecord};
use crate::domain::{CompensationRun, OrderId, OrderStatus, Step};

/// One order as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// One parcel per location the order ships from, in location order.
    pub shipments: Vec<Parcel>,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub compensations: Vec<CompensationRun>,
    /// The order's returns, oldest first.
    pub returns: Vec<ReturnRecord>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderItemView {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awakeable_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// `pending`, `failed`, `timed_out`, `cancelled`; once the gateway accepted it
    /// `authorized` (at checkout), then `captured` (every parcel shipped or failed,
    /// something captured) or `voided` (nothing ever shipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// What the gateway captured: each parcel's part as it ships.
    pub captured_cents: i64,
    /// The sum of every refund; never more than was captured.
    pub refunded_cents: i64,
    /// When the last refund was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<String>,
    /// Each refund with its reason, oldest first.
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ShipmentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

impl From<OrderDetail> for OrderView {
    fn from(order: OrderDetail) -> Self {
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
        let (carrier, tracking_number) = order.shipment.unzip();
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
                state: order.payment_state,
                captured_cents: order.captured_cents,
                refunded_cents: order.refunded_cents.unwrap_or(0),
                refunded_at: order.refunded_at,
                refunds: Vec::new(),
            },
            shipment: ShipmentView {
                carrier,
                tracking_number,
            },
            shipments: Vec::new(),
            steps: order.steps,
            failure_reason: order.failure_reason,
            compensations: order.compensations,
            returns: Vec::new(),
        }
    }
}

pub fn parse_order_id(id: &str) -> AppResult<OrderId> {
    OrderId::parse(id).map_err(|e| AppError::invalid("invalid_order_id", e))
}

/// 404 `unknown_order`.
pub(crate) fn unknown(order_id: &OrderId) -> AppError {
    AppError::not_found("unknown_order", format!("no order {order_id}"))
}

fn may_see(user: &User, owner: &str) -> bool {
    user.username == owner || user.is_admin()
}

/// The list entry of an order the caller may see: their own, or any for an admin.
/// Malformed → 400; unknown or someone else's → 404.
pub async fn visible(app: &App, user: &User, id: &str) -> AppResult<OrderSummary> {
    let order_id = parse_order_id(id)?;
    match app.db.order_summary(&order_id).await? {
        Some(summary) if may_see(user, &summary.user_id) => Ok(summary),
        _ => Err(unknown(&order_id)),
    }
}

/// An order the caller may see, from the read model, with its returns and refunds.
pub async fn order(app: &App, user: &User, id: &str) -> AppResult<OrderView> {
    let order_id = parse_order_id(id)?;
    let mut view: OrderView = match app.db.order_detail(&order_id).await? {
        Some(order) if may_see(user, &order.user_id) => order.into(),
        _ => return Err(unknown(&order_id)),
    };
    view.returns = app.db.returns_of_order(&order_id).await?;
    view.payment.refunds = app.db.refunds_of_order(&order_id).await?;
    view.shipments = app.db.parcels_of(&order_id).await?;
    if view.shipment.carrier.is_none() {
        // A split order: the first parcel that shipped stands for its shipment.
        if let Some(p) = view.shipments.iter().find(|p| p.carrier.is_some()) {
            view.shipment.carrier = p.carrier.clone();
            view.shipment.tracking_number = p.tracking_number.clone();
        }
    }
    Ok(view)
}

/// The caller's orders, newest first.
pub async fn of_user(app: &App, user: &User) -> AppResult<Vec<OrderSummary>> {
    Ok(app.db.orders_of_user(&user.username).await?)
}

/// Admin: every order in `status`, oldest first.
pub async fn in_status(app: &App, user: &User, status: &str) -> AppResult<Vec<OrderSummary>> {
    require_admin(user)?;
    let status = OrderStatus::parse(status).map_err(|e| AppError::invalid("invalid_status", e))?;
    Ok(app.db.orders_with_status(status).await?)
}

/// The admin's approval queue: orders awaiting approval that nobody has decided yet.
pub async fn approval_queue(app: &App, user: &User) -> AppResult<Vec<OrderSummary>> {
    require_admin(user)?;
    Ok(app.db.awaiting_decision().await?)
}

/// How many orders are in each status: the user's, or everyone's for an admin.
pub async fn counts(app: &App, user: &User) -> AppResult<Vec<(OrderStatus, i64)>> {
    let only = (!user.is_admin()).then_some(user.username.as_str());
    Ok(app.db.status_counts(only).await?)
}

/// An order the caller may see, with its durable steps as Restate journaled them.
/// The order's business history from ShopFlow's own tables, oldest first.
pub async fn timeline(
    app: &App,
    user: &User,
    id: &str,
) -> AppResult<Vec<crate::db::orders::TimelineEvent>> {
    let order = visible(app, user, id).await?;
    let order_id = parse_order_id(&order.order_id)?;
    app.db
        .timeline(&order_id)
        .await?
        .ok_or_else(|| unknown(&order_id))
}

pub async fn journal(
    app: &App,
    user: &User,
    id: &str,
) -> AppResult<Vec<super::journal::JournalInvocation>> {
    let order = visible(app, user, id).await?;
    let order_id = parse_order_id(&order.order_id)?;
    super::journal::read(&app.db, &app.restate, &order_id).await
}
