//! The wait for payment: the gateway's awakeable raced against the durable timeout and
//! a cancellation; the gateway's record decides how it ended, and checkout ends as it
//! did.

use restate_sdk::prelude::*;

use super::{BASKET, PaymentReceipt, UserSession, checkout_key};
use crate::clock::now_rfc3339;
use crate::db::orders::PaymentRequest;
use crate::domain::{OrderRecord, OrderStatus, PaymentState};
use crate::durable::notify::Event;
use crate::durable::workflow::{OrderFulfillmentWorkflowClient, payment_given_back};
use crate::faults;

/// How the wait for payment ended.
pub(super) enum Payment {
    Paid(PaymentReceipt),
    Failed(String),
    TimedOut,
    /// The customer withdrew the order, or an operator cancelled the checkout in
    /// Restate; `refund` when the payment had been captured all the same.
    Cancelled {
        reason: String,
        refund: bool,
    },
}

/// The reason an operator's cancellation of a checkout in Restate gives.
pub(super) const OPERATOR_CANCEL: &str = "cancelled by an operator in Restate";

/// Why a receipt the gateway's record does not hold pays for nothing.
const UNRECORDED: &str = "the payment gateway has no record of this payment";

/// What the gateway's record is claimed as: its state, transaction id and reason.
type Claim = (PaymentState, Option<String>, Option<String>);

impl Payment {
    /// The gateway record's settlement this outcome claims. A receipt claims nothing
    /// paid: only the gateway's own callback path records a payment as succeeded, so an
    /// awakeable completed by any other means (by hand through Restate's ingress, say)
    /// settles a still-pending record as failed, and no money moves for it.
    fn claim(&self) -> Claim {
        match self {
            Payment::Paid(_) => (PaymentState::Failed, None, Some(UNRECORDED.to_owned())),
            Payment::Failed(reason) => (PaymentState::Failed, None, Some(reason.clone())),
            Payment::TimedOut => (
                PaymentState::TimedOut,
                None,
                Some("payment timed out".into()),
            ),
            Payment::Cancelled { reason, .. } => {
                (PaymentState::Cancelled, None, Some(reason.clone()))
            }
        }
    }

    /// How the payment ended, as the gateway's record (which won any race) says.
    fn settled_as(self, p: PaymentRequest) -> Payment {
        let reason = p
            .reason
            .clone()
            .unwrap_or_else(|| "payment declined".into());
        match (p.state, self) {
            (PaymentState::Succeeded, Payment::Cancelled { reason, .. }) => Payment::Cancelled {
                reason,
                refund: true,
            },
            (PaymentState::Succeeded, _) => Payment::Paid(PaymentReceipt {
                transaction_id: p.transaction_id.unwrap_or_default(),
                amount_cents: p.amount_cents,
            }),
            (PaymentState::Failed, _) => Payment::Failed(reason),
            (PaymentState::Cancelled, _) => Payment::Cancelled {
                reason,
                refund: false,
            },
            (PaymentState::TimedOut | PaymentState::Pending, Payment::Paid(_)) => {
                Payment::Failed(UNRECORDED.into())
            }
            (PaymentState::TimedOut | PaymentState::Pending, _) => Payment::TimedOut,
        }
    }
}

impl UserSession {
    /// Waits for the payment gateway, the timeout or a cancellation, whichever comes
    /// first; the gateway's record then decides (see `confirm`).
    pub(super) async fn await_payment(
        &self,
        ctx: &ObjectContext<'_>,
        awakeable: impl restate_sdk::context::DurableFuture<
            Output = Result<Json<PaymentReceipt>, TerminalError>,
        >,
        awakeable_id: &str,
    ) -> Result<Payment, TerminalError> {
        let outcome = restate_sdk::select! {
            receipt = awakeable => match receipt {
                Ok(Json(receipt)) => Payment::Paid(receipt),
                Err(declined) => Payment::Failed(declined.message().to_owned()),
            },
            _ = ctx.sleep(self.payment_timeout) => Payment::TimedOut,
            on_cancel => Payment::Cancelled { reason: OPERATOR_CANCEL.into(), refund: false },
        };
        self.confirm(ctx, awakeable_id, outcome).await
    }

