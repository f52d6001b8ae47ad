//! The Products view: the catalog, with a quantity and an Add button per product.

use super::*;

pub struct ProductRow {
    pub(super) sku: String,
    pub(super) name: String,
    pub(super) price: Cents,
    pub(super) stock: i64,
    pub(super) signal: String,
    pub(super) add_url: String,
}

pub(super) fn product_row(p: &Product) -> ProductRow {
    ProductRow {
        signal: format!("qty.{}", p.sku),
        add_url: format!("/ui/cart/add/{}", p.sku),
        price: cents(p.price_cents),
        stock: p.stock_qty,
        sku: p.sku.clone(),
        name: p.name.clone(),
    }
}

pub(super) async fn products(state: &AppState) -> ApiResult<ViewPanes> {
    let products = catalog::products(state).await?;
    let md = markdown::products(&products.products);
    let rows = products.products.iter().map(product_row).collect();
    Ok((Input::Products { products: rows }, md))
}

/// One product's stock as the admin's table shows it: a level per location.
pub struct StockRow {
    pub(super) sku: String,
    pub(super) name: String,
    pub(super) levels: Vec<i64>,
    pub(super) total: i64,
}

/// The stock table: every product, its level at each of `locations`.
pub(super) async fn stock_rows(state: &AppState) -> ApiResult<(Vec<StockRow>, Vec<String>)> {
    let locations: Vec<String> = catalog::locations(state)
        .await?
        .into_iter()
        .map(|l| l.id)
        .collect();
    let products = catalog::products(state).await?;
    let rows = (products.products.iter())
        .map(|p| StockRow {
            levels: (locations.iter())
                .map(|l| p.stock_by_location.get(l).copied().unwrap_or(0))
                .collect(),
            total: p.stock_qty,
            sku: p.sku.clone(),
            name: p.name.clone(),
        })
        .collect();
    Ok((rows, locations))
}
