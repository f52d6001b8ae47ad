//! `UserSession`: the virtual object keyed by user name that owns the user's basket and
//! orders, and runs checkout: reserve stock, wait for the payment gateway (an awakeable
//! raced against a durable timeout), then hand the order to the fulfillment workflow.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::refusal;
use super::workflow::is_cancellation;
use crate::db::Db;
use crate::domain::{
    Basket, BasketLine, Cents, OrderId, OrderRecord, OrderStatus, ProductId, ProductRef, Quantity,
    ShippingAddress,
};

mod checkout;
mod payment;

use payment::{OPERATOR_CANCEL, Payment};

/// State key of the basket.
pub const BASKET: &str = "basket";
/// Prefix of the state keys of the user's orders.
const CHECKOUT_PREFIX: &str = "checkout:";

/// State key of one order's record. It doubles as checkout's dedup marker, so it is
/// never cleared with the basket.
pub fn checkout_key(order_id: &OrderId) -> String {
    format!("{CHECKOUT_PREFIX}{order_id}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveItem {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutRequest {
    pub order_id: OrderId,
    pub shipping_address: ShippingAddress,
}

/// What checkout answers, also for a repeated checkout of a known order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutOutcome {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub awakeable_id: Option<String>,
    pub failure_reason: Option<String>,
}

impl From<&OrderRecord> for CheckoutOutcome {
    fn from(o: &OrderRecord) -> Self {
        Self {
            order_id: o.order_id.clone(),
            status: o.status,
            awakeable_id: o.awakeable_id.clone(),
            failure_reason: o.failure_reason.clone(),
        }
    }
}

/// What the payment gateway resolves the awakeable with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub transaction_id: String,
    pub amount_cents: i64,
}

/// What the catalog says about a product at the moment of a cart change.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CatalogEntry {
    line: BasketLine,
    available: i64,
}

pub struct UserSession {
    db: Db,
    payment_timeout: Duration,
}
impl UserSession {
    pub fn new(db: Db, payment_timeout: Duration) -> Self {
        Self {
            db,
            payment_timeout,
        }
    }

    /// Tells the user their cart changed (once per invocation, however often it runs).
    async fn cart_changed(
        &self,
        ctx: &ObjectContext<'_>,
        kind: &'static str,
        message: String,
    ) -> Result<(), TerminalError> {
        let user = ctx.key().to_owned();
        let event = format!("cart:{}", ctx.invocation_id());
        ctx.run(|| async move { Ok(self.db.notify(&event, &user, None, kind, &message).await?) })
            .name("notify_cart")
            .await
    }

    /// Reads a product from the catalog. A read is not deterministic (stock moves), so
    /// it runs inside `ctx.run` and its answer is journaled for replays.
    async fn catalog_entry(
        &self,
        ctx: &ObjectContext<'_>,
        product_id: ProductId,
        quantity: Quantity,
    ) -> Result<CatalogEntry, HandlerError> {
        let found = ctx
            .run(|| async move {
                let product = self.db.product(&ProductRef::Id(product_id)).await?;
                Ok(Json(product.map(|p| CatalogEntry {
                    line: BasketLine {
                        product_id,
                        sku: p.sku,
                        name: p.name,
                        unit_price_cents: Cents::new(p.price_cents).unwrap_or(Cents::ZERO),
                        quantity,
                    },
                    available: p.stock_qty,
                })))
            })
            .name("catalog_lookup")
            .await?
            .into_inner();
        found.ok_or_else(|| {
            refusal(
                404,
                "unknown_product",
                format!("no product with id {product_id}"),
            )
            .into()
        })
    }

    async fn basket(ctx: &ObjectContext<'_>) -> Result<Basket, HandlerError> {
        Ok(ctx
            .get::<Json<Basket>>(BASKET)
            .await?
            .unwrap_or_default()
            .into_inner())
    }
}

