//! The Restate side of ShopFlow: durable services, the endpoint that serves them,
//! and the HTTP client the web role uses to call them through Restate's ingress.

pub mod errors;
pub mod ingress;
pub mod notify;
pub mod shipping;
pub mod user_session;
pub mod workflow;

use std::future::Future;
use std::time::Duration;

use restate_sdk::endpoint::Endpoint;
use restate_sdk::http_server::HttpServer;
use tokio::net::TcpListener;

use crate::db::Db;
pub use ingress::RestateClient;
pub use shipping::ShippingService;
pub use user_session::UserSession;
pub use workflow::OrderFulfillmentWorkflow;

/// Timings the durable services take from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub payment_timeout: Duration,
    pub delivery_delay: Duration,
}

/// Every durable service ShopFlow offers, bound to one endpoint. With `identity_key`
/// (Restate's `publickeyv1_…` public key) only requests Restate signed are served.
pub fn endpoint(db: Db, timings: Timings, identity_key: Option<&str>) -> anyhow::Result<Endpoint> {
    let mut builder = Endpoint::builder()
        .bind(UserSession::new(db.clone(), timings.payment_timeout))
        .bind(OrderFulfillmentWorkflow::new(
            db.clone(),
            timings.delivery_delay,
        ))
        .bind(ShippingService::new(db));
    if let Some(key) = identity_key {
        builder = builder
            .identity_key(key)
            .map_err(|e| anyhow::anyhow!("SHOPFLOW_RESTATE_IDENTITY_KEY is not usable: {e}"))?;
    }
    Ok(builder.build())
}

/// Serves the endpoint (HTTP/2 cleartext) on `listener` until `shutdown` completes.
/// The listener should have TCP_NODELAY set (see `crate::net::bind`), otherwise every
/// call on a virtual object key pays a 40 ms delayed-ACK stall.
pub async fn serve(endpoint: Endpoint, listener: TcpListener, shutdown: impl Future) {
    HttpServer::new(endpoint)
        .serve_with_cancel(listener, shutdown)
        .await;
}
