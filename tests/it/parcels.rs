//! Stock in several places and split parcels against a real ShopFlow: the locations
//! and each product's stock by location; an admin's restock per location and every
//! refusal of it; an order no one location covers, shipped as two parcels, each
//! captured as it ships; a parcel the carrier refuses (partially delivered, its part
//! voided, its stock back where it was); every parcel refused (shipping failed,
//! nothing captured); and racing checkouts that never oversell.

use crate::common;

use common::{Api, TestApp, assert_error, eventually};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const ADMIN: &str = "admin";

async fn app() -> (&'static TestApp, Api) {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = APP
        .get_or_init(|| crate::returns::start("parcels-app", &[]))
        .await;
    (app, Api::new(&app.config))
}

/// The carrier drill is the shop's, not an order's: the tests that ship take turns.
static CARRIER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn set_stock(api: &Api, sku: &str, location: &str, qty: i64) -> common::Reply {
    let req = api
        .request(
            reqwest::Method::PUT,
            &format!("/api/admin/products/{sku}/stock"),
        )
        .bearer_auth(api.token(ADMIN))
        .json(&json!({"location": location, "stock_qty": qty}));
    api.send(req).await
}

/// Sets `sku` to `east` and `west` units; asserts the reply shows them.
async fn stock_at(api: &Api, sku: &str, east: i64, west: i64) {
    set_stock(api, sku, "east", east).await;
    let (status, product) = set_stock(api, sku, "west", west).await;
    assert_eq!(status, 200, "{product}");
    let expected = json!({"east": east, "west": west});
    assert_eq!(product["stock_by_location"], expected, "{product}");
    assert_eq!(product["stock_qty"], east + west, "{product}");
}

/// The product's stock by location as the catalog shows it, once it shows `expected`.
async fn wait_levels(api: &Api, sku: &str, expected: Value) {
    eventually(&format!("{sku} at {expected}"), || {
        let expected = expected.clone();
        async move {
            let (_, p) = api.product(sku).await;
            (p["stock_by_location"] == expected).then_some(())
        }
    })
    .await
}

async fn carrier_drill(api: &Api, body: Value) {
    let (status, reply) = api
        .post("/api/admin/drills/carrier", Some(ADMIN), &body)
        .await;
    assert_eq!(status, 200, "{reply}");
}

/// Places and pays for `lines`; answers the order once it awaits approval.
async fn paid(api: &Api, user: &str, id: &str, lines: &[(&str, i64)]) -> Value {
    let (awakeable, total) = api.place_order(user, id, lines).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);
    api.wait_status(user, id, "awaiting_approval").await
}

/// `(location, status)` of each of the order's parcels.
fn parcels(order: &Value) -> Vec<(String, String)> {
    let shipments = order["shipments"].as_array().expect("shipments");
    shipments
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (text("location"), text("status"))
        })
        .collect()
}

fn pair(location: &str, status: &str) -> (String, String) {
    (location.to_owned(), status.to_owned())
}

#[tokio::test]
async fn locations_and_restock_per_location() {
    let (_app, api) = app().await;
    let (status, locations) = api.get("/api/locations", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = locations
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["east", "west"], "{locations}");
    assert!(locations[0]["name"].is_string(), "{locations}");
    let (_, seeded) = api.product("P009").await;
    let by = &seeded["stock_by_location"];
    assert_eq!(
        by["east"].as_i64().unwrap() + by["west"].as_i64().unwrap(),
        seeded["stock_qty"].as_i64().unwrap(),
        "the total is the sum: {seeded}"
    );

    stock_at(&api, "P009", 30, 7).await;
    wait_levels(&api, "P009", json!({"east": 30, "west": 7})).await;
    let refusals = [
        (
            json!({"location": "north", "stock_qty": 1}),
            400,
            "invalid_location",
        ),
        (
            json!({"location": "east", "stock_qty": -1}),
            400,
            "invalid_stock_qty",
        ),
        (json!({"location": "east"}), 400, "invalid_json"),
        (
            json!({"location": "east", "stock_qty": 1, "x": 1}),
            400,
            "invalid_json",
        ),
    ];
    for (body, code, what) in refusals {
        let req = api
            .request(reqwest::Method::PUT, "/api/admin/products/P009/stock")
            .bearer_auth(api.token(ADMIN))
            .json(&body);
        assert_error(&api.send(req).await, code, what);
    }
    // A customer is refused before the body is read.
    for body in [
        json!({"location": "east", "stock_qty": 0}),
        json!({"stock_qty": "x"}),
    ] {
        let as_customer = api
            .request(reqwest::Method::PUT, "/api/admin/products/P009/stock")
            .bearer_auth(api.token("alice"))
            .json(&body);
        assert_error(&api.send(as_customer).await, 403, "forbidden");
    }
    let long = "x".repeat(5000);
    let reply = set_stock(&api, "P009", &long, 1).await;
    assert_error(&reply, 400, "invalid_location");
    assert!(
        !reply.1.to_string().contains(&long[..100]),
        "the refusal does not echo a long input: {}",
        &reply.1.to_string()[..200]
    );
    assert_error(
        &set_stock(&api, "P999", "east", 1).await,
        404,
        "unknown_product",
    );
    let (_, after) = api.product("P009").await;
    assert_eq!(
        (&after["stock_by_location"], &after["stock_qty"]),
        (&json!({"east": 30, "west": 7}), &json!(37)),
        "refusals change nothing"
    );
}

