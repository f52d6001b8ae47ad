//! What the live streams send, rendered: notifications as list items and the selected
//! order's `#workflow-meta` pane (current step, elapsed time, retries and the last
//! failure as Restate reports them, the next action, a progress bar).

use askama::Template;
use axum::response::sse::Event;

use super::datastar::{self, MergeMode};
use super::markdown::step_label;
use crate::app::journal::{JournalInvocation, Retries};
use crate::app::meta::MetaSnapshot;
use crate::app::orders::OrderView;
use crate::clock::parse_rfc3339;
use crate::db::orders::Notification;
use crate::domain::{OrderStatus, StepState};

/// Where the page shows notifications; new ones go first.
pub const LIST_SELECTOR: &str = "#notification-list";

#[derive(Template)]
#[template(path = "notification.html")]
struct NotificationItem<'a> {
    id: i64,
    kind: &'a str,
    created_at: &'a str,
    clock: &'a str,
    message: &'a str,
}

/// A notification as a list item (`#notification-{id}`), text escaped.
pub fn notification_html(n: &Notification) -> Result<String, askama::Error> {
    NotificationItem {
        id: n.id,
        kind: &n.kind,
        created_at: &n.created_at,
        clock: n.created_at.get(11..19).unwrap_or(&n.created_at),
        message: &n.message,
    }
    .render()
}

/// A notification as a datastar event that puts it at the top of the list.
pub fn notification_event(n: &Notification) -> Result<Event, askama::Error> {
    let html = notification_html(n)?;
    Ok(datastar::merge_fragments(
        &html,
        Some(LIST_SELECTOR),
        MergeMode::Prepend,
        Some(n.id),
    ))
}

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
    /// The order's durable steps as Restate journaled them.
    pub journal: Vec<JournalInvocation>,
    /// The same steps on a time axis (SVG), when there are any.
    pub timeline: Option<String>,
}

impl WorkflowMeta {
    pub fn new(
        order: &OrderView,
        retries: Retries,
        journal: Vec<JournalInvocation>,
        now: &str,
    ) -> Self {
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
        WorkflowMeta {
            order_id: order.order_id.clone(),
            status: order.status,
            status_label: order.status.label(),
            current_step: current.map(|s| step_label(s, order)).unwrap_or_default(),
            elapsed: elapsed(order, now),
            retry_count: retries.count,
            last_failure: retries
                .last_failure
                .or_else(|| order.failure_reason.clone()),
            next_action: next_action(order.status),
            progress: done * 100 / order.steps.len().max(1),
            timeline: super::charts::timeline(&journal, now),
            journal,
        }
    }
}

/// `2m 34s`, as the metadata pane shows it.
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
        OrderStatus::AwaitingPayment => "Pay or decline at the payment gateway (or cancel)",
        OrderStatus::AwaitingApproval => "Admin: approve or reject (the customer may cancel)",
        OrderStatus::Shipping => "None: the carrier is being booked",
        OrderStatus::InTransit => "None: waiting for delivery",
        OrderStatus::Delivered => "None: the order is complete",
        OrderStatus::PartiallyDelivered => {
            "None: what shipped arrived; the failed parcels were never charged"
        }
        OrderStatus::PaymentFailed | OrderStatus::PaymentTimedOut => {
            "Check out again with a new order"
        }
        OrderStatus::Rejected | OrderStatus::ShippingFailed | OrderStatus::Cancelled => {
            "None: the order ended; what was taken was given back"
        }
    }
}

/// How long the order has been under way at `now`; a finished order's clock stops at
/// its last change.
fn elapsed(order: &OrderView, now: &str) -> String {
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
    format_elapsed(elapsed_ms)
}

/// What one stream last sent of an order's pane, so that it sends only what changed:
/// the whole pane, or when only its clock moved (every second), just `Elapsed`.
#[derive(Default)]
pub struct MetaPane {
    last: Option<std::sync::Arc<MetaSnapshot>>,
    html: String,
    elapsed: String,
}

impl MetaPane {
    /// The event that brings the client's pane to `snapshot`, if anything changed.
    pub fn update(
        &mut self,
        snapshot: &std::sync::Arc<MetaSnapshot>,
    ) -> Result<Option<Event>, askama::Error> {
        let clock_only = self.last.as_ref().is_some_and(|last| {
            std::sync::Arc::ptr_eq(&last.order, &snapshot.order)
                && last.retries == snapshot.retries
                && last.journal == snapshot.journal
        });
        self.last = Some(snapshot.clone());
        if clock_only {
            let elapsed = elapsed(&snapshot.order, &snapshot.at);
            if elapsed == self.elapsed {
                return Ok(None);
            }
            let html = format!("<dd id=\"workflow-elapsed\">{elapsed}</dd>");
            self.elapsed = elapsed;
            // The client's pane is no longer `self.html`: the next whole one is sent.
            self.html.clear();
            return Ok(Some(datastar::morph(&html)));
        }
        self.elapsed = elapsed(&snapshot.order, &snapshot.at);
        Ok(self.whole(meta_html(snapshot)?))
    }

    /// The event for a whole pane (`html`), unless the client has it already.
    pub fn whole(&mut self, html: String) -> Option<Event> {
        if html == self.html {
            return None;
        }
        let event = datastar::morph(&html);
        self.html = html;
        Some(event)
    }

    /// Forgets the snapshot: the next one is sent whole.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Records a whole pane sent by other means (with the page's other panes).
    pub fn sent(&mut self, html: String) {
        self.last = None;
        self.html = html;
    }
}

/// The `#workflow-meta` pane of an order as a snapshot shows it.
pub fn meta_html(snapshot: &MetaSnapshot) -> Result<String, askama::Error> {
    let journal = snapshot.journal.clone();
    WorkflowMeta::new(
        &snapshot.order,
        snapshot.retries.clone(),
        journal,
        &snapshot.at,
    )
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::live::wire;

    #[tokio::test]
    async fn notifications_render_escaped_into_a_datastar_event() {
        let n = Notification {
            id: 42,
            user_id: "alice".into(),
            order_id: Some("o1".into()),
            kind: "payment_failed".into(),
            message: "Order o1: payment failed: <img src=x onerror=alert(1)> & \"more\"".into(),
            created_at: "2026-11-26T05:51:21.788Z".into(),
        };
        let event = wire(vec![notification_event(&n).unwrap()]).await;
        assert!(event.starts_with("event: datastar-merge-fragments\nid: 42\ndata: selector #notification-list\ndata: mergeMode prepend\n"), "{event}");
        assert!(
            event.contains(
                r#"<li id="notification-42" class="notification notification-payment_failed">"#
            ),
            "{event}"
        );
        assert!(
            event.contains(r#"<time datetime="2026-11-26T05:51:21.788Z">05:51:21</time>"#),
            "{event}"
        );
        assert!(
            event.contains("&#60;img src=x onerror=alert(1)&#62; &#38; &#34;more&#34;")
                || event.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;more&quot;"),
            "{event}"
        );
        assert!(!event.contains("<img"), "{event}");
        assert!(event.ends_with("</li>\n\n"));
    }

    #[test]
    fn elapsed_reads_in_minutes_and_seconds() {
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
