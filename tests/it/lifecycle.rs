//! The order lifecycle around the happy path, against one shared ShopFlow: refunds,
//! cancellation by the customer and by an operator in Restate, exactly one winner of
//! racing decisions and checkouts, an order id a refused checkout leaves free, the
//! read model outliving Restate's retention, and cart notifications.

use crate::common;

use common::{Api, AppConfig, TestApp, assert_error, eventually};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const ADMIN: &str = "admin";

async fn app() -> (&'static TestApp, Api) {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = APP
        .get_or_init(|| async {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lifecycle-app");
            let _ = std::fs::remove_dir_all(&dir);
            let mut config = AppConfig::new(&dir);
            config
                .extra_env
                .push(("SHOPFLOW_DELIVERY_DELAY".into(), "300ms".into()));
            TestApp::start(config).await
        })
        .await;
    (app, Api::new(&app.config))
}

fn compensations(order: &Value) -> Vec<String> {
    order["compensations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn count(app: &TestApp, sql: &str, key: &str) -> i64 {
    app.db_count(sql, key).await
}

async fn reserved(app: &TestApp, order_id: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = 'reserved'";
    count(app, sql, order_id).await
}

async fn notifications(app: &TestApp, order_id: &str, kind: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND kind = '{kind}'");
    count(app, &sql, order_id).await
}

/// An order paid and waiting for approval.
async fn paid(api: &Api, user: &str, id: &str, sku: &str) -> i64 {
    let (awakeable, total) = api.place_order(user, id, &[(sku, 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await;
    total
}

/// A rejected order gives the money back: authorized at checkout, never captured, so
/// the authorization is voided and nothing needs refunding; the customer is told.
#[tokio::test]
async fn a_rejected_order_is_voided() {
    let (app, api) = app().await;
    let id = "lc-refund";
    let total = paid(&api, "alice", id, "P008").await;
    assert_eq!(
        api.reject(ADMIN, id, Some("out of stock at the warehouse"))
            .await
            .0,
        200
    );
    let order = api.wait_status("alice", id, "rejected").await;
    assert_eq!(
        compensations(&order),
        ["refund_payment", "release_inventory"]
    );
    voided(&order, total);
    let voided = "SELECT voided_cents FROM payment_requests WHERE order_id = $1";
    assert_eq!(count(app, voided, id).await, total);
    assert_eq!(notifications(app, id, "refund_payment").await, 1);
}

/// The payment of an order that ended before it shipped: all of `total` voided,
/// nothing captured or refunded.
#[track_caller]
fn voided(order: &Value, total: i64) {
    let payment = &order["payment"];
    assert_eq!(
        (
            &payment["state"],
            &payment["captured_cents"],
            &payment["refunded_cents"]
        ),
        (&json!("voided"), &json!(0), &json!(0)),
        "authorized, then voided ({total} never charged): {order}"
    );
}

/// Defect 2: an operator's cancel in Restate unwinds the saga: of the workflow
/// waiting for approval, and of a checkout waiting for payment.
#[tokio::test]
async fn an_operators_cancel_in_restate_unwinds() {
    let (app, api) = app().await;
    let id = "lc-op-cancel-wf";
    let before = api.stock("P002").await;
    let total = paid(&api, "bob", id, "P002").await;
    api.wait_stock("P002", before - 1).await;
    let run = app
        .invocation(
            "OrderFulfillmentWorkflow",
            id,
            "Run",
            "status <> 'completed'",
        )
        .await;
    app.operator(&run, "cancel").await;
    let order = api.wait_status("bob", id, "cancelled").await;
    assert_eq!(
        compensations(&order),
        ["refund_payment", "release_inventory"]
    );
    voided(&order, total);
    api.wait_stock("P002", before).await;
    assert_eq!(reserved(app, id).await, 0);
    // Every later decision is refused; cancelling again changes nothing.
    assert_error(&api.approve(ADMIN, id).await, 409, "not_awaiting_approval");
    assert_eq!(api.cancel("bob", id, None).await.0, 200);
    assert_eq!(notifications(app, id, "cancelled").await, 1);

    let id = "lc-op-cancel-co";
    api.place_order("carol", id, &[("P002", 1)]).await;
    let checkout = app
        .invocation("UserSession", "carol", "Checkout", "status <> 'completed'")
        .await;
    app.operator(&checkout, "cancel").await;
    let order = api.wait_status("carol", id, "cancelled").await;
    assert_eq!(compensations(&order), ["release_inventory"]);
    api.wait_stock("P002", before).await;
    // The cart is the user's again, and the payment can no longer be made.
    assert_eq!(api.add_to_cart("carol", json!("P008"), 1).await.0, 200);
    let awakeable = order["payment"]["awakeable_id"].as_str().unwrap();
    assert_error(&api.pay(awakeable, 2500).await, 409, "payment_settled");
}

/// The customer cancels: before paying, and while the order waits for approval.
#[tokio::test]
async fn the_customer_cancels_before_it_ships() {
    let (app, api) = app().await;
    let before = api.stock("P004").await;
    let id = "lc-cancel-unpaid";
    let (awakeable, total) = api.place_order("dave", id, &[("P004", 1)]).await;
    let (status, reply) = api.cancel("dave", id, Some("changed my mind")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status"], "cancelled");
    let order = api.wait_status("dave", id, "cancelled").await;
    assert_eq!(order["failure_reason"], "changed my mind");
    let payment = &order["payment"];
    assert_eq!(
        (&payment["captured_cents"], &payment["refunded_cents"]),
        (&json!(0), &json!(0)),
        "nothing was paid: {payment}"
    );
    assert_error(&api.pay(&awakeable, total).await, 409, "payment_settled");
    api.wait_stock("P004", before).await;
    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some("dave"))
        .await;
    let last = timeline.as_array().and_then(|all| all.last()).cloned();
    assert_eq!(
        last.as_ref()
            .map(|e| (&e["event"], &e["actor"], &e["note"])),
        Some((
            &json!("cancelled"),
            &json!("dave"),
            &json!("changed my mind")
        )),
        "the timeline names who cancelled: {timeline}"
    );

    let id = "lc-cancel-paid";
    let total = paid(&api, "dave", id, "P004").await;
    assert_eq!(api.cancel("dave", id, None).await.0, 200);
    let order = api.wait_status("dave", id, "cancelled").await;
    assert_eq!(
        compensations(&order),
        ["refund_payment", "release_inventory"]
    );
    voided(&order, total);
    assert_eq!(order["failure_reason"], "cancelled by the customer");
    api.wait_stock("P004", before).await;
    assert_error(&api.approve(ADMIN, id).await, 409, "not_awaiting_approval");
    assert_error(
        &api.reject(ADMIN, id, None).await,
        409,
        "not_awaiting_approval",
    );
    assert_eq!(notifications(app, id, "cancelled").await, 1);

    // Others may not; nor may anyone once it has shipped.
    let id = "lc-cancel-late";
    paid(&api, "dave", id, "P004").await;
    assert_error(&api.cancel("erin", id, None).await, 404, "unknown_order");
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    api.wait_status("dave", id, "delivered").await;
    assert_error(&api.cancel("dave", id, None).await, 409, "too_late");
    assert_error(
        &api.cancel("dave", id, Some("x\r\ny")).await,
        400,
        "invalid_reason",
    );
}

/// Defect 4 (and cancel): of decisions sent at the same moment exactly one wins, and
/// the order ends as the winner said.
#[tokio::test]
async fn racing_decisions_have_exactly_one_winner() {
    let (_, api) = app().await;
    for round in 0..6 {
        let id = format!("lc-race-{round}");
        paid(&api, "frank", &id, "P008").await;
        let (a, b, c) = tokio::join!(
            api.approve(ADMIN, &id),
            api.reject(ADMIN, &id, Some("racing")),
            api.cancel("frank", &id, None),
        );
        let winners: Vec<&str> = [(&a, "delivered"), (&b, "rejected"), (&c, "cancelled")]
            .iter()
            .filter(|(reply, _)| reply.0 == 200)
            .map(|(_, end)| *end)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {a:?} {b:?} {c:?}");
        for reply in [&a, &b, &c].into_iter().filter(|r| r.0 != 200) {
            assert_eq!(reply.0, 409, "{reply:?}");
        }
        api.wait_status("frank", &id, winners[0]).await;
    }
}

/// Defect 3: a refused checkout leaves its order id free.
#[tokio::test]
async fn a_refused_checkout_leaves_the_order_id_free() {
    let (_, api) = app().await;
    let body = json!({"order_id": "lc-poison-1", "shipping_address": "1 Main St"});
    assert_error(&api.checkout("grace", &body, None).await, 409, "empty_cart");
    assert_eq!(api.add_to_cart("grace", json!("P008"), 1).await.0, 200);
    let (status, reply) = api.checkout("grace", &body, None).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["status"], "awaiting_payment");
    let (status, again) = api.checkout("grace", &body, None).await;
    assert_eq!(
        (status.as_u16(), &again["awakeable_id"]),
        (202, &reply["awakeable_id"])
    );
}

/// Defect 5: a second checkout while one is pending is refused, and never runs later.
#[tokio::test]
async fn a_second_checkout_at_the_same_time_is_refused_and_never_runs() {
    let (app, api) = app().await;
    assert_eq!(api.add_to_cart("heidi", json!("P008"), 1).await.0, 200);
    let one = json!({"order_id": "lc-twice-1", "shipping_address": "1 Main St"});
    let two = json!({"order_id": "lc-twice-2", "shipping_address": "1 Main St"});
    let (a, b) = tokio::join!(
        api.checkout("heidi", &one, None),
        api.checkout("heidi", &two, None)
    );
    let (won, lost, lost_id) = if a.0 == 202 {
        (a, b, "lc-twice-2")
    } else {
        (b, a, "lc-twice-1")
    };
    assert_eq!(won.0, 202, "{won:?}");
    assert_error(&lost, 409, "checkout_in_progress");
    let awakeable = won.1["awakeable_id"].as_str().unwrap();
    assert_eq!(api.decline(awakeable, "card expired").await.0, 200);
    let won_id = won.1["order_id"].as_str().unwrap();
    api.wait_status("heidi", won_id, "payment_failed").await;
    // The cart is free again, and the refused order does not exist.
    assert_eq!(api.add_to_cart("heidi", json!("P008"), 1).await.0, 200);
    let orders = "SELECT COUNT(*) FROM orders WHERE order_id = $1";
    assert_eq!(count(app, orders, lost_id).await, 0);
    let checkouts = "SELECT id FROM sys_invocation WHERE target_service_name = 'UserSession' \
         AND target_service_key = 'heidi' AND target_handler_name = 'Checkout'";
    assert_eq!(
        app.restate_sql(checkouts).await.len(),
        1,
        "only one checkout ran"
    );
}

/// Defect 6: an order reads the same after Restate has dropped its workflow.
#[tokio::test]
async fn a_purged_workflow_leaves_the_order_as_it_ended() {
    let (app, api) = app().await;
    let id = "lc-purge";
    paid(&api, "ivan", id, "P008").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    let delivered = api.wait_status("ivan", id, "delivered").await;
    let run = app
        .invocation(
            "OrderFulfillmentWorkflow",
            id,
            "Run",
            "status = 'completed'",
        )
        .await;
    app.operator(&run, "purge").await;
    eventually("the workflow to be purged", || async {
        let sql = format!(
            "SELECT id FROM sys_invocation WHERE target_service_key = '{id}' \
             AND target_handler_name = 'Run'"
        );
        app.restate_sql(&sql).await.is_empty().then_some(())
    })
    .await;
    let (status, after) = api.order("ivan", id).await;
    assert_eq!(status, 200);
    for key in [
        "status",
        "shipment",
        "steps",
        "compensations",
        "payment",
        "items",
    ] {
        assert_eq!(after[key], delivered[key], "{key}");
    }
    assert!(after["shipment"]["tracking_number"].is_string());
}

/// Defect 7: cart changes are notified.
#[tokio::test]
async fn cart_changes_are_notified() {
    let (app, api) = app().await;
    let mut stream = api.stream("/stream/notifications", "judy", None).await;
    assert_eq!(api.add_to_cart("judy", json!("P001"), 2).await.0, 200);
    assert_eq!(api.remove_from_cart("judy", json!("P001")).await.0, 200);
    stream
        .read_until("both notifications", |t| t.contains("Item removed"))
        .await;
    assert!(
        stream.text.contains("Item added: 2 × Widget A"),
        "{}",
        stream.text
    );
    let sql = "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND kind LIKE 'item_%'";
    assert_eq!(count(app, sql, "judy").await, 2);
}

/// The durable steps of an order, as Restate journaled them: waiting on the promise
/// while it waits for approval, every step done once delivered.
#[tokio::test]
async fn the_journal_shows_the_durable_steps() {
    let (app, api) = app().await;
    let id = "lc-journal";
    paid(&api, "kim", id, "P008").await;
    let path = format!("/api/orders/{id}/journal");
    let steps = |journal: &Value, target: &str| -> Vec<(String, String, String)> {
        journal["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["target"].as_str().unwrap().ends_with(target))
            .flat_map(|i| i["steps"].as_array().unwrap().clone())
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap().to_owned();
                (text("kind"), text("name"), text("state"))
            })
            .collect()
    };
    let waiting = eventually("the workflow to wait on its promise", || async {
        let (status, journal) = api.get(&path, Some("kim")).await;
        assert_eq!(status, 200, "{journal}");
        let run = steps(&journal, &format!("{id}/Run"));
        run.contains(&("promise".into(), "admin_approval".into(), "waiting".into()))
            .then_some(journal)
    })
    .await;
    let checkout = steps(&waiting, "kim/Checkout");
    // The claim, the reservation and the payment request are one step; the gateway's
    // answer and the checkout's end are another.
    for name in ["reserve_stock", "confirm_payment"] {
        assert!(
            checkout.contains(&("run".into(), name.into(), "done".into())),
            "{name} in {checkout:?}"
        );
    }
    assert!(
        checkout.iter().any(|(kind, _, _)| kind == "awakeable"),
        "{checkout:?}"
    );
    assert_error(&api.get(&path, Some("leo")).await, 404, "unknown_order");

    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    api.wait_status("kim", id, "delivered").await;
    // The workflow ends just after it records the delivery: compare once all have ended,
    // each journal with its `end` (Restate's journal view can show an invocation
    // completed a moment before its last entry).
    let done = eventually("every invocation of the order to complete", || async {
        let (_, journal) = api.get(&path, Some("kim")).await;
        let ended = journal["invocations"].as_array()?;
        let all = ended.iter().all(|i| {
            let last = i["steps"].as_array().and_then(|s| s.last());
            i["status"] == "completed" && last.is_some_and(|s| s["kind"] == "end")
        });
        all.then_some(journal)
    })
    .await;
    let run = steps(&done, &format!("{id}/Run"));
    for (kind, name) in [
        ("promise", "admin_approval"),
        ("call", "ShippingService/InitiateShipment"),
        ("run", "enter_in_transit"),
        ("run", "enter_delivered"),
    ] {
        assert!(
            run.contains(&(kind.into(), name.into(), "done".into())),
            "{kind} {name} in {run:?}"
        );
    }
    assert!(
        run.iter()
            .any(|(kind, _, state)| kind == "sleep" && state == "done")
    );
    assert!(run.iter().all(|(_, _, state)| state == "done"), "{run:?}");
    // The calls the workflow made and the decision are there too, each found by the id
    // it recorded, with the status Restate's `sys_invocation` view gives it.
    let shipping = steps(&done, "ShippingService/InitiateShipment");
    assert!(
        shipping.contains(&("run".into(), "book_with_carrier #1".into(), "done".into())),
        "{shipping:?}"
    );
    let approve = steps(&done, &format!("{id}/Approve"));
    assert!(
        approve.contains(&("run".into(), "claim_approved".into(), "done".into())),
        "{approve:?}"
    );
    let invocations = done["invocations"].as_array().unwrap();
    assert_eq!(
        invocations.len(),
        4,
        "checkout, run, approve, shipping: {done}"
    );
    for invocation in invocations {
        let id = invocation["id"].as_str().unwrap();
        let view = app
            .restate_sql(&format!(
                "SELECT status FROM sys_invocation WHERE id = '{id}'"
            ))
            .await;
        assert_eq!(view[0]["status"], invocation["status"], "{invocation}");
    }
    // An order from before its invocations recorded themselves is found by its key.
    let pool = app.db().await;
    sqlx::query("DELETE FROM order_invocations WHERE order_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (_, legacy) = api.get(&path, Some("kim")).await;
    assert_eq!(legacy, done);
}

/// The admin's carrier drill: the next order meets a carrier that rejects it (the saga
/// refunds and releases), the one after a flaky one (Restate retries), then normal.
#[tokio::test]
async fn the_carrier_drill_shows_every_shipping_path() {
    // Its own shop: the drill is global, and other tests' orders would meet it.
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config
        .extra_env
        .push(("SHOPFLOW_DELIVERY_DELAY".into(), "300ms".into()));
    let app = &TestApp::start(config).await;
    let api = Api::new(&app.config);
    let drill = |mode: &str, orders: i64| json!({"mode": mode, "orders": orders});
    let path = "/api/admin/drills/carrier";
    assert_error(
        &api.post(path, Some("leo"), &drill("fail", 1)).await,
        403,
        "forbidden",
    );
    assert_error(
        &api.post(path, Some(ADMIN), &drill("lost", 1)).await,
        400,
        "invalid_mode",
    );
    assert_error(
        &api.post(path, Some(ADMIN), &drill("fail", 101)).await,
        400,
        "invalid_orders",
    );
    let (status, reply) = api.post(path, Some(ADMIN), &drill("fail", 1)).await;
    assert_eq!(status, 200, "{reply}");
    let id = "lc-drill-fail";
    paid(&api, "mia", id, "P008").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    let order = api.wait_status("mia", id, "shipping_failed").await;
    assert_eq!(
        compensations(&order),
        ["refund_payment", "release_inventory"]
    );

    assert_eq!(api.post(path, Some(ADMIN), &drill("flaky", 1)).await.0, 200);
    let id = "lc-drill-flaky";
    paid(&api, "mia", id, "P008").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    api.wait_status("mia", id, "delivered").await;
    assert_eq!(notifications(app, id, "shipping_retry").await, 2);

    let id = "lc-drill-normal";
    paid(&api, "mia", id, "P008").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    api.wait_status("mia", id, "delivered").await;
    assert_eq!(
        notifications(app, id, "shipping_retry").await,
        0,
        "the drill was used up"
    );
}

/// An outage of any length ends by itself: Restate retries every service's invocations
/// (at most every 2 s) without ever running out of attempts, so none is left paused.
#[tokio::test]
async fn invocations_are_retried_without_end() {
    let (app, _) = app().await;
    for service in ["UserSession", "OrderFulfillmentWorkflow", "ShippingService"] {
        let svc = app.restate_admin(&format!("/services/{service}")).await;
        let policy = &svc["retry_policy"];
        assert!(
            policy["max_attempts"].is_null() || policy["max_attempts"] == "unlimited",
            "{service}: {policy}"
        );
        assert_eq!(policy["max_interval"], "2s", "{service}: {policy}");
        // Journals kept: the checkout's and the workflow's (the durable-steps panel),
        // not the cart's and the reads' (many, and nobody looks at them).
        for handler in svc["handlers"].as_array().unwrap() {
            let name = handler["name"].as_str().unwrap();
            let kept = handler["journal_retention"] != "0s";
            let keep = !matches!(
                name,
                "AddItem" | "RemoveItem" | "GetBasket" | "GetOrder" | "GetOrders" | "GetStatus"
            );
            assert_eq!(kept, keep, "{service}/{name}: {handler}");
            // A cart change retried with its idempotency key is remembered for an hour.
            if matches!(name, "AddItem" | "RemoveItem") {
                assert_eq!(handler["idempotency_retention"], "1h", "{name}: {handler}");
            }
        }
    }
}

/// Reads leave nothing behind in Restate: a completed `GetBasket` (every cart view) was
/// kept a day (Restate's default idempotency retention applies to every call), so a
/// busy shop piled up hundreds of thousands of them and every introspection query (the
/// durable-steps panel, the retry count) scanned them all.
#[tokio::test]
async fn reads_leave_no_invocations_behind() {
    let (app, api) = app().await;
    let id = "lc-reads";
    api.place_order("erin", id, &[("P003", 1)]).await;
    for _ in 0..3 {
        assert_eq!(api.cart("erin").await.0, 200);
        assert_eq!(api.orders("erin").await.0, 200);
        assert_eq!(api.order("erin", id).await.0, 200);
    }
    let kept = app
        .restate_sql(
            "SELECT target_handler_name AS h FROM sys_invocation WHERE status = 'completed' \
             AND target_handler_name IN ('GetBasket', 'GetOrder', 'GetOrders', 'GetStatus')",
        )
        .await;
    assert!(kept.is_empty(), "completed reads kept: {}", kept.len());
}

/// Writes to the app's SQLite file as another client would: here, to leave the gateway's
/// record as a web role that died between recording a settlement and delivering it.
async fn sqlite_exec(app: &TestApp, sql: &str, bind: &str) {
    let pool = app.db().await;
    let done = sqlx::query(sql).bind(bind).execute(&pool).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    pool.close().await;
}

/// A settlement recorded but never delivered to Restate (the web role died in between)
/// is delivered when it is asked for again: the gateway retrying its callback, the
/// customer retrying a cancel. Neither order waits for the payment timeout.
#[tokio::test]
async fn a_settlement_recorded_but_not_delivered_is_delivered_on_retry() {
    let (app, api) = app().await;
    let (awakeable, total) = api
        .place_order("nina", "lc-undelivered-pay", &[("P004", 1)])
        .await;
    sqlite_exec(
        app,
        "UPDATE payment_requests SET state = 'succeeded', transaction_id = 'txn-1' WHERE awakeable_id = $1",
        &awakeable,
    )
    .await;
    // The gateway retries the callback it got no answer to.
    assert_error(&api.pay(&awakeable, total).await, 409, "payment_settled");
    api.wait_status("nina", "lc-undelivered-pay", "awaiting_approval")
        .await;

    let before = api.stock("P005").await;
    let (awakeable, _) = api
        .place_order("oscar", "lc-undelivered-cancel", &[("P005", 1)])
        .await;
    sqlite_exec(
        app,
        "UPDATE payment_requests SET state = 'cancelled', reason = 'cancelled by the customer' WHERE awakeable_id = $1",
        &awakeable,
    )
    .await;
    // The customer asks again.
    let (status, body) = api.cancel("oscar", "lc-undelivered-cancel", None).await;
    assert_eq!(status, 200, "{body}");
    api.wait_status("oscar", "lc-undelivered-cancel", "cancelled")
        .await;
    api.wait_stock("P005", before).await;
}

/// Staff is a role, not a name: an admin added by the operator hears that an order needs
/// approval, as the seeded `admin` does, and a customer does not hear it as staff.
#[tokio::test]
async fn every_admin_hears_an_order_needs_approval() {
    let (app, api) = app().await;
    let (added, out, err) = app.cli(&["user", "add", "boss", "--admin", "--no-password"], "");
    assert!(added, "shopflow user add boss --admin: {out}{err}");
    let id = "staff-role-1";
    let (awakeable, total) = api.place_order("leo", id, &[("P001", 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status("leo", id, "awaiting_approval").await;
    let needs_approval = |user: &'static str| {
        let sql = format!(
            "SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND user_id = '{user}'
             AND kind = 'approval_needed' AND message LIKE '%needs approval'"
        );
        async move { count(app, &sql, id).await }
    };
    let heard = eventually("both admins to hear of the order", || async {
        let heard = (needs_approval("admin").await, needs_approval("boss").await);
        (heard == (1, 1)).then_some(heard)
    })
    .await;
    assert_eq!(heard, (1, 1), "approval_needed for admin and boss");
    assert_eq!(needs_approval("leo").await, 0, "the customer is no staff");
}
