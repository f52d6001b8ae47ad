//! Returns and refunds against a real ShopFlow: a return approved, received and
//! refunded at the price paid; every refusal; goodwill refunds that never exceed the
//! payment; a parcel that never comes; and random sequences of returns, refunds,
//! cancels and failures after which the money and the stock add up.

use crate::common;

use common::{Api, AppConfig, TestApp, assert_error, eventually};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const ADMIN: &str = "admin";

/// A fresh app with a 200 ms delivery timer and `env`.
pub(crate) async fn start(name: &str, env: &[(&str, &str)]) -> TestApp {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = AppConfig::new(&dir);
    config
        .extra_env
        .push(("SHOPFLOW_DELIVERY_DELAY".into(), "200ms".into()));
    for (k, v) in env {
        config.extra_env.push(((*k).into(), (*v).into()));
    }
    TestApp::start(config).await
}

/// The app the returns and money tests share (each with its own users and products).
pub(crate) async fn shared_app() -> (&'static TestApp, Api) {
    app().await
}

async fn app() -> (&'static TestApp, Api) {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = APP.get_or_init(|| start("returns-app", &[])).await;
    (app, Api::new(&app.config))
}

/// An order of `lines`, paid, approved and delivered; its JSON.
async fn delivered(api: &Api, user: &str, id: &str, lines: &[(&str, i64)]) -> Value {
    let (awakeable, total) = api.place_order(user, id, lines).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    api.wait_status(user, id, "delivered").await
}

fn product(order: &Value, sku: &str) -> i64 {
    let items = order["items"].as_array().expect("items");
    let item = items
        .iter()
        .find(|i| i["sku"] == sku)
        .expect("the sku in the order");
    item["product_id"].as_i64().unwrap()
}

