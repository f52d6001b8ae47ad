//! Orders as readers see them: one query of the read model each, visible to their
//! owner and to admins; lists, counts, and what Restate says about an order's retries.

use serde::Serialize;

use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::db::orders::{OrderDetail, OrderSummary};
use crate::domain::{CompensationRun, OrderId, OrderStatus, Step};

/// One order as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub items: Vec<OrderItemView>,
    pub total_cents: i64,
    pub shipping_address: String,
    pub created_at: String,
    pub payment: PaymentView,
    pub shipment: ShipmentView,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub compensations: Vec<CompensationRun>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderItemView {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awakeable_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// What was given back when the order did not ship, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<String>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ShipmentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

impl From<OrderDetail> for OrderView {
    fn from(order: OrderDetail) -> Self {
        let items = order
            .items
            .iter()
            .map(|l| OrderItemView {
                product_id: l.product_id.get(),
                sku: l.sku.clone(),
                name: l.name.clone(),
                quantity: l.quantity.get(),
                unit_price_cents: l.unit_price_cents.get(),
                line_total_cents: l.line_total().map_or(0, |c| c.get()),
            })
            .collect();
        let (carrier, tracking_number) = order.shipment.unzip();
        Self {
            order_id: order.order_id,
            user_id: order.user_id,
            status: order.status,
            items,
            total_cents: order.total_cents.get(),
            shipping_address: order.shipping_address,
            created_at: order.created_at,
            payment: PaymentView {
                awakeable_id: order.awakeable_id,
                transaction_id: order.transaction_id,
                refunded_cents: order.refunded_cents,
                refunded_at: order.refunded_at,
            },
            shipment: ShipmentView {
                carrier,
                tracking_number,
            },
            steps: order.steps,
            failure_reason: order.failure_reason,
            compensations: order.compensations,
        }
    }
}

pub fn parse_order_id(id: &str) -> AppResult<OrderId> {
    OrderId::parse(id).map_err(|e| AppError::invalid("invalid_order_id", e))
}

/// 404 `unknown_order`.
pub(crate) fn unknown(order_id: &OrderId) -> AppError {
    AppError::not_found("unknown_order", format!("no order {order_id}"))
}

fn may_see(user: &User, owner: &str) -> bool {
    owner == user.username || user.is_admin()
}

/// The list entry of an order the caller may see: their own, or any for an admin.
/// Malformed → 400; unknown or someone else's → 404.
pub async fn visible(app: &App, user: &User, id: &str) -> AppResult<OrderSummary> {
    let order_id = parse_order_id(id)?;
    match app.db.order_summary(order_id.as_str()).await? {
        Some(summary) if may_see(user, &summary.user_id) => Ok(summary),
        _ => Err(unknown(&order_id)),
    }
}

/// An order the caller may see, from the read model in one query.
pub async fn order(app: &App, user: &User, id: &str) -> AppResult<OrderView> {
    let order_id = parse_order_id(id)?;
    match app.db.order_detail(order_id.as_str()).await? {
        Some(order) if may_see(user, &order.user_id) => Ok(order.into()),
        _ => Err(unknown(&order_id)),
    }
}

/// The caller's orders, newest first.
pub async fn of_user(app: &App, user: &User) -> AppResult<Vec<OrderSummary>> {
    Ok(app.db.orders_of_user(&user.username).await?)
}

/// Admin: every order in `status`, oldest first.
pub async fn in_status(app: &App, user: &User, status: &str) -> AppResult<Vec<OrderSummary>> {
    require_admin(user)?;
    let status = OrderStatus::parse(status).map_err(|e| AppError::invalid("invalid_status", e))?;
    Ok(app.db.orders_with_status(status).await?)
}

/// How many orders are in each status: the user's, or everyone's for an admin.
pub async fn counts(app: &App, user: &User) -> AppResult<Vec<(OrderStatus, i64)>> {
    let only = (!user.is_admin()).then_some(user.username.as_str());
    Ok(app.db.status_counts(only).await?)
}

/// What Restate says about the order's unfinished invocations (the workflow and the
/// calls it made): retries so far and the last failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Retries {
    pub count: i64,
    pub last_failure: Option<String>,
}

/// An order the caller may see, with its durable steps as Restate journaled them.
pub async fn journal(
    app: &App,
    user: &User,
    id: &str,
) -> AppResult<Vec<super::journal::JournalInvocation>> {
    let order = visible(app, user, id).await?;
    let order_id = parse_order_id(&order.order_id)?;
    super::journal::read(&app.db, &app.restate, &order_id).await
}

/// An order's workflow metadata at a moment: the order, Restate's retries, and when.
#[derive(Debug, Clone)]
pub struct MetaSnapshot {
    pub order: Arc<OrderView>,
    pub retries: Retries,
    pub journal: Vec<super::journal::JournalInvocation>,
    pub at: String,
}

