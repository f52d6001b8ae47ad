//! The simulated payment gateway's records: one payment request per order, settled
//! once; its refunds are in `refunds`.

use serde::{Deserialize, Serialize};

use super::refunds::{NewRefund, RefundAmount, RefundOutcome};
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::rows::from_row;
use crate::domain::OrderId;
use crate::domain::{OrderRecord, PaymentState, RefundKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub awakeable_id: String,
    pub state: PaymentState,
    pub transaction_id: Option<String>,
    pub reason: Option<String>,
}
from_row!(PaymentRequest {
    order_id,
    user_id,
    amount_cents,
    awakeable_id,
    state: String,
    transaction_id,
    reason
});

impl Db {
    /// Records a payment request with the simulated gateway; a second call for the same
    /// order changes nothing.
    pub async fn register_payment(
        &self,
        order: &OrderRecord,
        awakeable_id: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO payment_requests (order_id, user_id, amount_cents, awakeable_id, state,
                                           created_at, captured_cents)
             VALUES ($1, $2, $3, $4, 'pending', $5, 0) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.order_id.as_str())
        .bind(&order.user_id)
        .bind(order.total_cents.get())
        .bind(awakeable_id)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    const PAYMENT_COLUMNS: &str = "SELECT order_id, user_id, amount_cents, awakeable_id, state, transaction_id, reason FROM payment_requests";

    pub async fn payment_by_awakeable(
        &self,
        awakeable_id: &str,
    ) -> sqlx::Result<Option<PaymentRequest>> {
        sqlx::query_as(&format!(
            "{} WHERE awakeable_id = $1",
            Self::PAYMENT_COLUMNS
        ))
        .bind(awakeable_id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn payment_by_order(
        &self,
        order_id: &OrderId,
    ) -> sqlx::Result<Option<PaymentRequest>> {
        sqlx::query_as(&format!("{} WHERE order_id = $1", Self::PAYMENT_COLUMNS))
            .bind(order_id.as_str())
            .fetch_optional(self.pool())
            .await
    }

    /// Settles a pending payment; false when it was already settled (or timed out).
    /// This conditional update is the one arbiter between callbacks and the timeout.
    pub async fn settle_payment(
        &self,
        awakeable_id: &str,
        state: PaymentState,
        transaction_id: Option<&str>,
        reason: Option<&str>,
    ) -> sqlx::Result<bool> {
        Ok(sqlx::query(
            "UPDATE payment_requests SET state = $1, transaction_id = $2, reason = $3, settled_at = $4
             WHERE awakeable_id = $5 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(transaction_id)
        .bind(reason)
        .bind(now_rfc3339())
        .bind(awakeable_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Gives the order's money back (it did not ship, or not all of it): refunds what
    /// is left of what was captured and voids the authorization's rest, once each;
    /// answers the amounts this call refunded and voided.
    pub async fn give_back_payment(
        &self,
        order_id: &OrderId,
        reason: &str,
    ) -> sqlx::Result<(i64, i64)> {
        let refund_id = format!("{order_id}:order");
        let new = NewRefund {
            refund_id: &refund_id,
            order_id: order_id.as_str(),
            kind: RefundKind::Order,
            amount: RefundAmount::AtMost(i64::MAX),
            reason,
            actor: None,
        };
        let refunded = match self.refund(&new).await? {
            RefundOutcome::Made(refund) => refund.amount_cents,
            RefundOutcome::Exceeds { .. } | RefundOutcome::NothingToRefund => 0,
        };
        let voided = self.void_rest(order_id).await?;
        Ok((refunded, voided))
    }
}
