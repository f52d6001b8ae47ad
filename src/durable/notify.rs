//! Lifecycle events for the notification log. Each has a deterministic event id
//! (order id + what happened), so writing it again after a retry changes nothing.
//! A customer's event that partners subscribe to (`WebhookEvent::of_notification`) is
//! recorded for every subscriber in the same write, once per event id.

use serde_json::Value;

use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::domain::OrderRecord;
use crate::domain::webhooks::WebhookEvent;

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    User(String),
    /// Every user with the admin role, as the log holds them when it is written.
    Staff,
}

/// One event of an order's life for one user, or for the store's staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `{order}:{user}:{kind}[:{key}]`; `{order}::{kind}[:{key}]` for the staff, written
    /// once per admin with the admin's name in the middle.
    pub event_id: String,
    pub to: Recipient,
    pub order_id: String,
    pub kind: &'static str,
    pub message: String,
    /// What a webhook's `data` says besides the order and the customer.
    pub data: Vec<(&'static str, Value)>,
}

impl Event {
    pub fn new(user_id: &str, order_id: &str, kind: &'static str, message: String) -> Event {
        Event {
            event_id: format!("{order_id}:{user_id}:{kind}"),
            to: Recipient::User(user_id.to_owned()),
            order_id: order_id.to_owned(),
            kind,
            message,
            data: Vec::new(),
        }
    }

    /// Adds `key` to what a webhook of this event says.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Event {
        self.data.push((key, value.into()));
        self
    }

    /// An event for the store's staff.
    pub fn for_staff(order_id: &str, kind: &'static str, message: String) -> Event {
        Event {
            to: Recipient::Staff,
            ..Event::new("", order_id, kind, message)
        }
    }

    /// Makes the event id unique among repeated events of one kind (retries).
    pub fn nth(self, n: i64) -> Event {
        self.keyed(&n.to_string())
    }

    /// Makes the event id unique among events of one kind about one order (its returns).
    pub fn keyed(mut self, key: &str) -> Event {
        self.event_id = format!("{}:{key}", self.event_id);
        self
    }

    /// Writes the event to the log, once per recipient however often it runs.
    pub async fn write(&self, db: &Db) -> sqlx::Result<()> {
        let Recipient::User(user) = &self.to else {
            // `{order}::{kind}…` becomes `{order}:{admin}:{kind}…` for each admin.
            let staff_prefix = format!("{}::", self.order_id);
            let rest = self
                .event_id
                .strip_prefix(&staff_prefix)
                .unwrap_or(self.kind);
            for admin in db.admins().await? {
                let event_id = format!("{}:{admin}:{rest}", self.order_id);
                let order = Some(self.order_id.as_str());
                db.notify(&event_id, &admin, order, self.kind, &self.message)
                    .await?;
            }
            return Ok(());
        };
        db.notify(
            &self.event_id,
            user,
            Some(&self.order_id),
            self.kind,
            &self.message,
        )
        .await?;
        match WebhookEvent::of_notification(self.kind) {
            Some(event) if !self.is_nothing_refunded() => {
                let payload = self.webhook_payload(event, user);
                db.enqueue_webhook_event(&self.event_id, event, &payload)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// A refund of nothing (a cancel before any capture) tells partners nothing.
    fn is_nothing_refunded(&self) -> bool {
        self.data
            .iter()
            .any(|(k, v)| *k == "amount_cents" && v.as_i64() == Some(0))
    }

    /// `{"type","timestamp","data"}`, as the webhook's body.
    fn webhook_payload(&self, event: WebhookEvent, customer: &str) -> String {
        let mut data = serde_json::Map::new();
        data.insert("order_id".into(), self.order_id.clone().into());
        data.insert("customer".into(), customer.into());
        for (key, value) in &self.data {
            data.insert((*key).into(), value.clone());
        }
        let body = serde_json::json!({
            "type": event.as_str(),
            "timestamp": now_rfc3339(),
            "data": data,
        });
        body.to_string()
    }

    fn for_user(order: &OrderRecord, kind: &'static str, message: String) -> Event {
        Event::new(&order.user_id, order.order_id.as_str(), kind, message)
    }

    /// Checkout has reserved the stock and handed the payment to the gateway.
    pub fn checkout_started(order: &OrderRecord) -> Vec<Event> {
        let id = &order.order_id;
        let items: u32 = order.items.iter().map(|l| l.quantity.get()).sum();
        vec![
            Event::for_user(
                order,
                "checkout_started",
                format!("Order {id}: checkout started, {items} item(s) reserved"),
            ),
            Event::for_user(
                order,
                "awaiting_payment",
                format!("Order {id}: awaiting payment of {}", order.total_cents),
            ),
        ]
    }

    pub fn payment_confirmed(order: &OrderRecord) -> Event {
        Event::for_user(
            order,
            "payment_confirmed",
            format!(
                "Order {}: payment confirmed (transaction {})",
                order.order_id,
                order.transaction_id.as_deref().unwrap_or("-")
            ),
        )
        .with("amount_cents", order.total_cents.get())
        .with("transaction_id", order.transaction_id.clone())
    }

    pub fn payment_failed(order: &OrderRecord) -> Event {
        Event::for_user(
            order,
            "payment_failed",
            format!(
                "Order {}: payment failed: {}",
                order.order_id,
                order.failure_reason.as_deref().unwrap_or("declined")
            ),
        )
    }

    pub fn cancelled(order: &OrderRecord) -> Event {
        Event::for_user(
            order,
            "cancelled",
            format!(
                "Order {}: cancelled: {}",
                order.order_id,
                order.failure_reason.as_deref().unwrap_or("cancelled")
            ),
        )
        .with("reason", order.failure_reason.clone())
    }

    pub fn payment_timed_out(order: &OrderRecord) -> Event {
        Event::for_user(
            order,
            "payment_timed_out",
            format!(
                "Order {}: no payment arrived in time; the order is cancelled",
                order.order_id
            ),
        )
    }
}
