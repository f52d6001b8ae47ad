//! The live feed: the notification log (written by the `shopflow services` process,
//! so read from the database, not memory) tailed by one task and fanned out to every reader,
//! per user or per order, with the catch-up and the dedupe in one place.
//!
//! The tail looks every `TAIL_INTERVAL`, and every `FAST_TAIL` while a use case waits
//! on an order (checkout waiting for the payment request, a decision waiting for the
//! payment to be recorded), so those waits cost a few milliseconds, not a tenth of a
//! second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{Notify, broadcast};

use super::cache::Caches;
use crate::db::Db;
use crate::db::orders::Notification;
use crate::durable::RestateClient;

/// How often the tail looks for new log entries when nobody waits on an order.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);
/// How often it looks while a use case waits on an order.
const FAST_TAIL: Duration = Duration::from_millis(5);
/// How much history a new reader starts with.
pub const HISTORY: i64 = 50;
/// How many notifications a user's readers may fall behind before they read the log.
const USER_BACKLOG: usize = 256;

/// The shared tail of the notification log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    /// Every notification, for those waiting on an order (few).
    tx: broadcast::Sender<Arc<Notification>>,
    /// Each user's notifications, while someone reads them: a notification wakes its
    /// user's readers only, not every open stream (5,000 streams and a batch of 1,000
    /// notifications were five million wake-ups).
    users: Mutex<HashMap<String, broadcast::Sender<Arc<Notification>>>>,
    /// Use cases waiting on an order right now: the tail looks faster meanwhile.
    waiting: AtomicUsize,
    /// Wakes the tail early.
    wake: Notify,
    meta: Arc<super::meta::MetaBoard>,
}

impl Feed {
    /// Starts tailing from the current end of the log; stops on shutdown.
    pub async fn start(
        db: Db,
        restate: RestateClient,
        caches: Arc<Caches>,
        shutdown: crate::shutdown::Shutdown,
    ) -> sqlx::Result<Feed> {
        let last = db.last_notification_id().await?;
        caches.observe(Some(db.cache_versions().await?));
        let (tx, _) = broadcast::channel(1024);
        let feed = Feed {
            inner: Arc::new(Inner {
                meta: Arc::new(super::meta::MetaBoard::new(db.clone(), restate, tx.clone())),
                db,
                tx,
                users: Mutex::default(),
                waiting: AtomicUsize::new(0),
                wake: Notify::new(),
            }),
        };
        tokio::spawn(tail(feed.inner.clone(), caches, last, shutdown));
        Ok(feed)
    }

    /// A reader of `user`'s notifications: the newest `HISTORY` (or, resuming, all after
    /// `after`), then every new one, each once.
    pub async fn for_user(
        &self,
        user: &str,
        after: Option<i64>,
    ) -> sqlx::Result<(Vec<Notification>, UserFeed)> {
        // Subscribe before reading the history, so nothing falls between the two.
        let rx = self
            .inner
            .users
            .lock()
            .expect("feed users lock")
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(USER_BACKLOG).0)
            .subscribe();
        let history = match after {
            Some(id) => self.inner.db.notifications(user, id).await?,
            None => self.inner.db.recent_notifications(user, HISTORY).await?,
        };
        let last = history.last().map_or(after.unwrap_or(0), |n| n.id);
        let feed = UserFeed {
            rx,
            inner: self.inner.clone(),
            user: user.to_owned(),
            last,
        };
        Ok((history, feed))
    }

    /// Notifications about one order, for a use case waiting on it; the tail looks
    /// faster while any such watch is alive.
    pub fn watch_order(&self, order_id: &str) -> OrderWatch {
        let rx = self.inner.tx.subscribe();
        self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        self.inner.wake.notify_one();
        OrderWatch {
            rx,
            order_id: order_id.to_owned(),
            inner: self.inner.clone(),
        }
    }

    /// Asks `look` until it has an answer, again each time the order's log moves, for at
    /// most `deadline`: `None` when the time is up. A use case waits for a durable step
    /// this way instead of polling.
    pub async fn wait_for<T, F, Fut>(
        &self,
        order_id: &str,
        deadline: Duration,
        mut look: F,
    ) -> super::AppResult<Option<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = super::AppResult<Option<T>>>,
    {
        let mut watch = self.watch_order(order_id);
        let deadline = tokio::time::sleep(deadline);
        tokio::pin!(deadline);
        loop {
            if let Some(answer) = look().await? {
                return Ok(Some(answer));
            }
            tokio::select! {
                _ = watch.changed() => {}
                () = &mut deadline => return Ok(None),
            }
        }
    }

    /// The per-order board of workflow metadata (see `meta::MetaBoard`).
    pub fn meta(&self) -> &Arc<super::meta::MetaBoard> {
        &self.inner.meta
    }
}

