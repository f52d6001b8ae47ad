//! `/ui/stream`: the page's one long-lived stream (browsers allow six connections per
//! host, so a page holds one). It carries the user's notifications, the panes of the
//! page's current view whenever one of the user's orders moves, and the selected
//! order's workflow metadata as the live feed's per-order board updates it.
//!
//! On every (re)connect the whole notification list is sent and morphed into place,
//! so nothing is lost or shown twice across reconnects; live entries are prepended.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::pages::{Attached, Selection};
use super::{UiSignals, views};
use crate::app::feed::UserFeed;
use crate::app::meta::MetaSnapshot;
use crate::app::orders;
use crate::web::AppState;
use crate::web::datastar;
use crate::web::error::ApiResult;
use crate::web::extract::CurrentUser;
use crate::web::fragments::{self, notification_event};
use crate::web::live::{self, Events, Stop};

/// When the panes are looked at again after a change. Panes that show Restate's own
/// state (the cart) can lag the notification by a moment; these settle it.
const FOLLOW_UPS: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];
/// How often an admin's dashboard is drawn again: its charts count every order, not
/// only those whose news reach this admin.
const GLANCE_EVERY: Duration = Duration::from_secs(5);

type Meta = watch::Receiver<Option<Arc<MetaSnapshot>>>;

pub async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let slot = state.limits.stream_slot(user.username())?;
    let (mut history, feed) = state.feed.for_user(user.username(), None).await?;
    history.reverse();
    let list = views::notification_list_of(&history)?;
    let attached = state
        .pages
        .attach(&page, user.username(), signals.selection());
    let page = PageStream {
        state: state.clone(),
        user,
        last_panes: views::Panes::default(),
        meta_pane: fragments::MetaPane::default(),
    };
    let opened_as = page.user.clone();
    Ok(live::stream(&state, &opened_as, slot, move |tx| {
        page.run(tx, list, feed, attached)
    }))
}

struct PageStream {
    state: AppState,
    user: CurrentUser,
    /// The panes and the workflow pane as last sent, so nothing is sent twice.
    last_panes: views::Panes,
    meta_pane: fragments::MetaPane,
}

impl PageStream {
    async fn run(
        mut self,
        tx: Events,
        list: String,
        mut feed: UserFeed,
        mut attached: Attached,
    ) -> Result<(), Stop> {
        tx.send(datastar::morph(&list)).await?;
        tx.send(datastar::merge_signals(&json!({"live": true})))
            .await?;
        // The page may have missed changes while it was disconnected.
        self.panes(&tx, &mut attached.selection).await?;
        let selected = attached.selection.borrow().order.clone();
        let mut meta = self.watch_meta(selected).await;
        let mut follow_ups: Vec<Instant> = Vec::new();
        let mut glance = tokio::time::interval(GLANCE_EVERY);
        glance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_follow_up = follow_ups.first().copied();
            tokio::select! {
                batch = feed.next() => {
                    let Some(batch) = batch else { return Ok(()) };
                    for n in &batch {
                        tx.send(notification_event(n)?).await?;
                    }
                    // The news first, then the panes it changed.
                    let now = Instant::now();
                    follow_ups = FOLLOW_UPS.iter().map(|d| now + *d).collect();
                    self.panes(&tx, &mut attached.selection).await?;
                }
                _ = glance.tick(), if self.on_dashboard(&attached.selection) => {
                    self.panes(&tx, &mut attached.selection).await?;
                }
                () = sleep_until(next_follow_up), if next_follow_up.is_some() => {
                    follow_ups.remove(0);
                    self.panes(&tx, &mut attached.selection).await?;
                }
                changed = attached.selection.changed() => {
                    changed.map_err(|_| Stop)?;
                    // The action that changed it answered with the panes; the
                    // workflow pane now follows the newly selected order.
                    let selected = attached.selection.borrow_and_update().order.clone();
                    meta = self.watch_meta(selected).await;
                    self.meta(&tx, &mut meta).await?;
                }
                changed = changed(&mut meta) => {
                    if changed {
                        self.meta(&tx, &mut meta).await?;
                    } else {
                        meta = None;
                    }
                }
            }
        }
    }

    /// Whether the page shows an admin's dashboard (drawn again on a timer).
    fn on_dashboard(&self, selection: &watch::Receiver<Selection>) -> bool {
        self.user.is_admin() && selection.borrow().view == super::pages::View::Dashboard
    }

    /// Every pane for the page's current selection, when any changed. An action that
    /// changes the selection meanwhile answers with its own panes, so these are
    /// rendered again rather than sent stale over the action's.
    async fn panes(
        &mut self,
        tx: &Events,
        selection: &mut watch::Receiver<Selection>,
    ) -> Result<(), Stop> {
        let panes = loop {
            let current = selection.borrow_and_update().clone();
            let rendered = views::render(&self.state, Some(&self.user), &current).await;
            if !selection.has_changed().unwrap_or(false) {
                break rendered;
            }
        };
        match panes {
            Ok(panes) if panes != self.last_panes => {
                self.meta_pane.sent(panes.meta.clone());
                for event in panes.events() {
                    tx.send(event).await?;
                }
                self.last_panes = panes;
            }
            Ok(_) => {}
            // Restate restarting, say: the next change or reconnect sends them.
            Err(e) => {
                tracing::warn!(status = %e.status(), message = e.message(), "cannot render the page's panes")
            }
        }
        Ok(())
    }

    /// The selected order's metadata from the per-order board, if it is one the user
    /// may see (a page reports its selection itself after a reconnect).
    async fn watch_meta(&self, selection: Option<String>) -> Option<Meta> {
        let order = orders::visible(&self.state, &self.user, &selection?)
            .await
            .ok()?;
        let order_id = orders::parse_order_id(&order.order_id).ok()?;
        Some(self.state.feed.meta().watch(&order_id))
    }

    /// The workflow pane, when it changed since it was last sent.
    async fn meta(&mut self, tx: &Events, meta: &mut Option<Meta>) -> Result<(), Stop> {
        let event = match meta.as_mut().and_then(|m| m.borrow_and_update().clone()) {
            Some(snapshot) => self.meta_pane.update(&snapshot)?,
            None if meta.is_none() => {
                self.meta_pane.reset();
                self.meta_pane.whole(views::no_meta()?)
            }
            None => return Ok(()),
        };
        if let Some(event) = event {
            tx.send(event).await?;
        }
        Ok(())
    }
}

/// Whether the metadata changed (`false` once its order finished: no more changes);
/// never completes without a watched order.
async fn changed(meta: &mut Option<Meta>) -> bool {
    match meta {
        Some(meta) => meta.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; only polled when there is one.
async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}
