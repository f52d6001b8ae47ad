//! Test harness: starts the real `shopflow` binary (which starts a real restate-server)
//! on free ports in a temp dir, and talks to it over HTTP like any client.
#![allow(dead_code)]

pub mod openapi;
#[path = "../../../src/db/test_postgres.rs"]
pub mod postgres;
pub mod receiver;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use shopflow::process::Spawner;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// The project's npm-installed restate-server.
pub fn restate_server_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(shopflow::config::npm_restate_server_bin())
}

/// Children of the tests are forked from one long-lived thread and die with the test binary.
pub fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        std::thread::spawn(|| Spawner::new().expect("spawner"))
            .join()
            .unwrap()
    })
}

/// A port nobody listens on, below Linux's ephemeral range (32768 and up): a port the
/// kernel hands out as "free" may be taken the next moment as the local end of some
/// outgoing connection, and then the app cannot bind it; and outside 27000–27999, where
/// the cluster of `deploy/` listens. Each test binary starts at its own offset and
/// counts up.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN;
        // The loopback cluster's fixed ports (deploy/): another test may start it.
        if (27_000..28_000).contains(&port) {
            continue;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A pool for a database URL (SQLite or PostgreSQL).
pub async fn connect(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.unwrap()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `DEADLINE`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_seen(what, || {
        let look = check();
        async move { look.await.ok_or_else(|| "not yet".to_owned()) }
    })
    .await
}

/// As [`eventually`], for a check that says what it saw when it is not there yet: the
/// panic after `DEADLINE` names the last thing seen.
pub async fn eventually_seen<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {what}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Where one ShopFlow instance lives: its data dir and its five ports.
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub services: SocketAddr,
    pub ingress: SocketAddr,
    pub admin: SocketAddr,
    pub node: SocketAddr,
    /// `None`: ShopFlow spawns restate-server; `Some`: it uses that external one.
    pub external: bool,
    pub extra_env: Vec<(String, String)>,
    /// Where the app's stdout and stderr go (inherited when `None`).
    pub log_file: Option<PathBuf>,
    /// `RUST_LOG` for the app: `warn` for tests; `None` leaves ShopFlow's default (as
    /// `make run` has it).
    pub rust_log: Option<String>,
    /// The `shopflow` binary to run.
    pub binary: PathBuf,
    /// The app's database: its own SQLite file, or with `SHOPFLOW_TEST_DATABASE=postgres`
    /// its own database on the test binary's PostgreSQL server.
    pub database_url: String,
}

impl AppConfig {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            http: free_addr(),
            services: free_addr(),
            ingress: free_addr(),
            admin: free_addr(),
            node: free_addr(),
            external: false,
            extra_env: Vec::new(),
            log_file: None,
            rust_log: Some("warn".into()),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_shopflow")),
            database_url: if postgres::wanted() {
                postgres::Postgres::shared().fresh_database()
            } else {
                format!("sqlite://{}", data_dir.join("shopflow.db").display())
            },
        }
    }

    /// Demo mode: `X-User-ID` identifies the caller, the picker needs no password.
    pub fn demo(&mut self) {
        self.extra_env
            .push(("SHOPFLOW_TRUST_USER_HEADER".into(), "true".into()));
    }

    /// ShopFlow's own view of this configuration (its environment, parsed as the
    /// binary parses it).
    pub fn shopflow_config(&self) -> shopflow::config::Config {
        use clap::Parser;
        let mut args = vec!["shopflow".to_owned()];
        args.push(format!("--data-dir={}", self.data_dir.display()));
        args.push(format!("--http-addr={}", self.http));
        args.push(format!("--database-url={}", self.database_url));
        for (key, value) in &self.extra_env {
            if let Some(flag) = key.strip_prefix("SHOPFLOW_") {
                args.push(format!(
                    "--{}={value}",
                    flag.to_ascii_lowercase().replace('_', "-")
                ));
            }
        }
        shopflow::config::Cli::try_parse_from(args).unwrap().config
    }

    pub fn ports(&self) -> Vec<SocketAddr> {
        let mut ports = vec![self.http, self.services];
        if !self.external {
            ports.extend([self.ingress, self.admin, self.node]);
        }
        ports
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SHOPFLOW_DATA_DIR", &self.data_dir)
            .env("SHOPFLOW_HTTP_ADDR", self.http.to_string())
            .env("SHOPFLOW_SERVICES_ADDR", self.services.to_string())
            .env("SHOPFLOW_RESTATE_INGRESS_ADDR", self.ingress.to_string())
            .env("SHOPFLOW_RESTATE_ADMIN_ADDR", self.admin.to_string())
            .env("SHOPFLOW_RESTATE_NODE_ADDR", self.node.to_string())
            .env(
                "SHOPFLOW_RESTATE",
                if self.external { "external" } else { "spawn" },
            )
            .env("RESTATE_SERVER_BIN", restate_server_bin())
            .env("SHOPFLOW_DATABASE_URL", &self.database_url)
            .stdin(Stdio::null());
        if let Some(level) = &self.rust_log {
            cmd.env("RUST_LOG", level);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        if let Some(path) = &self.log_file {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            cmd.stdout(log.try_clone().unwrap()).stderr(log);
        }
        cmd
    }
}

