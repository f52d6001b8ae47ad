//! Each user's basket as their `UserSession` object last stored it: the cart is read
//! from here, not by a Restate invocation. Only the handler's journaled step that
//! changes the basket writes it (so the writes come in the order of the changes, and a
//! step run again after a crash writes the same basket again).

use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::domain::{Basket, Username};

impl Db {
    /// Stores the user's basket as it now is (an empty one once checkout cleared it).
    pub async fn save_basket(&self, user: &Username, basket: &Basket) -> sqlx::Result<()> {
        let lines = serde_json::to_string(basket).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(
            "INSERT INTO baskets (user_id, lines, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET lines = excluded.lines,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(lines)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user's basket as last stored; `None` when none was (a basket an older build
    /// kept only in Restate, or none at all).
    pub async fn basket(&self, user: &Username) -> sqlx::Result<Option<Basket>> {
        let lines: Option<String> =
            sqlx::query_scalar("SELECT lines FROM baskets WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(self.pool())
                .await?;
        lines
            .map(|l| serde_json::from_str(&l).map_err(|e| sqlx::Error::Decode(e.into())))
            .transpose()
    }
}
