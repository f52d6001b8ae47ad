//! The catalog: products (in memory, see `cache`), and the users the demo picker lists.

use std::sync::Arc;

use super::cache::Catalog;
use super::{App, AppError, AppResult, require_admin};
use crate::db::{Location, Product, SetStock, User};
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

/// The locations stock is kept in and parcels ship from.
pub async fn locations(app: &App) -> AppResult<Vec<Location>> {
    Ok(app.db.locations().await?)
}

/// 400 `invalid_location` unless `id` names a location.
pub async fn known_location(app: &App, id: &str) -> AppResult<()> {
    if app.db.locations().await?.iter().any(|l| l.id == id) {
        return Ok(());
    }
    Err(no_location(id))
}

/// The refusal of an unknown location, naming it only when it could be one.
fn no_location(id: &str) -> AppError {
    let plausible = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let message = match plausible {
        true => format!("no location `{id}`"),
        false => "a location id is 1-64 letters, digits, `_` or `-`".to_owned(),
    };
    AppError::invalid("invalid_location", message)
}

/// An admin sets one location's stock level of a product; answers the product as the
/// catalog now shows it.
pub async fn set_stock(
    app: &App,
    user: &User,
    product: &ProductRef,
    location: &str,
    qty: i64,
) -> AppResult<Product> {
    require_admin(user)?;
    if !(0..=1_000_000_000).contains(&qty) {
        return Err(AppError::invalid(
            "invalid_stock_qty",
            "stock_qty must be 0-1000000000",
        ));
    }
    let id = self::product(app, product).await?.id;
    match app.db.set_location_stock(id, location, qty).await? {
        SetStock::Set => {}
        SetStock::UnknownProduct => return Err(unknown(product)),
        SetStock::UnknownLocation => return Err(no_location(location)),
    }
    // Read fresh: the cached catalog follows once the feed sees the new version.
    let id = crate::domain::ProductId::new(id).ok_or_else(|| unknown(product))?;
    app.db
        .product(&ProductRef::Id(id))
        .await?
        .ok_or_else(|| unknown(product))
}
