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
//! - [`clock`], [`secrets`], [`net`], [`process`], [`faults`], [`telemetry`], [`logs`],
//!   [`shutdown`], [`build`], [`control`]: the time, secrets in the data dir,
//!   listeners, child processes, crash points for fault-injection runs, traces, log
//!   lines written off the request path, the shutdown request, this build's identity,
//!   the operator's line to a running supervisor.
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
pub mod control;
pub mod db;
pub mod domain;
pub mod durable;
pub mod faults;
pub mod logs;
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

/// The `shopflow` executable: reads the command line, sets up logging (`RUST_LOG`,
/// `--log-format`) and traces (`OTEL_EXPORTER_OTLP_ENDPOINT`), then [`run`]s on a
/// multi-threaded runtime. (The runtime is started here rather than in `main.rs`, so
/// the whole tree of futures is compiled once, in this crate.)
pub fn main() -> std::process::ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("shopflow: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> std::process::ExitCode {
    use clap::Parser;

    let cli = Cli::parse();
    let (writer, spans) = match logging(cli.config.log_format) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("shopflow: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = run(cli).await;
    if let Some(spans) = spans {
        spans.shutdown();
    }
    writer.flush();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, so the reason is the last thing an operator sees.
            eprintln!("shopflow: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log lines (`RUST_LOG`, `--log-format`) to stderr through the log writer, and spans to
/// the OTLP exporter when one is configured.
fn logging(
    format: config::LogFormat,
) -> anyhow::Result<(logs::Lines, Option<telemetry::Exporter>)> {
    use std::io::IsTerminal;

    use anyhow::Context;
    use tracing_subscriber::Layer;
    use tracing_subscriber::util::SubscriberInitExt;

    let writer = logs::Lines::to_stderr().context("cannot start the log writer")?;
    writer.flush_on_panic();
    let lines = tracing_subscriber::fmt::layer().with_writer(writer.clone());
    let lines = match format {
        config::LogFormat::Json => lines.json().flatten_event(true).boxed(),
        config::LogFormat::Pretty => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let spans = telemetry::Exporter::from_env().context("OTLP exporter")?;
    subscriber(
        log_filter(std::env::var("RUST_LOG").ok()),
        lines,
        spans.as_ref(),
    )
    .init();
    Ok((writer, spans))
}

/// `RUST_LOG` as `level,target=level,…` (no span or field filters). The default leaves
/// out the SDK's span around every invocation: entered and left on every poll, it cost
/// a fifth of the orders a second. `restate_sdk=info` brings it back, and with it the
/// replay-aware filter's view of replays (docs/operations.md).
fn log_filter(spec: Option<String>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::Targets;
    spec.and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("sqlx", tracing::Level::WARN)
                .with_target("restate_sdk", tracing::Level::WARN)
        })
}

/// The process's subscriber: `lines` through `filter`, and spans to the exporter.
fn subscriber(
    filter: tracing_subscriber::filter::Targets,
    lines: Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
    spans: Option<&telemetry::Exporter>,
) -> impl tracing::Subscriber + Send + Sync {
    use restate_sdk::filter::ReplayAwareFilter;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::Identity;
    use tracing_subscriber::prelude::*;

    tracing_subscriber::registry()
        // A handler's log lines once, not again each time Restate replays it. `RUST_LOG`
        // is the outer filter, so what it leaves out is ruled out per call site, once,
        // and never made a span: combined the other way (or with `and`), the replay
        // filter's "every call site" had every span of every level in every crate made.
        .with(lines.with_filter(ReplayAwareFilter).with_filter(filter))
        .with(match spans {
            Some(exporter) => exporter.layer().boxed(),
            // A layer that wants nothing: an absent one (`None`) counts as wanting every
            // span, and the registry would make them all.
            None => Identity::new().with_filter(LevelFilter::OFF).boxed(),
        })
}

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

#[cfg(test)]
mod tests {
    use tracing_subscriber::Layer;

    /// What the default filter leaves out is never made: a read's request span (DEBUG)
    /// and a library's TRACE span are disabled, so the registry allocates nothing for
    /// them (each was made and dropped on every request and every poll).
    #[test]
    fn spans_the_filter_leaves_out_are_never_made() {
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .boxed();
        let subscriber = super::subscriber(super::log_filter(None), lines, None);
        tracing::subscriber::with_default(subscriber, || {
            let made = |span: tracing::Span| !span.is_disabled();
            assert_eq!(
                (
                    made(tracing::info_span!("write")),
                    made(tracing::debug_span!("read")),
                    made(tracing::trace_span!(target: "h2", "frame")),
                    made(tracing::info_span!(target: "restate_sdk", "invocation")),
                ),
                (true, false, false, false),
                "(INFO, DEBUG, a library's TRACE, the SDK's INFO) spans made"
            );
        });
    }
}
