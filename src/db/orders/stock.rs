//! Stock reservations: taken at checkout for every line of an order, all or nothing,
//! then released or sold.

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::{BasketLine, OrderId, OrderRecord};

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
            if let Some(short) = take_stock(&mut tx, order.order_id.as_str(), line).await? {
                tx.rollback().await?;
                return Ok(short);
            }
        }
        insert_order(&mut tx, order, invocation_id).await?;
        tx.commit().await?;
        Ok(ReserveOutcome::Reserved)
    }

    /// Gives reserved stock back. Idempotent: only rows still `reserved` are released,
    /// and claiming them first (`RETURNING`) lets one of two racing releases win.
    pub async fn release_reservation(&self, order_id: &OrderId) -> sqlx::Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut released: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE stock_reservations SET state = 'released'
             WHERE order_id = $1 AND state = 'reserved' RETURNING product_id, quantity",
        )
        .bind(order_id.as_str())
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
    pub async fn sell_reservation(&self, order_id: &OrderId) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "UPDATE stock_reservations SET state = 'sold' WHERE order_id = $1 AND state = 'reserved'",
        )
        .bind(order_id.as_str())
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}

/// Takes one line's quantity from stock and reserves it for the order; `Some` answer
/// when the stock cannot cover it (nothing taken).
async fn take_stock(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    line: &BasketLine,
) -> sqlx::Result<Option<ReserveOutcome>> {
    let qty = i64::from(line.quantity.get());
    let taken = sqlx::query(
        "UPDATE products SET stock_qty = stock_qty - $1 WHERE id = $2 AND stock_qty >= $1",
    )
    .bind(qty)
    .bind(line.product_id.get())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 0 {
        let available: i64 = sqlx::query_scalar("SELECT stock_qty FROM products WHERE id = $1")
            .bind(line.product_id.get())
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
        return Ok(Some(ReserveOutcome::OutOfStock {
            sku: line.sku.clone(),
            available,
            wanted: line.quantity.get(),
        }));
    }
    sqlx::query(
        "INSERT INTO stock_reservations (order_id, product_id, quantity, state) VALUES ($1, $2, $3, 'reserved')",
    )
    .bind(order_id)
    .bind(line.product_id.get())
    .bind(qty)
    .execute(&mut *conn)
    .await?;
    Ok(None)
}

/// The order's row in the read model, and the checkout's invocation as its first.
async fn insert_order(
    conn: &mut sqlx::AnyConnection,
    order: &OrderRecord,
    invocation_id: &str,
) -> sqlx::Result<()> {
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
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO order_invocations (order_id, invocation_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(order.order_id.as_str())
    .bind(invocation_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
