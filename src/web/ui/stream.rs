//! `/ui/stream`: the page's one long-lived stream (browsers allow six connections per
//! host, so a page holds one). It carries the user's notifications, the panes of the
//! page's current view whenever one of the user's orders moves, and the selected
//! order's workflow metadata every second while that order is under way.
//!
//! On every (re)connect the whole notification list is sent and morphed into place,
//! so nothing is lost or shown twice across reconnects; live entries are prepended.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::UiSignals;
use super::pages::Selection;
use super::views;
use crate::db::orders::Notification;
use crate::web::AppState;
use crate::web::datastar::{self, MergeMode};
use crate::web::error::ApiResult;
use crate::web::extract::CurrentUser;
use crate::web::notifications::{KEEP_ALIVE_INTERVAL, notification_event};
use crate::web::orders::load_order;

/// How often the selected order's metadata (elapsed time, retries) is looked at.
const META_REFRESH: Duration = Duration::from_secs(1);
/// When the panes are looked at again after a change. A notification is logged inside
/// the handler's `ctx.run`, a moment before Restate makes the handler's new state
/// readable, so the first rendering can show the state just before; these settle it.
const FOLLOW_UPS: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

pub async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    // Subscribe before reading the history, so nothing falls between the two.
    let mut live = state.notifications.subscribe();
    let (list, mut last_id) = views::notification_list(&state, &user).await?;
    let attached = state
        .pages
        .attach(&page, user.username(), signals.selection());
    let (tx, response) = datastar::sse_channel();
    tokio::spawn(async move {
        let mut attached = attached;
        let mut page = PageStream {
            state,
            user,
            last_meta: String::new(),
            last_panes: String::new(),
            settled: None,
        };
        let hello = datastar::merge_fragments(&list, None, MergeMode::Morph, None)
            + &datastar::merge_signals(&json!({"live": true}));
        if tx.send(hello).await.is_err() {
            return;
        }
        // The page may have missed changes while it was disconnected.
        if tx
            .send(page.panes(&mut attached.selection).await)
            .await
            .is_err()
        {
            return;
        }
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + META_REFRESH, META_REFRESH);
        let mut keep_alive = tokio::time::interval_at(
            tokio::time::Instant::now() + KEEP_ALIVE_INTERVAL,
            KEEP_ALIVE_INTERVAL,
        );
        let shutdown = page.state.shutdown.clone();
        let mut follow_ups: Vec<tokio::time::Instant> = Vec::new();
        loop {
            let next_follow_up = follow_ups.first().copied();
            let events = tokio::select! {
                received = live.recv() => {
                    let mut batch = Vec::new();
                    let mut next = received;
                    loop {
                        match next {
                            Ok(n) => {
                                if n.user_id == page.user.username() && n.id > last_id {
                                    last_id = n.id;
                                    batch.push(n);
                                }
                            }
                            Err(RecvError::Lagged(_)) => {
                                // Fell behind the shared tail: the log has it all.
                                match page.missed(last_id).await {
                                    Some(missed) => {
                                        if let Some(n) = missed.last() {
                                            last_id = n.id;
                                        }
                                        batch.extend(missed.into_iter().map(Arc::new));
                                    }
                                    None => return,
                                }
                            }
                            Err(RecvError::Closed) => return,
                        }
                        next = match live.try_recv() {
                            Ok(n) => Ok(n),
                            Err(TryRecvError::Lagged(k)) => Err(RecvError::Lagged(k)),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Closed) => Err(RecvError::Closed),
                        };
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    let mut events = String::new();
                    for n in &batch {
                        match notification_event(n) {
                            Ok(event) => events.push_str(&event),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot render a notification");
                                return;
                            }
                        }
                    }
                    // The news first, then the panes it changed (they take a few
                    // calls to render).
                    if tx.send(events).await.is_err() {
                        return;
                    }
                    let now = tokio::time::Instant::now();
                    follow_ups = FOLLOW_UPS.iter().map(|d| now + *d).collect();
                    page.panes(&mut attached.selection).await
                }
                () = sleep_until(next_follow_up), if next_follow_up.is_some() => {
                    follow_ups.remove(0);
                    page.panes(&mut attached.selection).await
                }
                changed = attached.selection.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // The action that changed it answered with the panes; only the
                    // workflow pane is ours to keep current.
                    let selection = attached.selection.borrow_and_update().clone();
                    page.settled = None;
                    match page.meta(&selection).await {
                        Some(meta) => meta,
                        None => continue,
                    }
                }
                _ = refresh.tick() => {
                    let selection = attached.selection.borrow().clone();
                    match page.meta(&selection).await {
                        Some(meta) => meta,
                        None => continue,
                    }
                }
                _ = keep_alive.tick() => datastar::KEEP_ALIVE.to_owned(),
                () = shutdown.wait() => return,
                () = tx.closed() => return,
            };
            if !events.is_empty() && tx.send(events).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

/// Sleeps until `deadline`; only polled when there is one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

struct PageStream {
    state: AppState,
    user: CurrentUser,
    /// The workflow pane as last sent, so an unchanged one is not sent again.
    last_meta: String,
    /// The panes as last sent, likewise.
    last_panes: String,
    /// A selected order that has finished: its pane no longer changes by itself.
    settled: Option<String>,
}

impl PageStream {
    /// Every pane for the page's current selection as events; nothing when they cannot
    /// be rendered now (Restate restarting, say): the next change or reconnect sends
    /// them. An action that changes the selection meanwhile answers with its own panes,
    /// so these are rendered again rather than sent stale over the action's.
    async fn panes(&mut self, selection: &mut watch::Receiver<Selection>) -> String {
        loop {
            let current = selection.borrow_and_update().clone();
            let rendered = views::render(&self.state, Some(&self.user), &current).await;
            if selection.has_changed().unwrap_or(false) {
                continue;
            }
            return match rendered {
                Ok(panes) => {
                    self.last_meta = panes.meta.clone();
                    self.settled = None;
                    let events = panes.events();
                    if events == self.last_panes {
                        return String::new();
                    }
                    self.last_panes = events.clone();
                    events
                }
                Err(e) => {
                    tracing::warn!(status = %e.status(), message = e.message(), "cannot render the page's panes");
                    String::new()
                }
            };
        }
    }

    /// The workflow pane when it changed since it was last sent.
    async fn meta(&mut self, selection: &Selection) -> Option<String> {
        let id = selection.order.as_ref()?;
        if self.settled.as_ref() == Some(id) {
            return None;
        }
        let order = load_order(&self.state, &self.user, id).await.ok();
        if order.as_ref().is_some_and(|o| o.status.is_final()) {
            self.settled = Some(id.clone());
        }
        let html = views::meta(&self.state, order.as_ref()).await.ok()?;
        if html == self.last_meta {
            return None;
        }
        self.last_meta = html.clone();
        Some(datastar::merge_fragments(
            &html,
            None,
            MergeMode::Morph,
            None,
        ))
    }

    async fn missed(&self, after: i64) -> Option<Vec<Notification>> {
        self.state
            .db
            .notifications(self.user.username(), after)
            .await
            .ok()
    }
}
