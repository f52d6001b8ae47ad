//! What the order lifecycle stores in SQLite: the order index, stock reservations,
//! the simulated payment gateway and carrier, and the notification log. Every write is
//! idempotent (keyed by order or event id, guarded by state), because the Restate
//! handlers that make them may run a step again after a crash.

use serde::{Deserialize, Serialize};

use super::rows::from_row;
use super::{Backend, Db};
use crate::clock::now_rfc3339;
use crate::domain::order::steps_for;
use crate::domain::{
    BasketLine, CarrierMode, Cents, CompensationRun, OrderRecord, OrderStatus, PaymentState, Step,
};

/// The PostgreSQL advisory lock that orders the notification log's writers.
const NOTIFICATION_LOCK: i64 = 0x5348_4f50_4e4f_5446; // "SHOPNOTF"

/// Why stock could not be reserved for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    Reserved,
    OutOfStock {
        sku: String,
        available: i64,
        wanted: u32,
    },
    /// The order id is already used by another user.
    OrderIdTaken,
}

/// Totals for monitoring: orders per status, payment requests per state,
/// compensations per step, and how many orders ran any (saga runs).
#[derive(Debug)]
pub struct Totals {
    pub orders: Vec<(OrderStatus, i64)>,
    pub payments: Vec<(String, i64)>,
    pub compensations: Vec<(String, i64)>,
    pub saga_runs: i64,
}

/// How a decision on an order fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionClaim {
    /// This decision is the order's one decision.
    Won,
    /// There is no such order.
    Unknown,
    /// The order is not waiting for one (any more): its status, and the decision that
    /// came first, if one did.
    Taken {
        status: OrderStatus,
        decision: Option<String>,
    },
}

/// An order as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderSummary {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub created_at: String,
}
from_row!(OrderSummary {
    order_id,
    user_id,
    status: String,
    total_cents,
    created_at
});

/// One order as the read model holds it: the checkout's snapshot, the payment, the
/// shipment, the workflow's checklist and the compensations that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDetail {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub total_cents: Cents,
    pub created_at: String,
    pub shipping_address: String,
    pub items: Vec<BasketLine>,
    pub awakeable_id: Option<String>,
    pub transaction_id: Option<String>,
    /// What the gateway gave back, and when, for an order that did not ship.
    pub refunded_cents: Option<i64>,
    pub refunded_at: Option<String>,
    /// Carrier and tracking number, once a shipment was booked.
    pub shipment: Option<(String, String)>,
    pub steps: Vec<Step>,
    pub failure_reason: Option<String>,
    pub compensations: Vec<CompensationRun>,
}

struct OrderDetailRow {
    order_id: String,
    user_id: String,
    status: String,
    total_cents: i64,
    created_at: String,
    shipping_address: String,
    items: String,
    awakeable_id: Option<String>,
    transaction_id: Option<String>,
    refunded_cents: Option<i64>,
    refunded_at: Option<String>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    steps: Option<String>,
    failure_reason: Option<String>,
    compensations: String,
}
from_row!(OrderDetailRow {
    order_id,
    user_id,
    status,
    total_cents,
    created_at,
    shipping_address,
    items,
    awakeable_id,
    transaction_id,
    refunded_cents,
    refunded_at,
    carrier,
    tracking_number,
    steps,
    failure_reason,
    compensations,
});

impl TryFrom<OrderDetailRow> for OrderDetail {
    type Error = sqlx::Error;

    fn try_from(r: OrderDetailRow) -> sqlx::Result<OrderDetail> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        let json = |e: serde_json::Error| decode(e.to_string());
        let status = OrderStatus::parse(&r.status).map_err(decode)?;
        let steps = match r.steps {
            Some(steps) => serde_json::from_str(&steps).map_err(json)?,
            None => steps_for(status),
        };
        Ok(OrderDetail {
            order_id: r.order_id,
            user_id: r.user_id,
            status,
            total_cents: Cents::new(r.total_cents)
                .ok_or_else(|| decode(format!("negative total {}", r.total_cents)))?,
            created_at: r.created_at,
            shipping_address: r.shipping_address,
            items: serde_json::from_str(&r.items).map_err(json)?,
            awakeable_id: r.awakeable_id,
            transaction_id: r.transaction_id,
            refunded_cents: r.refunded_cents,
            refunded_at: r.refunded_at,
            shipment: r.carrier.zip(r.tracking_number),
            steps,
            failure_reason: r.failure_reason,
            compensations: serde_json::from_str(&r.compensations).map_err(json)?,
        })
    }
}

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

