//! Locations and what each has of each product. `products.stock_qty` is the sum of a
//! product's locations, changed in the same transaction as they are.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Db;
use super::orders::add_stock;
use crate::db::rows::from_row;

/// A place stock is kept and parcels ship from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Location {
    pub id: String,
    pub name: String,
}
from_row!(Location { id, name });

/// A product's stock by location id.
pub type StockByLocation = BTreeMap<String, i64>;

/// What setting a location's stock level did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStock {
    Set,
    UnknownProduct,
    UnknownLocation,
}

impl Db {
    /// Every location, in its order.
    pub async fn locations(&self) -> sqlx::Result<Vec<Location>> {
        sqlx::query_as("SELECT id, name FROM locations ORDER BY position, id")
            .fetch_all(self.pool())
            .await
    }

    /// Every product's stock by location (one product's, when given).
    pub async fn stock_by_location(
        &self,
        product: Option<i64>,
    ) -> sqlx::Result<BTreeMap<i64, StockByLocation>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT product_id, location, stock_qty FROM product_stock
             WHERE product_id = COALESCE($1, product_id)",
        )
        .bind(product)
        .fetch_all(self.pool())
        .await?;
        let mut by_product: BTreeMap<i64, StockByLocation> = BTreeMap::new();
        for (product, location, qty) in rows {
            by_product.entry(product).or_default().insert(location, qty);
        }
        Ok(by_product)
    }

    /// Sets one location's level of a product (its total follows).
    pub async fn set_location_stock(
        &self,
        product_id: i64,
        location: &str,
        qty: i64,
    ) -> sqlx::Result<SetStock> {
        let mut tx = self.begin_write().await?;
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM locations WHERE id = $1")
            .bind(location)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Ok(SetStock::UnknownLocation);
        }
        let product: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
        if product.is_none() {
            return Ok(SetStock::UnknownProduct);
        }
        sqlx::query(
            "INSERT INTO product_stock (product_id, location, stock_qty) VALUES ($1, $2, 0)
             ON CONFLICT (product_id, location) DO NOTHING",
        )
        .bind(product_id)
        .bind(location)
        .execute(&mut *tx)
        .await?;
        let now: i64 = sqlx::query_scalar(
            "SELECT stock_qty FROM product_stock WHERE product_id = $1 AND location = $2",
        )
        .bind(product_id)
        .bind(location)
        .fetch_one(&mut *tx)
        .await?;
        if now != qty {
            add_stock(&mut tx, product_id, location, qty - now).await?;
        }
        tx.commit().await?;
        Ok(SetStock::Set)
    }
}
