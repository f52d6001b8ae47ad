//! The order lifecycle against a real restate-server and SQLite: checkout, payment,
//! approval, shipping (with retries), delivery, and the saga when something fails.
//! Tests share one app and each uses its own users, so they run in parallel.

use crate::common;

use std::path::Path;

use common::{Api, AppConfig, TestApp, assert_error, eventually};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Starts a shared app under Cargo's target tmp dir (a static is never dropped).
async fn shared(
    cell: &'static OnceCell<TestApp>,
    name: &str,
    env: &[(&str, &str)],
) -> &'static TestApp {
    cell.get_or_init(|| async {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = AppConfig::new(&dir);
        config.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestApp::start(config).await
    })
    .await
}

async fn app() -> (&'static TestApp, Api) {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = shared(&APP, "orders-app", &[("SHOPFLOW_DELIVERY_DELAY", "500ms")]).await;
    (app, Api::new(&app.config))
}

const ADMIN: &str = "admin";

fn compensation_names(order: &Value) -> Vec<String> {
    order["compensations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(
                c["ran_at"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{c}"
            );
            c["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn step_states(order: &Value) -> Vec<(String, String)> {
    order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn steps(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

async fn count(app: &TestApp, query: &str, order_id: &str) -> i64 {
    app.db_count(query, order_id).await
}

async fn payments(app: &TestApp, order_id: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM payment_requests WHERE order_id = $1",
        order_id,
    )
    .await
}

async fn reservations(app: &TestApp, order_id: &str, state: &str) -> i64 {
    let q = format!(
        "SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = '{state}'"
    );
    count(app, &q, order_id).await
}

async fn shipments(app: &TestApp, order_id: &str, state: &str) -> i64 {
    let q = format!("SELECT COUNT(*) FROM shipments WHERE order_id = $1 AND state = '{state}'");
    count(app, &q, order_id).await
}

async fn notifications(app: &TestApp, order_id: &str, kind: &str) -> i64 {
    let q = format!("SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND kind = '{kind}'");
    count(app, &q, order_id).await
}

#[tokio::test]
async fn happy_path() {
    let (app, api) = app().await;
    let (user, id) = ("alice", "order-happy");
    let stock_before = api.stock("P001").await;
    let (awakeable, total) = api.place_order(user, id, &[("P001", 2), ("P002", 1)]).await;
    assert_eq!(total, 7500);
    // checkout reserves stock: the catalog copy catches up within a look of the feed.
    api.wait_stock("P001", stock_before - 2).await;

    let (status, paid) = api.pay(&awakeable, total).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["order_id"], id);
    let order = api.wait_status(user, id, "awaiting_approval").await;
    assert_eq!(order["payment"]["transaction_id"], "txn-1");
    // The basket is cleared in the checkout's last steps, a moment after the order is
    // recorded as awaiting approval.
    crate::common::eventually("a paid basket to be cleared", || async {
        api.cart_lines(user).await.is_empty().then_some(())
    })
    .await;
    // Suspended on the approval promise: nothing is compensated, the stock stays reserved.
    eventually("the workflow to start", || async {
        (app.workflow_runs(id).await == 1).then_some(())
    })
    .await;
    let (_, order) = api.order(user, id).await;
    assert_eq!(compensation_names(&order), Vec::<String>::new());
    assert_eq!(reservations(app, id, "reserved").await, 2);

    let (_, queue) = api.admin_orders(ADMIN, "?status=awaiting_approval").await;
    assert!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["order_id"] == id),
        "{queue}"
    );
    assert_eq!(api.approve(ADMIN, id).await.0, 200);

    let order = api.wait_status(user, id, "delivered").await;
    assert_eq!(
        step_states(&order),
        steps(&[
            ("payment", "done"),
            ("approval", "done"),
            ("shipping", "done"),
            ("delivery", "done"),
            ("delivered", "done")
        ])
    );
    assert_eq!(
        compensation_names(&order),
        Vec::<String>::new(),
        "no compensation on success"
    );
    assert!(
        order["shipment"]["carrier"].is_string()
            && order["shipment"]["tracking_number"].is_string()
    );
    assert!(order.get("failure_reason").is_none());
    assert_eq!(order["items"][0]["line_total_cents"], 5000);
    assert_eq!(order["shipping_address"], "1 Test Street");

    // delivery turns the reservation into a sale: the catalog copy catches up within a look of the feed.
    api.wait_stock("P001", stock_before - 2).await;
    assert_eq!(reservations(app, id, "sold").await, 2);
    assert_eq!(payments(app, id).await, 1);
    assert_eq!(shipments(app, id, "booked").await, 1);
    assert_eq!(app.workflow_runs(id).await, 1);
    for kind in [
        "checkout_started",
        "awaiting_payment",
        "payment_confirmed",
        "approval_needed",
        "approved",
        "shipment_initiated",
        "delivered",
    ] {
        assert!(
            notifications(app, id, kind).await >= 1,
            "no {kind} notification"
        );
    }

    let (_, list) = api.orders(user).await;
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == id)
        .unwrap()
        .clone();
    assert_eq!(mine["status"], "delivered");
    assert_eq!(mine["total_cents"], 7500);

    let (status, ctype, md) = api.order_markdown(user, id).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/markdown"), "{ctype}");
    assert!(md.starts_with("# Order #order-happy"), "{md}");
    assert!(md.contains("**Status**: Delivered"), "{md}");
    assert!(md.contains("| P001 | Widget A | 2 | $50.00 |"), "{md}");
    assert!(
        md.contains("✅ Payment Confirmed (Transaction: txn-1)"),
        "{md}"
    );
}

