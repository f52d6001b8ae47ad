//! The admin's fault drills: kill a supervised child with SIGKILL, as a crash would (the
//! service endpoint, or restate-server), and tell everyone with an order in flight about
//! the outage and the recovery; and make the carrier fail or flake for the next orders,
//! so every saga path can be shown from the page.

use std::time::Duration;

use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
use crate::domain::CarrierMode;
use crate::process::ChildControl;

/// How long a crash drill waits for the supervisor's new child.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// What a crash drill kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `shopflow services`, the Restate service endpoint.
    Endpoint,
    /// restate-server itself.
    Restate,
}

impl Target {
    pub fn parse(text: &str) -> AppResult<Target> {
        match text {
            "endpoint" => Ok(Target::Endpoint),
            "restate" => Ok(Target::Restate),
            _ => Err(AppError::invalid(
                "invalid_target",
                "the crash drill's target is `endpoint` or `restate`",
            )),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Target::Endpoint => "the service endpoint",
            Target::Restate => "restate-server",
        }
    }
}

/// Kills `target`; the recovery is announced when the supervisor's next one accepts
/// connections. Returns what happened, in words.
pub async fn crash(app: &App, user: &User, target: Target) -> AppResult<String> {
    require_admin(user)?;
    let control = match target {
        Target::Endpoint => app.supervised.endpoint.clone(),
        Target::Restate => app.supervised.restate.clone(),
    };
    let what = target.describe();
    let control = control.ok_or_else(|| {
        AppError::conflict(
            "not_supervised",
            format!("this process does not supervise {what} (it runs `shopflow web`, or Restate is external)"),
        )
    })?;
    // Every customer with an order in flight, and the staff.
    let staff = app.db.admins().await?;
    let mut recipients = app.db.users_with_open_orders().await?;
    recipients.retain(|u| !staff.contains(u));
    let recipients: Vec<(String, bool)> = recipients
        .into_iter()
        .map(|u| (u, false))
        .chain(staff.into_iter().map(|u| (u, true)))
        .collect();
    let pid = control.crash().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            AppError::conflict("not_running", format!("{what}: {e}; try again in a moment"))
        }
        _ => AppError::internal(e),
    })?;
    tracing::warn!(pid, what, "crash drill: killed");
    // Process ids are for staff; customers hear what it means for their orders.
    let staff = format!(
        "Outage: {what} (pid {pid}) was killed with SIGKILL. Orders in flight wait for it."
    );
    let customers = format!("Outage: {what} is down for a moment. Your orders wait for it.");
    for (user, is_staff) in &recipients {
        let event = format!("outage:{pid}:{user}");
        let outage = if *is_staff { &staff } else { &customers };
        app.db.notify(&event, user, None, "outage", outage).await?;
    }
    tokio::spawn(announce_recovery(
        app.db.clone(),
        control,
        pid,
        what,
        recipients,
    ));
    Ok(format!(
        "Killed {what} (pid {pid}). The supervisor restarts it; watch the notifications."
    ))
}

async fn announce_recovery(
    db: crate::db::Db,
    control: ChildControl,
    pid: u32,
    what: &'static str,
    recipients: Vec<(String, bool)>,
) {
    let restarted = control.wait_restarted(pid, RECOVERY_DEADLINE).await;
    let (staff, customers) = match restarted {
        Some(next) => (
            format!(
                "Recovered: the supervisor restarted {what} (pid {next}); orders in flight resume where they stopped."
            ),
            format!("Recovered: {what} is back; your orders resume where they stopped."),
        ),
        None => (
            format!(
                "{what} is not back after {}s; see the server log.",
                RECOVERY_DEADLINE.as_secs()
            ),
            format!("{what} is still down; your orders wait for it."),
        ),
    };
    for (user, is_staff) in &recipients {
        let event = format!("recovered:{pid}:{user}");
        let message = if *is_staff { &staff } else { &customers };
        if let Err(e) = db.notify(&event, user, None, "recovered", message).await {
            tracing::warn!(error = %e, "cannot record the recovery");
        }
    }
}

/// Sets the carrier for the next `orders` parcels to ship, from `location` only when
/// given (`normal` ends the drill).
pub async fn carrier(
    app: &App,
    user: &User,
    mode: &str,
    orders: i64,
    location: Option<&str>,
) -> AppResult<String> {
    require_admin(user)?;
    let mode = CarrierMode::parse(mode).map_err(|e| AppError::invalid("invalid_mode", e))?;
    if !(0..=100).contains(&orders) {
        return Err(AppError::invalid("invalid_orders", "orders must be 0-100"));
    }
    if let Some(location) = location {
        super::catalog::known_location(app, location).await?;
    }
    app.db.set_carrier_drill(mode, orders, location).await?;
    let place = location.map_or(String::new(), |l| format!(" from {l}"));
    Ok(match mode {
        CarrierMode::Normal => "The carrier works normally again.".to_owned(),
        CarrierMode::Fail => format!(
            "The carrier rejects the next {orders} parcel(s){place}: their stock goes back and their part is never charged."
        ),
        CarrierMode::Flaky => format!(
            "The carrier times out twice for each of the next {orders} parcel(s){place}: Restate retries."
        ),
    })
}

/// The carrier drill under way, in words (for the admin's page).
pub async fn carrier_state(app: &App) -> AppResult<Option<String>> {
    Ok(app.db.carrier_drill().await?.map(|(mode, n, location)| {
        let place = location.map_or(String::new(), |l| format!(" from {l}"));
        format!("The carrier is in `{mode}` mode for the next {n} parcel(s){place}.")
    }))
}