    /// The gateway's record decides how the payment ended: this handler claims it for
    /// what it saw (only if it is still pending: the timer's expiry, the receipt, the
    /// decline, the cancellation), then reads what won. A late callback that settled
    /// first beats the timer; a receipt the gateway did not record, or for another
    /// amount, pays for nothing; a payment captured before a cancellation is refunded.
    pub(super) async fn confirm(
        &self,
        ctx: &ObjectContext<'_>,
        awakeable_id: &str,
        outcome: Payment,
    ) -> Result<Payment, TerminalError> {
        let claim = outcome.claim();
        let id = awakeable_id.to_owned();
        let recorded = ctx
            .run(|| async move {
                let (state, txn, reason) = claim;
                self.db
                    .settle_payment(&id, state, txn.as_deref(), reason.as_deref())
                    .await?;
                faults::point("confirm_payment").await;
                Ok(Json(self.db.payment_by_awakeable(&id).await?))
            })
            .name("confirm_payment")
            .await?
            .into_inner();
        let Some(p) = recorded else {
            return Ok(outcome);
        };
        Ok(outcome.settled_as(p))
    }

    /// Ends the checkout as the payment ended: paid (the basket goes, the workflow
    /// starts), or failed or timed out (the stock goes back, the basket stays).
    pub(super) async fn settle(
        &self,
        ctx: &ObjectContext<'_>,
        order: &mut OrderRecord,
        payment: Payment,
    ) -> Result<(), HandlerError> {
        match payment {
            Payment::Paid(receipt) => {
                order.status = OrderStatus::AwaitingApproval;
                order.transaction_id = Some(receipt.transaction_id);
                self.record(ctx, order, vec![Event::payment_confirmed(order)], false)
                    .await?;
                // Only the basket goes: the order records (dedup markers) stay.
                ctx.clear(BASKET);
                ctx.workflow_client::<OrderFulfillmentWorkflowClient>(order.order_id.to_string())
                    .run(Json(order.clone()))
                    .send();
            }
            Payment::Failed(reason) => {
                order.status = OrderStatus::PaymentFailed;
                order.failure_reason = Some(reason);
                self.record(ctx, order, vec![Event::payment_failed(order)], true)
                    .await?;
            }
            Payment::TimedOut => {
                order.status = OrderStatus::PaymentTimedOut;
                order.failure_reason = Some("no payment arrived in time".into());
                self.record(ctx, order, vec![Event::payment_timed_out(order)], true)
                    .await?;
            }
            Payment::Cancelled { reason, refund } => {
                order.status = OrderStatus::Cancelled;
                order.failure_reason = Some(reason);
                self.cancelled(ctx, order, refund).await?;
            }
        }
        ctx.set(&checkout_key(&order.order_id), Json(order.clone()));
        Ok(())
    }

    /// A cancelled checkout gives back what it took: the stock, and the payment when
    /// it had been captured; both are recorded as the order's compensations.
    pub(super) async fn cancelled(
        &self,
        ctx: &ObjectContext<'_>,
        order: &OrderRecord,
        refund: bool,
    ) -> Result<(), HandlerError> {
        let (id, user) = (order.order_id.clone(), order.user_id.clone());
        let why = order
            .failure_reason
            .clone()
            .unwrap_or_else(|| "cancelled".into());
        ctx.run(|| async move {
            let mut undone = Vec::new();
            if refund {
                let (cents, voided) = self.db.give_back_payment(&id, &why).await?;
                let message = payment_given_back(&id, cents, voided);
                Event::new(&user, id.as_str(), "refund_payment", message)
                    .with("amount_cents", cents)
                    .write(&self.db)
                    .await?;
                undone.push("refund_payment");
            }
            self.db.release_reservation(&id, None).await?;
            undone.push("release_inventory");
            for name in undone {
                self.db
                    .record_compensation(&id, name, &now_rfc3339())
                    .await?;
            }
            faults::point("give_back").await;
            Ok(())
        })
        .name("give_back")
        .await?;
        self.record(ctx, order, vec![Event::cancelled(order)], false)
            .await
    }
}
