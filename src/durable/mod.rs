//! The Restate side of ShopFlow: durable services, the endpoint that serves them,
//! and the HTTP client the web role uses to call them through Restate's ingress.

pub mod errors;
pub mod ingress;
pub mod user_session;

use std::future::Future;

use restate_sdk::endpoint::Endpoint;
use restate_sdk::http_server::HttpServer;
use tokio::net::TcpListener;

use crate::db::Db;
pub use ingress::RestateClient;
pub use user_session::UserSession;

/// Every durable service ShopFlow offers, bound to one endpoint.
pub fn endpoint(db: Db) -> Endpoint {
    Endpoint::builder().bind(UserSession::new(db)).build()
}

/// Serves the endpoint (HTTP/2 cleartext) on `listener` until `shutdown` completes.
/// The listener should have TCP_NODELAY set (see `crate::net::bind`), otherwise every
/// call on a virtual object key pays a 40 ms delayed-ACK stall.
pub async fn serve(db: Db, listener: TcpListener, shutdown: impl Future) {
    HttpServer::new(endpoint(db))
        .serve_with_cancel(listener, shutdown)
        .await;
}
