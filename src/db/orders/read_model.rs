//! The order read model the durable handlers keep current: one row per order with
//! its snapshot, status, checklist, decision and compensations; lists and counts.

use serde::{Deserialize, Serialize};

use crate::clock::now_rfc3339;
use crate::db::rows::from_row;
use crate::db::{Backend, Db};
use crate::domain::order::steps_for;
use crate::domain::{
    BasketLine, Cents, CompensationRun, OrderId, OrderStatus, Settlement, Step, Username,
};

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
    /// What the gateway captured (0 unless the payment succeeded).
    pub captured_cents: i64,
    /// The payment as the gateway's record has it: `pending`, `failed`, `timed_out`,
    /// `cancelled`, or once accepted `authorized`, `captured`, `voided`.
    pub payment_state: Option<String>,
    /// What the gateway gave back in all, and when last.
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
    payment_state: Option<String>,
    payment_cents: Option<i64>,
    captured_cents: Option<i64>,
    voided_cents: Option<i64>,
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
    payment_state,
    payment_cents,
    captured_cents,
    voided_cents,
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
        let settlement = Settlement {
            amount: r.payment_cents.unwrap_or(0),
            captured: r.captured_cents,
            voided: r.voided_cents.unwrap_or(0),
        };
        let (payment_state, captured_cents) = match r.payment_state.as_deref() {
            Some("succeeded") => (Some(settlement.state().to_owned()), settlement.captured()),
            other => (other.map(str::to_owned), 0),
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
            captured_cents,
            payment_state,
            refunded_cents: r.refunded_cents,
            refunded_at: r.refunded_at,
            shipment: r.carrier.zip(r.tracking_number),
            steps,
            failure_reason: r.failure_reason,
            compensations: serde_json::from_str(&r.compensations).map_err(json)?,
        })
    }
}

/// The invocations known to have worked on an order.
#[derive(Debug, Default)]
pub struct OrderInvocations {
    pub ids: Vec<String>,
    /// False for an order placed before its invocations recorded themselves (migration
    /// 0008): its workflow and shipping calls are then found by key.
    pub recorded: bool,
}

impl Db {
    /// Checkout's outcome in the read model: the status, and the payment's transaction
    /// id or the failure's reason.
    pub async fn record_checkout(
        &self,
        order_id: &OrderId,
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
        .bind(order_id.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The workflow's progress in the read model: status, checklist, failure reason.
    pub async fn record_progress(
        &self,
        order_id: &OrderId,
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
        .bind(order_id.as_str())
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
        order_id: &OrderId,
        decision: &str,
        by: &str,
        actor: Option<&str>,
    ) -> sqlx::Result<DecisionClaim> {
        let won = sqlx::query(
            "UPDATE orders SET decision = $1, decided_at = COALESCE(decided_at, $2), decided_by = $3,
                               decision_actor = $5
             WHERE order_id = $4 AND ((decision IS NULL AND status = 'awaiting_approval')
                                      OR (decided_by = $3 AND decision = $1))",
        )
        .bind(decision)
        .bind(now_rfc3339())
        .bind(by)
        .bind(order_id.as_str())
        .bind(actor)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        if won {
            return Ok(DecisionClaim::Won);
        }
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, decision FROM orders WHERE order_id = $1")
                .bind(order_id.as_str())
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

    /// Who withdrew an order before any decision (a cancel while it awaited payment).
    pub async fn record_actor(&self, order_id: &OrderId, actor: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE orders SET decision_actor = $1 WHERE order_id = $2 AND decision_actor IS NULL",
        )
        .bind(actor)
        .bind(order_id.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A compensation that ran; recorded once, however often a retry runs it.
    pub async fn record_compensation(
        &self,
        order_id: &OrderId,
        name: &str,
        ran_at: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO order_compensations (order_id, name, ran_at) VALUES ($1, $2, $3)
             ON CONFLICT (order_id, name) DO NOTHING",
        )
        .bind(order_id.as_str())
        .bind(name)
        .bind(ran_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `invocation_id` works on the order (once; idempotent).
    pub async fn record_invocation(
        &self,
        order_id: &OrderId,
        invocation_id: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO order_invocations (order_id, invocation_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(order_id.as_str())
        .bind(invocation_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every invocation known to have worked on the order: its checkout, the decision
    /// that won, and those that recorded themselves (the workflow, its shipping calls).
    pub async fn order_invocations(&self, order_id: &OrderId) -> sqlx::Result<OrderInvocations> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT invocation_id, 1 FROM order_invocations WHERE order_id = $1
             UNION SELECT checkout_invocation, 0 FROM orders WHERE order_id = $1 AND checkout_invocation IS NOT NULL
             UNION SELECT decided_by, 0 FROM orders WHERE order_id = $1 AND decided_by IS NOT NULL",
        )
        .bind(order_id.as_str())
        .fetch_all(self.pool())
        .await?;
        let recorded = rows.iter().any(|(_, recorded)| *recorded == 1);
        let mut ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        Ok(OrderInvocations { ids, recorded })
    }

    /// One order from the read model, in one query.
    pub async fn order_detail(&self, order_id: &OrderId) -> sqlx::Result<Option<OrderDetail>> {
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
                    p.state AS payment_state, p.amount_cents AS payment_cents,
                    p.captured_cents, p.voided_cents,
                    p.refunded_cents, p.refunded_at,
                    s.carrier, s.tracking_number, o.steps, o.failure_reason,
                    {compensations} AS compensations
             FROM orders o
             LEFT JOIN payment_requests p ON p.order_id = o.order_id
             LEFT JOIN shipments s ON s.order_id = o.order_id
             WHERE o.order_id = $1"
        ))
        .bind(order_id.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(OrderDetail::try_from).transpose()
    }

    pub async fn order_summary(&self, order_id: &OrderId) -> sqlx::Result<Option<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders WHERE order_id = $1",
        )
        .bind(order_id.as_str())
        .fetch_optional(self.pool())
        .await
    }

    pub async fn orders_of_user(&self, user_id: &Username) -> sqlx::Result<Vec<OrderSummary>> {
        sqlx::query_as(
            "SELECT order_id, user_id, status, total_cents, created_at FROM orders
             WHERE user_id = $1 ORDER BY created_at DESC, order_id",
        )
        .bind(user_id.as_str())
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
}
