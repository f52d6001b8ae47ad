//! The wait for payment: the gateway's awakeable raced against the durable timeout and
//! a cancellation; the gateway's record decides how it ended, and checkout ends as it
//! did.

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::{BASKET, PaymentReceipt, UserSession, checkout_key};
use crate::clock::now_rfc3339;
use crate::db::orders::PaymentRequest;
use crate::domain::{OrderRecord, OrderStatus, PaymentState, Username};
use crate::durable::notify::Event;
use crate::durable::workflow::{OrderFulfillmentWorkflowClient, payment_given_back};
use crate::faults;

/// How the wait for payment ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// first; the gateway's record then decides (see `settle`).
    pub(super) async fn await_payment(
        &self,
        ctx: &ObjectContext<'_>,
        awakeable: impl restate_sdk::context::DurableFuture<
            Output = Result<Json<PaymentReceipt>, TerminalError>,
        >,
    ) -> Result<Payment, TerminalError> {
        let outcome = restate_sdk::select! {
            receipt = awakeable => match receipt {
                Ok(Json(receipt)) => Payment::Paid(receipt),
                Err(declined) => Payment::Failed(declined.message().to_owned()),
            },
            _ = ctx.sleep(self.payment_timeout) => Payment::TimedOut,
            on_cancel => Payment::Cancelled { reason: OPERATOR_CANCEL.into(), refund: false },
        };
        Ok(outcome)
    }

    /// The gateway's record decides how the payment ended: this handler claims it for
    /// what it saw (only if it is still pending: the timer's expiry, the receipt, the
    /// decline, the cancellation), then reads what won. A late callback that settled
    /// first beats the timer; a receipt the gateway did not record, or for another
    /// amount, pays for nothing; a payment captured before a cancellation is refunded.
    /// The same journaled step ends the checkout as the payment ended (`end`); then
    /// the basket goes and the workflow starts if it was paid.
    pub(super) async fn settle(
        &self,
        ctx: &ObjectContext<'_>,
        order: &mut OrderRecord,
        outcome: Payment,
    ) -> Result<(), TerminalError> {
        let claim = outcome.claim();
        let id = order.awakeable_id.clone().unwrap_or_default();
        let snapshot = order.clone();
        let payment = ctx
            .run(|| async move {
                let (state, txn, reason) = claim;
                self.db
                    .settle_payment(&id, state, txn.as_deref(), reason.as_deref())
                    .await?;
                faults::point("confirm_payment").await;
                let payment = match self.db.payment_by_awakeable(&id).await? {
                    Some(p) => outcome.settled_as(p),
                    None => outcome,
                };
                self.end(&ended(snapshot, &payment), &payment).await?;
                Ok(Json(payment))
            })
            .name("confirm_payment")
            .await?
            .into_inner();
        *order = ended(order.clone(), &payment);
        if let Payment::Paid(_) = payment {
            // Only the basket goes: the order records (dedup markers) stay.
            ctx.clear(BASKET);
            ctx.workflow_client::<OrderFulfillmentWorkflowClient>(order.order_id.to_string())
                .run(Json(order.clone()))
                .send();
        }
        ctx.set(&checkout_key(&order.order_id), Json(order.clone()));
        Ok(())
    }

    /// Records how the checkout ended: in the read model and the notification log; the
    /// stock back unless it was paid (a cancellation also gives back a payment captured
    /// all the same, both recorded as compensations); the user's checkout claim ended,
    /// so their cart is theirs again. Idempotent.
    async fn end(&self, order: &OrderRecord, payment: &Payment) -> Result<(), HandlerError> {
        let id = &order.order_id;
        let event = match payment {
            Payment::Paid(_) => Event::payment_confirmed(order),
            Payment::Failed(_) => Event::payment_failed(order),
            Payment::TimedOut => Event::payment_timed_out(order),
            Payment::Cancelled { refund, .. } => {
                self.give_back(order, *refund).await?;
                Event::cancelled(order)
            }
        };
        if matches!(payment, Payment::Failed(_) | Payment::TimedOut) {
            self.db.release_reservation(id, None).await?;
        }
        let user = Username::parse(&order.user_id).map_err(TerminalError::new)?;
        self.db.release_checkout(&user, id).await?;
        let (txn, reason) = (&order.transaction_id, &order.failure_reason);
        self.db
            .record_checkout(id, order.status, txn.as_deref(), reason.as_deref())
            .await?;
        event.write(&self.db).await?;
        Ok(())
    }

    /// A cancelled checkout gives back what it took: the stock, and the payment when
    /// it had been captured; both are recorded as the order's compensations.
    async fn give_back(&self, order: &OrderRecord, refund: bool) -> Result<(), HandlerError> {
        let (id, user) = (&order.order_id, &order.user_id);
        let why = order.failure_reason.as_deref().unwrap_or("cancelled");
        let mut undone = Vec::new();
        if refund {
            let (cents, voided) = self.db.give_back_payment(id, why).await?;
            let message = payment_given_back(id, cents, voided);
            Event::new(user, id.as_str(), "refund_payment", message)
                .with("amount_cents", cents)
                .write(&self.db)
                .await?;
            undone.push("refund_payment");
        }
        self.db.release_reservation(id, None).await?;
        undone.push("release_inventory");
        for name in undone {
            self.db
                .record_compensation(id, name, &now_rfc3339())
                .await?;
        }
        faults::point("give_back").await;
        Ok(())
    }
}

/// The order as its checkout ended with this payment.
fn ended(mut order: OrderRecord, payment: &Payment) -> OrderRecord {
    let (status, reason) = match payment {
        Payment::Paid(receipt) => {
            order.transaction_id = Some(receipt.transaction_id.clone());
            (OrderStatus::AwaitingApproval, None)
        }
        Payment::Failed(reason) => (OrderStatus::PaymentFailed, Some(reason.clone())),
        Payment::TimedOut => (
            OrderStatus::PaymentTimedOut,
            Some("no payment arrived in time".to_owned()),
        ),
        Payment::Cancelled { reason, .. } => (OrderStatus::Cancelled, Some(reason.clone())),
    };
    order.status = status;
    order.failure_reason = reason;
    order
}
