//! Process-level durability: the cart survives restarts and kills of every process,
//! children never outlive the supervisor, and start-up failures are reported clearly.
//! Each test runs its own ShopFlow, since it stops or kills it.

use crate::common;

use std::process::Stdio;

use common::{AppConfig, TestApp, assert_error, eventually};
use serde_json::json;

/// Starts an app, fills alice's cart, and returns both.
async fn app_with_a_cart(dir: &std::path::Path) -> TestApp {
    started_with_a_cart(AppConfig::new(dir)).await
}

async fn started_with_a_cart(config: AppConfig) -> TestApp {
    let app = TestApp::start(config).await;
    assert_eq!(app.api.add_to_cart("alice", json!("P001"), 2).await.0, 200);
    assert_eq!(app.api.add_to_cart("alice", json!("P003"), 1).await.0, 200);
    app
}

async fn assert_cart_survived(app: &TestApp) {
    // A restate-server that answers its health check may still be taking its
    // partitions back: until then a call is refused as unavailable (503), never wrong.
    let api = &app.api;
    eventually("the cart to be readable after the restart", || async move {
        let (status, _) = api.cart("alice").await;
        (status != reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    assert_eq!(
        app.api.cart_lines("alice").await,
        vec![("P001".to_owned(), 2), ("P003".to_owned(), 1)]
    );
    // And the restarted app takes new work.
    assert_eq!(app.api.add_to_cart("alice", json!("P002"), 1).await.0, 200);
}

/// Waits until `pid` has exited (a zombie nobody reaped counts: it holds nothing).
async fn wait_dead(pid: i32) {
    eventually(&format!("process {pid} to exit"), || async move {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map_or("X", |(_, rest)| &rest[..1]);
        matches!(state, "Z" | "X").then_some(())
    })
    .await;
}

#[tokio::test]
async fn cart_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_a_cart(dir.path()).await;
    let children = app.children();
    assert_eq!(
        children.len(),
        2,
        "restate-server and the endpoint: {children:?}"
    );

    // An open live stream must not hold up a graceful stop.
    let mut stream = app.api.stream("/stream/notifications", "alice", None).await;
    app.signal(libc::SIGTERM);
    let status = app.wait_exit().await;
    assert!(status.success(), "graceful stop exits 0, got {status}");
    // The history (the cart's notifications) may come first; then the stream ends.
    let ended = tokio::time::timeout(common::DEADLINE, async {
        while stream.next_chunk().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends with the server");
    for (pid, _) in children {
        wait_dead(pid).await;
    }
    app.wait_ports_free().await;

    let app = TestApp::start(app.config.clone()).await;
    assert_cart_survived(&app).await;
}

/// Restarted at once, as a process manager restarts it: the new supervisor waits for
/// its dying children's ports instead of failing "port already in use".
#[tokio::test]
async fn cart_survives_kill_9_of_the_whole_process_group_and_an_immediate_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_a_cart(dir.path()).await;
    for _ in 0..3 {
        app.kill_group();
        app.wait_exit().await;
        app = TestApp::start(app.config.clone()).await;
    }
    assert_eq!(
        app.api.cart_lines("alice").await,
        vec![("P001".to_owned(), 2), ("P003".to_owned(), 1)]
    );
}

/// The old restate-server and endpoint may take a moment to die after a `kill -9`:
/// a start waits for the ports they hold instead of failing "already in use".
#[tokio::test]
async fn a_start_waits_for_ports_a_dying_process_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig::new(dir.path());
    let held: Vec<_> = [config.services, config.ingress, config.admin]
        .into_iter()
        .map(|addr| std::net::TcpListener::bind(addr).unwrap())
        .collect();
    let released = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        drop(held);
    });
    let app = TestApp::start(config).await;
    released.await.unwrap();
    assert_eq!(app.api.add_to_cart("alice", json!("P001"), 1).await.0, 200);
}

#[tokio::test]
async fn kill_9_of_the_supervisor_alone_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_a_cart(dir.path()).await;
    let children: Vec<i32> = app.children().into_iter().map(|(pid, _)| pid).collect();
    assert_eq!(children.len(), 2);

    app.signal(libc::SIGKILL);
    app.wait_exit().await;
    // The children get the parent-death signal: every port comes free, no process lives on.
    app.wait_ports_free().await;
    for pid in children {
        wait_dead(pid).await;
    }

    let app = TestApp::start(app.config.clone()).await;
    assert_cart_survived(&app).await;
}

