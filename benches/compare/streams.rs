//! Live streams: thousands of open `/stream/notifications` and `/stream/workflow/{id}`
//! clients. One notification per user is written to the log in one transaction (as
//! the service endpoint writes them) and the time until each client has it is taken;
//! the web role's memory is read while they are open and after they close.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::common::TestApp;

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Debug, Serialize)]
pub struct Delivery {
    pub clients: usize,
    pub received: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Open streams, held until dropped.
pub struct Open {
    tasks: JoinSet<()>,
    /// Each notification client reports when it has read its marker.
    marks: mpsc::UnboundedReceiver<Instant>,
    notification_clients: usize,
    pub opened_in: Duration,
}

/// Opens `per_user` notification streams for each of `users`, and `workflow` streams on
/// the given orders (owner, order id), round robin; returns once every one is open.
pub async fn open(
    app: &TestApp,
    users: &[String],
    per_user: usize,
    orders: &[(String, String)],
    workflow: usize,
    round: usize,
) -> Open {
    let started = Instant::now();
    let (marks_tx, marks) = mpsc::unbounded_channel();
    let (opened_tx, mut opened) = mpsc::unbounded_channel::<()>();
    let mut tasks = JoinSet::new();
    let mut paths: Vec<(String, String)> = Vec::new();
    for _ in 0..per_user {
        for user in users {
            paths.push((user.clone(), "/stream/notifications".to_owned()));
        }
    }
    let notification_clients = paths.len();
    for i in 0..workflow {
        let (user, id) = &orders[i % orders.len()];
        paths.push((user.clone(), format!("/stream/workflow/{id}")));
    }
    let total = paths.len();
    for (user, path) in paths {
        let (api, marks_tx, opened_tx) = (app.api.clone(), marks_tx.clone(), opened_tx.clone());
        tasks.spawn(async move {
            let marker = format!("bench-mark-{round}-{user}");
            let mut stream = api.stream(&path, &user, None).await;
            let _ = opened_tx.send(());
            // The marker may be split between two chunks: look at both.
            let (mut seen, mut last) = (false, String::new());
            while let Some(chunk) = stream.next_chunk().await {
                if !seen && (last.clone() + &chunk).contains(&marker) {
                    seen = true;
                    let _ = marks_tx.send(Instant::now());
                }
                last = chunk;
            }
        });
        // Not all at once: the listen backlog is finite.
        if tasks.len() % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..total {
        opened.recv().await.expect("every stream opens");
    }
    Open {
        tasks,
        marks,
        notification_clients,
        opened_in: started.elapsed(),
    }
}

impl Open {
    /// Writes one notification for each of `users` in one transaction and times its
    /// arrival at every notification client.
    pub async fn deliver(&mut self, app: &TestApp, users: &[String], round: usize) -> Delivery {
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            app.config.data_dir.join("shopflow.db").display()
        ))
        .await
        .unwrap();
        let mut tx = pool.begin().await.unwrap();
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        for user in users {
            sqlx::query(
                "INSERT INTO notifications (event_id, user_id, order_id, kind, message, created_at)
                 VALUES (?, ?, NULL, 'bench', ?, ?)",
            )
            .bind(format!("bench-mark-{round}-{user}"))
            .bind(user)
            .bind(format!("bench-mark-{round}-{user}"))
            .bind(&now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let written = Instant::now();
        pool.close().await;
        let mut took = Vec::new();
        let deadline = written + Duration::from_secs(30);
        while took.len() < self.notification_clients {
            match tokio::time::timeout_at(deadline.into(), self.marks.recv()).await {
                Ok(Some(at)) => {
                    took.push(at.saturating_duration_since(written).as_secs_f64() * 1e3)
                }
                _ => break,
            }
        }
        let step = crate::orders::Step::of(took.clone());
        Delivery {
            clients: self.notification_clients,
            received: took.len(),
            p50_ms: step.p50_ms,
            p99_ms: step.p99_ms,
            max_ms: took.iter().copied().fold(f64::NAN, f64::max),
        }
    }

    /// Closes every stream.
    pub async fn close(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}
