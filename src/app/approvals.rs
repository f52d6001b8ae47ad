//! The admin's decisions on an order: approve (it ships) or reject with a reason (the
//! saga gives back what was taken). The workflow's decision handlers resolve its
//! durable promise once; this checks the caller and the order.

use std::time::Duration;

use super::orders::{self, parse_order_id};
use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::domain::{OrderId, OrderStatus, PaymentState, Reason};
use crate::durable::ingress;
use crate::durable::workflow::RejectRequest;
use restate_sdk::serde::Json;

/// How long a decision on a just-paid order waits for checkout to record the payment.
const PAYMENT_RECORD_DEADLINE: Duration = Duration::from_secs(10);

/// The admin approves an order that waits for approval.
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
pub async fn approve(app: &App, user: &User, id: &str) -> AppResult<OrderId> {
    require_admin(user)?;
    let order_id = decidable(app, id).await?;
    let workflow = app.restate.workflow(order_id.as_str());
    let request = ingress::acting(workflow.approve(), user.username.as_str());
    ingress::body(request.call().await)?;
    Ok(order_id)
}

/// The admin rejects an order that waits for approval, optionally saying why.
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
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
    let request = ingress::acting(workflow.reject(Json(request)), user.username.as_str());
    ingress::body(request.call().await)?;
    Ok(order_id)
}

/// The order, if it waits for a decision. One paid a moment ago may not have been
/// recorded as waiting yet: that is waited out on the live feed.
async fn decidable(app: &App, id: &str) -> AppResult<OrderId> {
    let order_id = parse_order_id(id)?;
    let (id, oid) = (order_id.as_str(), &order_id);
    let waiting = app.feed.wait_for(id, PAYMENT_RECORD_DEADLINE, || async {
        let summary = app
            .db
            .order_summary(oid)
            .await?
            .ok_or_else(|| orders::unknown(oid))?;
        if summary.status == OrderStatus::AwaitingApproval {
            return Ok(Some(()));
        }
        let just_paid = summary.status == OrderStatus::AwaitingPayment
            && app
                .db
                .payment_by_order(oid)
                .await?
                .is_some_and(|p| p.state == PaymentState::Succeeded);
        if !just_paid {
            let why = format!("order {oid} is {}", summary.status);
            return Err(AppError::conflict("not_awaiting_approval", why));
        }
        Ok(None)
    });
    match waiting.await? {
        Some(()) => Ok(order_id),
        None => Err(AppError::unavailable(
            "payment_not_recorded",
            format!("the payment of order {order_id} is not recorded yet; try again shortly"),
        )),
    }
}
