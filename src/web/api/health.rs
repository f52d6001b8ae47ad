//! Health: `/healthz` (200 when SQLite and Restate both answer, 503 saying which failed),
//! `/healthz/live` (the process serves: 200 always) and `/healthz/ready` (200 only when
//! SQLite, Restate and the registered service endpoint all answer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/live", get(live))
        .route("/healthz/ready", get(ready))
}

fn word(ok: bool) -> &'static str {
    if ok { "ok" } else { "unreachable" }
}

fn code(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (sqlite, restate) = crate::app::health(&state).await;
    let ok = sqlite && restate;
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "sqlite": word(sqlite),
        "restate": word(restate),
    });
    (code(ok), Json(body))
}

async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let r = crate::app::readiness(&state).await;
    let body = json!({
        "status": if r.ready() { "ready" } else { "not_ready" },
        "sqlite": word(r.sqlite),
        "restate": word(r.restate),
        "endpoint": word(r.endpoint),
    });
    (code(r.ready()), Json(body))
}
