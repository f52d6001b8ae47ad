//! Webhook subscriptions and their deliveries. A delivery is one row per event and
//! subscriber (keyed by both, so writing an event again changes nothing); the
//! subscriber's `WebhookQueue` takes the oldest pending row, and each attempt is
//! recorded on it.

use serde::Serialize;

use crate::clock::now_rfc3339;
use crate::db::rows::from_row;
use crate::db::{Backend, Db};
use crate::domain::ids::stable_hash;
use crate::domain::webhooks::{WebhookEvent, message_id};

/// A subscription as the admin sees it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_by: String,
    pub created_at: String,
}

struct WebhookRow {
    id: String,
    url: String,
    events: String,
    created_by: String,
    created_at: String,
}
from_row!(WebhookRow {
    id,
    url,
    events,
    created_by,
    created_at
});

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Webhook {
        Webhook {
            events: row
                .events
                .split(',')
                .filter_map(|e| WebhookEvent::parse(e).ok())
                .collect(),
            id: row.id,
            url: row.url,
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub delivery_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The `webhook-id` every attempt carries.
    pub message_id: String,
    pub created_at: String,
    pub updated_at: String,
}
from_row!(Delivery {
    delivery_id,
    event,
    status,
    attempts,
    last_status_code,
    last_error,
    message_id,
    created_at,
    updated_at
});

/// The oldest pending delivery of a subscriber, with what its attempt needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingDelivery {
    pub delivery_id: String,
    pub message_id: String,
    pub payload: String,
    pub url: String,
    pub secret: String,
}
from_row!(PendingDelivery {
    delivery_id,
    message_id,
    payload,
    url,
    secret
});

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptRecord<'a> {
    /// A 2xx answer.
    Delivered { status_code: i64 },
    /// Another answer, or none; `last` when the schedule has no retry left.
    Failed {
        status_code: Option<i64>,
        error: &'a str,
        last: bool,
    },
}

/// What a redelivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivery {
    Queued(Delivery),
    /// Still being delivered: nothing to do.
    Pending,
    Unknown,
}

/// The PostgreSQL advisory lock that orders the writers of webhook deliveries.
const DELIVERY_LOCK: i64 = 0x5348_4f50_5748_4f4b; // "SHOPWHOK"

