//! `/api/products`, which need no identity; and `/api/users`, for admins (and for the
//! picker in demo mode).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{catalog, require_admin};
use crate::db::{Product, User};
use crate::domain::ProductRef;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(products))
        .routes(routes!(product))
}

/// The users and their roles: for admins; in demo mode for anyone (the picker's list).
#[utoipa::path(get, path = "/api/users", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>)))]
async fn users(
    State(state): State<AppState>,
    caller: Result<CurrentUser, ApiError>,
) -> ApiResult<Json<Vec<User>>> {
    if !state.demo {
        require_admin(&*caller?)?;
    }
    Ok(Json(catalog::users(&state).await?))
}

/// The catalog; `stock_qty` is what is available now.
#[utoipa::path(get, path = "/api/products", tag = "catalog",
    responses((status = 200, body = Vec<Product>)))]
async fn products(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(json_bytes(catalog::products(&state).await?.json.clone()))
}

/// One product, by id (`3`) or SKU (`P003`).
#[utoipa::path(get, path = "/api/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The product's id or SKU")),
    responses((status = 200, body = Product)))]
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
