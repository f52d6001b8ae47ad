//! The supervisor: starts restate-server and the `shopflow services` endpoint as child
//! processes, registers the endpoint with Restate, restarts the endpoint when it dies,
//! and stops everything on SIGINT/SIGTERM.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::process::Child;
use tokio::sync::watch;

use crate::app::App;
use crate::config::{Config, RestateMode};
use crate::durable::RestateClient;
use crate::process::{ChildControl, Spawner, terminate};
use crate::shutdown::Shutdown;
use crate::{net, web};

/// How long restate-server and the endpoint get to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a start waits for ports a dying child still holds: after a `kill -9` of
/// the supervisor its children die a moment later (parent-death signal), and a process
/// manager restarting ShopFlow at once must not find their ports taken.
const PORT_WAIT: Duration = Duration::from_secs(15);
/// The longest wait between two failed restarts of a child.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long children get to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs everything on one machine: restate-server (unless external), the supervised
/// service endpoint and the web role. Returns when a shutdown signal arrives.
pub async fn run(mut config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    prepare_data_dir(&config.data_dir)?;
    // A spawned restate-server signs its requests to the endpoint with a key of ours,
    // and the endpoint serves nothing else (unless the operator chose a key).
    let identity = match (config.restate, &config.restate_identity_key) {
        (RestateMode::Spawn, None) => {
            let identity = crate::restate_identity::load_or_create(&config.data_dir)?;
            config.restate_identity_key = Some(identity.public_key.clone());
            Some(identity)
        }
        _ => None,
    };
    let http = net::bind(config.http_addr, "SHOPFLOW_HTTP_ADDR")?;
    net::wait_free(config.services_addr, "SHOPFLOW_SERVICES_ADDR", PORT_WAIT).await?;
    let db = open_db(&config).await?;
    let restate = RestateClient::new(config.ingress_url(), config.admin_url())?;
    let spawner = Spawner::new().context("cannot start the child-process thread")?;

    let mut restate_server = match config.restate {
        RestateMode::Spawn => {
            wait_restate_ports(&config, PORT_WAIT).await?;
            Some(start_restate(&spawner, &config, identity.as_ref())?)
        }
        RestateMode::External => None,
    };
    wait_for_restate(&restate, restate_server.as_mut(), &config).await?;
    let restate_control = restate_server.as_ref().map(|child| {
        let control = ChildControl::new(config.restate_ingress_addr);
        control.started(child.id());
        control
    });

    let mut services = Services::start(&spawner, &config)?;
    services.register(&restate, &config.services_url()).await?;
    let control = ChildControl::new(config.services_addr);
    control.started(services.child.id());
    let supervised = crate::app::Supervised {
        endpoint: Some(control.clone()),
        restate: restate_control.clone(),
    };

    let (stop_web, web_stopped) = watch::channel(false);
    let settings = web::settings(&config)?;
    let app = App::new(settings, db, restate.clone(), supervised, shutdown.clone()).await?;
    let state = web::AppState::new(&config, app, shutdown.clone());
    let mut web = tokio::spawn(web::serve(http, state, wait_for(web_stopped)));

    tracing::info!(
        "ShopFlow is up at http://{} (Restate UI at http://{})",
        config.http_addr,
        config.restate_admin_addr
    );
    println!("ShopFlow is running: http://{}", config.http_addr);

    let outcome = loop {
        tokio::select! {
            () = shutdown.wait() => break Ok(()),
            status = services.child.wait() => {
                if stopped_on_request(&status, &shutdown).await {
                    break Ok(());
                }
                tracing::warn!(status = %describe(status), "the service endpoint exited; restarting it");
                // No pid while none runs: a drill must not kill whatever reuses it.
                control.started(None);
                let Some(next) = until_up("the service endpoint", &shutdown, || {
                    services.restart(&spawner, &config)
                })
                .await
                else {
                    break Ok(());
                };
                services = next;
                control.started(services.child.id());
            }
            status = wait_optional(restate_server.as_mut()) => {
                if stopped_on_request(&status, &shutdown).await {
                    break Ok(());
                }
                // Restate keeps its state in its data dir: a new one picks up every
                // invocation where it stood.
                tracing::warn!(status = %describe(status), "restate-server exited; restarting it");
                if let Some(control) = &restate_control {
                    control.started(None);
                }
                let Some(child) = until_up("restate-server", &shutdown, || {
                    restart_restate(&spawner, &config, identity.as_ref(), &restate)
                })
                .await
                else {
                    break Ok(());
                };
                if let Some(control) = &restate_control {
                    control.started(child.id());
                }
                restate_server = Some(child);
            }
            result = &mut web => {
                break Err(match result {
                    Ok(Ok(())) => anyhow!("the web server stopped unexpectedly"),
                    Ok(Err(e)) => anyhow!("the web server failed: {e}"),
                    Err(e) => anyhow!("the web server panicked: {e}"),
                });
            }
        }
    };

    tracing::info!("stopping");
    let _ = stop_web.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, web).await;
    // Both at once: the endpoint's graceful stop waits for Restate's open connections,
    // which end when restate-server stops (a terminal's Ctrl-C reaches both anyway).
    tokio::join!(terminate(&mut services.child, STOP_GRACE), async {
        if let Some(child) = restate_server.as_mut() {
            terminate(child, STOP_GRACE).await;
        }
    });
    outcome
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn wait_optional(child: Option<&mut Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Whether a child's exit is part of a shutdown rather than a crash. A Ctrl-C in a
/// terminal reaches the children too, and one may exit before our own handler has run,
/// so an orderly exit waits a moment for the shutdown; a child killed by any other
/// signal (SIGKILL, SIGSEGV) crashed and is handled at once.
async fn stopped_on_request(status: &std::io::Result<ExitStatus>, shutdown: &Shutdown) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let killed = status
        .as_ref()
        .ok()
        .and_then(ExitStatusExt::signal)
        .is_some_and(|sig| sig != libc::SIGINT && sig != libc::SIGTERM);
    !killed && shutdown.requested_soon().await
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot tell: {e}"),
    }
}

