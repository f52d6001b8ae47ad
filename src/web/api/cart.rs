//! `/api/cart`: the caller's cart, held by their `UserSession` virtual object.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::app::cart::{self, CartView};
use crate::domain::{ProductRef, Quantity};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{ApiJson, CurrentUser, IdempotencyKey};

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

async fn get_cart(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<CartView>> {
    Ok(Json(cart::cart(&state, &user).await?))
}

async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<AddRequest>,
) -> ApiResult<Json<CartView>> {
    let (product, quantity) = (&req.product_id, req.quantity);
    Ok(Json(
        cart::add_item(&state, &user, product, quantity, key).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<RemoveRequest>,
) -> ApiResult<Json<CartView>> {
    Ok(Json(
        cart::remove_item(&state, &user, &req.product_id, key).await?,
    ))
}