/// A running `shopflow` supervisor.
pub struct TestApp {
    pub config: AppConfig,
    pub child: Child,
    pub api: Api,
}

impl TestApp {
    /// Starts `shopflow` in its own process group and waits until `/healthz` is 200.
    pub async fn start(config: AppConfig) -> TestApp {
        let mut cmd = config.command();
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = spawner().spawn_std(cmd).expect("start shopflow");
        let mut app = TestApp {
            api: Api::new(&config),
            config,
            child,
        };
        app.wait_healthy().await;
        app
    }

    pub async fn wait_healthy(&mut self) {
        let api = self.api.clone();
        let child = &mut self.child;
        eventually("shopflow to become healthy", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("shopflow exited during start-up: {status}");
            }
            let api = api.clone();
            async move { (api.get("/healthz", None).await.0 == StatusCode::OK).then_some(()) }
        })
        .await;
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGKILL to every process of the app's process group.
    pub fn kill_group(&self) {
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
    }

    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = &mut self.child;
        eventually("shopflow to exit", || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }

    /// Waits until every port of the app can be bound again: nothing is left holding one.
    pub async fn wait_ports_free(&self) {
        for addr in self.config.ports() {
            eventually(&format!("port {addr} to be released"), || async move {
                TcpListener::bind(addr).ok().map(drop)
            })
            .await;
        }
    }

    /// The direct children of the supervisor, as (pid, command line).
    pub fn children(&self) -> Vec<(i32, String)> {
        children_of(self.pid())
    }

    pub fn services_pid(&self) -> Option<i32> {
        self.children()
            .into_iter()
            .find(|(_, cmd)| cmd.ends_with(" services"))
            .map(|(pid, _)| pid)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.wait();
    }
}

/// Live processes whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid && state != "Z" {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .trim()
                .to_owned();
            found.push((child, cmdline));
        }
    }
    found
}

/// A JSON client for the API, one helper per route. It signs in as a user the way an
/// API client does: with a bearer token, minted here with the app's own signing key
/// (as `shopflow token USER` would) for users without a password.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
    signer: shopflow::auth::Signer,
    /// Signs payment callbacks as the gateway does.
    webhook_secret: String,
}

pub type Reply = (StatusCode, Value);

impl Api {
    pub fn new(config: &AppConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        Self {
            base: format!("http://{}", config.http),
            client,
            // The app and the tests agree on one key, whoever creates it first.
            signer: shopflow::auth::Signer::load_or_create(&config.data_dir).unwrap(),
            webhook_secret: config.shopflow_config().webhook_secret().unwrap(),
        }
    }

    /// `X-Payment-Signature` for `body`, signed now with the app's webhook secret.
    pub fn signature(&self, body: &str) -> String {
        shopflow::app::payments::sign(
            &self.webhook_secret,
            shopflow::auth::unix_now(),
            body.as_bytes(),
        )
    }

    /// A bearer token for `user` that expires at `expires` (Unix seconds).
    pub fn token_until(&self, user: &str, expires: i64) -> String {
        let name = shopflow::domain::Username::parse(user).unwrap();
        self.signer
            .issue(shopflow::auth::Purpose::ApiToken, &name, "", expires)
    }

    /// `X-Payment-Signature` for `body` as signed at `timestamp` (Unix seconds).
    pub fn signature_at(&self, body: &str, timestamp: i64) -> String {
        shopflow::app::payments::sign(&self.webhook_secret, timestamp, body.as_bytes())
    }

    /// A bearer token for `user` (a user without a password), valid for an hour.
    /// A name no user can have gets a token of the right shape that names it.
    pub fn token(&self, user: &str) -> String {
        let expires = shopflow::auth::unix_now() + 3600;
        match shopflow::domain::Username::parse(user) {
            Ok(name) => self
                .signer
                .issue(shopflow::auth::Purpose::ApiToken, &name, "", expires),
            Err(_) => format!("{user}.{expires}.{}", "0".repeat(64)),
        }
    }

