//! The Restate side of ShopFlow: durable services, the endpoint that serves them,
//! and the HTTP client the web role uses to call them through Restate's ingress.

pub mod deployments;
pub mod errors;
pub mod ingress;
pub mod notify;
pub mod returns;
pub mod router;
pub mod shipping;
pub mod user_session;
pub mod webhooks;
pub mod workflow;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use restate_sdk::endpoint::Endpoint;

use crate::db::Db;
pub use ingress::RestateClient;
pub use returns::ReturnWorkflow;
pub use shipping::ShippingService;
pub use user_session::UserSession;
pub use webhooks::{WebhookQueue, WebhookSettings};
pub use workflow::OrderFulfillmentWorkflow;

/// Whether the workflow's journal has the next release's extra step (see
/// [`journal_with_extra_step`]).
static EXTRA_STEP: AtomicBool = AtomicBool::new(false);

/// Gives the workflow one more durable step (`next_release_step`, right after
/// `started_at`): the journal of the next release, for the test that upgrades ShopFlow
/// while orders are in flight (the `next_journal` example turns it on at start; the
/// `shopflow` executable never does). An order that started without the step and
/// replayed with it would fail with a journal mismatch.
pub fn journal_with_extra_step() {
    EXTRA_STEP.store(true, Ordering::Relaxed);
}

fn extra_step() -> bool {
    EXTRA_STEP.load(Ordering::Relaxed)
}

/// The header that names who asked for a decision (approve, reject, cancel), for the
/// order's timeline. Whoever reaches Restate's ingress can decide anyway; this only
/// says who did.
pub const ACTOR_HEADER: &str = "x-shopflow-actor";

/// Timings the durable services take from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub payment_timeout: Duration,
    pub delivery_delay: Duration,
    pub return_parcel_window: Duration,
}

/// Every durable service ShopFlow offers, bound to one endpoint. With `identity_key`
/// (Restate's `publickeyv1_…` public key) only requests Restate signed are served.
pub fn endpoint(
    db: Db,
    timings: Timings,
    webhooks: &WebhookSettings,
    identity_key: Option<&str>,
) -> anyhow::Result<Endpoint> {
    let mut builder = Endpoint::builder()
        .bind(UserSession::new(db.clone(), timings.payment_timeout))
        .bind(OrderFulfillmentWorkflow::new(
            db.clone(),
            timings.delivery_delay,
        ))
        .bind(ReturnWorkflow::new(
            db.clone(),
            timings.return_parcel_window,
        ))
        .bind(WebhookQueue::new(db.clone(), webhooks)?)
        .bind(ShippingService::new(db));
    if let Some(key) = identity_key {
        builder = builder
            .identity_key(key)
            .map_err(|e| anyhow::anyhow!("SHOPFLOW_RESTATE_IDENTITY_KEY is not usable: {e}"))?;
    }
    Ok(builder.build())
}

/// Serves the endpoint (HTTP/2 cleartext) on `listener` until `shutdown` completes;
/// calls for an older build kept under `builds_dir` go to that build (see [`router`]).
/// A TCP listener should have TCP_NODELAY set (see `crate::net::bind`), otherwise every
/// call on a virtual object key pays a 40 ms delayed-ACK stall.
pub async fn serve(
    endpoint: Endpoint,
    listener: router::Listener,
    builds_dir: std::path::PathBuf,
    shutdown: impl Future,
) {
    router::serve(endpoint, listener, builds_dir, shutdown).await;
}
