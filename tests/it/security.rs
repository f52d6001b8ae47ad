//! Nobody acts as somebody else, against one shared ShopFlow as it runs by default
//! (no demo mode): forged and stale credentials, header identity, other users' things,
//! admin routes, unsigned callbacks, control characters in every free-text field,
//! foreign hosts, and Restate's private handlers. Every refusal is a 4xx error JSON
//! and changes nothing (the state is compared before and after).

use crate::common;

use std::time::{Duration, Instant};

use common::{Api, AppConfig, Reply, TestApp, assert_error, eventually};
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopflow::auth::{Purpose, Signer, unix_now};
use shopflow::domain::Username;
use tokio::sync::OnceCell;

const PASSWORD: &str = "correct horse battery";

/// One app per test binary, in the default (non-demo) mode, with users that have
/// passwords: `sam`, `pat`, `una` and `ola` (customers), `root`, `ivy` and `vic`
/// (admins).
async fn app() -> &'static TestApp {
    static APP: OnceCell<TestApp> = OnceCell::const_new();
    APP.get_or_init(|| async {
        let _ = std::fs::remove_dir_all(data_dir());
        let app = TestApp::start(AppConfig::new(&data_dir())).await;
        let users = [
            ("sam", None),
            ("root", Some("--admin")),
            ("pat", None),
            ("una", None),
            ("ivy", Some("--admin")),
            ("ola", None),
            ("vic", Some("--admin")),
        ];
        for (user, extra) in users {
            let mut args = vec!["user", "add", user];
            args.extend(extra);
            let (ok, out, err) = app.cli(&args, &format!("{PASSWORD}\n"));
            assert!(ok, "user add {user}: {out} {err}");
        }
        app
    })
    .await
}

async fn api() -> Api {
    Api::new(&app().await.config)
}

