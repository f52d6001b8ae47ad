//! The workflow metadata of the orders someone watches: one task per order keeps a
//! snapshot of it current (the read model and Restate's view of its invocations).

use std::sync::Arc;

use super::journal::{JournalInvocation, Retries};
use super::orders::OrderView;
use crate::db::orders::OrderDetail;
use crate::domain::{OrderId, OrderStatus};

/// An order's workflow metadata at a moment: the order, Restate's retries, and when.
#[derive(Debug, Clone)]
pub struct MetaSnapshot {
    pub order: Arc<OrderView>,
    pub retries: Retries,
    pub journal: Vec<JournalInvocation>,
    pub at: String,
}

/// How often the clock of an order under way moves, and how soon an order is looked at
/// again (the database and Restate's introspection) after it changed.
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

    /// The order with Restate's view of its invocations, now.
    async fn snapshot(&self, order_id: &OrderId, order: OrderDetail) -> MetaSnapshot {
        let (journal, retries) =
            super::journal::read_with_retries(&self.db, &self.restate, order_id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the journal");
                    Default::default()
                });
        MetaSnapshot {
            order: Arc::new(order.into()),
            retries,
            journal,
            at: crate::clock::now_rfc3339(),
        }
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
            let finished = match self.db.order_detail(&order_id).await {
                Ok(Some(order)) => {
                    let finished = order.status.is_final();
                    let snapshot = self.snapshot(&order_id, order).await;
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
