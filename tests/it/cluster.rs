//! The scale-out layout of `deploy/` on loopback, started by `deploy/cluster.sh`: three
//! Restate nodes, two service replicas and two web replicas behind HAProxy,
//! PostgreSQL, an S3 store for snapshots. `cluster_smoke` (part of `make test`) runs
//! orders through the balancer while one process of each kind is killed with -9 and
//! started again; `cluster_chaos` (`make cluster-test`) runs many customers' orders
//! through every lifecycle path while a chaos loop keeps killing, and checks the
//! invariants afterwards. Both use the fixed ports of `deploy/`, so they run one at a
//! time and not beside `make cluster`.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Api, AppConfig};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A running cluster; stopped when dropped.
struct Cluster {
    dir: PathBuf,
    config: AppConfig,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts the cluster in a fresh state dir, the replicas with `env` on top of
    /// `deploy/`'s settings.
    fn up(name: &str, env: &[(&str, &str)]) -> Cluster {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cluster = Cluster {
            config: AppConfig::new(&dir.join("shared")),
            dir,
            env,
        };
        cluster.script(&["clean"]);
        assert!(
            std::net::TcpListener::bind("127.0.0.1:27080").is_ok(),
            "port 27080 is taken: is `make cluster` running? (`make cluster-down`)"
        );
        cluster.script(&["up"]);
        // The tests reach it as a browser would: through the balancer.
        cluster.config.http = "127.0.0.1:27080".parse().unwrap();
        cluster.config.admin = "127.0.0.1:27170".parse().unwrap();
        cluster.config.ingress = "127.0.0.1:27180".parse().unwrap();
        cluster.config.database_url = "postgres://shopflow@127.0.0.1:27432/shopflow".into();
        cluster
    }

    fn script(&self, args: &[&str]) {
        if let Err(e) = self.try_script(args) {
            panic!("{e}");
        }
    }

    fn try_script(&self, args: &[&str]) -> Result<(), String> {
        run_script(&self.dir, &self.env, args)
    }

    fn kill(&self, name: &str) {
        self.script(&["kill", name]);
    }

    fn start(&self, name: &str) {
        self.script(&["start", name]);
    }

    fn api(&self) -> Api {
        Api::new(&self.config)
    }

    /// Ends every connection the replicas hold to PostgreSQL (as a failover or a
    /// restarted server would).
    async fn drop_database_connections(&self) -> u64 {
        let admin = common::connect(&self.config.database_url).await;
        let ended: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = 'shopflow' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        admin.close().await;
        ended.len() as u64
    }
}

impl Drop for Cluster {
    /// Stops the cluster, unless `CLUSTER_KEEP` is set (to look at it after a failure).
    /// Never panics: a panic while a failed test unwinds would abort the test binary
    /// and lose the first panic's message.
    fn drop(&mut self) {
        if std::env::var_os("CLUSTER_KEEP").is_none()
            && let Err(e) = self.try_script(&["down"])
        {
            eprintln!("{e}");
        }
    }
}

