//! `/api/cart`: the caller's cart, held by their `UserSession` virtual object.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::cart::{self, CartView};
use crate::domain::{ProductRef, Quantity};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{ApiJson, CurrentUser, IdempotencyKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart))
        .routes(routes!(add))
        .routes(routes!(remove))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    #[schema(schema_with = super::product_ref)]
    product_id: ProductRef,
    quantity: Quantity,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveRequest {
    #[schema(schema_with = super::product_ref)]
    product_id: ProductRef,
}

/// The caller's cart.
#[utoipa::path(get, path = "/api/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = CartView)))]
async fn get_cart(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<CartView>> {
    Ok(Json(cart::cart(&state, &user).await?))
}

/// Adds a quantity of a product (the line's quantity stays within 1–99).
#[utoipa::path(post, path = "/api/cart/add", tag = "cart", security(("bearer" = [])),
    params(super::IdempotencyKeyHeader), request_body = AddRequest,
    responses((status = 200, description = "The cart after the change", body = CartView)))]
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

/// Removes a product's line.
#[utoipa::path(post, path = "/api/cart/remove", tag = "cart", security(("bearer" = [])),
    params(super::IdempotencyKeyHeader), request_body = RemoveRequest,
    responses((status = 200, description = "The cart after the change", body = CartView)))]
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
