//! Checkout's steps before the payment: the user's checkout claim, the order made
//! from the basket, the stock reserved for it, the payment request opened; and the
//! record of each status it reaches.

use restate_sdk::prelude::*;

use super::{ORDERS, UserSession, checkout_key};
use crate::clock::now_rfc3339;
use crate::db::orders::ReserveOutcome;
use crate::domain::{OrderId, OrderRecord, OrderStatus, ShippingAddress, Username};
use crate::durable::errors::refusal;
use crate::durable::notify::Event;
use crate::faults;

impl UserSession {
    /// The checkout must hold the user's checkout claim (the web role takes it before it
    /// starts one), so a second checkout sent while one is under way never runs later.
    pub(super) async fn check_claim(
        &self,
        ctx: &ObjectContext<'_>,
        order_id: &OrderId,
    ) -> Result<(), HandlerError> {
        let user = owner(ctx)?;
        let claim = ctx
            .run(|| async move { Ok(Json(self.db.checkout_claim(&user).await?)) })
            .name("check_claim")
            .await?
            .into_inner();
        match claim {
            Some(claimed) if claimed == order_id.as_str() => Ok(()),
            Some(other) => Err(refusal(
                409,
                "checkout_in_progress",
                format!("order {other} is being checked out; the cart is locked until it settles"),
            )
            .into()),
            None => Err(refusal(
                409,
                "checkout_not_started",
                "this checkout was not started by the shop",
            )
            .into()),
        }
    }

    /// Gives up the user's checkout claim for a checkout that ends here.
    pub(super) async fn release_claim(
        &self,
        ctx: &ObjectContext<'_>,
        order_id: &OrderId,
    ) -> Result<(), TerminalError> {
        let (user, id) = (owner(ctx)?, order_id.clone());
        ctx.run(|| async move { Ok(self.db.release_checkout(&user, &id).await?) })
            .name("release_claim")
            .await
    }

    /// The basket as an order, priced and timestamped; an empty cart is refused.
    pub(super) async fn new_order(
        ctx: &ObjectContext<'_>,
        order_id: OrderId,
        shipping_address: ShippingAddress,
    ) -> Result<OrderRecord, HandlerError> {
        let basket = Self::basket(ctx).await?;
        if basket.is_empty() {
            let empty = refusal(409, "empty_cart", "the cart is empty; add something first");
            return Err(empty.into());
        }
        let total_cents = basket
            .total()
            .ok_or_else(|| refusal(409, "cart_total_limit", "the cart total is too large"))?;
        let created_at = ctx
            .run(|| async { Ok(now_rfc3339()) })
            .name("order_timestamp")
            .await?;
        Ok(OrderRecord {
            order_id,
            user_id: ctx.key().to_owned(),
            items: basket.lines,
            total_cents,
            shipping_address,
            created_at,
            status: OrderStatus::AwaitingPayment,
            awakeable_id: None,
            transaction_id: None,
            failure_reason: None,
        })
    }

    /// Reserves stock for every line at once (and claims the order id), or refuses.
    pub(super) async fn reserve(
        &self,
        ctx: &ObjectContext<'_>,
        order: &OrderRecord,
    ) -> Result<(), HandlerError> {
        let (snapshot, invocation) = (order.clone(), ctx.invocation_id().to_owned());
        let reserved = ctx
            .run(|| async move {
                let outcome = self.db.reserve_order(&snapshot, &invocation).await?;
                faults::point("reserve_stock").await;
                Ok(Json(outcome))
            })
            .name("reserve_stock")
            .await?
            .into_inner();
        let refused = match reserved {
            ReserveOutcome::Reserved => return Ok(()),
            ReserveOutcome::OutOfStock {
                sku,
                available,
                wanted,
            } => refusal(
                409,
                "out_of_stock",
                format!("only {available} of {sku} in stock; the order needs {wanted}"),
            ),
            ReserveOutcome::OrderIdTaken => refusal(
                409,
                "order_id_taken",
                format!("order id {} is already in use", order.order_id),
            ),
        };
        Err(refused.into())
    }

    /// Records the order (its state doubles as checkout's dedup marker) and registers
    /// the payment request, under the awakeable the gateway completes.
    pub(super) async fn open_payment(
        &self,
        ctx: &ObjectContext<'_>,
        order: &mut OrderRecord,
        awakeable_id: &str,
    ) -> Result<(), TerminalError> {
        order.awakeable_id = Some(awakeable_id.to_owned());
        ctx.set(&checkout_key(&order.order_id), Json(order.clone()));
        let mut ids = ctx
            .get::<Json<Vec<OrderId>>>(ORDERS)
            .await?
            .unwrap_or_default()
            .into_inner();
        ids.push(order.order_id.clone());
        ctx.set(ORDERS, Json(ids));
        let (snapshot, awk) = (order.clone(), awakeable_id.to_owned());
        ctx.run(|| async move {
            self.db.register_payment(&snapshot, &awk).await?;
            for event in Event::checkout_started(&snapshot) {
                event.write(&self.db).await?;
            }
            faults::point("register_payment").await;
            Ok(())
        })
        .name("register_payment")
        .await?;
        Ok(())
    }

    /// Records the order's new status in the read model and the notification log, and
    /// ends the user's checkout claim: their cart is theirs again.
    pub(super) async fn record(
        &self,
        ctx: &ObjectContext<'_>,
        order: &OrderRecord,
        events: Vec<Event>,
        release_stock: bool,
    ) -> Result<(), HandlerError> {
        let (id, status) = (order.order_id.clone(), order.status);
        let (txn, reason) = (order.transaction_id.clone(), order.failure_reason.clone());
        let user = Username::parse(&order.user_id).map_err(TerminalError::new)?;
        ctx.run(|| async move {
            if release_stock {
                self.db.release_reservation(&id, None).await?;
            }
            self.db.release_checkout(&user, &id).await?;
            self.db
                .record_checkout(&id, status, txn.as_deref(), reason.as_deref())
                .await?;
            for e in &events {
                e.write(&self.db).await?;
            }
            Ok(())
        })
        .name(format!("record_{status}"))
        .await?;
        Ok(())
    }
}

/// The user a `UserSession` is keyed by.
fn owner(ctx: &ObjectContext<'_>) -> Result<Username, TerminalError> {
    Username::parse(ctx.key()).map_err(|e| TerminalError::new_with_code(400, e))
}
