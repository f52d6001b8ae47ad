//! Whole orders: many shoppers each placing, paying and (as the admin) approving
//! orders one after another for a while, then every order delivered. Step times come
//! from the notification log's timestamps (written as each step happens), so no
//! polling adds load while the orders run.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use crate::common::{Api, TestApp};

/// What every order of a run is.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One product, one parcel.
    Plain,
    /// Two products, one only `east` has and one only `west` has: two parcels.
    Split,
    /// As plain; once delivered the shopper returns it (requested, approved, received,
    /// refunded) while the next orders go on.
    Returned,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain orders",
            Kind::Split => "split orders (two parcels)",
            Kind::Returned => "orders returned after delivery",
        }
    }
}

/// The products a split order buys: the bench seed stocks every product at both
/// locations, so these two are emptied at one each first (`split_stock`).
const SPLIT: [(&str, &str, &str); 2] = [("P009", "P009", "west"), ("P010", "P010", "east")];

/// Leaves each split product at one location only.
pub async fn split_stock(api: &Api) {
    for (_, sku, empty) in SPLIT {
        let body = json!({"location": empty, "stock_qty": 0});
        let req = api
            .request(
                reqwest::Method::PUT,
                &format!("/api/admin/products/{sku}/stock"),
            )
            .header("X-User-ID", "admin")
            .json(&body);
        let (status, reply) = api.send(req).await;
        assert_eq!(status, 200, "stock of {sku} at {empty}: {reply}");
    }
}

/// What one shopper saw of one order.
struct Placed {
    id: String,
    checkout_ms: f64,
    pay_sent: i64,
    approve_sent: i64,
    approve_ms: f64,
}

