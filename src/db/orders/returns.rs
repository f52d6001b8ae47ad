//! Returns: opened by the customer against what an order delivered (checked in one
//! write transaction, so two at once cannot both take the last unit), then moved on by
//! their `ReturnWorkflow`, every step a conditional update that a step run again after
//! a crash finds done.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stock::{never_arrived, restock_line};
use crate::clock::{now_rfc3339, parse_rfc3339};
use crate::db::Db;
use crate::db::rows::from_row;
use crate::domain::OrderId;
use crate::domain::{
    BasketLine, OrderStatus, ProductId, ReturnItem, ReturnLine, ReturnRefusal, ReturnStatus,
    price_return,
};

/// The carrier and tracking number the customer sends the parcel back with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReturnLabel {
    pub carrier: String,
    pub tracking_number: String,
}

/// A return as it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReturnRecord {
    pub return_id: String,
    pub order_id: String,
    pub user_id: String,
    pub status: ReturnStatus,
    pub items: Vec<ReturnLine>,
    /// What the lines cost when they were bought.
    pub worth_cents: i64,
    pub reason: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<ReturnLabel>,
    /// When the parcel's window ends, once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parcel_due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    /// What was refunded: 0 until the parcel is received.
    pub refund_cents: i64,
    /// The decision claimed (`approved` or `rejected`), which the workflow may still be
    /// carrying out.
    #[serde(skip)]
    pub decision: Option<String>,
    #[serde(skip)]
    pub decided_at: Option<String>,
    #[serde(skip)]
    pub decision_actor: Option<String>,
    #[serde(skip)]
    pub receipt_actor: Option<String>,
    #[serde(skip)]
    pub invocation_id: Option<String>,
}

struct ReturnRow {
    return_id: String,
    order_id: String,
    user_id: String,
    status: String,
    items: String,
    worth_cents: i64,
    reason: String,
    created_at: String,
    updated_at: String,
    label_carrier: Option<String>,
    label_tracking: Option<String>,
    parcel_due: Option<String>,
    reject_reason: Option<String>,
    received_at: Option<String>,
    restock: Option<i64>,
    refund_cents: Option<i64>,
    decision: Option<String>,
    decided_at: Option<String>,
    decision_actor: Option<String>,
    receipt_actor: Option<String>,
    invocation_id: Option<String>,
}
from_row!(ReturnRow {
    return_id,
    order_id,
    user_id,
    status,
    items,
    worth_cents,
    reason,
    created_at,
    updated_at,
    label_carrier,
    label_tracking,
    parcel_due,
    reject_reason,
    received_at,
    restock,
    refund_cents,
    decision,
    decided_at,
    decision_actor,
    receipt_actor,
    invocation_id,
});

const RETURN_COLUMNS: &str = "SELECT return_id, order_id, user_id, status, items, worth_cents,
    reason, created_at, updated_at, label_carrier, label_tracking, parcel_due, reject_reason,
    received_at, restock, refund_cents, decision, decided_at, decision_actor, receipt_actor,
    invocation_id FROM returns";

impl TryFrom<ReturnRow> for ReturnRecord {
    type Error = sqlx::Error;

    fn try_from(r: ReturnRow) -> sqlx::Result<ReturnRecord> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        Ok(ReturnRecord {
            status: ReturnStatus::parse(&r.status).map_err(decode)?,
            items: serde_json::from_str(&r.items).map_err(|e| decode(e.to_string()))?,
            label: r
                .label_carrier
                .zip(r.label_tracking)
                .map(|(c, t)| ReturnLabel {
                    carrier: c,
                    tracking_number: t,
                }),
            restock: r.restock.map(|r| r != 0),
            return_id: r.return_id,
            order_id: r.order_id,
            user_id: r.user_id,
            worth_cents: r.worth_cents,
            reason: r.reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            parcel_due: r.parcel_due,
            reject_reason: r.reject_reason,
            received_at: r.received_at,
            refund_cents: r.refund_cents.unwrap_or(0),
            decision: r.decision,
            decided_at: r.decided_at,
            decision_actor: r.decision_actor,
            receipt_actor: r.receipt_actor,
            invocation_id: r.invocation_id,
        })
    }
}

