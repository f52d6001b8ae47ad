//! `/api/users` (the demo picker's list) and `/api/products`: no identity needed.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use std::sync::Arc;

use crate::app::cache::Catalog;
use crate::app::catalog;
use crate::db::{Product, User};
use crate::domain::ProductRef;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", get(users))
        .route("/api/products", get(products))
        .route("/api/products/{id}", get(product))
}

async fn users(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(catalog::users(&state).await?))
}

async fn products(State(state): State<AppState>) -> ApiResult<Json<Arc<Catalog>>> {
    Ok(Json(catalog::products(&state).await?))
}

async fn product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    let product =
        ProductRef::parse(&id).map_err(|e| ApiError::bad_request("invalid_product_id", e))?;
    Ok(Json(catalog::product(&state, &product).await?))
}
