//! Live notifications over SSE. One shared task tails the notification log (written
//! by the `shopflow services` process, so it is read from SQLite, not memory) and fans
//! new entries out to every open stream; each stream starts with the user's history.
//! The SSE event id is the log id: a client reconnecting with `Last-Event-ID` gets
//! exactly what it missed, nothing twice.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::datastar::{self, MergeMode};
use super::error::ApiError;
use super::extract::CurrentUser;
use crate::db::Db;
use crate::db::orders::Notification;

pub fn router() -> Router<AppState> {
    Router::new().route("/stream/notifications", get(stream))
}

/// How often the shared tail looks for new log entries.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);
/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How much history a new stream starts with.
pub const HISTORY: i64 = 50;
/// Where the page shows notifications; new ones go first.
pub const LIST_SELECTOR: &str = "#notification-list";

/// The shared tail of the notification log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NotificationHub {
    tx: broadcast::Sender<Arc<Notification>>,
}

impl NotificationHub {
    /// Starts tailing from the current end of the log.
    pub async fn start(db: Db) -> sqlx::Result<NotificationHub> {
        let mut last = db.last_notification_id().await?;
        let (tx, _) = broadcast::channel(1024);
        let hub = NotificationHub { tx: tx.clone() };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TAIL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match db.notifications_after(last, 500).await {
                    Ok(batch) => {
                        for n in batch {
                            last = n.id;
                            // No subscriber is fine: nobody is watching right now.
                            let _ = tx.send(Arc::new(n));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the notification log"),
                }
            }
        });
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.tx.subscribe()
    }
}

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
pub fn notification_event(n: &Notification) -> Result<String, askama::Error> {
    let html = notification_html(n)?;
    Ok(datastar::merge_fragments(
        &html,
        Some(LIST_SELECTOR),
        MergeMode::Prepend,
        Some(n.id),
    ))
}

async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    // Subscribe before reading history, so nothing falls between the two.
    let mut live = state.notifications.subscribe();
    let history = match after {
        Some(id) => state.db.notifications(user.username(), id).await?,
        None => {
            state
                .db
                .recent_notifications(user.username(), HISTORY)
                .await?
        }
    };
    let (tx, response) = datastar::sse_channel();
    let (db, shutdown, user) = (
        state.db.clone(),
        state.shutdown.clone(),
        user.username().to_owned(),
    );
    tokio::spawn(async move {
        let mut last = after.unwrap_or(0);
        let send = |n: &Notification| {
            notification_event(n).map_err(|e| tracing::error!(error = %e, "render"))
        };
        for n in &history {
            let Ok(event) = send(n) else { return };
            if tx.send(event).await.is_err() {
                return;
            }
            last = n.id;
        }
        let mut keep_alive = tokio::time::interval_at(
            tokio::time::Instant::now() + KEEP_ALIVE_INTERVAL,
            KEEP_ALIVE_INTERVAL,
        );
        loop {
            let batch = tokio::select! {
                received = live.recv() => match received {
                    Ok(n) if n.user_id == user && n.id > last => vec![(*n).clone()],
                    Ok(_) => continue,
                    // Fell behind the shared tail: catch up from the log itself.
                    Err(RecvError::Lagged(_)) => match db.notifications(&user, last).await {
                        Ok(missed) => missed,
                        Err(_) => return,
                    },
                    Err(RecvError::Closed) => return,
                },
                _ = keep_alive.tick() => {
                    if tx.send(datastar::KEEP_ALIVE.to_owned()).await.is_err() {
                        return;
                    }
                    continue;
                }
                () = shutdown.wait() => return,
                () = tx.closed() => return,
            };
            for n in batch {
                let Ok(event) = send(&n) else { return };
                if tx.send(event).await.is_err() {
                    return;
                }
                last = n.id;
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_render_escaped_into_a_datastar_event() {
        let n = Notification {
            id: 42,
            user_id: "alice".into(),
            order_id: Some("o1".into()),
            kind: "payment_failed".into(),
            message: "Order o1: payment failed: <img src=x onerror=alert(1)> & \"more\"".into(),
            created_at: "2026-11-26T05:51:21.788Z".into(),
        };
        let event = notification_event(&n).unwrap();
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
}
