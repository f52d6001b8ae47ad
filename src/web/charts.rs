//! Pictures drawn on the server as SVG, with no script and nothing from a CDN: the
//! admin dashboard's charts (orders per minute by outcome, step latency, open returns
//! and the webhook backlog) and the durable-steps timeline (a bar per step on a time
//! axis, one lane per invocation, so parcels booked at once show side by side). Pure
//! functions of their data; every text is XML-escaped; colours are presentation
//! attributes (the page's CSP allows no inline styles).

use std::fmt::Write;

use crate::app::glance::{Glance, Minute, StepLatency};
use crate::app::journal::JournalInvocation;
use crate::clock::parse_rfc3339;

const WIDTH: f64 = 560.0;
const DELIVERED: &str = "#2e7d32";
const PARTIAL: &str = "#9ccc65";
const FAILED: &str = "#c62828";
const CANCELLED: &str = "#9e9e9e";
const P50: &str = "#1565c0";
const P99: &str = "#90caf9";
const WAITING: &str = "#f9a825";

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An `<svg>` of `height` with a title for screen readers, around `body`.
fn svg(id: &str, title: &str, height: f64, body: &str) -> String {
    format!(
        r#"<svg id="{id}" class="chart" role="img" aria-labelledby="{id}-title" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title><text x="0" y="14" font-size="13" font-weight="bold">{}</text>{body}</svg>"#,
        esc(title),
        esc(title)
    )
}

/// The dashboard's pictures, one figure.
pub fn glance(g: &Glance) -> String {
    format!(
        r#"<figure id="glance" class="glance">{}{}{}<figcaption>Operations at a glance, as of {}</figcaption></figure>"#,
        tiles(g),
        orders_per_minute(g),
        step_latency(&g.latency),
        esc(&g.as_of)
    )
}

/// Orders that ended in each of the last minutes, stacked by outcome.
fn orders_per_minute(g: &Glance) -> String {
    let (top, chart_h, left) = (40.0, 120.0, 30.0);
    let peak = g
        .minutes
        .iter()
        .map(|m| m.delivered + m.partial + m.failed + m.cancelled)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (WIDTH - left) / g.minutes.len().max(1) as f64;
    let mut body = String::new();
    let _ = write!(
        body,
        r##"<text x="0" y="{}" font-size="10">{peak}</text><line x1="{left}" y1="{}" x2="{WIDTH}" y2="{}" stroke="#bbb"/>"##,
        top + 8.0,
        top + chart_h,
        top + chart_h
    );
    for (i, m) in g.minutes.iter().enumerate() {
        let x = left + i as f64 * slot + 1.0;
        column(
            &mut body,
            m,
            (x, (slot - 2.0).max(1.0)),
            top + chart_h,
            chart_h / peak as f64,
        );
    }
    if let (Some(first), Some(last)) = (g.minutes.first(), g.minutes.last()) {
        axis(
            &mut body,
            left,
            top + chart_h + 14.0,
            &first.label,
            &last.label,
        );
    }
    legend(
        &mut body,
        28.0,
        &[
            (DELIVERED, "delivered"),
            (PARTIAL, "partially"),
            (FAILED, "failed"),
            (CANCELLED, "cancelled or rejected"),
        ],
    );
    let title = format!(
        "Orders per minute by outcome, last {} minutes",
        g.minutes.len()
    );
    svg("orders-per-minute", &title, top + chart_h + 20.0, &body)
}

/// One minute's column at `x` of `width`, stacked up from `base`, `per` px an order.
fn column(body: &mut String, m: &Minute, (x, width): (f64, f64), base: f64, per: f64) {
    let mut y = base;
    for (n, colour, what) in [
        (m.delivered, DELIVERED, "delivered"),
        (m.partial, PARTIAL, "partially delivered"),
        (m.failed, FAILED, "failed"),
        (m.cancelled, CANCELLED, "cancelled or rejected"),
    ] {
        if n == 0 {
            continue;
        }
        let h = per * n as f64;
        y -= h;
        let _ = write!(
            body,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{h:.1}" fill="{colour}"><title>{}: {n} {what}</title></rect>"#,
            esc(&m.label)
        );
    }
}

/// The time axis's two ends, below a chart.
fn axis(body: &mut String, left: f64, y: f64, from: &str, to: &str) {
    let _ = write!(
        body,
        r#"<text x="{left}" y="{y}" font-size="10">{}</text><text x="{WIDTH}" y="{y}" font-size="10" text-anchor="end">{}</text>"#,
        esc(from),
        esc(to)
    );
}

fn legend(body: &mut String, y: f64, items: &[(&str, &str)]) {
    let mut x = 0.0;
    for (colour, label) in items {
        let _ = write!(
            body,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{y}" font-size="11">{}</text>"#,
            y - 9.0,
            x + 14.0,
            esc(label)
        );
        x += 24.0 + 7.0 * label.len() as f64;
    }
}

