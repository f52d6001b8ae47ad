//! `/api/payment/callback`: the payment gateway's signed callback.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::payments::{self, Callback, CallbackReply};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{RawBody, parse_json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(callback))
}

/// The signature is checked on the raw body before anything is read from it.
#[utoipa::path(post, path = "/api/payment/callback", tag = "payment",
    params(("X-Payment-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">`")),
    request_body = Callback,
    responses((status = 200, description = "The payment's new state", body = CallbackReply)))]
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<CallbackReply>> {
    let signature = headers
        .get("x-payment-signature")
        .and_then(|v| v.to_str().ok());
    payments::authenticate(&state, signature, &body)?;
    let callback: Callback = parse_json(&body)?;
    Ok(Json(payments::settle(&state, callback).await?))
}
