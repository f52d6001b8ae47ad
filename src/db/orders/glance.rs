//! What the admin's dashboard draws, read from ShopFlow's own tables: orders that
//! ended per minute and outcome, recent orders' checklists (their step times), open
//! returns and the webhook deliveries by status.

use crate::db::Db;

/// The numbers behind the dashboard's pictures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlanceRows {
    /// `(minute "YYYY-MM-DDTHH:MM", status, orders)` of orders last updated since then.
    pub per_minute: Vec<(String, String, i64)>,
    /// The checklists (`steps` JSON) of the most recent finished orders.
    pub checklists: Vec<String>,
    pub open_returns: i64,
    /// Webhook deliveries by status.
    pub deliveries: Vec<(String, i64)>,
}

impl Db {
    /// Everything the dashboard draws: orders updated since `since` (RFC 3339) per
    /// minute and status, the checklists of the last `recent` finished orders.
    pub async fn glance(&self, since: &str, recent: i64) -> sqlx::Result<GlanceRows> {
        let per_minute = sqlx::query_as(
            "SELECT substr(updated_at, 1, 16) AS minute, status, COUNT(*) FROM orders
             WHERE updated_at >= $1 GROUP BY substr(updated_at, 1, 16), status",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let checklists = sqlx::query_scalar(
            "SELECT steps FROM orders
             WHERE steps IS NOT NULL AND status IN ('delivered', 'partially_delivered')
             ORDER BY updated_at DESC LIMIT $1",
        )
        .bind(recent)
        .fetch_all(self.pool())
        .await?;
        let open_returns = sqlx::query_scalar(
            "SELECT COUNT(*) FROM returns WHERE status IN ('requested', 'awaiting_parcel')",
        )
        .fetch_one(self.pool())
        .await?;
        let deliveries =
            sqlx::query_as("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status")
                .fetch_all(self.pool())
                .await?;
        Ok(GlanceRows {
            per_minute,
            checklists,
            open_returns,
            deliveries,
        })
    }
}
