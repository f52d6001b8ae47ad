//! The catalog: products (in memory, see `cache`), and the users the demo picker lists.

use std::sync::Arc;

use super::cache::Catalog;
use super::{App, AppError, AppResult};
use crate::db::{Product, User};
use crate::domain::ProductRef;

pub async fn products(app: &App) -> AppResult<Arc<Catalog>> {
    Ok(app.caches.catalog(&app.db).await?)
}

pub async fn users(app: &App) -> AppResult<Vec<User>> {
    Ok(app.db.users().await?)
}

/// One product, by id or SKU; 404 when there is none.
pub async fn product(app: &App, product: &ProductRef) -> AppResult<Product> {
    products(app)
        .await?
        .get(product)
        .cloned()
        .ok_or_else(|| unknown(product))
}

/// One product as the API shows it (JSON, encoded once per catalog version).
pub async fn product_json(app: &App, product: &ProductRef) -> AppResult<Arc<[u8]>> {
    products(app)
        .await?
        .json_of(product)
        .ok_or_else(|| unknown(product))
}

fn unknown(product: &ProductRef) -> AppError {
    AppError::not_found("unknown_product", format!("no product {product}"))
}
