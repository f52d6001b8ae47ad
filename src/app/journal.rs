//! An order's durable steps, as Restate journaled them: every named `ctx.run`, call,
//! sleep, promise and awakeable of its checkout, its workflow and the calls those made,
//! in order, with their state and time, read from Restate's introspection tables
//! (`sys_journal`, `sys_invocation`).

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::{AppError, AppResult};
use crate::db::Db;
use crate::domain::OrderId;
use crate::durable::RestateClient;

/// What Restate says about the order's unfinished invocations (the workflow and the
/// calls it made): retries so far and the last failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Retries {
    pub count: i64,
    pub last_failure: Option<String>,
}

/// One invocation of the order and its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JournalInvocation {
    pub id: String,
    /// `Service/key/Handler`.
    pub target: String,
    /// Restate's status: `running`, `suspended`, `backing-off`, `completed`, …
    pub status: String,
    pub steps: Vec<JournalStep>,
}

/// One durable step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JournalStep {
    pub index: i64,
    /// `run`, `call`, `send`, `sleep`, `promise`, `awakeable`, `start`, `end`.
    pub kind: &'static str,
    /// The `ctx.run`'s name, the callee, the promise, the wake-up time.
    pub name: String,
    /// `done`; `waiting` while Restate waits for its result; `skipped` when the
    /// invocation ended without needing it (the timer that lost a race).
    pub state: &'static str,
    /// When it was journaled, and when its result came (for those that wait).
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
}

/// The journal of an order's invocations, oldest first (empty when Restate no longer
/// keeps them).
pub async fn read(
    db: &Db,
    restate: &RestateClient,
    order_id: &OrderId,
) -> AppResult<Vec<JournalInvocation>> {
    Ok(read_with_retries(db, restate, order_id).await?.0)
}

/// The journal, and the retries of the order's invocations under way. Every query names
/// the invocations by id, which Restate answers from one partition each, and reads its
/// tables rather than the `sys_invocation` view (a join that costs several times more):
/// one look at an order costs Restate a few milliseconds of CPU however many it keeps.
pub async fn read_with_retries(
    db: &Db,
    restate: &RestateClient,
    order_id: &OrderId,
) -> AppResult<(Vec<JournalInvocation>, Retries)> {
    let known = db.order_invocations(order_id).await?;
    let mut ids: Vec<String> = known.ids.into_iter().filter(|id| is_id(id)).collect();
    if !known.recorded {
        ids = found_by_key(restate, order_id, ids).await?;
    }
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let ids = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let status = format!(
        "SELECT id, target, status, created_at FROM sys_invocation_status \
         WHERE id IN ({ids}) ORDER BY created_at, id"
    );
    let state = format!(
        "SELECT id, in_flight, retry_count, last_failure FROM sys_invocation_state \
         WHERE id IN ({ids})"
    );
    let journal = format!(
        "SELECT id, index, entry_type, name, appended_at, entry_lite_json FROM sys_journal \
         WHERE id IN ({ids}) ORDER BY id, index"
    );
    let (status, state, entries) = tokio::try_join!(
        restate.query(&status),
        restate.query(&state),
        restate.query(&journal)
    )
    .map_err(AppError::from)?;
    let invocations = with_state(status, &state);
    let rows = joined(&invocations, &entries);
    Ok((group(&rows), retries(&rows)))
}

/// Restate's invocation ids are `[A-Za-z0-9_]`: only such text goes into the SQL.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The invocations of an order placed before its invocations recorded themselves:
/// those keyed by the order and those its known ones called (a scan of every
/// invocation Restate keeps, so only for those orders).
async fn found_by_key(
    restate: &RestateClient,
    order_id: &OrderId,
    known: Vec<String>,
) -> AppResult<Vec<String>> {
    let mut ours = format!("target_service_key = '{order_id}'");
    for id in &known {
        ours.push_str(&format!(" OR id = '{id}'"));
    }
    let rows = restate
        .query(&format!(
            "SELECT id FROM sys_invocation_status WHERE {ours} OR invoked_by_id IN \
             (SELECT id FROM sys_invocation_status WHERE {ours})"
        ))
        .await
        .map_err(AppError::from)?;
    Ok(rows
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|id| is_id(id))
        .map(str::to_owned)
        .collect())
}

/// The invocations' rows with what the invoker knows of those under way, and their
/// status as Restate's `sys_invocation` view words it (`running`, `backing-off`, …).
fn with_state(mut invocations: Vec<Value>, state: &[Value]) -> Vec<Value> {
    for invocation in &mut invocations {
        let state = state.iter().find(|s| s["id"] == invocation["id"]);
        let in_flight = state.is_some_and(|s| s["in_flight"] == true);
        let retries = state.and_then(|s| s["retry_count"].as_i64()).unwrap_or(0);
        let status = view_status(
            invocation["status"].as_str().unwrap_or_default(),
            in_flight,
            retries,
        );
        invocation["status"] = status.into();
        invocation["retry_count"] = retries.into();
        invocation["last_failure"] = state.map_or(Value::Null, |s| s["last_failure"].clone());
    }
    invocations
}

