//! `make bench`: ShopFlow side by side with the floor beneath it, on this machine.
//!
//! A fresh release build runs on free ports with its own data dir, the load-test seed
//! (`SHOPFLOW_SEED=bench`: a thousand shoppers, stock nobody sells out) and a 1 s
//! delivery timer. Load comes from `wrk` (Debian's package; the Makefile installs it).
//! For each row the two sides run alternately, A B A B …, and the medians are
//! compared, because a shared 2-core machine is noisy. The floor of a durable call is
//! Restate itself: the same handler called directly on the ingress.
//!
//! Writes `bench/results.md` and `bench/results.json`. `BENCH_SECONDS` (default 5)
//! and `BENCH_PAIRS` (default 3) set each run's length and the number of A B pairs.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "compare/hey.rs"]
mod hey;
#[path = "compare/orders.rs"]
mod orders;
#[path = "compare/plots.rs"]
mod plots;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/streams.rs"]
mod streams;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Bytes;
use axum::http::header;
use axum::serve::ListenerExt;
use common::{AppConfig, TestApp};
use serde::Serialize;

/// What every script shares: a thousand shoppers, spread over wrk's threads, and one
/// JSON line with the figures at the end.
const PRELUDE: &str = r#"
local threads = 0
function setup(thread)
  thread:set("offset", threads * 499)
  threads = threads + 1
end
n = 0
function shopper()
  n = n + 1
  return string.format("shopper-%04d", (offset + math.floor(n / 2)) % 1000 + 1)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non_2xx":%d,"failed":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// One side of a row: where the load goes and the `request` function that makes it.
struct Side {
    url: String,
    request: String,
}

/// A plain GET of `path`.
fn get(path: &str) -> String {
    format!("function request()\n  return wrk.format(\"GET\", \"{path}\")\nend\n")
}

/// Cart writes through ShopFlow: add and remove in turn, each shopper's own cart.
const SHOPFLOW_CART_WRITE: &str = r#"
function request()
  local user = shopper()
  local headers = { ["X-User-ID"] = user, ["Content-Type"] = "application/json" }
  if n % 2 == 0 then
    return wrk.format("POST", "/api/cart/add", headers, '{"product_id":8,"quantity":1}')
  end
  return wrk.format("POST", "/api/cart/remove", headers, '{"product_id":8}')
end
"#;

/// The same writes straight to Restate's ingress: `UserSession/{user}/AddItem`, `RemoveItem`.
const INGRESS_CART_WRITE: &str = r#"
function request()
  local user = shopper()
  local headers = { ["Content-Type"] = "application/json" }
  if n % 2 == 0 then
    return wrk.format("POST", "/UserSession/" .. user .. "/AddItem", headers,
      '{"product_id":8,"quantity":1}')
  end
  return wrk.format("POST", "/UserSession/" .. user .. "/RemoveItem", headers, '{"product_id":8}')
end
"#;

const SHOPFLOW_CART_READ: &str = r#"
function request()
  return wrk.format("GET", "/api/cart", { ["X-User-ID"] = shopper() })
end
"#;

const INGRESS_CART_READ: &str = r#"
function request()
  return wrk.format("POST", "/UserSession/" .. shopper() .. "/GetBasket")
end
"#;