/// Each step's p50 and p99, in seconds, on one scale.
fn step_latency(rows: &[StepLatency]) -> String {
    let (top, row_h, left) = (40.0, 34.0, 120.0);
    let peak = rows.iter().map(|r| r.p99_ms).max().unwrap_or(0).max(1);
    let scale = (WIDTH - left - 70.0) / peak as f64;
    let mut body = String::new();
    legend(&mut body, 28.0, &[(P50, "p50"), (P99, "p99")]);
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let _ = write!(
            body,
            r#"<text x="0" y="{}" font-size="11">{} ({})</text>"#,
            y + 14.0,
            esc(&r.step),
            r.samples
        );
        for (j, (ms, colour, what)) in [(r.p50_ms, P50, "p50"), (r.p99_ms, P99, "p99")]
            .into_iter()
            .enumerate()
        {
            let (w, by) = ((ms as f64 * scale).max(1.0), y + 3.0 + j as f64 * 13.0);
            let secs = seconds(ms);
            let _ = write!(
                body,
                r#"<rect class="bar" x="{left}" y="{by}" width="{w:.1}" height="11" fill="{colour}"><title>{} {what}: {secs}</title></rect><text x="{:.1}" y="{}" font-size="10">{secs}</text>"#,
                esc(&r.step),
                left + w + 4.0,
                by + 9.0
            );
        }
    }
    if rows.is_empty() {
        let _ = write!(
            body,
            r#"<text x="0" y="{}" font-size="11">No order has finished a step yet.</text>"#,
            top + 14.0
        );
    }
    let height = top + (rows.len().max(1) as f64) * row_h;
    svg(
        "step-latency",
        "Step latency (p50, p99) of recent orders",
        height,
        &body,
    )
}

fn seconds(ms: i64) -> String {
    if ms < 10_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// Big numbers: open returns, the webhook backlog, failed deliveries.
fn tiles(g: &Glance) -> String {
    let items = [
        ("open-returns", "open returns", g.open_returns, None),
        (
            "webhook-backlog",
            "webhook backlog",
            g.webhook_backlog,
            None,
        ),
        (
            "webhook-failures",
            "webhooks failed",
            g.webhook_failed,
            Some(FAILED),
        ),
    ];
    let mut body = String::new();
    let w = WIDTH / items.len() as f64;
    for (i, (id, label, n, alarm)) in items.into_iter().enumerate() {
        let x = i as f64 * w;
        let colour = alarm.filter(|_| n > 0).unwrap_or("#222");
        let _ = write!(
            body,
            r##"<g id="{id}"><rect x="{x}" y="22" width="{:.1}" height="52" rx="6" fill="#f5f5f5"/><text x="{:.1}" y="54" font-size="24" text-anchor="middle" fill="{colour}">{n}</text><text x="{:.1}" y="68" font-size="10" text-anchor="middle">{}</text></g>"##,
            w - 8.0,
            x + (w - 8.0) / 2.0,
            x + (w - 8.0) / 2.0,
            esc(label)
        );
    }
    svg("glance-tiles", "Now", 78.0, &body)
}

/// One bar of the timeline: a step of an invocation, from `start` to `end` (ms).
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    lane: usize,
    label: String,
    start: i64,
    end: i64,
    waiting: bool,
}

/// The durable steps on a time axis: one lane per invocation (the workflow, each
/// parcel's booking, …), a bar per step from when it was journaled to when its result
/// came; `None` when there is nothing to draw.
pub fn timeline(journal: &[JournalInvocation], now: &str) -> Option<String> {
    let bars = bars_of(journal, parse_rfc3339(now)?);
    let t0 = bars.iter().map(|b| b.start).min()?;
    let t1 = bars.iter().map(|b| b.end).max()?.max(t0 + 1);
    let (top, lane_h, left) = (24.0, 22.0, 150.0);
    let scale = (WIDTH - left - 4.0) / (t1 - t0) as f64;
    let mut body = String::new();
    for (lane, inv) in journal.iter().enumerate() {
        let y = top + lane as f64 * lane_h;
        let name = inv.target.split('/').next_back().unwrap_or(&inv.target);
        let service = inv.target.split('/').next().unwrap_or("");
        let _ = write!(
            body,
            r#"<text x="0" y="{}" font-size="10"><title>{}</title>{} {}</text>"#,
            y + 13.0,
            esc(&inv.target),
            esc(&short(service)),
            esc(name)
        );
    }
    for b in &bars {
        let x = left + (b.start - t0) as f64 * scale;
        let w = ((b.end - b.start) as f64 * scale).max(2.0);
        let y = top + b.lane as f64 * lane_h + 3.0;
        let colour = if b.waiting { WAITING } else { P50 };
        let took = b.end - b.start;
        let _ = write!(
            body,
            r#"<rect class="bar" x="{x:.1}" y="{y}" width="{w:.1}" height="14" fill="{colour}"><title>{}: {took} ms</title></rect>"#,
            esc(&b.label)
        );
    }
    let height = top + journal.len() as f64 * lane_h + 16.0;
    axis(&mut body, left, height - 3.0, "0", &seconds(t1 - t0));
    Some(svg(
        "durable-timeline",
        "Durable steps on a time axis",
        height,
        &body,
    ))
}