/// `sys_invocation_status.status` and the invoker's state as the `sys_invocation` view
/// of Restate 1.7 shows them.
fn view_status(status: &str, in_flight: bool, retry_count: i64) -> &'static str {
    match status {
        "inboxed" => "pending",
        "scheduled" => "scheduled",
        "completed" => "completed",
        "suspended" => "suspended",
        "paused" => "paused",
        _ if in_flight => "running",
        "invoked" if retry_count > 0 => "backing-off",
        _ => "ready",
    }
}

/// Each journal entry with its invocation's columns, in the invocations' order.
fn joined(invocations: &[Value], entries: &[Value]) -> Vec<Value> {
    let mut rows = Vec::with_capacity(entries.len());
    for invocation in invocations {
        for entry in entries.iter().filter(|e| e["id"] == invocation["id"]) {
            let mut row = invocation.clone();
            if let (Some(row), Some(entry)) = (row.as_object_mut(), entry.as_object()) {
                row.extend(entry.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            rows.push(row);
        }
    }
    rows
}

/// Retries so far of the invocations under way, and the last failure among them.
fn retries(rows: &[Value]) -> Retries {
    let mut seen = HashSet::new();
    let mut retries = Retries::default();
    for r in rows {
        let failure = r["last_failure"].as_str();
        if r["status"] == "completed" || failure.is_none() || !seen.insert(&r["id"]) {
            continue;
        }
        retries.count += r["retry_count"].as_i64().unwrap_or(0);
        retries.last_failure = failure.map(str::to_owned);
    }
    retries
}

/// Groups journal rows into invocations and pairs each command with its completion.
fn group(rows: &[Value]) -> Vec<JournalInvocation> {
    let text = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let mut invocations: Vec<JournalInvocation> = Vec::new();
    let mut completed: HashMap<String, HashMap<i64, String>> = HashMap::new();
    for r in rows {
        let lite: Value =
            serde_json::from_str(r["entry_lite_json"].as_str().unwrap_or("{}")).unwrap_or_default();
        if let Some(id) = lite["Notification"]["id"]["CompletionId"].as_i64() {
            completed
                .entry(text(r, "id"))
                .or_default()
                .insert(id, text(r, "appended_at"));
        }
    }
    let mut seen = HashSet::new();
    for r in rows {
        let id = text(r, "id");
        if seen.insert(id.clone()) {
            invocations.push(JournalInvocation {
                id: id.clone(),
                target: text(r, "target"),
                status: text(r, "status"),
                steps: Vec::new(),
            });
        }
        let lite: Value =
            serde_json::from_str(r["entry_lite_json"].as_str().unwrap_or("{}")).unwrap_or_default();
        let done = completed.get(&id);
        if let Some(mut step) = step(r, &lite, done) {
            let invocation = invocations.last_mut().expect("pushed above");
            if step.state == "waiting" && invocation.status == "completed" {
                step.state = "skipped";
            }
            invocation.steps.push(step);
        }
    }
    invocations
}

/// A journal entry as a step; `None` for state reads and writes and for completions
/// (they belong to their command).
fn step(r: &Value, lite: &Value, completed: Option<&HashMap<i64, String>>) -> Option<JournalStep> {
    let at = r["appended_at"].as_str().unwrap_or_default().to_owned();
    let index = r["index"].as_i64().unwrap_or_default();
    if lite["Notification"]["ty"] == "Signal" {
        return Some(JournalStep {
            index,
            kind: "awakeable",
            name: "completed from outside".into(),
            state: "done",
            at: at.clone(),
            done_at: Some(at),
        });
    }
    let (command, body) = lite["Command"].as_object()?.iter().next()?;
    let kind = match command.as_str() {
        "Input" => "start",
        "Output" => "end",
        "Run" => "run",
        "Call" => "call",
        "OneWayCall" => "send",
        "Sleep" => "sleep",
        "GetPromise" | "PeekPromise" | "CompletePromise" => "promise",
        _ => return None,
    };
    let target = |t: &Value| {
        let (_, t) = t.as_object()?.iter().next()?;
        Some(format!(
            "{}/{}",
            t["name"].as_str()?,
            t["handler"].as_str()?
        ))
    };
    let name = match kind {
        "run" => r["name"].as_str().unwrap_or_default().to_owned(),
        "call" | "send" => target(&body["invocation_target"]).unwrap_or_default(),
        "promise" => body["key"].as_str().unwrap_or_default().to_owned(),
        "sleep" => body["wake_up_time"]
            .as_i64()
            .map(|ms| format!("until {}", crate::clock::rfc3339(ms)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let waits_on = body["result_completion_id"]
        .as_i64()
        .or_else(|| body["completion_id"].as_i64());
    let done_at = match waits_on {
        Some(id) => completed.and_then(|c| c.get(&id)).cloned(),
        None => Some(at.clone()),
    };
    Some(JournalStep {
        index,
        kind,
        name,
        state: if done_at.is_some() { "done" } else { "waiting" },
        at,
        done_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(id: &str, index: i64, name: &str, lite: Value) -> Value {
        json!({"id": id, "target": format!("T/{id}"), "status": "suspended", "index": index,
               "name": name, "appended_at": format!("2026-01-01T00:00:0{index}.000Z"),
               "entry_lite_json": lite.to_string()})
    }

    #[test]
    fn retries_count_each_invocation_under_way_once() {
        let mut rows = Vec::new();
        for (id, status, count, failure) in [
            ("a", "backing-off", 3, Some("carrier down")),
            ("a", "backing-off", 3, Some("carrier down")),
            ("b", "completed", 5, Some("old")),
            ("c", "running", 2, Some("endpoint gone")),
            ("d", "suspended", 0, None),
        ] {
            rows.push(json!({"id": id, "status": status, "retry_count": count,
                             "last_failure": failure}));
        }
        let retries = retries(&rows);
        assert_eq!(retries.count, 5);
        assert_eq!(retries.last_failure.as_deref(), Some("endpoint gone"));
    }

    #[test]
    fn statuses_read_as_restates_view_words_them() {
        let status = |rows: Vec<Value>| -> Vec<(String, i64, Value)> {
            let state = vec![
                json!({"id": "b", "in_flight": true, "retry_count": 0, "last_failure": null}),
                json!({"id": "c", "in_flight": false, "retry_count": 4, "last_failure": "refused"}),
            ];
            with_state(rows, &state)
                .into_iter()
                .map(|r| {
                    let s = r["status"].as_str().unwrap().to_owned();
                    (
                        s,
                        r["retry_count"].as_i64().unwrap(),
                        r["last_failure"].clone(),
                    )
                })
                .collect()
        };
        let rows = [
            "suspended",
            "invoked",
            "invoked",
            "invoked",
            "inboxed",
            "completed",
        ]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f"])
        .map(|(status, id)| json!({"id": id, "status": status}))
        .collect();
        assert_eq!(
            status(rows),
            [
                ("suspended".into(), 0, Value::Null),
                ("running".into(), 0, Value::Null),
                ("backing-off".into(), 4, json!("refused")),
                ("ready".into(), 0, Value::Null),
                ("pending".into(), 0, Value::Null),
                ("completed".into(), 0, Value::Null),
            ]
        );
    }

    #[test]
    fn only_restates_id_characters_reach_the_sql() {
        assert!(is_id("inv_1cbcO2BwIBiQ0kHKKxGYVQF0u7LhPgziJy"));
        for bad in ["", "inv' OR 1=1 --", "inv-1", "inv 1", "inv\u{0}"] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn commands_pair_with_their_completions() {
        let rows = vec![
            row("a", 0, "", json!({"Command": {"Input": {}}})),
            row(
                "a",
                1,
                "reserve_stock",
                json!({"Command": {"Run": {"completion_id": 2, "name": "reserve_stock"}}}),
            ),
            row(
                "a",
                2,
                "",
                json!({"Notification": {"ty": {"Completion": "Run"}, "id": {"CompletionId": 2}}}),
            ),
            row(
                "a",
                3,
                "",
                json!({"Command": {"SetState": {"key": "basket"}}}),
            ),
            row(
                "a",
                4,
                "",
                json!({"Command": {"Sleep": {"wake_up_time": 0, "completion_id": 3}}}),
            ),
            row(
                "b",
                0,
                "",
                json!({"Command": {"Call": {"invocation_target": {"Service": {"name": "S", "handler": "H"}}, "result_completion_id": 6}}}),
            ),
            row(
                "b",
                1,
                "",
                json!({"Notification": {"ty": "Signal", "id": {"SignalIndex": 17}}}),
            ),
        ];
        let invocations = group(&rows);
        assert_eq!(invocations.len(), 2);
        let mut finished = rows.clone();
        finished[4]["status"] = json!("completed");
        finished[0]["status"] = json!("completed");
        assert_eq!(
            group(&finished)[0].steps[2].state,
            "skipped",
            "a timer that lost its race"
        );
        let a: Vec<_> = invocations[0]
            .steps
            .iter()
            .map(|s| (s.kind, s.name.as_str(), s.state))
            .collect();
        assert_eq!(
            a,
            [
                ("start", "", "done"),
                ("run", "reserve_stock", "done"),
                ("sleep", "until 1970-01-01T00:00:00.000Z", "waiting")
            ]
        );
        assert_eq!(
            invocations[0].steps[1].done_at.as_deref(),
            Some("2026-01-01T00:00:02.000Z")
        );
        let b: Vec<_> = invocations[1]
            .steps
            .iter()
            .map(|s| (s.kind, s.name.as_str(), s.state))
            .collect();
        assert_eq!(
            b,
            [
                ("call", "S/H", "waiting"),
                ("awakeable", "completed from outside", "done")
            ]
        );
    }
}
