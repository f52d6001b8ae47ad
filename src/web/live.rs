//! The live streams' transport: Server-Sent Events of datastar events, one task per
//! stream feeding a bounded channel, ended by shutdown or by the stream's slot; and a
//! one-off answer of events for an action.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::extract::CurrentUser;
use super::limits::StreamSlot;
use crate::app::identity;

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// A short answer of datastar events (an action's: the panes it changed).
pub fn respond(events: Vec<Event>) -> Response {
    let (tx, rx) = mpsc::channel(events.len().max(1));
    for event in events {
        let _ = tx.try_send(event);
    }
    Sse::new(EventStream::new(rx)).into_response()
}

/// Sends a live stream's events; fails once the client has gone away.
pub struct Events(mpsc::Sender<Event>);

/// Why a live stream's producer stopped: the client left, or something failed (logged).
#[derive(Debug)]
pub struct Stop;

impl Events {
    pub async fn send(&self, event: Event) -> Result<(), Stop> {
        self.0.send(event).await.map_err(|_| Stop)
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        tracing::warn!(status = %e.status(), message = e.message(), "a live stream stopped");
        Stop
    }
}

impl From<askama::Error> for Stop {
    fn from(e: askama::Error) -> Stop {
        tracing::error!(error = %e, "a live stream cannot render");
        Stop
    }
}

/// A long-lived SSE response for `user` fed by `produce`, with keep-alive comments. The
/// producer runs until it returns, the client goes away, the server shuts down or the
/// credential the stream was opened with ends (within `identity::RECHECK_EVERY`); the
/// stream holds `slot` (its place under the stream limits) until it ends.
pub fn stream<F, Fut>(
    state: &AppState,
    user: &CurrentUser,
    slot: StreamSlot,
    produce: F,
) -> Response
where
    F: FnOnce(Events) -> Fut,
    Fut: Future<Output = Result<(), Stop>> + Send + 'static,
{
    let shutdown = state.shutdown.clone();
    let opened_as = (**user).clone();
    let ended = identity::ended(state.app.clone(), user.credential.clone(), opened_as);
    let (tx, rx) = mpsc::channel(64);
    let closed = tx.clone();
    let producer = produce(Events(tx));
    tokio::spawn(async move {
        let _slot = slot;
        tokio::select! {
            _ = producer => {}
            () = shutdown.wait() => {}
            () = ended => {}
            () = closed.closed() => {}
        }
    });
    Sse::new(EventStream::new(rx))
        .keep_alive(
            KeepAlive::new()
                .interval(KEEP_ALIVE_INTERVAL)
                .text("keep-alive"),
        )
        .into_response()
}

/// The events as the wire carries them (for tests).
#[cfg(test)]
pub(crate) async fn wire(events: Vec<Event>) -> String {
    let body = respond(events).into_body();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The events a channel receives, as the stream axum's `Sse` sends.
pub struct EventStream(mpsc::Receiver<Event>);

impl EventStream {
    pub fn new(rx: mpsc::Receiver<Event>) -> Self {
        EventStream(rx)
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| event.map(Ok))
    }
}
