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
use crate::db::{Location, Product, User};
use crate::domain::ProductRef;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{Admin, ApiJson, CurrentUser};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(products))
        .routes(routes!(product))
        .routes(routes!(locations))
        .routes(routes!(set_stock))
}

/// The locations stock is kept in and parcels ship from.
#[utoipa::path(get, path = "/api/locations", tag = "catalog",
    responses((status = 200, body = Vec<Location>)))]
async fn locations(State(state): State<AppState>) -> ApiResult<Json<Vec<Location>>> {
    Ok(Json(catalog::locations(&state).await?))
}

/// One location's new stock level of a product.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StockRequest {
    location: String,
    stock_qty: i64,
}

/// Sets one location's stock level of a product (admins); answers the product.
#[utoipa::path(put, path = "/api/admin/products/{id}/stock", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The product's id or SKU")),
    request_body = StockRequest,
    responses((status = 200, body = Product)))]
async fn set_stock(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StockRequest>,
) -> ApiResult<Json<Product>> {
    let product =
        ProductRef::parse(&id).map_err(|e| ApiError::bad_request("invalid_product_id", e))?;
    let product = catalog::set_stock(&state, &user, &product, &req.location, req.stock_qty).await?;
    Ok(Json(product))
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