/// GET or POST `path` with exactly `headers` (and a JSON body for POST).
async fn call(method: Method, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let api = api().await;
    let mut req = api.request(method, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    api.send(req).await
}

/// A token from `POST /api/session`.
async fn sign_in(user: &str, password: &str) -> Reply {
    let body = json!({"username": user, "password": password}).to_string();
    call(Method::POST, "/api/session", &[], Some(&body)).await
}

async fn token_of(user: &str) -> String {
    let (status, body) = sign_in(user, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// The app's signing key, as `shopflow token` uses it.
fn signer() -> Signer {
    Signer::load_or_create(&data_dir()).unwrap()
}

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("security-app")
}

fn name(user: &str) -> Username {
    Username::parse(user).unwrap()
}

/// The user's cart as JSON, read with a valid token.
async fn cart_of(user: &str) -> Value {
    let (status, cart) = api().await.cart(user).await;
    assert_eq!(status, 200, "{cart}");
    cart
}

#[tokio::test]
async fn forged_expired_and_tampered_credentials_are_refused() {
    let token = token_of("sam").await;
    let bearer = |t: &str| format!("Bearer {t}");
    let (status, cart) = call(
        Method::GET,
        "/api/cart",
        &[("authorization", &bearer(&token))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(cart["user_id"], "sam");

    let now = unix_now();
    let key = signer();
    let stranger = Signer::new(b"a key this server has never seen!".to_vec());
    let last = token.len() - 1;
    let flipped = format!(
        "{}{}",
        &token[..last],
        if token.ends_with('0') { "1" } else { "0" }
    );
    let forged: Vec<(&str, String)> = vec![
        ("not a bearer token", "Basic c2FtOnB3".into()),
        ("empty bearer", "Bearer ".into()),
        ("garbage", bearer("garbage")),
        (
            "another user's name",
            bearer(&token.replacen("sam.", "root.", 1)),
        ),
        ("a longer life", bearer(&token.replacen(".1", ".9", 1))),
        ("a changed signature", bearer(&flipped)),
        ("no signature", bearer(token.rsplit_once('.').unwrap().0)),
        (
            "signed by another key",
            bearer(&stranger.issue(Purpose::ApiToken, &name("sam"), "", now + 60)),
        ),
        (
            "expired",
            bearer(&key.issue(Purpose::ApiToken, &name("alice"), "", now - 1)),
        ),
        (
            "a leading zero in the expiry",
            bearer(&token.replacen(".1", ".01", 1)),
        ),
        ("the signature in capitals", {
            let (head, tag) = token.rsplit_once('.').unwrap();
            bearer(&format!("{head}.{}", tag.to_uppercase()))
        }),
        (
            "the name in capitals",
            bearer(&token.replacen("sam.", "SAM.", 1)),
        ),
        // Sam has a password: a token without its stamp is not his.
        (
            "without the password's stamp",
            bearer(&key.issue(Purpose::ApiToken, &name("sam"), "", now + 60)),
        ),
        (
            "an unknown user",
            bearer(&key.issue(Purpose::ApiToken, &name("ghost"), "", now + 60)),
        ),
    ];
    let sams_cart = || async {
        call(
            Method::GET,
            "/api/cart",
            &[("authorization", &bearer(&token))],
            None,
        )
        .await
    };
    let before = sams_cart().await;
    for (what, header) in &forged {
        for (method, path, body) in [
            (Method::GET, "/api/cart", None),
            (
                Method::POST,
                "/api/cart/add",
                Some(r#"{"product_id":"P008","quantity":1}"#),
            ),
            (Method::GET, "/api/admin/orders", None),
        ] {
            let reply = call(method, path, &[("authorization", header)], body).await;
            assert_error(&reply, 401, "unauthorized");
            assert!(!reply.1.to_string().contains("sam"), "{what}: {}", reply.1);
        }
    }
    assert_eq!(sams_cart().await, before, "nothing changed");

    // The page's session cookie: a token is none, nor an id never issued, nor one in
    // another spelling.
    let alice = session_cookie("alice").await;
    let cookies = [
        format!("shopflow_session={token}"),
        format!("shopflow_session={}", shopflow::auth::session::new_id()),
        alice
            .to_uppercase()
            .replace("SHOPFLOW_SESSION=", "shopflow_session="),
        format!("{alice}0"),
        "shopflow_session=admin".to_owned(),
        "shopflow_session=".to_owned(),
    ];
    for cookie in &cookies {
        let reply = call(Method::GET, "/api/cart", &[("cookie", cookie)], None).await;
        assert_error(&reply, 401, "unauthorized");
    }
    // A session the server stored for alice (no password) works: it is the real thing.
    let (status, _) = call(Method::GET, "/api/cart", &[("cookie", &alice)], None).await;
    assert_eq!(status, 200);
    // And a session id is no bearer token.
    let id = alice.trim_start_matches("shopflow_session=");
    let reply = call(
        Method::GET,
        "/api/cart",
        &[("authorization", &bearer(id))],
        None,
    )
    .await;
    assert_error(&reply, 401, "unauthorized");

    // A new password ends every token issued before it.
    let pat = token_of("pat").await;
    let (status, _) = call(
        Method::GET,
        "/api/cart",
        &[("authorization", &bearer(&pat))],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (ok, out, err) = app()
        .await
        .cli(&["user", "set-password", "pat"], "a new good password\n");
    assert!(ok, "{out} {err}");
    // The web role holds users in memory and sees the change within one look at the
    // database (0.1 s); a second is plenty, even on a loaded machine.
    let changed = std::time::Instant::now();
    let refused = eventually("the old token to be refused", || async {
        let reply = call(
            Method::GET,
            "/api/cart",
            &[("authorization", &bearer(&pat))],
            None,
        )
        .await;
        (reply.0 != 200).then_some(reply)
    })
    .await;
    assert!(changed.elapsed() < std::time::Duration::from_secs(1));
    assert_error(&refused, 401, "unauthorized");
    assert_error(&sign_in("pat", PASSWORD).await, 401, "unauthorized");
    assert_eq!(sign_in("pat", "a new good password").await.0, 200);
}

#[tokio::test]
async fn header_identity_is_refused_unless_in_demo_mode() {
    let before = cart_of("alice").await;
    for (method, path, body) in [
        (Method::GET, "/api/cart", None),
        (
            Method::POST,
            "/api/cart/add",
            Some(r#"{"product_id":"P008","quantity":1}"#),
        ),
        (Method::GET, "/api/admin/orders?status=delivered", None),
        (Method::POST, "/api/workflow/any/approve", None),
        (
            Method::POST,
            "/api/checkout",
            Some(r#"{"shipping_address":"x"}"#),
        ),
        (Method::GET, "/api/orders", None),
        (Method::GET, "/stream/notifications", None),
    ] {
        for user in ["admin", "alice"] {
            let reply = call(method.clone(), path, &[("x-user-id", user)], body).await;
            assert_error(&reply, 401, "unauthorized");
        }
    }
    assert_eq!(cart_of("alice").await, before);
    // The page offers a password form, not the picker, and says nothing of demo mode.
    let (status, page) = call(Method::GET, "/", &[], None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap().to_owned();
    assert!(page.contains("id=\"sign-in-password\"") && !page.contains("user-select"));
    assert!(!page.contains("demo mode"));
}

#[tokio::test]
async fn signing_in_needs_the_right_password_and_says_nothing_more() {
    assert_eq!(sign_in("sam", PASSWORD).await.0, 200);
    let expires = sign_in("sam", PASSWORD).await.1["expires_at"].clone();
    assert!(
        expires.as_str().is_some_and(|e| e.ends_with('Z')),
        "{expires}"
    );
    let wrong = sign_in("sam", "wrong password").await;
    assert_error(&wrong, 401, "unauthorized");
    // An unknown user and a user without a password get the very same answer.
    for (user, password) in [
        ("nobody", PASSWORD),
        ("alice", ""),
        ("alice", PASSWORD),
        ("../admin", PASSWORD),
    ] {
        let reply = sign_in(user, password).await;
        assert_eq!(reply, wrong, "{user}");
    }
    for body in [
        r#"["sam", "x"]"#,
        r#"{"username":"sam"}"#,
        "sam",
        r#"{"username":"sam","password":"x","admin":true}"#,
    ] {
        assert_error(
            &call(Method::POST, "/api/session", &[], Some(body)).await,
            400,
            "invalid_json",
        );
    }
    // A user name that keeps failing is slowed down, never locked out: after ten wrong
    // guesses (ivy is this test's alone) each guess waits, and the right password
    // still signs in.
    let mut took = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        assert_error(&sign_in("ivy", "guess").await, 401, "unauthorized");
        took = started.elapsed();
    }
    assert!(
        took >= Duration::from_millis(1900),
        "the tenth guess took {took:?}"
    );
    let started = Instant::now();
    let (status, body) = sign_in("ivy", PASSWORD).await;
    assert_eq!(
        status, 200,
        "the right password after ten wrong ones: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sign_in("sam", PASSWORD).await.0,
        200,
        "other users are unaffected"
    );
    // One user whatever the case: `SAM` signs in as sam, and cannot be added.
    let (status, body) = sign_in("SAM", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["token"].as_str().unwrap().starts_with("sam."),
        "{body}"
    );
    let (ok, out, err) = app()
        .await
        .cli(&["user", "add", "Sam"], "another password\n");
    assert!(!ok && err.contains("user sam exists"), "{out} {err}");
}

/// The page's sign-in form: the password decides, the cookie is strict and expires.
#[tokio::test]
async fn the_page_signs_in_with_a_password_only() {
    let api = api().await;
    let form = |body: &str, https: bool| {
        let mut req = api
            .request(Method::POST, "/ui/session")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if https {
            req = req.header("x-forwarded-proto", "https");
        }
        req
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for body in [
        "user=sam&password=nope",
        "user=alice",
        "user=alice&password=",
        "user=ghost&password=x",
    ] {
        let resp = client
            .execute(form(body, false).build().unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{body}");
        assert_eq!(resp.headers()["location"], "/?signin=failed", "{body}");
        assert!(resp.headers().get("set-cookie").is_none(), "{body}");
    }
    let resp = client
        .execute(
            form(
                &format!("user=sam&password={}", PASSWORD.replace(' ', "+")),
                true,
            )
            .build()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Max-Age=604800",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
    assert!(cookie.starts_with("__Host-shopflow_session="), "{cookie}");
    let value = cookie.split(';').next().unwrap().to_owned();
    let https = [("cookie", value.as_str()), ("x-forwarded-proto", "https")];
    let (status, cart) = call(Method::GET, "/api/cart", &https, None).await;
    assert_eq!(
        (status.as_u16(), cart["user_id"].as_str()),
        (200, Some("sam"))
    );
    // Behind https the cookie counts only under its `__Host-` name.
    let plain = value.replace("__Host-", "");
    let reply = call(
        Method::GET,
        "/api/cart",
        &[("cookie", &plain), ("x-forwarded-proto", "https")],
        None,
    )
    .await;
    assert_error(&reply, 401, "unauthorized");

    let out = client
        .execute(
            api.request(Method::POST, "/ui/sign-out")
                .header("cookie", &value)
                .header("x-forwarded-proto", "https")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("__Host-shopflow_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _) = call(Method::GET, "/api/cart", &https, None).await;
    assert_eq!(status, 401, "signed out on the server");
    let (status, page) = call(Method::GET, "/?signin=failed", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        page.as_str()
            .unwrap()
            .contains("Wrong user name or password.")
    );
}

/// An order of `user` that waits for approval, paid through the signed callback.
async fn order_awaiting_approval(user: &str, id: &str) -> (String, i64) {
    let api = api().await;
    let (awakeable, total) = api.place_order(user, id, &[("P008", 1)]).await;
    let (status, body) = api.pay(&awakeable, total).await;
    assert_eq!(status, 200, "{body}");
    api.wait_status(user, id, "awaiting_approval").await;
    (awakeable, total)
}

/// The page's signals for a datastar action.
fn signals() -> Value {
    json!({"page": "p-security", "qty": {}, "address": "", "declineReason": "", "rejectReason": ""})
}

/// A datastar action as `cookie`'s user, from the page's own origin.
async fn action(method: Method, path: &str, cookie: &str, signals: &Value) -> Reply {
    let api = api().await;
    let addr = app().await.config.http;
    let mut req = api
        .request(method.clone(), path)
        .header("cookie", cookie)
        .header("datastar-request", "true")
        .header("origin", format!("http://{addr}"))
        .header("sec-fetch-site", "same-origin");
    req = if method == Method::GET {
        req.query(&[("datastar", signals.to_string())])
    } else {
        req.header("content-type", "application/json")
            .body(signals.to_string())
    };
    api.send(req).await
}

async fn session_cookie(user: &str) -> String {
    app().await.session_cookie(user).await
}

#[tokio::test]
async fn customers_are_refused_on_every_admin_route() {
    let id = "sec-admin-only";
    order_awaiting_approval("bob", id).await;
    let api = api().await;
    let customer = session_cookie("bob").await;
    let token = format!("Bearer {}", api.token("bob"));
    for (method, path, body) in [
        (Method::GET, "/api/admin/orders".to_owned(), None),
        (
            Method::GET,
            "/api/admin/orders?status=delivered".to_owned(),
            None,
        ),
        (Method::POST, format!("/api/workflow/{id}/approve"), None),
        (
            Method::POST,
            format!("/api/workflow/{id}/reject"),
            Some(r#"{"reason":"x"}"#),
        ),
    ] {
        let reply = call(method, &path, &[("authorization", &token)], body).await;
        assert_error(&reply, 403, "forbidden");
    }
    for (method, path) in [
        (Method::GET, "/ui/view/admin".to_owned()),
        (Method::POST, format!("/ui/approve/{id}")),
        (Method::POST, format!("/ui/reject/{id}")),
        (Method::POST, "/ui/admin/crash".to_owned()),
    ] {
        let reply = action(method, &path, &customer, &signals()).await;
        assert_error(&reply, 403, "forbidden");
    }
    let (_, order) = api.order("bob", id).await;
    assert_eq!(order["status"], "awaiting_approval", "nothing was decided");
    assert_eq!(app().await.workflow_runs(id).await, 1);
    // The admin still can.
    assert_eq!(api.approve("admin", id).await.0, 200);
}

#[tokio::test]
async fn another_users_order_cart_stream_and_gateway_are_out_of_reach() {
    let api = api().await;
    let id = "sec-carols";
    let (awakeable, _) = api.place_order("carol", id, &[("P008", 2)]).await;
    let dave = session_cookie("dave").await;
    let dave_token = format!("Bearer {}", api.token("dave"));
    for path in [
        format!("/api/orders/{id}"),
        format!("/stream/workflow/{id}"),
    ] {
        let reply = call(Method::GET, &path, &[("authorization", &dave_token)], None).await;
        assert_error(&reply, 404, "unknown_order");
    }
    for (method, path) in [
        (Method::GET, format!("/ui/order/{id}")),
        (Method::POST, format!("/ui/pay/{id}")),
        (Method::POST, format!("/ui/decline/{id}")),
    ] {
        let reply = action(method, &path, &dave, &signals()).await;
        assert_error(&reply, 404, "unknown_order");
    }
    // The admin may read it, but pays for nobody.
    let admin = session_cookie("admin").await;
    let reply = action(Method::POST, &format!("/ui/pay/{id}"), &admin, &signals()).await;
    assert_error(&reply, 403, "not_your_order");
    // Carts are keyed by the signed-in user; there is no way to name another.
    let reply = call(
        Method::GET,
        "/api/cart?user=carol",
        &[("authorization", &dave_token)],
        None,
    )
    .await;
    assert_error(&reply, 400, "unknown_parameter");
    // Dave's notification stream carries nothing of carol's.
    let mut stream = api.stream("/stream/notifications", "dave", None).await;
    let chunk =
        tokio::time::timeout(std::time::Duration::from_millis(500), stream.next_chunk()).await;
    if let Ok(Some(text)) = chunk {
        assert!(!text.contains(id), "{text}");
    }
    let (_, order) = api.order("carol", id).await;
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["payment"]["awakeable_id"], awakeable.as_str());
}

#[tokio::test]
async fn callbacks_must_be_signed_fresh_and_untampered() {
    let api = api().await;
    let id = "sec-callback";
    let (awakeable, total) = api.place_order("erin", id, &[("P008", 1)]).await;
    let body = json!({"awakeable_id": awakeable, "transaction_id": "txn-sec", "amount": total, "status": "success"});
    let text = body.to_string();
    let secret = app()
        .await
        .config
        .shopflow_config()
        .webhook_secret()
        .unwrap();
    let sign = |t: i64, body: &str| shopflow::app::payments::sign(&secret, t, body.as_bytes());
    let now = unix_now();
    let other_body = text.replace("txn-sec", "txn-other");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("unsigned", None),
        (
            "another secret",
            Some(shopflow::app::payments::sign(
                "whsec_guess",
                now,
                text.as_bytes(),
            )),
        ),
        // Well beyond the tolerance: the server's clock may be seconds past `now`.
        ("stale", Some(sign(now - 330, &text))),
        ("future-dated", Some(sign(now + 330, &text))),
        ("for another body", Some(sign(now, &other_body))),
        ("the oldest time there is", Some(sign(i64::MIN, &text))),
        ("the latest time there is", Some(sign(i64::MAX, &text))),
        (
            "no timestamp",
            Some(sign(now, &text).split_once(',').unwrap().1.to_owned()),
        ),
        ("no signature", Some(format!("t={now}"))),
        ("malformed", Some("t=now,v1=zz".to_owned())),
    ];
    for (what, signature) in &bad {
        let reply = api.callback_signed(&body, signature.as_deref()).await;
        assert_error(&reply, 401, "invalid_signature");
        let (_, order) = api.order("erin", id).await;
        assert_eq!(
            order["status"], "awaiting_payment",
            "{what} changed the order"
        );
    }
    assert_eq!(api.callback(&body).await.0, 200);
    api.wait_status("erin", id, "awaiting_approval").await;
    // The same signed callback again changes nothing.
    assert_error(&api.callback(&body).await, 409, "payment_settled");
}

/// Every character that a line-based format or a reader trips over, and the invisible
/// ones that hide what a text says.
const HOSTILE: [char; 14] = [
    '\r', '\n', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}', '\u{b}', '\u{200b}',
    '\u{200e}', '\u{200f}', '\u{061c}', '\u{feff}',
];

#[tokio::test]
async fn control_characters_are_refused_in_every_free_text_field() {
    let api = api().await;
    let app = app().await;
    // An order waiting for payment, one waiting for approval, a cart with a line.
    let (awakeable, _) = api
        .place_order("frank", "sec-text-pay", &[("P008", 1)])
        .await;
    order_awaiting_approval("grace", "sec-text-approve").await;
    let (status, _) = api.add_to_cart("heidi", json!("P008"), 1).await;
    assert_eq!(status, 200);
    // This test's users only: the other tests share the app and place orders meanwhile.
    let count_orders = "SELECT COUNT(*) FROM orders \
         WHERE user_id IN ('frank', 'grace', 'heidi') AND order_id LIKE $1";
    let orders_before = app.db_count(count_orders, "%").await;
    let frank = session_cookie("frank").await;
    let admin = session_cookie("admin").await;
    for c in HOSTILE {
        let text = format!("1 Main{c}Street");
        if c != '\n' {
            let body = json!({"shipping_address": text});
            assert_error(
                &api.checkout("heidi", &body, None).await,
                400,
                "invalid_shipping_address",
            );
            let mut s = signals();
            s["address"] = json!(text);
            assert_error(
                &action(Method::POST, "/ui/checkout", &frank, &s).await,
                400,
                "invalid_text",
            );
        }
        let reason = format!("card{c}expired");
        assert_error(
            &api.reject("admin", "sec-text-approve", Some(&reason)).await,
            400,
            "invalid_reason",
        );
        assert_error(
            &api.decline(&awakeable, &reason).await,
            400,
            "invalid_reason",
        );
        let txn = json!({"awakeable_id": awakeable, "transaction_id": format!("t{c}1"), "amount": 0, "status": "failed"});
        assert_error(&api.callback(&txn).await, 400, "invalid_transaction_id");
        for (field, path, cookie) in [
            ("declineReason", "/ui/decline/sec-text-pay", &frank),
            ("rejectReason", "/ui/reject/sec-text-approve", &admin),
        ] {
            let mut s = signals();
            s[field] = json!(reason);
            assert_error(
                &action(Method::POST, path, cookie, &s).await,
                400,
                "invalid_text",
            );
        }
    }
    assert_eq!(
        api.order("frank", "sec-text-pay").await.1["status"],
        "awaiting_payment"
    );
    assert_eq!(
        api.order("grace", "sec-text-approve").await.1["status"],
        "awaiting_approval"
    );
    assert_eq!(api.cart_lines("heidi").await, [("P008".to_owned(), 1)]);
    let orders_after = app.db_count(count_orders, "%").await;
    assert_eq!(orders_before, orders_after, "no order was created");
}

/// The attack that once ran script in a customer's page: a decline reason that, with
/// bare carriage returns, would end an SSE event early and start a signals event.
#[tokio::test]
async fn a_carriage_return_cannot_break_the_live_streams() {
    let api = api().await;
    let app = app().await;
    let attack =
        "x\r\revent: datastar-merge-signals\rdata: signals {pwned: (window.__pwned = 7, 1)}\r\r.";
    let (awakeable, _) = api.place_order("ivan", "sec-sse", &[("P008", 1)]).await;
    let mut stream = api.stream("/stream/notifications", "ivan", None).await;
    assert_error(
        &api.decline(&awakeable, attack).await,
        400,
        "invalid_reason",
    );
    assert_eq!(
        api.order("ivan", "sec-sse").await.1["status"],
        "awaiting_payment"
    );

    // Text that got into the log some other way (an older version stored it) still
    // cannot break the stream: write it straight into the notification log.
    let pool = app.db().await;
    sqlx::query(
        "INSERT INTO notifications (event_id, user_id, order_id, kind, message, created_at)
         VALUES ('sec-sse-injected', 'ivan', 'sec-sse', 'payment_failed', $1, '2026-01-01T00:00:00.000Z')",
    )
    .bind(attack)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    stream
        .read_until("the injected notification", |t| t.contains("pwned"))
        .await;
    let text = &stream.text;
    assert!(!text.contains('\r'), "a carriage return reached the wire");
    // Every line is a field of a fragments event: the attack's text stays data.
    for line in text.split('\n') {
        let known = [
            "event: datastar-merge-fragments",
            "id: ",
            "data: ",
            ": keep-alive",
        ];
        assert!(
            line.is_empty() || known.iter().any(|k| line.starts_with(k)),
            "{line:?}"
        );
        if line.contains("pwned") || line.contains("datastar-merge-signals") {
            assert!(line.starts_with("data: fragments "), "{line:?}");
        }
    }
    let events = stream.events();
    assert!(
        events.iter().all(|e| e.event == "datastar-merge-fragments"),
        "{events:?}"
    );
}

#[tokio::test]
async fn foreign_hosts_are_refused_before_anything_else() {
    let port = app().await.config.http.port();
    let body = r#"{"username":"sam","password":"x"}"#;
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1",
        &format!("127.0.0.2:{port}"),
        &format!("localhost:{port}.evil.example"),
    ] {
        for (method, path, body) in [
            (Method::GET, "/api/products", None),
            (Method::GET, "/healthz", None),
            (Method::GET, "/", None),
            (Method::POST, "/api/session", Some(body)),
            (Method::POST, "/api/payment/callback", Some("{}")),
        ] {
            let reply = call(method, path, &[("host", host)], body).await;
            assert_error(&reply, 400, "host_not_allowed");
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let (status, _) = call(Method::GET, "/api/products", &[("host", &host)], None).await;
        assert_eq!(status, 200, "{host}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let api = api().await;
    for path in ["/", "/api/products", "/api/nope", "/healthz"] {
        let resp = api.request(Method::GET, path).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        if path == "/" {
            assert!(
                // Our own script and datastar's expressions, nothing inline at all.
                csp.contains("script-src 'self' 'unsafe-eval';") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
        } else {
            assert!(!csp.contains("script-src"), "{path}: {csp}");
        }
    }
}

#[tokio::test]
async fn json_bodies_must_be_objects() {
    let api = api().await;
    let before = cart_of("judy").await;
    let token = format!("Bearer {}", api.token("judy"));
    for (path, body) in [
        ("/api/cart/add", "[1, 2]"),
        ("/api/cart/add", "[\"P001\", 2]"),
        ("/api/cart/remove", "[1]"),
        ("/api/checkout", "[\"o-1\", \"1 Main St\"]"),
        ("/api/session", "[\"judy\", \"pw\"]"),
    ] {
        let reply = call(Method::POST, path, &[("authorization", &token)], Some(body)).await;
        assert_error(&reply, 400, "invalid_json");
    }
    let array = json!(["sign_x", "t", 1, "success"]);
    assert_error(&api.callback(&array).await, 400, "invalid_json");
    assert_eq!(cart_of("judy").await, before);
}

/// Restate's ingress and the service endpoint are closed to everything but the web
/// role and Restate itself.
#[tokio::test]
async fn restate_private_handlers_and_the_endpoint_refuse_direct_calls() {
    let app = app().await;
    let ingress = format!("http://{}", app.config.ingress);
    let http = reqwest::Client::new();
    let order = json!({"order_id": "forged-1", "user_id": "kim", "items": [], "total_cents": 0,
        "shipping_address": "x", "created_at": "2026-01-01T00:00:00.000Z", "status": "awaiting_approval",
        "awakeable_id": null, "transaction_id": null, "failure_reason": null});
    for path in [
        "/OrderFulfillmentWorkflow/forged-1/Run/send",
        "/OrderFulfillmentWorkflow/forged-1/Run",
        "/ShippingService/InitiateShipment",
        "/ShippingService/CancelShipment",
    ] {
        let resp = http
            .post(format!("{ingress}{path}"))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{path}: {}", resp.status());
    }
    // Public handlers trust nothing: a decision on an order that is not in the index.
    let resp = http
        .post(format!(
            "{ingress}/OrderFulfillmentWorkflow/forged-2/Approve"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(app.workflow_runs("forged-1").await, 0);
    assert_eq!(app.workflow_runs("forged-2").await, 0);
    assert_eq!(
        app.db_count(
            "SELECT COUNT(*) FROM shipments WHERE order_id = $1",
            "forged-1"
        )
        .await,
        0
    );

    // An awakeable resolved behind the gateway's back pays nothing, whatever it says.
    for (id, amount) in [("sec-forged-receipt", -1), ("sec-forged-total", 0)] {
        forged_receipt_pays_nothing(app, id, amount).await;
    }

    // The endpoint serves only requests Restate signed.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let endpoint = format!("http://{}", app.config.services);
    for path in ["/discover", "/invoke/ShippingService/InitiateShipment"] {
        let resp = h2
            .request(
                if path == "/discover" {
                    Method::GET
                } else {
                    Method::POST
                },
                format!("{endpoint}{path}"),
            )
            .header("accept", "application/vnd.restate.endpointmanifest.v3+json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let api = api().await;
    eventually("the app to still be healthy", || async {
        (api.healthz().await.0 == 200).then_some(())
    })
    .await;
}

/// Completes an order's payment awakeable by hand through Restate's ingress with the
/// order total plus `off`: the order fails as unpaid, the gateway's record says failed,
/// no money is captured or refunded, the stock goes back, and the gateway's real
/// callback coming afterwards changes nothing.
async fn forged_receipt_pays_nothing(app: &TestApp, id: &str, off: i64) {
    let api = api().await;
    let (awakeable, total) = api.place_order("kim", id, &[("P008", 1)]).await;
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{}/restate/awakeables/{awakeable}/resolve",
            app.config.ingress
        ))
        .json(&json!({"transaction_id": "txn-forged", "amount_cents": total + off}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{id}: {}", resp.status());
    let order = api.wait_status("kim", id, "payment_failed").await;
    let reason = order["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no record of this payment"),
        "{id}: {order}"
    );
    let row = |sql: &'static str| async move { app.db_count(sql, id).await };
    let reserved =
        "SELECT COUNT(*) FROM stock_reservations WHERE order_id = $1 AND state = 'reserved'";
    assert_eq!(row(reserved).await, 0, "{id}: the stock went back");
    let failed = "SELECT COUNT(*) FROM payment_requests WHERE order_id = $1 AND state = 'failed' \
                  AND transaction_id IS NULL AND COALESCE(refunded_cents, 0) = 0";
    assert_eq!(
        row(failed).await,
        1,
        "{id}: the gateway's record says failed, no money"
    );
    assert_eq!(app.workflow_runs(id).await, 0, "{id}: nothing to fulfil");
    // The gateway's own callback afterwards: settled already, nothing captured.
    assert_error(&api.pay(&awakeable, total).await, 409, "payment_settled");
    assert_error(&api.cancel("kim", id, None).await, 409, "too_late");
    assert_eq!(row(failed).await, 1, "{id}: still failed, nothing refunded");
}

/// Signs in on the page with a form `body`; the `Cookie` header of the session it
/// started (behind https when `https`).
async fn page_sign_in(api: &Api, body: &str, https: bool) -> String {
    let (location, cookie) = try_page_sign_in(api, body, https).await;
    assert_eq!(location, "/", "{body}");
    cookie.unwrap_or_else(|| panic!("{body}: no session cookie"))
}

/// Signs in on the page with a form `body`: where the page went next, and the session
/// cookie if one was set.
async fn try_page_sign_in(api: &Api, body: &str, https: bool) -> (String, Option<String>) {
    let mut req = api
        .request(Method::POST, "/ui/session")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.execute(req.build().unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{body}");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let cookie = resp.headers().get("set-cookie").map(|c| {
        let c = c.to_str().unwrap();
        c.split(';').next().unwrap().to_owned()
    });
    (location, cookie)
}

/// Signs out on the page with `cookie`.
async fn page_sign_out(cookie: &str) {
    let req = api()
        .await
        .request(Method::POST, "/ui/sign-out")
        .header("cookie", cookie);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.execute(req.build().unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

/// The status of `GET /api/cart` with `cookie`.
async fn cart_status(cookie: &str) -> u16 {
    call(Method::GET, "/api/cart", &[("cookie", cookie)], None)
        .await
        .0
        .as_u16()
}

/// `/stream/notifications`, opened with one header.
async fn open_stream(api: &Api, header: (&str, &str)) -> reqwest::Response {
    let resp = api
        .request(Method::GET, "/stream/notifications")
        .header(header.0, header.1)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

/// Reads `stream` until the server ends it; fails if it is open after `within`.
async fn ends_within(mut stream: reqwest::Response, within: Duration, what: &str) {
    let read = async { while let Ok(Some(_)) = stream.chunk().await {} };
    if tokio::time::timeout(within, read).await.is_err() {
        panic!("{what}: the stream was still open after {within:?}");
    }
}

/// The page's sessions live on the server: signing out ends one (a copy of its cookie
/// too) and its live stream within seconds; a new password, a new role and the
/// operator's revoke end them all. Ids are stored hashed.
#[tokio::test]
async fn page_sessions_end_on_sign_out_new_password_new_role_and_revoke() {
    let (app, api) = (app().await, api().await);
    let form = |password: &str| format!("user=una&password={}", password.replace(' ', "+"));
    let first = page_sign_in(&api, &form(PASSWORD), false).await;
    let second = page_sign_in(&api, &form(PASSWORD), false).await;
    assert_ne!(first, second);
    assert_eq!(
        (cart_status(&first).await, cart_status(&second).await),
        (200, 200)
    );
    let id = first.trim_start_matches("shopflow_session=");
    let stored = "SELECT COUNT(*) FROM sessions WHERE id_hash = $1";
    assert_eq!(
        app.db_count(stored, id).await,
        0,
        "the id itself is not stored"
    );
    let (ok, listed, err) = app.cli(&["user", "sessions", "una"], "");
    assert!(ok && listed.lines().count() == 3, "{listed} {err}");

    let stream = open_stream(&api, ("cookie", &first)).await;
    page_sign_out(&first).await;
    assert_eq!(
        cart_status(&first).await,
        401,
        "a copy of a signed-out cookie"
    );
    assert_eq!(cart_status(&second).await, 200, "the other session holds");
    ends_within(stream, Duration::from_secs(6), "signed out").await;

    let (ok, out, err) = app.cli(&["user", "sessions", "una", "--revoke"], "");
    assert!(ok && out.contains("ended 1 session"), "{out} {err}");
    assert_eq!(cart_status(&second).await, 401, "revoked");

    let third = page_sign_in(&api, &form(PASSWORD), false).await;
    let stream = open_stream(&api, ("cookie", &third)).await;
    let new_password = "a new good password";
    let (ok, out, err) = app.cli(
        &["user", "set-password", "una"],
        &format!("{new_password}\n"),
    );
    assert!(ok, "{out} {err}");
    assert_eq!(cart_status(&third).await, 401, "a new password");
    ends_within(stream, Duration::from_secs(6), "a new password").await;

    let fourth = page_sign_in(&api, &form(new_password), true).await;
    assert!(fourth.starts_with("__Host-shopflow_session="), "{fourth}");
    let https = |cookie: &str| {
        [
            ("cookie", cookie.to_owned()),
            ("x-forwarded-proto", "https".into()),
        ]
    };
    let as_admin = || async {
        let headers = https(&fourth);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        call(Method::GET, "/api/admin/orders", &headers, None)
            .await
            .0
    };
    assert_eq!(as_admin().await, 403);
    let (ok, out, err) = app.cli(&["user", "set-role", "una", "admin"], "");
    assert!(ok, "{out} {err}");
    assert_eq!(as_admin().await, 401, "a new role ends the session");
    let (ok, out, err) = app.cli(&["user", "set-role", "una", "customer"], "");
    assert!(ok, "{out} {err}");
}

/// A live stream opened with a token ends within seconds of the token's expiry.
#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let api = api().await;
    let token = api.token_until("alice", unix_now() + 3);
    let stream = open_stream(&api, ("authorization", &format!("Bearer {token}"))).await;
    ends_within(stream, Duration::from_secs(8), "an expired token").await;
}

/// A session made in demo mode, with the picker, is refused once the same data dir
/// runs without demo mode; the admin it named must sign in for real.
#[tokio::test]
async fn demo_sessions_end_with_demo_mode() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("security-demo-app");
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = AppConfig::new(&dir);
    config.demo();
    let mut demo = TestApp::start(config.clone()).await;
    let cookie = page_sign_in(&demo.api, "user=admin", false).await;
    let admin_orders = |api: Api, cookie: String| async move {
        let req = api
            .request(Method::GET, "/api/admin/orders")
            .header("cookie", cookie);
        api.send(req).await
    };
    assert_eq!(admin_orders(demo.api.clone(), cookie.clone()).await.0, 200);
    demo.signal(libc::SIGTERM);
    demo.wait_exit().await;
    demo.wait_ports_free().await;

    config
        .extra_env
        .retain(|(k, _)| k != "SHOPFLOW_TRUST_USER_HEADER");
    let plain = TestApp::start(config).await;
    let reply = admin_orders(plain.api.clone(), cookie.clone()).await;
    assert_error(&reply, 401, "unauthorized");
    assert!(reply.1.to_string().contains("demo mode"), "{}", reply.1);
    let drill = plain
        .api
        .request(Method::POST, "/api/admin/drills/carrier")
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body(r#"{"mode":"fail"}"#);
    assert_error(&plain.api.send(drill).await, 401, "unauthorized");
}

/// `/api/users` is for admins outside demo mode.
#[tokio::test]
async fn the_user_list_is_for_admins() {
    let api = api().await;
    assert_error(
        &call(Method::GET, "/api/users", &[], None).await,
        401,
        "unauthorized",
    );
    let as_user = |user: &str| format!("Bearer {}", api.token(user));
    let customer = as_user("bob");
    let reply = call(
        Method::GET,
        "/api/users",
        &[("authorization", &customer)],
        None,
    )
    .await;
    assert_error(&reply, 403, "forbidden");
    let admin = as_user("admin");
    let (status, users) = call(
        Method::GET,
        "/api/users",
        &[("authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{users}");
    assert!(users.as_array().is_some_and(|u| u.len() > 3), "{users}");
}

/// Every route refuses query parameters it does not take; two `Host` headers are
/// refused; a client that never finishes its headers is cut off.
#[tokio::test]
async fn unknown_parameters_two_hosts_and_slow_headers_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, api) = (app().await, api().await);
    let admin = format!("Bearer {}", api.token("admin"));
    for (path, auth) in [
        ("/api/orders?status=shipping", admin.as_str()),
        ("/api/users?role=admin", &admin),
        ("/api/admin/orders?status=shipping&limit=1", &admin),
        ("/api/products?page=2", ""),
        ("/api/products/P001?x", ""),
        ("/healthz?verbose=1", ""),
    ] {
        let reply = call(Method::GET, path, &[("authorization", auth)], None).await;
        assert_error(&reply, 400, "unknown_parameter");
    }
    let reply = call(
        Method::GET,
        "/api/admin/orders?status=shipping",
        &[("authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);

    let addr = app.config.http;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/products HTTP/1.1\r\nHost: {addr}\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("duplicate_host"),
        "{answer}"
    );

    // Headers that never end, and a body that never arrives, side by side.
    let slow_headers = async {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n");
        slow.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(30), slow.read(&mut buf)).await;
        assert!(read.is_ok(), "headers: still open after 30 s");
        started.elapsed()
    };
    let slow_body = async {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/cart/add HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"product_id\"",
            api.token("kim")
        );
        slow.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut answer = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_string(&mut answer));
        assert!(read.await.is_ok(), "body: still open after 30 s");
        (started.elapsed(), answer)
    };
    let (headers_took, (body_took, answer)) = tokio::join!(slow_headers, slow_body);
    assert!(
        headers_took < Duration::from_secs(15),
        "headers: cut off after {headers_took:?}"
    );
    assert!(
        body_took < Duration::from_secs(15),
        "body: answered after {body_took:?}"
    );
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("body_timeout"),
        "{answer}"
    );
}

/// The data dir is its owner's alone, and so is the database in it.
#[tokio::test]
async fn the_data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    app().await;
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data_dir()), 0o700);
    if !common::postgres::wanted() {
        assert_eq!(mode(data_dir().join("shopflow.db")), 0o600);
    }
    assert_eq!(mode(data_dir().join("session.key")), 0o600);
}

/// `--help` names the settings that hold secrets but never prints their values.
#[test]
fn help_never_prints_a_secret() {
    for args in [&["--help"][..], &["web", "--help"], &["services", "--help"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shopflow"))
            .args(args)
            .env(
                "SHOPFLOW_DATABASE_URL",
                "postgres://shop:S3cretPassw0rd@db/shop",
            )
            .env("SHOPFLOW_PAYMENT_WEBHOOK_SECRET", "whsec-S3cret")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {text}");
        if args.len() == 1 {
            assert!(text.contains("SHOPFLOW_DATABASE_URL"), "{text}");
        }
        assert!(
            !text.contains("S3cret"),
            "{args:?} printed a secret: {text}"
        );
    }
}

/// Sign-ins that checked the old password while it was being changed get sessions
/// that are refused: a session holds only with the password and role it began with.
#[tokio::test]
async fn sign_ins_racing_a_new_password_get_no_session_that_holds() {
    const SIGN_INS: usize = 30;
    let (app, api) = (app().await, api().await);
    let form = format!("user=ola&password={}", PASSWORD.replace(' ', "+"));
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..SIGN_INS {
        let (api, form, tx) = (api.clone(), form.clone(), tx.clone());
        tokio::spawn(async move { tx.send(try_page_sign_in(&api, &form, false).await) });
    }
    // The first answer is in, the others are under way: change the password now (off
    // this thread, so their answers keep coming).
    let first = answers.recv().await.unwrap();
    let config = app.config.clone();
    let change = tokio::task::spawn_blocking(move || {
        let mut cmd = config.command();
        cmd.args(["user", "set-password", "ola"]);
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a newer password\n")
            .unwrap();
        child.wait().unwrap()
    });
    let mut all = vec![first];
    for _ in 1..SIGN_INS {
        all.push(answers.recv().await.unwrap());
    }
    assert!(change.await.unwrap().success(), "set-password");
    // Sessions stored after the change deleted the old ones: sign-ins that had checked
    // the old password. Without them the race was not run.
    let late = app
        .db_count("SELECT COUNT(*) FROM sessions WHERE username = $1", "ola")
        .await;
    let mut cookies = 0;
    for (location, cookie) in all {
        let Some(cookie) = cookie else { continue };
        assert_eq!(location, "/");
        cookies += 1;
        let status = cart_status(&cookie).await;
        assert_eq!(status, 401, "a session begun with the old password");
    }
    eprintln!("{cookies} sessions begun with the old password, {late} stored after the change");
    assert!(
        late > 0,
        "no session was stored after the change: the race was not run"
    );
}

/// A live stream opened by an admin ends within seconds of the admin becoming a
/// customer, although the token itself still holds.
#[tokio::test]
async fn a_stream_ends_when_its_user_gets_another_role() {
    let (app, api) = (app().await, api().await);
    let token = token_of("vic").await;
    let stream = open_stream(&api, ("authorization", &format!("Bearer {token}"))).await;
    let (ok, out, err) = app.cli(&["user", "set-role", "vic", "customer"], "");
    assert!(ok, "{out} {err}");
    ends_within(stream, Duration::from_secs(6), "a new role").await;
    let (status, _) = call(
        Method::GET,
        "/api/cart",
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(status, 200, "the token itself holds, as a customer's");
}