/// One run's figures, from wrk.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
struct Run {
    requests: u64,
    duration_us: u64,
    non_2xx: u64,
    failed: u64,
    p50_us: u64,
    p99_us: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

/// Medians of one side's runs.
#[derive(Clone, Copy, Debug, Serialize)]
struct Figure {
    req_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers that were not 2xx, or requests that failed, in all runs.
    errors: u64,
}

impl Figure {
    fn of(runs: &[Run]) -> Figure {
        Figure {
            req_per_s: median(runs.iter().map(Run::rate).collect()),
            p50_ms: median(runs.iter().map(|r| r.p50_us as f64 / 1e3).collect()),
            p99_ms: median(runs.iter().map(|r| r.p99_us as f64 / 1e3).collect()),
            errors: runs.iter().map(|r| r.non_2xx + r.failed).sum(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    name: &'static str,
    floor_name: &'static str,
    /// wrk's connections (`-c`).
    connections: usize,
    shopflow: Figure,
    floor: Figure,
    /// Throughput, ShopFlow ÷ floor: the median of each pair's ratio.
    throughput_ratio: f64,
    /// Median latency, ShopFlow ÷ floor.
    p50_ratio: f64,
    /// Every run, in the order they ran: (ShopFlow, floor) per pair.
    pairs: Vec<(Run, Run)>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

struct Bench {
    scripts: tempfile::TempDir,
    seconds: u64,
    pairs: usize,
}

impl Bench {
    /// Runs wrk once against `side` for `seconds`.
    fn wrk(&self, side: &Side, connections: usize, seconds: u64) -> Run {
        let script = self.scripts.path().join("script.lua");
        std::fs::write(&script, format!("{PRELUDE}\n{}", side.request)).unwrap();
        let out = Command::new("wrk")
            .args(["-t2", &format!("-c{connections}")])
            .arg(format!("-d{seconds}s"))
            .args(["--timeout", "10s", "-s"])
            .arg(&script)
            .arg(&side.url)
            .output()
            .expect("wrk (make bench installs it)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BENCH "))
            .unwrap_or_else(|| panic!("no figures from wrk: {stdout}"));
        serde_json::from_str(line).unwrap()
    }

    /// Runs both sides alternately and compares their medians.
    fn row(
        &self,
        name: &'static str,
        floor_name: &'static str,
        connections: usize,
        ours: Side,
        floor: Side,
    ) -> Row {
        // A short warm-up of each side, not counted.
        self.wrk(&ours, connections, 1);
        self.wrk(&floor, connections, 1);
        let pairs: Vec<(Run, Run)> = (0..self.pairs)
            .map(|_| {
                (
                    self.wrk(&ours, connections, self.seconds),
                    self.wrk(&floor, connections, self.seconds),
                )
            })
            .collect();
        let (a, b): (Vec<Run>, Vec<Run>) = pairs.iter().copied().unzip();
        let (shopflow, floor) = (Figure::of(&a), Figure::of(&b));
        let row = Row {
            name,
            floor_name,
            connections,
            shopflow,
            floor,
            throughput_ratio: median(pairs.iter().map(|(a, b)| a.rate() / b.rate()).collect()),
            p50_ratio: shopflow.p50_ms / floor.p50_ms,
            pairs,
        };
        println!(
            "{name:<40} {:>7.0} req/s vs {:>7.0} req/s: {:.2}×, p50 {:.1} vs {:.1} ms ({:.2}×)",
            row.shopflow.req_per_s,
            row.floor.req_per_s,
            row.throughput_ratio,
            row.shopflow.p50_ms,
            row.floor.p50_ms,
            row.p50_ratio
        );
        row
    }
}

/// The body ShopFlow answers `url` with.
async fn body_of(url: &str) -> Bytes {
    let reply = reqwest::get(url).await.unwrap().error_for_status().unwrap();
    reply.bytes().await.unwrap()
}

/// Serves each (path, body) from memory with bare axum (TCP_NODELAY, as ShopFlow), on a
/// runtime of its own as ShopFlow's web role has; returns the base URL.
fn serve_from_memory(routes: Vec<(&'static str, Bytes)>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut router = axum::Router::new();
            for (path, body) in routes {
                let answer = move || {
                    let body = body.clone();
                    async move { ([(header::CONTENT_TYPE, "application/json")], body) }
                };
                router = router.route(path, axum::routing::get(answer));
            }
            let listener = tokio::net::TcpListener::from_std(listener)
                .unwrap()
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            axum::serve(listener, router).await.unwrap();
        });
    });
    url
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn markdown(rows: &[Row], bench: &Bench) -> String {
    let mut md = format!(
        "# Benchmarks\n\nMade by `make bench` on {} (commit {}), {}: wrk -t2 with the \
         connections shown, {} s per run, {} runs of each side alternated A B A B; medians. \
         The floor of a durable call is Restate itself: the same handler called directly on \
         the ingress; the floor of a read that needs nothing durable is the same bytes served \
         from memory by bare axum.\n\n\
         | figure | ShopFlow | floor | throughput ratio | p50 ratio |\n|---|---|---|---|---|\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        commit(),
        machine(),
        bench.seconds,
        bench.pairs,
    );
    for r in rows {
        let fig = |f: &Figure| {
            let errors = match f.errors {
                0 => String::new(),
                n => format!(", **{n} errors**"),
            };
            format!(
                "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms{errors}",
                f.req_per_s, f.p50_ms, f.p99_ms
            )
        };
        md.push_str(&format!(
            "| {} (c={}) | {} | {}: {} | {:.2}× | {:.2}× |\n",
            r.name,
            r.connections,
            fig(&r.shopflow),
            r.floor_name,
            fig(&r.floor),
            r.throughput_ratio,
            r.p50_ratio
        ));
    }
    md
}

#[derive(Debug, Serialize)]
struct Footprint {
    /// A fresh data dir to `/healthz` 200: restate-server started, the endpoint
    /// registered, the database migrated and seeded.
    startup_s: f64,
    /// Seconds of the clean release build `make bench` timed first, if it did.
    clean_build_s: Option<u64>,
    binary_mib: f64,
    /// Resident memory of each process (MiB) right after the start, and after the
    /// cart and catalog rows.
    idle: Vec<(String, f64)>,
    after_rows: Vec<(String, f64)>,
}

/// Resident memory of ShopFlow's processes, by role.
fn resident(app: &TestApp) -> Vec<(String, f64)> {
    let mut all = vec![(
        "shopflow (web role)".to_owned(),
        streams::rss_mib(app.pid()),
    )];
    for (pid, cmd) in app.children() {
        let role = if cmd.contains("restate-server") {
            "restate-server"
        } else {
            "shopflow services"
        };
        all.push((role.to_owned(), streams::rss_mib(pid)));
    }
    all
}

fn footprint_markdown(f: &Footprint) -> String {
    let show = |all: &[(String, f64)]| {
        all.iter()
            .map(|(role, mib)| format!("{role} {mib:.0} MiB"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "\n## Footprint\n\n| figure | value |\n|---|---|\n\
         | start-up, fresh data dir → `/healthz` 200 | {:.1} s |\n\
         | clean release build (2 cores, crates already downloaded) | {} |\n\
         | `shopflow` binary | {:.1} MiB |\n\
         | RSS idle | {} |\n\
         | RSS after the cart and catalog rows | {} |\n",
        f.startup_s,
        f.clean_build_s
            .map_or("not timed (`make bench` times it)".to_owned(), |s| {
                format!("{}m {:02}s", s / 60, s % 60)
            }),
        f.binary_mib,
        show(&f.idle),
        show(&f.after_rows)
    )
}

/// What profiling (perf, /proc) showed where a goal is missed; kept with the tables.
const PROFILE_NOTES: &str = "
## Where the time goes, and what is in the way where a goal is missed

Profiled with `perf record -g` on each process under the whole-orders load (50 shoppers,
release build, the default configuration) and the catalog and cart rows; CPU per order
of each process is in the whole-orders table above (from /proc).

- **Whole orders** are CPU-bound on the two cores, and restate-server takes the most:
  about 10–14 ms of CPU per plain order (46 journal entries, 5 invocations): RocksDB
  memtable inserts and lookups, zstd, memcpy, its own task switching. With ShopFlow's
  processes taking nothing at all, two cores would give restate-server alone about 140
  to 190 orders/s. ShopFlow's share is the endpoint (7–9 ms per order) and the web role
  (3–5 ms). In the endpoint, a third of the CPU is sqlx's SQLite connection threads:
  every statement is a round trip to the connection's own thread (futex wake-ups are
  17 % of its profile, sqlx's worker 10 %, SQLite itself 11 %, pread/pwrite/fdatasync
  10 %); the verification of Restate's request identity (ed25519) is 2.5 %. What would
  take orders to 150/s on two cores: restate-server's own share alone allows about that,
  so ShopFlow's processes would need cores of their own; within the design, each step's
  database work as one transaction of fewer statements (today a step writes the read
  model, the notifications and the gateway's record as separate statements). Beyond it
  (DESIGN.md names both): the shipping booking inline in the workflow (a `ctx.run`
  instead of the durable call to `ShippingService/InitiateShipment`: 5 journal entries
  and one invocation less per parcel) and the payment wait in the workflow instead of a
  `Checkout` that holds the user's object.
- **Journal entries per order: 68 → 46.** Every step that moves an order now does its
  work, the read model's new status and the notifications in one `ctx.run`
  (`enter_<status>`), the saga rides in the workflow's status, checkout's claim,
  reservation and payment request are one step and its end another. Below 30 needs the
  structural changes above; each remaining `ctx.run` is two entries (the command and
  its completion), each call three.
- **Approve → in transit p99** is queueing: at 50 shoppers every step waits for CPU in
  restate-server (the latency chart: checkout and the payment callback queue too). What
  it would take is what 150 orders/s takes, CPU to spare: at the 80–90 orders/s of a
  fresh app the two cores are all in use (about 21 ms of CPU per order in the three
  processes, and the shoppers' own client besides), and each of the five steps between
  the approval and the transit (the claim, the promise, `enter_shipping`, the booking
  call, `enter_in_transit`) waits its turn in restate-server's queues.
- **Split orders ÷ plain** (0.71–0.81× over runs of the same build): a split order is
  two cart adds, a second booking (3 journal entries in the workflow and an
  `InitiateShipment` invocation of 4) and a capture step per parcel (4 entries): 57
  entries against 46, and 1.25–1.35× a plain order's CPU in each of the three
  processes. 0.8× needs a split order to cost at most 1.25× a plain one: the parcels'
  captures in the step that puts the order in transit (4 entries less, but a parcel
  would wait for the other's booking to be captured, where DESIGN.md §7.4 captures each
  as it ships), or the bookings inline (7 entries less per parcel, against DESIGN.md
  §2's durable call).
- **Restate's own settings, tried** (orders-only runs, restate-server's CPU per plain
  order): `RESTATE_LOG_FILTER=warn` 11.2 ms and 2 partitions instead of 4 12.2 ms,
  against 10.8–11.7 ms as configured: nothing beyond the noise. Its profile is RocksDB
  memtable work, memcpy, zstd and task switches (four partition processors and two
  workers on two cores).
- **Logging**: the default (`info`) cost ~20 % of whole orders before this release,
  through the SDK's span around every invocation (entered and left on every poll);
  `restate_sdk` is at `warn` by default now. Log lines are written by a thread of their
  own in batches (with a write to stderr per line, under its lock, the catalog served
  about 0.4× of bare axum), and reads answered 2xx log at `debug`. Spans below the
  filter's level were still made: `RUST_LOG` combined with the replay-aware filter by
  `and`, and the exporter's layer absent (`None`), each counted as wanting every span,
  so the registry made every span of every level of every crate (a read's request span,
  hyper's and h2's) and dropped it unseen. Now `RUST_LOG` is the outer filter and an
  absent exporter wants nothing (a unit test checks both): catalog 0.64× → 0.71×, cart
  reads 0.85× → 0.93× (the same bench before and after).
- **Catalog and product reads** (0.64–0.75× over runs; the goal is 0.7×): what is left
  is the work every request does (metrics, host check, security headers, gzip
  negotiation, the header-read timer) and hyper's and the kernel's per-connection work:
  in the profile of these rows the kernel's TCP and scheduling are 60 % of the web
  role's CPU, hyper, http and tokio most of the rest, and none of ShopFlow's own
  functions is above 1 %; the body is encoded once per catalog version and sent without
  a copy. A steady margin would take fewer of those per-request layers (each a few
  tenths of a per cent) or a faster allocator (glibc's malloc and free are 7 % of the
  web role's CPU here; mimalloc took that to 4 % for 20 MiB more memory per role, not
  taken). Ratios move by ±0.05 between runs on two shared cores.
- **Cart reads and writes** (reads 0.85–0.98×, writes 0.90–1.00× over runs): the web
  role's hop is a second HTTP round trip (an axum request in, a reqwest call to the
  ingress out; about 0.3 ms of the web role's CPU per call, two thirds of it system
  calls and task switches) sharing two cores with restate-server; a cart write reads no
  database unless its user holds a checkout claim. Reads at 0.95× every run would take
  not making a durable call per read: a copy of each basket in the database, written by
  the step that changes it, read 15× the floor, but was taken out again, as the copy and
  the user's object can part (an operator's cancel arriving after the step ran, a
  backup taken between Restate's copy and the database's).
- **Orders returned after delivery** cost three more invocations and 25 more journal
  entries each (the return's workflow, its approval and its receipt, now one step for
  the refund, the restock and the record) while the next orders are placed:
  restate-server's CPU per order is 1.8–1.9× a plain order's, so on two cores where it
  is the bottleneck 0.8× of plain orders needs the return to cost Restate about a
  half of what it does (today a return is a workflow of its own, with an invocation
  for the approval and one for the receipt).
";

/// One order per user, paid and waiting for approval: workflows under way to watch.
async fn awaiting_approval(app: &TestApp, users: &[String]) -> Vec<(String, String)> {
    let mut orders = Vec::new();
    for user in users {
        let id = format!("watched-{user}");
        let (awakeable, total) = app.api.place_order(user, &id, &[("P002", 1)]).await;
        assert_eq!(app.api.pay(&awakeable, total).await.0, 200);
        orders.push((user.clone(), id));
    }
    for (user, id) in &orders {
        app.api.wait_status(user, id, "awaiting_approval").await;
    }
    orders
}

#[derive(Debug, Serialize)]
struct StreamsRow {
    notification_streams: usize,
    workflow_streams: usize,
    opened_in_s: f64,
    delivery: streams::Delivery,
    web_rss_mib_before: f64,
    web_rss_mib_open: f64,
    web_rss_mib_after: f64,
    cart_read_without: Run,
    cart_read_with: Run,
    cart_read_without_again: Run,
    /// Cart reads with the streams open ÷ the mean of the runs without.
    cart_read_ratio: f64,
}

/// Cart reads without streams, with them open (and one notification delivered to every
/// user), and without again; the web role's memory before, while open and after.
async fn streams_row(
    app: &TestApp,
    bench: &Bench,
    cart_read: &Side,
    users: &[String],
    per_user: usize,
    orders: &[(String, String)],
    workflow: usize,
) -> StreamsRow {
    let reads = || tokio::task::block_in_place(|| bench.wrk(cart_read, 10, bench.seconds));
    let web_rss_mib_before = streams::rss_mib(app.pid());
    let cart_read_without = reads();
    // Each row's marker is its own: a new stream's history holds the last row's.
    let round = per_user * 100_000 + workflow;
    let mut open = streams::open(app, users, per_user, orders, workflow, round).await;
    let web_rss_mib_open = streams::rss_mib(app.pid());
    eprintln!(
        "streams open (web role pid {}); cart reads with them",
        app.pid()
    );
    let delivery = open.deliver(app, users, round).await;
    if workflow > 0 {
        // Each watched order is looked at when its pane opens and once more a second
        // later (the database and Restate's introspection), then only on its news:
        // measure the steady state, not the opening burst.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    let cart_read_with = reads();
    let opened_in_s = open.opened_in.as_secs_f64();
    open.close().await;
    // The web role hands freed memory back within its 5 s look: wait for that, then
    // until the figure holds still.
    let settle = std::time::Instant::now();
    let mut web_rss_mib_after = streams::rss_mib(app.pid());
    while settle.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = streams::rss_mib(app.pid());
        let still = (now - web_rss_mib_after).abs() < 0.5;
        web_rss_mib_after = now;
        if still && settle.elapsed() > std::time::Duration::from_secs(6) {
            break;
        }
    }
    let cart_read_without_again = reads();
    let row = StreamsRow {
        notification_streams: users.len() * per_user,
        workflow_streams: workflow,
        opened_in_s,
        web_rss_mib_before,
        web_rss_mib_open,
        web_rss_mib_after,
        cart_read_ratio: cart_read_with.rate()
            / ((cart_read_without.rate() + cart_read_without_again.rate()) / 2.0),
        delivery,
        cart_read_without,
        cart_read_with,
        cart_read_without_again,
    };
    println!(
        "{} notification + {} workflow streams: delivery p50 {:.0} ms p99 {:.0} ms ({}/{}), \
         web RSS {:.0} → {:.0} → {:.0} MiB, cart reads {:.2}×",
        row.notification_streams,
        row.workflow_streams,
        row.delivery.p50_ms,
        row.delivery.p99_ms,
        row.delivery.received,
        row.delivery.clients,
        row.web_rss_mib_before,
        row.web_rss_mib_open,
        row.web_rss_mib_after,
        row.cart_read_ratio
    );
    row
}

fn streams_markdown(rows: &[StreamsRow]) -> String {
    let mut md = String::from(
        "\n## Live streams\n\nOne notification per user written to the log in one \
         transaction; delivery is the time from its commit until each notification client \
         has read it. Cart reads (wrk -c10) without the streams, with them open, and \
         without again.\n\n\
         | streams open | delivered | delivery p50 / p99 | web RSS before / open / after | \
         cart reads with ÷ without |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let delivery = match r.delivery.clients {
            0 => "no notification streams | —".to_owned(),
            _ => format!(
                "{}/{} | {:.0} / {:.0} ms",
                r.delivery.received, r.delivery.clients, r.delivery.p50_ms, r.delivery.p99_ms
            ),
        };
        md += &format!(
            "| {} notification + {} workflow | {delivery} | {:.0} / {:.0} / {:.0} MiB \
             | {:.0} ÷ {:.0} req/s = {:.2}× |\n",
            r.notification_streams,
            r.workflow_streams,
            r.web_rss_mib_before,
            r.web_rss_mib_open,
            r.web_rss_mib_after,
            r.cart_read_with.rate(),
            (r.cart_read_without.rate() + r.cart_read_without_again.rate()) / 2.0,
            r.cart_read_ratio
        );
    }
    md
}

/// The bench's app: demo mode, the bench seed, a 1 s delivery timer, room for the
/// streams rows.
fn bench_config(dir: &Path) -> AppConfig {
    let mut config = AppConfig::new(dir);
    config.demo();
    config.extra_env.extend([
        ("SHOPFLOW_SEED".into(), "bench".into()),
        ("SHOPFLOW_DELIVERY_DELAY".into(), "1s".into()),
        ("SHOPFLOW_MAX_STREAMS".into(), "10000".into()),
    ]);
    config
}

/// The catalog rows again on an app with `RUST_LOG=warn` (no line per request), for
/// what the default's logging costs.
async fn quiet_rows(bench: &Bench, memory: &str, paths: [&str; 2]) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = bench_config(dir.path());
    config.rust_log = Some("warn".into());
    let app = TestApp::start(config).await;
    let web = format!("http://{}", app.config.http);
    let side = |url: &str, path: &str| Side {
        url: url.to_owned(),
        request: get(path),
    };
    vec![
        bench.row(
            "catalog, `RUST_LOG=warn`",
            "the same bytes from memory",
            50,
            side(&web, paths[0]),
            side(memory, paths[0]),
        ),
        bench.row(
            "one product, `RUST_LOG=warn`",
            "the same bytes from memory",
            50,
            side(&web, paths[1]),
            side(memory, paths[1]),
        ),
    ]
}

/// Cart reads with 200 workflow streams open ÷ without, from the streams row that has
/// only those.
fn streams_ratio(rows: &[StreamsRow]) -> Option<f64> {
    rows.iter()
        .find(|r| r.notification_streams == 0)
        .map(|r| r.cart_read_ratio)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // As `make run` starts it: ShopFlow's default logging (one line per request), the
    // lines going to a file as an operator would keep them.
    let log = dir.path().join("shopflow.log");
    let mut config = bench_config(dir.path());
    config.rust_log = std::env::var("BENCH_APP_RUST_LOG").ok();
    config.log_file = Some(log.clone());
    let binary = config.binary.clone();
    let started = std::time::Instant::now();
    let app = TestApp::start(config).await;
    let startup_s = started.elapsed().as_secs_f64();
    let idle = resident(&app);
    let web = format!("http://{}", app.config.http);
    let ingress = format!("http://{}", app.config.ingress);
    let bench = Bench {
        scripts: tempfile::tempdir().unwrap(),
        seconds: env_number("BENCH_SECONDS", 5),
        pairs: env_number("BENCH_PAIRS", 3) as usize,
    };
    let side = |url: &str, request: &str| Side {
        url: url.to_owned(),
        request: request.to_owned(),
    };
    const CATALOG: &str = "/api/products";
    const PRODUCT: &str = "/api/products/P001";
    let memory = serve_from_memory(vec![
        (CATALOG, body_of(&format!("{web}{CATALOG}")).await),
        (PRODUCT, body_of(&format!("{web}{PRODUCT}")).await),
    ]);

    // `BENCH_ONLY=rows,hey,streams,orders` (any of them) runs only those parts.
    let only = std::env::var("BENCH_ONLY").ok();
    let want = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    let mut rows = Vec::new();
    if want("rows") {
        rows = vec![
            bench.row(
                "cart write (add, remove in turn)",
                "ingress `AddItem`/`RemoveItem`",
                10,
                side(&web, SHOPFLOW_CART_WRITE),
                side(&ingress, INGRESS_CART_WRITE),
            ),
            bench.row(
                "cart read",
                "ingress `GetBasket`",
                10,
                side(&web, SHOPFLOW_CART_READ),
                side(&ingress, INGRESS_CART_READ),
            ),
            bench.row(
                "catalog `GET /api/products`",
                "the same bytes from memory",
                50,
                side(&web, &get(CATALOG)),
                side(&memory, &get(CATALOG)),
            ),
            bench.row(
                "one product `GET /api/products/P001`",
                "the same bytes from memory",
                50,
                side(&web, &get(PRODUCT)),
                side(&memory, &get(PRODUCT)),
            ),
        ];
        rows.extend(quiet_rows(&bench, &memory, [CATALOG, PRODUCT]).await);
    }
    let log_mib = std::fs::metadata(&log).map_or(0.0, |m| m.len() as f64 / 1048576.0);

    // `BENCH_SMOKE=1` (in `make test`): every scenario, a tenth of the streams and shoppers.
    let scale = if std::env::var_os("BENCH_SMOKE").is_some() {
        10
    } else {
        1
    };
    let mut hey_rows = Vec::new();
    if want("hey") {
        // Shoppers no other part of the bench uses.
        let mut fresh = (501..=1000).map(|i| format!("shopper-{i:04}"));
        hey_rows = vec![
            hey::row(
                "as written: one user, c=10",
                &web,
                &ingress,
                &mut fresh,
                1,
                (1000 / scale as u64, 10),
                bench.pairs,
            ),
            hey::row(
                "ten users, `-n 100 -c 1` each",
                &web,
                &ingress,
                &mut fresh,
                10,
                (100 / scale as u64, 1),
                bench.pairs,
            ),
        ];
        println!("{}", hey::markdown(&hey_rows));
    }

    let footprint = Footprint {
        startup_s,
        clean_build_s: std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clean-build-seconds"),
        )
        .ok()
        .and_then(|s| s.trim().parse().ok()),
        binary_mib: std::fs::metadata(&binary).map_or(0.0, |m| m.len() as f64 / 1048576.0),
        idle,
        after_rows: resident(&app),
    };
    println!("{}", footprint_markdown(&footprint));

