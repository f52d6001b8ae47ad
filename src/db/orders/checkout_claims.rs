//! Checkout claims: the one checkout a user may have under way, by order id.

use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::domain::OrderId;
use crate::domain::Username;

impl Db {
    /// Claims the user's one checkout under way for `order_id`: taken when the user has
    /// none, when theirs is this order already, or when theirs is older than `stale_before`
    /// and never reached the payment gateway. Returns the order that holds the claim.
    pub async fn claim_checkout(
        &self,
        user_id: &Username,
        order_id: &OrderId,
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
        .bind(user_id.as_str())
        .bind(order_id.as_str())
        .bind(now_rfc3339())
        .bind(stale_before)
        .execute(self.pool())
        .await?;
        sqlx::query_scalar("SELECT order_id FROM checkout_claims WHERE user_id = $1")
            .bind(user_id.as_str())
            .fetch_one(self.pool())
            .await
    }

    /// When `user_id`'s order `order_id` was placed, if it was (checkout run again
    /// after a crash finds its own order).
    pub async fn placed_at(
        &self,
        user_id: &Username,
        order_id: &OrderId,
    ) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT created_at FROM orders WHERE order_id = $1 AND user_id = $2")
            .bind(order_id.as_str())
            .bind(user_id.as_str())
            .fetch_optional(self.pool())
            .await
    }

    /// Every user who holds a checkout claim.
    pub async fn checkout_claimants(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT user_id FROM checkout_claims")
            .fetch_all(self.pool())
            .await
    }

    /// The order the user's checkout claim names, if any.
    pub async fn checkout_claim(&self, user_id: &Username) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT order_id FROM checkout_claims WHERE user_id = $1")
            .bind(user_id.as_str())
            .fetch_optional(self.pool())
            .await
    }

    /// Ends the user's checkout claim for `order_id` (a claim of another order stays).
    pub async fn release_checkout(
        &self,
        user_id: &Username,
        order_id: &OrderId,
    ) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM checkout_claims WHERE user_id = $1 AND order_id = $2")
            .bind(user_id.as_str())
            .bind(order_id.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The user's order that is waiting for payment, if any: their cart is locked.
    pub async fn pending_checkout(&self, user_id: &Username) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT order_id FROM orders WHERE user_id = $1 AND status = 'awaiting_payment' LIMIT 1",
        )
        .bind(user_id.as_str())
        .fetch_optional(self.pool())
        .await
    }
}