#[tokio::test]
async fn an_order_no_one_location_covers_ships_in_two_parcels() {
    let (_app, api) = app().await;
    let _turn = CARRIER.lock().await;
    stock_at(&api, "P007", 2, 1).await;
    stock_at(&api, "P001", 10, 10).await;
    let id = "split-1";
    let order = paid(&api, "alice", id, &[("P007", 3), ("P001", 1)]).await;
    assert_eq!(
        parcels(&order),
        [pair("east", "pending"), pair("west", "pending")]
    );
    assert_eq!(order["shipments"][0]["shipment_id"], "split-1-east");
    let east_items = json!([{"product_id": 7, "sku": "P007", "quantity": 2},
                            {"product_id": 1, "sku": "P001", "quantity": 1}]);
    assert_eq!(order["shipments"][0]["items"], east_items, "{order}");
    assert_eq!(
        (
            &order["payment"]["state"],
            &order["payment"]["captured_cents"]
        ),
        (&json!("authorized"), &json!(0)),
        "authorized at checkout, nothing captured: {order}"
    );
    wait_levels(&api, "P007", json!({"east": 0, "west": 0})).await;

    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    let order = api.wait_status("alice", id, "delivered").await;
    assert_eq!(
        parcels(&order),
        [pair("east", "delivered"), pair("west", "delivered")]
    );
    for s in order["shipments"].as_array().unwrap() {
        assert!(
            s["carrier"].is_string() && s["tracking_number"].is_string(),
            "{s}"
        );
    }
    let payment = &order["payment"];
    assert_eq!(
        (
            &payment["state"],
            &payment["captured_cents"],
            &payment["refunded_cents"]
        ),
        (&json!("captured"), &order["total_cents"], &json!(0)),
        "{order}"
    );
    // The timeline has a shipped event per parcel.
    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some("alice"))
        .await;
    let shipped: Vec<&str> = (timeline.as_array().unwrap().iter())
        .filter(|e| e["event"] == "shipped")
        .map(|e| e["note"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(shipped.len(), 2, "{timeline}");
    assert!(
        shipped.iter().any(|n| n.ends_with("the parcel from west")),
        "{shipped:?}"
    );
}

#[tokio::test]
async fn a_parcel_the_carrier_refuses_leaves_the_order_partially_delivered() {
    let (_app, api) = app().await;
    let _turn = CARRIER.lock().await;
    stock_at(&api, "P006", 1, 1).await;
    stock_at(&api, "P005", 0, 1).await;
    let id = "split-2";
    // East ships one P006; west one P006 and the P005 only west has.
    let order = paid(&api, "bob", id, &[("P006", 2), ("P005", 1)]).await;
    assert_eq!(
        parcels(&order),
        [pair("east", "pending"), pair("west", "pending")]
    );
    carrier_drill(
        &api,
        json!({"mode": "fail", "orders": 1, "location": "west"}),
    )
    .await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    let order = api.wait_status("bob", id, "partially_delivered").await;
    carrier_drill(&api, json!({"mode": "normal", "orders": 0})).await;
    assert_eq!(
        parcels(&order),
        [pair("east", "delivered"), pair("west", "failed")]
    );
    let east = order["shipments"][0]["amount_cents"].as_i64().unwrap();
    let payment = &order["payment"];
    assert_eq!(
        (
            &payment["state"],
            &payment["captured_cents"],
            &payment["refunded_cents"]
        ),
        (&json!("captured"), &json!(east), &json!(0)),
        "only the parcel that shipped is charged: {order}"
    );
    assert!(east > 0 && east < order["total_cents"].as_i64().unwrap());
    // The failed parcel's units are back where they came from.
    wait_levels(&api, "P006", json!({"east": 0, "west": 1})).await;
    wait_levels(&api, "P005", json!({"east": 0, "west": 1})).await;
    // Only what arrived can be sent back.
    let ask = |quantity: i64| {
        let body = json!({"items": [{"product_id": 6, "quantity": quantity}], "reason": "x"});
        let path = format!("/api/orders/{id}/returns");
        let api = api.clone();
        async move { api.post(&path, Some("bob"), &body).await }
    };
    assert_error(&ask(2).await, 409, "too_many");
    // A product only the failed parcel held is in the order but never arrived.
    let never = json!({"items": [{"product_id": 5, "quantity": 1}], "reason": "x"});
    let path = format!("/api/orders/{id}/returns");
    assert_error(&api.post(&path, Some("bob"), &never).await, 409, "too_many");
    let (_, timeline) = api
        .get(&format!("/api/orders/{id}/timeline"), Some("bob"))
        .await;
    let last = timeline.as_array().and_then(|t| t.last()).cloned();
    assert_eq!(
        last.as_ref().map(|e| &e["event"]),
        Some(&json!("delivered")),
        "a partial delivery ends the timeline: {timeline}"
    );
    let (status, opened) = ask(1).await;
    assert_eq!(status, 202, "{opened}");
}

#[tokio::test]
async fn every_parcel_refused_is_shipping_failed_and_nothing_is_charged() {
    let (_app, api) = app().await;
    let _turn = CARRIER.lock().await;
    stock_at(&api, "P003", 1, 2).await;
    let id = "split-3";
    paid(&api, "carol", id, &[("P003", 3)]).await;
    carrier_drill(&api, json!({"mode": "fail", "orders": 2})).await;
    assert_eq!(api.approve(ADMIN, id).await.0, 200);
    let order = api.wait_status("carol", id, "shipping_failed").await;
    assert_eq!(
        parcels(&order),
        [pair("east", "failed"), pair("west", "failed")]
    );
    let payment = &order["payment"];
    assert_eq!(
        (
            &payment["state"],
            &payment["captured_cents"],
            &payment["refunded_cents"]
        ),
        (&json!("voided"), &json!(0), &json!(0)),
        "{order}"
    );
    wait_levels(&api, "P003", json!({"east": 1, "west": 2})).await;
}

#[tokio::test]
async fn racing_checkouts_never_oversell_any_location() {
    let (app, api) = app().await;
    stock_at(&api, "P010", 3, 2).await;
    let shoppers = [
        "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "kim",
    ];
    for user in shoppers {
        let (status, body) = api.add_to_cart(user, json!("P010"), 1).await;
        assert_eq!(status, 200, "{user}: {body}");
    }
    let mut checkouts = tokio::task::JoinSet::new();
    for user in shoppers {
        let api = api.clone();
        checkouts.spawn(async move {
            let body =
                json!({"order_id": format!("race-{user}"), "shipping_address": "1 Test Street"});
            api.checkout(user, &body, None).await
        });
    }
    let replies = checkouts.join_all().await;
    let placed = replies.iter().filter(|r| r.0 == 202).count();
    for reply in replies.iter().filter(|r| r.0 != 202) {
        assert_error(reply, 409, "out_of_stock");
    }
    assert_eq!(placed, 5, "five units, five orders: {replies:?}");
    wait_levels(&api, "P010", json!({"east": 0, "west": 0})).await;
    let pool = app.db().await;
    let reserved: Vec<(String, i64)> = sqlx::query_as(
        "SELECT location, CAST(SUM(quantity) AS BIGINT) FROM stock_reservations
         WHERE product_id = 10 AND state = 'reserved' GROUP BY location ORDER BY location",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(reserved, [("east".to_owned(), 3), ("west".to_owned(), 2)]);
}
