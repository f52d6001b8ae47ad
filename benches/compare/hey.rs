//! The classic cart load test, `hey -n 1000 -c 10 -m POST …/api/cart/add`, with the user
//! and the body it needs: as written (one user, so the cart line reaches its 99 and the
//! rest are refused with 409, as they should be), and spread over ten users (ten
//! `hey -n 100 -c 1` at once). The floor is the same load on the ingress's `AddItem`.
//! `hey` is Debian's package; the Makefile installs it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde::Serialize;

/// The product the rows add: one no other part of the bench puts in a cart.
const BODY: &str = r#"{"product_id":9,"quantity":1}"#;

/// One run of the command (or of the ten at once).
#[derive(Clone, Debug, Serialize)]
pub struct HeyRun {
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl HeyRun {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// "99 × 200, 901 × 409".
    pub fn statuses_text(&self) -> String {
        self.statuses
            .iter()
            .map(|(code, n)| format!("{n} × {code}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where the load goes: ShopFlow's `/api/cart/add` with the user's header, or the
/// ingress's `UserSession/{user}/AddItem`.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    ShopFlow(&'a str),
    Ingress(&'a str),
}

/// Runs one `hey -n {requests} -c {concurrency}` per user, all at once, and merges
/// their figures.
pub fn run(target: Target, users: &[String], requests: u64, concurrency: u64) -> HeyRun {
    let children: Vec<_> = users
        .iter()
        .map(|user| {
            let mut hey = Command::new("hey");
            hey.args(["-n", &requests.to_string(), "-c", &concurrency.to_string()])
                .args(["-m", "POST", "-T", "application/json", "-d", BODY])
                .args(["-t", "10", "-o", "csv"]);
            match target {
                Target::ShopFlow(web) => hey
                    .args(["-H", &format!("X-User-ID: {user}")])
                    .arg(format!("{web}/api/cart/add")),
                Target::Ingress(ingress) => {
                    hey.arg(format!("{ingress}/UserSession/{user}/AddItem"))
                }
            };
            hey.stdout(Stdio::piped())
                .spawn()
                .expect("hey (make bench installs it)")
        })
        .collect();
    let mut latencies = Vec::new();
    let mut statuses = BTreeMap::new();
    let mut seconds = 0f64;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "hey failed");
        // response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let [time, .., status, offset] = fields[..] else {
                continue;
            };
            let (Ok(time), Ok(status), Ok(offset)) =
                (time.parse::<f64>(), status.parse(), offset.parse::<f64>())
            else {
                continue;
            };
            latencies.push(time * 1e3);
            *statuses.entry(status).or_insert(0) += 1;
            seconds = seconds.max(offset + time);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    HeyRun {
        requests: latencies.len() as u64,
        seconds,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        statuses,
    }
}

/// One row: ShopFlow and the floor alternated, each run on users no run before used.
#[derive(Debug, Serialize)]
pub struct HeyRow {
    pub name: &'static str,
    pub pairs: Vec<(HeyRun, HeyRun)>,
    pub throughput_ratio: f64,
    pub p50_ratio: f64,
}

/// `users_per_run` users per run taken in turn from `fresh`; `requests` per user.
pub fn row(
    name: &'static str,
    web: &str,
    ingress: &str,
    fresh: &mut impl Iterator<Item = String>,
    users_per_run: usize,
    (requests, concurrency): (u64, u64),
    pairs: usize,
) -> HeyRow {
    let mut take = || fresh.by_ref().take(users_per_run).collect::<Vec<_>>();
    let pairs: Vec<(HeyRun, HeyRun)> = (0..pairs)
        .map(|_| {
            (
                run(Target::ShopFlow(web), &take(), requests, concurrency),
                run(Target::Ingress(ingress), &take(), requests, concurrency),
            )
        })
        .collect();
    let median = |v: Vec<f64>| super::median(v);
    let row = HeyRow {
        name,
        throughput_ratio: median(pairs.iter().map(|(a, b)| a.rate() / b.rate()).collect()),
        p50_ratio: median(pairs.iter().map(|(a, _)| a.p50_ms).collect())
            / median(pairs.iter().map(|(_, b)| b.p50_ms).collect()),
        pairs,
    };
    println!(
        "{name:<40} {:.2}×, p50 {:.2}× ({} / {})",
        row.throughput_ratio,
        row.p50_ratio,
        row.pairs[0].0.statuses_text(),
        row.pairs[0].1.statuses_text()
    );
    row
}

pub fn markdown(rows: &[HeyRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## The cart load test (hey)\n\n`hey -n 1000 -c 10 -m POST …/api/cart/add` with a \
         user and a body (`{\"product_id\":9,\"quantity\":1}`): as written, one user, whose \
         line reaches its 99 and the rest are refused with 409 as they should be; and the \
         same thousand requests from ten users (ten `hey -n 100 -c 1` at once). The floor \
         is the same load on the ingress's `UserSession/{user}/AddItem`; medians of the \
         runs, alternated, each on users no run before used.\n\n\
         | load | ShopFlow | floor | throughput ratio | p50 ratio |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let fig = |runs: Vec<&HeyRun>| {
            let median = |v: Vec<f64>| super::median(v);
            format!(
                "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms ({})",
                median(runs.iter().map(|r| r.rate()).collect()),
                median(runs.iter().map(|r| r.p50_ms).collect()),
                median(runs.iter().map(|r| r.p99_ms).collect()),
                runs[0].statuses_text()
            )
        };
        md += &format!(
            "| {} | {} | {} | {:.2}× | {:.2}× |\n",
            r.name,
            fig(r.pairs.iter().map(|p| &p.0).collect()),
            fig(r.pairs.iter().map(|p| &p.1).collect()),
            r.throughput_ratio,
            r.p50_ratio
        );
    }
    md
}
