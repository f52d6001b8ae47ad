//! Stock reservations: taken at checkout for every line of an order from the
//! locations that ship it, all or nothing, with the order's parcels; then released or
//! sold.

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::domain::parcels::{self, ParcelLine};
use crate::domain::{BasketLine, OrderId, OrderRecord, ProductId, ReturnLine};

/// Why stock could not be reserved for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    /// Reserved for the order created at this time (the first run's, when run again).
    Reserved { created_at: String },
    OutOfStock {
        sku: String,
        available: i64,
        wanted: u32,
    },
    /// The order id is already used by another user.
    OrderIdTaken,
}

impl Db {
    /// Claims the order id for its user, reserves stock for every line (from one
    /// location that covers the order, else the fewest that do) and writes its
    /// parcels, all in one transaction: either everything is reserved or nothing is.
    /// Run again for the same order it changes nothing and answers `Reserved` with the
    /// order's first creation time.
    pub async fn reserve_order(
        &self,
        order: &OrderRecord,
        invocation_id: &str,
    ) -> sqlx::Result<ReserveOutcome> {
        let mut tx = self.begin_write().await?;
        let owner: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, created_at FROM orders WHERE order_id = $1")
                .bind(order.order_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some((owner, created_at)) if owner == order.user_id => {
                return Ok(ReserveOutcome::Reserved { created_at });
            }
            Some(_) => return Ok(ReserveOutcome::OrderIdTaken),
            None => {}
        }
        let lines = ParcelLine::of_basket(&order.items);
        let levels = stock_levels(&mut tx, &lines).await?;
        let Some(plan) = parcels::plan(&lines, &levels) else {
            return Ok(out_of_stock(&lines, &levels));
        };
        for parcel in &plan {
            for line in &parcel.lines {
                take_stock(&mut tx, order.order_id.as_str(), &parcel.location, line).await?;
            }
            let id = parcels::shipment_id(&order.order_id, &parcel.location, plan.len());
            let at = (id.as_str(), parcel.location.as_str());
            let (basket, created) = (&order.items, &order.created_at);
            insert_parcel(&mut tx, &order.order_id, at, &parcel.lines, basket, created).await?;
        }
        insert_order(&mut tx, order, invocation_id).await?;
        tx.commit().await?;
        let created_at = order.created_at.clone();
        Ok(ReserveOutcome::Reserved { created_at })
    }

    /// Gives reserved stock back to the locations it came from (only `location`'s when
    /// given). Idempotent: only rows still `reserved` are released, and claiming them
    /// first (`RETURNING`) lets one of two racing releases win.
    pub async fn release_reservation(
        &self,
        order_id: &OrderId,
        location: Option<&str>,
    ) -> sqlx::Result<u64> {
        let mut tx = self.begin_write().await?;
        let released = release_in(&mut tx, order_id, location).await?;
        if location.is_none() {
            // The whole order gave its stock back: whatever had not shipped never will.
            sqlx::query(
                "UPDATE parcels SET status = 'failed', updated_at = $1
                 WHERE order_id = $2 AND status IN ('pending', 'shipping')",
            )
            .bind(crate::clock::now_rfc3339())
            .bind(order_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    /// The parcels in transit arrived: their reservations become a sale (the stock
    /// stays taken for good) and they are `delivered`.
    pub async fn sell_reservation(&self, order_id: &OrderId) -> sqlx::Result<u64> {
        let mut tx = self.begin_write().await?;
        let sold = sqlx::query(
            "UPDATE stock_reservations SET state = 'sold' WHERE order_id = $1 AND state = 'reserved'",
        )
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE parcels SET status = 'delivered', updated_at = $1
             WHERE order_id = $2 AND status = 'in_transit'",
        )
        .bind(crate::clock::now_rfc3339())
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sold)
    }

    /// Settles a sale an operator's cancellation interrupted: true when it is recorded
    /// (some reservation sold); otherwise the reservations are released in the same
    /// transaction, so a sale still under way (an earlier attempt of the step) finds
    /// nothing left to sell. Released first, then counted: a sale that commits
    /// meanwhile is seen.
    pub async fn sale_recorded_or_released(&self, order_id: &OrderId) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        release_in(&mut tx, order_id, None).await?;
        let sold: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = 'sold'",
        )
        .bind(order_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sold > 0)
    }
}

/// Releases the order's reservations (one location's, when given) in an open
/// transaction; answers how many rows it released.
pub(super) async fn release_in(
    conn: &mut sqlx::AnyConnection,
    order_id: &OrderId,
    location: Option<&str>,
) -> sqlx::Result<u64> {
    let mut released: Vec<(i64, String, i64)> = sqlx::query_as(
        "UPDATE stock_reservations SET state = 'released'
         WHERE order_id = $1 AND state = 'reserved' AND location = COALESCE($2, location)
         RETURNING product_id, location, quantity",
    )
    .bind(order_id.as_str())
    .bind(location)
    .fetch_all(&mut *conn)
    .await?;
    released.sort();
    for (product_id, location, quantity) in &released {
        add_stock(conn, *product_id, location, *quantity).await?;
    }
    Ok(released.len() as u64)
}