async fn ask(api: &Api, user: &str, order: &str, items: Value, key: Option<&str>) -> common::Reply {
    let body = json!({"items": items, "reason": "does not fit"});
    let mut req = api
        .request(
            reqwest::Method::POST,
            &format!("/api/orders/{order}/returns"),
        )
        .bearer_auth(api.token(user))
        .json(&body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    api.send(req).await
}

async fn act(api: &Api, rid: &str, action: &str, body: Value) -> common::Reply {
    api.post(
        &format!("/api/admin/returns/{rid}/{action}"),
        Some(ADMIN),
        &body,
    )
    .await
}

async fn goodwill(api: &Api, order: &str, cents: i64, key: Option<&str>) -> common::Reply {
    let body = json!({"amount_cents": cents, "reason": "late delivery"});
    let mut req = api
        .request(
            reqwest::Method::POST,
            &format!("/api/admin/orders/{order}/refunds"),
        )
        .bearer_auth(api.token(ADMIN))
        .json(&body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    api.send(req).await
}

fn kinds(timeline: &Value) -> Vec<String> {
    let events = timeline.as_array().expect("a timeline");
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

async fn notified(app: &TestApp, order: &str, user: &str, kind: &str) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM notifications WHERE order_id = $1 AND user_id = '{user}' AND kind = '{kind}'"
    );
    app.db_count(&sql, order).await
}

#[tokio::test]
async fn a_return_is_approved_received_refunded_and_restocked() {
    let (app, api) = app().await;
    let (user, id) = ("alice", "ret-happy-1");
    let order = delivered(&api, user, id, &[("P004", 2), ("P008", 1)]).await;
    let (p4, p8) = (product(&order, "P004"), product(&order, "P008"));
    let stock4 = api.stock("P004").await;

    let asked = ask(
        &api,
        user,
        id,
        json!([{"product_id": p4, "quantity": 1}]),
        None,
    )
    .await;
    assert_eq!(asked.0, 202, "return: {}", asked.1);
    assert_eq!(asked.1["status"], "requested", "{}", asked.1);
    let rid = asked.1["return_id"].as_str().unwrap().to_owned();
    let too_many = json!([{"product_id": p4, "quantity": 2}]);
    assert_error(&ask(&api, user, id, too_many, None).await, 409, "too_many");

    let approved = act(&api, &rid, "approve", json!({})).await;
    assert_eq!(approved.0, 200, "approve: {}", approved.1);
    assert_eq!(approved.1["status"], "awaiting_parcel", "{}", approved.1);
    assert!(
        approved.1["label"]["tracking_number"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{}",
        approved.1
    );
    assert_error(
        &act(&api, &rid, "approve", json!({})).await,
        409,
        "not_requested",
    );

    let received = act(&api, &rid, "receive", json!({"restock": true})).await;
    assert_eq!(received.0, 200, "receive: {}", received.1);
    assert_eq!(
        (
            received.1["status"].as_str(),
            received.1["refund_cents"].as_i64()
        ),
        (Some("refunded"), Some(1450))
    );
    assert_error(
        &act(&api, &rid, "receive", json!({"restock": true})).await,
        409,
        "not_awaiting_parcel",
    );
    api.wait_stock("P004", stock4 + 1).await;

    // The rest comes back too, not restocked: the whole payment is refunded, no more.
    let stock8 = api.stock("P008").await;
    let rest = json!([{"product_id": p4, "quantity": 1}, {"product_id": p8, "quantity": 1}]);
    let second = ask(&api, user, id, rest, None).await;
    assert_eq!(second.0, 202, "second return: {}", second.1);
    let rid2 = second.1["return_id"].as_str().unwrap().to_owned();
    assert_eq!(act(&api, &rid2, "approve", json!({})).await.0, 200);
    let received = act(&api, &rid2, "receive", json!({"restock": false})).await;
    assert_eq!(received.1["refund_cents"], 1450 + 899, "{}", received.1);
    assert_eq!(api.stock("P008").await, stock8, "not restocked");
    api.wait_stock("P004", stock4 + 1).await;
    let none_left = json!([{"product_id": p8, "quantity": 1}]);
    assert_error(&ask(&api, user, id, none_left, None).await, 409, "too_many");

    let (_, order) = api.order(user, id).await;
    let payment = &order["payment"];
    assert_eq!(
        (
            payment["captured_cents"].as_i64(),
            payment["refunded_cents"].as_i64()
        ),
        (Some(3799), Some(3799)),
        "{payment}"
    );
    let refunds: Vec<_> = payment["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["amount_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(refunds, [("return", 1450), ("return", 2349)], "{payment}");
    let returns: Vec<_> = order["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(returns, ["refunded", "refunded"], "{order}");

    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some(user))
        .await;
    let kinds = kinds(&timeline);
    for kind in [
        "return_requested",
        "return_approved",
        "return_received",
        "return_refunded",
    ] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            2,
            "{kind} twice in {kinds:?}"
        );
    }
    for (who, kind) in [
        (user, "return_requested"),
        (user, "return_approved"),
        (user, "return_refunded"),
        (ADMIN, "return_requested"),
        (ADMIN, "return_refunded"),
    ] {
        assert_eq!(
            notified(app, id, who, kind).await,
            2,
            "{who} told {kind} once per return"
        );
    }
}

#[tokio::test]
async fn every_refusal_is_clear_and_changes_nothing() {
    let (app, api) = app().await;
    let (user, id) = ("bob", "ret-refusals-1");
    // Not delivered yet: awaiting approval.
    let (awakeable, total) = api
        .place_order(user, "ret-refusals-0", &[("P001", 1)])
        .await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, "ret-refusals-0", "awaiting_approval")
        .await;
    let one = |p: i64| json!([{"product_id": p, "quantity": 1}]);
    assert_error(
        &ask(&api, user, "ret-refusals-0", one(1), None).await,
        409,
        "not_delivered",
    );

    let order = delivered(&api, user, id, &[("P001", 2)]).await;
    let p1 = product(&order, "P001");
    assert_error(
        &ask(&api, "alice", id, one(p1), None).await,
        404,
        "unknown_order",
    );
    assert_error(
        &ask(&api, user, "no-such-order", one(p1), None).await,
        404,
        "unknown_order",
    );
    assert_error(
        &ask(&api, user, id, json!([]), None).await,
        400,
        "invalid_items",
    );
    assert_error(
        &ask(&api, user, id, one(99_999), None).await,
        400,
        "invalid_items",
    );
    let zero = json!([{"product_id": p1, "quantity": 0}]);
    assert_eq!(ask(&api, user, id, zero, None).await.0, 400);
    let no_reason = api
        .post(
            &format!("/api/orders/{id}/returns"),
            Some(user),
            &json!({"items": one(p1)}),
        )
        .await;
    assert_eq!(no_reason.0, 400, "{}", no_reason.1);
    let count = "SELECT COUNT(*) FROM returns WHERE order_id = $1";
    assert_eq!(
        app.db_count(count, id).await,
        0,
        "no refusal recorded a return"
    );

    // The same key is the same return.
    let first = ask(&api, user, id, one(p1), Some("k-1")).await;
    let again = ask(&api, user, id, one(p1), Some("k-1")).await;
    assert_eq!(
        (first.0, again.0),
        (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED)
    );
    assert_eq!(first.1["return_id"], again.1["return_id"]);
    assert_eq!(app.db_count(count, id).await, 1);
    let other = json!([{"product_id": p1, "quantity": 2}]);
    let reused = ask(&api, user, id, other, Some("k-1")).await;
    assert_error(&reused, 409, "idempotency_key_reused");
    let rid = first.1["return_id"].as_str().unwrap().to_owned();

    let customer = api
        .post(
            &format!("/api/admin/returns/{rid}/approve"),
            Some(user),
            &json!({}),
        )
        .await;
    assert_error(&customer, 403, "forbidden");
    assert_error(
        &api.get("/api/admin/returns", Some(user)).await,
        403,
        "forbidden",
    );
    assert_error(
        &act(&api, "no-such-return", "approve", json!({})).await,
        404,
        "unknown_return",
    );
    assert_error(
        &act(&api, &rid, "receive", json!({"restock": true})).await,
        409,
        "not_awaiting_parcel",
    );
    assert_eq!(
        act(&api, &rid, "reject", json!({})).await.0,
        400,
        "a rejection says why"
    );
    assert_error(
        &api.get("/api/admin/returns?status=lost", Some(ADMIN)).await,
        400,
        "invalid_status",
    );

    let (code, queue) = api
        .get("/api/admin/returns?status=requested", Some(ADMIN))
        .await;
    assert_eq!(code, 200);
    assert!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["return_id"] == rid.as_str()),
        "{queue}"
    );
    let rejected = act(&api, &rid, "reject", json!({"reason": "worn"})).await;
    assert_eq!(
        (rejected.0.as_u16(), rejected.1["status"].as_str()),
        (200, Some("rejected")),
        "{}",
        rejected.1
    );
    assert_error(
        &act(&api, &rid, "approve", json!({})).await,
        409,
        "not_requested",
    );
    // A rejected return holds nothing: both units may be asked back again.
    let both = json!([{"product_id": p1, "quantity": 2}]);
    assert_eq!(ask(&api, user, id, both, None).await.0, 202);
    let (_, order) = api.order(user, id).await;
    assert_eq!(order["payment"]["refunded_cents"], 0, "{order}");
}

