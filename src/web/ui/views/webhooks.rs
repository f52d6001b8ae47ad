//! The admin's webhooks: each subscription with its latest deliveries (a failed or
//! delivered one can be sent again), and the form to subscribe a URL.

use super::*;
use crate::db::webhooks::{Delivery, Webhook};

/// How many of a subscription's latest deliveries the page lists.
const LATEST: usize = 5;

pub struct WebhookRow {
    pub(super) id: String,
    pub(super) url: String,
    pub(super) events: String,
    pub(super) delete_url: String,
    pub(super) deliveries: Vec<DeliveryRow>,
}

pub struct DeliveryRow {
    pub(super) delivery_id: String,
    pub(super) event: String,
    pub(super) status: String,
    pub(super) attempts: i64,
    /// The last answer's status code, or the error that stood for one.
    pub(super) last: String,
    /// Only a delivery that is not pending can be sent again.
    pub(super) redeliver_url: Option<String>,
}

pub(super) async fn webhooks(state: &AppState, user: &CurrentUser) -> ApiResult<Vec<WebhookRow>> {
    let mut rows = Vec::new();
    for webhook in app::webhooks::list(state, user).await? {
        let log = app::webhooks::deliveries(state, user, &webhook.id).await?;
        rows.push(webhook_row(&webhook, &log));
    }
    Ok(rows)
}

fn webhook_row(webhook: &Webhook, log: &[Delivery]) -> WebhookRow {
    let id = &webhook.id;
    let events: Vec<_> = webhook.events.iter().map(|e| e.as_str()).collect();
    WebhookRow {
        id: id.clone(),
        url: webhook.url.clone(),
        events: events.join(", "),
        delete_url: format!("/ui/webhook-delete/{id}"),
        deliveries: log
            .iter()
            .rev()
            .take(LATEST)
            .map(|d| DeliveryRow {
                delivery_id: d.delivery_id.clone(),
                event: d.event.clone(),
                status: d.status.clone(),
                attempts: d.attempts,
                last: match (d.last_status_code, &d.last_error) {
                    (Some(code), _) => code.to_string(),
                    (None, Some(error)) => error.clone(),
                    (None, None) => String::new(),
                },
                redeliver_url: (d.status != "pending")
                    .then(|| format!("/ui/webhook-redeliver/{id}/{}", d.delivery_id)),
            })
            .collect(),
    }
}
