//! `make bench`: latency of the API against the real stack (release build, real
//! restate-server, real SQLite), reported as medians and percentiles.
//!
//! - cart: sequential `POST /api/cart/add` + `/api/cart/remove` on one user, so each call
//!   waits for the previous one on the same virtual-object key;
//! - order: the wall time of a whole happy-path order (add, checkout, pay, approve,
//!   delivered) with a 1 s delivery delay, observed through the API.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{AppConfig, TestApp};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<32} n={:<4} median={:>8.2?} p90={:>8.2?} p99={:>8.2?} max={:>8.2?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.extra_env = vec![("SHOPFLOW_DELIVERY_DELAY".into(), "1s".into())];
    let app = TestApp::start(config).await;
    let api = app.api.clone();

    // Warm up connections and the endpoint.
    for _ in 0..20 {
        api.add_to_cart("bob", json!("P008"), 1).await;
        api.remove_from_cart("bob", json!("P008")).await;
    }

    let mut cart = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        assert_eq!(api.add_to_cart("bob", json!("P008"), 1).await.0, 200);
        cart.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(api.remove_from_cart("bob", json!("P008")).await.0, 200);
        cart.push(t.elapsed());
    }
    report("cart add/remove (one user)", cart);

    let mut reads = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        assert_eq!(api.products().await.0, 200);
        reads.push(t.elapsed());
    }
    report("GET /api/products", reads);

    let mut orders = Vec::new();
    let mut to_approval = Vec::new();
    for i in 0..10 {
        let id = format!("order-bench-{i}");
        let t = Instant::now();
        let (awakeable, total) = api.place_order("alice", &id, &[("P004", 1)]).await;
        assert_eq!(api.pay(&awakeable, total).await.0, 200);
        assert_eq!(api.approve("admin", &id).await.0, 200);
        to_approval.push(t.elapsed());
        api.wait_status("alice", &id, "delivered").await;
        orders.push(t.elapsed());
    }
    report("order: add..approve", to_approval);
    report("order: add..delivered (1s timer)", orders);
}