#[tokio::test]
async fn declined_payment_keeps_the_cart_and_releases_stock() {
    let (app, api) = app().await;
    let (user, id) = ("bob", "order-declined");
    let before = api.stock("P003").await;
    let (awakeable, _) = api.place_order(user, id, &[("P003", 2)]).await;
    // While payment is pending the cart is locked: changes are refused at once.
    assert_error(
        &api.add_to_cart(user, json!("P001"), 1).await,
        409,
        "checkout_in_progress",
    );

    assert_eq!(api.decline(&awakeable, "insufficient funds").await.0, 200);
    let order = api.wait_status(user, id, "payment_failed").await;
    assert_eq!(order["failure_reason"], "insufficient funds");
    assert_eq!(
        step_states(&order)[0],
        ("payment".to_owned(), "failed".to_owned())
    );
    assert_eq!(
        api.cart_lines(user).await,
        vec![("P003".to_owned(), 2)],
        "the basket is kept"
    );
    // the reservation is released: the catalog copy catches up within a look of the feed.
    api.wait_stock("P003", before).await;
    assert_eq!(reservations(app, id, "released").await, 1);
    assert_eq!(
        app.workflow_runs(id).await,
        0,
        "no workflow for an unpaid order"
    );
    assert_eq!(notifications(app, id, "payment_failed").await, 1);
    // The gateway cannot settle the same payment twice, and the cart is usable again.
    assert_error(&api.pay(&awakeable, 0).await, 409, "payment_settled");
    assert_eq!(api.add_to_cart(user, json!("P001"), 1).await.0, 200);
}

#[tokio::test]
async fn admin_rejection_releases_stock_and_cancels_no_shipment() {
    let (app, api) = app().await;
    let (user, id) = ("carol", "order-rejected");
    let before = api.stock("P004").await;
    let (awakeable, total) = api.place_order(user, id, &[("P004", 3)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await;

    assert_eq!(
        api.reject(ADMIN, id, Some("address cannot be served"))
            .await
            .0,
        200
    );
    let order = api.wait_status(user, id, "rejected").await;
    assert_eq!(order["failure_reason"], "address cannot be served");
    assert_eq!(
        compensation_names(&order),
        ["refund_payment", "release_inventory"]
    );
    assert_eq!(
        step_states(&order)[1],
        ("approval".to_owned(), "failed".to_owned())
    );
    api.wait_stock("P004", before).await;
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM shipments WHERE order_id = $1",
            id
        )
        .await,
        0
    );
    assert_eq!(notifications(app, id, "cancel_shipment").await, 0);
    assert_eq!(notifications(app, id, "rejected").await, 1);
    // Decided once: a second decision is refused.
    assert_error(&api.approve(ADMIN, id).await, 409, "not_awaiting_approval");
    let (_, _, md) = api.order_markdown(user, id).await;
    assert!(md.contains("**Reason**: address cannot be served"), "{md}");
}

