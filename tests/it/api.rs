//! The JSON API against one shared ShopFlow (real restate-server, real SQLite).
//! Tests that change a cart each use their own user, so they can run in parallel.

use crate::common;

use common::{Api, AppConfig, TestApp, assert_error};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// One app per test binary; it dies with the binary (parent-death signal).
async fn api() -> Api {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    let app = APP
        .get_or_init(|| async {
            // A static is never dropped, so a temp dir would be left behind: use a fixed
            // dir under Cargo's target tmp dir instead, wiped at the start of each run.
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-app");
            let _ = std::fs::remove_dir_all(&dir);
            TestApp::start(AppConfig::new(&dir)).await
        })
        .await;
    // A client per test: each test has its own runtime.
    Api::new(&app.config)
}

#[tokio::test]
async fn health_reports_sqlite_and_restate() {
    let (status, body) = api().await.healthz().await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "sqlite": "ok", "restate": "ok"})
    );
    let api = api().await;
    assert_eq!(
        api.get("/healthz/live", None).await,
        (reqwest::StatusCode::OK, json!({"status": "live"}))
    );
    assert_eq!(
        api.get("/healthz/ready", None).await,
        (
            reqwest::StatusCode::OK,
            json!({"status": "ready", "database": "ok", "sqlite": "ok", "restate": "ok", "endpoint": "ok"})
        )
    );
}

#[tokio::test]
async fn users_and_roles_for_admins() {
    let (status, users) = api().await.users(Some("admin")).await;
    assert_eq!(status, 200);
    let users = users.as_array().unwrap();
    let find = |name: &str| users.iter().find(|u| u["username"] == name).cloned();
    assert_eq!(find("alice").unwrap()["role"], "customer");
    assert_eq!(find("bob").unwrap()["role"], "customer");
    assert_eq!(find("admin").unwrap()["role"], "admin");
    assert!(users.iter().all(|u| u["name"].is_string()));
}

#[tokio::test]
async fn product_list_has_the_contract_shape() {
    let (status, products) = api().await.products().await;
    assert_eq!(status, 200);
    let products = products.as_array().unwrap();
    assert!(products.len() >= 8);
    let widget = products.iter().find(|p| p["sku"] == "P001").unwrap();
    assert_eq!(widget["name"], "Widget A");
    assert_eq!(widget["price_cents"], 2500);
    let mut keys: Vec<_> = widget.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "description",
            "id",
            "name",
            "price_cents",
            "sku",
            "stock_by_location",
            "stock_qty"
        ]
    );
    assert!(
        products
            .iter()
            .any(|p| p["stock_qty"].as_i64().unwrap() <= 5)
    );
}

#[tokio::test]
async fn one_product_by_id_or_sku() {
    let api = api().await;
    let (status, by_id) = api.product("2").await;
    assert_eq!(status, 200);
    assert_eq!(by_id["sku"], "P002");
    assert_eq!(by_id["name"], "Widget B");
    let (status, by_sku) = api.product("P002").await;
    assert_eq!(status, 200);
    assert_eq!(by_sku, by_id);
}

#[tokio::test]
async fn unknown_and_malformed_product_ids() {
    let api = api().await;
    assert_error(&api.product("999").await, 404, "unknown_product");
    assert_error(&api.product("NOPE1").await, 404, "unknown_product");
    assert_error(&api.product("0").await, 400, "invalid_product_id");
    assert_error(&api.product("-4").await, 400, "invalid_product_id");
    assert_error(&api.product("a%20b").await, 400, "invalid_product_id");
    assert_error(
        &api.product(&"X".repeat(40)).await,
        400,
        "invalid_product_id",
    );
}