/// A return the customer asks for.
#[derive(Debug, Clone)]
pub struct NewReturn<'a> {
    pub return_id: &'a str,
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub items: &'a [ReturnItem],
    pub reason: &'a str,
    /// The client's idempotency key: a return asked for with it before is that return.
    pub key: Option<&'a str>,
    /// How long after delivery a return may be asked for.
    pub window: Duration,
}

/// What asking for a return came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// Opened now, or earlier under the same id for the same order.
    Opened(Box<ReturnRecord>),
    /// No such order of this user.
    UnknownOrder,
    NotDelivered(OrderStatus),
    /// Asked for later than the window allows after the delivery.
    WindowClosed {
        delivered_at: String,
    },
    Refused(ReturnRefusal),
    /// The idempotency key was used for another return of the order (other items or
    /// reason), or the return id by another order.
    KeyReused,
}

/// How a claim on a return (its decision, its parcel's receipt) fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnClaim {
    Won,
    Unknown,
    /// The return is not where the claim needs it: its status now.
    Taken(ReturnStatus),
}

type OrderFacts = (String, String, String, String); // user_id, status, items, updated_at

impl Db {
    /// Opens a return, checking the order, the window and the quantities left to return
    /// in one write transaction.
    pub async fn open_return(&self, new: &NewReturn<'_>) -> sqlx::Result<OpenOutcome> {
        let mut tx = self.begin_write().await?;
        let existing: Option<ReturnRow> = sqlx::query_as(&format!(
            "{RETURN_COLUMNS} WHERE return_id = $1 OR (order_id = $2 AND idempotency_key = $3)"
        ))
        .bind(new.return_id)
        .bind(new.order_id)
        .bind(new.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let record = ReturnRecord::try_from(row)?;
            return Ok(if same_request(&record, new) {
                OpenOutcome::Opened(Box::new(record))
            } else {
                OpenOutcome::KeyReused
            });
        }
        let order: Option<OrderFacts> = sqlx::query_as(
            "SELECT user_id, status, items, updated_at FROM orders WHERE order_id = $1",
        )
        .bind(new.order_id)
        .fetch_optional(&mut *tx)
        .await?;
        let delivered = match returnable(order, new)? {
            Ok(lines) => lines,
            Err(refused) => return Ok(refused),
        };
        let mut held = held_goods(&mut tx, new.order_id).await?;
        // What never arrived (a failed parcel's) cannot come back either.
        for (product, missing) in never_arrived(&mut tx, new.order_id, &delivered).await? {
            *held.entry(product).or_default() += missing;
        }
        let (lines, worth) = match price_return(&delivered, &held, new.items) {
            Ok(priced) => priced,
            Err(refusal) => return Ok(OpenOutcome::Refused(refusal)),
        };
        insert_return(&mut tx, new, &lines, worth.get()).await?;
        tx.commit().await?;
        let record = self.return_record(new.return_id).await?;
        Ok(record.map_or(OpenOutcome::UnknownOrder, |r| {
            OpenOutcome::Opened(Box::new(r))
        }))
    }

    pub async fn return_record(&self, return_id: &str) -> sqlx::Result<Option<ReturnRecord>> {
        let row: Option<ReturnRow> =
            sqlx::query_as(&format!("{RETURN_COLUMNS} WHERE return_id = $1"))
                .bind(return_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(ReturnRecord::try_from).transpose()
    }

    /// The order's returns, oldest first.
    pub async fn returns_of_order(&self, order_id: &OrderId) -> sqlx::Result<Vec<ReturnRecord>> {
        let rows: Vec<ReturnRow> = sqlx::query_as(&format!(
            "{RETURN_COLUMNS} WHERE order_id = $1 ORDER BY created_at, return_id"
        ))
        .bind(order_id.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ReturnRecord::try_from).collect()
    }

    /// Returns in `status` (every one without), oldest first, at most 500.
    pub async fn returns_with_status(
        &self,
        status: Option<ReturnStatus>,
    ) -> sqlx::Result<Vec<ReturnRecord>> {
        let rows: Vec<ReturnRow> = sqlx::query_as(&format!(
            "{RETURN_COLUMNS} WHERE ($1 = '' OR status = $1) ORDER BY created_at, return_id LIMIT 500"
        ))
        .bind(status.map_or("", ReturnStatus::as_str))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ReturnRecord::try_from).collect()
    }

