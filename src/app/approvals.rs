//! Decisions on an order: the admin approves (it ships) or rejects with a reason, or
//! the customer cancels; the saga gives back what was taken. The workflow's decision
//! handlers resolve its durable promise once; this checks the caller and the order.

use std::time::Duration;

use super::orders::{self, parse_order_id};
use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::domain::{OrderId, OrderStatus, PaymentState, Reason};
use crate::durable::ingress;
use crate::durable::workflow::{CancelRequest, RejectRequest};
use restate_sdk::serde::Json;

/// How long a decision on a just-paid order waits for checkout to record the payment.
const PAYMENT_RECORD_DEADLINE: Duration = Duration::from_secs(10);

/// The admin approves an order that waits for approval.
#[tracing::instrument(skip_all, fields(user = user.username, order = id))]
pub async fn approve(app: &App, user: &User, id: &str) -> AppResult<OrderId> {
    require_admin(user)?;
    let order_id = decidable(app, id).await?;
    let workflow = app.restate.workflow(order_id.as_str());
    ingress::body(workflow.approve().call().await)?;
    Ok(order_id)
}

/// The admin rejects an order that waits for approval, optionally saying why.
#[tracing::instrument(skip_all, fields(user = user.username, order = id))]
pub async fn reject(app: &App, user: &User, id: &str, reason: Option<&str>) -> AppResult<OrderId> {
    require_admin(user)?;
    let reason = match reason.map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            Some(Reason::parse(text).map_err(|e| AppError::invalid("invalid_reason", e))?)
        }
    };
    let order_id = decidable(app, id).await?;
    let request = RejectRequest { reason };
    let workflow = app.restate.workflow(order_id.as_str());
    ingress::body(workflow.reject(Json(request)).call().await)?;
    Ok(order_id)
}

/// The order, if it waits for a decision. One paid a moment ago may not have been
/// recorded as waiting yet: that is waited out on the live feed.
async fn decidable(app: &App, id: &str) -> AppResult<OrderId> {
    let order_id = parse_order_id(id)?;
    let mut watch = app.feed.watch_order(order_id.as_str());
    let deadline = tokio::time::sleep(PAYMENT_RECORD_DEADLINE);
    tokio::pin!(deadline);
    loop {
        let summary = app
            .db
            .order_summary(order_id.as_str())
            .await?
            .ok_or_else(|| orders::unknown(&order_id))?;
        let just_paid = summary.status == OrderStatus::AwaitingPayment
            && app
                .db
                .payment_by_order(order_id.as_str())
                .await?
                .is_some_and(|p| p.state == PaymentState::Succeeded);
        if summary.status == OrderStatus::AwaitingApproval {
            return Ok(order_id);
        }
        if !just_paid {
            return Err(AppError::conflict(
                "not_awaiting_approval",
                format!("order {order_id} is {}", summary.status),
            ));
        }
        tokio::select! {
            _ = watch.changed() => {}
            () = &mut deadline => {
                return Err(AppError::unavailable(
                    "payment_not_recorded",
                    format!("the payment of order {order_id} is not recorded yet; try again shortly"),
                ));
            }
        }
    }
}

/// How long a cancellation waits for the order to end cancelled.
const CANCEL_DEADLINE: Duration = Duration::from_secs(10);

/// The customer (or an admin) cancels an order that has not shipped: before it is paid
/// the payment request is withdrawn (the gateway's record decides against a payment
/// arriving at the same moment) and checkout gives the stock back; once paid, the
/// workflow's decision is `Cancel` (against an approval at the same moment, one wins)
/// and its saga refunds and releases. Later → 409 `too_late`; an order already cancelled
/// stays so (200).
#[tracing::instrument(skip_all, fields(user = user.username, order = id))]
pub async fn cancel(app: &App, user: &User, id: &str, reason: Option<&str>) -> AppResult<OrderId> {
    let summary = orders::visible(app, user, id).await?;
    let order_id = parse_order_id(&summary.order_id)?;
    let reason = match reason.map(str::trim) {
        None | Some("") if summary.user_id == user.username => {
            "cancelled by the customer".to_owned()
        }
        None | Some("") => "cancelled by the store".to_owned(),
        Some(text) => Reason::parse(text)
            .map_err(|e| AppError::invalid("invalid_reason", e))?
            .into(),
    };
    let mut watch = app.feed.watch_order(order_id.as_str());
    let deadline = tokio::time::sleep(CANCEL_DEADLINE);
    tokio::pin!(deadline);
    let mut asked = false;
    loop {
        let summary = app
            .db
            .order_summary(order_id.as_str())
            .await?
            .ok_or_else(|| orders::unknown(&order_id))?;
        match summary.status {
            // Cancelled already (by this request, or by an earlier one whose answer
            // was lost): cancelling again is the same outcome, and changes nothing.
            OrderStatus::Cancelled => return Ok(order_id),
            OrderStatus::AwaitingApproval if !asked => {
                let workflow = app.restate.workflow(order_id.as_str());
                let request = CancelRequest {
                    reason: Reason::parse(&reason).map_err(AppError::internal)?,
                };
                ingress::body(workflow.cancel(Json(request)).call().await)?;
                asked = true;
            }
            OrderStatus::AwaitingPayment if !asked => {
                asked = withdraw(app, &order_id, &reason).await?
            }
            OrderStatus::AwaitingPayment | OrderStatus::AwaitingApproval => {}
            status if !asked => {
                return Err(AppError::conflict(
                    "too_late",
                    format!("order {order_id} is {status}; it can no longer be cancelled"),
                ));
            }
            // Asked, and the order ended otherwise (a decision came first).
            status => {
                return Err(AppError::conflict(
                    "too_late",
                    format!("order {order_id} ended {status} before the cancellation"),
                ));
            }
        }
        tokio::select! {
            _ = watch.changed() => {}
            () = &mut deadline => {
                if asked {
                    return Ok(order_id);
                }
                return Err(AppError::unavailable(
                    "cancel_pending",
                    format!("order {order_id} is between steps; try again shortly"),
                ));
            }
        }
    }
}

/// Withdraws an order's pending payment request and wakes its checkout, which then
/// gives the stock back. `false` when the payment is not pending (just paid: the order
/// is about to wait for approval; or being settled otherwise): look again. A payment
/// withdrawn already is withdrawn again, idempotently.
async fn withdraw(app: &App, order_id: &OrderId, reason: &str) -> AppResult<bool> {
    let Some(payment) = app.db.payment_by_order(order_id.as_str()).await? else {
        return Ok(false);
    };
    let awakeable = &payment.awakeable_id;
    if payment.state == PaymentState::Cancelled {
        // Withdrawn already, by a request whose answer was lost: the web role may have
        // died between recording the withdrawal and waking the checkout. Wake it again
        // (Restate ignores a second completion).
        let reason = payment.reason.as_deref().unwrap_or(reason);
        app.restate.reject_awakeable(awakeable, reason).await?;
        return Ok(true);
    }
    if payment.state != PaymentState::Pending {
        return Ok(false);
    }
    if !app
        .db
        .settle_payment(awakeable, PaymentState::Cancelled, None, Some(reason))
        .await?
    {
        return Ok(false);
    }
    if let Err(e) = app.restate.reject_awakeable(awakeable, reason).await {
        app.db.unsettle_payment(awakeable).await?;
        return Err(e.into());
    }
    Ok(true)
}