#[tokio::test]
async fn cart_add_get_remove() {
    let api = api().await;
    assert_eq!(api.cart_lines("alice").await, vec![]);

    let (status, cart) = api.add_to_cart("alice", json!(1), 2).await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(
        cart,
        json!({
            "user_id": "alice",
            "items": [{"product_id": 1, "sku": "P001", "name": "Widget A", "quantity": 2,
                       "unit_price_cents": 2500, "line_total_cents": 5000}],
            "total_cents": 5000
        })
    );
    // By SKU, merged into the same line; another product makes a second line.
    assert_eq!(api.add_to_cart("alice", json!("P001"), 1).await.0, 200);
    let (_, cart) = api.add_to_cart("alice", json!("P002"), 1).await;
    assert_eq!(cart["total_cents"], 3 * 2500 + 2500);
    assert_eq!(
        api.cart_lines("alice").await,
        vec![("P001".into(), 3), ("P002".into(), 1)]
    );

    let (status, cart) = api.remove_from_cart("alice", json!(1)).await;
    assert_eq!(status, 200);
    assert_eq!(cart["total_cents"], 2500);
    assert_eq!(api.cart_lines("alice").await, vec![("P002".into(), 1)]);
    // Removing what is not in the cart is a no-op.
    assert_eq!(api.remove_from_cart("alice", json!(1)).await.0, 200);
    assert_eq!(api.cart_lines("alice").await, vec![("P002".into(), 1)]);
}

#[tokio::test]
async fn an_add_retried_with_its_idempotency_key_adds_once() {
    let api = api().await;
    // A client whose answer was lost sends the same request again, same key.
    for _ in 0..3 {
        let (status, cart) = api
            .add_to_cart_keyed("grace", json!("P003"), 2, "g-1")
            .await;
        assert_eq!(status, 200, "{cart}");
        assert_eq!(cart["items"][0]["quantity"], 2, "{cart}");
    }
    assert_eq!(api.cart_lines("grace").await, vec![("P003".into(), 2)]);
    // Another key is another add; the same key for another user is theirs alone.
    let (_, cart) = api
        .add_to_cart_keyed("grace", json!("P003"), 1, "g-2")
        .await;
    assert_eq!(cart["items"][0]["quantity"], 3, "{cart}");
    let (_, cart) = api
        .add_to_cart_keyed("heidi", json!("P003"), 1, "g-1")
        .await;
    assert_eq!(cart["items"][0]["quantity"], 1, "{cart}");
    assert_eq!(api.cart_lines("grace").await, vec![("P003".into(), 3)]);
}

#[tokio::test]
async fn carts_are_isolated_between_users() {
    let api = api().await;
    assert_eq!(api.add_to_cart("bob", json!("P004"), 4).await.0, 200);
    assert_eq!(api.add_to_cart("carol", json!("P005"), 1).await.0, 200);
    assert_eq!(api.cart_lines("bob").await, vec![("P004".into(), 4)]);
    assert_eq!(api.cart_lines("carol").await, vec![("P005".into(), 1)]);
    let (_, bob) = api.cart("bob").await;
    assert_eq!(bob["user_id"], "bob");
}

#[tokio::test]
async fn identity_is_required_for_the_cart() {
    let api = api().await;
    assert_error(&api.get("/api/cart", None).await, 401, "unauthorized");
    assert_error(&api.cart("mallory").await, 401, "unauthorized");
    assert_error(&api.cart("../admin").await, 401, "unauthorized");
    let add = json!({"product_id": 1, "quantity": 1});
    assert_error(
        &api.post("/api/cart/add", None, &add).await,
        401,
        "unauthorized",
    );
    assert_error(
        &api.post("/api/cart/add", Some("mallory"), &add).await,
        401,
        "unauthorized",
    );
}