/// One delivery of `event` per subscriber of its type, once per `event_id`.
async fn insert_deliveries(
    conn: &mut sqlx::AnyConnection,
    event_id: &str,
    event: WebhookEvent,
    payload: &str,
) -> sqlx::Result<()> {
    let subscribers: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM webhooks WHERE deleted_at IS NULL AND events LIKE $1 ORDER BY id",
    )
    .bind(format!("%,{},%", event.as_str()))
    .fetch_all(&mut *conn)
    .await?;
    let now = now_rfc3339();
    for webhook_id in subscribers {
        let delivery_id = format!(
            "dlv_{:016x}",
            stable_hash(format!("{webhook_id}\0{event_id}").as_bytes())
        );
        sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, webhook_id, event_id, message_id,
                 event, payload, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(&delivery_id)
        .bind(&webhook_id)
        .bind(event_id)
        .bind(message_id(event_id))
        .bind(event.as_str())
        .bind(payload)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const DELIVERY_COLUMNS: &str = "SELECT delivery_id, event, status, attempts, last_status_code,
    last_error, message_id, created_at, updated_at FROM webhook_deliveries";

impl Db {
    pub async fn create_webhook(
        &self,
        id: &str,
        url: &str,
        events: &[WebhookEvent],
        secret: &str,
        created_by: &str,
    ) -> sqlx::Result<Webhook> {
        let names: Vec<_> = events.iter().map(|e| e.as_str()).collect();
        sqlx::query(
            "INSERT INTO webhooks (id, url, events, secret, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(url)
        .bind(format!(",{},", names.join(",")))
        .bind(secret)
        .bind(created_by)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        Ok(self.webhook(id).await?.expect("the row was just written"))
    }

    /// Every subscription not deleted, oldest first.
    pub async fn webhooks(&self) -> sqlx::Result<Vec<Webhook>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(
            "SELECT id, url, events, created_by, created_at FROM webhooks
             WHERE deleted_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Webhook::from).collect())
    }

    pub async fn webhook(&self, id: &str) -> sqlx::Result<Option<Webhook>> {
        let row: Option<WebhookRow> = sqlx::query_as(
            "SELECT id, url, events, created_by, created_at FROM webhooks
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Webhook::from))
    }

    /// Ends a subscription: nothing more is delivered to it. False when there was none.
    pub async fn delete_webhook(&self, id: &str) -> sqlx::Result<bool> {
        let done =
            sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(now_rfc3339())
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records `event` (`event_id` names it once) for every subscriber of its type.
    pub async fn enqueue_webhook_event(
        &self,
        event_id: &str,
        event: WebhookEvent,
        payload: &str,
    ) -> sqlx::Result<()> {
        if self.backend() == Backend::Sqlite {
            // SQLite's single writer already makes rows visible in `seq` order.
            let mut conn = self.pool().acquire().await?;
            return insert_deliveries(&mut conn, event_id, event, payload).await;
        }
        // One writer at a time, so rows become visible in `seq` order and a queue never
        // takes a later one before an earlier one commits.
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DELIVERY_LOCK)
            .execute(&mut *tx)
            .await?;
        insert_deliveries(&mut tx, event_id, event, payload).await?;
        tx.commit().await
    }

    /// Subscribers with deliveries their queue has not been told of, and the newest
    /// such delivery of each.
    pub async fn unqueued_webhook_deliveries(&self) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT webhook_id, MAX(seq) FROM webhook_deliveries WHERE queued = 0
             GROUP BY webhook_id ORDER BY webhook_id",
        )
        .fetch_all(self.pool())
        .await
    }

    /// The queue of `webhook_id` has been told of its deliveries up to `seq`.
    pub async fn mark_webhook_queued(&self, webhook_id: &str, seq: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET queued = 1
             WHERE webhook_id = $1 AND seq <= $2 AND queued = 0",
        )
        .bind(webhook_id)
        .bind(seq)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The subscriber's oldest pending delivery, unless the subscription was deleted.
    pub async fn next_webhook_delivery(
        &self,
        webhook_id: &str,
    ) -> sqlx::Result<Option<PendingDelivery>> {
        sqlx::query_as(
            "SELECT d.delivery_id, d.message_id, d.payload, w.url, w.secret
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.webhook_id = $1 AND d.status = 'pending' AND w.deleted_at IS NULL
             ORDER BY d.seq LIMIT 1",
        )
        .bind(webhook_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Records an attempt of a pending delivery.
    pub async fn record_webhook_attempt(
        &self,
        delivery_id: &str,
        attempt: &AttemptRecord<'_>,
    ) -> sqlx::Result<()> {
        let (status, code, error) = match *attempt {
            AttemptRecord::Delivered { status_code } => ("delivered", Some(status_code), None),
            AttemptRecord::Failed {
                status_code,
                error,
                last,
            } => (
                if last { "failed" } else { "pending" },
                status_code,
                Some(error),
            ),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1,
                 last_status_code = $2, last_error = $3, updated_at = $4
             WHERE delivery_id = $5 AND status = 'pending'",
        )
        .bind(status)
        .bind(code)
        .bind(error)
        .bind(now_rfc3339())
        .bind(delivery_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The subscriber's deliveries, oldest first (the newest 1,000).
    pub async fn webhook_deliveries(&self, webhook_id: &str) -> sqlx::Result<Vec<Delivery>> {
        let mut log: Vec<Delivery> = sqlx::query_as(&format!(
            "{DELIVERY_COLUMNS} WHERE webhook_id = $1 ORDER BY seq DESC LIMIT 1000"
        ))
        .bind(webhook_id)
        .fetch_all(self.pool())
        .await?;
        log.reverse();
        Ok(log)
    }

    /// Sends a delivered or failed delivery again (same `webhook-id`, a new schedule).
    pub async fn redeliver_webhook(
        &self,
        webhook_id: &str,
        delivery_id: &str,
    ) -> sqlx::Result<Redelivery> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', queued = 0, updated_at = $1
             WHERE webhook_id = $2 AND delivery_id = $3 AND status <> 'pending'",
        )
        .bind(now_rfc3339())
        .bind(webhook_id)
        .bind(delivery_id)
        .execute(self.pool())
        .await?;
        let row: Option<Delivery> = sqlx::query_as(&format!(
            "{DELIVERY_COLUMNS} WHERE webhook_id = $1 AND delivery_id = $2"
        ))
        .bind(webhook_id)
        .bind(delivery_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => Redelivery::Unknown,
            Some(row) if done.rows_affected() == 1 => Redelivery::Queued(row),
            Some(_) => Redelivery::Pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_is_one_delivery_per_subscriber_in_order() {
        let (_d, db) = crate::db::test_db().await;
        let paid = [WebhookEvent::OrderPaid];
        db.create_webhook("wh_a", "http://a/", &paid, "whsec_a", "admin")
            .await
            .unwrap();
        db.create_webhook(
            "wh_b",
            "http://b/",
            &[WebhookEvent::OrderShipped],
            "s",
            "admin",
        )
        .await
        .unwrap();
        for id in ["e1", "e2", "e1"] {
            db.enqueue_webhook_event(id, WebhookEvent::OrderPaid, "{}")
                .await
                .unwrap();
        }
        let log = db.webhook_deliveries("wh_a").await.unwrap();
        let ids: Vec<_> = log.iter().map(|d| d.message_id.clone()).collect();
        assert_eq!(ids, [message_id("e1"), message_id("e2")], "{log:?}");
        assert!(db.webhook_deliveries("wh_b").await.unwrap().is_empty());

        let next = db.next_webhook_delivery("wh_a").await.unwrap().unwrap();
        assert_eq!(next.delivery_id, log[0].delivery_id);
        let ok = AttemptRecord::Delivered { status_code: 204 };
        db.record_webhook_attempt(&next.delivery_id, &ok)
            .await
            .unwrap();
        let next = db.next_webhook_delivery("wh_a").await.unwrap().unwrap();
        assert_eq!(next.delivery_id, log[1].delivery_id, "the second is next");

        let again = db.redeliver_webhook("wh_a", &log[0].delivery_id).await;
        assert!(matches!(again, Ok(Redelivery::Queued(_))), "{again:?}");
        let again = db.redeliver_webhook("wh_a", &log[1].delivery_id).await;
        assert_eq!(again.unwrap(), Redelivery::Pending);
        assert_eq!(
            db.redeliver_webhook("wh_b", &log[0].delivery_id)
                .await
                .unwrap(),
            Redelivery::Unknown,
            "another subscriber's delivery"
        );

        assert!(db.delete_webhook("wh_a").await.unwrap());
        assert!(db.next_webhook_delivery("wh_a").await.unwrap().is_none());
        assert!(!db.delete_webhook("wh_a").await.unwrap());
    }
}
