//! `UserSession`: the virtual object keyed by user name that owns the user's basket and
//! orders, and runs checkout: reserve stock, wait for the payment gateway (an awakeable
//! raced against a durable timeout), then hand the order to the fulfillment workflow.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::refusal;
use super::notify::Event;
use super::workflow::{OrderFulfillmentWorkflowClient, is_cancellation};
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::orders::ReserveOutcome;
use crate::domain::{
    Basket, BasketLine, Cents, OrderId, OrderRecord, OrderStatus, PaymentState, ProductId,
    ProductRef, Quantity, ShippingAddress,
};
use crate::faults;

/// State key of the basket.
pub const BASKET: &str = "basket";
/// State key of the list of the user's order ids, oldest first.
pub const ORDERS: &str = "orders";

/// State key of one order's record. It doubles as checkout's dedup marker, so it is
/// never cleared with the basket.
pub fn checkout_key(order_id: &OrderId) -> String {
    format!("checkout:{order_id}")
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

/// How the wait for payment ended.
enum Payment {
    Paid(PaymentReceipt),
    Failed(String),
    TimedOut,
    /// The customer withdrew the order, or an operator cancelled the checkout in
    /// Restate; `refund` when the payment had been captured all the same.
    Cancelled {
        reason: String,
        refund: bool,
    },
}

/// The reason an operator's cancellation of a checkout in Restate gives.
const OPERATOR_CANCEL: &str = "cancelled by an operator in Restate";

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

    /// Waits for the payment gateway, the timeout or a cancellation, whichever comes
    /// first; the gateway's record then decides (see `confirm`).
    async fn await_payment(
        &self,
        ctx: &ObjectContext<'_>,
        awakeable: impl restate_sdk::context::DurableFuture<
            Output = Result<Json<PaymentReceipt>, TerminalError>,
        >,
        awakeable_id: &str,
        total: Cents,
    ) -> Result<Payment, TerminalError> {
        let outcome = restate_sdk::select! {
            receipt = awakeable => match receipt {
                Ok(Json(receipt)) => Payment::Paid(receipt),
                Err(declined) => Payment::Failed(declined.message().to_owned()),
            },
            _ = ctx.sleep(self.payment_timeout) => Payment::TimedOut,
            on_cancel => Payment::Cancelled { reason: OPERATOR_CANCEL.into(), refund: false },
        };
        self.confirm(ctx, awakeable_id, total, outcome).await
    }

    /// The gateway's record decides how the payment ended: this handler claims it for
    /// what it saw (only if it is still pending: the timer's expiry, the receipt, the
    /// decline, the cancellation), then reads what won. A late callback that settled
    /// first beats the timer; a receipt the gateway did not record, or for another
    /// amount, pays for nothing; a payment captured before a cancellation is refunded.
    async fn confirm(
        &self,
        ctx: &ObjectContext<'_>,
        awakeable_id: &str,
        total: Cents,
        outcome: Payment,
    ) -> Result<Payment, TerminalError> {
        const MISMATCH: &str = "the payment does not match the order total";
        let claim = match &outcome {
            Payment::Paid(r) if r.amount_cents == total.get() => (
                PaymentState::Succeeded,
                Some(r.transaction_id.clone()),
                None,
            ),
            Payment::Paid(_) => (PaymentState::Failed, None, Some(MISMATCH.to_owned())),
            Payment::Failed(reason) => (PaymentState::Failed, None, Some(reason.clone())),
            Payment::TimedOut => (
                PaymentState::TimedOut,
                None,
                Some("payment timed out".into()),
            ),
            Payment::Cancelled { reason, .. } => {
                (PaymentState::Cancelled, None, Some(reason.clone()))
            }
        };
        let id = awakeable_id.to_owned();
        let recorded = ctx
            .run(|| async move {
                let (state, txn, reason) = claim;
                self.db
                    .settle_payment(&id, state, txn.as_deref(), reason.as_deref())
                    .await?;
                faults::point("confirm_payment").await;
                Ok(Json(self.db.payment_by_awakeable(&id).await?))
            })
            .name("confirm_payment")
            .await?
            .into_inner();
        let Some(p) = recorded else {
            return Ok(outcome);
        };
        let reason = p
            .reason
            .clone()
            .unwrap_or_else(|| "payment declined".into());
        Ok(match (p.state, outcome) {
            (PaymentState::Succeeded, Payment::Cancelled { reason, .. }) => Payment::Cancelled {
                reason,
                refund: true,
            },
            (PaymentState::Succeeded, _) => Payment::Paid(PaymentReceipt {
                transaction_id: p.transaction_id.unwrap_or_default(),
                amount_cents: p.amount_cents,
            }),
            (PaymentState::Failed, _) => Payment::Failed(reason),
            (PaymentState::Cancelled, _) => Payment::Cancelled {
                reason,
                refund: false,
            },
            (PaymentState::TimedOut | PaymentState::Pending, Payment::Paid(_)) => {
                Payment::Failed("the payment gateway did not confirm the payment".into())
            }
            (PaymentState::TimedOut | PaymentState::Pending, _) => Payment::TimedOut,
        })
    }

    /// The checkout must hold the user's checkout claim (the web role takes it before it
    /// starts one), so a second checkout sent while one is under way never runs later.
    async fn check_claim(
        &self,
        ctx: &ObjectContext<'_>,
        order_id: &OrderId,
    ) -> Result<(), HandlerError> {
        let user = ctx.key().to_owned();
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
    async fn release_claim(
        &self,
        ctx: &ObjectContext<'_>,
        order_id: &OrderId,
    ) -> Result<(), TerminalError> {
        let (user, id) = (ctx.key().to_owned(), order_id.to_string());
        ctx.run(|| async move { Ok(self.db.release_checkout(&user, &id).await?) })
            .name("release_claim")
            .await
    }

    /// The basket as an order, priced and timestamped; an empty cart is refused.
    async fn new_order(
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
    async fn reserve(
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
    async fn open_payment(
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

    /// Ends the checkout as the payment ended: paid (the basket goes, the workflow
    /// starts), or failed or timed out (the stock goes back, the basket stays).
    async fn settle(
        &self,
        ctx: &ObjectContext<'_>,
        order: &mut OrderRecord,
        payment: Payment,
    ) -> Result<(), HandlerError> {
        match payment {
            Payment::Paid(receipt) => {
                order.status = OrderStatus::AwaitingApproval;
                order.transaction_id = Some(receipt.transaction_id);
                self.record(ctx, order, vec![Event::payment_confirmed(order)], false)
                    .await?;
                // Only the basket goes: the order records (dedup markers) stay.
                ctx.clear(BASKET);
                ctx.workflow_client::<OrderFulfillmentWorkflowClient>(order.order_id.to_string())
                    .run(Json(order.clone()))
                    .send();
            }
            Payment::Failed(reason) => {
                order.status = OrderStatus::PaymentFailed;
                order.failure_reason = Some(reason);
                self.record(ctx, order, vec![Event::payment_failed(order)], true)
                    .await?;
            }
            Payment::TimedOut => {
                order.status = OrderStatus::PaymentTimedOut;
                order.failure_reason = Some("no payment arrived in time".into());
                self.record(ctx, order, vec![Event::payment_timed_out(order)], true)
                    .await?;
            }
            Payment::Cancelled { reason, refund } => {
                order.status = OrderStatus::Cancelled;
                order.failure_reason = Some(reason);
                self.cancelled(ctx, order, refund).await?;
            }
        }
        ctx.set(&checkout_key(&order.order_id), Json(order.clone()));
        Ok(())
    }

    /// A cancelled checkout gives back what it took: the stock, and the payment when
    /// it had been captured; both are recorded as the order's compensations.
    async fn cancelled(
        &self,
        ctx: &ObjectContext<'_>,
        order: &OrderRecord,
        refund: bool,
    ) -> Result<(), HandlerError> {
        let (id, user) = (order.order_id.to_string(), order.user_id.clone());
        ctx.run(|| async move {
            let mut undone = Vec::new();
            if refund {
                let amount = self.db.refund_payment(&id).await?;
                let amount = Cents::new(amount).unwrap_or_default();
                let message = format!("Order {id}: payment of {amount} refunded");
                Event::new(&user, &id, "refund_payment", message)
                    .write(&self.db)
                    .await?;
                undone.push("refund_payment");
            }
            self.db.release_reservation(&id).await?;
            undone.push("release_inventory");
            for name in undone {
                self.db
                    .record_compensation(&id, name, &now_rfc3339())
                    .await?;
            }
            faults::point("give_back").await;
            Ok(())
        })
        .name("give_back")
        .await?;
        self.record(ctx, order, vec![Event::cancelled(order)], false)
            .await
    }

    /// Records the order's new status in the read model and the notification log, and
    /// ends the user's checkout claim: their cart is theirs again.
    async fn record(
        &self,
        ctx: &ObjectContext<'_>,
        order: &OrderRecord,
        events: Vec<Event>,
        release_stock: bool,
    ) -> Result<(), HandlerError> {
        let (id, status) = (order.order_id.to_string(), order.status);
        let (txn, reason) = (order.transaction_id.clone(), order.failure_reason.clone());
        let user = order.user_id.clone();
        ctx.run(|| async move {
            if release_stock {
                self.db.release_reservation(&id).await?;
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
        self.check_claim(&ctx, &order_id).await?;
        let placed = async {
            let order = Self::new_order(&ctx, order_id.clone(), shipping_address).await?;
            self.reserve(&ctx, &order).await?;
            Ok::<_, HandlerError>(order)
        }
        .await;
        // A refusal leaves the order id unused and the cart the user's.
        let mut order = match placed {
            Ok(order) => order,
            Err(refused) => {
                self.release_claim(&ctx, &order_id).await?;
                return Err(refused);
            }
        };
        let (awakeable_id, awakeable) = ctx.awakeable::<Json<PaymentReceipt>>();
        let waited = async {
            self.open_payment(&ctx, &mut order, &awakeable_id).await?;
            self.await_payment(&ctx, awakeable, &awakeable_id, order.total_cents)
                .await
        }
        .await;
        let payment = match waited {
            Ok(payment) => payment,
            Err(e) if is_cancellation(&e) => Payment::Cancelled {
                reason: OPERATOR_CANCEL.into(),
                refund: false,
            },
            Err(e) => return Err(e.into()),
        };
        self.settle(&ctx, &mut order, payment).await?;
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
        let ids = ctx
            .get::<Json<Vec<OrderId>>>(ORDERS)
            .await?
            .unwrap_or_default()
            .into_inner();
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(Json(order)) = ctx.get::<Json<OrderRecord>>(&checkout_key(&id)).await? {
                orders.push(order);
            }
        }
        Ok(Json(orders))
    }
}
