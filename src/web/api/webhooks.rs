//! Webhook subscriptions and their delivery logs (admin only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::webhooks::{self, NewWebhook};
use crate::db::webhooks::{Delivery, Webhook};
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{ApiJson, CurrentUser};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, delete))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    /// Where deliveries are posted: http or https.
    url: String,
    /// `order.paid`, `order.shipped`, `order.delivered`, `order.cancelled`,
    /// `order.refunded`, `return.refunded`.
    events: Vec<String>,
}

/// Admin: subscribes a URL to events. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/api/admin/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = WebhookBody,
    responses((status = 201, description = "The subscription and its secret", body = NewWebhook)))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<(StatusCode, Json<NewWebhook>)> {
    if body.events.len() > 20 {
        return Err(ApiError::bad_request("invalid_events", "at most 20 events"));
    }
    let made = webhooks::create(&state, &user, &body.url, &body.events).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Admin: every subscription, oldest first.
#[utoipa::path(get, path = "/api/admin/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<Webhook>)))]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(webhooks::list(&state, &user).await?))
}

/// Admin: one subscription.
#[utoipa::path(get, path = "/api/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id")),
    responses((status = 200, body = Webhook)))]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(webhooks::show(&state, &user, &id).await?))
}

/// Admin: ends a subscription; nothing more is delivered to it.
#[utoipa::path(delete, path = "/api/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id")),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&state, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admin: the subscription's deliveries, oldest first (the newest 1,000).
#[utoipa::path(get, path = "/api/admin/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id")),
    responses((status = 200, body = Vec<Delivery>)))]
async fn deliveries(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Delivery>>> {
    Ok(Json(webhooks::deliveries(&state, &user, &id).await?))
}

/// Admin: sends a delivered or failed delivery again, with the same `webhook-id`.
#[utoipa::path(post, path = "/api/admin/webhooks/{id}/deliveries/{did}/redeliver", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id"),
        ("did" = String, Path, description = "The delivery id")),
    responses((status = 202, description = "The delivery, pending again", body = Delivery)))]
async fn redeliver(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, did)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let delivery = webhooks::redeliver(&state, &user, &id, &did).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
