//! The browser UI's server side against one shared ShopFlow (real restate-server, real
//! SQLite): the page, the session cookie, cross-origin refusal, the datastar actions'
//! answers and the page stream's event format. Each test uses its own user.

use crate::common;

use std::time::{Duration, Instant};

use common::{AppConfig, DEADLINE, TestApp, eventually};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

async fn app() -> &'static TestApp {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    APP.get_or_init(|| async {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-app");
        let _ = std::fs::remove_dir_all(&dir);
        // Demo mode: the page's user picker signs in without a password (the sign-in
        // form with passwords is covered by tests/security.rs).
        let mut config = AppConfig::new(&dir);
        config.demo();
        TestApp::start(config).await
    })
    .await
}

/// A browser's view of the server: same-origin requests, a session cookie once signed in.
struct Browser {
    base: String,
    host: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    async fn new() -> Browser {
        let addr = app().await.config.http;
        Browser {
            base: format!("http://{addr}"),
            host: addr.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn signed_in(user: &str) -> Browser {
        let mut browser = Browser::new().await;
        let reply = browser.sign_in(user).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.headers["location"], "/");
        let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
        browser.cookie = Some(set_cookie.split(';').next().unwrap().to_owned());
        browser
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("origin", format!("http://{}", self.host))
            .header("sec-fetch-site", "same-origin");
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        req
    }

    async fn send(req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.unwrap();
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    async fn sign_in(&self, user: &str) -> Page {
        let req = self
            .request(reqwest::Method::POST, "/ui/session")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}"));
        Self::send(req).await
    }

    /// A datastar action: signals as the JSON body.
    async fn action(&self, path: &str, signals: &Value) -> Page {
        let req = self
            .request(reqwest::Method::POST, path)
            .header("datastar-request", "true")
            .header("content-type", "application/json")
            .body(signals.to_string());
        Self::send(req).await
    }

    /// A datastar GET action: signals in the `datastar` query parameter.
    async fn view(&self, path: &str, signals: &Value) -> Page {
        let req = self
            .request(reqwest::Method::GET, path)
            .header("datastar-request", "true")
            .query(&[("datastar", signals.to_string())]);
        Self::send(req).await
    }
}

/// The fragments of each `datastar-merge-fragments` event, joined, in order.
fn fragments(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|block| block.starts_with("event: datastar-merge-fragments\n"))
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.strip_prefix("data: fragments "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn fragment<'a>(all: &'a [String], id: &str) -> &'a str {
    let start = format!("id=\"{id}\"");
    all.iter()
        .find(|f| f.lines().next().is_some_and(|l| l.contains(&start)))
        .unwrap_or_else(|| panic!("no fragment #{id} in {all:#?}"))
}

fn signals(page: &str) -> Value {
    json!({"page": page, "qty": {"P001": 2, "P008": "3"}, "address": "", "declineReason": "", "rejectReason": ""})
}

async fn cart_total(user: &str) -> i64 {
    let api = common::Api::new(&app().await.config);
    let (status, cart) = api.cart(user).await;
    assert_eq!(status, 200);
    cart["total_cents"].as_i64().unwrap()
}

#[tokio::test]
async fn the_page_has_every_pane_and_a_long_lived_datastar_script() {
    let browser = Browser::new().await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' 'unsafe-eval';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    for id in [
        "nav",
        "user-picker",
        "tab-input",
        "tab-output",
        "input-pane",
        "output-pane",
        "notifications",
        "workflow-meta",
        "main",
    ] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    assert!(page.body.contains("<nav id=\"nav\" aria-label=\"Main\">"));
    assert!(
        page.body
            .contains("<aside class=\"side\" aria-label=\"Live updates\">")
    );
    assert!(page.body.contains("aria-live=\"polite\""));
    // Signed out: the picker, no navigation, no stream.
    assert!(page.body.contains("Pick a user"));
    assert!(!page.body.contains("id=\"stream\""));

    let script = page
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        script.starts_with("/static/datastar-") && script.ends_with(".js"),
        "{script}"
    );
    let js = browser.get(&script).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(
        js.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(js.body.starts_with("// Datastar v1.0.0-beta.11"));
    let stale = browser.get("/static/datastar-000000000000.js").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert!(stale.body.contains("\"code\":\"not_found\""));
}