    let shoppers: Vec<String> = (1..=1000 / scale)
        .map(|i| format!("shopper-{i:04}"))
        .collect();
    let cart_read = side(&web, SHOPFLOW_CART_READ);
    let mut streams = Vec::new();
    if want("streams") {
        let in_flight = awaiting_approval(&app, &shoppers[shoppers.len() * 9 / 10..]).await;
        streams = vec![
            streams_row(
                &app,
                &bench,
                &cart_read,
                &shoppers,
                0,
                &in_flight,
                200 / scale,
            )
            .await,
            streams_row(&app, &bench, &cart_read, &shoppers, 1, &[], 0).await,
            streams_row(
                &app,
                &bench,
                &cart_read,
                &shoppers,
                5,
                &in_flight,
                1000 / scale,
            )
            .await,
        ];
    }

    let load = orders::Load {
        shoppers: 50 / scale,
        // The smoke run in `make test`: long enough for every kind to deliver some.
        seconds: if scale > 1 { 2 } else { bench.seconds * 4 },
        delay: std::time::Duration::from_secs(1),
    };
    let mut orders = Vec::new();
    if want("orders") {
        orders::split_stock(&app.api).await;
        // Each kind in turn, A B C A B C: plain, split, returned.
        let kinds = [
            orders::Kind::Plain,
            orders::Kind::Split,
            orders::Kind::Returned,
        ];
        for round in 0..bench.pairs.min(2) {
            for (i, kind) in kinds.into_iter().enumerate() {
                let run = orders::run(&app, load, kind, round * kinds.len() + i).await;
                println!("{}", report::orders_markdown(&run));
                orders.push(run);
            }
        }
    }