#[tokio::test]
async fn goodwill_refunds_never_exceed_the_payment() {
    let (_app, api) = app().await;
    let (user, id) = ("carol", "ret-goodwill-1");
    let order = delivered(&api, user, id, &[("P002", 1)]).await;
    let total = order["total_cents"].as_i64().unwrap();

    let first = goodwill(&api, id, 500, Some("gw-1")).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let again = goodwill(&api, id, 500, Some("gw-1")).await;
    assert_eq!(again.1, first.1, "the same key, the same refund");
    assert_error(
        &goodwill(&api, id, 700, Some("gw-1")).await,
        409,
        "idempotency_key_reused",
    );
    assert_error(
        &goodwill(&api, id, total, None).await,
        409,
        "refund_exceeds_payment",
    );
    assert_error(&goodwill(&api, id, 0, None).await, 400, "invalid_amount");
    let customer = api
        .post(
            &format!("/api/admin/orders/{id}/refunds"),
            Some(user),
            &json!({"amount_cents": 1, "reason": "x"}),
        )
        .await;
    assert_error(&customer, 403, "forbidden");
    // Racing refunds of what is left: exactly one is made.
    let left = total - 500;
    let racing = racing_refunds(&api, id, left).await;
    assert_eq!(
        racing.iter().filter(|s| **s == 200).count(),
        1,
        "{racing:?}"
    );
    assert!(racing.iter().all(|s| *s == 200 || *s == 409), "{racing:?}");

    // A return of the line now refunds nothing: nothing is left.
    let p2 = product(&order, "P002");
    let asked = ask(
        &api,
        user,
        id,
        json!([{"product_id": p2, "quantity": 1}]),
        None,
    )
    .await;
    let rid = asked.1["return_id"].as_str().unwrap().to_owned();
    assert_eq!(act(&api, &rid, "approve", json!({})).await.0, 200);
    let received = act(&api, &rid, "receive", json!({"restock": false})).await;
    assert_eq!(
        (
            received.1["status"].as_str(),
            received.1["refund_cents"].as_i64()
        ),
        (Some("refunded"), Some(0)),
        "{}",
        received.1
    );
    let (_, order) = api.order(user, id).await;
    assert_eq!(order["payment"]["refunded_cents"], total, "{order}");
    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some(user))
        .await;
    assert_eq!(
        kinds(&timeline)
            .iter()
            .filter(|k| *k == "goodwill_refund")
            .count(),
        2,
        "{timeline}"
    );

    let unpaid = "ret-goodwill-unpaid";
    api.place_order(user, unpaid, &[("P002", 1)]).await;
    assert_error(&goodwill(&api, unpaid, 100, None).await, 409, "not_paid");
}