async fn tail(
    inner: Arc<Inner>,
    caches: Arc<Caches>,
    mut last: i64,
    shutdown: crate::shutdown::Shutdown,
) {
    loop {
        let pause = if inner.waiting.load(Ordering::SeqCst) > 0 {
            FAST_TAIL
        } else {
            TAIL_INTERVAL
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = inner.wake.notified() => {}
            () = shutdown.wait() => return,
        }
        let batch = inner.db.notifications_after(last, 500).await;
        // After the log and before anyone hears of what is in it (see `cache`).
        let versions = inner.db.cache_versions().await;
        if let Err(e) = &versions {
            tracing::warn!(error = %e, "cannot read the cache versions");
        }
        caches.observe(versions.ok());
        match batch {
            Ok(batch) => {
                let users = inner.users.lock().expect("feed users lock");
                for n in batch {
                    last = n.id;
                    let n = Arc::new(n);
                    // No subscriber is fine: nobody is watching right now.
                    if let Some(tx) = users.get(&n.user_id) {
                        let _ = tx.send(n.clone());
                    }
                    let _ = inner.tx.send(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the notification log"),
        }
    }
}

/// One user's live notifications, in log order, each once.
pub struct UserFeed {
    rx: broadcast::Receiver<Arc<Notification>>,
    inner: Arc<Inner>,
    user: String,
    last: i64,
}

impl UserFeed {
    /// The next batch of the user's new notifications (everything that has arrived,
    /// at least one); `None` when the feed has stopped.
    pub async fn next(&mut self) -> Option<Vec<Notification>> {
        loop {
            let mut batch = Vec::new();
            let mut next = self.rx.recv().await;
            loop {
                match next {
                    Ok(n) => {
                        if n.user_id == self.user && n.id > self.last {
                            self.last = n.id;
                            batch.push((*n).clone());
                        }
                    }
                    // Fell behind the shared tail: the log has it all.
                    Err(RecvError::Lagged(_)) => {
                        let db = &self.inner.db;
                        let missed = db.notifications(&self.user, self.last).await.ok()?;
                        if let Some(n) = missed.last() {
                            self.last = n.id;
                        }
                        batch.extend(missed);
                    }
                    Err(RecvError::Closed) => return None,
                }
                next = match self.rx.try_recv() {
                    Ok(n) => Ok(n),
                    Err(TryRecvError::Lagged(k)) => Err(RecvError::Lagged(k)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                };
            }
            if !batch.is_empty() {
                return Some(batch);
            }
        }
    }
}

impl Drop for UserFeed {
    /// The last reader of a user takes the user's channel with it.
    fn drop(&mut self) {
        let mut users = self.inner.users.lock().expect("feed users lock");
        // This reader still counts; under the lock no other can subscribe meanwhile.
        if users
            .get(&self.user)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            users.remove(&self.user);
        }
    }
}

/// Notifications about one order, while a use case waits on it.
pub struct OrderWatch {
    rx: broadcast::Receiver<Arc<Notification>>,
    order_id: String,
    inner: Arc<Inner>,
}

impl OrderWatch {
    /// Waits for the next notification about the order. A reader that fell behind gets
    /// `Some(None)`: something may have happened, look again.
    pub async fn changed(&mut self) -> Option<Option<Arc<Notification>>> {
        loop {
            match self.rx.recv().await {
                Ok(n) if n.order_id.as_deref() == Some(self.order_id.as_str()) => {
                    return Some(Some(n));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return Some(None),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_wakes_its_users_readers_only() {
        let (_dir, db) = crate::db::test_db().await;
        let restate =
            RestateClient::new("http://127.0.0.1:9".into(), "http://127.0.0.1:9".into()).unwrap();
        let (_stop, rx) = tokio::sync::watch::channel(false);
        let feed = Feed::start(
            db.clone(),
            restate,
            Arc::default(),
            crate::shutdown::Shutdown(rx),
        )
        .await
        .unwrap();
        let (_, mut ann) = feed.for_user("ann", None).await.unwrap();
        let (_, mut ann_too) = feed.for_user("ann", None).await.unwrap();
        let (_, mut bob) = feed.for_user("bob", None).await.unwrap();
        db.notify("e1", "ann", None, "info", "for ann")
            .await
            .unwrap();
        let deadline = Duration::from_secs(5);
        for reader in [&mut ann, &mut ann_too] {
            let batch = tokio::time::timeout(deadline, reader.next()).await.unwrap();
            assert_eq!(batch.unwrap()[0].message, "for ann");
        }
        assert!(matches!(bob.rx.try_recv(), Err(TryRecvError::Empty)));
        // The channels go with their last reader.
        drop(ann);
        assert_eq!(feed.inner.users.lock().unwrap().len(), 2);
        drop((ann_too, bob));
        assert!(feed.inner.users.lock().unwrap().is_empty());
    }
}