/// Makes sure the data directory exists and is writable, with a one-line reason if not.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let unusable = |e: std::io::Error| anyhow!("data dir {} is not usable: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(unusable)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(unusable)?;
    std::fs::remove_file(&probe).map_err(unusable)?;
    std::fs::read_dir(dir).map_err(unusable)?;
    Ok(())
}

fn restate_log(config: &Config) -> PathBuf {
    config.data_dir.join("restate-server.log")
}

/// Runs `restart` until it brings a child back, backing off between failed tries: a
/// restart can fail (ports still held, a start-up that dies or hangs, another kill in
/// the middle of it), and a supervisor that gave up would take every order with it.
/// `None` when a shutdown is requested meanwhile.
async fn until_up<T, F, Fut>(what: &str, shutdown: &Shutdown, mut restart: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        tokio::select! {
            () = shutdown.wait() => return None,
            result = restart() => match result {
                Ok(child) => return Some(child),
                Err(e) => tracing::error!(error = %format!("{e:#}"), retry_in = ?delay, "{what} did not come back; trying again"),
            },
        }
        tokio::select! {
            () = shutdown.wait() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RESTART_BACKOFF_MAX);
    }
}

/// Starts restate-server again after it died, once the dead one has let go of its
/// ports, and waits until it is healthy.
async fn restart_restate(
    spawner: &Spawner,
    config: &Config,
    identity: Option<&crate::restate_identity::Identity>,
    restate: &RestateClient,
) -> anyhow::Result<Child> {
    wait_restate_ports(config, READY_DEADLINE).await?;
    let mut child = start_restate(spawner, config, identity)?;
    wait_for_restate(restate, Some(&mut child), config).await?;
    tracing::info!(pid = child.id(), "restate-server restarted");
    Ok(child)
}

/// Waits until restate-server's ports are free (a dying one lets go of them as it exits).
async fn wait_restate_ports(config: &Config, deadline: Duration) -> anyhow::Result<()> {
    for (addr, what) in [
        (config.restate_ingress_addr, "SHOPFLOW_RESTATE_INGRESS_ADDR"),
        (config.restate_admin_addr, "SHOPFLOW_RESTATE_ADMIN_ADDR"),
        (config.restate_node_addr, "SHOPFLOW_RESTATE_NODE_ADDR"),
    ] {
        net::wait_free(addr, what, deadline).await?;
    }
    Ok(())
}

