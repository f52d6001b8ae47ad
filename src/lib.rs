//! ShopFlow: durable e-commerce order fulfillment on Restate.
//!
//! One binary, three roles: `shopflow` supervises everything on one machine,
//! `shopflow services` serves the durable handlers to Restate, `shopflow web` serves
//! the UI and JSON API; `shopflow user|token|pay` are the operator's commands. `run`
//! picks the role; everything is in this library so the tests drive the same code.
//!
//! # Where things live
//!
//! Layers, lowest first; each uses only those above it in this list
//! (`tests/layers.rs` checks it):
//!
//! - [`domain`]: the business's types and rules (ids, money, quantities, the basket,
//!   order statuses and steps, the saga, free-text rules). Pure: no I/O, no SDK.
//! - [`clock`], [`secrets`], [`net`], [`process`], [`faults`], [`telemetry`],
//!   [`shutdown`], [`build`]: the time, secrets in the data dir, listeners, child
//!   processes, crash points for fault-injection runs, traces, the shutdown request,
//!   this build's identity.
//! - [`auth`]: signed tokens and cookies, password hashes.
//! - [`db`]: SQLite or PostgreSQL: the catalog, users, and the order read model the durable handlers
//!   keep current; the payment gateway's and the carrier's records; the notification log.
//! - [`durable`]: the Restate services (`UserSession`, `OrderFulfillmentWorkflow`,
//!   `ShippingService`) and the typed client that reaches them through Restate.
//! - [`app`]: the use cases over the two (cart, checkout, payments, approvals, orders,
//!   identity, the live feed, the crash drill), with one error, `AppError`.
//! - [`web`]: axum adapters over `app`: the JSON API (`web::api`), the page
//!   (`web::ui`), their streams, and the guards every request passes.
//! - [`config`], [`cli`], [`supervisor`]: the command line, the operator's commands,
//!   and the roles that wire it all together.

pub mod app;
pub mod auth;
pub mod build;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod durable;
pub mod faults;
pub mod net;
pub mod process;
pub mod restate_identity;
pub mod secrets;
pub mod shutdown;
pub mod supervisor;
pub mod telemetry;
pub mod web;

use config::{Cli, Command};
use shutdown::Shutdown;

/// Runs the role the command line asks for until SIGINT/SIGTERM, or an operator's
/// command to its end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.version {
        println!("shopflow {}", build::describe());
        return Ok(());
    }
    secrets::keep_private(&cli.config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "data dir {} is not usable: {e}",
            cli.config.data_dir.display()
        )
    })?;
    match cli.command {
        None => supervisor::run(cli.config, Shutdown::on_signals()?).await,
        Some(Command::Services) => {
            supervisor::run_services(cli.config, Shutdown::on_signals()?).await
        }
        Some(Command::Web) => supervisor::run_web(cli.config, Shutdown::on_signals()?).await,
        Some(command) => cli::run(command, &cli.config).await,
    }
}
