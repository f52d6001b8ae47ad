//! Checkout: the user's cart becomes an order that waits at the payment gateway. The
//! `UserSession/Checkout` handler does the work; this starts it (once per order id)
//! and waits, on the live feed and on Restate's own attach, until the order reaches
//! the gateway or is refused.

use std::time::Duration;

use serde::Serialize;

use super::feed::OrderWatch;
use super::{App, AppError, AppResult};
use crate::db::User;
use crate::db::orders::OrderSummary;
use crate::domain::ids::stable_hash;
use crate::domain::{OrderId, OrderStatus, ShippingAddress};
use crate::durable::ingress::{CallError, Executor};
use crate::durable::user_session::{CheckoutOutcome, CheckoutRequest};
use restate_sdk::ingress::InvocationHandle;
use restate_sdk::serde::Json;

/// How long checkout waits for the order to reach the payment gateway.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// A checkout claim this old whose order never reached the gateway is given up (its
/// checkout was lost before it started, or refused while the web role was away).
const CLAIM_STALE_SECS: i64 = 60;

/// What a checkout answers, also for an order id it knows already.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutReply {
    pub order_id: String,
    pub status: OrderStatus,
    pub awakeable_id: Option<String>,
}

/// The order id a checkout without one gets: stable for a retried request with the
/// same Idempotency-Key, random otherwise.
pub fn new_order_id(user: &str, key: Option<&str>) -> OrderId {
    let suffix = match key {
        Some(key) => format!("{:016x}", stable_hash(format!("{user}\0{key}").as_bytes())),
        None => uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
    };
    OrderId::parse(&format!("order-{suffix}")).expect("a valid order id")
}

/// Starts the checkout of the user's cart as `order_id` and waits until the order
/// reaches the payment gateway (or is refused). A known order id answers with that
/// order and starts nothing.
#[tracing::instrument(skip_all, fields(user = %user.username, order = %order_id))]
pub async fn place_order(
    app: &App,
    user: &User,
    order_id: OrderId,
    shipping_address: ShippingAddress,
) -> AppResult<CheckoutReply> {
    if let Some(known) = app.db.order_summary(&order_id).await? {
        if known.user_id != user.username {
            return Err(AppError::conflict(
                "order_id_taken",
                format!("order id {order_id} is already in use"),
            ));
        }
        return known_order(app, &order_id, known).await;
    }
    // One checkout per user at a time: a second one is refused now, and never runs
    // later (the handler checks it holds the claim).
    let stale =
        crate::clock::rfc3339(crate::auth::unix_now().saturating_sub(CLAIM_STALE_SECS) * 1000);
    let holder = app
        .db
        .claim_checkout(&user.username, &order_id, &stale)
        .await?;
    app.caches.checkout_claimed();
    if holder != order_id.as_str() {
        return Err(super::cart::checkout_in_progress(&holder));
    }
    // Watch the order before starting it, so no news falls in between.
    let watch = app.feed.watch_order(order_id.as_str());
    let request = CheckoutRequest {
        order_id: order_id.clone(),
        shipping_address,
    };
    // No idempotency key for Restate: it would replay a refusal (an empty cart) for
    // the same order id. Checkout itself answers a known order id with its outcome,
    // and a client's Idempotency-Key has already chosen the order id.
    let sent = app
        .restate
        .user_session(user.username.as_str())
        .checkout(Json(request))
        .send()
        .await;
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            app.db.release_checkout(&user.username, &order_id).await?;
            return Err(CallError::from(e).into());
        }
    };
    wait_placed(app, &order_id, watch, sent.invocation_handle()).await
}

/// Checkout suspends once the payment request is registered (the feed says so); a
/// refusal (empty cart, missing stock) ends the invocation instead (its attach says so).
async fn wait_placed(
    app: &App,
    order_id: &OrderId,
    mut watch: OrderWatch,
    invocation: InvocationHandle<Executor, Json<CheckoutOutcome>>,
) -> AppResult<CheckoutReply> {
    let finished = invocation.attach();
    tokio::pin!(finished);
    let deadline = tokio::time::sleep(START_DEADLINE);
    tokio::pin!(deadline);
    loop {
        if let Some(summary) = app.db.order_summary(order_id).await?
            && app.db.payment_by_order(order_id).await?.is_some()
        {
            return reply(app, &summary).await;
        }
        tokio::select! {
            _ = watch.changed() => {}
            outcome = &mut finished => {
                let outcome = outcome.map_err(CallError::from)?.into_body().into_inner();
                return Ok(CheckoutReply {
                    order_id: outcome.order_id.to_string(),
                    status: outcome.status,
                    awakeable_id: outcome.awakeable_id,
                });
            }
            () = &mut deadline => {
                let message = format!(
                    "checkout of {order_id} has not started yet; ask again with the same order_id"
                );
                return Err(AppError::unavailable("checkout_pending", message));
            }
        }
    }
}

/// A checkout asked again for an order it knows. One between its stock reservation and
/// its payment request (the first request's answer was lost to a crash, and Restate is
/// finishing it) is waited for, so the answer carries the `awakeable_id` to pay with.
async fn known_order(
    app: &App,
    order_id: &OrderId,
    known: OrderSummary,
) -> AppResult<CheckoutReply> {
    if known.status != OrderStatus::AwaitingPayment {
        return reply(app, &known).await;
    }
    let id = order_id.as_str();
    let placed = app.feed.wait_for(id, START_DEADLINE, || async {
        let summary = app.db.order_summary(order_id).await?;
        let payment = app.db.payment_by_order(order_id).await?;
        Ok(summary.filter(|s| payment.is_some() || s.status != known.status))
    });
    match placed.await? {
        Some(summary) => reply(app, &summary).await,
        None => {
            let message = format!(
                "checkout of {order_id} is still under way; ask again with the same order_id"
            );
            Err(AppError::unavailable("checkout_pending", message))
        }
    }
}

async fn reply(app: &App, summary: &OrderSummary) -> AppResult<CheckoutReply> {
    let order_id = OrderId::parse(&summary.order_id).map_err(AppError::internal)?;
    let payment = app.db.payment_by_order(&order_id).await?;
    Ok(CheckoutReply {
        order_id: summary.order_id.clone(),
        status: summary.status,
        awakeable_id: payment.map(|p| p.awakeable_id),
    })
}
