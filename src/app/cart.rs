//! The cart: a user's basket, held by their `UserSession` virtual object.

use serde::Serialize;

use super::{App, AppError, AppResult, catalog};
use crate::db::User;
use crate::domain::{Basket, Cents, ProductId, ProductRef, Quantity};
use crate::durable::ingress;
use crate::durable::user_session::{AddItem, RemoveItem};
use restate_sdk::serde::Json;

/// The cart as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub user_id: String,
    pub items: Vec<CartItemView>,
    pub total_cents: Cents,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartItemView {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: Quantity,
    pub unit_price_cents: Cents,
    pub line_total_cents: Cents,
}

impl CartView {
    pub fn new(user_id: &str, basket: Basket) -> Self {
        let total_cents = basket.total().unwrap_or(Cents::ZERO);
        let items = basket
            .lines
            .into_iter()
            .map(|l| CartItemView {
                line_total_cents: l.line_total().unwrap_or(Cents::ZERO),
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
            })
            .collect();
        Self {
            user_id: user_id.to_owned(),
            items,
            total_cents,
        }
    }
}

/// The refusal while a checkout waits for payment: its handler holds the cart.
pub fn checkout_in_progress(order_id: &str) -> AppError {
    AppError::conflict(
        "checkout_in_progress",
        format!("order {order_id} is waiting for payment; the cart is locked until it settles"),
    )
}

/// A change would wait behind a pending checkout's handler, so it is refused at once.
/// Only a user who holds a checkout claim may have one: the others need no database
/// read (the web role keeps who holds one in memory).
async fn ensure_unlocked(app: &App, user: &User) -> AppResult<()> {
    if !app
        .caches
        .may_have_checkout(&app.db, &user.username)
        .await?
    {
        return Ok(());
    }
    match app.db.pending_checkout(&user.username).await? {
        Some(order_id) => Err(checkout_in_progress(&order_id)),
        None => Ok(()),
    }
}

/// The user's cart.
pub async fn cart(app: &App, user: &User) -> AppResult<CartView> {
    let session = app.restate.user_session(user.username.as_str());
    let basket = ingress::body(session.get_basket().call().await)?;
    Ok(CartView::new(user.username.as_str(), basket.into_inner()))
}

/// Adds `quantity` of a product to the user's cart; tries with the same idempotency
/// key add it once.
#[tracing::instrument(skip_all, fields(user = %user.username))]
pub async fn add_item(
    app: &App,
    user: &User,
    product: &ProductRef,
    quantity: Quantity,
    key: Option<String>,
) -> AppResult<CartView> {
    ensure_unlocked(app, user).await?;
    let product = catalog::product(app, product).await?;
    let input = AddItem {
        product_id: ProductId::new(product.id).expect("catalog ids are positive"),
        quantity,
    };
    let session = app.restate.user_session(user.username.as_str());
    let basket = ingress::body(
        ingress::keyed(session.add_item(Json(input)), key)
            .call()
            .await,
    )?;
    Ok(CartView::new(user.username.as_str(), basket.into_inner()))
}

/// Removes a product from the user's cart; tries with the same idempotency key are one.
#[tracing::instrument(skip_all, fields(user = %user.username))]
pub async fn remove_item(
    app: &App,
    user: &User,
    product: &ProductRef,
    key: Option<String>,
) -> AppResult<CartView> {
    ensure_unlocked(app, user).await?;
    let product = catalog::product(app, product).await?;
    let input = RemoveItem {
        product_id: ProductId::new(product.id).expect("catalog ids are positive"),
    };
    let session = app.restate.user_session(user.username.as_str());
    let basket = ingress::body(
        ingress::keyed(session.remove_item(Json(input)), key)
            .call()
            .await,
    )?;
    Ok(CartView::new(user.username.as_str(), basket.into_inner()))
}
