//! The restate-server child: its command line, its ports, and waiting until it is
//! healthy, at the first start and after a crash.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Child;

use super::READY_DEADLINE;
use crate::config::Config;
use crate::durable::RestateClient;
use crate::net;
use crate::process::Spawner;

/// restate-server's ports, with the setting that names each.
fn ports(config: &Config) -> [(SocketAddr, &'static str); 3] {
    [
        (config.restate.ingress_addr, "SHOPFLOW_RESTATE_INGRESS_ADDR"),
        (config.restate.admin_addr, "SHOPFLOW_RESTATE_ADMIN_ADDR"),
        (config.restate.node_addr, "SHOPFLOW_RESTATE_NODE_ADDR"),
    ]
}

pub(super) fn restate_log(config: &Config) -> PathBuf {
    config.data_dir.join("restate-server.log")
}

/// Starts restate-server again after it died, once the dead one has let go of its
/// ports, and waits until it is healthy.
pub(super) async fn restart(
    spawner: &Spawner,
    config: &Config,
    identity: Option<&crate::restate_identity::Identity>,
    restate: &RestateClient,
) -> anyhow::Result<Child> {
    wait_ports(config, READY_DEADLINE).await?;
    let mut child = start(spawner, config, identity)?;
    wait_healthy(restate, Some(&mut child), config).await?;
    tracing::info!(pid = child.id(), "restate-server restarted");
    Ok(child)
}

/// Waits until restate-server's ports are free (a dying one lets go of them as it exits).
pub(super) async fn wait_ports(config: &Config, deadline: Duration) -> anyhow::Result<()> {
    for (addr, what) in ports(config) {
        net::wait_free(addr, what, deadline).await?;
    }
    Ok(())
}

/// Starts restate-server with its data under the data dir and the configured ports.
pub(super) fn start(
    spawner: &Spawner,
    config: &Config,
    identity: Option<&crate::restate_identity::Identity>,
) -> anyhow::Result<Child> {
    for (addr, what) in ports(config) {
        net::ensure_free(addr, what)?;
    }
    let bin = config.restate_server_bin();
    if !bin.is_file() {
        bail!(
            "restate-server not found at {}: run `npm ci` in the project directory (or set RESTATE_SERVER_BIN)",
            bin.display()
        );
    }
    let log_path = restate_log(config);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let cmd = command(&bin, config, identity, log)?;
    spawner
        .spawn_tokio(cmd)
        .with_context(|| format!("cannot start {}", bin.display()))
}

/// restate-server's command line and environment: its data under the data dir, the
/// configured ports, and our defaults where the operator set none.
fn command(
    bin: &Path,
    config: &Config,
    identity: Option<&crate::restate_identity::Identity>,
    log: std::fs::File,
) -> anyhow::Result<Command> {
    let mut cmd = Command::new(bin);
    cmd.arg("--base-dir")
        .arg(config.restate_dir())
        .args([
            "--node-name",
            "shopflow",
            "--no-logo",
            "--listen-mode",
            "tcp",
        ])
        .env(
            "RESTATE_INGRESS__BIND_ADDRESS",
            config.restate.ingress_addr.to_string(),
        )
        .env(
            "RESTATE_ADMIN__BIND_ADDRESS",
            config.restate.admin_addr.to_string(),
        )
        .env("RESTATE_BIND_ADDRESS", config.restate.node_addr.to_string())
        .env(
            "RESTATE_ADVERTISED_ADDRESS",
            format!("http://{}/", config.restate.node_addr),
        )
        .env("RESTATE_DISABLE_TELEMETRY", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Defaults for a small single-node footprint and quick recovery after an outage:
    // retries back off to at most 2 s and never run out (Restate's default pauses an
    // invocation after 70 attempts, and a paused order waits for a hand on the
    // keyboard). An operator's own values win.
    for (key, value) in [
        ("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "256MB"),
        ("RESTATE_DEFAULT_NUM_PARTITIONS", "4"),
        ("RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL", "2s"),
        ("RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS", "unlimited"),
    ] {
        if std::env::var_os(key).is_none() {
            cmd.env(key, value);
        }
    }
    // Restate exports its invocations' spans to the same OTLP collector (over HTTP);
    // they join a request's trace through the `traceparent` the web role sends.
    if let Some(endpoint) = tracing_endpoint() {
        cmd.env("RESTATE_TRACING_ENDPOINT", endpoint);
    }
    if let Some(identity) = identity {
        cmd.env(
            crate::restate_identity::SERVER_ENV,
            &identity.private_key_file,
        );
    }
    Ok(cmd)
}

/// Waits until Restate's admin API and ingress answer, or fails with a one-line reason.
pub(super) async fn wait_healthy(
    client: &RestateClient,
    mut child: Option<&mut Child>,
    config: &Config,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if client.admin_healthy().await && client.ingress_healthy().await {
            tracing::info!(elapsed = ?started.elapsed(), "Restate is healthy");
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "restate-server exited during start-up ({status}); see {}",
                restate_log(config).display()
            );
        }
        if started.elapsed() > READY_DEADLINE {
            bail!(
                "Restate did not become healthy within {}s (admin {}, ingress {})",
                READY_DEADLINE.as_secs(),
                config.admin_url(),
                config.ingress_url()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restate's `tracing-endpoint` for the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (its
/// OTLP/HTTP form, `otlp+http://…/v1/traces`), unless `RESTATE_TRACING_ENDPOINT` is set.
fn tracing_endpoint() -> Option<String> {
    if std::env::var_os("RESTATE_TRACING_ENDPOINT").is_some() {
        return None;
    }
    otlp_traces_url(&std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()?)
}

/// `http://collector:4318` → `otlp+http://collector:4318/v1/traces`.
fn otlp_traces_url(endpoint: &str) -> Option<String> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    (endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        .then(|| format!("otlp+{endpoint}/v1/traces"))
}

#[cfg(test)]
mod otlp_tests {
    use super::otlp_traces_url;

    #[test]
    fn the_otlp_endpoint_becomes_restates_http_traces_url() {
        assert_eq!(
            otlp_traces_url("http://127.0.0.1:4318/").as_deref(),
            Some("otlp+http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(otlp_traces_url("collector:4318"), None);
    }
}
