//! The parts of bench/results.md that judge: each goal of the bench against what was
//! measured, the whole-orders runs side by side, and the charts beside the file.

use std::path::Path;

use serde::Serialize;

use crate::orders::{Kind, Orders, Step};
use crate::{Row, median, plots};

/// One goal and what this run measured for it.
#[derive(Debug, Serialize)]
pub struct Goal {
    pub name: String,
    pub goal: String,
    pub measured: String,
    pub met: bool,
    /// (measured, goal) when the goal is a ratio, for the chart.
    pub ratio: Option<(f64, f64)>,
}

fn at_least(name: &str, measured: f64, goal: f64, unit: &str) -> Goal {
    Goal {
        name: name.to_owned(),
        goal: format!("≥ {goal}{unit}"),
        measured: format!("{measured:.3}{unit}"),
        met: measured >= goal,
        ratio: (unit == "×").then_some((measured, goal)),
    }
}

fn at_most(name: &str, measured: f64, goal: f64, unit: &str) -> Goal {
    Goal {
        name: name.to_owned(),
        goal: format!("≤ {goal}{unit}"),
        measured: format!("{measured:.2}{unit}"),
        met: measured <= goal,
        ratio: None,
    }
}

/// The median of a figure over the runs of one kind.
fn per_kind(orders: &[Orders], kind: Kind, f: impl Fn(&Orders) -> f64) -> Option<f64> {
    let values: Vec<f64> = orders.iter().filter(|o| o.kind == kind).map(f).collect();
    (!values.is_empty()).then(|| median(values))
}

pub fn goals(rows: &[Row], streams_ratio: &Option<f64>, orders: &[Orders]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let row = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix));
    if let Some(r) = row("cart write") {
        goals.push(at_least(
            "cart write, throughput",
            r.throughput_ratio,
            0.9,
            "×",
        ));
        goals.push(at_most("cart write, p50 latency", r.p50_ratio, 1.15, "×"));
    }
    if let Some(r) = row("cart read") {
        goals.push(at_least(
            "cart read, throughput",
            r.throughput_ratio,
            0.95,
            "×",
        ));
    }
    if let Some(ratio) = streams_ratio {
        let name = "cart read with 200 workflow streams open ÷ without";
        goals.push(at_least(name, *ratio, 0.95, "×"));
    }
    for (prefix, name) in [
        ("catalog `GET", "catalog, default logging"),
        ("one product `GET", "one product, default logging"),
    ] {
        if let Some(r) = row(prefix) {
            goals.push(at_least(name, r.throughput_ratio, 0.7, "×"));
        }
    }
    let plain = per_kind(orders, Kind::Plain, |o| o.per_second);
    if let Some(plain) = plain {
        goals.push(at_least("whole orders, orders/s", plain, 150.0, ""));
        let p99 = per_kind(orders, Kind::Plain, |o| o.approve_to_shipping.p99_ms);
        let p99 = p99.unwrap_or(f64::NAN);
        goals.push(at_most("approve → in transit, p99", p99, 300.0, " ms"));
        let journal = per_kind(orders, Kind::Plain, |o| o.journal_entries_per_order);
        let journal = journal.unwrap_or(f64::NAN);
        goals.push(at_most("journal entries per order", journal, 30.0, ""));
        let invocations = per_kind(orders, Kind::Plain, |o| {
            o.invocations_per_order.iter().map(|(_, n)| n).sum()
        });
        let invocations = invocations.unwrap_or(f64::NAN);
        goals.push(at_most("invocations per order", invocations, 5.0, ""));
        for kind in [Kind::Split, Kind::Returned] {
            if let Some(rate) = per_kind(orders, kind, |o| o.per_second) {
                let name = format!("{} ÷ plain, orders/s", kind.name());
                goals.push(at_least(&name, rate / plain, 0.8, "×"));
            }
        }
    }
    goals
}

pub fn goals_markdown(goals: &[Goal]) -> String {
    let mut md = String::from(
        "\n## Goals\n\nEach measured in this run, side by side with its floor (medians of \
         alternated runs).\n\n| goal | target | measured | |\n|---|---|---|---|\n",
    );
    for g in goals {
        let mark = if g.met { "met" } else { "**missed**" };
        md += &format!("| {} | {} | {} | {mark} |\n", g.name, g.goal, g.measured);
    }
    md
}