/// kill -9 of the endpoint; waits for the supervisor to start another and returns its pid.
async fn kill_the_endpoint(app: &TestApp) -> i32 {
    let old = app.services_pid().expect("a `shopflow services` child");
    unsafe { libc::kill(old, libc::SIGKILL) };
    eventually("the endpoint to be restarted", || {
        let pid = app.services_pid();
        async move { pid.filter(|&p| p != old) }
    })
    .await
}

#[tokio::test]
async fn kill_9_of_the_service_endpoint_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_a_cart(dir.path()).await;
    kill_the_endpoint(&app).await;
    // Calls succeed again (a call made during the outage is retried by Restate).
    assert_cart_survived(&app).await;
    assert_eq!(app.api.healthz().await.0, 200);
}

#[tokio::test]
async fn the_endpoint_is_restarted_from_the_running_image_after_the_binary_is_replaced() {
    // An upgrade or a rebuild replaces the file on disk while ShopFlow runs; a crash of
    // the endpoint afterwards must still be survived, with the version that runs.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("shopflow");
    std::fs::copy(env!("CARGO_BIN_EXE_shopflow"), &binary).unwrap();
    let mut config = AppConfig::new(&dir.path().join("data"));
    config.binary = binary.clone();
    let app = started_with_a_cart(config).await;
    std::fs::remove_file(&binary).unwrap();
    std::fs::write(&binary, b"#!/bin/sh\nexit 1\n").unwrap();

    let new = kill_the_endpoint(&app).await;
    assert_cart_survived(&app).await;
    // It shows in `ps` by the name it was started with.
    let cmdline = std::fs::read(format!("/proc/{new}/cmdline")).unwrap();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap();
    assert_eq!(argv0, binary.as_os_str().as_encoded_bytes());
}

/// Runs `shopflow` expecting it to fail at start-up; returns the last line of stderr.
async fn start_failure(config: &AppConfig, extra: &[(&str, &str)]) -> String {
    let mut cmd = config.command();
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = common::spawner().spawn_std(cmd).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success(), "shopflow should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.lines().last().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn start_up_failures_say_why_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig::new(dir.path());

    let taken = std::net::TcpListener::bind(config.http).unwrap();
    let reason = start_failure(&config, &[]).await;
    assert!(
        reason.contains("already in use") && reason.contains(&config.http.to_string()),
        "{reason}"
    );
    drop(taken);

    let reason = start_failure(
        &config,
        &[("RESTATE_SERVER_BIN", "/nonexistent/restate-server")],
    )
    .await;
    assert!(
        reason.contains("restate-server not found") && reason.contains("npm ci"),
        "{reason}"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let bad_dir = file.join("data");
    let reason = start_failure(&config, &[("SHOPFLOW_DATA_DIR", bad_dir.to_str().unwrap())]).await;
    assert!(
        reason.contains("data dir") && reason.contains("not usable"),
        "{reason}"
    );
}

/// Orders at three stages when the whole app (restate-server included) is killed with
/// SIGKILL: waiting for payment, waiting for approval, and in the delivery sleep. After
/// a restart each completes, exactly once.
#[tokio::test]
async fn orders_complete_exactly_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.extra_env = vec![("SHOPFLOW_DELIVERY_DELAY".into(), "3s".into())];
    let mut app = TestApp::start(config).await;
    let api = app.api.clone();
    let stock_before = api.stock("P001").await;

    let (pending_payment, total_a) = api.place_order("alice", "order-k1", &[("P001", 1)]).await;
    let (awakeable_b, total_b) = api.place_order("bob", "order-k2", &[("P001", 2)]).await;
    assert_eq!(api.pay(&awakeable_b, total_b).await.0, 200);
    let (awakeable_c, total_c) = api.place_order("carol", "order-k3", &[("P001", 3)]).await;
    assert_eq!(api.pay(&awakeable_c, total_c).await.0, 200);
    api.wait_status("carol", "order-k3", "awaiting_approval")
        .await;
    assert_eq!(api.approve("admin", "order-k3").await.0, 200);
    api.wait_status("carol", "order-k3", "in_transit").await;
    api.wait_status("bob", "order-k2", "awaiting_approval")
        .await;

    app.kill_group();
    app.wait_exit().await;
    app.wait_ports_free().await;
    let app = TestApp::start(app.config.clone()).await;
    let api = app.api.clone();

    assert_eq!(api.pay(&pending_payment, total_a).await.0, 200);
    api.wait_status("alice", "order-k1", "awaiting_approval")
        .await;
    assert_eq!(api.approve("admin", "order-k1").await.0, 200);
    assert_eq!(api.approve("admin", "order-k2").await.0, 200);
    for (user, id) in [
        ("alice", "order-k1"),
        ("bob", "order-k2"),
        ("carol", "order-k3"),
    ] {
        let order = api.wait_status(user, id, "delivered").await;
        assert_eq!(order["compensations"], serde_json::json!([]));
        assert_eq!(app.workflow_runs(id).await, 1, "{id}: one workflow");
        let once = |q: &'static str| app.db_count(q, id);
        assert_eq!(
            once("SELECT COUNT(*) FROM payment_requests WHERE order_id = $1").await,
            1
        );
        assert_eq!(
            once("SELECT COUNT(*) FROM shipments WHERE order_id = $1").await,
            1
        );
        assert_eq!(
            once("SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND kind = 'delivered'")
                .await,
            1
        );
        assert_eq!(
            once("SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = 'sold'")
                .await,
            1
        );
    }
    // each order took its stock once: the catalog copy catches up within a look of the feed.
    api.wait_stock("P001", stock_before - 6).await;
}