    /// The request as `user`.
    fn as_user(&self, req: reqwest::RequestBuilder, user: Option<&str>) -> reqwest::RequestBuilder {
        match user {
            Some(user) => req.bearer_auth(self.token(user)),
            None => req,
        }
    }

    /// A request to `path` with nothing added: for tests that set every header themselves.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Sends `req`; a documented route's answer must match the OpenAPI document.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let (client, req) = req.build_split();
        let req = req.expect("a well-formed request");
        let (method, path) = (req.method().to_string(), req.url().path().to_owned());
        match client.execute(req).await {
            Ok(resp) => {
                let status = resp.status();
                let kind = resp.headers().get("content-type").cloned();
                let kind = kind.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
                let kind = kind.to_owned();
                let body = resp.bytes().await.unwrap_or_default();
                openapi::check(&method, &path, status.as_u16(), &kind, &body);
                let json = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                (status, json)
            }
            // No status: the server is not there. Tests polling for it read this as "not yet".
            Err(_) => (StatusCode::from_u16(599).unwrap(), Value::Null),
        }
    }

    pub async fn get(&self, path: &str, user: Option<&str>) -> Reply {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(self.as_user(req, user)).await
    }

    /// POST with a raw body, for the bad-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        user: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.send(self.as_user(req, user)).await
    }

    pub async fn post(&self, path: &str, user: Option<&str>, body: &Value) -> Reply {
        self.post_raw(path, user, body.to_string()).await
    }

    pub async fn healthz(&self) -> Reply {
        self.get("/healthz", None).await
    }

    /// `/api/users` as `user` (an admin, outside demo mode).
    pub async fn users(&self, user: Option<&str>) -> Reply {
        self.get("/api/users", user).await
    }

    pub async fn products(&self) -> Reply {
        self.get("/api/products", None).await
    }

    pub async fn product(&self, id: &str) -> Reply {
        self.get(&format!("/api/products/{id}"), None).await
    }

    pub async fn cart(&self, user: &str) -> Reply {
        self.get("/api/cart", Some(user)).await
    }

    pub async fn add_to_cart(&self, user: &str, product_id: Value, quantity: i64) -> Reply {
        let body = serde_json::json!({ "product_id": product_id, "quantity": quantity });
        self.post("/api/cart/add", Some(user), &body).await
    }

    /// Adds to the cart with an `Idempotency-Key`: tries with the same key add once.
    pub async fn add_to_cart_keyed(
        &self,
        user: &str,
        product_id: Value,
        quantity: i64,
        key: &str,
    ) -> Reply {
        let body = serde_json::json!({ "product_id": product_id, "quantity": quantity });
        let req = self
            .client
            .post(format!("{}/api/cart/add", self.base))
            .bearer_auth(self.token(user))
            .header("idempotency-key", key)
            .json(&body);
        self.send(req).await
    }

    pub async fn remove_from_cart(&self, user: &str, product_id: Value) -> Reply {
        let body = serde_json::json!({ "product_id": product_id });
        self.post("/api/cart/remove", Some(user), &body).await
    }

    /// The cart as `[(sku, quantity)]`, asserting the call worked.
    pub async fn cart_lines(&self, user: &str) -> Vec<(String, i64)> {
        let (status, cart) = self.cart(user).await;
        assert_eq!(status, StatusCode::OK, "GET /api/cart: {cart}");
        cart["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["sku"].as_str().unwrap().to_owned(),
                    i["quantity"].as_i64().unwrap(),
                )
            })
            .collect()
    }
}

/// Asserts an API error reply: the status and the error JSON's code.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.0.as_u16(), status, "unexpected reply: {}", reply.1);
    assert_eq!(
        reply.1["error"]["code"], code,
        "unexpected error: {}",
        reply.1
    );
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {}",
        reply.1
    );
}

/// Order lifecycle helpers, one per route.
impl Api {
    pub async fn checkout(&self, user: &str, body: &Value, idempotency_key: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/api/checkout", self.base))
            .bearer_auth(self.token(user))
            .json(body);
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        self.send(req).await
    }

    pub async fn order(&self, user: &str, id: &str) -> Reply {
        self.get(&format!("/api/orders/{id}"), Some(user)).await
    }