/// p50 and p99 of one step, in milliseconds.
#[derive(Debug, Serialize, Clone, Copy)]
pub struct Step {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Step {
    pub fn of(mut samples: Vec<f64>) -> Step {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Step {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Orders {
    pub kind: Kind,
    /// Returns refunded (`Kind::Returned`).
    pub returned: usize,
    /// CPU time per order of each process (user + system), ms.
    pub cpu_ms_per_order: Vec<(String, f64)>,
    /// Resident memory of each process (MiB) through the run, by second.
    #[serde(skip)]
    pub memory: Vec<(String, Vec<(f64, f64)>)>,
    /// Each step's samples (ms), for the distributions.
    #[serde(skip)]
    pub samples: Vec<(&'static str, Vec<f64>)>,
    pub shoppers: usize,
    pub seconds: f64,
    pub placed: usize,
    pub delivered: usize,
    pub errors: usize,
    pub per_second: f64,
    /// The checkout call: the order is `awaiting_payment` when it answers.
    pub checkout: Step,
    /// The payment callback sent → the workflow asks for approval.
    pub callback_to_awaiting_approval: Step,
    /// The approve call, which waits for the workflow to take the decision.
    pub approve_call: Step,
    /// The approve call sent → the shipment is booked.
    pub approve_to_shipping: Step,
    /// The shipment booked → delivered, less the delivery timer.
    pub shipping_to_delivered_less_delay: Step,
    /// Restate invocations per order, by handler.
    pub invocations_per_order: Vec<(String, f64)>,
    /// Journal entries per order that Restate still holds (completed workflows keep
    /// theirs for their retention).
    pub journal_entries_per_order: f64,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms_since(at: Instant) -> f64 {
    at.elapsed().as_secs_f64() * 1e3
}

/// One order to approved (the cart may hold what earlier rows left in it); `Err`
/// names the step that failed.
async fn one(api: &Api, user: &str, id: &str, kind: Kind) -> Result<Placed, String> {
    let products: &[&str] = match kind {
        Kind::Split => &[SPLIT[0].0, SPLIT[1].0],
        Kind::Plain | Kind::Returned => &["P001"],
    };
    for product in products {
        let (status, body) = api.add_to_cart(user, json!(product), 1).await;
        if status != 200 {
            return Err(format!("add: {status} {body}"));
        }
    }
    let started = Instant::now();
    let order = json!({"order_id": id, "shipping_address": "1 Bench Street"});
    let (status, body) = api.checkout(user, &order, None).await;
    let checkout_ms = ms_since(started);
    let Some(awakeable) = body["awakeable_id"].as_str().filter(|_| status == 202) else {
        return Err(format!("checkout: {status} {body}"));
    };
    let total = api.order(user, id).await.1["total_cents"]
        .as_i64()
        .unwrap_or(0);
    let pay_sent = unix_ms();
    let (status, body) = api.pay(awakeable, total).await;
    if status != 200 {
        return Err(format!("pay: {status} {body}"));
    }
    let approve_sent = unix_ms();
    let started = Instant::now();
    let (status, body) = api.approve("admin", id).await;
    if status != 200 {
        return Err(format!("approve: {status} {body}"));
    }
    Ok(Placed {
        id: id.to_owned(),
        checkout_ms,
        pay_sent,
        approve_sent,
        approve_ms: ms_since(started),
    })
}

/// Once `id` is delivered, its shopper returns it and the admin approves and receives
/// the parcel: `Err` names the step that failed. The shopper looks at the order once
/// the delivery timer has run, then every half second (a client polling every 250 ms
/// from the approval on made the web role's CPU per returned order three times a plain
/// one's, all of it the bench's own looks).
async fn give_back(api: Api, user: String, id: String, delay: Duration) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    tokio::time::sleep(delay).await;
    loop {
        let (_, order) = api.order(&user, &id).await;
        if order["status"] == "delivered" {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{id} not delivered: {}", order["status"]));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let body = json!({"items": [{"product_id": 1, "quantity": 1}], "reason": "bench"});
    let (status, ret) = api
        .post(&format!("/api/orders/{id}/returns"), Some(&user), &body)
        .await;
    let Some(rid) = ret["return_id"].as_str().filter(|_| status == 202) else {
        return Err(format!("return: {status} {ret}"));
    };
    for (step, body) in [
        ("approve", json!({})),
        ("receive", json!({"restock": true})),
    ] {
        let path = format!("/api/admin/returns/{rid}/{step}");
        let (status, reply) = api.post(&path, Some("admin"), &body).await;
        if status != 200 {
            return Err(format!("return {step}: {status} {reply}"));
        }
    }
    Ok(())
}

/// How much load a whole-orders run puts on.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub shoppers: usize,
    pub seconds: u64,
    /// The delivery timer the app runs with.
    pub delay: Duration,
}

/// ShopFlow's processes by role: the web role (the supervisor's own process), the
/// service endpoint and restate-server.
pub fn roles(app: &TestApp) -> Vec<(String, i32)> {
    let mut all = vec![("shopflow (web role)".to_owned(), app.pid())];
    for (pid, cmd) in app.children() {
        let role = if cmd.contains("restate-server") {
            "restate-server"
        } else {
            "shopflow services"
        };
        all.push((role.to_owned(), pid));
    }
    // Always web, endpoint, restate-server (the order of the table's CPU column).
    all.sort_by_key(|(role, _)| match role.as_str() {
        "shopflow (web role)" => 0,
        "shopflow services" => 1,
        _ => 2,
    });
    all
}

/// CPU time each process has used so far (user + system), ms.
fn cpu_ms(app: &TestApp) -> Vec<(String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    roles(app)
        .into_iter()
        .map(|(role, pid)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command's closing parenthesis: utime and stime are the
            // 12th and 13th of them.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let field = |i: usize| {
                rest.split_whitespace()
                    .nth(i)
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let used = field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0);
            (role, used / ticks * 1e3)
        })
        .collect()
}

/// Each process's resident memory every second until `until`.
async fn sample_memory(
    roles: Vec<(String, i32)>,
    until: Instant,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let started = Instant::now();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = roles
        .iter()
        .map(|(role, _)| (role.clone(), Vec::new()))
        .collect();
    while Instant::now() <= until {
        let at = started.elapsed().as_secs_f64();
        for ((_, pid), (_, points)) in roles.iter().zip(series.iter_mut()) {
            points.push((at, crate::streams::rss_mib(*pid)));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    series
}

/// Invocations Restate holds, by handler, and its journal entries.
async fn restate_counts(app: &TestApp) -> (std::collections::BTreeMap<String, f64>, f64) {
    let invocations = app
        .restate_sql(
            "SELECT target_service_name || '/' || target_handler_name AS handler, COUNT(*) AS n \
             FROM sys_invocation GROUP BY handler ORDER BY handler",
        )
        .await
        .into_iter()
        .map(|r| {
            let n = r["n"].as_f64().unwrap_or(0.0);
            (r["handler"].as_str().unwrap_or("?").to_owned(), n)
        })
        .collect();
    let journal = app
        .restate_sql("SELECT COUNT(*) AS n FROM sys_journal")
        .await;
    (invocations, journal[0]["n"].as_f64().unwrap_or(0.0))
}

/// Runs `shoppers` shoppers for `seconds`, then waits for every order's delivery.
pub async fn run(app: &TestApp, load: Load, kind: Kind, round: usize) -> Orders {
    let Load {
        shoppers,
        seconds,
        delay,
    } = load;
    let api = app.api.clone();
    let (invocations_before, journal_before) = restate_counts(app).await;
    let cpu_before = cpu_ms(app);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let memory = tokio::spawn(sample_memory(roles(app), deadline));
    let tasks: Vec<_> = (1..=shoppers)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let user = format!("shopper-{i:04}");
                let (mut placed, mut errors, mut returns) = (Vec::new(), 0, Vec::new());
                for n in 1.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let id = format!("bench-{round}-{i}-{n}");
                    match one(&api, &user, &id, kind).await {
                        Ok(p) => placed.push(p),
                        Err(e) => {
                            // This shopper's cart may be stuck now: stop, and say so.
                            errors += 1;
                            eprintln!("{user}: {e}");
                            break;
                        }
                    }
                    if kind == Kind::Returned {
                        returns.push(tokio::spawn(give_back(
                            api.clone(),
                            user.clone(),
                            id,
                            delay,
                        )));
                    }
                }
                let ended = Instant::now();
                let mut returned = 0;
                for r in returns {
                    match r.await.unwrap() {
                        Ok(()) => returned += 1,
                        Err(e) => {
                            errors += 1;
                            eprintln!("{user}: {e}");
                        }
                    }
                }
                (placed, errors, ended, returned)
            })
        })
        .collect();
    let (mut placed, mut errors, mut ended, mut returned) = (Vec::new(), 0, started, 0);
    for task in tasks {
        let (p, e, end, r) = task.await.unwrap();
        placed.extend(p);
        errors += e;
        ended = ended.max(end);
        returned += r;
    }
    // The time the shoppers placed orders in (returns may still run after it).
    let seconds = (ended - started).as_secs_f64();

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        app.config.data_dir.join("shopflow.db").display()
    ))
    .await
    .unwrap();
    let delivered = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM orders WHERE status = 'delivered' AND order_id LIKE $1",
        )
        .bind(format!("bench-{round}-%"))
        .fetch_one(&pool)
        .await
        .unwrap() as usize
    };
    let waiting = Instant::now();
    while delivered().await < placed.len() && waiting.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // When each step happened, from the notification log (the first of each kind).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT order_id, kind, MIN(created_at) FROM notifications
         WHERE order_id LIKE $1 AND kind IN ('approval_needed', 'shipment_initiated', 'delivered')
         GROUP BY order_id, kind",
    )
    .bind(format!("bench-{round}-%"))
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut at: HashMap<(String, String), i64> = HashMap::new();
    for (order, kind, created) in rows {
        let t = humantime::parse_rfc3339(&created).unwrap();
        let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        at.insert((order, kind), ms);
    }
    let when = |p: &Placed, kind: &str| at.get(&(p.id.clone(), kind.to_owned())).copied();
    let steps =
        |f: &dyn Fn(&Placed) -> Option<f64>| Step::of(placed.iter().filter_map(f).collect());

    let orders = placed.len().max(1) as f64;
    let (invocations_after, journal_after) = restate_counts(app).await;
    let mut invocations: Vec<(String, f64)> = invocations_after
        .iter()
        .map(|(handler, n)| {
            let before = invocations_before.get(handler).copied().unwrap_or(0.0);
            (handler.clone(), (n - before) / orders)
        })
        .collect();
    invocations.retain(|(_, per)| *per >= 0.01);
    let journal = (journal_after - journal_before) / orders;

    let cpu: Vec<(String, f64)> = cpu_ms(app)
        .into_iter()
        .zip(cpu_before)
        .map(|((role, after), (_, before))| (role, (after - before) / orders))
        .collect();
    let sample = |f: &dyn Fn(&Placed) -> Option<f64>| placed.iter().filter_map(f).collect();
    let samples = vec![
        ("checkout call", sample(&|p| Some(p.checkout_ms))),
        (
            "approve sent → in transit",
            sample(&|p| when(p, "shipment_initiated").map(|t| (t - p.approve_sent) as f64)),
        ),
        (
            "callback sent → awaiting approval",
            sample(&|p| when(p, "approval_needed").map(|t| (t - p.pay_sent) as f64)),
        ),
    ];
    Orders {
        kind,
        returned,
        cpu_ms_per_order: cpu,
        memory: memory.await.unwrap(),
        samples,
        shoppers,
        seconds,
        placed: placed.len(),
        delivered: delivered().await,
        errors,
        per_second: placed.len() as f64 / seconds,
        checkout: steps(&|p| Some(p.checkout_ms)),
        callback_to_awaiting_approval: steps(&|p| {
            when(p, "approval_needed").map(|t| (t - p.pay_sent) as f64)
        }),
        approve_call: steps(&|p| Some(p.approve_ms)),
        approve_to_shipping: steps(&|p| {
            when(p, "shipment_initiated").map(|t| (t - p.approve_sent) as f64)
        }),
        shipping_to_delivered_less_delay: steps(&|p| {
            let (shipped, delivered) = (when(p, "shipment_initiated")?, when(p, "delivered")?);
            Some((delivered - shipped) as f64 - delay.as_secs_f64() * 1e3)
        }),
        invocations_per_order: invocations,
        journal_entries_per_order: journal,
    }
}