/// Starts restate-server with its data under the data dir and the configured ports.
fn start_restate(
    spawner: &Spawner,
    config: &Config,
    identity: Option<&crate::restate_identity::Identity>,
) -> anyhow::Result<Child> {
    for (addr, what) in [
        (config.restate_ingress_addr, "SHOPFLOW_RESTATE_INGRESS_ADDR"),
        (config.restate_admin_addr, "SHOPFLOW_RESTATE_ADMIN_ADDR"),
        (config.restate_node_addr, "SHOPFLOW_RESTATE_NODE_ADDR"),
    ] {
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
    let mut cmd = Command::new(&bin);
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
            config.restate_ingress_addr.to_string(),
        )
        .env(
            "RESTATE_ADMIN__BIND_ADDRESS",
            config.restate_admin_addr.to_string(),
        )
        .env("RESTATE_BIND_ADDRESS", config.restate_node_addr.to_string())
        .env(
            "RESTATE_ADVERTISED_ADDRESS",
            format!("http://{}/", config.restate_node_addr),
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
    if let Some(endpoint) = restate_tracing_endpoint() {
        cmd.env("RESTATE_TRACING_ENDPOINT", endpoint);
    }
    if let Some(identity) = identity {
        cmd.env(
            crate::restate_identity::SERVER_ENV,
            &identity.private_key_file,
        );
    }
    spawner
        .spawn_tokio(cmd)
        .with_context(|| format!("cannot start {}", bin.display()))
}

/// Waits until Restate's admin API and ingress answer, or fails with a one-line reason.
async fn wait_for_restate(
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

/// A command running this very binary. On Linux it is the image this process runs
/// (`/proc/self/exe`), so a binary replaced or removed on disk since the start (an
/// upgrade, a rebuild) neither stops a restart nor mixes two versions of the handlers.
fn own_binary() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the shopflow binary")?;
    let image = Path::new("/proc/self/exe");
    if !image.exists() {
        return Ok(Command::new(exe));
    }
    let mut cmd = Command::new(image);
    // Named as it was started (without the " (deleted)" Linux adds once it is gone).
    let name = exe.to_string_lossy();
    cmd.arg0(name.trim_end_matches(" (deleted)"));
    Ok(cmd)
}

/// The supervised `shopflow services` child.
struct Services {
    child: Child,
    started: Instant,
    backoff: Duration,
}

impl Services {
    const MIN_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);

    fn start(spawner: &Spawner, config: &Config) -> anyhow::Result<Services> {
        let mut cmd = own_binary()?;
        cmd.arg("services")
            .envs(config.to_env())
            .stdin(Stdio::null());
        let child = spawner
            .spawn_tokio(cmd)
            .context("cannot start `shopflow services`")?;
        Ok(Services {
            child,
            started: Instant::now(),
            backoff: Self::MIN_BACKOFF,
        })
    }

    /// Registers the endpoint with Restate, retrying while the fresh child starts
    /// listening (Restate's discovery call fails until it does).
    async fn register(&mut self, restate: &RestateClient, uri: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let err = match restate.register_deployment(uri).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(status) = self.child.try_wait()? {
                bail!("`shopflow services` exited during start-up ({status})");
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(err.context(format!(
                    "the service endpoint was not registered within {}s",
                    READY_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts a new endpoint after the old one died. A child that keeps dying young
    /// is restarted with a growing delay, so a crash loop does not spin.
    async fn restart(&self, spawner: &Spawner, config: &Config) -> anyhow::Result<Services> {
        let backoff = if self.started.elapsed() > Self::MAX_BACKOFF * 2 {
            Self::MIN_BACKOFF
        } else {
            (self.backoff * 2).min(Self::MAX_BACKOFF)
        };
        tokio::time::sleep(backoff).await;
        let mut next = Services::start(spawner, config)?;
        next.backoff = backoff;
        tracing::info!(pid = next.child.id(), "service endpoint restarted");
        Ok(next)
    }
}

/// Opens the database (migrated, demo data seeded) and adds the load-test data when
/// `--seed bench` asks for it.
async fn open_db(config: &Config) -> anyhow::Result<crate::db::Db> {
    let db = crate::db::Db::open(&config.database_url()).await?;
    if config.seed == crate::config::Seed::Bench {
        db.seed_bench().await?;
    }
    Ok(db)
}

/// Runs only the web role, against an external Restate.
pub async fn run_web(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let http = net::bind(config.http_addr, "SHOPFLOW_HTTP_ADDR")?;
    let db = open_db(&config).await?;
    let restate = RestateClient::new(config.ingress_url(), config.admin_url())?;
    let supervised = crate::app::Supervised::default();
    let app = App::new(
        web::settings(&config)?,
        db,
        restate,
        supervised,
        shutdown.clone(),
    )
    .await?;
    let state = web::AppState::new(&config, app, shutdown.clone());
    println!("ShopFlow web is running: http://{}", config.http_addr);
    web::serve(http, state, async move { shutdown.wait().await }).await?;
    Ok(())
}

/// Runs only the Restate service endpoint.
pub async fn run_services(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::faults::arm(&config.data_dir, &config.hold_at)?;
    let listener = net::bind(config.services_addr, "SHOPFLOW_SERVICES_ADDR")?;
    let db = crate::db::Db::open(&config.database_url()).await?;
    tracing::info!(addr = %config.services_addr, "service endpoint listening");
    let timings = crate::durable::Timings {
        payment_timeout: config.payment_timeout,
        delivery_delay: config.delivery_delay,
    };
    let endpoint = crate::durable::endpoint(db, timings, config.restate_identity_key.as_deref())?;
    crate::durable::serve(endpoint, listener, shutdown.wait()).await;
    Ok(())
}

/// Restate's `tracing-endpoint` for the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (its
/// OTLP/HTTP form, `otlp+http://…/v1/traces`), unless `RESTATE_TRACING_ENDPOINT` is set.
fn restate_tracing_endpoint() -> Option<String> {
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
