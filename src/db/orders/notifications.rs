//! The notification log: every message to a user, once per event id, read by id so a
//! tail misses none.

use serde::{Deserialize, Serialize};

use crate::clock::now_rfc3339;
use crate::db::rows::from_row;
use crate::db::{Backend, Db};

/// The PostgreSQL advisory lock that orders the notification log's writers.
const NOTIFICATION_LOCK: i64 = 0x5348_4f50_4e4f_5446; // "SHOPNOTF"

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
