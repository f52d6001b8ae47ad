//! `/healthz`: 200 when SQLite and Restate both answer, 503 (saying which failed) otherwise.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (sqlite, restate) = crate::app::health(&state).await;
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let status = if sqlite && restate {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "degraded" },
        "sqlite": word(sqlite),
        "restate": word(restate),
    });
    (status, Json(body))
}
