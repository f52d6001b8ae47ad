//! The customer's cancel (an admin may cancel too): before the payment, the payment
//! request is withdrawn and checkout gives the stock back; once paid, the workflow's
//! decision is `Cancel` and its saga refunds and releases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use restate_sdk::serde::Json;

use super::orders::{self, parse_order_id};
use super::{App, AppError, AppResult};
use crate::db::User;
use crate::db::orders::OrderSummary;
use crate::domain::{OrderId, OrderStatus, PaymentState, Reason};
use crate::durable::ingress;
use crate::durable::workflow::CancelRequest;

/// How long a cancellation waits for the order to end cancelled.
const CANCEL_DEADLINE: Duration = Duration::from_secs(10);

/// The customer (or an admin) cancels an order that has not shipped: before it is paid
/// the payment request is withdrawn (the gateway's record decides against a payment
/// arriving at the same moment) and checkout gives the stock back; once paid, the
/// workflow's decision is `Cancel` (against an approval at the same moment, one wins)
/// and its saga refunds and releases. Later → 409 `too_late`; an order already cancelled
/// stays so (200).
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
pub async fn cancel(app: &App, user: &User, id: &str, reason: Option<&str>) -> AppResult<OrderId> {
    let summary = orders::visible(app, user, id).await?;
    let order_id = parse_order_id(&summary.order_id)?;
    let reason = reason_for(&summary, user, reason)?;
    let asked = AtomicBool::new(false);
    let (actor, asked_ref) = (user.username.as_str(), &asked);
    let cancelled = app
        .feed
        .wait_for(order_id.as_str(), CANCEL_DEADLINE, || async {
            let summary = app
                .db
                .order_summary(&order_id)
                .await?
                .ok_or_else(|| orders::unknown(&order_id))?;
            let done = next_step(app, &order_id, summary.status, &reason, actor, asked_ref).await?;
            Ok(done.then_some(()))
        });
    // Asked, but not over yet: the order is on its way to `cancelled`.
    if cancelled.await?.is_some() || asked.load(Ordering::SeqCst) {
        return Ok(order_id);
    }
    Err(AppError::unavailable(
        "cancel_pending",
        format!("order {order_id} is between steps; try again shortly"),
    ))
}

/// The reason the cancellation gives: the caller's, or who cancelled.
fn reason_for(summary: &OrderSummary, user: &User, reason: Option<&str>) -> AppResult<String> {
    Ok(match reason.map(str::trim) {
        None | Some("") if summary.user_id == user.username => {
            "cancelled by the customer".to_owned()
        }
        None | Some("") => "cancelled by the store".to_owned(),
        Some(text) => Reason::parse(text)
            .map_err(|e| AppError::invalid("invalid_reason", e))?
            .into(),
    })
}

/// Asks for the cancellation the order's status allows, once; `true` when the order is
/// cancelled already (by this request, or by an earlier one whose answer was lost:
/// cancelling again is the same outcome, and changes nothing).
async fn next_step(
    app: &App,
    order_id: &OrderId,
    status: OrderStatus,
    reason: &str,
    actor: &str,
    asked: &AtomicBool,
) -> AppResult<bool> {
    match status {
        OrderStatus::Cancelled => return Ok(true),
        OrderStatus::AwaitingApproval if !asked.load(Ordering::SeqCst) => {
            let workflow = app.restate.workflow(order_id.as_str());
            let request = CancelRequest {
                reason: Reason::parse(reason).map_err(AppError::internal)?,
            };
            let request = ingress::acting(workflow.cancel(Json(request)), actor);
            ingress::body(request.call().await)?;
            asked.store(true, Ordering::SeqCst);
        }
        OrderStatus::AwaitingPayment if !asked.load(Ordering::SeqCst) => {
            let withdrawn = withdraw(app, order_id, reason, actor).await?;
            asked.store(withdrawn, Ordering::SeqCst);
        }
        OrderStatus::AwaitingPayment | OrderStatus::AwaitingApproval => {}
        status if !asked.load(Ordering::SeqCst) => {
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
    Ok(false)
}

/// Withdraws an order's pending payment request and wakes its checkout, which then
/// gives the stock back. `false` when the payment is not pending (just paid: the order
/// is about to wait for approval; or being settled otherwise): look again. A payment
/// withdrawn already is withdrawn again, idempotently.
async fn withdraw(app: &App, order_id: &OrderId, reason: &str, actor: &str) -> AppResult<bool> {
    let Some(payment) = app.db.payment_by_order(order_id).await? else {
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
    app.db.record_actor(order_id, actor).await?;
    // Recorded: a retry wakes the checkout again if Restate cannot be told now, and the
    // checkout reads the withdrawal from the record when its timer ends at the latest.
    app.restate.reject_awakeable(awakeable, reason).await?;
    Ok(true)
}
