//! Catalog routes: users for the picker, products from SQLite.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::db::{Product, User};
use crate::domain::ProductRef;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", get(users))
        .route("/api/products", get(products))
        .route("/api/products/{id}", get(product))
}

async fn users(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.db.users().await?))
}

async fn products(State(state): State<AppState>) -> ApiResult<Json<Vec<Product>>> {
    Ok(Json(state.db.products().await?))
}

async fn product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    let product_ref =
        ProductRef::parse(&id).map_err(|e| ApiError::bad_request("invalid_product_id", e))?;
    find_product(&state, &product_ref).await.map(Json)
}

/// Looks a product up, answering 404 with the API's error when there is none.
pub async fn find_product(state: &AppState, product: &ProductRef) -> ApiResult<Product> {
    state
        .db
        .product(product)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_product", format!("no product {product}")))
}
