use std::io::IsTerminal;

use clap::Parser;
use restate_sdk::filter::ReplayAwareFilter;
use shopflow::config::LogFormat;
use shopflow::telemetry::Exporter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = shopflow::config::Cli::parse();
    // `RUST_LOG` as `level,target=level,…` (no span or field filters).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("sqlx", tracing::Level::WARN)
        });
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match cli.config.log_format {
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
        LogFormat::Pretty => lines.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let spans = match Exporter::from_env() {
        Ok(spans) => spans,
        Err(e) => {
            eprintln!("shopflow: OTLP exporter: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry()
        // A handler's log lines once, not again each time Restate replays it. `RUST_LOG`
        // decides first, so what it leaves out is ruled out per call site, once.
        .with(lines.with_filter(filter.and(ReplayAwareFilter)))
        .with(spans.as_ref().map(Exporter::layer))
        .init();
    let outcome = shopflow::run(cli).await;
    if let Some(spans) = spans {
        spans.shutdown();
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, so the reason is the last thing an operator sees.
            eprintln!("shopflow: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