#[tokio::test]
async fn the_session_cookie_names_the_user_and_cannot_be_forged() {
    let alice = Browser::signed_in("alice").await;
    let page = alice.get("/").await;
    assert!(
        page.body
            .contains("<option value=\"alice\" selected>Alice Andersen (alice)</option>")
    );
    assert!(page.body.contains("id=\"stream\""));
    // A customer has no Admin entry; the admin has.
    assert!(!page.body.contains("/ui/view/admin"));
    let admin = Browser::signed_in("admin").await;
    assert!(admin.get("/").await.body.contains("/ui/view/admin"));

    // The JSON API accepts the cookie as it accepts X-User-ID.
    let cart = alice.get("/api/cart").await;
    assert_eq!(cart.status, StatusCode::OK);
    assert!(cart.body.contains("\"user_id\":\"alice\""));

    // A session id the server never issued, alice's with one digit changed or in
    // capitals, a user's name: 401.
    let value = alice.cookie.clone().unwrap();
    for forged in [
        format!("shopflow_session={}", shopflow::auth::session::new_id()),
        {
            let (head, last) = value.split_at(value.len() - 1);
            format!("{head}{}", if last == "0" { "1" } else { "0" })
        },
        format!(
            "shopflow_session={}",
            value.trim_start_matches("shopflow_session=").to_uppercase()
        ),
        "shopflow_session=admin".to_owned(),
    ] {
        let mut mallory = Browser::new().await;
        mallory.cookie = Some(forged.clone());
        let reply = mallory.get("/api/cart").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{forged}");
        assert!(reply.body.contains("\"code\":\"unauthorized\""));
        // The page renders signed out rather than failing.
        let page = mallory.get("/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Pick a user"));
    }

    let nobody = Browser::new().await;
    for bad in ["nobody", "", "%3Cscript%3E"] {
        let reply = nobody.sign_in(bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.headers.get("set-cookie").is_none());
        assert!(reply.body.contains("\"code\":\"unknown_user\""));
    }
}