    pub async fn order_markdown(&self, user: &str, id: &str) -> (StatusCode, String, String) {
        let resp = self
            .client
            .get(format!("{}/api/orders/{id}", self.base))
            .bearer_auth(self.token(user))
            .header("accept", "text/markdown")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ctype, resp.text().await.unwrap())
    }

    pub async fn orders(&self, user: &str) -> Reply {
        self.get("/api/orders", Some(user)).await
    }

    pub async fn admin_orders(&self, user: &str, query: &str) -> Reply {
        self.get(&format!("/api/admin/orders{query}"), Some(user))
            .await
    }

    /// A payment callback, signed as the gateway signs it.
    pub async fn callback(&self, body: &Value) -> Reply {
        let signature = self.signature(&body.to_string());
        self.callback_signed(body, Some(&signature)).await
    }

    /// A payment callback with the given signature header (or none).
    pub async fn callback_signed(&self, body: &Value, signature: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/api/payment/callback", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(sig) = signature {
            req = req.header("x-payment-signature", sig);
        }
        self.send(req).await
    }

    pub async fn pay(&self, awakeable_id: &str, amount: i64) -> Reply {
        let body = serde_json::json!({"awakeable_id": awakeable_id, "transaction_id": "txn-1",
                                      "amount": amount, "status": "success"});
        self.callback(&body).await
    }

    pub async fn decline(&self, awakeable_id: &str, reason: &str) -> Reply {
        let body = serde_json::json!({"awakeable_id": awakeable_id, "transaction_id": "",
                                      "amount": 0, "status": "failed", "reason": reason});
        self.callback(&body).await
    }

    pub async fn approve(&self, user: &str, id: &str) -> Reply {
        self.post_raw(&format!("/api/workflow/{id}/approve"), Some(user), "")
            .await
    }

    pub async fn cancel(&self, user: &str, id: &str, reason: Option<&str>) -> Reply {
        let body = serde_json::json!({ "reason": reason });
        self.post(&format!("/api/orders/{id}/cancel"), Some(user), &body)
            .await
    }

    pub async fn reject(&self, user: &str, id: &str, reason: Option<&str>) -> Reply {
        let body = serde_json::json!({ "reason": reason });
        self.post(&format!("/api/workflow/{id}/reject"), Some(user), &body)
            .await
    }

    /// Available stock of a product, by SKU.
    pub async fn stock(&self, sku: &str) -> i64 {
        let (status, p) = self.product(sku).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        p["stock_qty"].as_i64().unwrap()
    }

    /// Waits until the catalog shows `expected` of `sku` in stock: the web role holds the
    /// catalog in memory and sees a change made by the service endpoint within 0.1 s.
    pub async fn wait_stock(&self, sku: &str, expected: i64) {
        let started = std::time::Instant::now();
        let mut last = None;
        while started.elapsed() < std::time::Duration::from_secs(2) {
            let now = self.stock(sku).await;
            if now == expected {
                return;
            }
            last = Some(now);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("stock of {sku}: {last:?}, expected {expected} within 2 s");
    }

    /// Fills the user's cart and checks out; returns the awakeable id and the order total.
    pub async fn place_order(
        &self,
        user: &str,
        order_id: &str,
        lines: &[(&str, i64)],
    ) -> (String, i64) {
        for (sku, qty) in lines {
            let (status, body) = self.add_to_cart(user, Value::from(*sku), *qty).await;
            assert_eq!(status, StatusCode::OK, "add {sku}: {body}");
        }
        let (status, body) = self
            .checkout(
                user,
                &serde_json::json!({"order_id": order_id, "shipping_address": "1 Test Street"}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "checkout: {body}");
        assert_eq!(body["order_id"], order_id);
        assert_eq!(body["status"], "awaiting_payment");
        let (_, order) = self.order(user, order_id).await;
        let awakeable = body["awakeable_id"]
            .as_str()
            .expect("an awakeable id")
            .to_owned();
        (awakeable, order["total_cents"].as_i64().unwrap())
    }

    /// Polls the order until it reaches `status`; returns the order JSON.
    pub async fn wait_status(&self, user: &str, id: &str, status: &str) -> Value {
        eventually_seen(&format!("order {id} to become {status}"), || async move {
            let (code, order) = self.order(user, id).await;
            match code == StatusCode::OK && order["status"] == status {
                true => Ok(order),
                false => Err(format!("{code} {}", order["status"])),
            }
        })
        .await
    }
}

impl TestApp {
    /// Runs an operator command (`shopflow user add …`) against this app's data dir,
    /// feeding `stdin`; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut cmd = self.config.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run shopflow");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A connection pool to the app's database, as another client of it.
    pub async fn db(&self) -> sqlx::AnyPool {
        connect(&self.config.database_url).await
    }

    /// A page session of `user`, stored as signing in stores one (for users without a
    /// password outside demo mode), as the `Cookie` header that carries it.
    pub async fn session_cookie(&self, user: &str) -> String {
        use shopflow::auth::{session, unix_now};
        let (id, now) = (session::new_id(), unix_now());
        let pool = self.db().await;
        sqlx::query(
            "INSERT INTO sessions (id_hash, username, stamp, role, demo, created_at, last_used_at, expires_at) \
             SELECT $1, username, '', role, 0, $3, $3, $4 FROM users WHERE username = $2",
        )
        .bind(session::hash(&id))
        .bind(user)
        .bind(now)
        .bind(now + 3600)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        format!("shopflow_session={id}")
    }

    /// One number from the app's database (read as another client would).
    pub async fn db_count(&self, query: &str, bind: &str) -> i64 {
        let pool = self.db().await;
        let n: i64 = sqlx::query_scalar(query)
            .bind(bind)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }

    /// A GET on Restate's admin API, as JSON (`/services/UserSession`, …).
    pub async fn restate_admin(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("http://{}{path}", self.config.admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An operator's `PATCH /invocations/{id}/{action}` on Restate's admin API
    /// (`cancel`, `kill`, `purge`).
    pub async fn operator(&self, invocation: &str, action: &str) {
        let resp = reqwest::Client::new()
            .patch(format!(
                "http://{}/invocations/{invocation}/{action}",
                self.config.admin
            ))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{action} {invocation}: {status} {body}"
        );
    }

    /// The id of an invocation Restate knows, by target and a status filter (waits
    /// until there is one).
    pub async fn invocation(
        &self,
        service: &str,
        key: &str,
        handler: &str,
        status: &str,
    ) -> String {
        let sql = format!(
            "SELECT id FROM sys_invocation WHERE target_service_name = '{service}' \
             AND target_service_key = '{key}' AND target_handler_name = '{handler}' AND {status}"
        );
        eventually(&format!("the {service}/{handler} invocation"), || async {
            self.restate_sql(&sql)
                .await
                .first()
                .and_then(|r| r["id"].as_str().map(str::to_owned))
        })
        .await
    }

    /// Rows from Restate's own introspection tables (admin SQL).
    pub async fn restate_sql(&self, query: &str) -> Vec<Value> {
        let body: Value = reqwest::Client::new()
            .post(format!("http://{}/query", self.config.admin))
            .header("accept", "application/json")
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["rows"].as_array().cloned().unwrap_or_default()
    }

    /// How many workflow runs Restate has for this order id.
    pub async fn workflow_runs(&self, order_id: &str) -> usize {
        self.restate_sql(&format!(
            "SELECT id FROM sys_invocation WHERE target_service_name = 'OrderFulfillmentWorkflow' \
             AND target_service_key = '{order_id}' AND target_handler_name = 'Run'"
        ))
        .await
        .len()
    }
}

/// An open SSE stream, read as raw text.
pub struct SseStream {
    response: reqwest::Response,
    pub text: String,
}

/// One parsed SSE event: its type, id and data lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<i64>,
    pub data: Vec<String>,
}

impl SseStream {
    /// Reads until `done` holds for the text read so far, or panics at the deadline.
    pub async fn read_until(&mut self, what: &str, done: impl Fn(&str) -> bool) {
        let started = Instant::now();
        while !done(&self.text) {
            let left = DEADLINE.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => panic!("the stream ended while waiting for {what}: {}", self.text),
                Ok(Err(e)) => panic!("the stream failed while waiting for {what}: {e}"),
                Err(_) => panic!("timed out waiting for {what}; got: {}", self.text),
            }
        }
    }

    /// The next chunk of the body; `None` once the server ended the stream.
    pub async fn next_chunk(&mut self) -> Option<String> {
        match self.response.chunk().await {
            Ok(Some(chunk)) => Some(String::from_utf8_lossy(&chunk).into_owned()),
            _ => None,
        }
    }

    /// The complete events read so far (comments such as keep-alives are skipped).
    pub fn events(&self) -> Vec<SseEvent> {
        let complete = match self.text.rfind("\n\n") {
            Some(end) => &self.text[..end],
            None => return Vec::new(),
        };
        complete
            .split("\n\n")
            .filter_map(|block| {
                let mut event = SseEvent {
                    event: String::new(),
                    id: None,
                    data: Vec::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push(v.to_owned());
                    }
                }
                (!event.event.is_empty()).then_some(event)
            })
            .collect()
    }
}

impl Api {
    /// Opens an SSE stream as the user, optionally resuming after an event id.
    pub async fn stream(&self, path: &str, user: &str, last_event_id: Option<i64>) -> SseStream {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token(user))
            .timeout(Duration::from_secs(3600));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let ctype = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(ctype, "text/event-stream");
        SseStream {
            response,
            text: String::new(),
        }
    }
}
