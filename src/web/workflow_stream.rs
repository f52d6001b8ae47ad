//! `/stream/workflow/{id}`: one order's progress as a live `#workflow-meta` fragment:
//! current step, elapsed time, retries and the last failure as Restate reports them
//! for the order's invocations, the next action, and a progress bar.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::AppState;
use super::datastar::{self, MergeMode};
use super::error::ApiResult;
use super::extract::CurrentUser;
use super::markdown::step_label;
use super::notifications::KEEP_ALIVE_INTERVAL;
use super::orders::{OrderView, load_order};
use crate::clock::{now_rfc3339, parse_rfc3339};
use crate::domain::{OrderStatus, StepState};

pub fn router() -> Router<AppState> {
    Router::new().route("/stream/workflow/{id}", get(stream))
}

/// How often an open stream looks at the order again.
const REFRESH: Duration = Duration::from_secs(1);

#[derive(Template)]
#[template(path = "workflow_meta.html")]
pub struct WorkflowMeta {
    pub order_id: String,
    pub status: OrderStatus,
    pub status_label: &'static str,
    pub current_step: String,
    pub elapsed: String,
    pub retry_count: i64,
    pub last_failure: Option<String>,
    pub next_action: &'static str,
    pub progress: usize,
}

/// What Restate says about the order's invocations that have not finished.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Retries {
    pub count: i64,
    pub last_failure: Option<String>,
}

impl WorkflowMeta {
    pub fn new(order: &OrderView, retries: Retries, now: &str) -> Self {
        let current = order
            .steps
            .iter()
            .find(|s| matches!(s.state, StepState::Active | StepState::Failed))
            .or_else(|| order.steps.last());
        let done = order
            .steps
            .iter()
            .filter(|s| s.state == StepState::Done)
            .count();
        // A finished order's clock stops at its last change.
        let end = if order.status.is_final() {
            order
                .steps
                .iter()
                .filter_map(|s| s.at.as_deref())
                .max()
                .unwrap_or(now)
        } else {
            now
        };
        let elapsed_ms = parse_rfc3339(end)
            .zip(parse_rfc3339(&order.created_at))
            .map_or(0, |(end, start)| (end - start).max(0));
        WorkflowMeta {
            order_id: order.order_id.clone(),
            status: order.status,
            status_label: order.status.label(),
            current_step: current.map(|s| step_label(s, order)).unwrap_or_default(),
            elapsed: format_elapsed(elapsed_ms),
            retry_count: retries.count,
            last_failure: retries
                .last_failure
                .or_else(|| order.failure_reason.clone()),
            next_action: next_action(order.status),
            progress: done * 100 / order.steps.len().max(1),
        }
    }
}

/// `2m 34s`, as the proposal's metadata pane shows it.
pub fn format_elapsed(ms: i64) -> String {
    let secs = ms / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

pub fn next_action(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::AwaitingPayment => "Pay or decline at the payment gateway",
        OrderStatus::AwaitingApproval => "Admin: approve or reject",
        OrderStatus::Shipping => "None: the carrier is being booked",
        OrderStatus::InTransit => "None: waiting for delivery",
        OrderStatus::Delivered => "None: the order is complete",
        OrderStatus::PaymentFailed | OrderStatus::PaymentTimedOut => {
            "Check out again with a new order"
        }
        OrderStatus::Rejected | OrderStatus::ShippingFailed => "None: the order was cancelled",
    }
}

/// Retries and the last failure of the order's unfinished invocations (the workflow and
/// the calls it made), from Restate's introspection tables.
pub async fn retries(state: &AppState, order_id: &str) -> Retries {
    // The order id is validated ([A-Za-z0-9_-]), so it is safe inside the SQL text.
    let sql = format!(
        "SELECT retry_count, last_failure FROM sys_invocation \
         WHERE status <> 'completed' AND (target_service_key = '{order_id}' OR invoked_by_id IN \
         (SELECT id FROM sys_invocation WHERE target_service_key = '{order_id}'))"
    );
    match state.restate.query(&sql).await {
        Ok(rows) => rows.iter().filter(|r| r["last_failure"].is_string()).fold(
            Retries::default(),
            |acc, r| Retries {
                count: acc.count + r["retry_count"].as_i64().unwrap_or(0),
                last_failure: r["last_failure"]
                    .as_str()
                    .map(str::to_owned)
                    .or(acc.last_failure),
            },
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read invocation data");
            Retries::default()
        }
    }
}

/// The `#workflow-meta` fragment of an order, with Restate's numbers as of now.
pub async fn meta_html(state: &AppState, order: &OrderView) -> ApiResult<String> {
    let retries = retries(state, &order.order_id).await;
    WorkflowMeta::new(order, retries, &now_rfc3339())
        .render()
        .map_err(super::error::ApiError::internal)
}

async fn render(state: &AppState, user: &CurrentUser, order_id: &str) -> ApiResult<String> {
    let order = load_order(state, user, order_id).await?;
    let html = meta_html(state, &order).await?;
    Ok(datastar::merge_fragments(
        &html,
        None,
        MergeMode::Morph,
        None,
    ))
}

async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    // Unknown, malformed or someone else's order: an error, before any stream opens.
    let first = render(&state, &user, &id).await?;
    let (tx, response) = datastar::sse_channel();
    tokio::spawn(async move {
        let mut last = first;
        if tx.send(last.clone()).await.is_err() {
            return;
        }
        let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
        let mut keep_alive = tokio::time::interval_at(
            tokio::time::Instant::now() + KEEP_ALIVE_INTERVAL,
            KEEP_ALIVE_INTERVAL,
        );
        loop {
            let event = tokio::select! {
                _ = refresh.tick() => match render(&state, &user, &id).await {
                    Ok(event) if event != last => {
                        last = event.clone();
                        event
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(status = %e.status(), "workflow stream refresh failed");
                        continue;
                    }
                },
                _ = keep_alive.tick() => datastar::KEEP_ALIVE.to_owned(),
                () = state.shutdown.wait() => return,
                () = tx.closed() => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_like_the_proposal() {
        assert_eq!(format_elapsed(999), "0s");
        assert_eq!(format_elapsed(59_000), "59s");
        assert_eq!(format_elapsed(154_000), "2m 34s");
        assert_eq!(format_elapsed(3_720_000), "1h 2m");
    }

    #[test]
    fn every_status_has_a_next_action() {
        for s in OrderStatus::ALL {
            assert!(!next_action(s).is_empty());
        }
        assert!(next_action(OrderStatus::AwaitingApproval).contains("approve"));
    }
}
