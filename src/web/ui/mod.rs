//! The browser UI: one server-rendered page at `/` (navigation | Input/Output tabs |
//! notifications and workflow metadata), datastar actions under `/ui/` that answer
//! with the panes they changed, and one multiplexed stream per page that keeps the
//! page current. Both the page and the JSON API are adapters over `app`.

mod actions;
mod page;
mod pages;
mod sign_in;
mod signals;
mod stream;
mod views;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;
pub use pages::{PageId, Pages, Selection, View};
pub use signals::{Signals, UiSignals};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page::page))
        .route("/static/{file}", get(page::asset))
        .route("/ui/session", post(sign_in::sign_in))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route("/ui/stream", get(stream::stream))
        .route("/ui/view/{view}", get(actions::show_view))
        .route("/ui/order/{id}", get(actions::show_order))
        .route("/ui/cart/add/{product}", post(actions::add_to_cart))
        .route("/ui/cart/remove/{product}", post(actions::remove_from_cart))
        .route("/ui/checkout", post(actions::place_order))
        .route("/ui/pay/{id}", post(actions::pay))
        .route("/ui/decline/{id}", post(actions::decline))
        .route("/ui/approve/{id}", post(actions::approve))
        .route("/ui/reject/{id}", post(actions::reject))
        .route("/ui/cancel/{id}", post(actions::cancel))
        .route("/ui/return/{id}", post(actions::returns::request))
        .route("/ui/return-approve/{id}", post(actions::returns::approve))
        .route("/ui/return-reject/{id}", post(actions::returns::reject))
        .route("/ui/return-restock/{id}", post(actions::returns::restock))
        .route(
            "/ui/return-write-off/{id}",
            post(actions::returns::write_off),
        )
        .route("/ui/webhook", post(actions::webhooks::subscribe))
        .route("/ui/stock", post(actions::stock))
        .route("/ui/webhook-delete/{id}", post(actions::webhooks::delete))
        .route(
            "/ui/webhook-redeliver/{id}/{delivery}",
            post(actions::webhooks::redeliver),
        )
        .route("/ui/admin/crash", post(actions::crash))
        .route("/ui/admin/crash-restate", post(actions::crash_restate))
        .route("/ui/admin/carrier", post(actions::carrier))
}
