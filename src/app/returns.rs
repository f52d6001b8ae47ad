//! Returns: the customer asks for one against a delivered order (checked and recorded
//! in one transaction), its `ReturnWorkflow` runs it; the store approves (a label),
//! rejects, or receives the parcel (refund, restock). Each admin action first makes
//! sure the workflow runs (starting it again is a no-op), so a return recorded by a web
//! role that died before it started its workflow is not stranded.

use std::time::Duration;

use restate_sdk::serde::Json;

use super::orders::{self, parse_order_id};
use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::db::orders::{NewReturn, OpenOutcome, ReturnRecord};
use crate::domain::{Reason, ReturnId, ReturnItem, ReturnRefusal, ReturnStatus};
use crate::durable::ingress;
use crate::durable::returns::{ReceiveParcel, RejectReturn};

/// How long an admin's action waits for the workflow to take its step.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// A new return's id: random, so nobody can guess one to start its workflow first
/// (a client's idempotency key finds its return by the key).
fn new_return_id() -> ReturnId {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..16];
    ReturnId::parse(&format!("return-{suffix}")).expect("a valid return id")
}

/// The customer asks to send back `items` of their delivered order `id`.
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
pub async fn request(
    app: &App,
    user: &User,
    id: &str,
    items: &[ReturnItem],
    reason: &str,
    key: Option<&str>,
) -> AppResult<ReturnRecord> {
    let order_id = parse_order_id(id)?;
    let reason = Reason::parse(reason).map_err(|e| AppError::invalid("invalid_reason", e))?;
    let return_id = new_return_id();
    let new = NewReturn {
        return_id: return_id.as_str(),
        order_id: order_id.as_str(),
        user_id: user.username.as_str(),
        items,
        reason: reason.as_str(),
        key,
        window: app.return_window,
    };
    let record = match app.db.open_return(&new).await? {
        OpenOutcome::Opened(record) => *record,
        OpenOutcome::UnknownOrder => return Err(orders::unknown(&order_id)),
        OpenOutcome::NotDelivered(status) => {
            let why = format!("order {order_id} is {status}; only a delivered order is returned");
            return Err(AppError::conflict("not_delivered", why));
        }
        OpenOutcome::WindowClosed { delivered_at } => {
            let why = format!(
                "order {order_id} was delivered at {delivered_at}; returns close after {}",
                crate::clock::format_duration(app.return_window)
            );
            return Err(AppError::conflict("return_window_closed", why));
        }
        OpenOutcome::Refused(refusal @ ReturnRefusal::TooMany { .. }) => {
            return Err(AppError::conflict("too_many", refusal.to_string()));
        }
        OpenOutcome::Refused(refusal) => {
            return Err(AppError::invalid("invalid_items", refusal.to_string()));
        }
        OpenOutcome::KeyReused => {
            let why = "this Idempotency-Key was used for another return of this order";
            return Err(AppError::conflict("idempotency_key_reused", why));
        }
    };
    // Recorded, so not lost: when Restate cannot start its workflow now, the store's
    // first action on it does (a retry without a key would ask for a second return).
    if let Err(e) = start(app, &record.return_id).await {
        tracing::warn!(r#return = record.return_id, error = %e, "return recorded, its workflow not started yet");
    }
    Ok(record)
}

/// Starts the return's workflow; a workflow already started is left as it is.
async fn start(app: &App, return_id: &str) -> AppResult<()> {
    match app.restate.return_workflow(return_id).run().send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(ingress::CallError::from(e).into()),
    }
}

/// A return an admin may act on, by id.
async fn known(app: &App, user: &User, id: &str) -> AppResult<ReturnRecord> {
    require_admin(user)?;
    let rid = ReturnId::parse(id).map_err(|e| AppError::invalid("invalid_return_id", e))?;
    app.db
        .return_record(rid.as_str())
        .await?
        .ok_or_else(|| AppError::not_found("unknown_return", format!("no return {rid}")))
}

fn not_in(record: &ReturnRecord, code: &'static str, wanted: ReturnStatus) -> AppError {
    let why = format!(
        "return {} is {}, not {wanted}",
        record.return_id, record.status
    );
    AppError::conflict(code, why)
}