#[tokio::test]
async fn shipping_that_keeps_failing_ends_in_compensation() {
    let (app, api) = app().await;
    let (user, id) = ("dave", "order-FAIL_SHIP-1");
    let before = api.stock("P005").await;
    let (awakeable, total) = api.place_order(user, id, &[("P005", 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);

    let order = api.wait_status(user, id, "shipping_failed").await;
    assert!(
        order["failure_reason"]
            .as_str()
            .unwrap()
            .contains("rejected"),
        "{order}"
    );
    assert_eq!(
        compensation_names(&order),
        ["refund_payment", "release_inventory"],
        "nothing shipped, nothing to cancel"
    );
    assert_eq!(
        step_states(&order)[2],
        ("shipping".to_owned(), "failed".to_owned())
    );
    assert_eq!(notifications(app, id, "shipping_retry").await, 3);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM shipments WHERE order_id = $1",
            id
        )
        .await,
        0
    );
    api.wait_stock("P005", before).await;
}

#[tokio::test]
async fn flaky_shipping_is_retried_until_delivered() {
    let (app, api) = app().await;
    let (user, id) = ("erin", "order-FLAKY_SHIP-1");
    let (awakeable, total) = api.place_order(user, id, &[("P008", 4)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    // Approved the moment it is paid, before the workflow has surely started.
    let (status, body) = api.approve(ADMIN, id).await;
    assert_eq!(status, 200, "{body}");

    let order = api.wait_status(user, id, "delivered").await;
    assert_eq!(compensation_names(&order), Vec::<String>::new());
    assert_eq!(notifications(app, id, "shipping_retry").await, 2);
    assert_eq!(shipments(app, id, "booked").await, 1);
}

#[tokio::test]
async fn a_failure_after_shipping_cancels_the_shipment_then_releases_stock() {
    let (app, api) = app().await;
    let (user, id) = ("frank", "order-FAIL_DELIVERY-1");
    let before = api.stock("P009").await;
    let (awakeable, total) = api.place_order(user, id, &[("P009", 2)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);

    let order = api.wait_status(user, id, "shipping_failed").await;
    assert_eq!(
        compensation_names(&order),
        ["cancel_shipment", "refund_payment", "release_inventory"],
        "LIFO"
    );
    let ran: Vec<&str> = order["compensations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ran_at"].as_str().unwrap())
        .collect();
    assert!(ran[0] <= ran[1], "recorded in the order they ran: {ran:?}");
    assert_eq!(
        step_states(&order)[2],
        ("shipping".to_owned(), "compensated".to_owned())
    );
    assert_eq!(shipments(app, id, "cancelled").await, 1);
    api.wait_stock("P009", before).await;
    assert_eq!(reservations(app, id, "released").await, 1);
}

#[tokio::test]
async fn the_same_order_id_checks_out_once() {
    let (app, api) = app().await;
    let (user, id) = ("grace", "order-idem");
    let before = api.stock("P010").await;
    assert_eq!(api.add_to_cart(user, json!("P010"), 1).await.0, 200);
    let body = json!({"order_id": id, "shipping_address": "9 Same Street"});
    let first = api.checkout(user, &body, Some("key-1")).await;
    assert_eq!(first.0, 202, "{}", first.1);
    // Again with the same key, with another key, with none: the same order.
    for key in [Some("key-1"), Some("key-2"), None] {
        let again = api.checkout(user, &body, key).await;
        assert_eq!(again.0, 202, "{}", again.1);
        assert_eq!(again.1, first.1);
    }
    let awakeable = first.1["awakeable_id"].as_str().unwrap();
    let (_, order) = api.order(user, id).await;
    assert_eq!(
        api.pay(awakeable, order["total_cents"].as_i64().unwrap())
            .await
            .0,
        200
    );
    api.wait_status(user, id, "awaiting_approval").await;
    // After payment too: the order is reported, nothing new starts.
    let after = api.checkout(user, &body, Some("key-3")).await;
    assert_eq!(
        (after.1["order_id"].as_str(), after.1["status"].as_str()),
        (Some(id), Some("awaiting_approval"))
    );

    // one reservation: the catalog copy catches up within a look of the feed.
    api.wait_stock("P010", before - 1).await;
    assert_eq!(reservations(app, id, "reserved").await, 1);
    assert_eq!(payments(app, id).await, 1);
    assert_eq!(app.workflow_runs(id).await, 1);
    assert_eq!(notifications(app, id, "awaiting_payment").await, 1);

    // Without an order id, a retried request with the same key gets the same order.
    assert_eq!(api.reject(ADMIN, id, None).await.0, 200);
    api.wait_status(user, id, "rejected").await;
    assert_eq!(api.add_to_cart(user, json!("P010"), 1).await.0, 200);
    let body = json!({"shipping_address": "9 Same Street"});
    let (s1, a) = api.checkout(user, &body, Some("retry-me")).await;
    let (s2, b) = api.checkout(user, &body, Some("retry-me")).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (202, 202));
    assert_eq!(a["order_id"], b["order_id"]);
    assert!(a["order_id"].as_str().unwrap().starts_with("order-"));
    assert_eq!(payments(app, a["order_id"].as_str().unwrap()).await, 1);
}

#[tokio::test]
async fn racing_checkouts_never_oversell() {
    let (app, api) = app().await;
    let users = ["heidi", "ivan", "judy", "kim", "leo"];
    let stock = api.stock("P007").await;
    assert!(
        stock > 0 && stock < users.len() as i64,
        "the scarce product has {stock}"
    );
    for user in users {
        assert_eq!(api.add_to_cart(user, json!("P007"), 1).await.0, 200);
    }
    let races = users.map(|user| {
        let api = api.clone();
        tokio::spawn(async move {
            let body = json!({"order_id": format!("order-race-{user}"), "shipping_address": "1 Race Road"});
            api.checkout(user, &body, None).await
        })
    });
    let mut won = 0;
    for race in races {
        let (status, body) = race.await.unwrap();
        match status.as_u16() {
            202 => won += 1,
            409 => assert_eq!(body["error"]["code"], "out_of_stock", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, stock, "exactly the stock is sold");
    api.wait_stock("P007", 0).await;
    for user in users {
        let lost = count(
            app,
            "SELECT COUNT(*) FROM orders WHERE order_id = $1",
            &format!("order-race-{user}"),
        )
        .await
            == 0;
        if lost {
            assert_eq!(
                api.cart_lines(user).await,
                vec![("P007".to_owned(), 1)],
                "a refused checkout keeps the cart"
            );
        }
    }
}

#[tokio::test]
async fn authorization_and_bad_input() {
    let (_, api) = app().await;
    let (user, other, id) = ("mia", "nina", "order-authz");
    let (awakeable, total) = api.place_order(user, id, &[("P008", 1)]).await;

    // Other users do not see it; admins do.
    assert_error(&api.order(other, id).await, 404, "unknown_order");
    assert_eq!(api.order(ADMIN, id).await.0, 200);
    assert_error(&api.order(user, "order-nope").await, 404, "unknown_order");
    assert_error(&api.order(user, "bad id!").await, 400, "invalid_order_id");
    assert_error(
        &api.get(&format!("/api/orders/{id}"), None).await,
        401,
        "unauthorized",
    );
    // Admin-only routes.
    assert_error(&api.admin_orders(user, "").await, 403, "forbidden");
    assert_error(&api.approve(user, id).await, 403, "forbidden");
    assert_error(&api.reject(other, id, None).await, 403, "forbidden");
    assert_error(
        &api.admin_orders(ADMIN, "?status=lost").await,
        400,
        "invalid_status",
    );
    assert_error(
        &api.approve(ADMIN, "order-nope").await,
        404,
        "unknown_order",
    );
    assert_error(&api.approve(ADMIN, id).await, 409, "not_awaiting_approval");

    // Bad callbacks change nothing.
    let cb = |v: Value| {
        let api = api.clone();
        async move { api.callback(&v).await }
    };
    assert_error(
        &api.post_raw("/api/payment/callback", None, "nope").await,
        401,
        "invalid_signature",
    );
    assert_error(
        &cb(json!({"awakeable_id": awakeable})).await,
        400,
        "invalid_json",
    );
    assert_error(&cb(json!({"awakeable_id": awakeable, "transaction_id": "t", "amount": "1", "status": "success"})).await, 400, "invalid_json");
    assert_error(&cb(json!({"awakeable_id": awakeable, "transaction_id": "t", "amount": total, "status": "maybe"})).await, 400, "invalid_json");
    assert_error(&cb(json!({"awakeable_id": awakeable, "transaction_id": "", "amount": total, "status": "success"})).await, 400, "invalid_transaction_id");
    assert_error(&cb(json!({"awakeable_id": "sign_unknown", "transaction_id": "t", "amount": 1, "status": "success"})).await, 404, "unknown_payment");
    assert_error(
        &api.pay(&awakeable, total + 1).await,
        400,
        "amount_mismatch",
    );
    let (_, order) = api.order(user, id).await;
    assert_eq!(order["status"], "awaiting_payment", "nothing was resolved");

    // Bad checkouts.
    let checkout = |user: &'static str, body: Value, key: Option<&'static str>| {
        let api = api.clone();
        async move { api.checkout(user, &body, key).await }
    };
    assert_error(
        &checkout(other, json!({"shipping_address": "x"}), None).await,
        409,
        "empty_cart",
    );
    assert_error(
        &checkout(
            other,
            json!({"order_id": "a b", "shipping_address": "x"}),
            None,
        )
        .await,
        400,
        "invalid_order_id",
    );
    assert_error(
        &checkout(
            other,
            json!({"order_id": "x".repeat(65), "shipping_address": "x"}),
            None,
        )
        .await,
        400,
        "invalid_order_id",
    );
    assert_error(
        &checkout(other, json!({"shipping_address": "  "}), None).await,
        400,
        "invalid_shipping_address",
    );
    assert_error(
        &checkout(other, json!({"shipping_address": "a".repeat(501)}), None).await,
        400,
        "invalid_shipping_address",
    );
    assert_error(
        &checkout(other, json!({"order_id": "o"}), None).await,
        400,
        "invalid_json",
    );
    assert_error(
        &checkout(other, json!({"shipping_address": "x"}), Some("")).await,
        400,
        "invalid_idempotency_key",
    );
    assert_error(
        &checkout(
            other,
            json!({"order_id": id, "shipping_address": "x"}),
            None,
        )
        .await,
        409,
        "order_id_taken",
    );
    assert_eq!(api.orders(other).await.1, json!([]), "no order was created");
}

/// A short payment timeout: the durable timer wins when nobody pays.
#[tokio::test]
async fn unpaid_checkouts_time_out() {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = shared(
        &APP,
        "orders-timeout-app",
        &[("SHOPFLOW_PAYMENT_TIMEOUT", "1s")],
    )
    .await;
    let api = Api::new(&app.config);
    let (user, id) = ("oscar", "order-late");
    let before = api.stock("P006").await;
    let (awakeable, total) = api.place_order(user, id, &[("P006", 1)]).await;

    let order = api.wait_status(user, id, "payment_timed_out").await;
    assert_eq!(
        step_states(&order)[0],
        ("payment".to_owned(), "failed".to_owned())
    );
    api.wait_stock("P006", before).await;
    assert_eq!(api.cart_lines(user).await, vec![("P006".to_owned(), 1)]);
    assert_error(&api.pay(&awakeable, total).await, 409, "payment_settled");
    assert_eq!(app.workflow_runs(id).await, 0);
    assert_eq!(notifications(app, id, "payment_timed_out").await, 1);
}

/// With a webhook secret, only correctly signed callbacks are accepted.
#[tokio::test]
async fn signed_callbacks() {
    const SECRET: &str = "whsec_test_secret";
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = shared(
        &APP,
        "orders-signed-app",
        &[("SHOPFLOW_PAYMENT_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    let api = Api::new(&app.config);
    let (user, id) = ("alice", "order-signed");
    let (awakeable, total) = api.place_order(user, id, &[("P002", 1)]).await;
    let body = json!({"awakeable_id": awakeable, "transaction_id": "txn-s", "amount": total, "status": "success"});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    assert_error(
        &api.callback_signed(&body, None).await,
        401,
        "invalid_signature",
    );
    let forged = shopflow::app::payments::sign("not-the-secret", now, body.to_string().as_bytes());
    assert_error(
        &api.callback_signed(&body, Some(&forged)).await,
        401,
        "invalid_signature",
    );
    let stale = shopflow::app::payments::sign(SECRET, now - 3600, body.to_string().as_bytes());
    assert_error(
        &api.callback_signed(&body, Some(&stale)).await,
        401,
        "invalid_signature",
    );
    let (_, order) = api.order(user, id).await;
    assert_eq!(order["status"], "awaiting_payment");

    let good = shopflow::app::payments::sign(SECRET, now, body.to_string().as_bytes());
    let (status, reply) = api.callback_signed(&body, Some(&good)).await;
    assert_eq!(status, 200, "{reply}");
    api.wait_status(user, id, "awaiting_approval").await;
    eventually("the workflow to start", || async {
        (app.workflow_runs(id).await == 1).then_some(())
    })
    .await;
}

/// `/stream/notifications`: history on connect, live events as they happen, and after a
/// reconnect with `Last-Event-ID` exactly the missed events; `/stream/workflow/{id}`:
/// the order's metadata, live.
#[tokio::test]
async fn notifications_stream_live_and_resume() {
    let (_, api) = app().await;
    let (user, id) = ("oscar", "order-stream");
    assert_error(
        &api.get("/stream/notifications", None).await,
        401,
        "unauthorized",
    );

    let mut live = api.stream("/stream/notifications", user, None).await;
    let (awakeable, _) = api.place_order(user, id, &[("P008", 1)]).await;
    live.read_until("the awaiting-payment notification", |t| {
        t.contains("awaiting payment")
    })
    .await;
    let events = live.events();
    assert!(events.len() >= 2, "{events:?}");
    for e in &events {
        assert_eq!(e.event, "datastar-merge-fragments");
        assert_eq!(e.data[0], "selector #notification-list");
        assert_eq!(e.data[1], "mergeMode prepend");
        assert!(
            e.data[2].starts_with("fragments <li id=\"notification-"),
            "{e:?}"
        );
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id.expect("an event id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let last = *ids.last().unwrap();
    drop(live);

    // The order's own stream shows where it is and what comes next.
    let stream_path = format!("/stream/workflow/{id}");
    assert_error(
        &api.get(&stream_path, Some("nina")).await,
        404,
        "unknown_order",
    );
    assert_error(
        &api.get("/stream/workflow/order-nope", Some(user)).await,
        404,
        "unknown_order",
    );
    assert_error(
        &api.get("/stream/workflow/bad!id", Some(user)).await,
        400,
        "invalid_order_id",
    );
    let mut meta = api.stream(&stream_path, user, None).await;
    meta.read_until("the first metadata", |t| t.contains("</section>"))
        .await;
    let first = meta.events();
    assert_eq!(first[0].event, "datastar-merge-fragments");
    assert!(
        first[0].data[0].starts_with("fragments <section id=\"workflow-meta\""),
        "{first:?}"
    );
    assert!(
        meta.text.contains("Awaiting Payment") && meta.text.contains("Pay or decline"),
        "{}",
        meta.text
    );
    // While the order waits, only its clock moves: just `Elapsed` is sent again.
    meta.read_until("the clock to move", |t| {
        t.contains("fragments <dd id=\"workflow-elapsed\">")
    })
    .await;
    let tick = meta.events().pop().unwrap();
    assert!(
        tick.data.len() == 1 && tick.data[0].starts_with("fragments <dd id=\"workflow-elapsed\">"),
        "{tick:?}"
    );
    let mut as_admin = api.stream(&stream_path, ADMIN, None).await;
    as_admin
        .read_until("the admin's view", |t| t.contains("</section>"))
        .await;

    // Missed while disconnected, then resumed: only the new event, once.
    assert_eq!(api.decline(&awakeable, "card <expired>").await.0, 200);
    meta.read_until("the failed payment in the metadata", |t| {
        t.contains("Payment Failed")
    })
    .await;
    assert!(
        meta.text.contains("card &#60;expired&#62;") || meta.text.contains("card &lt;expired&gt;"),
        "{}",
        meta.text
    );
    assert!(meta.text.contains("Check out again"), "{}", meta.text);
    api.wait_status(user, id, "payment_failed").await;
    let mut resumed = api.stream("/stream/notifications", user, Some(last)).await;
    resumed
        .read_until("the payment-failed notification", |t| {
            t.contains("payment failed")
        })
        .await;
    let again = resumed.events();
    assert!(
        again.iter().all(|e| e.id.unwrap() > last),
        "nothing is shown twice: {again:?}"
    );
    assert!(
        again[0]
            .data
            .iter()
            .any(|d| d.contains("card &#60;expired&#62;") || d.contains("card &lt;expired&gt;")),
        "escaped: {again:?}"
    );
    assert!(!resumed.text.contains("<expired>"));

    // A fresh connection starts with the history, oldest first (each is prepended).
    let mut fresh = api.stream("/stream/notifications", user, None).await;
    fresh
        .read_until("the history", |t| t.contains("payment failed"))
        .await;
    let history: Vec<i64> = fresh.events().iter().map(|e| e.id.unwrap()).collect();
    assert!(
        history.len() >= 3 && history.windows(2).all(|w| w[0] < w[1]),
        "{history:?}"
    );
}