/// The invocations known to have worked on an order.
#[derive(Debug, Default)]
pub struct OrderInvocations {
    pub ids: Vec<String>,
    /// False for an order placed before its invocations recorded themselves (migration
    /// 0008): its workflow and shipping calls are then found by key.
    pub recorded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub order_id: String,
    pub carrier: String,
    pub tracking_number: String,
    pub state: String,
}
from_row!(Shipment {
    order_id,
    carrier,
    tracking_number,
    state
});

/// An entry of the notification log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub user_id: String,
    pub order_id: Option<String>,
    pub kind: String,
    pub message: String,
    pub created_at: String,
}
from_row!(Notification {
    id,
    user_id,
    order_id,
    kind,
    message,
    created_at
});

impl Db {
    /// Claims the order id for its user and reserves stock for every line, all in one
    /// transaction: either everything is reserved or nothing is. Run again for the same
    /// order it changes nothing and answers `Reserved`.
    pub async fn reserve_order(
        &self,
        order: &OrderRecord,
        invocation_id: &str,
    ) -> sqlx::Result<ReserveOutcome> {
        let mut tx = self.begin_write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM orders WHERE order_id = $1")
                .bind(order.order_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some(owner) if owner == order.user_id => return Ok(ReserveOutcome::Reserved),
            Some(_) => return Ok(ReserveOutcome::OrderIdTaken),
            None => {}
        }
        for line in &order.items {
            let qty = i64::from(line.quantity.get());
            let taken = sqlx::query(
                "UPDATE products SET stock_qty = stock_qty - $1 WHERE id = $2 AND stock_qty >= $1",
            )
            .bind(qty)
            .bind(line.product_id.get())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                let available: i64 =
                    sqlx::query_scalar("SELECT stock_qty FROM products WHERE id = $1")
                        .bind(line.product_id.get())
                        .fetch_optional(&mut *tx)
                        .await?
                        .unwrap_or(0);
                tx.rollback().await?;
                return Ok(ReserveOutcome::OutOfStock {
                    sku: line.sku.clone(),
                    available,
                    wanted: line.quantity.get(),
                });
            }
            sqlx::query(
                "INSERT INTO stock_reservations (order_id, product_id, quantity, state) VALUES ($1, $2, $3, 'reserved')",
            )
            .bind(order.order_id.as_str())
            .bind(line.product_id.get())
            .bind(qty)
            .execute(&mut *tx)
            .await?;
        }
        let items = serde_json::to_string(&order.items)
            .map_err(|e| sqlx::Error::Encode(e.to_string().into()))?;
        sqlx::query(
            "INSERT INTO orders (order_id, user_id, status, total_cents, created_at, updated_at,
                                 shipping_address, items, checkout_invocation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(order.order_id.as_str())
        .bind(&order.user_id)
        .bind(order.status.as_str())
        .bind(order.total_cents.get())
        .bind(&order.created_at)
        .bind(&order.created_at)
        .bind(order.shipping_address.as_str())
        .bind(items)
        .bind(invocation_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO order_invocations (order_id, invocation_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(order.order_id.as_str())
        .bind(invocation_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReserveOutcome::Reserved)
    }

    /// Gives reserved stock back. Idempotent: only rows still `reserved` are released,
    /// and claiming them first (`RETURNING`) lets one of two racing releases win.
    pub async fn release_reservation(&self, order_id: &str) -> sqlx::Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut released: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE stock_reservations SET state = 'released'
             WHERE order_id = $1 AND state = 'reserved' RETURNING product_id, quantity",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        released.sort();
        for (product_id, quantity) in &released {
            sqlx::query("UPDATE products SET stock_qty = stock_qty + $1 WHERE id = $2")
                .bind(quantity)
                .bind(product_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    /// Turns the reservation into a sale: the stock stays taken for good.
    pub async fn sell_reservation(&self, order_id: &str) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "UPDATE stock_reservations SET state = 'sold' WHERE order_id = $1 AND state = 'reserved'",
        )
        .bind(order_id)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Checkout's outcome in the read model: the status, and the payment's transaction
    /// id or the failure's reason.
    pub async fn record_checkout(
        &self,
        order_id: &str,
        status: OrderStatus,
        transaction_id: Option<&str>,
        failure_reason: Option<&str>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE orders SET status = $1, transaction_id = COALESCE($2, transaction_id),
                               failure_reason = $3, updated_at = $4
             WHERE order_id = $5",
        )
        .bind(status.as_str())
        .bind(transaction_id)
        .bind(failure_reason)
        .bind(now_rfc3339())
        .bind(order_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The workflow's progress in the read model: status, checklist, failure reason.
    pub async fn record_progress(
        &self,
        order_id: &str,
        status: OrderStatus,
        steps: &[Step],
        failure_reason: Option<&str>,
    ) -> sqlx::Result<()> {
        let steps =
            serde_json::to_string(steps).map_err(|e| sqlx::Error::Encode(e.to_string().into()))?;
        sqlx::query(
            "UPDATE orders SET status = $1, steps = $2, failure_reason = $3, updated_at = $4
             WHERE order_id = $5",
        )
        .bind(status.as_str())
        .bind(steps)
        .bind(failure_reason)
        .bind(now_rfc3339())
        .bind(order_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims the order's one decision (`approved`, `rejected`, `cancelled`) for the
    /// invocation `by`: only an order waiting for approval and not decided yet takes it.
    /// Of racing decisions exactly one wins this conditional update; the winner asking
    /// again (its step re-run after a crash) wins again.
    pub async fn claim_decision(
        &self,
        order_id: &str,
        decision: &str,
        by: &str,
    ) -> sqlx::Result<DecisionClaim> {
        let won = sqlx::query(
            "UPDATE orders SET decision = $1, decided_at = COALESCE(decided_at, $2), decided_by = $3
             WHERE order_id = $4 AND ((decision IS NULL AND status = 'awaiting_approval')
                                      OR (decided_by = $3 AND decision = $1))",
        )
        .bind(decision)
        .bind(now_rfc3339())
        .bind(by)
        .bind(order_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        if won {
            return Ok(DecisionClaim::Won);
        }
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, decision FROM orders WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            None => DecisionClaim::Unknown,
            Some((status, decision)) => DecisionClaim::Taken {
                status: OrderStatus::parse(&status).map_err(|e| sqlx::Error::Decode(e.into()))?,
                decision,
            },
        })
    }

    /// Refunds the order's captured payment at the gateway, once; returns the amount
    /// refunded (0 when nothing was captured).
    pub async fn refund_payment(&self, order_id: &str) -> sqlx::Result<i64> {
        sqlx::query(
            "UPDATE payment_requests SET refunded_cents = amount_cents, refunded_at = $1
             WHERE order_id = $2 AND state = 'succeeded' AND refunded_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(order_id)
        .execute(self.pool())
        .await?;
        let refunded: Option<Option<i64>> =
            sqlx::query_scalar("SELECT refunded_cents FROM payment_requests WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(refunded.flatten().unwrap_or(0))
    }

    /// Claims the user's one checkout under way for `order_id`: taken when the user has
    /// none, when theirs is this order already, or when theirs is older than `stale_before`
    /// and never reached the payment gateway. Returns the order that holds the claim.
    pub async fn claim_checkout(
        &self,
        user_id: &str,
        order_id: &str,
        stale_before: &str,
    ) -> sqlx::Result<String> {
        sqlx::query(
            "INSERT INTO checkout_claims (user_id, order_id, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET order_id = excluded.order_id,
                                                 claimed_at = excluded.claimed_at
             WHERE checkout_claims.order_id = excluded.order_id
                OR (checkout_claims.claimed_at < $4 AND NOT EXISTS (
                        SELECT 1 FROM orders o WHERE o.order_id = checkout_claims.order_id
                        AND o.status = 'awaiting_payment'))",
        )
        .bind(user_id)
        .bind(order_id)
        .bind(now_rfc3339())
        .bind(stale_before)
        .execute(self.pool())
        .await?;
        sqlx::query_scalar("SELECT order_id FROM checkout_claims WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.pool())
            .await
    }

    /// Records that `invocation_id` works on the order (once; idempotent).
    pub async fn record_invocation(&self, order_id: &str, invocation_id: &str) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO order_invocations (order_id, invocation_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(order_id)
        .bind(invocation_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every invocation known to have worked on the order: its checkout, the decision
    /// that won, and those that recorded themselves (the workflow, its shipping calls).
    pub async fn order_invocations(&self, order_id: &str) -> sqlx::Result<OrderInvocations> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT invocation_id, 1 FROM order_invocations WHERE order_id = $1
             UNION SELECT checkout_invocation, 0 FROM orders WHERE order_id = $1 AND checkout_invocation IS NOT NULL
             UNION SELECT decided_by, 0 FROM orders WHERE order_id = $1 AND decided_by IS NOT NULL",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await?;
        let recorded = rows.iter().any(|(_, recorded)| *recorded == 1);
        let mut ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        Ok(OrderInvocations { ids, recorded })
    }

    /// The order the user's checkout claim names, if any.
    pub async fn checkout_claim(&self, user_id: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT order_id FROM checkout_claims WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await
    }

    /// Ends the user's checkout claim for `order_id` (a claim of another order stays).
    pub async fn release_checkout(&self, user_id: &str, order_id: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM checkout_claims WHERE user_id = $1 AND order_id = $2")
            .bind(user_id)
            .bind(order_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A compensation that ran; recorded once, however often a retry runs it.
    pub async fn record_compensation(
        &self,
        order_id: &str,
        name: &str,
        ran_at: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO order_compensations (order_id, name, ran_at) VALUES ($1, $2, $3)
             ON CONFLICT (order_id, name) DO NOTHING",
        )
        .bind(order_id)
        .bind(name)
        .bind(ran_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One order from the read model, in one query.
    pub async fn order_detail(&self, order_id: &str) -> sqlx::Result<Option<OrderDetail>> {
        // The compensations as one JSON array: [{"name", "ran_at"}], oldest first.
        let compensations = match self.backend() {
            Backend::Sqlite => {
                "(SELECT json_group_array(json_object('name', c.name, 'ran_at', c.ran_at))
                  FROM (SELECT name, ran_at FROM order_compensations
                        WHERE order_id = o.order_id ORDER BY seq) AS c)"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(json_build_object('name', c.name, 'ran_at', c.ran_at)
                                           ORDER BY c.seq), '[]')::text
                  FROM order_compensations c WHERE c.order_id = o.order_id)"
            }
        };
        let row: Option<OrderDetailRow> = sqlx::query_as(&format!(
            "SELECT o.order_id, o.user_id, o.status, o.total_cents, o.created_at,
                    o.shipping_address, o.items, p.awakeable_id, o.transaction_id,
                    p.refunded_cents, p.refunded_at,
                    s.carrier, s.tracking_number, o.steps, o.failure_reason,
                    {compensations} AS compensations
             FROM orders o
             LEFT JOIN payment_requests p ON p.order_id = o.order_id
             LEFT JOIN shipments s ON s.order_id = o.order_id
             WHERE o.order_id = $1"
        ))
        .bind(order_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(OrderDetail::try_from).transpose()
    }

    pub async fn order_summary(&self, order_id: &str) -> sqlx::Result<Option<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn orders_of_user(&self, user_id: &str) -> sqlx::Result<Vec<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders
             WHERE user_id = $1 ORDER BY created_at DESC, order_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn orders_with_status(&self, status: OrderStatus) -> sqlx::Result<Vec<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders
             WHERE status = $1 ORDER BY created_at, order_id",
        )
        .bind(status.as_str())
        .fetch_all(self.pool())
        .await
    }

    /// The approval queue: orders waiting for a decision nobody has taken yet (a taken
    /// decision is recorded before the workflow moves the order on).
    pub async fn awaiting_decision(&self) -> sqlx::Result<Vec<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders
             WHERE status = 'awaiting_approval' AND decision IS NULL
             ORDER BY created_at, order_id",
        )
        .fetch_all(self.pool())
        .await
    }

    /// How many orders are in each status: one user's, or everyone's.
    pub async fn status_counts(
        &self,
        user_id: Option<&str>,
    ) -> sqlx::Result<Vec<(OrderStatus, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM orders WHERE $1 IS NULL OR user_id = $1
             GROUP BY status",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(status, n)| {
                let status =
                    OrderStatus::parse(&status).map_err(|e| sqlx::Error::Decode(e.into()))?;
                Ok((status, n))
            })
            .collect()
    }

    /// Monitoring totals from the read model (what `/metrics` reports).
    pub async fn totals(&self) -> sqlx::Result<Totals> {
        let counts = |sql| sqlx::query_as::<_, (String, i64)>(sql).fetch_all(self.pool());
        Ok(Totals {
            orders: self.status_counts(None).await?,
            payments: counts("SELECT state, COUNT(*) FROM payment_requests GROUP BY state").await?,
            compensations: counts("SELECT name, COUNT(*) FROM order_compensations GROUP BY name")
                .await?,
            saga_runs: sqlx::query_scalar(
                "SELECT COUNT(DISTINCT order_id) FROM order_compensations",
            )
            .fetch_one(self.pool())
            .await?,
        })
    }

    /// Users with an order that is still under way.
    pub async fn users_with_open_orders(&self) -> sqlx::Result<Vec<String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT DISTINCT user_id, status FROM orders")
                .fetch_all(self.pool())
                .await?;
        let mut users: Vec<String> = rows
            .into_iter()
            .filter(|(_, status)| OrderStatus::parse(status).is_ok_and(|s| !s.is_final()))
            .map(|(user, _)| user)
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// The user's order that is waiting for payment, if any: their cart is locked.
    pub async fn pending_checkout(&self, user_id: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT order_id FROM orders WHERE user_id = $1 AND status = 'awaiting_payment' LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Records a payment request with the simulated gateway; a second call for the same
    /// order changes nothing.
    pub async fn register_payment(
        &self,
        order: &OrderRecord,
        awakeable_id: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO payment_requests (order_id, user_id, amount_cents, awakeable_id, state, created_at)
             VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (order_id) DO NOTHING",
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

    pub async fn payment_by_order(&self, order_id: &str) -> sqlx::Result<Option<PaymentRequest>> {
        sqlx::query_as(&format!("{} WHERE order_id = $1", Self::PAYMENT_COLUMNS))
            .bind(order_id)
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

    /// Puts a settlement back when it could not be delivered to Restate.
    pub async fn unsettle_payment(&self, awakeable_id: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE payment_requests SET state = 'pending', transaction_id = NULL, reason = NULL, settled_at = NULL
             WHERE awakeable_id = $1",
        )
        .bind(awakeable_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The carrier an order meets, fixed at its first booking attempt: what the order id
    /// asks for, else the admin's carrier drill while it has orders left (taking one),
    /// else a normal one.
    pub async fn carrier_mode(&self, order_id: &str) -> sqlx::Result<CarrierMode> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        let mut tx = self.begin_write().await?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT mode FROM carrier_order_modes WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(mode) = known {
            tx.commit().await?;
            return CarrierMode::parse(&mode).map_err(decode);
        }
        let mode = match CarrierMode::of_order_id(order_id) {
            Some(mode) => mode,
            None => {
                let drill: Option<String> = sqlx::query_scalar(
                    "UPDATE carrier_drill SET remaining = remaining - 1
                     WHERE id = 1 AND remaining > 0 RETURNING mode",
                )
                .fetch_optional(&mut *tx)
                .await?;
                match drill {
                    Some(mode) => CarrierMode::parse(&mode).map_err(decode)?,
                    None => CarrierMode::Normal,
                }
            }
        };
        sqlx::query("INSERT INTO carrier_order_modes (order_id, mode) VALUES ($1, $2)")
            .bind(order_id)
            .bind(mode.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(mode)
    }

    /// Sets the carrier drill: the next `orders` orders meet a carrier in `mode`
    /// (`Normal` or 0 orders ends the drill).
    pub async fn set_carrier_drill(&self, mode: CarrierMode, orders: i64) -> sqlx::Result<()> {
        if mode == CarrierMode::Normal || orders <= 0 {
            sqlx::query("DELETE FROM carrier_drill")
                .execute(self.pool())
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO carrier_drill (id, mode, remaining) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET mode = $1, remaining = $2",
        )
        .bind(mode.as_str())
        .bind(orders)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The carrier drill under way: its mode and how many orders it has left.
    pub async fn carrier_drill(&self) -> sqlx::Result<Option<(CarrierMode, i64)>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT mode, remaining FROM carrier_drill WHERE id = 1 AND remaining > 0",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|(mode, n)| {
            CarrierMode::parse(&mode)
                .map(|m| (m, n))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .transpose()
    }

    /// Records a booked shipment; a second booking for the order returns the first.
    pub async fn book_shipment(
        &self,
        order_id: &str,
        carrier: &str,
        tracking: &str,
    ) -> sqlx::Result<Shipment> {
        sqlx::query(
            "INSERT INTO shipments (order_id, carrier, tracking_number, state, created_at)
             VALUES ($1, $2, $3, 'booked', $4) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(carrier)
        .bind(tracking)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        self.shipment(order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub async fn shipment(&self, order_id: &str) -> sqlx::Result<Option<Shipment>> {
        sqlx::query_as(
            "SELECT order_id, carrier, tracking_number, state FROM shipments WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Cancels a booked shipment; idempotent.
    pub async fn cancel_shipment(&self, order_id: &str) -> sqlx::Result<bool> {
        Ok(sqlx::query(
            "UPDATE shipments SET state = 'cancelled', cancelled_at = $1 WHERE order_id = $2 AND state = 'booked'",
        )
        .bind(now_rfc3339())
        .bind(order_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Appends to the notification log once per `event_id`.
    pub async fn notify(
        &self,
        event_id: &str,
        user_id: &str,
        order_id: Option<&str>,
        kind: &str,
        message: &str,
    ) -> sqlx::Result<()> {
        let insert = sqlx::query(
            "INSERT INTO notifications (event_id, user_id, order_id, kind, message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(user_id)
        .bind(order_id)
        .bind(kind)
        .bind(message)
        .bind(now_rfc3339());
        if self.backend() == Backend::Sqlite {
            // SQLite's single writer already makes ids visible in order.
            insert.execute(self.pool()).await?;
            return Ok(());
        }
        // One writer at a time, so ids become visible in order to the tails.
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(NOTIFICATION_LOCK)
            .execute(&mut *tx)
            .await?;
        insert.execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Every user's notifications after `after_id`, oldest first: the shared tail.
    pub async fn notifications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<Notification>> {
        sqlx::query_as(
            "SELECT id, user_id, order_id, kind, message, created_at FROM notifications
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    pub async fn last_notification_id(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM notifications")
            .fetch_one(self.pool())
            .await
    }

    /// The user's newest `limit` notifications, oldest first.
    pub async fn recent_notifications(
        &self,
        user_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<Notification>> {
        let mut newest: Vec<Notification> = sqlx::query_as(
            "SELECT id, user_id, order_id, kind, message, created_at FROM notifications
             WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        newest.reverse();
        Ok(newest)
    }

    /// The user's notifications after `after_id`, oldest first.
    pub async fn notifications(
        &self,
        user_id: &str,
        after_id: i64,
    ) -> sqlx::Result<Vec<Notification>> {
        sqlx::query_as(
            "SELECT id, user_id, order_id, kind, message, created_at FROM notifications
             WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT 500",
        )
        .bind(user_id)
        .bind(after_id)
        .fetch_all(self.pool())
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BasketLine, Cents, OrderId, ProductId, Quantity, ShippingAddress};

    async fn db() -> (tempfile::TempDir, Db) {
        crate::db::test_db().await
    }

    fn order(id: &str, user: &str, lines: &[(i64, i64)]) -> OrderRecord {
        OrderRecord {
            order_id: OrderId::parse(id).unwrap(),
            user_id: user.into(),
            items: lines
                .iter()
                .map(|&(p, q)| BasketLine {
                    product_id: ProductId::new(p).unwrap(),
                    sku: format!("P{p:03}"),
                    name: String::new(),
                    unit_price_cents: Cents::new(100).unwrap(),
                    quantity: Quantity::new(q).unwrap(),
                })
                .collect(),
            total_cents: Cents::new(100).unwrap(),
            shipping_address: ShippingAddress::parse("x").unwrap(),
            created_at: now_rfc3339(),
            status: OrderStatus::AwaitingPayment,
            awakeable_id: None,
            transaction_id: None,
            failure_reason: None,
        }
    }

    async fn stock(db: &Db, id: i64) -> i64 {
        sqlx::query_scalar("SELECT stock_qty FROM products WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_read_model_holds_the_whole_order_in_one_row() {
        let (_d, db) = db().await;
        let o = order("o-read", "alice", &[(1, 2)]);
        db.reserve_order(&o, "inv_1").await.unwrap();
        db.register_payment(&o, "sign_1").await.unwrap();
        let d = db.order_detail("o-read").await.unwrap().unwrap();
        assert_eq!(
            (d.status, d.user_id.as_str()),
            (OrderStatus::AwaitingPayment, "alice")
        );
        assert_eq!(
            (d.items, d.shipping_address.as_str()),
            (o.items.clone(), "x")
        );
        assert_eq!(d.awakeable_id.as_deref(), Some("sign_1"));
        assert_eq!(
            d.steps,
            steps_for(OrderStatus::AwaitingPayment),
            "derived until the workflow runs"
        );
        assert!(d.compensations.is_empty() && d.shipment.is_none());

        db.record_checkout("o-read", OrderStatus::AwaitingApproval, Some("txn-1"), None)
            .await
            .unwrap();
        let mut steps = steps_for(OrderStatus::ShippingFailed);
        steps[0].at = Some("2026-01-01T00:00:00.000Z".into());
        db.book_shipment("o-read", "UPS", "1Z1").await.unwrap();
        db.record_progress("o-read", OrderStatus::ShippingFailed, &steps, Some("lost"))
            .await
            .unwrap();
        for name in ["cancel_shipment", "release_inventory", "cancel_shipment"] {
            db.record_compensation("o-read", name, "2026-01-01T00:00:01.000Z")
                .await
                .unwrap();
        }
        let d = db.order_detail("o-read").await.unwrap().unwrap();
        assert_eq!(d.status, OrderStatus::ShippingFailed);
        assert_eq!(d.transaction_id.as_deref(), Some("txn-1"));
        assert_eq!(d.failure_reason.as_deref(), Some("lost"));
        assert_eq!(d.steps, steps);
        assert_eq!(d.shipment, Some(("UPS".into(), "1Z1".into())));
        let names: Vec<_> = d.compensations.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["cancel_shipment", "release_inventory"],
            "in order, once each"
        );
        assert!(db.order_detail("o-none").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reservations_are_all_or_nothing_and_idempotent() {
        let (_d, db) = db().await;
        let (s1, s7) = (stock(&db, 1).await, stock(&db, 7).await);
        // Line 2 cannot be covered: nothing is taken, not even line 1.
        let greedy = order("o1", "alice", &[(1, 2), (7, s7 + 1)]);
        assert!(matches!(
            db.reserve_order(&greedy, "inv_1").await.unwrap(),
            ReserveOutcome::OutOfStock { .. }
        ));
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1, s7));
        assert!(db.order_summary("o1").await.unwrap().is_none());

        let ok = order("o2", "alice", &[(1, 2), (7, 1)]);
        assert_eq!(
            db.reserve_order(&ok, "inv_1").await.unwrap(),
            ReserveOutcome::Reserved
        );
        assert_eq!(
            db.reserve_order(&ok, "inv_1").await.unwrap(),
            ReserveOutcome::Reserved
        );
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1 - 2, s7 - 1));
        assert_eq!(
            db.reserve_order(&order("o2", "bob", &[(1, 1)]), "inv_1")
                .await
                .unwrap(),
            ReserveOutcome::OrderIdTaken
        );

        assert_eq!(db.release_reservation("o2").await.unwrap(), 2);
        assert_eq!(db.release_reservation("o2").await.unwrap(), 0);
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1, s7));
    }

    #[tokio::test]
    async fn a_decision_is_claimed_once_and_again_by_its_claimer() {
        let (_d, db) = db().await;
        let o = order("o-decide", "alice", &[(1, 1)]);
        db.reserve_order(&o, "inv_1").await.unwrap();
        db.register_payment(&o, "sign_1").await.unwrap();
        let early = db.claim_decision("o-decide", "approved", "inv_a").await;
        assert!(
            matches!(early.unwrap(), DecisionClaim::Taken { .. }),
            "not waiting yet"
        );
        db.record_progress("o-decide", OrderStatus::AwaitingApproval, &[], None)
            .await
            .unwrap();
        let claim = |what, by| db.claim_decision("o-decide", what, by);
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        // Its step run again after a crash: still the winner.
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        assert!(matches!(
            claim("rejected", "inv_b").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
        assert!(matches!(
            claim("approved", "inv_b").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
        db.record_progress("o-decide", OrderStatus::Shipping, &[], None)
            .await
            .unwrap();
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        assert!(matches!(
            claim("rejected", "inv_a").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
    }

    /// Many checkouts racing for the same scarce products, each in another order of
    /// lines, then every release twice at once: never oversold, never given back twice,
    /// no deadlock (on PostgreSQL the rows would otherwise lock in clashing orders).
    #[tokio::test]
    async fn racing_reservations_and_releases_conserve_stock() {
        let (_d, db) = db().await;
        let (scarce, other) = (7, 6); // 3 and 12 in stock
        let before = (stock(&db, scarce).await, stock(&db, other).await);
        let tries: Vec<_> = (0..12)
            .map(|i| {
                let db = db.clone();
                let lines = if i % 2 == 0 {
                    [(scarce, 1), (other, 1)]
                } else {
                    [(other, 1), (scarce, 1)]
                };
                let o = order(&format!("race-{i}"), "alice", &lines);
                tokio::spawn(async move { db.reserve_order(&o, "inv").await.unwrap() })
            })
            .collect();
        let mut reserved = 0;
        for t in tries {
            reserved += i64::from(t.await.unwrap() == ReserveOutcome::Reserved);
        }
        assert_eq!(reserved, before.0, "exactly the scarce stock was sold");
        assert_eq!(stock(&db, scarce).await, 0);
        assert_eq!(stock(&db, other).await, before.1 - reserved);

        let releases: Vec<_> = (0..12)
            .flat_map(|i| [i, i])
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move { db.release_reservation(&format!("race-{i}")).await })
            })
            .collect();
        let mut released = 0;
        for r in releases {
            released += r.await.unwrap().unwrap();
        }
        assert_eq!(released, 2 * reserved as u64, "two lines per order, once");
        assert_eq!((stock(&db, scarce).await, stock(&db, other).await), before);
    }

    /// Writers racing: every notification lands once, and a reader tailing by id while
    /// they write never skips one (ids become visible in order).
    #[tokio::test]
    async fn a_tail_by_id_misses_no_notification_written_concurrently() {
        let (_d, db) = db().await;
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for n in 0..25 {
                        let event = format!("e-{w}-{n}");
                        db.notify(&event, "alice", None, "k", "m").await.unwrap();
                        db.notify(&event, "alice", None, "k", "m").await.unwrap();
                    }
                })
            })
            .collect();
        let (mut seen, mut last) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen.len() < 200 {
            assert!(std::time::Instant::now() < deadline, "saw {}", seen.len());
            for n in db.notifications_after(last, 50).await.unwrap() {
                last = n.id;
                seen.push(n.id);
            }
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        let all: Vec<i64> = db
            .notifications_after(0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(seen, all, "the tail saw every row, in order, once");
    }

    #[tokio::test]
    async fn a_sale_keeps_the_stock_taken() {
        let (_d, db) = db().await;
        let s1 = stock(&db, 1).await;
        db.reserve_order(&order("o3", "alice", &[(1, 3)]), "inv_1")
            .await
            .unwrap();
        assert_eq!(db.sell_reservation("o3").await.unwrap(), 1);
        assert_eq!(
            db.release_reservation("o3").await.unwrap(),
            0,
            "a sold reservation is not released"
        );
        assert_eq!(stock(&db, 1).await, s1 - 3);
    }

    #[tokio::test]
    async fn payments_settle_once() {
        let (_d, db) = db().await;
        let o = order("o4", "alice", &[(1, 1)]);
        db.register_payment(&o, "sign_1").await.unwrap();
        db.register_payment(&o, "sign_2").await.unwrap();
        let p = db.payment_by_order("o4").await.unwrap().unwrap();
        assert_eq!(
            (p.awakeable_id.as_str(), p.state.as_str()),
            ("sign_1", "pending")
        );
        assert!(
            db.settle_payment("sign_1", PaymentState::Succeeded, Some("t1"), None)
                .await
                .unwrap()
        );
        assert!(
            !db.settle_payment("sign_1", PaymentState::Failed, None, Some("late"))
                .await
                .unwrap()
        );
        assert_eq!(
            db.payment_by_awakeable("sign_1")
                .await
                .unwrap()
                .unwrap()
                .transaction_id
                .as_deref(),
            Some("t1")
        );
    }

    #[tokio::test]
    async fn shipments_and_notifications_are_idempotent() {
        let (_d, db) = db().await;
        let first = db.book_shipment("o5", "FedEx", "T1").await.unwrap();
        let again = db.book_shipment("o5", "UPS", "T2").await.unwrap();
        assert_eq!(first, again);
        assert!(db.cancel_shipment("o5").await.unwrap());
        assert!(!db.cancel_shipment("o5").await.unwrap());
        db.notify("e1", "alice", Some("o5"), "shipped", "Shipped")
            .await
            .unwrap();
        db.notify("e1", "alice", Some("o5"), "shipped", "Shipped")
            .await
            .unwrap();
        assert_eq!(db.notifications("alice", 0).await.unwrap().len(), 1);
    }
}
