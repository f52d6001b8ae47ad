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

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

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
    request: &'static str,
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
    connections: usize,
}

impl Bench {
    /// Runs wrk once against `side` for `seconds`.
    fn wrk(&self, side: &Side, seconds: u64) -> Run {
        let script = self.scripts.path().join("script.lua");
        std::fs::write(&script, format!("{PRELUDE}\n{}", side.request)).unwrap();
        let out = Command::new("wrk")
            .args(["-t2", &format!("-c{}", self.connections)])
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
    fn row(&self, name: &'static str, floor_name: &'static str, ours: Side, floor: Side) -> Row {
        // A short warm-up of each side, not counted.
        self.wrk(&ours, 1);
        self.wrk(&floor, 1);
        let pairs: Vec<(Run, Run)> = (0..self.pairs)
            .map(|_| {
                (
                    self.wrk(&ours, self.seconds),
                    self.wrk(&floor, self.seconds),
                )
            })
            .collect();
        let (a, b): (Vec<Run>, Vec<Run>) = pairs.iter().copied().unzip();
        let (shopflow, floor) = (Figure::of(&a), Figure::of(&b));
        let row = Row {
            name,
            floor_name,
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
        "# Benchmarks\n\nMade by `make bench` on {} (commit {}), {}: wrk -t2 -c{}, {} s per \
         run, {} runs of each side alternated A B A B; medians. The floor of a durable call \
         is Restate itself: the same handler called directly on the ingress.\n\n\
         | figure | ShopFlow | floor | throughput ratio | p50 ratio |\n|---|---|---|---|---|\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        commit(),
        machine(),
        bench.connections,
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
            "| {} | {} | {}: {} | {:.2}× | {:.2}× |\n",
            r.name,
            fig(&r.shopflow),
            r.floor_name,
            fig(&r.floor),
            r.throughput_ratio,
            r.p50_ratio
        ));
    }
    md
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
    let mut config = AppConfig::new(dir.path());
    config.demo();
    config.extra_env.extend([
        ("SHOPFLOW_SEED".into(), "bench".into()),
        ("SHOPFLOW_DELIVERY_DELAY".into(), "1s".into()),
    ]);
    let app = TestApp::start(config).await;
    let web = format!("http://{}", app.config.http);
    let ingress = format!("http://{}", app.config.ingress);
    let bench = Bench {
        scripts: tempfile::tempdir().unwrap(),
        seconds: env_number("BENCH_SECONDS", 5),
        pairs: env_number("BENCH_PAIRS", 3) as usize,
        connections: 10,
    };
    let side = |url: &str, request| Side {
        url: url.to_owned(),
        request,
    };

    let rows = vec![
        bench.row(
            "cart write (add, remove in turn)",
            "ingress `AddItem`/`RemoveItem`",
            side(&web, SHOPFLOW_CART_WRITE),
            side(&ingress, INGRESS_CART_WRITE),
        ),
        bench.row(
            "cart read",
            "ingress `GetBasket`",
            side(&web, SHOPFLOW_CART_READ),
            side(&ingress, INGRESS_CART_READ),
        ),
    ];

    let out = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench")
            .display()
            .to_string()
    }));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("results.md"), markdown(&rows, &bench)).unwrap();
    let json = serde_json::json!({ "machine": machine(), "commit": commit(), "rows": rows });
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
}