/// The cart's handlers and the reads keep no journal once done (`journal_retention`
/// 0): nothing shows their steps, and a busy shop makes many of them; the checkout's
/// journal is kept (Restate's default, a day) for the order's durable-steps panel. A
/// cart change sent with an idempotency key is remembered for an hour (Restate's
/// default is a day): long enough for a client to retry, short enough not to pile up.
/// The reads are not remembered at all (`idempotency_retention` 0): Restate otherwise
/// keeps every completed call for a day, and every cart view is one.
#[restate_sdk::object]
impl UserSession {
    /// Adds a quantity of a catalog product to the basket.
    #[handler(
        name = "AddItem",
        journal_retention = "0s",
        idempotency_retention = "1h"
    )]
    async fn add_item(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<AddItem>,
    ) -> Result<Json<Basket>, HandlerError> {
        let req = req.into_inner();
        let entry = self
            .catalog_entry(&ctx, req.product_id, req.quantity)
            .await?;
        let mut basket = Self::basket(&ctx).await?;
        let (name, quantity) = (entry.line.name.clone(), entry.line.quantity);
        basket
            .add(entry.line, entry.available)
            .map_err(|e| refusal(409, e.code(), &e))?;
        ctx.set(BASKET, Json(basket.clone()));
        let total = basket.total().unwrap_or_default();
        let message = format!("Item added: {quantity} × {name}; the cart holds {total}");
        self.cart_changed(&ctx, "item_added", message).await?;
        Ok(Json(basket))
    }

    /// Removes a product's line from the basket; removing what is not there is a no-op.
    #[handler(
        name = "RemoveItem",
        journal_retention = "0s",
        idempotency_retention = "1h"
    )]
    async fn remove_item(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<RemoveItem>,
    ) -> Result<Json<Basket>, HandlerError> {
        let mut basket = Self::basket(&ctx).await?;
        let product_id = req.into_inner().product_id;
        let name = basket
            .lines
            .iter()
            .find(|l| l.product_id == product_id)
            .map(|l| l.name.clone());
        if let Some(name) = name.filter(|_| basket.remove(product_id)) {
            ctx.set(BASKET, Json(basket.clone()));
            let total = basket.total().unwrap_or_default();
            let message = format!("Item removed: {name}; the cart holds {total}");
            self.cart_changed(&ctx, "item_removed", message).await?;
        }
        Ok(Json(basket))
    }

    /// The basket as it is now; shared, so it never waits behind a pending checkout.
    #[handler(
        name = "GetBasket",
        journal_retention = "0s",
        idempotency_retention = "0s"
    )]
    async fn get_basket(&self, ctx: SharedObjectContext<'_>) -> Result<Json<Basket>, HandlerError> {
        Ok(ctx.get::<Json<Basket>>(BASKET).await?.unwrap_or_default())
    }

    /// Turns the basket into an order and waits for its payment. The handler is
    /// exclusive, so the cart stays locked until the payment settles or times out.
    #[handler(name = "Checkout")]
    async fn checkout(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<CheckoutRequest>,
    ) -> Result<Json<CheckoutOutcome>, HandlerError> {
        let CheckoutRequest {
            order_id,
            shipping_address,
        } = req.into_inner();
        // A repeated checkout of a known order answers what happened and creates nothing.
        if let Some(Json(known)) = ctx
            .get::<Json<OrderRecord>>(&checkout_key(&order_id))
            .await?
        {
            return Ok(Json(CheckoutOutcome::from(&known)));
        }
        let (awakeable_id, awakeable) = ctx.awakeable::<Json<PaymentReceipt>>();
        let placed = async {
            let mut order = Self::new_order(&ctx, order_id.clone(), shipping_address).await?;
            self.place(&ctx, &mut order, &awakeable_id).await?;
            Ok::<_, HandlerError>(order)
        }
        .await;
        let mut order = match placed {
            Ok(order) => order,
            Err(refused) => {
                // A refusal (or a cancellation) leaves the order id unused and the cart
                // the user's; a claim of another order stays.
                self.release_claim(&ctx, &order_id).await?;
                return Err(refused);
            }
        };
        // The order's record (checkout's dedup marker), with the awakeable to complete.
        ctx.set(&checkout_key(&order.order_id), Json(order.clone()));
        let cancelled = || Payment::Cancelled {
            reason: OPERATOR_CANCEL.into(),
            refund: false,
        };
        let mut payment = match self.await_payment(&ctx, awakeable).await {
            Ok(payment) => payment,
            Err(e) if is_cancellation(&e) => cancelled(),
            Err(e) => return Err(e.into()),
        };
        // An operator's cancel that arrives while the payment is settled stops that step
        // (its work may be done or not): the checkout is settled again as cancelled, a
        // payment the gateway recorded given back; so is each further cancel.
        while let Err(e) = self.settle(&ctx, &mut order, payment.clone()).await {
            if !is_cancellation(&e) {
                return Err(e.into());
            }
            payment = cancelled();
        }
        Ok(Json(CheckoutOutcome::from(&order)))
    }

    /// One order of this user, as checkout recorded it.
    #[handler(
        name = "GetOrder",
        journal_retention = "0s",
        idempotency_retention = "0s"
    )]
    async fn get_order(
        &self,
        ctx: SharedObjectContext<'_>,
        order_id: String,
    ) -> Result<Json<Option<OrderRecord>>, HandlerError> {
        let id = OrderId::parse(&order_id).map_err(|e| refusal(400, "invalid_order_id", e))?;
        Ok(Json(
            ctx.get::<Json<OrderRecord>>(&checkout_key(&id))
                .await?
                .map(Json::into_inner),
        ))
    }

    /// All orders of this user, oldest first.
    #[handler(
        name = "GetOrders",
        journal_retention = "0s",
        idempotency_retention = "0s"
    )]
    async fn get_orders(
        &self,
        ctx: SharedObjectContext<'_>,
    ) -> Result<Json<Vec<OrderRecord>>, HandlerError> {
        let keys = ctx.get_keys().await?;
        let mut orders = Vec::new();
        for key in keys.iter().filter(|k| k.starts_with(CHECKOUT_PREFIX)) {
            if let Some(Json(order)) = ctx.get::<Json<OrderRecord>>(key).await? {
                orders.push(order);
            }
        }
        orders.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(Json(orders))
    }
}
