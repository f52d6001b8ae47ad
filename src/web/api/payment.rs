//! `/api/payment/callback`: the payment gateway's signed callback.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};

use crate::app::payments::{self, Callback, CallbackReply};
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::{RawBody, parse_json};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payment/callback", post(callback))
}

/// The signature is checked on the raw body before anything is read from it.
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
