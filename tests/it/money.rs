//! The money and the stock add up: random sequences of orders that end every way
//! (delivered, cancelled, rejected, lost in transit; authorized at checkout, captured
//! only once shipped, so what never shipped is voided, never refunded), goodwill refunds of random
//! amounts (some too large), returns of random quantities (some too many) approved,
//! rejected or left open, received with or without restock. Each answer is checked
//! against a model as it comes; at the end every order has refunded ≤ captured, its
//! refunds sum to its refunded total, and the stock of each product moved by exactly
//! what was sold and restocked. The seed is printed; `SHOPFLOW_TEST_SEED` replays one.

use crate::common;

use std::collections::BTreeMap;

use common::Api;
use serde_json::{Value, json};

const ADMIN: &str = "admin";
const SKUS: [&str; 2] = ["P003", "P009"];

/// xorshift64*: enough randomness for test sequences, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the model expects of one order.
#[derive(Default, Debug)]
struct Expected {
    refunded: i64,
    captured: i64,
    /// Units sold for good, and units put back on sale, per SKU.
    sold: BTreeMap<&'static str, i64>,
    restocked: BTreeMap<&'static str, i64>,
}

fn status(reply: &common::Reply) -> u16 {
    reply.0.as_u16()
}

async fn goodwill(api: &Api, rng: &mut Rng, id: &str, e: &mut Expected, seed: u64) {
    let left = e.captured - e.refunded;
    let cents = 1 + rng.below(u64::try_from(left.max(0) + 2000).unwrap()) as i64;
    let body = json!({"amount_cents": cents, "reason": "goodwill"});
    let reply = api
        .post(
            &format!("/api/admin/orders/{id}/refunds"),
            Some(ADMIN),
            &body,
        )
        .await;
    match status(&reply) {
        200 => {
            assert!(
                cents <= left,
                "seed {seed}: {id}: {cents} refunded with {left} left"
            );
            e.refunded += cents;
        }
        409 => assert!(
            cents > left || e.captured == 0,
            "seed {seed}: {id}: {cents} refused with {left} left: {}",
            reply.1
        ),
        other => panic!(
            "seed {seed}: {id}: goodwill refund answered {other}: {}",
            reply.1
        ),
    }
}

