//! The JSON API and its two SSE streams: one module per resource, each a router of
//! thin handlers over `app`.

mod cart;
mod catalog;
mod drills;
mod health;
mod orders;
mod payment;
mod session;
mod streams;

use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(session::router())
        .merge(catalog::router())
        .merge(cart::router())
        .merge(orders::router())
        .merge(payment::router())
        .merge(streams::router())
        .merge(drills::router())
}
