//! Whole orders: many shoppers each placing, paying and (as the admin) approving
//! orders one after another for a while, then every order delivered. Step times come
//! from the notification log's timestamps (written as each step happens), so no
//! polling adds load while the orders run.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use crate::common::{Api, TestApp};

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
async fn one(api: &Api, user: &str, id: &str) -> Result<Placed, String> {
    let (status, body) = api.add_to_cart(user, json!("P001"), 1).await;
    if status != 200 {
        return Err(format!("add: {status} {body}"));
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
pub async fn run(app: &TestApp, shoppers: usize, seconds: u64, delay: Duration) -> Orders {
    let api = app.api.clone();
    let (invocations_before, journal_before) = restate_counts(app).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (1..=shoppers)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let user = format!("shopper-{i:04}");
                let (mut placed, mut errors) = (Vec::new(), 0);
                for n in 1.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    match one(&api, &user, &format!("bench-{i}-{n}")).await {
                        Ok(p) => placed.push(p),
                        Err(e) => {
                            // This shopper's cart may be stuck now: stop, and say so.
                            errors += 1;
                            eprintln!("{user}: {e}");
                            break;
                        }
                    }
                }
                (placed, errors)
            })
        })
        .collect();
    let (mut placed, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (p, e) = task.await.unwrap();
        placed.extend(p);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        app.config.data_dir.join("shopflow.db").display()
    ))
    .await
    .unwrap();
    let delivered = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM orders WHERE status = 'delivered' AND order_id LIKE 'bench-%'",
        )
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
         WHERE order_id LIKE 'bench-%' AND kind IN ('approval_needed', 'shipment_initiated', 'delivered')
         GROUP BY order_id, kind",
    )
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

    Orders {
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