/// One return of random quantities, then a random decision and receipt.
async fn a_return(
    api: &Api,
    rng: &mut Rng,
    user: &str,
    order: &Value,
    e: &mut Expected,
    held: &mut BTreeMap<&'static str, i64>,
    seed: u64,
) {
    let id = order["order_id"].as_str().unwrap();
    let mut items = Vec::new();
    let mut asked = Vec::new();
    for item in order["items"].as_array().unwrap() {
        let sku = SKUS.into_iter().find(|s| item["sku"] == *s).unwrap();
        if rng.chance(60) {
            let q = 1 + rng.below(3) as i64;
            items.push(json!({"product_id": item["product_id"], "quantity": q}));
            asked.push((sku, q, item["unit_price_cents"].as_i64().unwrap()));
        }
    }
    if items.is_empty() {
        return;
    }
    let reply = api
        .post(
            &format!("/api/orders/{id}/returns"),
            Some(user),
            &json!({"items": items, "reason": "random"}),
        )
        .await;
    let fits = asked.iter().all(|(sku, q, _)| held[sku] + q <= e.sold[sku]);
    if !fits {
        assert_eq!(
            status(&reply),
            409,
            "seed {seed}: {id}: too many asked back: {}",
            reply.1
        );
        return;
    }
    assert_eq!(
        status(&reply),
        202,
        "seed {seed}: {id}: return: {}",
        reply.1
    );
    let rid = reply.1["return_id"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/api/admin/returns/{rid}/{action}");
    match rng.below(3) {
        0 => {
            return asked
                .iter()
                .for_each(|(sku, q, _)| *held.get_mut(sku).unwrap() += q);
        }
        1 => {
            let reply = api
                .post(&path("reject"), Some(ADMIN), &json!({"reason": "random"}))
                .await;
            assert_eq!(status(&reply), 200, "seed {seed}: reject: {}", reply.1);
            return;
        }
        _ => {}
    }
    let reply = api.post(&path("approve"), Some(ADMIN), &json!({})).await;
    assert_eq!(status(&reply), 200, "seed {seed}: approve: {}", reply.1);
    let restock = rng.chance(50);
    let reply = api
        .post(&path("receive"), Some(ADMIN), &json!({"restock": restock}))
        .await;
    assert_eq!(status(&reply), 200, "seed {seed}: receive: {}", reply.1);
    let worth: i64 = asked.iter().map(|(_, q, price)| q * price).sum();
    let refund = worth.min(e.captured - e.refunded);
    assert_eq!(
        reply.1["refund_cents"], refund,
        "seed {seed}: {rid}: {}",
        reply.1
    );
    e.refunded += refund;
    for (sku, q, _) in asked {
        *held.get_mut(sku).unwrap() += q;
        if restock {
            *e.restocked.entry(sku).or_default() += q;
        }
    }
}

/// One order that ends a random way, with refunds and returns along it.
async fn sequence(api: &Api, rng: &mut Rng, user: &str, n: usize, seed: u64) -> (String, Expected) {
    let fate = rng.below(4);
    let id = format!(
        "money-{seed:x}-{user}-{n}{}",
        if fate == 3 { "-FAIL_DELIVERY" } else { "" }
    );
    let mut lines: Vec<(&str, i64)> = Vec::new();
    for sku in SKUS {
        if rng.chance(70) {
            lines.push((sku, 1 + rng.below(3) as i64));
        }
    }
    let lines = if lines.is_empty() {
        vec![("P009", 1)]
    } else {
        lines
    };
    let (awakeable, total) = api.place_order(user, &id, &lines).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, &id, "awaiting_approval").await;
    // Authorized at checkout, nothing captured before it ships: a goodwill refund now
    // is refused.
    let mut e = Expected::default();
    if rng.chance(50) {
        goodwill(api, rng, &id, &mut e, seed).await;
    }
    let end = match fate {
        0 => (api.cancel(user, &id, None).await, "cancelled"),
        1 => (api.reject(ADMIN, &id, Some("random")).await, "rejected"),
        2 => (api.approve(ADMIN, &id).await, "delivered"),
        _ => (api.approve(ADMIN, &id).await, "shipping_failed"),
    };
    assert_eq!(status(&end.0), 200, "seed {seed}: {id}: {}", end.0.1);
    let order = api.wait_status(user, &id, end.1).await;
    match end.1 {
        // It shipped (captured), then was lost: the saga refunds all of it.
        "shipping_failed" => {
            e.captured = total;
            e.refunded = total;
            return (id, e);
        }
        // Never shipped: the authorization is voided, nothing captured or refunded.
        "cancelled" | "rejected" => return (id, e),
        _ => e.captured = total,
    }
    for (sku, q) in &lines {
        e.sold.insert(sku, *q);
    }
    let mut held = SKUS.iter().map(|s| (*s, 0)).collect();
    for _ in 0..rng.below(4) {
        if rng.chance(40) {
            goodwill(api, rng, &id, &mut e, seed).await;
        }
        a_return(api, rng, user, &order, &mut e, &mut held, seed).await;
    }
    (id, e)
}

#[tokio::test]
async fn refunds_never_exceed_the_payment_and_stock_is_conserved() {
    let (_app, api) = crate::returns::shared_app().await;
    let seed: u64 = std::env::var("SHOPFLOW_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("SHOPFLOW_TEST_SEED={seed}");
    let mut before = BTreeMap::new();
    for sku in SKUS {
        before.insert(sku, api.stock(sku).await);
    }
    let users = ["dave", "erin", "frank", "grace"];
    let runs = users.into_iter().enumerate().map(|(i, user)| {
        let api = api.clone();
        tokio::spawn(async move {
            let mut rng =
                Rng(seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            let mut done = Vec::new();
            for n in 0..3 {
                done.push(sequence(&api, &mut rng, user, n, seed).await);
            }
            done
        })
    });
    let mut all = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        all.extend(run.await.expect("a sequence panicked"));
    }
    let mut moved: BTreeMap<&str, i64> = BTreeMap::new();
    for (id, e) in &all {
        let (_, order) = api.order(ADMIN, id).await;
        let p = &order["payment"];
        let (captured, refunded) = (
            p["captured_cents"].as_i64().unwrap(),
            p["refunded_cents"].as_i64().unwrap(),
        );
        let listed: i64 = p["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount_cents"].as_i64().unwrap())
            .sum();
        assert!(
            refunded <= captured,
            "seed {seed}: {id}: refunded {refunded} > captured {captured}"
        );
        assert_eq!(
            (captured, refunded, listed),
            (e.captured, e.refunded, e.refunded),
            "seed {seed}: {id}: (captured, refunded, sum of refunds) vs the model"
        );
        for sku in SKUS {
            *moved.entry(sku).or_default() +=
                e.restocked.get(sku).unwrap_or(&0) - e.sold.get(sku).unwrap_or(&0);
        }
    }
    for sku in SKUS {
        api.wait_stock(sku, before[sku] + moved[sku]).await;
    }
}
