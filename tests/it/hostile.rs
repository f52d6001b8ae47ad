//! Hostile input, table-driven: wrong types, missing and extra fields, huge and negative
//! and fractional numbers, huge and deeply nested bodies, invalid UTF-8, encoded
//! separators and traversal in ids, SQL metacharacters, very long ids, forged and
//! expired credentials, duplicate and out-of-order callbacks, a callback carrying
//! another order's amount, foreign hosts and origins — against every route of the API
//! and every action of the page. Each case must get its 4xx error JSON; afterwards
//! the database and Restate's state are exactly what they were, and the app's log
//! holds no panic.

use crate::common;

use std::fmt::Write as _;

use common::{Api, AppConfig, TestApp, eventually};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "admin";

/// Who a case claims to be.
#[derive(Clone)]
enum Auth {
    None,
    User(&'static str),
    /// An `Authorization` header as given.
    Header(String),
    /// A payment callback signed as the gateway signs it.
    Gateway,
    /// A payment callback with this signature header.
    Signature(String),
}

struct Case {
    name: String,
    method: Method,
    path: String,
    auth: Auth,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    want: u16,
}

impl Case {
    fn new(name: &str, method: Method, path: &str, auth: Auth, body: Vec<u8>, want: u16) -> Case {
        Case {
            name: name.to_owned(),
            method,
            path: path.to_owned(),
            auth,
            headers: Vec::new(),
            body,
            want,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }
}

fn post(name: &str, path: &str, auth: Auth, body: Value, want: u16) -> Case {
    Case::new(
        name,
        Method::POST,
        path,
        auth,
        body.to_string().into_bytes(),
        want,
    )
}

fn raw(name: &str, path: &str, auth: Auth, body: impl Into<Vec<u8>>, want: u16) -> Case {
    Case::new(name, Method::POST, path, auth, body.into(), want)
}

fn get(name: &str, path: &str, auth: Auth, want: u16) -> Case {
    Case::new(name, Method::GET, path, auth, Vec::new(), want)
}

use Auth::User;

/// The orders the battery aims at, set up before it.
struct Scene {
    /// Paid, waiting for approval.
    bob_paid: String,
    bob_awakeable: String,
    /// Waiting for payment.
    carol_pending: String,
    carol_awakeable: String,
    carol_total: i64,
    /// Delivered.
    dave_done: String,
}

fn cases(api: &Api, s: &Scene) -> Vec<Case> {
    let add = "/api/cart/add";
    let long = "x".repeat(10_000);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut c = vec![
        // The cart: shapes, types, numbers, ids.
        raw("add: not JSON", add, User("alice"), "{", 400),
        post(
            "add: empty idempotency key",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 1}),
            400,
        )
        .header("idempotency-key", ""),
        post(
            "add: idempotency key with a tab",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 1}),
            400,
        )
        .header("idempotency-key", "a\tb"),
        post(
            "remove: long idempotency key",
            "/api/cart/remove",
            User("alice"),
            json!({"product_id": "P001"}),
            400,
        )
        .header("idempotency-key", "k".repeat(129)),
        raw("add: empty body", add, User("alice"), "", 400),
        raw("add: an array", add, User("alice"), "[]", 400),
        post(
            "add: id an object",
            add,
            User("alice"),
            json!({"product_id": {}, "quantity": 1}),
            400,
        ),
        post(
            "add: id a bool",
            add,
            User("alice"),
            json!({"product_id": true, "quantity": 1}),
            400,
        ),
        post(
            "add: qty a string",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": "2"}),
            400,
        ),
        post(
            "add: qty fractional",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 2.5}),
            400,
        ),
        post(
            "add: qty negative",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": -1}),
            400,
        ),
        post(
            "add: qty zero",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 0}),
            400,
        ),
        raw(
            "add: qty 1e300",
            add,
            User("alice"),
            r#"{"product_id":"P001","quantity":1e300}"#,
            400,
        ),
        raw(
            "add: qty 2^63",
            add,
            User("alice"),
            r#"{"product_id":"P001","quantity":9223372036854775808}"#,
            400,
        ),
        post(
            "add: qty huge",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 100_000_000}),
            400,
        ),
        post(
            "add: no quantity",
            add,
            User("alice"),
            json!({"product_id": "P001"}),
            400,
        ),
        post(
            "add: no product",
            add,
            User("alice"),
            json!({"quantity": 1}),
            400,
        ),
        post(
            "add: extra field",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 1, "price": 0}),
            400,
        ),
        post(
            "add: unknown product",
            add,
            User("alice"),
            json!({"product_id": "P999", "quantity": 1}),
            404,
        ),
        post(
            "add: SQL in id",
            add,
            User("alice"),
            json!({"product_id": "P001' OR '1'='1", "quantity": 1}),
            400,
        ),
        post(
            "add: traversal id",
            add,
            User("alice"),
            json!({"product_id": "../P001", "quantity": 1}),
            400,
        ),
        post(
            "add: long id",
            add,
            User("alice"),
            json!({"product_id": long, "quantity": 1}),
            400,
        ),
        post(
            "add: NUL in id",
            add,
            User("alice"),
            json!({"product_id": "P0\u{0}01", "quantity": 1}),
            400,
        ),
        post(
            "add: CRLF in id",
            add,
            User("alice"),
            json!({"product_id": "P001\r\nX: y", "quantity": 1}),
            400,
        ),
        raw(
            "add: nested 10000 deep",
            add,
            User("alice"),
            nested.clone(),
            400,
        ),
        raw(
            "add: 100 KB body",
            add,
            User("alice"),
            format!(r#"{{"product_id":"{}","quantity":1}}"#, "P".repeat(100_000)),
            413,
        ),
        raw(
            "add: invalid UTF-8",
            add,
            User("alice"),
            b"{\"product_id\":\"P0\xff1\",\"quantity\":1}".to_vec(),
            400,
        ),
        post(
            "add: nobody",
            add,
            Auth::None,
            json!({"product_id": "P001", "quantity": 1}),
            401,
        ),
        post(
            "add: garbage token",
            add,
            Auth::Header("Bearer abc.def".into()),
            json!({"product_id": "P001", "quantity": 1}),
            401,
        ),
        post(
            "add: expired token",
            add,
            Auth::Header(format!("Bearer {}", api.token_until("alice", 1_000))),
            json!({"product_id": "P001", "quantity": 1}),
            401,
        ),
        post(
            "add: token of nobody",
            add,
            Auth::Header(format!("Bearer {}", api.token("zed"))),
            json!({"product_id": "P001", "quantity": 1}),
            401,
        ),
        post(
            "add: basic auth",
            add,
            Auth::Header("Basic YWxpY2U6eA==".into()),
            json!({"product_id": "P001", "quantity": 1}),
            401,
        ),
        post(
            "add: X-User-ID outside demo mode",
            add,
            Auth::None,
            json!({"product_id": "P001", "quantity": 1}),
            401,
        )
        .header("x-user-id", "alice"),
        post(
            "remove: wrong type",
            "/api/cart/remove",
            User("alice"),
            json!({"product_id": [1]}),
            400,
        ),
        post(
            "remove: extra field",
            "/api/cart/remove",
            User("alice"),
            json!({"product_id": "P001", "all": true}),
            400,
        ),
        post(
            "remove: SQL in id",
            "/api/cart/remove",
            User("alice"),
            json!({"product_id": "1; DELETE FROM products"}),
            400,
        ),
    ];

    // Checkout.
    let checkout = |name: &str, user: &'static str, body: Value, want: u16| {
        post(name, "/api/checkout", User(user), body, want)
    };
    let addr = "1 Test Street";
    c.extend([
        checkout(
            "checkout: slash in id",
            "alice",
            json!({"order_id": "a/b", "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: traversal id",
            "alice",
            json!({"order_id": "../x", "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: encoded dots",
            "alice",
            json!({"order_id": "%2e%2e", "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: long id",
            "alice",
            json!({"order_id": "o".repeat(300), "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: space in id",
            "alice",
            json!({"order_id": "a b", "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: SQL id",
            "alice",
            json!({"order_id": "x'; DROP TABLE orders;--", "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: id a number",
            "alice",
            json!({"order_id": 5, "shipping_address": addr}),
            400,
        ),
        checkout(
            "checkout: no address",
            "alice",
            json!({"order_id": "h-x1"}),
            400,
        ),
        checkout(
            "checkout: long address",
            "alice",
            json!({"order_id": "h-x2", "shipping_address": long}),
            400,
        ),
        checkout(
            "checkout: bell in address",
            "alice",
            json!({"order_id": "h-x3", "shipping_address": "1 Street\u{7}"}),
            400,
        ),
        checkout(
            "checkout: blank address",
            "alice",
            json!({"order_id": "h-x4", "shipping_address": "  "}),
            400,
        ),
        checkout(
            "checkout: extra field",
            "alice",
            json!({"order_id": "h-x5", "shipping_address": addr, "total_cents": 1}),
            400,
        ),
        checkout(
            "checkout: long idempotency key",
            "alice",
            json!({"shipping_address": addr}),
            400,
        )
        .header("idempotency-key", "k".repeat(200)),
        checkout(
            "checkout: another user's order id",
            "alice",
            json!({"order_id": s.bob_paid, "shipping_address": addr}),
            409,
        ),
        checkout(
            "checkout: while one waits for payment",
            "carol",
            json!({"order_id": "h-carol-2", "shipping_address": addr}),
            409,
        ),
        checkout(
            "checkout: empty cart",
            "erin",
            json!({"order_id": "h-erin-1", "shipping_address": addr}),
            409,
        ),
    ]);

    // Payment callbacks.
    let cb = "/api/payment/callback";
    let pay = |awakeable: &str, amount: i64| json!({"awakeable_id": awakeable, "transaction_id": "txn-h", "amount": amount, "status": "success"});
    let carol = pay(&s.carol_awakeable, s.carol_total);
    let body = carol.to_string();
    let stale = api.signature_at(&body, shopflow::auth::unix_now() - 3600);
    let other = api.signature(&json!({"x": 1}).to_string());
    c.extend([
        post("callback: unsigned", cb, Auth::None, carol.clone(), 401),
        post("callback: bad signature", cb, Auth::Signature("t=1,v1=00".into()), carol.clone(), 401),
        post("callback: stale signature", cb, Auth::Signature(stale), carol.clone(), 401),
        post("callback: another body's signature", cb, Auth::Signature(other), carol.clone(), 401),
        post("callback: another order's amount", cb, Auth::Gateway, pay(&s.carol_awakeable, s.carol_total + 1), 400),
        post("callback: negative amount", cb, Auth::Gateway, pay(&s.carol_awakeable, -s.carol_total), 400),
        post("callback: amount a string", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "transaction_id": "t", "amount": "1", "status": "success"}), 400),
        raw("callback: amount 1e20", cb, Auth::Gateway, format!(r#"{{"awakeable_id":"{}","transaction_id":"t","amount":1e20,"status":"success"}}"#, s.carol_awakeable), 400),
        post("callback: unknown awakeable", cb, Auth::Gateway, pay("sign_1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 100), 404),
        post("callback: long awakeable", cb, Auth::Gateway, pay(&"a".repeat(1000), 100), 400),
        post("callback: unknown status", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "transaction_id": "t", "amount": s.carol_total, "status": "maybe"}), 400),
        post("callback: paid without a transaction", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "amount": s.carol_total, "status": "success"}), 400),
        post("callback: long transaction id", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "transaction_id": long, "amount": s.carol_total, "status": "success"}), 400),
        post("callback: extra field", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "transaction_id": "t", "amount": s.carol_total, "status": "success", "fee": 1}), 400),
        post("callback: control chars in reason", cb, Auth::Gateway, json!({"awakeable_id": s.carol_awakeable, "amount": 0, "status": "failed", "reason": "no\r<script>"}), 400),
        post("callback: a settled payment again", cb, Auth::Gateway, json!({"awakeable_id": s.bob_awakeable, "transaction_id": "txn-other", "amount": 1, "status": "success"}), 409),
        post("callback: a decline after the payment", cb, Auth::Gateway, json!({"awakeable_id": s.bob_awakeable, "amount": 0, "status": "failed", "reason": "late"}), 409),
    ]);

    // Decisions.
    let approve = |id: &str| format!("/api/workflow/{id}/approve");
    let reject = format!("/api/workflow/{}/reject", s.bob_paid);
    c.extend([
        raw(
            "approve: unknown order",
            &approve("h-none"),
            User(ADMIN),
            "",
            404,
        ),
        raw(
            "approve: encoded traversal",
            &approve("..%2F..%2Fetc%2Fpasswd"),
            User(ADMIN),
            "",
            400,
        ),
        raw(
            "approve: encoded NUL",
            &approve("a%00b"),
            User(ADMIN),
            "",
            400,
        ),
        raw(
            "approve: long id",
            &approve(&"o".repeat(300)),
            User(ADMIN),
            "",
            400,
        ),
        raw(
            "approve: by a customer",
            &approve(&s.bob_paid),
            User("alice"),
            "",
            403,
        ),
        raw(
            "approve: by its own customer",
            &approve(&s.bob_paid),
            User("bob"),
            "",
            403,
        ),
        raw(
            "approve: not paid yet",
            &approve(&s.carol_pending),
            User(ADMIN),
            "",
            409,
        ),
        raw(
            "approve: delivered",
            &approve(&s.dave_done),
            User(ADMIN),
            "",
            409,
        ),
        post(
            "reject: long reason",
            &reject,
            User(ADMIN),
            json!({"reason": long}),
            400,
        ),
        post(
            "reject: CR in reason",
            &reject,
            User(ADMIN),
            json!({"reason": "no\rway"}),
            400,
        ),
        post(
            "reject: reason a number",
            &reject,
            User(ADMIN),
            json!({"reason": 5}),
            400,
        ),
        post(
            "reject: extra field",
            &reject,
            User(ADMIN),
            json!({"reason": "x", "refund": false}),
            400,
        ),
        raw("reject: not JSON", &reject, User(ADMIN), "reason=x", 400),
    ]);

    // Orders.
    let order = |id: &str| format!("/api/orders/{id}");
    c.extend([
        get(
            "order: someone else's",
            &order(&s.bob_paid),
            User("alice"),
            404,
        ),
        get("order: encoded NUL", &order("%00"), User("alice"), 400),
        get(
            "order: long id",
            &order(&"o".repeat(300)),
            User("alice"),
            400,
        ),
        get("order: SQL", &order("x'%20OR%20'1'='1"), User("alice"), 400),
        get("order: encoded slash", &order("a%2Fb"), User("alice"), 400),
        get(
            "journal: someone else's",
            &format!("/api/orders/{}/journal", s.bob_paid),
            User("alice"),
            404,
        ),
        post(
            "cancel: someone else's",
            &format!("/api/orders/{}/cancel", s.bob_paid),
            User("alice"),
            json!({}),
            404,
        ),
        post(
            "cancel: delivered",
            &format!("/api/orders/{}/cancel", s.dave_done),
            User("dave"),
            json!({}),
            409,
        ),
        post(
            "cancel: ESC in reason",
            &format!("/api/orders/{}/cancel", s.bob_paid),
            User("bob"),
            json!({"reason": "\u{1b}[31m"}),
            400,
        ),
        post(
            "cancel: reason an array",
            &format!("/api/orders/{}/cancel", s.bob_paid),
            User("bob"),
            json!({"reason": ["a"]}),
            400,
        ),
        get(
            "admin orders: a customer",
            "/api/admin/orders",
            User("alice"),
            403,
        ),
        get(
            "admin orders: unknown status",
            "/api/admin/orders?status=bogus",
            User(ADMIN),
            400,
        ),
        get(
            "admin orders: limit negative",
            "/api/admin/orders?limit=-1",
            User(ADMIN),
            400,
        ),
        get("orders: nobody", "/api/orders", Auth::None, 401),
    ]);

    // Sign-in and drills.
    c.extend([
        post(
            "session: no password set",
            "/api/session",
            Auth::None,
            json!({"username": "alice", "password": "x"}),
            401,
        ),
        post(
            "session: unknown user",
            "/api/session",
            Auth::None,
            json!({"username": "zed", "password": "x"}),
            401,
        ),
        post(
            "session: wrong types",
            "/api/session",
            Auth::None,
            json!({"username": 1, "password": null}),
            400,
        ),
        post(
            "session: extra field",
            "/api/session",
            Auth::None,
            json!({"username": "alice", "password": "x", "admin": true}),
            400,
        ),
        post(
            "session: 70 KB password",
            "/api/session",
            Auth::None,
            json!({"username": "alice", "password": "p".repeat(70_000)}),
            413,
        ),
        post(
            "drill: by a customer",
            "/api/admin/drills/crash",
            User("alice"),
            json!({"target": "services"}),
            403,
        ),
        post(
            "drill: unknown target",
            "/api/admin/drills/crash",
            User(ADMIN),
            json!({"target": "kernel"}),
            400,
        ),
        post(
            "drill: unknown carrier mode",
            "/api/admin/drills/carrier",
            User(ADMIN),
            json!({"mode": "lost", "orders": 1}),
            400,
        ),
        post(
            "drill: negative orders",
            "/api/admin/drills/carrier",
            User(ADMIN),
            json!({"mode": "fail", "orders": -5}),
            400,
        ),
        post(
            "drill: a billion orders",
            "/api/admin/drills/carrier",
            User(ADMIN),
            json!({"mode": "fail", "orders": 1_000_000_000}),
            400,
        ),
    ]);

    // The page's actions (datastar signals in the body) and streams.
    let signals = |extra: Value| {
        let mut s = json!({"page": "hostile-page"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    c.extend([
        raw(
            "ui add: no signals",
            "/ui/cart/add/P001",
            User("alice"),
            "",
            400,
        ),
        post(
            "ui add: bad page id",
            "/ui/cart/add/P001",
            User("alice"),
            json!({"page": "../x"}),
            400,
        ),
        post(
            "ui add: unknown product",
            "/ui/cart/add/P999",
            User("alice"),
            signals(json!({})),
            404,
        ),
        post(
            "ui add: traversal product",
            "/ui/cart/add/..%2F..%2Fx",
            User("alice"),
            signals(json!({})),
            400,
        ),
        raw(
            "ui add: invalid UTF-8",
            "/ui/cart/add/P001",
            User("alice"),
            b"{\"page\":\"hostile-page\",\"view\":\"\xff\"}".to_vec(),
            400,
        ),
        post(
            "ui add: nobody",
            "/ui/cart/add/P001",
            Auth::None,
            signals(json!({})),
            401,
        ),
        post(
            "ui checkout: control chars",
            "/ui/checkout",
            User("alice"),
            signals(json!({"address": "1 St\u{0}"})),
            400,
        ),
        post(
            "ui checkout: signals not an object",
            "/ui/checkout",
            User("alice"),
            json!("page"),
            400,
        ),
        post(
            "ui approve: a customer",
            &format!("/ui/approve/{}", s.bob_paid),
            User("alice"),
            signals(json!({})),
            403,
        ),
        post(
            "ui pay: someone else's",
            &format!("/ui/pay/{}", s.carol_pending),
            User("alice"),
            signals(json!({})),
            404,
        ),
        post(
            "ui decline: CR in reason",
            &format!("/ui/decline/{}", s.carol_pending),
            User("carol"),
            signals(json!({"declineReason": "a\rb"})),
            400,
        ),
        post(
            "ui reject: a customer",
            &format!("/ui/reject/{}", s.bob_paid),
            User("bob"),
            signals(json!({})),
            403,
        ),
        post(
            "ui cancel: someone else's",
            &format!("/ui/cancel/{}", s.bob_paid),
            User("alice"),
            signals(json!({})),
            404,
        ),
        post(
            "ui crash: a customer",
            "/ui/admin/crash",
            User("alice"),
            signals(json!({})),
            403,
        ),
        post(
            "ui carrier: a customer",
            "/ui/admin/carrier",
            User("alice"),
            signals(json!({"carrierMode": "fail", "carrierOrders": 1})),
            403,
        ),
        get(
            "ui view: unknown",
            &format!(
                "/ui/view/bogus?datastar={}",
                urlencode(&signals(json!({})).to_string())
            ),
            User("alice"),
            404,
        ),
        get(
            "ui order: someone else's",
            &format!(
                "/ui/order/{}?datastar={}",
                s.bob_paid,
                urlencode(&signals(json!({})).to_string())
            ),
            User("alice"),
            404,
        ),
        get("ui stream: no signals", "/ui/stream", User("alice"), 400),
        get(
            "stream: someone else's order",
            &format!("/stream/workflow/{}", s.bob_paid),
            User("alice"),
            404,
        ),
        get(
            "stream: encoded traversal",
            "/stream/workflow/..%2F..%2Fx",
            User("alice"),
            400,
        ),
        get("stream: nobody", "/stream/notifications", Auth::None, 401),
    ]);

    // Hosts, origins, methods, paths.
    c.extend([
        get(
            "a foreign host (DNS rebinding)",
            "/api/products",
            Auth::None,
            400,
        )
        .header("host", "evil.example"),
        post(
            "a foreign origin",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 1}),
            403,
        )
        .header("origin", "http://evil.example"),
        post(
            "a cross-site fetch",
            add,
            User("alice"),
            json!({"product_id": "P001", "quantity": 1}),
            403,
        )
        .header("sec-fetch-site", "cross-site"),
        Case::new(
            "DELETE on the cart",
            Method::DELETE,
            "/api/cart",
            User("alice"),
            Vec::new(),
            405,
        ),
        Case::new(
            "PUT on checkout",
            Method::PUT,
            "/api/checkout",
            User("alice"),
            Vec::new(),
            405,
        ),
        get("an unknown route", "/api/nothing", Auth::None, 404),
        get(
            "a static traversal",
            "/static/..%2F..%2FCargo.toml",
            Auth::None,
            404,
        ),
        get(
            "a product by SQL",
            "/api/products/1%20OR%201=1",
            Auth::None,
            400,
        ),
        get(
            "a product by a long id",
            &format!("/api/products/{}", "P".repeat(5000)),
            Auth::None,
            400,
        ),
    ]);
    c
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

async fn send(api: &Api, case: &Case) -> (u16, Value) {
    let mut req = api.request(case.method.clone(), &case.path);
    let body = String::from_utf8_lossy(&case.body).into_owned();
    req = match &case.auth {
        Auth::None => req,
        Auth::User(user) => req.bearer_auth(api.token(user)),
        Auth::Header(value) => req.header("authorization", value),
        Auth::Gateway => req.header("x-payment-signature", api.signature(&body)),
        Auth::Signature(sig) => req.header("x-payment-signature", sig),
    };
    for (name, value) in &case.headers {
        req = req.header(*name, value);
    }
    if case.method != Method::GET {
        req = req
            .header("content-type", "application/json")
            .body(case.body.clone());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Everything the app keeps: every table of its database, row by row, and every
/// key of Restate's state.
async fn snapshot(app: &TestApp) -> String {
    let pool = app.db().await;
    // The catalog queries and the quoting function differ between the engines.
    let postgres = app.config.database_url.starts_with("postgres");
    let (tables, columns, quote) = if postgres {
        (
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'
             ORDER BY table_name",
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = '{table}'
             ORDER BY ordinal_position",
            "quote_nullable(\"{c}\"::text)",
        )
    } else {
        (
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
            "SELECT name FROM pragma_table_info('{table}')",
            "quote(\"{c}\")",
        )
    };
    let tables: Vec<String> = sqlx::query_scalar(tables).fetch_all(&pool).await.unwrap();
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(&columns.replace("{table}", &table))
            .fetch_all(&pool)
            .await
            .unwrap();
        let row = columns
            .iter()
            .map(|c| quote.replace("{c}", c))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let mut rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\" ORDER BY 1"))
                .fetch_all(&pool)
                .await
                .unwrap();
        // A refused checkout took the user's checkout claim and gave it back: that
        // leaves a cache version behind (the web role's copy is reloaded), no state.
        rows.retain(|r| !(table == "cache_versions" && r.starts_with("'checkouts'")));
        writeln!(out, "{table}: {}", rows.join("\n  ")).unwrap();
    }
    pool.close().await;
    let state = app
        .restate_sql(
            "SELECT service_name, service_key, key, value_utf8 FROM state \
             ORDER BY service_name, service_key, key",
        )
        .await;
    for row in state {
        writeln!(out, "restate: {row}").unwrap();
    }
    out
}

/// Sets up the orders the cases aim at and waits until nothing moves any more.
async fn scene(app: &TestApp) -> Scene {
    let api = &app.api;
    let (bob_awakeable, total) = api.place_order("bob", "h-bob-paid", &[("P002", 1)]).await;
    assert_eq!(api.pay(&bob_awakeable, total).await.0, 200);
    api.wait_status("bob", "h-bob-paid", "awaiting_approval")
        .await;
    let (carol_awakeable, carol_total) = api
        .place_order("carol", "h-carol-pending", &[("P003", 1)])
        .await;
    let (dave_awakeable, total) = api.place_order("dave", "h-dave-done", &[("P004", 2)]).await;
    assert_eq!(api.pay(&dave_awakeable, total).await.0, 200);
    api.wait_status("dave", "h-dave-done", "awaiting_approval")
        .await;
    assert_eq!(api.approve(ADMIN, "h-dave-done").await.0, 200);
    api.wait_status("dave", "h-dave-done", "delivered").await;
    assert_eq!(api.add_to_cart("alice", json!("P001"), 2).await.0, 200);
    // Quiet: only the two that wait (carol's checkout, bob's workflow) still open.
    eventually("the scene to settle", || async {
        let open = app
            .restate_sql(
                "SELECT id FROM sys_invocation WHERE status <> 'completed' \
                 AND target NOT IN ('UserSession/carol/Checkout', 'OrderFulfillmentWorkflow/h-bob-paid/Run')",
            )
            .await;
        open.is_empty().then_some(())
    })
    .await;
    Scene {
        bob_paid: "h-bob-paid".into(),
        bob_awakeable,
        carol_pending: "h-carol-pending".into(),
        carol_awakeable,
        carol_total,
        dave_done: "h-dave-done".into(),
    }
}

#[tokio::test]
async fn hostile_input_gets_4xx_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config.extra_env = vec![("SHOPFLOW_DELIVERY_DELAY".into(), "200ms".into())];
    let log = dir.path().join("shopflow.log");
    config.log_file = Some(log.clone());
    let app = TestApp::start(config).await;
    let scene = scene(&app).await;
    let before = snapshot(&app).await;
    assert!(
        before.contains("restate: ") && before.contains("h-carol-pending"),
        "the snapshot holds both stores: {before}"
    );

    let cases = cases(&app.api, &scene);
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let started = std::time::Instant::now();
        let (status, body) = send(&app.api, case).await;
        if started.elapsed() > std::time::Duration::from_secs(1) {
            eprintln!("slow: {} took {:?}", case.name, started.elapsed());
        }
        let is_error = body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        if status != case.want || !is_error {
            wrong.push(format!(
                "{}: want {}, got {status} {body}",
                case.name, case.want
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );

    let after = snapshot(&app).await;
    if before != after {
        let diff: Vec<_> = after
            .lines()
            .filter(|l| !before.lines().any(|b| b == *l))
            .collect();
        panic!("the battery changed state:\n{}", diff.join("\n"));
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
    eprintln!(
        "hostile input: {} cases, all refused, nothing changed",
        cases.len()
    );
}
