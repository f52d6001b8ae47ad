//! Checkout's steps before the payment, in one journaled step: the user's checkout
//! claim, the order made from the basket, the stock reserved for it, the payment
//! request opened; and the record of the status it ends in.

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::UserSession;
use crate::clock::now_rfc3339;
use crate::db::orders::ReserveOutcome;
use crate::domain::{OrderId, OrderRecord, OrderStatus, ShippingAddress, Username};
use crate::durable::errors::refusal;
use crate::durable::notify::Event;
use crate::faults;

/// How checkout's first step ended: the order placed (at this time), or refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Placement {
    Placed {
        created_at: String,
    },
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl Placement {
    fn refused(status: u16, code: &str, message: String) -> Placement {
        let code = code.to_owned();
        Placement::Refused {
            status,
            code,
            message,
        }
    }
}

impl UserSession {
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

    /// The basket as an order, priced (its time comes with its reservation); an empty
    /// cart is refused.
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
        Ok(OrderRecord {
            order_id,
            user_id: ctx.key().to_owned(),
            items: basket.lines,
            total_cents,
            shipping_address,
            created_at: String::new(),
            status: OrderStatus::AwaitingPayment,
            awakeable_id: None,
            transaction_id: None,
            failure_reason: None,
        })
    }

    /// Places the order in one journaled step: checks that checkout holds the user's
    /// checkout claim (the web role takes it before it starts one, so a second checkout
    /// sent meanwhile never runs later), reserves stock for every line at once (and
    /// claims the order id), and registers the payment request under the awakeable the
    /// gateway completes. Each part is idempotent, so the step can run again after a
    /// crash; a refusal changes nothing (the caller gives the claim back).
    pub(super) async fn place(
        &self,
        ctx: &ObjectContext<'_>,
        order: &mut OrderRecord,
        awakeable_id: &str,
    ) -> Result<(), HandlerError> {
        let user = owner(ctx)?;
        let invocation = ctx.invocation_id().to_owned();
        order.awakeable_id = Some(awakeable_id.to_owned());
        let mut snapshot = order.clone();
        let placed = ctx
            .run(|| async move {
                let id = snapshot.order_id.clone();
                match self.db.checkout_claim(&user).await? {
                    Some(claimed) if claimed == id.as_str() => {}
                    // Run again after a crash: the first run placed the order, and the
                    // claim may have been given up since; the rest is idempotent.
                    _ if self.db.placed_at(&user, &id).await?.is_some() => {}
                    Some(other) => {
                        let why = format!("order {other} is being checked out; the cart is locked until it settles");
                        return Ok(Json(Placement::refused(409, "checkout_in_progress", why)));
                    }
                    None => {
                        let why = "this checkout was not started by the shop".to_owned();
                        return Ok(Json(Placement::refused(409, "checkout_not_started", why)));
                    }
                }
                snapshot.created_at = now_rfc3339();
                let outcome = self.db.reserve_order(&snapshot, &invocation).await?;
                faults::point("reserve_stock").await;
                let created_at = match outcome {
                    ReserveOutcome::Reserved { created_at } => created_at,
                    // The claim is given back after the step (`release_claim`), so the
                    // step run again answers the same.
                    refused => return Ok(Json(refusal_of(refused, &id))),
                };
                snapshot.created_at = created_at.clone();
                self.db.register_payment(&snapshot, snapshot.awakeable_id.as_deref().unwrap_or_default()).await?;
                for event in Event::checkout_started(&snapshot) {
                    event.write(&self.db).await?;
                }
                faults::point("register_payment").await;
                Ok(Json(Placement::Placed { created_at }))
            })
            .name("reserve_stock")
            .await?
            .into_inner();
        match placed {
            Placement::Placed { created_at } => {
                order.created_at = created_at;
                Ok(())
            }
            Placement::Refused {
                status,
                code,
                message,
            } => Err(refusal(status, &code, message).into()),
        }
    }
}

/// The refusal a reservation that did not happen answers.
fn refusal_of(outcome: ReserveOutcome, order_id: &OrderId) -> Placement {
    match outcome {
        ReserveOutcome::OutOfStock {
            sku,
            available,
            wanted,
        } => Placement::refused(
            409,
            "out_of_stock",
            format!("only {available} of {sku} in stock; the order needs {wanted}"),
        ),
        ReserveOutcome::OrderIdTaken | ReserveOutcome::Reserved { .. } => Placement::refused(
            409,
            "order_id_taken",
            format!("order id {order_id} is already in use"),
        ),
    }
}

/// The user a `UserSession` is keyed by.
fn owner(ctx: &ObjectContext<'_>) -> Result<Username, TerminalError> {
    Username::parse(ctx.key()).map_err(|e| TerminalError::new_with_code(400, e))
}