/// Runs `deploy/cluster.sh ARGS` on the cluster in `dir`, with `env` on top.
fn run_script(dir: &Path, env: &[(String, String)], args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(Path::new(ROOT).join("deploy/cluster.sh"));
    cmd.args(args)
        .env("CLUSTER_DIR", dir)
        .env("SHOPFLOW_BIN", env!("CARGO_BIN_EXE_shopflow"))
        .env("CLUSTER_VENV", Path::new(ROOT).join("target/cluster-venv"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cluster.sh {args:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "cluster.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Asks until the answer is not a passing failure (502, 503 or 504, or no answer while
/// a replica or node is down): what a client with a timeout and idempotency keys does.
/// A 500 is never passing: it fails the test.
async fn until_answered<F, Fut>(what: &str, ask: F) -> common::Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<common::Reply, reqwest::Error>>,
{
    until_answered_with(what, ask, |_| true).await
}

/// Asks until an answer that is not a passing failure also passes `done`; the last
/// answer is in the message when the deadline passes.
async fn until_answered_with<F, Fut>(
    what: &str,
    mut ask: F,
    done: impl Fn(&common::Reply) -> bool,
) -> common::Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<common::Reply, reqwest::Error>>,
{
    let started = Instant::now();
    loop {
        match ask().await {
            Ok(reply) if reply.0.as_u16() < 500 && done(&reply) => return reply,
            Ok(reply) if reply.0.as_u16() == 500 => panic!("{what}: {reply:?}"),
            Ok(reply) => assert!(started.elapsed() < common::DEADLINE, "{what}: {reply:?}"),
            Err(e) => assert!(started.elapsed() < common::DEADLINE, "{what}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request, its answer as (status, JSON).
async fn send(req: reqwest::RequestBuilder) -> Result<common::Reply, reqwest::Error> {
    let response = req.timeout(Duration::from_secs(20)).send().await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// How an order should end, and the customer's part in it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    Delivered,
    Declined,
    Rejected,
    /// The carrier refuses every booking (`FAIL_SHIP` in the order id): the saga
    /// refunds and gives the stock back.
    ShippingFailed,
    /// Paid, and left waiting for the admin's decision.
    AwaitingApproval,
}

/// Places, pays (or declines) and decides one order for `user`, retrying every step
/// through faults with the same idempotency key or order id; returns the final order.
async fn one_order(api: &Api, user: &str, id: &str, sku: &str, path: Ending) -> Value {
    let token = api.token(user);
    let add_key = format!("{id}-add");
    let added = until_answered("add to cart", || {
        send(
            api.request(reqwest::Method::POST, "/api/cart/add")
                .bearer_auth(&token)
                .header("idempotency-key", &add_key)
                .json(&json!({"product_id": sku, "quantity": 1})),
        )
    })
    .await;
    assert_eq!(added.0, 200, "{added:?}");
    let checkout = until_answered("checkout", || {
        send(
            api.request(reqwest::Method::POST, "/api/checkout")
                .bearer_auth(&token)
                .json(&json!({"order_id": id, "shipping_address": "1 Cluster Way"})),
        )
    })
    .await;
    assert!(
        checkout.0 == 202 || checkout.0 == 200,
        "checkout {id}: {checkout:?}"
    );
    let order = order_until(api, user, id, "with its payment", |order| {
        order["payment"]["awakeable_id"].is_string() && order["total_cents"].is_i64()
    })
    .await;
    let awakeable = order["payment"]["awakeable_id"].as_str().unwrap();
    let total = order["total_cents"].as_i64().unwrap();
    let body = match path {
        Ending::Declined => json!({"awakeable_id": awakeable, "transaction_id": "",
                                  "amount": 0, "status": "failed", "reason": "card declined"}),
        _ => json!({"awakeable_id": awakeable, "transaction_id": format!("txn-{id}"),
                    "amount": total, "status": "success"}),
    };
    let body = body.to_string();
    let paid = until_answered("the payment callback", || {
        send(
            api.request(reqwest::Method::POST, "/api/payment/callback")
                .header("content-type", "application/json")
                .header("x-payment-signature", api.signature(&body))
                .body(body.clone()),
        )
    })
    .await;
    // A callback that was settled before its answer was lost is a 409 the second time.
    assert!(paid.0 == 200 || paid.0 == 409, "pay {id}: {paid:?}");
    if path == Ending::Declined {
        return wait_for(api, user, id, "payment_failed").await;
    }
    let waiting = wait_for(api, user, id, "awaiting_approval").await;
    if path == Ending::AwaitingApproval {
        return waiting;
    }
    let action = if path == Ending::Rejected {
        "reject"
    } else {
        "approve"
    };
    let admin = api.token("admin");
    let decided = until_answered("the decision", || {
        send(
            api.request(
                reqwest::Method::POST,
                &format!("/api/workflow/{id}/{action}"),
            )
            .bearer_auth(&admin),
        )
    })
    .await;
    assert!(
        decided.0 == 200 || decided.0 == 409,
        "{action} {id}: {decided:?}"
    );
    let end = match path {
        Ending::Rejected => "rejected",
        Ending::ShippingFailed => "shipping_failed",
        _ => "delivered",
    };
    wait_for(api, user, id, end).await
}

/// Polls the order through the balancer until it reaches `status`.
async fn wait_for(api: &Api, user: &str, id: &str, status: &str) -> Value {
    let what = format!("to become {status}");
    order_until(api, user, id, &what, |order| order["status"] == status).await
}

/// Polls the order through the balancer until `done` holds for it; the order as last
/// seen is in the message when it does not.
async fn order_until(
    api: &Api,
    user: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let token = api.token(user);
    let ask = || {
        send(
            api.request(reqwest::Method::GET, &format!("/api/orders/{id}"))
                .bearer_auth(&token),
        )
    };
    let what = format!("order {id} {what}");
    until_answered_with(&what, ask, |(code, order)| *code == 200 && done(order))
        .await
        .1
}

/// Stock of every product, through the balancer.
async fn stock(api: &Api) -> BTreeMap<String, i64> {
    let (_, products) = until_answered("the catalog", || {
        send(api.request(reqwest::Method::GET, "/api/products"))
    })
    .await;
    products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sku"].as_str().unwrap().to_owned(),
                p["stock_qty"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// What the database and Restate hold for one order.
#[derive(Debug, PartialEq)]
struct Facts {
    payment_requests: i64,
    shipments: i64,
    sales: i64,
    /// Payments given back whole: voided before shipping (or refunded after).
    given_back: i64,
    /// Lifecycle notification kinds sent more than once.
    notified_twice: i64,
    workflow_runs: usize,
}

impl Facts {
    /// What an order that ended as `path` must leave behind.
    fn expected(path: Ending) -> Facts {
        let delivered = i64::from(path == Ending::Delivered);
        Facts {
            payment_requests: 1,
            shipments: delivered,
            sales: delivered,
            given_back: i64::from(matches!(path, Ending::Rejected | Ending::ShippingFailed)),
            notified_twice: 0,
            workflow_runs: usize::from(path != Ending::Declined),
        }
    }

    async fn of(cluster: &Cluster, db: &sqlx::AnyPool, id: &str) -> Facts {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap_or_else(|e| panic!("{id}: {sql}: {e}"))
        };
        Facts {
            payment_requests: count("SELECT COUNT(*) FROM payment_requests WHERE order_id = $1")
                .await,
            shipments: count("SELECT COUNT(*) FROM shipments WHERE order_id = $1").await,
            sales: count(
                "SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = 'sold'",
            )
            .await,
            given_back: count(
                "SELECT COUNT(*) FROM payment_requests WHERE order_id = $1
                 AND COALESCE(refunded_cents, 0) + voided_cents = amount_cents",
            )
            .await,
            notified_twice: count(
                "SELECT COUNT(*) FROM (SELECT kind FROM notifications WHERE order_id = $1
                   AND kind IN ('checkout_started', 'payment_confirmed', 'payment_failed', 'delivered')
                 GROUP BY user_id, kind HAVING COUNT(*) > 1) AS d",
            )
            .await,
            workflow_runs: restate_workflow_runs(cluster, id).await,
        }
    }
}

/// What must hold after every order of `orders` ended as planned: one payment request,
/// one workflow run (none for a declined payment), a shipment and a sale exactly when
/// delivered, the payment given back whole exactly when rejected or failed at the
/// carrier (voided: it never shipped), each
/// lifecycle notification once, and stock conserved. Restate's introspection and the
/// replicas may lag the status the test saw, so each order is read until its facts
/// match or the deadline passes; a failure names the order and both sets of facts.
async fn check_invariants(
    cluster: &Cluster,
    orders: &[(String, Ending)],
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) {
    let db = common::connect(&cluster.config.database_url).await;
    for (id, path) in orders {
        let expected = Facts::expected(*path);
        let started = Instant::now();
        loop {
            let found = Facts::of(cluster, &db, id).await;
            if found == expected {
                break;
            }
            assert!(
                started.elapsed() < common::DEADLINE,
                "order {id} ended {path:?}: expected {expected:?}, found {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Units: a declined order's items go back to the cart and ride on the next one.
    let mut sold = 0;
    for (id, _) in orders {
        sold += sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM stock_reservations
             WHERE order_id = $1 AND state = 'sold'",
        )
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    }
    db.close().await;
    let taken: i64 = before.values().sum::<i64>() - after.values().sum::<i64>();
    assert_eq!(
        taken, sold,
        "stock conserved: units taken from stock (before {before:?}, after {after:?}) \
         against units sold"
    );
}

/// How many workflow invocations Restate has for the order.
async fn restate_workflow_runs(cluster: &Cluster, id: &str) -> usize {
    let query = format!(
        "SELECT id FROM sys_invocation WHERE target_service_name = 'OrderFulfillmentWorkflow'
         AND target_service_key = '{id}' AND target_handler_name = 'Run'"
    );
    let url = format!("http://{}/query", cluster.config.admin);
    let reply: Value = until_answered("Restate's invocations", || async {
        let response = reqwest::Client::new()
            .post(&url)
            .header("accept", "application/json")
            .json(&json!({ "query": query }))
            .timeout(Duration::from_secs(20))
            .send()
            .await?;
        // Restate's query engine answers 500 ("No such scanner") when a node that held
        // part of the scan restarted: for this read, a passing error.
        let status = match response.status() {
            reqwest::StatusCode::INTERNAL_SERVER_ERROR => reqwest::StatusCode::SERVICE_UNAVAILABLE,
            status => status,
        };
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    })
    .await
    .1;
    reply["rows"].as_array().map_or(0, Vec::len)
}

/// Orders through the balancer while one Restate node, one service replica, one web
/// replica and the database's connections are lost in turn, each started again.
#[tokio::test]
async fn cluster_smoke() {
    if common::postgres::wanted() {
        return; // The cluster runs on PostgreSQL anyway: once is enough.
    }
    let cluster = Cluster::up("cluster-smoke", &[("SHOPFLOW_DELIVERY_DELAY", "1s")]);
    let api = cluster.api();
    let before = stock(&api).await;
    let mut stream = api.stream("/stream/notifications", "alice", None).await;
    let mut orders = Vec::new();
    let faults: [(&str, &str); 5] = [
        ("none", ""),
        ("Restate node", "n2"),
        ("service replica", "services-1"),
        ("web replica", "web-2"),
        ("database connections", ""),
    ];
    for (n, (kind, victim)) in faults.iter().enumerate() {
        match (*kind, *victim) {
            ("none", _) => {}
            ("database connections", _) => {
                assert!(cluster.drop_database_connections().await > 0);
            }
            (_, victim) => cluster.kill(victim),
        }
        let path = [
            Ending::Delivered,
            Ending::Rejected,
            Ending::Declined,
            Ending::ShippingFailed,
            Ending::Delivered,
        ][n];
        let id = match path {
            Ending::ShippingFailed => format!("smoke-{n}-FAIL_SHIP"),
            _ => format!("smoke-{n}"),
        };
        let order = one_order(&api, "alice", &id, "P001", path).await;
        eprintln!("{id} ({kind} lost): {}", order["status"]);
        orders.push((id, path));
        if !victim.is_empty() {
            cluster.start(victim);
        }
    }
    // The stream opened before the faults saw every notification of these orders, once,
    // through whichever replica it was on: a stream the kill cut off resumes from the
    // last id it saw, through the balancer.
    let db = common::connect(&cluster.config.database_url).await;
    let wanted: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE user_id = 'alice' AND order_id LIKE 'smoke-%' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    db.close().await;
    let mut earlier: Vec<i64> = Vec::new();
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let now: Vec<i64> = stream.events().iter().filter_map(|e| e.id).collect();
        let seen: Vec<i64> = earlier.iter().chain(&now).copied().collect();
        if wanted.iter().all(|id| seen.contains(id)) {
            let mut once = seen.clone();
            once.dedup();
            assert_eq!(once, seen, "an event twice");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream saw {seen:?} of {wanted:?}"
        );
        match tokio::time::timeout(Duration::from_secs(5), stream.next_chunk()).await {
            Ok(Some(chunk)) => stream.text.push_str(&chunk),
            Ok(None) | Err(_) => {
                earlier = seen;
                let last = earlier.last().copied();
                stream = api.stream("/stream/notifications", "alice", last).await;
            }
        }
    }
    let after = stock(&api).await;
    check_invariants(&cluster, &orders, &before, &after).await;
    metrics_only_on_the_private_front_end().await;
    rolling_upgrade(&cluster).await;
}

/// Builds the admin API lists through the balancer, as (build, state).
async fn builds(api: &Api) -> Vec<(String, String)> {
    let admin = api.token("admin");
    let reply = until_answered("the deployments", || {
        send(
            api.request(reqwest::Method::GET, "/api/admin/deployments")
                .bearer_auth(&admin),
        )
    })
    .await;
    let all = reply.1.as_array().unwrap_or_else(|| panic!("{reply:?}"));
    all.iter()
        .map(|d| {
            (
                d["build"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `cluster.sh upgrade` onto another build while an order waits for approval on the
/// running one: the new build takes new orders at once, the waiting order is approved
/// and delivered on its own build, which then drains and is retired.
async fn rolling_upgrade(cluster: &Cluster) {
    let api = cluster.api();
    let old = builds(&api).await;
    assert!(
        matches!(&old[..], [(_, state)] if state == "active"),
        "one build before the upgrade: {old:?}"
    );
    one_order(&api, "bob", "upgrade-old", "P002", Ending::AwaitingApproval).await;
    // Another build: the same executable with one more line.
    let next = cluster.dir.join("next-shopflow");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_shopflow")).unwrap();
    bytes.extend_from_slice(b"\nthe next build\n");
    std::fs::write(&next, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).unwrap();
    let upgrade = {
        let (dir, mut env) = (cluster.dir.clone(), cluster.env.clone());
        env.push(("UPGRADE_DRAIN_SECONDS".into(), "120".into()));
        std::thread::spawn(move || run_script(&dir, &env, &["upgrade", next.to_str().unwrap()]))
    };
    let during = common::eventually("the new build to take new orders", || {
        let api = api.clone();
        async move {
            let all = builds(&api).await;
            (all.len() == 2 && all[0].1 == "active" && all[1].1 == "draining").then_some(all)
        }
    })
    .await;
    assert_eq!(during[1].0, old[0].0, "the old build drains: {during:?}");
    let fresh = one_order(&api, "carol", "upgrade-new", "P003", Ending::Delivered).await;
    assert_eq!(fresh["status"], "delivered");
    let admin = api.token("admin");
    let approved = until_answered("approve the waiting order", || {
        send(
            api.request(reqwest::Method::POST, "/api/workflow/upgrade-old/approve")
                .bearer_auth(&admin),
        )
    })
    .await;
    assert_eq!(approved.0, 200, "{approved:?}");
    wait_for(&api, "bob", "upgrade-old", "delivered").await;
    let outcome = tokio::task::spawn_blocking(move || upgrade.join().unwrap())
        .await
        .unwrap();
    outcome.unwrap_or_else(|e| panic!("{e}"));
    let after = builds(&api).await;
    assert_eq!(
        after,
        [(during[0].0.clone(), "active".to_owned())],
        "the old build is retired"
    );
}

/// The balancer's public front end refuses /metrics in every spelling; the private
/// one serves it and nothing else.
async fn metrics_only_on_the_private_front_end() {
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(&url).send().await.unwrap().status().as_u16() }
    };
    for path in ["/metrics", "/METRICS", "/%6detrics", "/metrics?x=1"] {
        let got = status(format!("http://127.0.0.1:27080{path}")).await;
        assert_eq!(got, 404, "public {path}");
    }
    assert_eq!(
        status("http://127.0.0.1:27085/metrics".into()).await,
        200,
        "private /metrics"
    );
    assert_eq!(
        status("http://127.0.0.1:27085/api/products".into()).await,
        404,
        "private front end: only /metrics"
    );
}

/// Many customers through every path while the chaos loop kills one process after
/// another; the invariants afterwards. Results and stalls: `target/cluster-report.md`.
#[tokio::test]
#[ignore = "minutes long; `make cluster-test` runs it"]
async fn cluster_chaos() {
    let cluster = Arc::new(Cluster::up(
        "cluster-chaos",
        &[("SHOPFLOW_DELIVERY_DELAY", "2s")],
    ));
    let api = cluster.api();
    let before = stock(&api).await;
    let customers: usize = std::env::var("CLUSTER_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let rounds: usize = std::env::var("CLUSTER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);

    // A prober reads a cart (Restate) and the orders list (the database) every 50 ms:
    // the longest gap between answers to both around each kill is that kill's stall.
    let done = Arc::new(AtomicBool::new(false));
    let probe = {
        let (api, done) = (api.clone(), done.clone());
        tokio::spawn(async move {
            let token = api.token("admin");
            let answered = async |path: &str| {
                let req = api.request(reqwest::Method::GET, path).bearer_auth(&token);
                send(req).await.is_ok_and(|(code, _)| code == 200)
            };
            let mut answers: Vec<Instant> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                if answered("/api/cart").await && answered("/api/orders").await {
                    answers.push(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    let chaos = {
        let (cluster, done) = (cluster.clone(), done.clone());
        tokio::spawn(async move {
            let victims = [
                "n1",
                "services-1",
                "web-1",
                "database connections",
                "n2",
                "services-2",
                "web-2",
                "postgres",
                "n3",
            ];
            let mut kills: Vec<(String, Instant)> = Vec::new();
            for victim in victims.iter().cycle() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                kills.push((victim.to_string(), Instant::now()));
                if *victim == "database connections" {
                    cluster.drop_database_connections().await;
                    continue;
                }
                let c = cluster.clone();
                let v = victim.to_string();
                tokio::task::spawn_blocking(move || c.kill(&v))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                let c = cluster.clone();
                let v = victim.to_string();
                tokio::task::spawn_blocking(move || c.start(&v))
                    .await
                    .unwrap();
            }
            kills
        })
    };

    // The demo customers (the load-test seed would reset the stock at every restart).
    let (_, users) = until_answered("the users", || {
        send(api.request(reqwest::Method::GET, "/api/users"))
    })
    .await;
    let names: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "customer")
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.len() >= customers,
        "{} customers in the seed",
        names.len()
    );

    let started = Instant::now();
    let mut work = Vec::new();
    for (c, user) in names.into_iter().take(customers).enumerate() {
        let api = api.clone();
        work.push(tokio::spawn(async move {
            let mut orders = Vec::new();
            for r in 0..rounds {
                let path = match (c + r) % 5 {
                    0 | 1 => Ending::Delivered,
                    2 => Ending::Declined,
                    3 => Ending::Rejected,
                    _ => Ending::ShippingFailed,
                };
                let id = match path {
                    Ending::ShippingFailed => format!("chaos-{c}-{r}-FAIL_SHIP"),
                    _ => format!("chaos-{c}-{r}"),
                };
                let sku = ["P001", "P002", "P004", "P008"][r % 4];
                one_order(&api, &user, &id, sku, path).await;
                orders.push((id, path));
            }
            orders
        }));
    }
    let mut orders = Vec::new();
    for w in work {
        orders.extend(w.await.unwrap());
    }
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let kills = chaos.await.unwrap();
    let answers = probe.await.unwrap();
    let after = stock(&api).await;
    check_invariants(&cluster, &orders, &before, &after).await;

    // The stall of each fault: the longest gap between the prober's answers from the
    // fault to the next one (the victim is started again 2 s after a kill).
    let mut report = format!(
        "# Cluster chaos run\n\n{} orders ({customers} customers x {rounds} rounds) in {:.1} s \
         ({:.2} orders/s) while {} faults were injected; every invariant held.\n\n\
         | fault | at (s) | longest gap between answers until the next fault (ms) |\n|---|---|---|\n",
        orders.len(),
        took.as_secs_f64(),
        orders.len() as f64 / took.as_secs_f64(),
        kills.len()
    );
    for (n, (victim, at)) in kills.iter().enumerate() {
        let until = kills
            .get(n + 1)
            .map_or(*at + Duration::from_secs(10), |k| k.1);
        // From the last answer before the fault.
        let first = answers.partition_point(|t| t < at).saturating_sub(1);
        let window: Vec<&Instant> = answers[first..].iter().filter(|t| **t <= until).collect();
        let gap = window
            .windows(2)
            .map(|w| w[1].duration_since(*w[0]))
            .max()
            .unwrap_or_default();
        report.push_str(&format!(
            "| {victim} | {:.1} | {} |\n",
            at.duration_since(started).as_secs_f64(),
            gap.as_millis()
        ));
    }
    let out = Path::new(ROOT).join("target/cluster-report.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("{report}");
}

/// The same orders, fault-free, on one node (`shopflow` as `make run` starts it) and
/// on the cluster: orders per second of each, for the report.
#[tokio::test]
#[ignore = "minutes long; `make cluster-test` runs it"]
async fn cluster_throughput_vs_one_node() {
    async fn rate(api: &Api, prefix: &str) -> f64 {
        let started = Instant::now();
        let work: Vec<_> = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        ]
        .into_iter()
        .map(|user| {
            let (api, prefix) = (api.clone(), prefix.to_owned());
            tokio::spawn(async move {
                for r in 0..5 {
                    let id = format!("{prefix}-{user}-{r}");
                    one_order(&api, user, &id, "P004", Ending::Delivered).await;
                }
            })
        })
        .collect();
        for w in work {
            w.await.unwrap();
        }
        40.0 / started.elapsed().as_secs_f64()
    }
    let delay = [("SHOPFLOW_DELIVERY_DELAY", "1s")];
    let single = {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AppConfig::new(dir.path());
        config.extra_env = vec![(delay[0].0.into(), delay[0].1.into())];
        let app = common::TestApp::start(config).await;
        rate(&app.api, "one").await
    };
    let cluster = Cluster::up("cluster-throughput", &delay);
    let clustered = rate(&cluster.api(), "cluster").await;
    let report = format!(
        "\n## Throughput without faults\n\n40 orders (8 customers x 5, delivery delay 1 s): \
         one node {single:.2} orders/s, cluster {clustered:.2} orders/s ({:.2}x).\n",
        clustered / single
    );
    let out = Path::new(ROOT).join("target/cluster-report.md");
    let mut text = std::fs::read_to_string(&out).unwrap_or_default();
    text.push_str(&report);
    std::fs::write(&out, text).unwrap();
    eprintln!("{report}");
}