/// How often the clock of an order under way moves, and how soon an order is looked at
/// again (SQLite and Restate's introspection) after it changed.
const META_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest wait between two looks at an order that has not changed (one waiting
/// for a decision, or for a retry). Its own notifications bring a look at once.
const META_REFRESH_MAX: std::time::Duration = std::time::Duration::from_secs(15);
/// The same for an order that waits for someone (its payment, a decision) or for its
/// delivery timer: nothing of it runs, so nothing changes without a notification.
const META_WAITING_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl MetaSnapshot {
    /// Whether `other` shows the same order, retries and journal (at another time).
    fn same_as(&self, other: &MetaSnapshot) -> bool {
        self.retries == other.retries
            && self.journal == other.journal
            && serde_json::to_value(&*self.order).ok() == serde_json::to_value(&*other.order).ok()
    }
}

type MetaSender = tokio::sync::watch::Sender<Option<Arc<MetaSnapshot>>>;

/// The workflow metadata of every order someone is watching, kept current by one task
/// per order however many streams show it: each second while the order is under way,
/// and at once when a notification about it arrives. The task ends with its last
/// watcher, or when the order has finished.
#[derive(Debug)]
pub struct MetaBoard {
    db: crate::db::Db,
    restate: crate::durable::RestateClient,
    log: tokio::sync::broadcast::Sender<Arc<crate::db::orders::Notification>>,
    orders: std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<MetaSender>>>,
}

use std::sync::Arc;

impl MetaBoard {
    pub fn new(
        db: crate::db::Db,
        restate: crate::durable::RestateClient,
        log: tokio::sync::broadcast::Sender<Arc<crate::db::orders::Notification>>,
    ) -> Self {
        MetaBoard {
            db,
            restate,
            log,
            orders: Default::default(),
        }
    }

    /// The metadata of `order_id` as it changes (`None` until the first look). The
    /// caller has checked that the user may see the order.
    /// The latest snapshot of an order someone watches, if there is one yet.
    pub fn latest(&self, order_id: &OrderId) -> Option<Arc<MetaSnapshot>> {
        let orders = self.orders.lock().expect("meta board lock");
        let tx = orders.get(order_id.as_str())?.upgrade()?;
        tx.borrow().clone()
    }

    pub fn watch(
        self: &Arc<Self>,
        order_id: &OrderId,
    ) -> tokio::sync::watch::Receiver<Option<Arc<MetaSnapshot>>> {
        let mut orders = self.orders.lock().expect("meta board lock");
        if let Some(tx) = orders
            .get(order_id.as_str())
            .and_then(std::sync::Weak::upgrade)
        {
            return tx.subscribe();
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        let tx = Arc::new(tx);
        orders.retain(|_, weak| weak.strong_count() > 0);
        orders.insert(order_id.to_string(), Arc::downgrade(&tx));
        tokio::spawn(self.clone().refresh(order_id.clone(), tx));
        rx
    }

    /// Looks at the order when its notifications say it changed, and otherwise at
    /// growing intervals while it stays the same (a watched order waiting for approval
    /// costs a look every few seconds, not every second); in between, only the clock of
    /// the last snapshot moves.
    async fn refresh(self: Arc<Self>, order_id: OrderId, tx: Arc<MetaSender>) {
        let mut log = self.log.subscribe();
        let mut tick = tokio::time::interval(META_REFRESH);
        let (mut pause, mut looked) = (META_REFRESH, tokio::time::Instant::now());
        loop {
            let news = tokio::select! {
                _ = tick.tick() => false,
                news = log.recv() => match news {
                    Ok(n) if n.order_id.as_deref() == Some(order_id.as_str()) => true,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            };
            let last = tx.borrow().clone();
            if let Some(last) = last.as_ref().filter(|_| !news && looked.elapsed() < pause) {
                let at = crate::clock::now_rfc3339();
                tx.send_replace(Some(Arc::new(MetaSnapshot {
                    at,
                    ..(**last).clone()
                })));
                continue;
            }
            looked = tokio::time::Instant::now();
            let finished = match self.db.order_detail(order_id.as_str()).await {
                Ok(Some(order)) => {
                    let finished = order.status.is_final();
                    let (journal, retries) =
                        super::journal::read_with_retries(&self.db, &self.restate, &order_id)
                            .await
                            .unwrap_or_else(|e| {
                                tracing::warn!(error = %e, "cannot read the journal");
                                Default::default()
                            });
                    let snapshot = MetaSnapshot {
                        order: Arc::new(order.into()),
                        retries,
                        journal,
                        at: crate::clock::now_rfc3339(),
                    };
                    let unchanged = last.is_some_and(|last| last.same_as(&snapshot));
                    let waiting = matches!(
                        snapshot.order.status,
                        OrderStatus::AwaitingPayment
                            | OrderStatus::AwaitingApproval
                            | OrderStatus::InTransit
                    );
                    pause = match (unchanged, waiting) {
                        (false, _) => META_REFRESH,
                        (true, true) => META_WAITING_MAX,
                        (true, false) => (pause * 2).min(META_REFRESH_MAX),
                    };
                    tx.send_replace(Some(Arc::new(snapshot)));
                    finished
                }
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an order for its metadata");
                    false
                }
            };
            if finished || tx.receiver_count() == 0 {
                return;
            }
        }
    }
}
