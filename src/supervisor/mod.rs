//! The supervisor: starts restate-server and the `shopflow services` endpoint as child
//! processes, registers the endpoint with Restate, restarts either when it dies, and
//! stops everything on SIGINT/SIGTERM. The roles that run one part each are in
//! [`roles`].

mod builds;
mod endpoint;
mod restate;
mod roles;

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::anyhow;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::{Config, RestateMode};
use crate::durable::RestateClient;
use crate::process::{ChildControl, Spawner, terminate};
use crate::restate_identity::Identity;
use crate::shutdown::Shutdown;
use crate::{control, net, web};
use endpoint::Services;
pub use roles::{run_services, run_web};

/// How long restate-server and the endpoint get to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a start waits for ports a dying child still holds: after a `kill -9` of
/// the supervisor its children die a moment later (parent-death signal), and a process
/// manager restarting ShopFlow at once must not find their ports taken.
const PORT_WAIT: Duration = Duration::from_secs(15);
/// How long children get to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Growing waits between tries to bring a child back: from 100 ms, doubling, to at most
/// 5 s, so a crash loop does not spin; afresh once a child has run a while.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    delay: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Backoff {
        Backoff { delay: Self::MIN }
    }

    /// The wait now; the next one is twice as long, up to the most.
    fn next(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (delay * 2).min(Self::MAX);
        delay
    }

    /// The waits after a child that ran for `ran`: afresh when it lived a while.
    fn after_run(self, ran: Duration) -> Backoff {
        if ran > Self::MAX * 2 {
            Backoff::new()
        } else {
            self
        }
    }
}

/// Everything one machine runs, under supervision.
struct Supervisor {
    config: Config,
    spawner: Spawner,
    identity: Option<Identity>,
    restate: RestateClient,
    restate_server: Option<Child>,
    restate_control: Option<ChildControl>,
    services: Services,
    endpoint_control: ChildControl,
    /// The endpoints of older builds until they drain.
    older_builds: JoinHandle<()>,
    /// The operator's requests (`shopflow backup`), and whether restate-server is
    /// stopped for one.
    control: mpsc::Receiver<control::Request>,
    restate_paused: bool,
    shutdown: Shutdown,
}

/// Runs everything on one machine: restate-server (unless external), the supervised
/// service endpoint and the web role. Returns when a shutdown signal arrives.
pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    prepare_data_dir(&config.data_dir)?;
    let http = net::bind(config.http_addr, "SHOPFLOW_HTTP_ADDR")?;
    net::wait_free(config.services_addr, "SHOPFLOW_SERVICES_ADDR", PORT_WAIT).await?;
    let db = roles::open_db(&config).await?;
    let mut supervisor = Supervisor::start(config, shutdown).await?;
    let supervised = crate::app::Supervised {
        endpoint: Some(supervisor.endpoint_control.clone()),
        restate: supervisor.restate_control.clone(),
    };
    let config = &supervisor.config;
    let (stop_web, web_stopped) = watch::channel(false);
    let shutdown = supervisor.shutdown.clone();
    let restate = supervisor.restate.clone();
    let app = App::new(
        web::settings(config)?,
        db,
        restate,
        supervised,
        shutdown.clone(),
    )
    .await?;
    let state = web::AppState::new(config, app, shutdown);
    let mut web = tokio::spawn(web::serve(http, state, wait_for(web_stopped)));
    tracing::info!(
        "ShopFlow is up at http://{} (Restate UI at http://{})",
        config.http_addr,
        config.restate.admin_addr
    );
    println!("ShopFlow is running: http://{}", config.http_addr);
    let outcome = supervisor.watch(&mut web).await;
    tracing::info!("stopping");
    let _ = stop_web.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, web).await;
    supervisor.stop().await;
    outcome
}

impl Supervisor {
    /// Starts restate-server (unless external) and the endpoint, and registers it.
    async fn start(mut config: Config, shutdown: Shutdown) -> anyhow::Result<Supervisor> {
        // A spawned restate-server signs its requests to the endpoint with a key of
        // ours, and the endpoint serves nothing else (unless the operator chose a key).
        let identity = match (config.restate.mode, &config.restate.identity_key) {
            (RestateMode::Spawn, None) => {
                let identity = crate::restate_identity::load_or_create(&config.data_dir)?;
                config.restate.identity_key = Some(identity.public_key.clone());
                Some(identity)
            }
            _ => None,
        };
        let restate = RestateClient::new(config.ingress_url(), config.admin_url())?;
        let spawner =
            Spawner::new().map_err(|e| anyhow!("cannot start the child-process thread: {e}"))?;
        let mut restate_server = match config.restate.mode {
            RestateMode::Spawn => {
                restate::wait_ports(&config, PORT_WAIT).await?;
                Some(restate::start(&spawner, &config, identity.as_ref())?)
            }
            RestateMode::External => None,
        };
        restate::wait_healthy(&restate, restate_server.as_mut(), &config).await?;
        let restate_control = restate_server.as_ref().map(|child| {
            let control = ChildControl::new(config.restate.ingress_addr);
            control.started(child.id());
            control
        });
        builds::keep_current(&config)?;
        let mut services = Services::start(&spawner, &config)?;
        services
            .register(&restate, &config.build_uri(), config.force_registration)
            .await?;
        let endpoint_control = ChildControl::new(config.services_addr);
        endpoint_control.started(services.child.id());
        let older = builds::Builds::new(config.clone(), spawner.clone(), restate.clone());
        let older_builds = tokio::spawn(older.run(shutdown.clone()));
        let (requests, control) = mpsc::channel(4);
        control::listen(&config.data_dir, requests)?;
        Ok(Supervisor {
            config,
            spawner,
            identity,
            restate,
            restate_server,
            restate_control,
            services,
            endpoint_control,
            older_builds,
            control,
            restate_paused: false,
            shutdown,
        })
    }

