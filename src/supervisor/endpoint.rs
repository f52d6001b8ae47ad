//! The supervised `shopflow services` child: started from this very binary, registered
//! with Restate, started again after it dies.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Child;

use super::{Backoff, READY_DEADLINE};
use crate::config::Config;
use crate::durable::RestateClient;
use crate::durable::deployments::Refused;
use crate::process::Spawner;

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
pub(super) struct Services {
    pub(super) child: Child,
    started: Instant,
    backoff: Backoff,
}

impl Services {
    pub(super) fn start(spawner: &Spawner, config: &Config) -> anyhow::Result<Services> {
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
            backoff: Backoff::new(),
        })
    }

    /// Registers the endpoint with Restate, retrying while the fresh child starts
    /// listening (Restate's discovery call fails until it does).
    pub(super) async fn register(
        &mut self,
        restate: &RestateClient,
        uri: &str,
        force: bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let err = match restate.register_deployment(uri, force).await {
                Ok(()) => match restate.make_current(uri).await {
                    Ok(made) => {
                        if made {
                            tracing::info!(
                                uri,
                                "this build was registered before a newer one; it takes \
                                 new invocations again"
                            );
                        }
                        return Ok(());
                    }
                    // Restate still starting: asked again below.
                    Err(e) => e,
                },
                Err(e @ Refused::Conflict(_)) => bail!("cannot register {uri}: {e}"),
                Err(e) => anyhow::Error::new(e),
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
    pub(super) async fn restart(
        &self,
        spawner: &Spawner,
        config: &Config,
    ) -> anyhow::Result<Services> {
        let mut backoff = self.backoff.after_run(self.started.elapsed());
        tokio::time::sleep(backoff.next()).await;
        let mut next = Services::start(spawner, config)?;
        next.backoff = backoff;
        tracing::info!(pid = next.child.id(), "service endpoint restarted");
        Ok(next)
    }
}
