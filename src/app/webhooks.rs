//! Webhook subscriptions (admin only) and the dispatcher that tells each subscriber's
//! `WebhookQueue` of new deliveries. The deliveries themselves are written with the
//! events (see `durable::notify`) and made by the queue, durably.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{App, AppError, AppResult, require_admin};
use crate::db::webhooks::{Delivery, Redelivery, Webhook};
use crate::db::{Db, User};
use crate::domain::webhooks::{check_url, is_public, literal_ip, parse_events, secret_from_key};
use crate::durable::RestateClient;
use crate::durable::ingress::CallError;

/// A new subscription, with the secret its deliveries are signed with (shown once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

/// The admin subscribes `url` to `events`.
pub async fn create(app: &App, user: &User, url: &str, events: &[String]) -> AppResult<NewWebhook> {
    require_admin(user)?;
    let url = check_url(url).map_err(|e| AppError::invalid("invalid_url", e))?;
    let events = parse_events(events).map_err(|e| AppError::invalid("invalid_events", e))?;
    if !app.webhook_allow_private {
        refuse_private(&url).await?;
    }
    let id = format!("wh_{}", hex::encode(crate::secrets::random_bytes(8)));
    let secret = secret_from_key(&crate::secrets::random_bytes(24));
    let by = user.username.as_str();
    let webhook = app
        .db
        .create_webhook(&id, url.as_str(), &events, &secret, by)
        .await?;
    Ok(NewWebhook { webhook, secret })
}

/// Refuses a URL whose host is, or resolves to, a loopback or private address. A name
/// that does not resolve now is let through: every delivery checks again.
async fn refuse_private(url: &reqwest::Url) -> AppResult<()> {
    let host = url.host_str().unwrap_or_default();
    let refused = |ip: IpAddr| {
        AppError::invalid(
            "invalid_url",
            format!(
                "{host} is {ip}, not a public address (SHOPFLOW_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            ),
        )
    };
    if let Some(ip) = literal_ip(url) {
        return if is_public(ip) {
            Ok(())
        } else {
            Err(refused(ip))
        };
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host, port));
    if let Ok(Ok(found)) = tokio::time::timeout(Duration::from_secs(2), lookup).await {
        for addr in found {
            if !is_public(addr.ip()) {
                return Err(refused(addr.ip()));
            }
        }
    }
    Ok(())
}

pub async fn list(app: &App, user: &User) -> AppResult<Vec<Webhook>> {
    require_admin(user)?;
    Ok(app.db.webhooks().await?)
}

pub async fn show(app: &App, user: &User, id: &str) -> AppResult<Webhook> {
    require_admin(user)?;
    app.db.webhook(id).await?.ok_or_else(|| unknown(id))
}

/// Ends a subscription: nothing more is delivered to it.
pub async fn delete(app: &App, user: &User, id: &str) -> AppResult<()> {
    require_admin(user)?;
    if app.db.delete_webhook(id).await? {
        Ok(())
    } else {
        Err(unknown(id))
    }
}

/// The subscription's delivery log, oldest first.
pub async fn deliveries(app: &App, user: &User, id: &str) -> AppResult<Vec<Delivery>> {
    require_admin(user)?;
    if app.db.webhook(id).await?.is_none() {
        return Err(unknown(id));
    }
    Ok(app.db.webhook_deliveries(id).await?)
}

/// Sends a delivered or failed delivery again, with its `webhook-id`.
pub async fn redeliver(app: &App, user: &User, id: &str, delivery_id: &str) -> AppResult<Delivery> {
    require_admin(user)?;
    if app.db.webhook(id).await?.is_none() {
        return Err(unknown(id));
    }
    match app.db.redeliver_webhook(id, delivery_id).await? {
        Redelivery::Queued(delivery) => Ok(delivery),
        Redelivery::Pending => Err(AppError::conflict(
            "delivery_pending",
            format!("delivery {delivery_id} is still being delivered"),
        )),
        Redelivery::Unknown => Err(AppError::not_found(
            "unknown_delivery",
            format!("webhook {id} has no delivery {delivery_id}"),
        )),
    }
}

fn unknown(id: &str) -> AppError {
    AppError::not_found("unknown_webhook", format!("no webhook is known as {id}"))
}

/// How often the dispatcher looks for deliveries no queue has been told of.
const DISPATCH_INTERVAL: Duration = Duration::from_millis(200);
/// How long it waits after Restate or the database failed it.
const DISPATCH_BACKOFF: Duration = Duration::from_secs(2);

/// Tells each subscriber's `WebhookQueue` of its new deliveries, until shutdown. Telling
/// a queue twice is harmless (it takes what is pending), so several web processes may
/// run this side by side.
pub fn start_dispatcher(db: Db, restate: RestateClient, shutdown: crate::shutdown::Shutdown) {
    tokio::spawn(async move {
        let mut wait = DISPATCH_INTERVAL;
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match dispatch(&db, &restate).await {
                Ok(()) => DISPATCH_INTERVAL,
                Err(error) => {
                    tracing::warn!(%error, "webhook deliveries not handed to their queues yet");
                    DISPATCH_BACKOFF
                }
            };
        }
    });
}

async fn dispatch(db: &Db, restate: &RestateClient) -> anyhow::Result<()> {
    for (webhook_id, upto) in db.unqueued_webhook_deliveries().await? {
        let sent = restate.webhook_queue(&webhook_id).drain().send().await;
        if let Err(e) = sent {
            anyhow::bail!("{}", CallError::from(e));
        }
        db.mark_webhook_queued(&webhook_id, upto).await?;
    }
    Ok(())
}