/// Moves `delta` units into (or, negative, out of) one location's stock and the
/// product's total, in the caller's transaction.
pub(in crate::db) async fn add_stock(
    conn: &mut sqlx::AnyConnection,
    product_id: i64,
    location: &str,
    delta: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE product_stock SET stock_qty = stock_qty + $1 WHERE product_id = $2 AND location = $3",
    )
    .bind(delta)
    .bind(product_id)
    .bind(location)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE products SET stock_qty = stock_qty + $1 WHERE id = $2")
        .bind(delta)
        .bind(product_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Puts one returned line back where its parcels shipped from (the order's sold
/// reservations of that product, in location order; `east` for an order from before
/// locations).
pub(super) async fn restock_line(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    line: &ReturnLine,
) -> sqlx::Result<()> {
    let sold: Vec<(String, i64)> = sqlx::query_as(
        "SELECT r.location, r.quantity FROM stock_reservations r
         JOIN locations l ON l.id = r.location
         WHERE r.order_id = $1 AND r.product_id = $2 AND r.state = 'sold'
         ORDER BY l.position, l.id",
    )
    .bind(order_id)
    .bind(line.product_id.get())
    .fetch_all(&mut *conn)
    .await?;
    let mut left = i64::from(line.quantity.get());
    let last = sold.len().saturating_sub(1);
    for (i, (location, quantity)) in sold.iter().enumerate() {
        let back = if i == last { left } else { left.min(*quantity) };
        if back > 0 {
            add_stock(conn, line.product_id.get(), location, back).await?;
            left -= back;
        }
    }
    if left > 0 {
        add_stock(conn, line.product_id.get(), "east", left).await?;
    }
    Ok(())
}

/// Of each of the order's lines, how many never arrived: ordered but not sold (a
/// partially delivered order's failed parcels).
pub(super) async fn never_arrived(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    lines: &[BasketLine],
) -> sqlx::Result<Vec<(ProductId, u32)>> {
    let sold: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, CAST(SUM(quantity) AS BIGINT) FROM stock_reservations
         WHERE order_id = $1 AND state = 'sold' GROUP BY product_id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(lines
        .iter()
        .filter_map(|line| {
            let got = (sold.iter())
                .find(|(p, _)| *p == line.product_id.get())
                .map_or(0, |(_, n)| *n);
            let missing = i64::from(line.quantity.get()) - got;
            (missing > 0).then(|| (line.product_id, u32::try_from(missing).unwrap_or(0)))
        })
        .collect())
}

/// What every location has of the order's products, locations in their order.
async fn stock_levels(
    conn: &mut sqlx::AnyConnection,
    lines: &[ParcelLine],
) -> sqlx::Result<parcels::Levels> {
    // Only the order's products, read under the write lock: one placeholder each.
    let wanted: Vec<String> = (1..=lines.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT l.id, s.product_id, s.stock_qty FROM locations l
         JOIN product_stock s ON s.location = l.id
         WHERE s.product_id IN ({}) ORDER BY l.position, l.id",
        wanted.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for line in lines {
        query = query.bind(line.product_id);
    }
    let rows: Vec<(String, i64, i64)> = query.fetch_all(&mut *conn).await?;
    let mut levels: parcels::Levels = Vec::new();
    for (location, product_id, qty) in rows {
        match levels.last_mut() {
            Some((at, stock)) if *at == location => {
                stock.insert(product_id, qty);
            }
            _ => levels.push((location, [(product_id, qty)].into())),
        }
    }
    Ok(levels)
}

/// The first line all the locations together cannot cover.
fn out_of_stock(lines: &[ParcelLine], levels: &parcels::Levels) -> ReserveOutcome {
    let available = |l: &ParcelLine| -> i64 {
        levels
            .iter()
            .filter_map(|(_, s)| s.get(&l.product_id))
            .sum()
    };
    let short = lines
        .iter()
        .find(|l| available(l) < l.quantity)
        .or(lines.first());
    match short {
        Some(l) => ReserveOutcome::OutOfStock {
            sku: l.sku.clone(),
            available: available(l),
            wanted: u32::try_from(l.quantity).unwrap_or(u32::MAX),
        },
        None => ReserveOutcome::OrderIdTaken,
    }
}

/// Takes one parcel line from its location and reserves it for the order. The plan
/// was made under the write lock, so the guarded update cannot miss; if it did, the
/// error rolls the whole reservation back.
async fn take_stock(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    location: &str,
    line: &ParcelLine,
) -> sqlx::Result<()> {
    let taken = sqlx::query(
        "UPDATE product_stock SET stock_qty = stock_qty - $1
         WHERE product_id = $2 AND location = $3 AND stock_qty >= $1",
    )
    .bind(line.quantity)
    .bind(line.product_id)
    .bind(location)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 0 {
        return Err(sqlx::Error::Protocol(format!(
            "{location} no longer has {} of {}",
            line.quantity, line.sku
        )));
    }
    sqlx::query("UPDATE products SET stock_qty = stock_qty - $1 WHERE id = $2")
        .bind(line.quantity)
        .bind(line.product_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO stock_reservations (order_id, product_id, location, quantity, state)
         VALUES ($1, $2, $3, $4, 'reserved')",
    )
    .bind(order_id)
    .bind(line.product_id)
    .bind(location)
    .bind(line.quantity)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One parcel of the order (`lines` from `location`, priced as in `basket`), `pending`
/// until the order is approved; written once.
pub(super) async fn insert_parcel(
    conn: &mut sqlx::AnyConnection,
    order_id: &OrderId,
    (shipment_id, location): (&str, &str),
    lines: &[ParcelLine],
    basket: &[BasketLine],
    at: &str,
) -> sqlx::Result<()> {
    let items = serde_json::to_string(lines).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO parcels (shipment_id, order_id, location, items, amount_cents, status, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT DO NOTHING",
    )
    .bind(shipment_id)
    .bind(order_id.as_str())
    .bind(location)
    .bind(items)
    .bind(parcels::amount(lines, basket))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
