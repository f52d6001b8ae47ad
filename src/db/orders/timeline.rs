//! An order's business history, from ShopFlow's own tables (the read model, the
//! gateway's and the carrier's records), so it outlives Restate's journal retention.

use serde::Serialize;

use crate::db::Db;

/// One event of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub at: String,
    /// The user who acted, or `system`.
    pub actor: String,
    /// `placed`, `paid`, `payment_failed`, `approved`, `rejected`, `cancelled`,
    /// `shipped`, `delivered`, `shipping_failed` or `refunded`.
    #[schema(value_type = String)]
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

const SYSTEM: &str = "system";

type OrderRow = (
    String,         // user_id
    String,         // status
    i64,            // total_cents
    String,         // created_at
    String,         // updated_at
    Option<String>, // decision
    Option<String>, // decided_at
    Option<String>, // decision_actor
    Option<String>, // failure_reason
);

type PaymentRow = (
    String,         // state
    i64,            // amount_cents
    Option<String>, // reason
    Option<String>, // settled_at
    Option<i64>,    // refunded_cents
    Option<String>, // refunded_at
);

impl Db {
    /// The order's events, oldest first; `None` for an unknown order.
    pub async fn timeline(&self, order_id: &str) -> sqlx::Result<Option<Vec<TimelineEvent>>> {
        let order: Option<OrderRow> = sqlx::query_as(
            "SELECT user_id, status, total_cents, created_at, updated_at, decision, decided_at,
                    decision_actor, failure_reason
             FROM orders WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(order) = order else {
            return Ok(None);
        };
        let payment: Option<PaymentRow> = sqlx::query_as(
            "SELECT state, amount_cents, reason, settled_at, refunded_cents, refunded_at
             FROM payment_requests WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.pool())
        .await?;
        let shipment: Option<(String, String, String)> = sqlx::query_as(
            "SELECT carrier, tracking_number, created_at FROM shipments WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.pool())
        .await?;
        let mut events = order_events(&order);
        events.extend(payment.map(payment_events).unwrap_or_default());
        if let Some((carrier, tracking, at)) = shipment {
            events.push(event(
                at,
                SYSTEM,
                "shipped",
                None,
                Some(format!("{carrier} {tracking}")),
            ));
        }
        events.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(Some(events))
    }
}

fn event(
    at: String,
    actor: &str,
    event: &'static str,
    amount_cents: Option<i64>,
    note: Option<String>,
) -> TimelineEvent {
    TimelineEvent {
        at,
        actor: actor.to_owned(),
        event,
        amount_cents,
        note,
    }
}

/// Placed, the decision, and how the order ended.
fn order_events(order: &OrderRow) -> Vec<TimelineEvent> {
    let (user, status, total, created, updated, decision, decided_at, actor, reason) = order;
    let mut events = vec![event(created.clone(), user, "placed", Some(*total), None)];
    let actor = actor.as_deref().unwrap_or(SYSTEM);
    let decided = match decision.as_deref() {
        Some("approved") => Some(("approved", None)),
        Some("rejected") => Some(("rejected", reason.clone())),
        Some("cancelled") => Some(("cancelled", reason.clone())),
        _ => None,
    };
    if let (Some((name, note)), Some(at)) = (decided, decided_at) {
        events.push(event(at.clone(), actor, name, None, note));
    }
    let ended = match status.as_str() {
        "delivered" => Some(("delivered", None)),
        "shipping_failed" => Some(("shipping_failed", reason.clone())),
        // Cancelled before any decision: withdrawn while it waited for its payment.
        "cancelled" if decision.is_none() => Some(("cancelled", reason.clone())),
        _ => None,
    };
    if let Some((name, note)) = ended {
        let by = if name == "cancelled" { actor } else { SYSTEM };
        events.push(event(updated.clone(), by, name, None, note));
    }
    events
}

/// Paid or not, and what was given back.
fn payment_events(payment: PaymentRow) -> Vec<TimelineEvent> {
    let (state, amount, reason, settled_at, refunded, refunded_at) = payment;
    let mut events = Vec::new();
    let Some(settled_at) = settled_at else {
        return events;
    };
    match state.as_str() {
        "succeeded" => events.push(event(settled_at, SYSTEM, "paid", Some(amount), None)),
        "failed" | "timed_out" => {
            events.push(event(settled_at, SYSTEM, "payment_failed", None, reason))
        }
        _ => {}
    }
    if let (Some(cents), Some(at)) = (refunded, refunded_at) {
        events.push(event(at, SYSTEM, "refunded", Some(cents), None));
    }
    events
}