/// Four refunds of `cents` at once; their statuses.
async fn racing_refunds(api: &Api, id: &str, cents: i64) -> Vec<u16> {
    let (a, b, c, d) = tokio::join!(
        goodwill(api, id, cents, None),
        goodwill(api, id, cents, None),
        goodwill(api, id, cents, None),
        goodwill(api, id, cents, None)
    );
    [a, b, c, d].iter().map(|r| r.0.as_u16()).collect()
}

#[tokio::test]
async fn a_parcel_that_never_comes_expires_the_return_and_late_asks_are_refused() {
    let app = start(
        "returns-expiry-app",
        &[
            ("SHOPFLOW_RETURN_PARCEL_WINDOW", "1s"),
            ("SHOPFLOW_RETURN_WINDOW", "4s"),
        ],
    )
    .await;
    let api = Api::new(&app.config);
    let (user, id) = ("alice", "ret-expiry-1");
    let order = delivered(&api, user, id, &[("P005", 1)]).await;
    let p5 = product(&order, "P005");
    let asked = ask(
        &api,
        user,
        id,
        json!([{"product_id": p5, "quantity": 1}]),
        None,
    )
    .await;
    assert_eq!(asked.0, 202, "{}", asked.1);
    let rid = asked.1["return_id"].as_str().unwrap().to_owned();
    assert_eq!(act(&api, &rid, "approve", json!({})).await.0, 200);
    let expired = eventually("the return to expire", || async {
        let (_, order) = api.order(user, id).await;
        (order["returns"][0]["status"] == "expired").then_some(order)
    })
    .await;
    assert_eq!(expired["payment"]["refunded_cents"], 0, "{expired}");
    assert_error(
        &act(&api, &rid, "receive", json!({"restock": true})).await,
        409,
        "not_awaiting_parcel",
    );
    assert_eq!(notified(&app, id, user, "return_expired").await, 1);

    // The return window (4 s after delivery) closes.
    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some(user))
        .await;
    let delivered_at = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "delivered")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let closes = shopflow::clock::parse_rfc3339(&delivered_at).unwrap() + 4_000;
    eventually("the return window to close", || async {
        (shopflow::clock::now_unix_ms() > closes + 100).then_some(())
    })
    .await;
    assert_error(
        &ask(
            &api,
            user,
            id,
            json!([{"product_id": p5, "quantity": 1}]),
            None,
        )
        .await,
        409,
        "return_window_closed",
    );
}
