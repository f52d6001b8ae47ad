//! What the order lifecycle stores: the order read model, stock reservations,
//! checkout claims, the simulated payment gateway (payments and refunds) and carrier,
//! returns, and the notification log, a file each. Every write is idempotent (keyed by
//! order, return, refund or event id, guarded by state), because the Restate handlers
//! that make them may run a step again after a crash.

mod carrier;
mod checkout_claims;
mod gateway;
mod glance;
mod notifications;
mod parcels;
mod read_model;
mod refunds;
mod returns;
mod stock;
mod timeline;

pub use carrier::Shipment;
pub use gateway::PaymentRequest;
pub use glance::GlanceRows;
pub use notifications::Notification;
pub use parcels::{Parcel, ParcelLines};
pub use read_model::{DecisionClaim, OrderDetail, OrderInvocations, OrderSummary, Totals};
pub use refunds::{NewRefund, Refund, RefundAmount, RefundOutcome};
pub use returns::{NewReturn, OpenOutcome, ReturnClaim, ReturnLabel, ReturnRecord};
pub use stock::ReserveOutcome;
pub(in crate::db) use stock::add_stock;
pub use timeline::TimelineEvent;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_rfc3339;
    use crate::db::Db;
    use crate::domain::order::steps_for;
    use crate::domain::{
        BasketLine, Cents, OrderId, OrderRecord, OrderStatus, ParcelStatus, PaymentState,
        ProductId, Quantity, ShippingAddress,
    };

    fn id(text: &str) -> OrderId {
        OrderId::parse(text).unwrap()
    }

    async fn db() -> (tempfile::TempDir, Db) {
        crate::db::test_db().await
    }

    fn order(id: &str, user: &str, lines: &[(i64, i64)]) -> OrderRecord {
        OrderRecord {
            order_id: OrderId::parse(id).unwrap(),
            user_id: user.into(),
            items: lines
                .iter()
                .map(|&(p, q)| BasketLine {
                    product_id: ProductId::new(p).unwrap(),
                    sku: format!("P{p:03}"),
                    name: String::new(),
                    unit_price_cents: Cents::new(100).unwrap(),
                    quantity: Quantity::new(q).unwrap(),
                })
                .collect(),
            total_cents: Cents::new(100).unwrap(),
            shipping_address: ShippingAddress::parse("x").unwrap(),
            created_at: now_rfc3339(),
            status: OrderStatus::AwaitingPayment,
            awakeable_id: None,
            transaction_id: None,
            failure_reason: None,
        }
    }

    async fn stock(db: &Db, id: i64) -> i64 {
        sqlx::query_scalar("SELECT stock_qty FROM products WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    /// A split order: two parcels; the one that ships is captured once, the one that
    /// fails is voided once and its stock goes back where it came from; the rest of
    /// the authorization is voided once, the same amount when asked again.
    #[tokio::test]
    async fn parcels_capture_and_void_once_each() {
        let (_d, db) = db().await;
        db.set_location_stock(7, "east", 2).await.unwrap();
        db.set_location_stock(7, "west", 1).await.unwrap();
        let mut o = order("o-split", "alice", &[(7, 3), (1, 1)]);
        o.total_cents = Cents::new(400).unwrap();
        assert!(matches!(
            db.reserve_order(&o, "inv").await.unwrap(),
            ReserveOutcome::Reserved { .. }
        ));
        let parcels = db.start_parcels(&o.order_id).await.unwrap();
        let shape: Vec<_> = parcels
            .iter()
            .map(|p| (p.shipment_id.as_str(), p.location.as_str(), p.amount_cents))
            .collect();
        assert_eq!(
            shape,
            [("o-split-east", "east", 300), ("o-split-west", "west", 100)],
            "east has two of 7 and has 1: {parcels:?}"
        );
        db.register_payment(&o, "aw-split").await.unwrap();
        db.settle_payment("aw-split", PaymentState::Succeeded, Some("t"), None)
            .await
            .unwrap();
        for _ in 0..2 {
            db.parcel_shipped(&o.order_id, &parcels[0]).await.unwrap();
            db.parcel_failed(&o.order_id, &parcels[1]).await.unwrap();
        }
        let levels = db.stock_by_location(Some(7)).await.unwrap();
        assert_eq!(levels[&7], [("east".into(), 0), ("west".into(), 1)].into());
        assert_eq!(stock(&db, 7).await, 1, "the total follows its locations");
        assert_eq!(db.void_rest(&o.order_id).await.unwrap(), 0, "nothing left");
        let detail = db.order_detail(&o.order_id).await.unwrap().unwrap();
        assert_eq!(
            (detail.payment_state.as_deref(), detail.captured_cents),
            (Some("captured"), 300)
        );
        let status: Vec<_> = (db.parcels_of(&o.order_id).await.unwrap().iter())
            .map(|p| p.status)
            .collect();
        assert_eq!(status, [ParcelStatus::InTransit, ParcelStatus::Failed]);

        // An order given back before it shipped: all voided, the same answer twice.
        let o = order("o-void", "alice", &[(1, 1)]);
        db.reserve_order(&o, "inv2").await.unwrap();
        db.register_payment(&o, "aw-void").await.unwrap();
        db.settle_payment("aw-void", PaymentState::Succeeded, Some("t"), None)
            .await
            .unwrap();
        assert_eq!(
            db.give_back_payment(&o.order_id, "x").await.unwrap(),
            (0, 100)
        );
        assert_eq!(
            db.give_back_payment(&o.order_id, "x").await.unwrap(),
            (0, 100)
        );
        let detail = db.order_detail(&o.order_id).await.unwrap().unwrap();
        assert_eq!(
            (detail.payment_state.as_deref(), detail.captured_cents),
            (Some("voided"), 0)
        );
    }

    #[tokio::test]
    async fn the_read_model_holds_the_whole_order_in_one_row() {
        let (_d, db) = db().await;
        let o = order("o-read", "alice", &[(1, 2)]);
        db.reserve_order(&o, "inv_1").await.unwrap();
        db.register_payment(&o, "sign_1").await.unwrap();
        let d = db.order_detail(&id("o-read")).await.unwrap().unwrap();
        assert_eq!(
            (d.status, d.user_id.as_str()),
            (OrderStatus::AwaitingPayment, "alice")
        );
        assert_eq!(
            (d.items, d.shipping_address.as_str()),
            (o.items.clone(), "x")
        );
        assert_eq!(d.awakeable_id.as_deref(), Some("sign_1"));
        assert_eq!(
            d.steps,
            steps_for(OrderStatus::AwaitingPayment),
            "derived until the workflow runs"
        );
        assert!(d.compensations.is_empty() && d.shipment.is_none());

        db.record_checkout(
            &id("o-read"),
            OrderStatus::AwaitingApproval,
            Some("txn-1"),
            None,
        )
        .await
        .unwrap();
        let mut steps = steps_for(OrderStatus::ShippingFailed);
        steps[0].at = Some("2026-01-01T00:00:00.000Z".into());
        db.book_shipment("o-read", "UPS", "1Z1").await.unwrap();
        db.record_progress(
            &id("o-read"),
            OrderStatus::ShippingFailed,
            &steps,
            Some("lost"),
        )
        .await
        .unwrap();
        for name in ["cancel_shipment", "release_inventory", "cancel_shipment"] {
            db.record_compensation(&id("o-read"), name, "2026-01-01T00:00:01.000Z")
                .await
                .unwrap();
        }
        let d = db.order_detail(&id("o-read")).await.unwrap().unwrap();
        assert_eq!(d.status, OrderStatus::ShippingFailed);
        assert_eq!(d.transaction_id.as_deref(), Some("txn-1"));
        assert_eq!(d.failure_reason.as_deref(), Some("lost"));
        assert_eq!(d.steps, steps);
        assert_eq!(d.shipment, Some(("UPS".into(), "1Z1".into())));
        let names: Vec<_> = d.compensations.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["cancel_shipment", "release_inventory"],
            "in order, once each"
        );
        assert!(db.order_detail(&id("o-none")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reservations_are_all_or_nothing_and_idempotent() {
        let (_d, db) = db().await;
        let (s1, s7) = (stock(&db, 1).await, stock(&db, 7).await);
        // Line 2 cannot be covered: nothing is taken, not even line 1.
        let greedy = order("o1", "alice", &[(1, 2), (7, s7 + 1)]);
        assert!(matches!(
            db.reserve_order(&greedy, "inv_1").await.unwrap(),
            ReserveOutcome::OutOfStock { .. }
        ));
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1, s7));
        assert!(db.order_summary(&id("o1")).await.unwrap().is_none());

        let ok = order("o2", "alice", &[(1, 2), (7, 1)]);
        let first = ReserveOutcome::Reserved {
            created_at: ok.created_at.clone(),
        };
        assert_eq!(db.reserve_order(&ok, "inv_1").await.unwrap(), first);
        // Run again (a retried step, a moment later): the first run's time.
        let mut again = ok.clone();
        again.created_at = "2027-01-01T00:00:00.000Z".into();
        assert_eq!(db.reserve_order(&again, "inv_1").await.unwrap(), first);
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1 - 2, s7 - 1));
        assert_eq!(
            db.reserve_order(&order("o2", "bob", &[(1, 1)]), "inv_1")
                .await
                .unwrap(),
            ReserveOutcome::OrderIdTaken
        );

        assert_eq!(db.release_reservation(&id("o2"), None).await.unwrap(), 2);
        assert_eq!(db.release_reservation(&id("o2"), None).await.unwrap(), 0);
        assert_eq!((stock(&db, 1).await, stock(&db, 7).await), (s1, s7));
    }

    #[tokio::test]
    async fn a_decision_is_claimed_once_and_again_by_its_claimer() {
        let (_d, db) = db().await;
        let o = order("o-decide", "alice", &[(1, 1)]);
        db.reserve_order(&o, "inv_1").await.unwrap();
        db.register_payment(&o, "sign_1").await.unwrap();
        let early = db
            .claim_decision(&id("o-decide"), "approved", "inv_a", None)
            .await;
        assert!(
            matches!(early.unwrap(), DecisionClaim::Taken { .. }),
            "not waiting yet"
        );
        db.record_progress(&id("o-decide"), OrderStatus::AwaitingApproval, &[], None)
            .await
            .unwrap();
        let decided = id("o-decide");
        let claim = |what, by| db.claim_decision(&decided, what, by, Some("root"));
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        // Its step run again after a crash: still the winner.
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        assert!(matches!(
            claim("rejected", "inv_b").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
        assert!(matches!(
            claim("approved", "inv_b").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
        db.record_progress(&id("o-decide"), OrderStatus::Shipping, &[], None)
            .await
            .unwrap();
        assert_eq!(
            claim("approved", "inv_a").await.unwrap(),
            DecisionClaim::Won
        );
        assert!(matches!(
            claim("rejected", "inv_a").await.unwrap(),
            DecisionClaim::Taken { .. }
        ));
    }

    /// Many checkouts racing for the same scarce products, each in another order of
    /// lines, then every release twice at once: never oversold, never given back twice,
    /// no deadlock (on PostgreSQL the rows would otherwise lock in clashing orders).
    #[tokio::test]
    async fn racing_reservations_and_releases_conserve_stock() {
        let (_d, db) = db().await;
        let (scarce, other) = (7, 6); // 3 and 12 in stock
        let before = (stock(&db, scarce).await, stock(&db, other).await);
        let tries: Vec<_> = (0..12)
            .map(|i| {
                let db = db.clone();
                let lines = if i % 2 == 0 {
                    [(scarce, 1), (other, 1)]
                } else {
                    [(other, 1), (scarce, 1)]
                };
                let o = order(&format!("race-{i}"), "alice", &lines);
                tokio::spawn(async move { db.reserve_order(&o, "inv").await.unwrap() })
            })
            .collect();
        let mut reserved = 0;
        for t in tries {
            reserved += i64::from(matches!(t.await.unwrap(), ReserveOutcome::Reserved { .. }));
        }
        assert_eq!(reserved, before.0, "exactly the scarce stock was sold");
        assert_eq!(stock(&db, scarce).await, 0);
        assert_eq!(stock(&db, other).await, before.1 - reserved);

        let releases: Vec<_> = (0..12)
            .flat_map(|i| [i, i])
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.release_reservation(&id(&format!("race-{i}")), None)
                        .await
                })
            })
            .collect();
        let mut released = 0;
        for r in releases {
            released += r.await.unwrap().unwrap();
        }
        assert_eq!(released, 2 * reserved as u64, "two lines per order, once");
        assert_eq!((stock(&db, scarce).await, stock(&db, other).await), before);
    }

    /// Writers racing: every notification lands once, and a reader tailing by id while
    /// they write never skips one (ids become visible in order).
    #[tokio::test]
    async fn a_tail_by_id_misses_no_notification_written_concurrently() {
        let (_d, db) = db().await;
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for n in 0..25 {
                        let event = format!("e-{w}-{n}");
                        db.notify(&event, "alice", None, "k", "m").await.unwrap();
                        db.notify(&event, "alice", None, "k", "m").await.unwrap();
                    }
                })
            })
            .collect();
        let (mut seen, mut last) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen.len() < 200 {
            assert!(std::time::Instant::now() < deadline, "saw {}", seen.len());
            for n in db.notifications_after(last, 50).await.unwrap() {
                last = n.id;
                seen.push(n.id);
            }
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        let all: Vec<i64> = db
            .notifications_after(0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(seen, all, "the tail saw every row, in order, once");
    }

    #[tokio::test]
    async fn a_sale_keeps_the_stock_taken() {
        let (_d, db) = db().await;
        let s1 = stock(&db, 1).await;
        db.reserve_order(&order("o3", "alice", &[(1, 3)]), "inv_1")
            .await
            .unwrap();
        assert_eq!(db.sell_reservation(&id("o3")).await.unwrap(), 1);
        assert_eq!(
            db.release_reservation(&id("o3"), None).await.unwrap(),
            0,
            "a sold reservation is not released"
        );
        assert_eq!(stock(&db, 1).await, s1 - 3);
    }

    #[tokio::test]
    async fn payments_settle_once() {
        let (_d, db) = db().await;
        let o = order("o4", "alice", &[(1, 1)]);
        db.register_payment(&o, "sign_1").await.unwrap();
        db.register_payment(&o, "sign_2").await.unwrap();
        let p = db.payment_by_order(&id("o4")).await.unwrap().unwrap();
        assert_eq!(
            (p.awakeable_id.as_str(), p.state.as_str()),
            ("sign_1", "pending")
        );
        assert!(
            db.settle_payment("sign_1", PaymentState::Succeeded, Some("t1"), None)
                .await
                .unwrap()
        );
        assert!(
            !db.settle_payment("sign_1", PaymentState::Failed, None, Some("late"))
                .await
                .unwrap()
        );
        assert_eq!(
            db.payment_by_awakeable("sign_1")
                .await
                .unwrap()
                .unwrap()
                .transaction_id
                .as_deref(),
            Some("t1")
        );
    }

    /// Refunds racing each other and the order's own refund: never more than was
    /// captured, each id once, the running sum equal to the rows.
    #[tokio::test]
    async fn racing_refunds_never_exceed_what_was_captured() {
        let (_d, db) = db().await;
        let o = order("o-refund", "alice", &[(1, 1)]); // 100 cents
        db.register_payment(&o, "sign_r").await.unwrap();
        let goodwill = |id: String, cents| {
            let db = db.clone();
            tokio::spawn(async move {
                let new = NewRefund {
                    refund_id: &id,
                    order_id: "o-refund",
                    kind: crate::domain::RefundKind::Goodwill,
                    amount: RefundAmount::Exactly(cents),
                    reason: "sorry",
                    actor: Some("admin"),
                };
                db.refund(&new).await.unwrap()
            })
        };
        let unpaid = goodwill("g-early".into(), 10).await.unwrap();
        assert_eq!(
            unpaid,
            RefundOutcome::Exceeds { left: 0 },
            "nothing captured yet"
        );
        db.settle_payment("sign_r", PaymentState::Succeeded, Some("t"), None)
            .await
            .unwrap();
        // Shipped: all of it captured.
        sqlx::query("UPDATE payment_requests SET captured_cents = amount_cents")
            .execute(db.pool())
            .await
            .unwrap();
        let racing: Vec<_> = (0..12).map(|i| goodwill(format!("g-{i}"), 30)).collect();
        let mut made = Vec::new();
        for r in racing {
            if let RefundOutcome::Made(refund) = r.await.unwrap() {
                made.push(refund);
            }
        }
        assert_eq!(made.len(), 3, "three refunds of 30 fit in 100: {made:?}");
        let again = goodwill(made[0].refund_id.clone(), 30).await.unwrap();
        assert_eq!(
            again,
            RefundOutcome::Made(made[0].clone()),
            "the same id is the same refund, made once"
        );
        assert_eq!(
            db.give_back_payment(&id("o-refund"), "rejected")
                .await
                .unwrap(),
            (10, 0),
            "what is left"
        );
        assert_eq!(
            db.give_back_payment(&id("o-refund"), "rejected")
                .await
                .unwrap(),
            (10, 0),
            "again: the same refund"
        );
        let rows = db.refunds_of_order(&id("o-refund")).await.unwrap();
        let sum: i64 = rows.iter().map(|r| r.amount_cents).sum();
        assert_eq!((rows.len(), sum), (4, 100), "{rows:?}");
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT refunded_cents FROM payment_requests WHERE order_id = 'o-refund'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(total, Some(100), "the running sum equals the rows");
    }

    #[tokio::test]
    async fn shipments_and_notifications_are_idempotent() {
        let (_d, db) = db().await;
        let first = db.book_shipment("o5", "FedEx", "T1").await.unwrap();
        let again = db.book_shipment("o5", "UPS", "T2").await.unwrap();
        assert_eq!(first, again);
        assert!(db.cancel_shipment(&id("o5")).await.unwrap());
        assert!(!db.cancel_shipment(&id("o5")).await.unwrap());
        db.notify("e1", "alice", Some("o5"), "shipped", "Shipped")
            .await
            .unwrap();
        db.notify("e1", "alice", Some("o5"), "shipped", "Shipped")
            .await
            .unwrap();
        assert_eq!(db.notifications("alice", 0).await.unwrap().len(), 1);
    }
}