#[tokio::test]
async fn cross_origin_posts_are_refused_and_change_nothing() {
    let client = reqwest::Client::new();
    let base = format!("http://{}", app().await.config.http);
    let before = cart_total("bob").await;
    let foreign: [&[(&str, &str)]; 3] = [
        &[("origin", "http://evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", "null")],
    ];
    for headers in foreign {
        let mut req = client
            .post(format!("{base}/api/cart/add"))
            .header("x-user-id", "bob")
            .body(r#"{"product_id":"P008","quantity":1}"#);
        for (k, v) in headers {
            req = req.header(*k, HeaderValue::from_static(v));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_origin");
    }
    let session = client
        .post(format!("{base}/ui/session"))
        .header("origin", "http://evil.example")
        .body("user=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::FORBIDDEN);
    assert!(session.headers().get("set-cookie").is_none());
    assert_eq!(cart_total("bob").await, before);

    // The same request from the page's own origin goes through.
    let bob = Browser::signed_in("bob").await;
    let reply = Browser::send(
        bob.request(reqwest::Method::POST, "/api/cart/add")
            .body(r#"{"product_id":"P008","quantity":1}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(cart_total("bob").await, before + 899);
}

#[tokio::test]
async fn actions_answer_with_escaped_panes_and_refusals_change_nothing() {
    let carol = Browser::signed_in("carol").await;
    let page = "p-actions";

    // Navigating opens the tab where the view's work happens.
    let products = carol.view("/ui/view/products", &signals(page)).await;
    assert!(
        products
            .body
            .contains("\"tab\":\"input\",\"view\":\"products\"")
    );
    let dashboard = carol.view("/ui/view/dashboard", &signals(page)).await;
    assert!(
        dashboard
            .body
            .contains("\"tab\":\"output\",\"view\":\"dashboard\"")
    );
    let unknown = carol.view("/ui/view/secrets", &signals(page)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let added = carol.action("/ui/cart/add/P001", &signals(page)).await;
    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(added.headers["content-type"], "text/event-stream");
    let panes = fragments(&added.body);
    assert!(fragment(&panes, "flash").contains("Added 2 × Widget A; the cart holds $50.00."));
    for id in ["nav", "input-pane", "output-pane", "workflow-meta"] {
        fragment(&panes, id);
    }
    assert!(fragment(&panes, "output-pane").contains("<table>"));
    assert!(added.body.contains(
        "event: datastar-merge-signals\ndata: signals {\"order\":\"\",\"qty\":{\"P001\":1},\"view\":\"products\"}\n"
    ));
    // A quantity given as text is read too.
    let more = carol.action("/ui/cart/add/P008", &signals(page)).await;
    assert!(fragment(&fragments(&more.body), "flash").contains("Added 3 × Cable Organiser"));
    assert_eq!(cart_total("carol").await, 5000 + 3 * 899);

    // Refusals are shown in the status line and change nothing.
    let mut zero = signals(page);
    zero["qty"]["P001"] = json!(0);
    let refused = carol.action("/ui/cart/add/P001", &zero).await;
    assert_eq!(refused.status, StatusCode::OK);
    let flash = fragment(&fragments(&refused.body), "flash").to_owned();
    assert!(
        flash.contains("flash-error") && flash.contains("quantity must be 1-99"),
        "{flash}"
    );
    // A product the page never offers is a request the page never makes: 404.
    let unknown = carol.action("/ui/cart/add/P999", &signals(page)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("\"code\":\"unknown_product\""));
    assert_eq!(cart_total("carol").await, 5000 + 3 * 899);

    // Malformed requests are 4xx with the error JSON.
    let missing = Browser::send(
        carol
            .request(reqwest::Method::POST, "/ui/cart/add/P001")
            .body(""),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("missing_signals"));
    let bad_page = carol
        .action("/ui/cart/add/P001", &json!({"page": "<script>"}))
        .await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);
    assert!(bad_page.body.contains("invalid_page"));
    let signed_out = Browser::new()
        .await
        .action("/ui/cart/add/P001", &signals(page))
        .await;
    assert_eq!(signed_out.status, StatusCode::UNAUTHORIZED);
    let not_admin = carol.action("/ui/admin/crash", &signals(page)).await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    assert_eq!(cart_total("carol").await, 5000 + 3 * 899);

    // Checkout with a hostile address: escaped wherever it shows.
    let mut checkout = signals(page);
    checkout["address"] = json!("<script>alert(1)</script> 1 Elm St");
    let placed = carol.action("/ui/checkout", &checkout).await;
    let panes = fragments(&placed.body);
    assert!(fragment(&panes, "flash").contains("placed"));
    let output = fragment(&panes, "output-pane");
    assert!(!output.contains("<script>"), "{output}");
    assert!(output.contains("&lt;script&gt;alert(1)&lt;/script&gt; 1 Elm St"));
    let input = fragment(&panes, "input-pane");
    assert!(input.contains("id=\"pay-button\"") && input.contains("$76.97"));
    let meta = fragment(&panes, "workflow-meta");
    assert!(meta.contains("data-status=\"awaiting_payment\""), "{meta}");
    let order_id = meta
        .split("data-order-id=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(placed.body.contains(&format!(
        "data: signals {{\"address\":\"\",\"order\":\"{order_id}\",\"tab\":\"input\",\"view\":\"orders\"}}"
    )));

    // While the payment is pending the cart is locked: no Remove buttons.
    let cart = carol.view("/ui/view/cart", &signals(page)).await;
    let input = fragment(&fragments(&cart.body), "input-pane").to_owned();
    assert!(
        input.contains("locked") && !input.contains("/ui/cart/remove/"),
        "{input}"
    );
    assert!(input.contains("id=\"pay-button\""));

    // The gateway's decline carries a hostile reason through the real callback route.
    let mut decline = signals(page);
    decline["declineReason"] = json!("<img src=x onerror=alert(1)>");
    let declined = carol
        .action(&format!("/ui/decline/{order_id}"), &decline)
        .await;
    let flash = fragment(&fragments(&declined.body), "flash").to_owned();
    assert!(flash.contains("Declined the payment"), "{flash}");
    assert!(!declined.body.contains("<img"), "{}", declined.body);
    assert!(flash.contains("&lt;img src=x onerror=alert(1)&gt;") || flash.contains("&#60;img"));
    let api = common::Api::new(&app().await.config);
    api.wait_status("carol", &order_id, "payment_failed").await;
    // Paying a settled order is refused on the page.
    let again = carol
        .action(&format!("/ui/pay/{order_id}"), &signals(page))
        .await;
    assert!(fragment(&fragments(&again.body), "flash").contains("no payment of order"));

    // Selecting the order shows it; someone else's order is not found.
    let shown = carol
        .view(&format!("/ui/order/{order_id}"), &signals(page))
        .await;
    let output = fragment(&fragments(&shown.body), "output-pane").to_owned();
    assert!(
        output.contains("Payment Failed") || output.contains("payment failed"),
        "{output}"
    );
    let dave = Browser::signed_in("dave").await;
    let hidden = dave
        .view(&format!("/ui/order/{order_id}"), &signals("p-dave"))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    assert!(hidden.body.contains("\"code\":\"unknown_order\""));
    assert!(!hidden.body.contains("data-order-id"));
    let admin_view = dave.view("/ui/view/admin", &signals("p-dave")).await;
    assert_eq!(admin_view.status, StatusCode::FORBIDDEN);
    assert!(admin_view.body.contains("admin role"));
}

/// Reads the stream until `done` holds for the text so far.
async fn read_until(
    resp: &mut reqwest::Response,
    text: &mut String,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    let started = Instant::now();
    while !done(text) {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("waiting for {what}: {other:?}; got {text}"),
        }
    }
}

#[tokio::test]
async fn the_page_stream_carries_history_panes_and_live_notifications() {
    let erin = Browser::signed_in("erin").await;
    let page = "p-stream";
    // Something in the history first.
    erin.action("/ui/cart/add/P001", &signals(page)).await;
    let mut checkout = signals(page);
    checkout["address"] = json!("9 Stream Rd");
    let placed = erin.action("/ui/checkout", &checkout).await;
    assert!(fragment(&fragments(&placed.body), "flash").contains("placed"));

    let mut resp = erin
        .request(reqwest::Method::GET, "/ui/stream")
        .query(&[("datastar", signals(page).to_string())])
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    read_until(&mut resp, &mut text, "the panes", |t| {
        t.contains("id=\"workflow-meta\"")
    })
    .await;
    // First the whole list (morphed, so a reconnect shows nothing twice), then the
    // connection state, then the panes of the page's selection.
    assert!(
        text.starts_with(
            "event: datastar-merge-fragments\ndata: fragments <ul id=\"notification-list\""
        ),
        "{text}"
    );
    assert!(text.contains("awaiting payment"));
    assert!(text.contains("event: datastar-merge-signals\ndata: signals {\"live\":true}\n\n"));
    let panes = fragments(&text);
    // The checkout selected the order, so the stream follows it.
    assert!(fragment(&panes, "workflow-meta").contains("data-status=\"awaiting_payment\""));

    // A live change arrives as a prepended item carrying its log id as the event id,
    // followed by the panes again.
    let order_id = fragment(&panes, "workflow-meta")
        .split("data-order-id=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let paid = erin
        .action(&format!("/ui/pay/{order_id}"), &signals(page))
        .await;
    assert!(fragment(&fragments(&paid.body), "flash").contains("Paid $50.00"));
    let seen = text.len();
    read_until(&mut resp, &mut text, "the payment notification", |t| {
        t[seen..].contains("payment confirmed")
    })
    .await;
    let live = &text[seen..];
    let event = live
        .split("\n\n")
        .find(|e| e.contains("payment confirmed"))
        .unwrap();
    let lines: Vec<&str> = event.lines().collect();
    assert_eq!(lines[0], "event: datastar-merge-fragments");
    assert!(
        lines[1].starts_with("id: ") && lines[1][4..].parse::<i64>().is_ok(),
        "{event}"
    );
    assert_eq!(lines[2], "data: selector #notification-list");
    assert_eq!(lines[3], "data: mergeMode prepend");
    assert!(lines[4].starts_with("data: fragments <li id=\"notification-"));
    read_until(&mut resp, &mut text, "the workflow pane", |t| {
        t[seen..].contains("data-status=\"awaiting_approval\"")
    })
    .await;

    // Another user's stream never sees erin's notifications; a bad page id is 400.
    let frank = Browser::signed_in("frank").await;
    let bad = frank
        .request(reqwest::Method::GET, "/ui/stream")
        .query(&[("datastar", json!({"page": "bad page"}).to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let mut other = frank
        .request(reqwest::Method::GET, "/ui/stream")
        .query(&[("datastar", signals("p-frank").to_string())])
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    let mut frank_text = String::new();
    read_until(&mut other, &mut frank_text, "frank's panes", |t| {
        t.contains("id=\"workflow-meta\"")
    })
    .await;
    assert!(!frank_text.contains(&order_id));
    assert!(frank_text.contains("No notifications yet."));
    eventually("erin's order to settle", || async {
        let api = common::Api::new(&app().await.config);
        let (_, order) = api.order("erin", &order_id).await;
        (order["status"] == "awaiting_approval").then_some(())
    })
    .await;
}
