//! The web role: the JSON API (`api`), the page (`ui`) and their live streams, over
//! axum. Routes are adapters: they extract and check the request, call `app`, and
//! render the answer; the middleware here guards every route.

pub mod api;
pub mod charts;
pub mod datastar;
pub mod error;
pub mod extract;
pub mod fragments;
pub mod headers;
pub mod limits;
pub mod live;
pub mod markdown;
mod memory;
pub mod metrics;
pub mod origin;
mod query;
pub mod session;
pub mod trace;
pub mod ui;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::serve::{Listener, ListenerExt};
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;

use crate::app::{App, Settings};
use crate::config::Config;
use error::ApiError;

/// What every request handler can reach: the use cases and what only the web knows.
/// One allocation shared by every request (each middleware and handler takes a clone).
#[derive(Clone, Debug)]
pub struct AppState(Arc<WebState>);

#[derive(Debug)]
pub struct WebState {
    pub app: App,
    /// Long-lived streams end when this fires, so a graceful stop does not wait on them.
    pub shutdown: crate::shutdown::Shutdown,
    /// The `Host` values this server answers.
    pub allowed_hosts: Arc<[String]>,
    /// What each open page shows, so its stream can keep it current.
    pub pages: ui::Pages,
    /// How much work and how many streams are taken at once.
    pub limits: Arc<limits::Limits>,
    /// What `/metrics` reports.
    pub metrics: metrics::Metrics,
}

impl std::ops::Deref for AppState {
    type Target = WebState;
    fn deref(&self) -> &WebState {
        &self.0
    }
}

impl std::ops::Deref for WebState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// What the use cases need to know of the web role: where it runs (the simulated
/// gateway posts to our own route, naming a host we answer), demo mode, secrets.
pub fn settings(config: &Config) -> anyhow::Result<Settings<'_>> {
    use anyhow::Context;
    let mut own = config.http_addr;
    if own.ip().is_unspecified() {
        own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let allowed = config.allowed_hosts();
    let callback_host = if allowed.contains(&own.to_string()) {
        own.to_string()
    } else {
        allowed.first().cloned().unwrap_or_else(|| own.to_string())
    };
    let webhook_secret = config.webhook_secret().with_context(|| {
        format!(
            "cannot read or create the webhook secret in {}",
            config.data_dir.display()
        )
    })?;
    Ok(Settings {
        data_dir: &config.data_dir,
        demo: config.trust_user_header,
        webhook_secret,
        callback_url: format!("http://{own}/api/payment/callback"),
        callback_host,
        services_url: config.build_uri(),
        return_window: config.timings.return_window,
        webhook_allow_private: config.webhooks.allow_private,
    })
}

impl AppState {
    /// The web role's state over the use cases.
    pub fn new(config: &Config, app: App, shutdown: crate::shutdown::Shutdown) -> AppState {
        AppState(Arc::new(WebState {
            app,
            shutdown,
            allowed_hosts: config.allowed_hosts().into(),
            pages: ui::Pages::default(),
            limits: Arc::new(limits::Limits::new(limits::LimitConfig {
                in_flight: config.limits.max_in_flight as usize,
                streams: config.limits.max_streams as usize,
                streams_per_user: config.limits.max_streams_per_user as usize,
            })),
            metrics: metrics::Metrics::default(),
        }))
    }
}

/// All routes, merged in one place, and the guards every request passes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(ui::router())
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        // gzip for JSON, HTML, CSS and JS when the client accepts it; never for
        // `text/event-stream` (tower-http's default predicate leaves streams alone, so
        // each event reaches the client when it is sent) nor for tiny bodies.
        .layer(tower_http::compression::CompressionLayer::new())
        // Outermost: the request's span, log line and metrics, and the guards (the host
        // check first: a request for a foreign host reaches nothing else; then unknown
        // query parameters, cross-site writes, load shedding) and the security headers.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::observe,
        ))
        .with_state(state)
}

/// Serves the web role on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY larger responses stall ~40 ms on delayed ACKs.
    let mut listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(memory::give_back_after_bursts(
        state.limits.clone(),
        state.shutdown.clone(),
    ));
    let router = router(state);
    let mut connections = auto::Builder::new(TokioExecutor::new());
    // A client gets this long to send a request's headers (slow-header clients hold no
    // connection for long); a kept-alive connection's next request too.
    connections
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Each connection clones the router (one `Arc`) and knows its peer.
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(router.clone()));
        let connection = connections.serve_connection(TokioIo::new(io), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "a connection ended with an error");
            }
        });
    }
    // Requests under way are answered; the live streams end with the same shutdown.
    graceful.shutdown().await;
    Ok(())
}

/// How long a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
