//! The API's live streams (datastar events over SSE): `/stream/notifications`, the
//! caller's notifications (history, then live; `Last-Event-ID` resumes exactly), and
//! `/stream/workflow/{id}`, one order's `#workflow-meta` pane as it changes.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::orders;
use crate::web::AppState;
use crate::web::error::ApiResult;
use crate::web::extract::CurrentUser;
use crate::web::fragments::{self, notification_event};
use crate::web::live;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notifications))
        .routes(routes!(workflow))
}

/// The caller's notifications as SSE (`datastar-merge-fragments` events): history,
/// then live; `Last-Event-ID` resumes after the last one seen.
#[utoipa::path(get, path = "/stream/notifications", tag = "streams", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream",
        body = String)))]
async fn notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let slot = state.limits.stream_slot(user.username())?;
    let (history, mut feed) = state.feed.for_user(user.username(), after).await?;
    Ok(live::stream(&state, &user, slot, |tx| async move {
        for n in &history {
            tx.send(notification_event(n)?).await?;
        }
        while let Some(batch) = feed.next().await {
            for n in &batch {
                tx.send(notification_event(n)?).await?;
            }
        }
        Ok(())
    }))
}

/// One order's workflow pane as SSE (`datastar-merge-fragments` events), as it changes.
#[utoipa::path(get, path = "/stream/workflow/{id}", tag = "streams", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order id")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream",
        body = String)))]
async fn workflow(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    // Unknown, malformed or someone else's order: an error, before any stream opens.
    let order = orders::visible(&state, &user, &id).await?;
    let order_id = orders::parse_order_id(&order.order_id)?;
    let slot = state.limits.stream_slot(user.username())?;
    let mut meta = state.feed.meta().watch(&order_id);
    Ok(live::stream(&state, &user, slot, |tx| async move {
        let mut pane = fragments::MetaPane::default();
        loop {
            let snapshot = meta.borrow_and_update().clone();
            if let Some(event) = snapshot.map(|s| pane.update(&s)).transpose()?.flatten() {
                tx.send(event).await?;
            }
            // A finished order's pane no longer changes: keep the stream, send nothing.
            if meta.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }))
}