    /// An invocation that worked on the return (its workflow, a decision, the receipt),
    /// listed with its order's for the durable-steps pane; `run` is the workflow's own.
    pub async fn record_return_invocation(
        &self,
        return_id: &str,
        invocation_id: &str,
        run: bool,
    ) -> sqlx::Result<()> {
        if run {
            sqlx::query("UPDATE returns SET invocation_id = $1 WHERE return_id = $2")
                .bind(invocation_id)
                .bind(return_id)
                .execute(self.pool())
                .await?;
        }
        sqlx::query(
            "INSERT INTO order_invocations (order_id, invocation_id)
             SELECT order_id, $1 FROM returns WHERE return_id = $2 ON CONFLICT DO NOTHING",
        )
        .bind(invocation_id)
        .bind(return_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims the return's one decision (`approved` or `rejected`) for invocation `by`:
    /// won again by the same invocation (its step run again), refused to any other.
    pub async fn claim_return_decision(
        &self,
        return_id: &str,
        decision: &str,
        by: &str,
        actor: Option<&str>,
        reject_reason: Option<&str>,
    ) -> sqlx::Result<ReturnClaim> {
        let won = sqlx::query(
            "UPDATE returns SET decision = $1, decided_by = $2, decided_at = $3,
                 decision_actor = $4, reject_reason = $5
             WHERE return_id = $6 AND status = 'requested'
               AND (decision IS NULL OR (decided_by = $2 AND decision = $1))",
        )
        .bind(decision)
        .bind(by)
        .bind(now_rfc3339())
        .bind(actor)
        .bind(reject_reason)
        .bind(return_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        self.claim_outcome(return_id, won).await
    }

    /// Claims the parcel's receipt for invocation `by`, against the window's end.
    pub async fn claim_receipt(
        &self,
        return_id: &str,
        restock: bool,
        by: &str,
        actor: Option<&str>,
    ) -> sqlx::Result<ReturnClaim> {
        let won = sqlx::query(
            "UPDATE returns SET received_at = $1, received_by = $2, receipt_actor = $3, restock = $4
             WHERE return_id = $5 AND status = 'awaiting_parcel'
               AND (received_by IS NULL OR (received_by = $2 AND restock = $4))",
        )
        .bind(now_rfc3339())
        .bind(by)
        .bind(actor)
        .bind(i64::from(restock))
        .bind(return_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        self.claim_outcome(return_id, won).await
    }

    async fn claim_outcome(&self, return_id: &str, won: u64) -> sqlx::Result<ReturnClaim> {
        if won == 1 {
            return Ok(ReturnClaim::Won);
        }
        Ok(match self.return_record(return_id).await? {
            None => ReturnClaim::Unknown,
            Some(r) => ReturnClaim::Taken(r.status),
        })
    }

    /// The return is approved: its label and the end of its parcel's window. Run again,
    /// it keeps the first label.
    pub async fn approve_return(
        &self,
        return_id: &str,
        label: &ReturnLabel,
        parcel_due: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE returns SET status = 'awaiting_parcel', label_carrier = $1, label_tracking = $2,
                 parcel_due = $3, updated_at = $4
             WHERE return_id = $5 AND status = 'requested'",
        )
        .bind(&label.carrier)
        .bind(&label.tracking_number)
        .bind(parcel_due)
        .bind(now_rfc3339())
        .bind(return_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The return ends `rejected`.
    pub async fn reject_return(&self, return_id: &str) -> sqlx::Result<()> {
        self.move_return(return_id, "requested", ReturnStatus::Rejected, None)
            .await
            .map(|_| ())
    }

    /// The parcel's window ended: `expired`, unless its receipt was claimed first
    /// (`false`: then the receipt goes on).
    pub async fn expire_return(&self, return_id: &str) -> sqlx::Result<bool> {
        let expired = sqlx::query(
            "UPDATE returns SET status = 'expired', updated_at = $1
             WHERE return_id = $2 AND status = 'awaiting_parcel' AND received_by IS NULL",
        )
        .bind(now_rfc3339())
        .bind(return_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        let record = self.return_record(return_id).await?;
        Ok(expired == 1 || record.is_some_and(|r| r.status == ReturnStatus::Expired))
    }

    /// The refund is made: the return ends `refunded` with what it gave back.
    pub async fn finish_return(&self, return_id: &str, refund_cents: i64) -> sqlx::Result<()> {
        self.move_return(
            return_id,
            "awaiting_parcel",
            ReturnStatus::Refunded,
            Some(refund_cents),
        )
        .await
        .map(|_| ())
    }

    async fn move_return(
        &self,
        return_id: &str,
        from: &str,
        to: ReturnStatus,
        refund_cents: Option<i64>,
    ) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "UPDATE returns SET status = $1, refund_cents = COALESCE($2, refund_cents), updated_at = $3
             WHERE return_id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(refund_cents)
        .bind(now_rfc3339())
        .bind(return_id)
        .bind(from)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Puts the returned goods back on sale, once: `false` when they already were (or
    /// the return is not to be restocked).
    pub async fn restock_return(&self, return_id: &str) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "UPDATE returns SET restocked_at = $1
             WHERE return_id = $2 AND restock = 1 AND restocked_at IS NULL RETURNING order_id, items",
        )
        .bind(now_rfc3339())
        .bind(return_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((order_id, items)) = row else {
            return Ok(false);
        };
        let mut lines: Vec<ReturnLine> =
            serde_json::from_str(&items).map_err(|e| sqlx::Error::Decode(e.into()))?;
        lines.sort_by_key(|l| l.product_id);
        for line in &lines {
            restock_line(&mut tx, &order_id, line).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// Whether a return recorded earlier is the one `new` asks for again.
fn same_request(record: &ReturnRecord, new: &NewReturn<'_>) -> bool {
    let mut asked: Vec<_> = new
        .items
        .iter()
        .map(|i| (i.product_id, i.quantity))
        .collect();
    let mut kept: Vec<_> = record
        .items
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    asked.sort();
    kept.sort();
    record.order_id == new.order_id
        && record.user_id == new.user_id
        && record.reason == new.reason
        && asked == kept
}

/// The order's delivered lines, if the customer may return some now.
fn returnable(
    order: Option<OrderFacts>,
    new: &NewReturn<'_>,
) -> sqlx::Result<Result<Vec<BasketLine>, OpenOutcome>> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    let Some((_, status, items, delivered_at)) = order.filter(|o| o.0 == new.user_id) else {
        return Ok(Err(OpenOutcome::UnknownOrder));
    };
    let status = OrderStatus::parse(&status).map_err(decode)?;
    if !matches!(
        status,
        OrderStatus::Delivered | OrderStatus::PartiallyDelivered
    ) {
        return Ok(Err(OpenOutcome::NotDelivered(status)));
    }
    // A delivered order changes no more: its last update is its delivery.
    let window_ms = i64::try_from(new.window.as_millis()).unwrap_or(i64::MAX);
    let closes = parse_rfc3339(&delivered_at).map(|at| at.saturating_add(window_ms));
    if closes.is_some_and(|closes| closes < crate::clock::now_unix_ms()) {
        return Ok(Err(OpenOutcome::WindowClosed { delivered_at }));
    }
    Ok(Ok(
        serde_json::from_str(&items).map_err(|e| decode(e.to_string()))?
    ))
}

async fn insert_return(
    conn: &mut sqlx::AnyConnection,
    new: &NewReturn<'_>,
    lines: &[ReturnLine],
    worth_cents: i64,
) -> sqlx::Result<()> {
    let items = serde_json::to_string(lines).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO returns (return_id, order_id, user_id, status, items, worth_cents,
                              reason, idempotency_key, created_at, updated_at)
         VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $8, $8)",
    )
    .bind(new.return_id)
    .bind(new.order_id)
    .bind(new.user_id)
    .bind(items)
    .bind(worth_cents)
    .bind(new.reason)
    .bind(new.key)
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(())
}

/// How many of each product the order's returns hold (open or refunded).
async fn held_goods(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
) -> sqlx::Result<BTreeMap<ProductId, u32>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT status, items FROM returns WHERE order_id = $1")
            .bind(order_id)
            .fetch_all(conn)
            .await?;
    let mut held = BTreeMap::new();
    for (status, items) in rows {
        let status = ReturnStatus::parse(&status).map_err(|e| sqlx::Error::Decode(e.into()))?;
        if !status.holds_goods() {
            continue;
        }
        let lines: Vec<ReturnLine> =
            serde_json::from_str(&items).map_err(|e| sqlx::Error::Decode(e.into()))?;
        for line in lines {
            *held.entry(line.product_id).or_default() += line.quantity.get();
        }
    }
    Ok(held)
}