/// The admin approves a requested return: its label is issued and the parcel awaited.
#[tracing::instrument(skip_all, fields(user = %user.username, r#return = id))]
pub async fn approve(app: &App, user: &User, id: &str) -> AppResult<ReturnRecord> {
    let record = known(app, user, id).await?;
    if deciding(&record, "approved")? {
        start(app, &record.return_id).await?;
        let workflow = app.restate.return_workflow(&record.return_id);
        let request = ingress::acting(workflow.approve(), user.username.as_str());
        ingress::body(request.call().await)?;
    }
    settled(app, &record, ReturnStatus::Requested).await
}

/// The admin rejects a requested return, saying why.
#[tracing::instrument(skip_all, fields(user = %user.username, r#return = id))]
pub async fn reject(app: &App, user: &User, id: &str, reason: &str) -> AppResult<ReturnRecord> {
    let record = known(app, user, id).await?;
    let reason = Reason::parse(reason).map_err(|e| AppError::invalid("invalid_reason", e))?;
    if deciding(&record, "rejected")? {
        start(app, &record.return_id).await?;
        let workflow = app.restate.return_workflow(&record.return_id);
        let request = workflow.reject(Json(RejectReturn { reason }));
        ingress::body(
            ingress::acting(request, user.username.as_str())
                .call()
                .await,
        )?;
    }
    settled(app, &record, ReturnStatus::Requested).await
}

/// Whether the decision `what` is still to be asked for: `false` when it was claimed
/// already (an earlier request whose answer was lost; the workflow is carrying it out);
/// 409 `not_requested` when the return is decided otherwise or past its decision.
fn deciding(record: &ReturnRecord, what: &str) -> AppResult<bool> {
    match (record.status, record.decision.as_deref()) {
        (ReturnStatus::Requested, None) => Ok(true),
        (ReturnStatus::Requested, Some(taken)) if taken == what => Ok(false),
        (ReturnStatus::Requested, Some(taken)) => {
            let why = format!("return {} is being {taken}", record.return_id);
            Err(AppError::conflict("not_requested", why))
        }
        _ => Err(not_in(record, "not_requested", ReturnStatus::Requested)),
    }
}

/// The admin receives the return's parcel: its lines are refunded, and the goods put
/// back on sale when `restock`. Received already (an earlier request whose answer was
/// lost), the same receipt is answered once its refund is done.
#[tracing::instrument(skip_all, fields(user = %user.username, r#return = id))]
pub async fn receive(app: &App, user: &User, id: &str, restock: bool) -> AppResult<ReturnRecord> {
    let record = known(app, user, id).await?;
    let wanted = ReturnStatus::AwaitingParcel;
    let claimed = record.received_at.is_some();
    if record.status != wanted || (claimed && record.restock != Some(restock)) {
        return Err(not_in(&record, "not_awaiting_parcel", wanted));
    }
    if !claimed {
        let workflow = app.restate.return_workflow(&record.return_id);
        let request = workflow.receive(Json(ReceiveParcel { restock }));
        ingress::body(
            ingress::acting(request, user.username.as_str())
                .call()
                .await,
        )?;
    }
    settled(app, &record, wanted).await
}

/// The return once its workflow has moved it on from `from` (the answer of an admin's
/// action); 503 when that takes longer than a moment.
async fn settled(app: &App, record: &ReturnRecord, from: ReturnStatus) -> AppResult<ReturnRecord> {
    let rid = &record.return_id;
    let moved = app
        .feed
        .wait_for(&record.order_id, STEP_DEADLINE, || async {
            Ok(app
                .db
                .return_record(rid)
                .await?
                .filter(|r| r.status != from))
        });
    moved.await?.ok_or_else(|| {
        let why = format!("return {rid} is between steps; look again shortly");
        AppError::unavailable("return_pending", why)
    })
}

/// Admin: the returns in `status` (every one when absent), oldest first.
pub async fn list(app: &App, user: &User, status: Option<&str>) -> AppResult<Vec<ReturnRecord>> {
    require_admin(user)?;
    let status = status
        .map(ReturnStatus::parse)
        .transpose()
        .map_err(|e| AppError::invalid("invalid_status", e))?;
    Ok(app.db.returns_with_status(status).await?)
}
