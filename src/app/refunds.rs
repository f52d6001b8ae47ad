//! Goodwill refunds: an admin gives part of an order's payment back, never more than is
//! left of what was captured. The gateway's record is the arbiter (one write
//! transaction); the same `Idempotency-Key` makes the same refund once.

use super::orders::{self, parse_order_id};
use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::db::orders::{NewRefund, Refund, RefundAmount, RefundOutcome};
use crate::domain::ids::stable_hash;
use crate::domain::{Cents, OrderId, PaymentState, Reason, RefundKind};
use crate::durable::notify::Event;

/// The admin refunds `amount_cents` of order `id` for `reason`.
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
pub async fn goodwill(
    app: &App,
    user: &User,
    id: &str,
    amount_cents: i64,
    reason: &str,
    key: Option<&str>,
) -> AppResult<Refund> {
    require_admin(user)?;
    let order_id = parse_order_id(id)?;
    let amount = Cents::new(amount_cents)
        .filter(|c| c.get() > 0)
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_amount",
                "amount_cents must be a positive number of cents",
            )
        })?;
    let reason = Reason::parse(reason).map_err(|e| AppError::invalid("invalid_reason", e))?;
    let order = app
        .db
        .order_summary(&order_id)
        .await?
        .ok_or_else(|| orders::unknown(&order_id))?;
    let paid = app.db.payment_by_order(&order_id).await?;
    if !paid.is_some_and(|p| p.state == PaymentState::Succeeded) {
        let why = format!("order {order_id} was never paid; there is nothing to refund");
        return Err(AppError::conflict("not_paid", why));
    }
    let refund = make(
        app,
        &order_id,
        amount,
        reason.as_str(),
        key,
        user.username.as_str(),
    )
    .await?;
    tell(
        app,
        &order.user_id,
        &order_id,
        &refund,
        user.username.as_str(),
    )
    .await?;
    Ok(refund)
}

/// Tells the customer and the staff; written again by a retry with the same key, once
/// per recipient.
async fn tell(
    app: &App,
    customer: &str,
    order_id: &OrderId,
    refund: &Refund,
    by: &str,
) -> AppResult<()> {
    let amount = Cents::new(refund.amount_cents).unwrap_or_default();
    let (id, reason) = (order_id.as_str(), &refund.reason);
    let message = format!("Order {order_id}: {amount} refunded by the store: {reason}");
    Event::new(customer, id, "refund_granted", message)
        .keyed(&refund.refund_id)
        .with("amount_cents", refund.amount_cents)
        .with("refund_id", refund.refund_id.as_str())
        .with("reason", refund.reason.as_str())
        .write(&app.db)
        .await?;
    let for_staff = format!("{by} granted {order_id} a refund of {amount}: {reason}");
    Event::for_staff(id, "refund_granted", for_staff)
        .keyed(&refund.refund_id)
        .write(&app.db)
        .await?;
    Ok(())
}

/// Makes the refund at the gateway (once per idempotency key).
async fn make(
    app: &App,
    order_id: &OrderId,
    amount: Cents,
    reason: &str,
    key: Option<&str>,
    actor: &str,
) -> AppResult<Refund> {
    let refund_id = match key {
        Some(key) => format!(
            "goodwill-{:016x}",
            stable_hash(format!("{order_id}\0{key}").as_bytes())
        ),
        None => format!(
            "goodwill-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ),
    };
    let new = NewRefund {
        refund_id: &refund_id,
        order_id: order_id.as_str(),
        kind: RefundKind::Goodwill,
        amount: RefundAmount::Exactly(amount.get()),
        reason,
        actor: Some(actor),
    };
    let refund = match app.db.refund(&new).await? {
        RefundOutcome::Made(refund)
            if refund.amount_cents != amount.get()
                || refund.kind != RefundKind::Goodwill
                || refund.reason != reason =>
        {
            let why = "this Idempotency-Key was used for another refund";
            return Err(AppError::conflict("idempotency_key_reused", why));
        }
        RefundOutcome::Made(refund) => refund,
        RefundOutcome::Exceeds { left } => {
            let left = Cents::new(left).unwrap_or_default();
            let why = format!("only {left} of order {order_id}'s payment is left to refund");
            return Err(AppError::conflict("refund_exceeds_payment", why));
        }
        RefundOutcome::NothingToRefund => {
            let why = format!("nothing of order {order_id}'s payment is left to refund");
            return Err(AppError::conflict("refund_exceeds_payment", why));
        }
    };
    Ok(refund)
}
