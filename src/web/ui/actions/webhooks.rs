//! The page's webhook actions: the admin subscribes a URL, deletes a subscription, or
//! sends a delivery again.

use super::*;
use crate::app::webhooks;

/// Subscribes the form's URL to its events (comma-separated); the secret is shown once.
pub async fn subscribe(action: UiAction) -> ApiResult<Response> {
    let signals = &action.signals;
    let events: Vec<String> = signals
        .webhook_events
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let url = signals.webhook_url.trim();
    let outcome = webhooks::create(&action.state, &action.user, url, &events)
        .await
        .map(|made| {
            format!(
                "Subscribed {} as {}; its signing secret, shown only now: {}",
                made.webhook.url, made.webhook.id, made.secret
            )
        });
    let reset = outcome.is_ok().then(|| json!({"webhookUrl": ""}));
    action
        .answer(action.in_view(View::Admin), outcome, reset)
        .await
}

pub async fn delete(action: UiAction<String>) -> ApiResult<Response> {
    let id = &action.path;
    let outcome = webhooks::delete(&action.state, &action.user, id)
        .await
        .map(|()| format!("Deleted webhook {id}; nothing more is delivered to it."));
    action
        .answer(action.in_view(View::Admin), outcome, None)
        .await
}

pub async fn redeliver(action: UiAction<(String, String)>) -> ApiResult<Response> {
    let (id, delivery) = &action.path;
    let outcome = webhooks::redeliver(&action.state, &action.user, id, delivery)
        .await
        .map(|d| format!("Delivery {} ({}) goes out again.", d.delivery_id, d.event));
    action
        .answer(action.in_view(View::Admin), outcome, None)
        .await
}
