//! Operations at a glance, for admins: orders that ended in each of the last minutes by
//! outcome, how long recent orders spent in each step (p50, p99), open returns and the
//! webhook backlog. Read from ShopFlow's own tables at each look.

use super::{App, AppResult, require_admin};
use crate::clock::{now_unix_ms, parse_rfc3339, rfc3339};
use crate::db::User;
use crate::domain::{OrderStatus, Step, StepState};

/// The minutes the orders chart spans.
pub const MINUTES: usize = 30;
/// How many recent finished orders the step latencies come from.
const RECENT: i64 = 500;
/// The steps whose time is measured: from the step before it being done to it.
const TIMED: [(usize, &str); 3] = [(1, "approval"), (2, "shipping"), (3, "delivery")];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minute {
    /// `HH:MM` (UTC).
    pub label: String,
    pub delivered: i64,
    /// Some parcels arrived, the others failed.
    pub partial: i64,
    pub failed: i64,
    pub cancelled: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLatency {
    pub step: String,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glance {
    pub as_of: String,
    pub minutes: Vec<Minute>,
    pub latency: Vec<StepLatency>,
    pub open_returns: i64,
    pub webhook_backlog: i64,
    pub webhook_failed: i64,
}

/// The dashboard's numbers now.
pub async fn glance(app: &App, user: &User) -> AppResult<Glance> {
    require_admin(user)?;
    let now = now_unix_ms();
    let first = now - (MINUTES as i64 - 1) * 60_000;
    let since = rfc3339(first - first % 60_000);
    let rows = app.db.glance(&since, RECENT).await?;
    let count = |status: &str| {
        (rows.deliveries.iter())
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    let checklists: Vec<Vec<Step>> = (rows.checklists.iter())
        .filter_map(|steps| serde_json::from_str(steps).ok())
        .collect();
    Ok(Glance {
        as_of: rfc3339(now),
        minutes: per_minute(now, &rows.per_minute),
        latency: latency(&checklists),
        open_returns: rows.open_returns,
        webhook_backlog: count("pending"),
        webhook_failed: count("failed"),
    })
}

/// The last `MINUTES` minutes up to `now`, each with the orders that ended in it.
fn per_minute(now: i64, rows: &[(String, String, i64)]) -> Vec<Minute> {
    (0..MINUTES)
        .rev()
        .map(|ago| {
            let at = rfc3339(now - ago as i64 * 60_000);
            let minute = &at[..16];
            let mut m = Minute {
                label: at[11..16].to_owned(),
                delivered: 0,
                partial: 0,
                failed: 0,
                cancelled: 0,
            };
            for (_, status, n) in rows.iter().filter(|(at, _, _)| at == minute) {
                match OrderStatus::parse(status) {
                    Ok(OrderStatus::Delivered) => m.delivered += n,
                    Ok(OrderStatus::PartiallyDelivered) => m.partial += n,
                    Ok(
                        OrderStatus::ShippingFailed
                        | OrderStatus::PaymentFailed
                        | OrderStatus::PaymentTimedOut,
                    ) => m.failed += n,
                    Ok(OrderStatus::Cancelled | OrderStatus::Rejected) => m.cancelled += n,
                    _ => {}
                }
            }
            m
        })
        .collect()
}

/// Each timed step's p50 and p99 over the checklists that finished it.
fn latency(checklists: &[Vec<Step>]) -> Vec<StepLatency> {
    let done_at = |steps: &[Step], i: usize| -> Option<i64> {
        let step = steps.get(i).filter(|s| s.state == StepState::Done)?;
        parse_rfc3339(step.at.as_deref()?)
    };
    TIMED
        .iter()
        .filter_map(|&(i, name)| {
            let mut took: Vec<i64> = (checklists.iter())
                .filter_map(|s| Some(done_at(s, i)? - done_at(s, i - 1)?))
                .filter(|ms| *ms >= 0)
                .collect();
            took.sort_unstable();
            Some(StepLatency {
                step: name.to_owned(),
                p50_ms: percentile(&took, 50)?,
                p99_ms: percentile(&took, 99)?,
                samples: took.len(),
            })
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn minutes_count_each_outcome_once() {
        let now = parse_rfc3339("2026-12-04T10:30:20Z").unwrap();
        let rows = vec![
            ("2026-12-04T10:30".into(), "delivered".into(), 3),
            ("2026-12-04T10:30".into(), "partially_delivered".into(), 1),
            ("2026-12-04T10:29".into(), "shipping_failed".into(), 2),
            ("2026-12-04T10:29".into(), "rejected".into(), 1),
            ("2026-12-04T10:29".into(), "in_transit".into(), 9),
            ("2026-12-04T09:00".into(), "delivered".into(), 5),
        ];
        let minutes = per_minute(now, &rows);
        assert_eq!(minutes.len(), MINUTES);
        let last = &minutes[MINUTES - 1];
        assert_eq!(
            (last.label.as_str(), last.delivered, last.partial),
            ("10:30", 3, 1)
        );
        let before = &minutes[MINUTES - 2];
        assert_eq!(
            (before.failed, before.cancelled, before.delivered),
            (2, 1, 0)
        );
        let all: i64 = minutes
            .iter()
            .map(|m| m.delivered + m.partial + m.failed + m.cancelled)
            .sum();
        assert_eq!(all, 7, "in-flight and older orders are not drawn");
    }

    #[test]
    fn step_times_come_from_the_checklist() {
        let checklist = |times: [&str; 5]| -> Vec<Step> {
            let names = crate::domain::order::STEPS;
            (names.iter().zip(times))
                .map(|(name, at)| Step {
                    name: (*name).to_owned(),
                    state: StepState::Done,
                    at: Some(at.to_owned()),
                })
                .collect()
        };
        let a = checklist([
            "2026-12-04T10:00:00.000Z",
            "2026-12-04T10:00:02.000Z",
            "2026-12-04T10:00:02.300Z",
            "2026-12-04T10:00:03.300Z",
            "2026-12-04T10:00:03.300Z",
        ]);
        let rows = latency(&[a]);
        let shown: Vec<_> = rows.iter().map(|r| (r.step.as_str(), r.p50_ms)).collect();
        assert_eq!(
            shown,
            [("approval", 2000), ("shipping", 300), ("delivery", 1000)]
        );
    }
}