/// Every kind of bad input gets a 4xx error JSON and leaves the cart as it was.
#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let api = api().await;
    let user = "dave";
    assert_eq!(api.add_to_cart(user, json!("P008"), 98).await.0, 200);
    let before = api.cart(user).await;

    let add = |body: &'static str| {
        let api = api.clone();
        async move { api.post_raw("/api/cart/add", Some(user), body).await }
    };
    assert_error(&add("not json").await, 400, "invalid_json");
    assert_error(&add("").await, 400, "invalid_json");
    assert_error(&add("[]").await, 400, "invalid_json");
    assert_error(&add(r#"{"product_id": 1}"#).await, 400, "invalid_json");
    assert_error(&add(r#"{"quantity": 1}"#).await, 400, "invalid_json");
    assert_error(
        &add(r#"{"product_id": 1, "quantity": "2"}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 1, "quantity": 1.5}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 1, "quantity": 0}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 1, "quantity": -1}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 1, "quantity": 100}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": true, "quantity": 1}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": "<b>", "quantity": 1}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 1, "quantity": 1, "price_cents": 1}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &add(r#"{"product_id": 999, "quantity": 1}"#).await,
        404,
        "unknown_product",
    );
    assert_error(
        &add(r#"{"product_id": "P999", "quantity": 1}"#).await,
        404,
        "unknown_product",
    );
    // The line already holds 98: two more would pass the 99 per line.
    assert_error(
        &add(r#"{"product_id": "P008", "quantity": 2}"#).await,
        409,
        "cart_line_limit",
    );
    // The scarce product has fewer than 10 in stock.
    assert_error(
        &add(r#"{"product_id": "P007", "quantity": 10}"#).await,
        409,
        "out_of_stock",
    );

    let huge = format!(
        r#"{{"product_id": 1, "quantity": 1, "pad": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    assert_error(
        &api.post_raw("/api/cart/add", Some(user), huge.clone())
            .await,
        413,
        "body_too_large",
    );
    assert_error(
        &api.post_raw("/api/cart/remove", Some(user), huge).await,
        413,
        "body_too_large",
    );
    let remove = |body: &'static str| {
        let api = api.clone();
        async move { api.post_raw("/api/cart/remove", Some(user), body).await }
    };
    assert_error(&remove("{").await, 400, "invalid_json");
    assert_error(
        &remove(r#"{"product_id": null}"#).await,
        400,
        "invalid_json",
    );
    assert_error(
        &remove(r#"{"product_id": 12345}"#).await,
        404,
        "unknown_product",
    );

    assert_eq!(
        api.cart(user).await,
        before,
        "bad input must not change the cart"
    );
}

#[tokio::test]
async fn stock_bounds_what_a_cart_can_hold() {
    let api = api().await;
    let (_, product) = api.product("P007").await;
    let stock = product["stock_qty"].as_i64().unwrap();
    assert!(stock >= 1);
    assert_eq!(api.add_to_cart("erin", json!("P007"), stock).await.0, 200);
    assert_error(
        &api.add_to_cart("erin", json!("P007"), 1).await,
        409,
        "out_of_stock",
    );
    assert_eq!(api.cart_lines("erin").await, vec![("P007".into(), stock)]);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_error_json() {
    let api = api().await;
    assert_error(&api.get("/api/nothing-here", None).await, 404, "not_found");
    assert_error(
        &api.post("/api/products", None, &Value::Null).await,
        405,
        "method_not_allowed",
    );
}

/// JSON, the page and its script are gzipped for clients that accept it; live streams
/// never are (each event must reach the page as it is sent).
#[tokio::test]
async fn responses_are_compressed_but_streams_are_not() {
    let api = api().await;
    let encoding = |path: String| {
        let api = api.clone();
        async move {
            let resp = api
                .request(reqwest::Method::GET, &path)
                .bearer_auth(api.token("alice"))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            let encoding = resp.headers().get("content-encoding").cloned();
            let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (encoding.map(|e| e.to_str().unwrap().to_owned()), kind)
        }
    };
    let page = api.request(reqwest::Method::GET, "/").send().await.unwrap();
    let page = page.text().await.unwrap();
    let script = page
        .split('"')
        .find(|s| s.starts_with("/static/datastar-"))
        .unwrap();
    for path in ["/api/products", "/", script] {
        let gzip = encoding(path.to_owned()).await.0;
        assert_eq!(gzip.as_deref(), Some("gzip"), "{path}");
    }
    let (stream, kind) = encoding("/stream/notifications".into()).await;
    assert_eq!(kind, "text/event-stream");
    assert_eq!(stream, None);
}

/// `/metrics`: requests by route pattern (never by raw path, nor by a method nobody
/// knows: neither may grow a series), open streams, and the read model's totals.
#[tokio::test]
async fn metrics_count_by_route_and_report_the_read_model() {
    let api = api().await;
    let scrape = || async {
        let resp = api
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        resp.text().await.unwrap()
    };
    let value = |text: &str, series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{series} ")));
        let line = line.unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let failed = r#"shopflow_payment_requests{state="failed"}"#;
    let before = value(&scrape().await, failed);

    assert_eq!(api.product("P003").await.0, 200);
    let unknown = api.request(reqwest::Method::GET, "/no-such-route-7f3a");
    assert_eq!(unknown.send().await.unwrap().status(), 404);
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let brew = api.request(brew, "/api/products").send().await.unwrap();
    assert_eq!(brew.status(), 405);
    let (awakeable, _) = api.place_order("oscar", "metrics-1", &[("P004", 1)]).await;
    assert_eq!(api.decline(&awakeable, "card expired").await.0, 200);
    api.wait_status("oscar", "metrics-1", "payment_failed")
        .await;
    // A cancelled checkout gives its stock back: a compensation.
    api.place_order("oscar", "metrics-2", &[("P004", 1)]).await;
    assert_eq!(api.cancel("oscar", "metrics-2", None).await.0, 200);
    api.wait_status("oscar", "metrics-2", "cancelled").await;

    let text = scrape().await;
    let product =
        r#"shopflow_http_requests_total{method="GET",route="/api/products/{id}",status="200"}"#;
    assert!(value(&text, product) >= 1.0);
    let unmatched = r#"shopflow_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert!(value(&text, unmatched) >= 1.0);
    let other =
        r#"shopflow_http_requests_total{method="other",route="/api/products",status="405"}"#;
    assert!(value(&text, other) >= 1.0);
    assert!(
        !text.contains("no-such-route") && !text.contains("BREW"),
        "{text}"
    );
    assert!(value(&text, failed) > before);
    assert!(value(&text, r#"shopflow_orders{status="payment_failed"}"#) >= 1.0);
    assert!(value(&text, r#"shopflow_orders{status="delivered"}"#) >= 0.0);
    let released = r#"shopflow_compensations{step="release_inventory"}"#;
    assert!(value(&text, released) >= 1.0);
    assert!(value(&text, "shopflow_saga_runs") >= 1.0);
    assert!(value(&text, "shopflow_open_streams") >= 0.0);
    assert!(text.contains("# TYPE shopflow_http_request_duration_seconds histogram"));
    assert!(text.ends_with("# EOF\n"));
}

/// `/api/openapi.json` is the document the tests check every answer against
/// (`common::openapi`); it lists exactly the routes docs/api.md's table does, and each of
/// them is routed (answers something other than the no-such-route fallback).
#[tokio::test]
async fn openapi_document_lists_every_route() {
    let api = api().await;
    let (status, served) = api.get("/api/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(&served, common::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");

    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let readme = include_str!("../../docs/api.md");
    let table: std::collections::BTreeSet<(String, String)> = readme
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let (method, path) = (cells.next()?, cells.next()?);
            let path = path.strip_prefix('`')?.strip_suffix('`')?;
            (["GET", "POST", "PUT", "DELETE"].contains(&method)).then(|| {
                (
                    method.to_owned(),
                    path.split('?').next().unwrap().to_owned(),
                )
            })
        })
        .collect();
    assert_eq!(
        documented, table,
        "docs/api.md's API table and the OpenAPI document differ"
    );

    for (method, path) in &documented {
        let concrete = path.replace("{id}", "no-such-thing");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = api.request(method.clone(), &concrete).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no such route"),
            "{method} {concrete}: {status} {body}"
        );
    }
}

/// The check every answer passes refuses what the document does not allow.
#[test]
fn answers_that_break_the_document_are_caught() {
    use common::openapi::check;
    let json = "application/json";
    let cart = br#"{"user_id":"alice","items":[],"total_cents":0}"#;
    check("GET", "/api/cart", 200, json, cart);
    check(
        "GET",
        "/api/orders/o-1",
        404,
        json,
        br#"{"error":{"code":"x","message":"y"}}"#,
    );
    let breaks = |status: u16, body: &'static [u8]| {
        std::panic::catch_unwind(|| check("GET", "/api/cart", status, json, body)).is_err()
    };
    assert!(breaks(200, br#"{"user_id":5,"items":[],"total_cents":0}"#));
    assert!(breaks(200, br#"{"items":[],"total_cents":0}"#));
    assert!(breaks(401, br#"{"message":"no error object"}"#));
    assert!(breaks(302, b""));
    let html = std::panic::catch_unwind(|| check("GET", "/api/cart", 200, "text/html", b"<p>"));
    assert!(
        html.is_err(),
        "a body in a media type the answer does not list"
    );
}
