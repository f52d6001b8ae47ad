//! `/api/users` (the demo picker's list) and `/api/products`: no identity needed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use std::sync::Arc;

use crate::app::catalog;
use crate::db::User;
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

async fn products(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(json_bytes(catalog::products(&state).await?.json.clone()))
}

async fn product(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let product =
        ProductRef::parse(&id).map_err(|e| ApiError::bad_request("invalid_product_id", e))?;
    Ok(json_bytes(catalog::product_json(&state, &product).await?))
}

/// JSON the catalog encoded already, without copying it.
fn json_bytes(json: Arc<[u8]>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_owner(json),
    )
        .into_response()
}