/// The admin's restate-server crash drill: the supervisor starts a new restate-server
/// with its data, everyone with an order in flight hears of the outage and the
/// recovery, and the order goes on to delivery, once.
#[tokio::test]
async fn the_restate_server_crash_drill_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.extra_env = vec![("SHOPFLOW_DELIVERY_DELAY".into(), "300ms".into())];
    let app = TestApp::start(config).await;
    let api = app.api.clone();
    let old = restate_pid(&app).expect("a restate-server child");
    let (awakeable, total) = api
        .place_order("alice", "order-drill", &[("P008", 1)])
        .await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status("alice", "order-drill", "awaiting_approval")
        .await;

    let crash = serde_json::json!({"target": "restate"});
    common::assert_error(
        &api.post("/api/admin/drills/crash", Some("alice"), &crash)
            .await,
        403,
        "forbidden",
    );
    let (status, reply) = api
        .post("/api/admin/drills/crash", Some("admin"), &crash)
        .await;
    assert_eq!(status, 200, "{reply}");
    let new = eventually("a new restate-server", || {
        let pid = restate_pid(&app);
        async move { pid.filter(|&p| p != old) }
    })
    .await;
    assert_ne!(new, old);
    let notified = |kind: &'static str| {
        let app = &app;
        async move {
            let sql = format!(
                "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND kind = '{kind}'"
            );
            (app.db_count(&sql, "alice").await == 1).then_some(())
        }
    };
    eventually("the outage notice", || notified("outage")).await;
    eventually("the recovery notice", || notified("recovered")).await;
    // Restate answers again, with its data: the order goes on.
    eventually("the approval to go through", || async {
        (api.approve("admin", "order-drill").await.0 == 200).then_some(())
    })
    .await;
    api.wait_status("alice", "order-drill", "delivered").await;
    assert_eq!(app.workflow_runs("order-drill").await, 1);
    assert_eq!(api.healthz().await.0, 200);
}

fn restate_pid(app: &TestApp) -> Option<i32> {
    app.children()
        .into_iter()
        .find(|(_, cmd)| cmd.contains("restate-server"))
        .map(|(pid, _)| pid)
}

/// restate-server killed again while the supervisor is still starting it after a first
/// kill: the supervisor keeps trying until one comes up, and the cart is still there.
#[tokio::test]
async fn restate_server_killed_during_its_restart_is_restarted_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_a_cart(dir.path()).await;
    let mut seen = vec![restate_pid(&app).expect("a restate-server child")];
    for _ in 0..2 {
        unsafe { libc::kill(*seen.last().unwrap(), libc::SIGKILL) };
        let next = eventually("a new restate-server", || {
            let pid = restate_pid(&app);
            let seen = &seen;
            async move { pid.filter(|p| !seen.contains(p)) }
        })
        .await;
        seen.push(next);
    }
    // The third one is left to start.
    eventually("Restate to answer again", || async {
        let (_, health) = app.api.healthz().await;
        (health["restate"] == "ok").then_some(())
    })
    .await;
    assert_cart_survived(&app).await;
}

