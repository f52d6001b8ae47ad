//! `make bench`: latency of the API against the real stack (release build, real
//! restate-server, real SQLite), reported as medians and percentiles.
//!
//! - cart: sequential `POST /api/cart/add` + `/api/cart/remove` on one user, so each call
//!   waits for the previous one on the same virtual-object key;
//! - order: the wall time of a whole happy-path order (add, checkout, pay, approve,
//!   delivered) with a 1 s delivery delay, observed through the API;
//! - throughput: 10 concurrent clients for 5 s each on cart reads (10 users) and cart
//!   writes (add/remove alternating, one user per client), then cart reads again with
//!   100 `/stream/workflow/{id}` streams open on one order under way;
//! - `/healthz` latency while 10 clients saturate Restate with cart writes.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Api, AppConfig, TestApp};
use serde_json::json;

const CLIENTS: usize = 10;
/// How long each throughput run lasts: `BENCH_SECONDS` (5 by default).
fn run_for() -> Duration {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok());
    Duration::from_secs(seconds.unwrap_or(5))
}
const USERS: [&str; CLIENTS] = [
    "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kim", "leo",
];

/// `CLIENTS` tasks calling `op(api, user, i)` as fast as they can for `run_for()`; prints the
/// rate and the latency percentiles.
async fn throughput<F, Fut>(name: &str, api: &Api, op: F)
where
    F: Fn(Api, &'static str, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = USERS
        .iter()
        .map(|&user| {
            let (api, op) = (api.clone(), op.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = 0;
                while started.elapsed() < run_for() {
                    let t = Instant::now();
                    assert!(op(api.clone(), user, i).await, "{user}: a call failed");
                    samples.push(t.elapsed());
                    i += 1;
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    println!("{name:<48} {rate:>8.0} req/s");
    report(&format!("  {name}"), all);
}

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
    config.extra_env = vec![
        ("SHOPFLOW_DELIVERY_DELAY".into(), "1s".into()),
        // One user holds the 100 streams below.
        ("SHOPFLOW_MAX_STREAMS_PER_USER".into(), "128".into()),
    ];
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

    let read = |api: Api, user: &'static str, _| async move { api.cart(user).await.0 == 200 };
    throughput("cart reads, 10 clients", &api, read).await;
    let write = |api: Api, user: &'static str, i: u64| async move {
        let status = if i.is_multiple_of(2) {
            api.add_to_cart(user, json!("P008"), 1).await.0
        } else {
            api.remove_from_cart(user, json!("P008")).await.0
        };
        status == 200
    };
    throughput("cart writes (add/remove), 10 clients", &api, write).await;

    // 100 live workflow streams on one order that waits for approval.
    let (awakeable, total) = api
        .place_order("mia", "order-bench-streams", &[("P004", 1)])
        .await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status("mia", "order-bench-streams", "awaiting_approval")
        .await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(
            api.stream("/stream/workflow/order-bench-streams", "mia", None)
                .await,
        );
    }
    throughput("cart reads, 10 clients, 100 workflow streams", &api, read).await;
    drop(streams);
    // The same again without them, for an A/B of equals.
    throughput("cart reads, 10 clients, streams closed", &api, read).await;

    // `/healthz` while Restate is saturated: 10 clients writing carts as fast as they
    // can, and one probe every 20 ms.
    let probe = {
        let api = api.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            while started.elapsed() < run_for() {
                let t = Instant::now();
                assert_eq!(api.healthz().await.0, 200);
                samples.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };
    throughput("cart writes while /healthz is probed", &api, write).await;
    report("GET /healthz, Restate saturated", probe.await.unwrap());
}
