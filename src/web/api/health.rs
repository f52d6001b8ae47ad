//! Health: `/healthz` (200 when the database and Restate both answer, 503 saying which
//! failed), `/healthz/live` (the process serves: 200 always) and `/healthz/ready` (200
//! only when the database, Restate and the registered service endpoint all answer).
//! The database's check is also reported as `sqlite`, its name before PostgreSQL, for
//! the clients that read it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// How one dependency answered.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Check {
    Ok,
    Unreachable,
}

impl From<bool> for Check {
    fn from(ok: bool) -> Check {
        if ok { Check::Ok } else { Check::Unreachable }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: HealthStatus,
    /// SQLite or PostgreSQL, whichever `SHOPFLOW_DATABASE_URL` names.
    database: Check,
    /// The same as `database`.
    #[schema(deprecated)]
    sqlite: Check,
    restate: Check,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum LiveStatus {
    Live,
}

#[derive(Serialize, ToSchema)]
struct Live {
    status: LiveStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ReadyStatus {
    Ready,
    NotReady,
}

#[derive(Serialize, ToSchema)]
struct Ready {
    status: ReadyStatus,
    /// SQLite or PostgreSQL, whichever `SHOPFLOW_DATABASE_URL` names.
    database: Check,
    /// The same as `database`.
    #[schema(deprecated)]
    sqlite: Check,
    /// Restate's ingress and admin API.
    restate: Check,
    /// The service endpoint Restate has registered.
    endpoint: Check,
}

fn code(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The database and Restate answer.
#[utoipa::path(get, path = "/healthz", tag = "health", responses(
    (status = 200, body = Health), (status = 503, description = "Which did not", body = Health)))]
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (database, restate) = crate::app::health(&state).await;
    let ok = database && restate;
    let status = if ok {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
    let body = Health {
        status,
        database: database.into(),
        sqlite: database.into(),
        restate: restate.into(),
    };
    (code(ok), Json(body))
}

/// The process serves (a liveness probe).
#[utoipa::path(get, path = "/healthz/live", tag = "health", responses((status = 200, body = Live)))]
async fn live() -> Json<Live> {
    Json(Live {
        status: LiveStatus::Live,
    })
}

/// Ready to serve orders (a readiness probe).
#[utoipa::path(get, path = "/healthz/ready", tag = "health", responses(
    (status = 200, body = Ready), (status = 503, description = "Which did not", body = Ready)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let r = crate::app::readiness(&state).await;
    let status = if r.ready() {
        ReadyStatus::Ready
    } else {
        ReadyStatus::NotReady
    };
    let body = Ready {
        status,
        database: r.database.into(),
        sqlite: r.database.into(),
        restate: r.restate.into(),
        endpoint: r.endpoint.into(),
    };
    (code(r.ready()), Json(body))
}
