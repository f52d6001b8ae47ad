//! Cart routes: thin adapters from HTTP to the `UserSession` virtual object.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::catalog::find_product;
use super::error::ApiResult;
use super::extract::{ApiJson, CurrentUser};
use crate::domain::{Basket, Cents, ProductId, ProductRef, Quantity};
use crate::durable::user_session::{AddItem, RemoveItem};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cart", get(get_cart))
        .route("/api/cart/add", post(add))
        .route("/api/cart/remove", post(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    product_id: ProductRef,
    quantity: Quantity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveRequest {
    product_id: ProductRef,
}

/// The cart as the API shows it.
#[derive(Debug, Serialize)]
pub struct CartView {
    pub user_id: String,
    pub items: Vec<CartItemView>,
    pub total_cents: Cents,
}

#[derive(Debug, Serialize)]
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

const SERVICE: &str = "UserSession";

/// While a checkout waits for payment its handler holds the cart; a change would wait
/// behind it, so it is refused at once instead.
async fn ensure_unlocked(state: &AppState, user: &CurrentUser) -> ApiResult<()> {
    match state.db.pending_checkout(user.username()).await? {
        Some(order_id) => Err(super::orders::checkout_in_progress(&order_id)),
        None => Ok(()),
    }
}

async fn get_cart(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<CartView>> {
    cart(&state, &user).await.map(Json)
}

async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<AddRequest>,
) -> ApiResult<Json<CartView>> {
    add_item(&state, &user, &req.product_id, req.quantity)
        .await
        .map(Json)
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(req): ApiJson<RemoveRequest>,
) -> ApiResult<Json<CartView>> {
    remove_item(&state, &user, &req.product_id).await.map(Json)
}

/// The user's cart.
pub async fn cart(state: &AppState, user: &CurrentUser) -> ApiResult<CartView> {
    let basket: Basket = state
        .restate
        .call::<(), _>(SERVICE, user.username(), "GetBasket", None)
        .await?;
    Ok(CartView::new(user.username(), basket))
}

/// Adds `quantity` of a product to the user's cart.
pub async fn add_item(
    state: &AppState,
    user: &CurrentUser,
    product: &ProductRef,
    quantity: Quantity,
) -> ApiResult<CartView> {
    ensure_unlocked(state, user).await?;
    let product = find_product(state, product).await?;
    let input = AddItem {
        product_id: ProductId::new(product.id).expect("catalog ids are positive"),
        quantity,
    };
    let basket: Basket = state
        .restate
        .call(SERVICE, user.username(), "AddItem", Some(&input))
        .await?;
    Ok(CartView::new(user.username(), basket))
}

/// Removes a product from the user's cart.
pub async fn remove_item(
    state: &AppState,
    user: &CurrentUser,
    product: &ProductRef,
) -> ApiResult<CartView> {
    ensure_unlocked(state, user).await?;
    let product = find_product(state, product).await?;
    let input = RemoveItem {
        product_id: ProductId::new(product.id).expect("catalog ids are positive"),
    };
    let basket: Basket = state
        .restate
        .call(SERVICE, user.username(), "RemoveItem", Some(&input))
        .await?;
    Ok(CartView::new(user.username(), basket))
}
