//! The catalog: products from SQLite, and the users the demo picker lists.

use super::{App, AppError, AppResult};
use crate::db::{Product, User};
use crate::domain::ProductRef;

pub async fn products(app: &App) -> AppResult<Vec<Product>> {
    Ok(app.db.products().await?)
}

pub async fn users(app: &App) -> AppResult<Vec<User>> {
    Ok(app.db.users().await?)
}

/// One product, by id or SKU; 404 when there is none.
pub async fn product(app: &App, product: &ProductRef) -> AppResult<Product> {
    app.db
        .product(product)
        .await?
        .ok_or_else(|| AppError::not_found("unknown_product", format!("no product {product}")))
}