/// Work beyond the limit is shed with 503 and Retry-After instead of queueing, and
/// changes nothing; reads and `/healthz` still answer; live streams are capped per user
/// (429) and in all (503), and a closed stream gives its place back.
#[tokio::test]
async fn overload_is_shed_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.extra_env = [
        ("SHOPFLOW_MAX_IN_FLIGHT", "4"),
        ("SHOPFLOW_MAX_STREAMS", "3"),
        ("SHOPFLOW_MAX_STREAMS_PER_USER", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let app = TestApp::start(config).await;
    let services = app.services_pid().unwrap();

    // A frozen endpoint: every cart change waits in Restate and holds its slot.
    unsafe { libc::kill(services, libc::SIGSTOP) };
    let users = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let adds: Vec<_> = users
        .iter()
        .map(|user| {
            let api = app.api.clone();
            let req = api
                .request(reqwest::Method::POST, "/api/cart/add")
                .bearer_auth(api.token(user))
                .json(&json!({"product_id": "P001", "quantity": 1}));
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                let retry_after = resp.headers().get("retry-after").cloned();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                (body, retry_after)
            })
        })
        .collect();
    eventually("4 requests to be shed", || {
        let done = adds.iter().filter(|a| a.is_finished()).count();
        async move { (done == 4).then_some(()) }
    })
    .await;
    let (status, health) = app.api.healthz().await;
    assert_eq!(
        status, 200,
        "health answers while the work slots are full: {health}"
    );
    assert_eq!(app.api.products().await.0, 200, "reads are not held back");
    // The process lives, but a frozen endpoint is not ready to serve orders.
    assert_eq!(app.api.get("/healthz/live", None).await.0, 200);
    let (status, ready) = app.api.get("/healthz/ready", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready,
        json!({"status": "not_ready", "database": "ok", "sqlite": "ok", "restate": "ok", "endpoint": "unreachable"})
    );

    unsafe { libc::kill(services, libc::SIGCONT) };
    eventually("the endpoint to be ready again", || async {
        (app.api.get("/healthz/ready", None).await.0 == 200).then_some(())
    })
    .await;
    let mut answers = Vec::new();
    for add in adds {
        answers.push(add.await.unwrap());
    }
    let overloaded: Vec<_> = answers
        .iter()
        .filter(|(body, _)| body["error"]["code"] == "overloaded")
        .collect();
    assert_eq!(overloaded.len(), 4, "{answers:?}");
    assert!(
        overloaded.iter().all(|(_, retry)| retry.is_some()),
        "Retry-After"
    );
    let mut filled = 0;
    for user in users {
        filled += app.api.cart_lines(user).await.len();
    }
    assert_eq!(filled, 4, "only the requests served changed a cart");

    // Streams: two for alice, a third is refused; the total is three.
    let a1 = app.api.stream("/stream/notifications", "alice", None).await;
    let _a2 = app.api.stream("/stream/notifications", "alice", None).await;
    assert_error(
        &app.api.get("/stream/notifications", Some("alice")).await,
        429,
        "too_many_streams",
    );
    let _b1 = app.api.stream("/stream/notifications", "bob", None).await;
    assert_error(
        &app.api.get("/stream/notifications", Some("carol")).await,
        503,
        "too_many_streams",
    );
    drop(a1);
    eventually("a closed stream to give its place back", || async {
        let resp = app
            .api
            .request(reqwest::Method::GET, "/stream/notifications")
            .bearer_auth(app.api.token("carol"))
            .send()
            .await
            .unwrap();
        (resp.status() == 200).then_some(())
    })
    .await;
}

/// SIGTERM stops everything at once, also while Restate holds an invocation open on the
/// endpoint (a checkout waiting for its payment): the children are stopped together, so
/// the endpoint's graceful stop does not wait out its 10 s grace for connections only
/// restate-server's stop ends. The checkout goes on after a restart.
#[tokio::test]
async fn sigterm_stops_at_once_with_a_checkout_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_a_cart(dir.path()).await;
    let placed = app
        .api
        .checkout(
            "alice",
            &json!({"order_id": "sigterm-1", "shipping_address": "1 Stop St"}),
            None,
        )
        .await;
    assert_eq!(placed.0, 202, "checkout: {placed:?}");
    let asked = std::time::Instant::now();
    app.signal(libc::SIGTERM);
    let status = app.wait_exit().await;
    let took = asked.elapsed();
    assert!(status.success(), "graceful stop exits 0, got {status}");
    assert!(
        took < std::time::Duration::from_secs(8),
        "SIGTERM to exit with a checkout waiting took {took:?}, not under 8 s"
    );
    app.wait_ports_free().await;
    let app = TestApp::start(app.config.clone()).await;
    let order = app.api.order("alice", "sigterm-1").await;
    assert_eq!(
        order.1["status"], "awaiting_payment",
        "after the restart: {order:?}"
    );
}
