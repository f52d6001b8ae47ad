//! The admin's fault drill: kill the supervised service endpoint with SIGKILL, as a
//! crash would, and tell everyone with an order in flight about the outage and the
//! recovery.

use std::time::Duration;

use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::durable::notify::ADMIN;

/// How long the drill waits for the supervisor's new endpoint.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);

/// Kills the endpoint; the recovery is announced when the supervisor's next one
/// accepts connections. Returns what happened, in words.
pub async fn crash_services(app: &App, user: &User) -> AppResult<String> {
    require_admin(user)?;
    let control = app.services.clone().ok_or_else(|| {
        AppError::conflict(
            "not_supervised",
            "this process does not supervise the service endpoint (it runs `shopflow web`)",
        )
    })?;
    let mut recipients = app.db.users_with_open_orders().await?;
    if !recipients.iter().any(|u| u == ADMIN) {
        recipients.push(ADMIN.to_owned());
    }
    let pid = control.crash().map_err(AppError::internal)?;
    tracing::warn!(pid, "crash drill: killed the service endpoint");
    let outage = format!(
        "Outage: the service endpoint (pid {pid}) was killed with SIGKILL. Orders in flight wait for it."
    );
    for user in &recipients {
        let event = format!("outage:{pid}:{user}");
        app.db.notify(&event, user, None, "outage", &outage).await?;
    }
    let db = app.db.clone();
    tokio::spawn(async move {
        let message = match control.wait_restarted(pid, RECOVERY_DEADLINE).await {
            Some(next) => format!(
                "Recovered: the supervisor restarted the service endpoint (pid {next}); orders in flight resume where they stopped."
            ),
            None => format!(
                "The service endpoint is not back after {}s; see the server log.",
                RECOVERY_DEADLINE.as_secs()
            ),
        };
        for user in &recipients {
            let event = format!("recovered:{pid}:{user}");
            if let Err(e) = db.notify(&event, user, None, "recovered", &message).await {
                tracing::warn!(error = %e, "cannot record the recovery");
            }
        }
    });
    Ok(format!(
        "Killed the service endpoint (pid {pid}). The supervisor restarts it; watch the notifications."
    ))
}
