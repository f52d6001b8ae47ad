//! The web role: the JSON API, the SSE streams and the datastar UI over axum.

pub mod cart;
pub mod catalog;
pub mod datastar;
pub mod error;
pub mod extract;
pub mod headers;
pub mod health;
pub mod markdown;
pub mod notifications;
pub mod orders;
pub mod origin;
pub mod payment;
pub mod session;
pub mod sign_in;
pub mod ui;
pub mod workflow_stream;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::auth::Signer;
use crate::db::Db;
use crate::durable::RestateClient;
use error::ApiError;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub restate: RestateClient,
    /// Demo mode: `X-User-ID` identifies the caller and the user picker needs no password.
    pub trust_user_header: bool,
    /// Signs payment callbacks; every callback must carry a valid `X-Payment-Signature`.
    pub webhook_secret: String,
    /// The shared tail of the notification log that live streams subscribe to.
    pub notifications: notifications::NotificationHub,
    /// Long-lived streams end when this fires, so a graceful stop does not wait on them.
    pub shutdown: crate::Shutdown,
    /// Signs API tokens and the UI's session cookies.
    pub signer: Signer,
    /// Password checks: how many run at once, and who has failed too often.
    pub sign_ins: sign_in::SignIns,
    /// The `Host` values this server answers.
    pub allowed_hosts: Arc<[String]>,
    /// Where the simulated payment gateway posts its callbacks: our own callback route,
    /// and the `Host` it names.
    pub callback_url: String,
    pub callback_host: String,
    /// The simulated payment gateway's HTTP client.
    pub http: reqwest::Client,
    /// The supervised service endpoint, when this process supervises one.
    pub services: Option<crate::process::ServicesControl>,
    /// What each open page shows, so its stream can keep it current.
    pub pages: ui::Pages,
}

impl AppState {
    /// The web role's state; starts the shared tail of the notification log.
    pub async fn new(
        config: &crate::config::Config,
        db: Db,
        restate: RestateClient,
        services: Option<crate::process::ServicesControl>,
        shutdown: crate::Shutdown,
    ) -> anyhow::Result<AppState> {
        use anyhow::Context;
        let notifications = notifications::NotificationHub::start(db.clone()).await?;
        let in_data_dir = |what: &str| {
            format!(
                "cannot read or create the {what} in {}",
                config.data_dir.display()
            )
        };
        let signer =
            Signer::load_or_create(&config.data_dir).with_context(|| in_data_dir("signing key"))?;
        let webhook_secret = config
            .webhook_secret()
            .with_context(|| in_data_dir("webhook secret"))?;
        let mut own = config.http_addr;
        if own.ip().is_unspecified() {
            own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let allowed_hosts: Arc<[String]> = config.allowed_hosts().into();
        let callback_host = if allowed_hosts.contains(&own.to_string()) {
            own.to_string()
        } else {
            allowed_hosts
                .first()
                .cloned()
                .unwrap_or_else(|| own.to_string())
        };
        Ok(AppState {
            db,
            restate,
            trust_user_header: config.trust_user_header,
            webhook_secret,
            notifications,
            shutdown,
            signer,
            sign_ins: sign_in::SignIns::default(),
            allowed_hosts,
            callback_url: format!("http://{own}/api/payment/callback"),
            callback_host,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .tcp_nodelay(true)
                .build()?,
            services,
            pages: ui::Pages::default(),
        })
    }
}

/// All routes, merged in one place.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(sign_in::router())
        .merge(catalog::router())
        .merge(cart::router())
        .merge(orders::router())
        .merge(payment::router())
        .merge(notifications::router())
        .merge(workflow_stream::router())
        .merge(ui::router())
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn(origin::refuse_cross_origin))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(headers::security_headers))
        // Outermost, so a request for a foreign host reaches nothing else.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::refuse_foreign_host,
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
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
