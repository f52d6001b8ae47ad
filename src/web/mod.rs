//! The web role: the JSON API (and later the UI and SSE streams) over axum.

pub mod cart;
pub mod catalog;
pub mod datastar;
pub mod error;
pub mod extract;
pub mod health;
pub mod markdown;
pub mod notifications;
pub mod orders;
pub mod payment;
pub mod workflow_stream;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::db::Db;
use crate::durable::RestateClient;
use error::ApiError;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub restate: RestateClient,
    pub trust_user_header: bool,
    /// When set, payment callbacks must carry a valid `X-Payment-Signature`.
    pub webhook_secret: Option<String>,
    /// The shared tail of the notification log that live streams subscribe to.
    pub notifications: notifications::NotificationHub,
    /// Long-lived streams end when this fires, so a graceful stop does not wait on them.
    pub shutdown: crate::Shutdown,
}

impl AppState {
    /// The web role's state; starts the shared tail of the notification log.
    pub async fn new(
        config: &crate::config::Config,
        db: Db,
        restate: RestateClient,
        shutdown: crate::Shutdown,
    ) -> anyhow::Result<AppState> {
        let notifications = notifications::NotificationHub::start(db.clone()).await?;
        Ok(AppState {
            db,
            restate,
            trust_user_header: config.trust_user_header,
            webhook_secret: config.payment_webhook_secret.clone(),
            notifications,
            shutdown,
        })
    }
}

/// All routes, merged in one place.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(catalog::router())
        .merge(cart::router())
        .merge(orders::router())
        .merge(payment::router())
        .merge(notifications::router())
        .merge(workflow_stream::router())
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the web role on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY larger responses stall ~40 ms on delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