    let out = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench")
            .display()
            .to_string()
    }));
    std::fs::create_dir_all(&out).unwrap();
    let goals = report::goals(&rows, &streams_ratio(&streams), &orders);
    let md = markdown(&rows, &bench)
        + &report::goals_markdown(&goals)
        + &format!(
            "\nThe app ran with ShopFlow's default logging (`info`: a line per write and per \
             refused request, reads answered 2xx at `debug`) written to a file, as `make run` \
             writes it to the terminal: **{log_mib:.1} MiB** of log lines by the end of the \
             rows above. The `RUST_LOG=warn` rows are a second app, for comparison.\n"
        )
        + &hey::markdown(&hey_rows)
        + &streams_markdown(&streams)
        + &report::whole_orders_markdown(&orders)
        + &footprint_markdown(&footprint)
        + &report::charts(&out, &goals, &orders)
        + PROFILE_NOTES;
    std::fs::write(out.join("results.md"), md).unwrap();
    let json = serde_json::json!({
        "machine": machine(),
        "commit": commit(),
        "rows": rows,
        "hey": hey_rows,
        "streams": streams,
        "orders": orders,
        "goals": goals,
        "log_mib": log_mib,
        "footprint": footprint,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json).unwrap() + "\n",
    )
    .unwrap();
    println!("written to {}", out.display());
    let errors: u64 = rows
        .iter()
        .map(|r| r.shopflow.errors + r.floor.errors)
        .sum();
    assert_eq!(errors, 0, "every request answered 2xx");
    for run in hey_rows
        .iter()
        .flat_map(|r| r.pairs.iter().flat_map(|(a, b)| [a, b]))
    {
        // As written, one user's line fills up: 409 `cart_line_full`-style refusals are
        // the right answer there; nothing else may fail.
        assert!(
            run.statuses.keys().all(|&code| code == 200 || code == 409),
            "hey: {}",
            run.statuses_text()
        );
    }
    for run in &orders {
        assert_eq!(run.errors, 0, "every {} went through", run.kind.name());
        assert_eq!(
            run.delivered,
            run.placed,
            "every one of the {} was delivered",
            run.kind.name()
        );
    }
}