/// One whole-orders run.
pub fn orders_markdown(o: &Orders) -> String {
    let step =
        |name: &str, s: &Step| format!("| {name} | {:.1} ms | {:.1} ms |\n", s.p50_ms, s.p99_ms);
    let mut md = format!(
        "\n### {}: {:.1} orders/s\n\n{} shoppers for {:.0} s: {} placed, {} delivered, {} \
         returned, {} errors.\n\n| step | p50 | p99 |\n|---|---|---|\n",
        o.kind.name(),
        o.per_second,
        o.shoppers,
        o.seconds,
        o.placed,
        o.delivered,
        o.returned,
        o.errors
    );
    md += &step("checkout call (→ awaiting_payment)", &o.checkout);
    md += &step(
        "callback sent → awaiting_approval",
        &o.callback_to_awaiting_approval,
    );
    md += &step("approve call", &o.approve_call);
    md += &step("approve sent → in transit", &o.approve_to_shipping);
    md += &step(
        "in transit → delivered, less the 1 s timer",
        &o.shipping_to_delivered_less_delay,
    );
    let per: Vec<String> = o
        .invocations_per_order
        .iter()
        .map(|(h, n)| format!("`{h}` {n:.2}"))
        .collect();
    let cpu: Vec<String> = o
        .cpu_ms_per_order
        .iter()
        .map(|(role, ms)| format!("{role} {ms:.2} ms"))
        .collect();
    md += &format!(
        "\nRestate invocations per order: {}; journal entries Restate holds per order: \
         {:.1}. CPU per order: {}.\n",
        per.join(", "),
        o.journal_entries_per_order,
        cpu.join(", ")
    );
    md
}

/// Every whole-orders run, in the order they ran, and the first run of each kind in
/// full.
pub fn whole_orders_markdown(orders: &[Orders]) -> String {
    if orders.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Whole orders\n\nShoppers each placing, paying and (as the admin) approving \
         orders one after another, delivery timer 1 s; the kinds in turn, A B C A B C. Step \
         times from the notification log; CPU from /proc.\n\n\
         | run | kind | orders/s | placed | approve → in transit p50 / p99 | journal entries / order | \
         CPU ms / order (web, endpoint, restate) |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, o) in orders.iter().enumerate() {
        let cpu: Vec<String> = (o.cpu_ms_per_order.iter())
            .map(|(_, ms)| format!("{ms:.1}"))
            .collect();
        md += &format!(
            "| {} | {} | {:.1} | {} | {:.0} / {:.0} ms | {:.1} | {} |\n",
            i + 1,
            o.kind.name(),
            o.per_second,
            o.placed,
            o.approve_to_shipping.p50_ms,
            o.approve_to_shipping.p99_ms,
            o.journal_entries_per_order,
            cpu.join(", ")
        );
    }
    for kind in [Kind::Plain, Kind::Split, Kind::Returned] {
        if let Some(o) = orders.iter().find(|o| o.kind == kind) {
            md += &orders_markdown(o);
        }
    }
    md
}

/// Writes the charts beside results.md; answers the markdown that shows them.
pub fn charts(out: &Path, goals: &[Goal], orders: &[Orders]) -> String {
    let mut md = String::from("\n## Charts\n\n");
    let ratios: Vec<(String, f64, f64)> = goals
        .iter()
        .filter_map(|g| g.ratio.map(|(m, goal)| (g.name.clone(), m, goal)))
        .collect();
    if !ratios.is_empty() {
        let svg = plots::ratios("ShopFlow ÷ its floor (throughput)", &ratios);
        std::fs::write(out.join("ratios.svg"), svg).unwrap();
        md += "![Throughput ratios against their goals](ratios.svg)\n\n";
    }
    if let Some(plain) = orders.iter().find(|o| o.kind == Kind::Plain) {
        let series: Vec<(String, Vec<(f64, f64)>)> = (plain.samples.iter())
            .map(|(name, samples)| (name.to_string(), plots::cdf(samples.clone())))
            .collect();
        let svg = plots::lines(
            "Whole orders: step latency distribution",
            ("ms", "% of orders"),
            Some(100.0),
            &series,
        );
        std::fs::write(out.join("latency.svg"), svg).unwrap();
        md += "![Step latency distributions of plain orders](latency.svg)\n\n";
        let svg = plots::lines(
            "Resident memory under the whole-orders load",
            ("s", "MiB"),
            None,
            &plain.memory,
        );
        std::fs::write(out.join("memory.svg"), svg).unwrap();
        md += "![Resident memory of each process through a whole-orders run](memory.svg)\n";
    }
    md
}
