//! An order's business history, from ShopFlow's own tables (the read model, the
//! gateway's and the carrier's records, returns and refunds), so it outlives Restate's
//! journal retention.

use serde::Serialize;

use super::{Refund, ReturnRecord};
use crate::db::Db;
use crate::domain::OrderId;
use crate::domain::{RefundKind, ReturnStatus};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Placed,
    Paid,
    PaymentFailed,
    Approved,
    Rejected,
    Cancelled,
    Shipped,
    Delivered,
    ShippingFailed,
    /// What was captured, given back when the order did not arrive after all.
    Refunded,
    ReturnRequested,
    ReturnApproved,
    ReturnRejected,
    ReturnReceived,
    ReturnExpired,
    ReturnRefunded,
    GoodwillRefund,
}

/// One event of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    pub at: String,
    /// The user who acted, or `system`.
    pub actor: String,
    pub event: TimelineKind,
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
);

impl Db {
    /// The order's events, oldest first; `None` for an unknown order.
    pub async fn timeline(&self, order_id: &OrderId) -> sqlx::Result<Option<Vec<TimelineEvent>>> {
        let order: Option<OrderRow> = sqlx::query_as(
            "SELECT user_id, status, total_cents, created_at, updated_at, decision, decided_at,
                    decision_actor, failure_reason
             FROM orders WHERE order_id = $1",
        )
        .bind(order_id.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(order) = order else {
            return Ok(None);
        };
        let payment: Option<PaymentRow> = sqlx::query_as(
            "SELECT state, amount_cents, reason, settled_at FROM payment_requests WHERE order_id = $1",
        )
        .bind(order_id.as_str())
        .fetch_optional(self.pool())
        .await?;
        // The order's shipment, or each of its parcels' (keyed by their shipment ids).
        let shipments: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT s.carrier, s.tracking_number, s.created_at, p.location FROM shipments s
             LEFT JOIN parcels p ON p.shipment_id = s.order_id
             WHERE s.order_id = $1 OR s.order_id IN (SELECT shipment_id FROM parcels WHERE order_id = $1)
             ORDER BY s.created_at, s.order_id",
        )
        .bind(order_id.as_str())
        .fetch_all(self.pool())
        .await?;
        let split = shipments.len() > 1;
        let mut events = order_events(&order);
        events.extend(payment.map(payment_events).unwrap_or_default());
        for (carrier, tracking, at, location) in shipments {
            let note = match location.filter(|_| split) {
                Some(from) => format!("{carrier} {tracking}, the parcel from {from}"),
                None => format!("{carrier} {tracking}"),
            };
            events.push(event(at, SYSTEM, TimelineKind::Shipped, None, Some(note)));
        }
        events.extend(
            self.refunds_of_order(order_id)
                .await?
                .into_iter()
                .map(refund_event),
        );
        for r in self.returns_of_order(order_id).await? {
            events.extend(return_events(r));
        }
        events.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(Some(events))
    }
}

fn event(
    at: String,
    actor: &str,
    event: TimelineKind,
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
    let placed = event(
        created.clone(),
        user,
        TimelineKind::Placed,
        Some(*total),
        None,
    );
    let mut events = vec![placed];
    let actor = actor.as_deref().unwrap_or(SYSTEM);
    let decided = match decision.as_deref() {
        Some("approved") => Some((TimelineKind::Approved, None)),
        Some("rejected") => Some((TimelineKind::Rejected, reason.clone())),
        Some("cancelled") => Some((TimelineKind::Cancelled, reason.clone())),
        _ => None,
    };
    if let (Some((name, note)), Some(at)) = (decided, decided_at) {
        events.push(event(at.clone(), actor, name, None, note));
    }
    let ended = match status.as_str() {
        "delivered" => Some((TimelineKind::Delivered, None)),
        "partially_delivered" => Some((
            TimelineKind::Delivered,
            Some("partially: the parcels that could not ship were never charged".to_owned()),
        )),
        "shipping_failed" => Some((TimelineKind::ShippingFailed, reason.clone())),
        // Cancelled before any decision: withdrawn while it waited for its payment.
        "cancelled" if decision.is_none() => Some((TimelineKind::Cancelled, reason.clone())),
        _ => None,
    };
    if let Some((name, note)) = ended {
        let by = if name == TimelineKind::Cancelled {
            actor
        } else {
            SYSTEM
        };
        events.push(event(updated.clone(), by, name, None, note));
    }
    events
}

/// Paid or not.
fn payment_events(payment: PaymentRow) -> Vec<TimelineEvent> {
    let (state, amount, reason, settled_at) = payment;
    let Some(settled_at) = settled_at else {
        return Vec::new();
    };
    match state.as_str() {
        "succeeded" => vec![event(
            settled_at,
            SYSTEM,
            TimelineKind::Paid,
            Some(amount),
            None,
        )],
        "failed" | "timed_out" => {
            vec![event(
                settled_at,
                SYSTEM,
                TimelineKind::PaymentFailed,
                None,
                reason,
            )]
        }
        _ => Vec::new(),
    }
}

/// A refund, as the kind it was.
fn refund_event(r: Refund) -> TimelineEvent {
    let kind = match r.kind {
        RefundKind::Order => TimelineKind::Refunded,
        RefundKind::Return => TimelineKind::ReturnRefunded,
        RefundKind::Goodwill => TimelineKind::GoodwillRefund,
    };
    let actor = r.actor.as_deref().unwrap_or(SYSTEM);
    event(
        r.created_at,
        actor,
        kind,
        Some(r.amount_cents),
        Some(r.reason),
    )
}

/// A return asked for, decided, and received or expired (its refund is a refund's).
fn return_events(r: ReturnRecord) -> Vec<TimelineEvent> {
    let rid = &r.return_id;
    let note = format!("{rid}: {}", r.reason);
    let asked = event(
        r.created_at.clone(),
        &r.user_id,
        TimelineKind::ReturnRequested,
        Some(r.worth_cents),
        Some(note),
    );
    let mut events = vec![asked];
    let decider = r.decision_actor.as_deref().unwrap_or(SYSTEM);
    if let Some(at) = r.decided_at.clone() {
        let decided = match (&r.reject_reason, &r.label) {
            (Some(why), _) => Some((TimelineKind::ReturnRejected, format!("{rid}: {why}"))),
            (None, Some(l)) => Some((
                TimelineKind::ReturnApproved,
                format!("{rid}: {} {}", l.carrier, l.tracking_number),
            )),
            (None, None) => None,
        };
        if let Some((kind, note)) = decided {
            events.push(event(at, decider, kind, None, Some(note)));
        }
    }
    if let Some(at) = r.received_at.clone() {
        let back = if r.restock == Some(true) {
            "restocked"
        } else {
            "not restocked"
        };
        let by = r.receipt_actor.as_deref().unwrap_or(SYSTEM);
        events.push(event(
            at,
            by,
            TimelineKind::ReturnReceived,
            None,
            Some(format!("{rid}: {back}")),
        ));
    }
    if r.status == ReturnStatus::Expired {
        let note = format!("{rid}: no parcel came");
        events.push(event(
            r.updated_at,
            SYSTEM,
            TimelineKind::ReturnExpired,
            None,
            Some(note),
        ));
    }
    events
}