/// Every step of every invocation as a bar; one still waiting ends `now`.
fn bars_of(journal: &[JournalInvocation], now: i64) -> Vec<Bar> {
    let mut bars = Vec::new();
    for (lane, inv) in journal.iter().enumerate() {
        for s in &inv.steps {
            let Some(start) = parse_rfc3339(&s.at) else {
                continue;
            };
            let waiting = s.state == "waiting";
            let end = match (&s.done_at, waiting) {
                (Some(done), _) => parse_rfc3339(done).unwrap_or(start),
                (None, true) => now,
                (None, false) => start,
            };
            bars.push(Bar {
                lane,
                label: format!("{} {}", s.kind, s.name),
                start,
                end: end.max(start),
                waiting,
            });
        }
    }
    bars
}

/// `OrderFulfillmentWorkflow` → `OrderFulfillment…`: lanes keep to their column.
fn short(service: &str) -> String {
    if service.chars().count() <= 16 {
        return service.to_owned();
    }
    let head: String = service.chars().take(15).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::journal::JournalStep;

    fn glance_of(minutes: Vec<Minute>, latency: Vec<StepLatency>) -> Glance {
        Glance {
            as_of: "2026-12-04T10:00:00Z".into(),
            minutes,
            latency,
            open_returns: 2,
            webhook_backlog: 3,
            webhook_failed: 1,
        }
    }

    #[test]
    fn the_dashboard_draws_every_outcome_and_step() {
        let minutes = vec![
            Minute {
                label: "10:00".into(),
                delivered: 4,
                partial: 0,
                failed: 1,
                cancelled: 0,
            },
            Minute {
                label: "10:01".into(),
                delivered: 0,
                partial: 0,
                failed: 0,
                cancelled: 2,
            },
        ];
        let latency = vec![StepLatency {
            step: "shipping".into(),
            p50_ms: 120,
            p99_ms: 800,
            samples: 6,
        }];
        let svg = glance(&glance_of(minutes, latency));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3 + 2, "{svg}");
        for text in [
            "10:00: 4 delivered",
            "10:00: 1 failed",
            "10:01: 2 cancelled or rejected",
            "shipping p50: 0.12 s",
            "shipping p99: 0.80 s",
            ">2</text>",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        assert!(!svg.contains("style="), "no inline style: {svg}");
    }

    #[test]
    fn text_is_escaped() {
        let minutes = vec![Minute {
            label: "<script>".into(),
            delivered: 1,
            partial: 0,
            failed: 0,
            cancelled: 0,
        }];
        let svg = glance(&glance_of(minutes, Vec::new()));
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
    }

    fn step(name: &str, at: &str, done_at: Option<&str>, state: &'static str) -> JournalStep {
        JournalStep {
            index: 0,
            kind: "run",
            name: name.into(),
            state,
            at: at.into(),
            done_at: done_at.map(str::to_owned),
        }
    }

    #[test]
    fn parcels_booked_at_once_are_lanes_side_by_side() {
        let lane = |target: &str, steps| JournalInvocation {
            id: target.into(),
            target: target.into(),
            status: "completed".into(),
            steps,
        };
        let journal = vec![
            lane(
                "OrderFulfillmentWorkflow/o-1/Run",
                vec![step(
                    "enter_shipping",
                    "2026-12-04T10:00:00.000Z",
                    None,
                    "done",
                )],
            ),
            lane(
                "ShippingService/InitiateShipment",
                vec![step(
                    "book_with_carrier #1",
                    "2026-12-04T10:00:00.100Z",
                    Some("2026-12-04T10:00:00.300Z"),
                    "done",
                )],
            ),
            lane(
                "ShippingService/InitiateShipment",
                vec![step(
                    "book_with_carrier #1",
                    "2026-12-04T10:00:00.120Z",
                    None,
                    "waiting",
                )],
            ),
        ];
        let svg = timeline(&journal, "2026-12-04T10:00:01.000Z").unwrap();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3, "{svg}");
        assert!(svg.contains("run book_with_carrier #1: 200 ms"), "{svg}");
        assert!(
            svg.contains("run book_with_carrier #1: 880 ms"),
            "waiting: {svg}"
        );
        assert!(svg.contains(WAITING), "{svg}");
        assert_eq!(timeline(&[], "2026-12-04T10:00:01.000Z"), None);
    }
}