    /// Restarts whichever child dies until a shutdown is requested or the web server
    /// stops (an error: it should not).
    async fn watch(&mut self, web: &mut JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
        loop {
            let restarted = tokio::select! {
                () = self.shutdown.wait() => return Ok(()),
                status = self.services.child.wait() => self.endpoint_died(status).await,
                status = wait_optional(self.restate_server.as_mut()) => self.restate_died(status).await,
                Some(request) = self.control.recv() => self.on_request(request).await,
                result = &mut *web => return Err(match result {
                    Ok(Ok(())) => anyhow!("the web server stopped unexpectedly"),
                    Ok(Err(e)) => anyhow!("the web server failed: {e}"),
                    Err(e) => anyhow!("the web server panicked: {e}"),
                }),
            };
            if !restarted {
                return Ok(());
            }
        }
    }

    /// The endpoint exited: unless that is part of a shutdown, starts a new one. False
    /// when the supervisor is stopping instead.
    async fn endpoint_died(&mut self, status: std::io::Result<ExitStatus>) -> bool {
        if stopped_on_request(&status, &self.shutdown).await {
            return false;
        }
        tracing::warn!(status = %describe(status), "the service endpoint exited; restarting it");
        // No pid while none runs: a drill must not kill whatever reuses it.
        self.endpoint_control.started(None);
        let (spawner, config, services) = (&self.spawner, &self.config, &self.services);
        let Some(next) = until_up("the service endpoint", &self.shutdown, || {
            services.restart(spawner, config)
        })
        .await
        else {
            return false;
        };
        self.services = next;
        self.endpoint_control.started(self.services.child.id());
        true
    }

    /// restate-server exited: unless that is part of a shutdown, starts it again with
    /// its data dir intact, so it picks up every invocation where it stood.
    async fn restate_died(&mut self, status: std::io::Result<ExitStatus>) -> bool {
        if stopped_on_request(&status, &self.shutdown).await {
            return false;
        }
        tracing::warn!(status = %describe(status), "restate-server exited; restarting it");
        if let Some(control) = &self.restate_control {
            control.started(None);
        }
        let (spawner, config, identity) = (&self.spawner, &self.config, self.identity.as_ref());
        let restate = &self.restate;
        let Some(child) = until_up("restate-server", &self.shutdown, || {
            restate::restart(spawner, config, identity, restate)
        })
        .await
        else {
            return false;
        };
        if let Some(control) = &self.restate_control {
            control.started(child.id());
        }
        self.restate_server = Some(child);
        true
    }

    /// An operator's request. False when the supervisor is stopping instead.
    async fn on_request(&mut self, request: control::Request) -> bool {
        match request {
            control::Request::PauseRestate(reply) => {
                let outcome = self.pause_restate().await;
                let _ = reply.send(outcome);
                true
            }
            control::Request::ResumeRestate(reply) => {
                if !self.restate_paused {
                    let _ = reply.send(Ok(()));
                    return true;
                }
                tracing::info!("starting restate-server again");
                let (spawner, config, identity) =
                    (&self.spawner, &self.config, self.identity.as_ref());
                let restate = &self.restate;
                let Some(child) = until_up("restate-server", &self.shutdown, || {
                    restate::restart(spawner, config, identity, restate)
                })
                .await
                else {
                    let _ = reply.send(Err("the supervisor is stopping".into()));
                    return false;
                };
                if let Some(control) = &self.restate_control {
                    control.started(child.id());
                }
                self.restate_server = Some(child);
                self.restate_paused = false;
                let _ = reply.send(Ok(()));
                true
            }
        }
    }

    /// Stops restate-server (for a backup of its data) until asked to resume.
    async fn pause_restate(&mut self) -> Result<(), String> {
        let Some(child) = self.restate_server.as_mut() else {
            return Err(match self.config.restate.mode {
                RestateMode::External => {
                    "Restate runs elsewhere (SHOPFLOW_RESTATE=external): back its data up \
                     where it runs"
                        .into()
                }
                RestateMode::Spawn if self.restate_paused => {
                    "restate-server is stopped for another backup right now; try again when \
                     it is done"
                        .into()
                }
                RestateMode::Spawn => "restate-server is not running right now".into(),
            });
        };
        tracing::info!("stopping restate-server for a backup of its data");
        if let Some(control) = &self.restate_control {
            control.started(None);
        }
        terminate(child, STOP_GRACE).await;
        self.restate_server = None;
        self.restate_paused = true;
        Ok(())
    }

    /// Stops both children at once: the endpoint's graceful stop waits for Restate's
    /// open connections, which end when restate-server stops (a terminal's Ctrl-C
    /// reaches both anyway).
    async fn stop(mut self) {
        let older_builds = async {
            // They stop on a shutdown; otherwise (the web server failed) at once.
            if tokio::time::timeout(STOP_GRACE, &mut self.older_builds)
                .await
                .is_err()
            {
                self.older_builds.abort();
            }
        };
        tokio::join!(
            terminate(&mut self.services.child, STOP_GRACE),
            older_builds,
            async {
                if let Some(child) = self.restate_server.as_mut() {
                    terminate(child, STOP_GRACE).await;
                }
            }
        );
    }
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

/// Runs `restart` until it brings a child back, backing off between failed tries: a
/// restart can fail (ports still held, a start-up that dies or hangs, another kill in
/// the middle of it), and a supervisor that gave up would take every order with it.
/// `None` when a shutdown is requested meanwhile.
async fn until_up<T, F, Fut>(what: &str, shutdown: &Shutdown, mut restart: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut backoff = Backoff::new();
    loop {
        let delay = backoff.next();
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
