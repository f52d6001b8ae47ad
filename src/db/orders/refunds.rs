//! The gateway's refunds: one row each, their running sum on the payment request, and
//! never more than was captured. A refund is keyed by its id, so making it again (a
//! step run again after a crash, a request repeated with its idempotency key) changes
//! nothing and answers the first one.

use serde::{Deserialize, Serialize};

use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::rows::from_row;
use crate::domain::OrderId;
use crate::domain::RefundKind;

/// One refund as the order shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    pub refund_id: String,
    pub kind: RefundKind,
    pub amount_cents: i64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub created_at: String,
}
from_row!(Refund {
    refund_id,
    kind: String,
    amount_cents,
    reason,
    actor,
    created_at
});

impl TryFrom<String> for RefundKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RefundKind::parse(&s)
    }
}

/// How much a refund asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundAmount {
    /// Exactly this, or nothing when less is left.
    Exactly(i64),
    /// This, or what is left when that is less (a return after goodwill refunds).
    AtMost(i64),
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundOutcome {
    /// Made now or before (same id): the refund as recorded.
    Made(Refund),
    /// Less than asked is left of the captured payment (`Exactly`).
    Exceeds { left: i64 },
    /// Nothing was captured for the order, or nothing is left (`AtMost`).
    NothingToRefund,
}

/// A refund to make.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    pub refund_id: &'a str,
    pub order_id: &'a str,
    pub kind: RefundKind,
    pub amount: RefundAmount,
    pub reason: &'a str,
    pub actor: Option<&'a str>,
}

impl Db {
    /// Makes a refund against the order's captured payment, once per id.
    pub async fn refund(&self, new: &NewRefund<'_>) -> sqlx::Result<RefundOutcome> {
        let mut tx = self.begin_write().await?;
        if let Some(made) = refund_by_id(&mut tx, new.refund_id).await? {
            return Ok(RefundOutcome::Made(made));
        }
        let left: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(captured_cents, amount_cents) - COALESCE(refunded_cents, 0)
             FROM payment_requests WHERE order_id = $1 AND state = 'succeeded'",
        )
        .bind(new.order_id)
        .fetch_optional(&mut *tx)
        .await?;
        let left = left.unwrap_or(0);
        let amount = match new.amount {
            RefundAmount::Exactly(cents) if cents > left => {
                return Ok(RefundOutcome::Exceeds { left });
            }
            RefundAmount::Exactly(cents) => cents,
            RefundAmount::AtMost(cents) => cents.min(left),
        };
        if amount <= 0 {
            return Ok(RefundOutcome::NothingToRefund);
        }
        let now = now_rfc3339();
        sqlx::query(
            "UPDATE payment_requests SET refunded_cents = COALESCE(refunded_cents, 0) + $1,
                 refunded_at = $2 WHERE order_id = $3",
        )
        .bind(amount)
        .bind(&now)
        .bind(new.order_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refunds (refund_id, order_id, kind, amount_cents, reason, actor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new.refund_id)
        .bind(new.order_id)
        .bind(new.kind.as_str())
        .bind(amount)
        .bind(new.reason)
        .bind(new.actor)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let made = refund_by_id(&mut tx, new.refund_id).await?;
        tx.commit().await?;
        Ok(made.map_or(RefundOutcome::NothingToRefund, RefundOutcome::Made))
    }

    /// The refund recorded under `refund_id`, if any.
    pub async fn refund_by_id(&self, refund_id: &str) -> sqlx::Result<Option<Refund>> {
        let mut conn = self.pool().acquire().await?;
        refund_by_id(&mut conn, refund_id).await
    }

    /// The order's refunds, oldest first.
    pub async fn refunds_of_order(&self, order_id: &OrderId) -> sqlx::Result<Vec<Refund>> {
        sqlx::query_as(&format!(
            "{REFUND_COLUMNS} WHERE order_id = $1 ORDER BY created_at, refund_id"
        ))
        .bind(order_id.as_str())
        .fetch_all(self.pool())
        .await
    }
}

const REFUND_COLUMNS: &str =
    "SELECT refund_id, kind, amount_cents, reason, actor, created_at FROM refunds";

async fn refund_by_id(
    conn: &mut sqlx::AnyConnection,
    refund_id: &str,
) -> sqlx::Result<Option<Refund>> {
    sqlx::query_as(&format!("{REFUND_COLUMNS} WHERE refund_id = $1"))
        .bind(refund_id)
        .fetch_optional(conn)
        .await
}
