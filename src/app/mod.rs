//! The use cases, over the database and Restate: carts, checkout, payments, approvals,
//! orders, identity, the live feed and the crash drill. The web role's routes and the
//! page's actions are thin adapters over these; nothing here knows HTTP requests or
//! HTML. Every failure is an `AppError`.

pub mod approvals;
pub mod cache;
pub mod cancellation;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod deployments;
pub mod drills;
pub mod error;
pub mod feed;
pub mod glance;
pub mod identity;
pub mod journal;
pub mod meta;
pub mod orders;
pub mod payments;
pub mod refunds;
pub mod returns;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

pub use error::{AppError, AppResult};

use crate::auth::Signer;
use crate::db::{Db, User};
use crate::durable::RestateClient;
use crate::process::ChildControl;

/// A client's `Idempotency-Key` (the header's bytes): 1-128 printable ASCII characters.
/// Tries of a request that carry the same key are one request: it is done once.
pub fn idempotency_key(bytes: Option<&[u8]>) -> AppResult<Option<String>> {
    let Some(key) = bytes else { return Ok(None) };
    if key.is_empty() || key.len() > 128 || !key.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(AppError::invalid(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 printable ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(key).into_owned()))
}

/// Everything the use cases need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    pub db: Db,
    pub restate: RestateClient,
    /// Signs API tokens and the page's session cookies.
    pub signer: Signer,
    /// Password checks under way and recent failures.
    pub sign_ins: identity::SignIns,
    /// Demo mode: a bare user name identifies the caller, no password needed.
    pub demo: bool,
    /// The payment gateway (simulated) and the secret its callbacks are signed with.
    pub gateway: payments::Gateway,
    /// The notification log, tailed once, fanned out per user and per order.
    pub feed: feed::Feed,
    /// The catalog and the users in memory, kept current by the feed's tail.
    pub caches: Arc<cache::Caches>,
    /// The supervised children, when this process supervises them: the crash drills.
    pub supervised: Supervised,
    /// The service endpoint as registered with Restate.
    pub services_url: String,
    /// How long after delivery an order may be returned.
    pub return_window: std::time::Duration,
    /// Whether webhooks may be sent to loopback and private addresses.
    pub webhook_allow_private: bool,
}

/// The children this process supervises (none for `shopflow web`).
#[derive(Clone, Debug, Default)]
pub struct Supervised {
    /// The service endpoint (`shopflow services`).
    pub endpoint: Option<ChildControl>,
    /// restate-server, when ShopFlow started it.
    pub restate: Option<ChildControl>,
}

/// What the web role is told about where it runs.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    pub data_dir: &'a Path,
    pub demo: bool,
    pub webhook_secret: String,
    /// Where the simulated gateway posts callbacks, and the `Host` it names.
    pub callback_url: String,
    pub callback_host: String,
    /// The service endpoint as registered with Restate (what readiness checks).
    pub services_url: String,
    pub return_window: std::time::Duration,
    pub webhook_allow_private: bool,
}

impl App {
    /// The use cases over `db` and `restate`; starts the live feed.
    pub async fn new(
        settings: Settings<'_>,
        db: Db,
        restate: RestateClient,
        supervised: Supervised,
        shutdown: crate::shutdown::Shutdown,
    ) -> anyhow::Result<App> {
        let signer = Signer::load_or_create(settings.data_dir).with_context(|| {
            format!(
                "cannot read or create the signing key in {}",
                settings.data_dir.display()
            )
        })?;
        let caches = Arc::new(cache::Caches::default());
        webhooks::start_dispatcher(db.clone(), restate.clone(), shutdown.clone());
        let feed = feed::Feed::start(db.clone(), restate.clone(), caches.clone(), shutdown).await?;
        Ok(App {
            gateway: payments::Gateway::new(
                settings.webhook_secret,
                settings.callback_url,
                settings.callback_host,
            )?,
            db,
            restate,
            signer,
            sign_ins: identity::SignIns::default(),
            demo: settings.demo,
            feed,
            caches,
            supervised,
            services_url: settings.services_url,
            return_window: settings.return_window,
            webhook_allow_private: settings.webhook_allow_private,
        })
    }
}

/// What `/healthz/ready` reports: ready to serve when all three hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub database: bool,
    /// Restate's ingress and admin API answer.
    pub restate: bool,
    /// Restate has the service endpoint registered, and the endpoint answers.
    pub endpoint: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.restate && self.endpoint
    }
}

/// Whether the database, Restate and the registered service endpoint answer now.
pub async fn readiness(app: &App) -> Readiness {
    let (database, ingress, admin, endpoint) = tokio::join!(
        app.db.ping(),
        app.restate.ingress_healthy(),
        app.restate.admin_healthy(),
        app.restate.endpoint_ready(&app.services_url),
    );
    Readiness {
        database,
        restate: ingress && admin,
        endpoint,
    }
}

/// What the read model holds, counted, for monitoring.
pub async fn totals(app: &App) -> AppResult<crate::db::orders::Totals> {
    Ok(app.db.totals().await?)
}

/// Whether the database and Restate's ingress answer now.
pub async fn health(app: &App) -> (bool, bool) {
    tokio::join!(app.db.ping(), app.restate.ingress_healthy())
}

/// Admins only.
pub fn require_admin(user: &User) -> AppResult<()> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "forbidden",
            "this needs the admin role",
        ))
    }
}
