//! `ReturnWorkflow`: one run per return, keyed by its id. Waits for the store's
//! decision (a durable promise), issues the return label, waits for the parcel against
//! a durable timer (`SHOPFLOW_RETURN_PARCEL_WINDOW`), and on receipt refunds the
//! returned lines at the price paid and puts them back on sale, each exactly once.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::refusal;
use super::notify::Event;
use super::shipping::carrier_api;
use crate::clock::{format_duration, now_unix_ms, rfc3339};
use crate::db::Db;
use crate::db::orders::{
    NewRefund, RefundAmount, RefundOutcome, ReturnClaim, ReturnLabel, ReturnRecord,
};
use crate::domain::{CarrierMode, Cents, Reason, RefundKind, ReturnStatus};
use crate::faults;

/// The durable promise the store's decision resolves.
pub const DECISION: &str = "decision";
/// The durable promise the parcel's receipt resolves.
pub const PARCEL: &str = "parcel";

/// The store's one decision on a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ReturnDecision {
    Approve,
    Reject { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectReturn {
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReceiveParcel {
    /// Whether the goods go back on sale.
    pub restock: bool,
}

pub struct ReturnWorkflow {
    db: Db,
    parcel_window: Duration,
}

impl ReturnWorkflow {
    pub fn new(db: Db, parcel_window: Duration) -> Self {
        Self { db, parcel_window }
    }

    /// The return as recorded when it was asked for; tells the customer and the staff.
    async fn requested(&self, ctx: &WorkflowContext<'_>) -> Result<ReturnRecord, HandlerError> {
        let (rid, run) = (ctx.key().to_owned(), ctx.invocation_id().to_owned());
        let record = ctx
            .run(|| async move {
                let Some(r) = self.db.return_record(&rid).await? else {
                    return Err(TerminalError::new_with_code(
                        404,
                        "no return is known under this id",
                    )
                    .into());
                };
                self.db.record_return_invocation(&rid, &run, true).await?;
                faults::point("return_requested").await;
                let worth = Cents::new(r.worth_cents).unwrap_or_default();
                let items: u32 = r.items.iter().map(|l| l.quantity.get()).sum();
                let what = format!("{items} item(s) of order {}, worth {worth}", r.order_id);
                events(
                    &r,
                    "return_requested",
                    format!("Return {rid} requested: {what}"),
                )
                .write_all(
                    &self.db,
                    format!("Return {rid} from {} needs a decision: {what}", r.user_id),
                )
                .await?;
                Ok(Json(r))
            })
            .name("return_requested")
            .await?;
        Ok(record.into_inner())
    }

    /// Issues the label (from the simulated carrier, the same for the same return) and
    /// starts the parcel's window.
    async fn issue_label(
        &self,
        ctx: &WorkflowContext<'_>,
        r: &ReturnRecord,
    ) -> Result<(), HandlerError> {
        let window = self.parcel_window;
        ctx.run(|| async move {
            let rid = &r.return_id;
            let (carrier, tracking_number) =
                carrier_api(&format!("return:{rid}"), 1, CarrierMode::Normal)
                    .map_err(TerminalError::new)?;
            let label = ReturnLabel {
                carrier,
                tracking_number,
            };
            let due_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            let due = rfc3339(now_unix_ms().saturating_add(due_ms));
            self.db.approve_return(rid, &label, &due).await?;
            faults::point("return_label").await;
            let message = format!(
                "Return {rid} approved: send the parcel with {} (tracking {}) within {}",
                label.carrier,
                label.tracking_number,
                format_duration(window)
            );
            events(r, "return_approved", message.clone())
                .write_all(&self.db, message)
                .await?;
            Ok(())
        })
        .name("return_label")
        .await?;
        Ok(())
    }

    /// Ends the return in `status` (rejected or expired) and says so.
    async fn close(
        &self,
        ctx: &WorkflowContext<'_>,
        r: &ReturnRecord,
        status: ReturnStatus,
        why: String,
    ) -> Result<Json<ReturnStatus>, HandlerError> {
        let rid = r.return_id.clone();
        ctx.run(|| async move {
            if status == ReturnStatus::Rejected {
                self.db.reject_return(&rid).await?;
            }
            let kind = if status == ReturnStatus::Rejected {
                "return_rejected"
            } else {
                "return_expired"
            };
            let message = format!("Return {rid} {status}: {why}");
            events(r, kind, message.clone())
                .write_all(&self.db, message)
                .await?;
            Ok(())
        })
        .name(format!("return_{status}"))
        .await?;
        Ok(Json(status))
    }

    /// The parcel came back, in one journaled step: refunds the lines (never more
    /// than is left of the payment; the refund is keyed by the return, so the step run
    /// again finds the same one), puts the goods back on sale if asked, and ends the
    /// return `refunded`, telling the customer and the staff. Each part is idempotent.
    async fn take_back(
        &self,
        ctx: &WorkflowContext<'_>,
        r: &ReturnRecord,
        restock: bool,
    ) -> Result<Json<ReturnStatus>, HandlerError> {
        let rid = r.return_id.clone();
        ctx.run(|| async {
            let new = NewRefund {
                refund_id: &rid,
                order_id: &r.order_id,
                kind: RefundKind::Return,
                amount: RefundAmount::AtMost(r.worth_cents),
                reason: &format!("return {rid}: {}", r.reason),
                actor: None,
            };
            let refunded = match self.db.refund(&new).await? {
                RefundOutcome::Made(refund) => refund.amount_cents,
                RefundOutcome::Exceeds { .. } | RefundOutcome::NothingToRefund => 0,
            };
            faults::point("refund_return").await;
            if restock {
                self.db.restock_return(&rid).await?;
                faults::point("restock").await;
            }
            self.db.finish_return(&rid, refunded).await?;
            faults::point("return_refunded").await;
            let amount = Cents::new(refunded).unwrap_or_default();
            let back = if restock {
                "back on sale"
            } else {
                "not restocked"
            };
            let message = format!("Return {rid} received ({back}): {amount} refunded");
            let mut all = events(r, "return_refunded", message.clone());
            all.customer = all
                .customer
                .with("return_id", rid.as_str())
                .with("amount_cents", refunded)
                .with("restocked", restock);
            all.write_all(&self.db, message).await?;
            Ok(())
        })
        .name("refund_return")
        .await?;
        Ok(Json(ReturnStatus::Refunded))
    }

    /// Claims the return's one decision (as the invocation that asks, so the same on a
    /// step run again) and resolves the promise the workflow waits on.
    async fn decide(
        &self,
        ctx: &SharedWorkflowContext<'_>,
        decision: ReturnDecision,
    ) -> Result<(), HandlerError> {
        let (what, why) = match &decision {
            ReturnDecision::Approve => ("approved", None),
            ReturnDecision::Reject { reason } => ("rejected", Some(reason.clone())),
        };
        let (rid, by, actor) = (
            ctx.key().to_owned(),
            ctx.invocation_id().to_owned(),
            actor(ctx),
        );
        let claim = ctx
            .run(|| async move {
                let actor = actor.as_ref().map(|u| u.as_str());
                let db = &self.db;
                let claim = db
                    .claim_return_decision(&rid, what, &by, actor, why.as_deref())
                    .await?;
                db.record_return_invocation(&rid, &by, false).await?;
                faults::point("claim_return_decision").await;
                Ok(Json(claim))
            })
            .name(format!("claim_{what}"))
            .await?
            .into_inner();
        Self::claimed(claim, "not_requested").await?;
        ctx.resolve_promise(DECISION, Json(decision));
        Ok(())
    }

    /// Claims a decision or the receipt through `claim`, as the invocation that asked
    /// (the same on a step run again); refuses it with the return's status otherwise.
    async fn claimed(claim: ReturnClaim, wanted: &str) -> Result<(), HandlerError> {
        match claim {
            ReturnClaim::Won => Ok(()),
            ReturnClaim::Unknown => {
                Err(refusal(404, "unknown_return", "no return is known under this id").into())
            }
            ReturnClaim::Taken(ReturnStatus::Requested) if wanted == "not_requested" => {
                let why = "the return's decision was taken by another request";
                Err(refusal(409, wanted, why).into())
            }
            ReturnClaim::Taken(status) => {
                Err(refusal(409, wanted, format!("the return is {status}")).into())
            }
        }
    }
}

/// The customer's event, and the staff's with its own message.
struct Events {
    customer: Event,
    return_id: String,
}

fn events(r: &ReturnRecord, kind: &'static str, message: String) -> Events {
    Events {
        customer: Event::new(&r.user_id, &r.order_id, kind, message).keyed(&r.return_id),
        return_id: r.return_id.clone(),
    }
}

impl Events {
    async fn write_all(self, db: &Db, for_staff: String) -> sqlx::Result<()> {
        self.customer.write(db).await?;
        Event::for_staff(&self.customer.order_id, self.customer.kind, for_staff)
            .keyed(&self.return_id)
            .write(db)
            .await
    }
}

fn actor(ctx: &SharedWorkflowContext<'_>) -> Option<crate::domain::Username> {
    ctx.headers()
        .get(super::ACTOR_HEADER)
        .and_then(|v| crate::domain::Username::parse(v).ok())
}

#[restate_sdk::workflow]
impl ReturnWorkflow {
    /// Runs the return from the store's decision to its refund (or rejection, or
    /// expiry). The web role starts it once the return is recorded; it reads the
    /// return from the database, so a start through the ingress can do nothing else.
    #[handler(name = "Run")]
    async fn run(&self, ctx: WorkflowContext<'_>) -> Result<Json<ReturnStatus>, HandlerError> {
        let r = self.requested(&ctx).await?;
        let decision = ctx
            .promise::<Json<ReturnDecision>>(DECISION)
            .await?
            .into_inner();
        if let ReturnDecision::Reject { reason } = decision {
            return self.close(&ctx, &r, ReturnStatus::Rejected, reason).await;
        }
        self.issue_label(&ctx, &r).await?;
        let receipt = restate_sdk::select! {
            receipt = ctx.promise::<Json<ReceiveParcel>>(PARCEL) => Some(receipt?.into_inner()),
            timer = ctx.sleep(self.parcel_window) => { timer?; None },
        };
        let receipt = match receipt {
            Some(receipt) => receipt,
            None => {
                let rid = r.return_id.clone();
                let expired = ctx
                    .run(|| async move { Ok(self.db.expire_return(&rid).await?) })
                    .name("parcel_window_ended")
                    .await?;
                if expired {
                    let why = format!("no parcel within {}", format_duration(self.parcel_window));
                    return self.close(&ctx, &r, ReturnStatus::Expired, why).await;
                }
                // Received just as the window ended: the receipt won.
                ctx.promise::<Json<ReceiveParcel>>(PARCEL)
                    .await?
                    .into_inner()
            }
        };
        self.take_back(&ctx, &r, receipt.restock).await
    }

    /// The store approves the return: a label is issued and the parcel awaited.
    #[handler(name = "Approve")]
    async fn approve(&self, ctx: SharedWorkflowContext<'_>) -> Result<(), HandlerError> {
        self.decide(&ctx, ReturnDecision::Approve).await
    }

    /// The store rejects the return, saying why.
    #[handler(name = "Reject")]
    async fn reject(
        &self,
        ctx: SharedWorkflowContext<'_>,
        req: Json<RejectReturn>,
    ) -> Result<(), HandlerError> {
        let reason = req.into_inner().reason.into();
        self.decide(&ctx, ReturnDecision::Reject { reason }).await
    }

    /// The parcel arrived at the store; `restock` puts the goods back on sale.
    #[handler(name = "Receive")]
    async fn receive(
        &self,
        ctx: SharedWorkflowContext<'_>,
        req: Json<ReceiveParcel>,
    ) -> Result<(), HandlerError> {
        let receipt = req.into_inner();
        let (rid, by, actor) = (
            ctx.key().to_owned(),
            ctx.invocation_id().to_owned(),
            actor(&ctx),
        );
        let claim = ctx
            .run(|| async move {
                let actor = actor.as_ref().map(|u| u.as_str());
                let claim = self
                    .db
                    .claim_receipt(&rid, receipt.restock, &by, actor)
                    .await?;
                self.db.record_return_invocation(&rid, &by, false).await?;
                faults::point("claim_receipt").await;
                Ok(Json(claim))
            })
            .name("claim_receipt")
            .await?
            .into_inner();
        Self::claimed(claim, "not_awaiting_parcel").await?;
        ctx.resolve_promise(PARCEL, Json(receipt));
        Ok(())
    }
}
