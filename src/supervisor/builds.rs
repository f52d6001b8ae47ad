//! Older builds until they drain. The supervisor keeps a copy of each build it
//! registers (`<data dir>/builds/<id>/shopflow`). While Restate still has invocations
//! pinned to an older build's deployment, that build's own endpoint runs (from the
//! copy, on `builds/<id>/endpoint.sock`, where the current endpoint passes its calls
//! on), restarted like the current one when it dies. Once nothing is pinned to it, the
//! deployment is removed from Restate and the copy deleted.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Child;

use super::{Backoff, STOP_GRACE};
use crate::config::Config;
use crate::durable::RestateClient;
use crate::durable::deployments::{Deployment, DeploymentState};
use crate::durable::router::build_socket;
use crate::process::{Spawner, terminate};
use crate::shutdown::Shutdown;

/// How often Restate's deployments are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long a deployment must be seen with nothing pinned before it is removed: a
/// restate-server that has just started may answer for a moment before its partitions
/// are back, and one empty answer must not retire a build that still has work.
const DRAINED_FOR: Duration = Duration::from_secs(10);

/// The copy of `build` under `builds_dir`.
fn executable(builds_dir: &Path, build: &str) -> PathBuf {
    builds_dir.join(build).join("shopflow")
}

/// The file that marks a kept build as named at compile time (its hash is not its id).
const NAMED: &str = "named";

/// Keeps a copy of the running executable as this build's (once per build).
pub(super) fn keep_current(config: &Config) -> anyhow::Result<()> {
    let id = crate::build::id();
    anyhow::ensure!(
        crate::build::is_id(id),
        "this build has no usable id ({id:?}): SHOPFLOW_BUILD_ID, when set at compile time, \
         is 1-64 of A-Z a-z 0-9 . _ - (not starting with a dot)"
    );
    let dir = config.builds_dir();
    let target = executable(&dir, id);
    if target.exists() {
        return Ok(());
    }
    let parent = target.parent().expect("a build's copy is in its directory");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    if crate::build::named() {
        std::fs::write(parent.join(NAMED), b"")?;
    }
    let partial = parent.join("shopflow.partial");
    let _ = std::fs::remove_file(&partial);
    // A second name for the executable's file when it is still the image this process
    // runs and on the same file system (no copy: a build replaced on disk by a new file,
    // as cargo, install or mv do, leaves this one alone); a copy of the image otherwise.
    let exe = std::env::current_exe().context("cannot find the shopflow executable")?;
    let image = Path::new("/proc/self/exe");
    let linked = same_file(&exe, image) && std::fs::hard_link(&exe, &partial).is_ok();
    if !linked {
        let source = if image.exists() { image } else { exe.as_path() };
        std::fs::copy(source, &partial)
            .with_context(|| format!("cannot copy this build to {}", partial.display()))?;
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot keep this build at {}", target.display()))?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Whether the kept executable of `build` is still that build: its hash names it (a
/// build named at compile time, marked so when kept, cannot be checked). A kept file
/// written over in place (`cp` onto the old executable) is another build, and must not
/// run the old one's invocations.
fn still_the_build(exe: &Path, build: &str) -> bool {
    let named = exe.with_file_name(NAMED).exists();
    named || crate::build::hash_of(exe).is_ok_and(|hash| hash == build)
}

/// One older build's endpoint.
struct Running {
    child: Option<Child>,
    started: Instant,
    backoff: Backoff,
    next_start: Instant,
}

/// The older builds' endpoints, kept running while their deployments drain.
pub(super) struct Builds {
    config: Config,
    spawner: Spawner,
    restate: RestateClient,
    running: HashMap<String, Running>,
    /// Builds whose copy is missing, already reported.
    missing: HashSet<String>,
    /// Since when each deployment has been seen drained, without a break.
    drained_since: HashMap<String, Instant>,
}

impl Builds {
    pub(super) fn new(config: Config, spawner: Spawner, restate: RestateClient) -> Builds {
        Builds {
            config,
            spawner,
            restate,
            running: HashMap::new(),
            missing: HashSet::new(),
            drained_since: HashMap::new(),
        }
    }

    /// Looks after the older builds until a shutdown, then stops their endpoints.
    pub(super) async fn run(mut self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = tick.tick() => {}
            }
            match self.restate.deployments().await {
                Ok(deployments) => self.check(&deployments).await,
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "cannot list deployments now"),
            }
        }
        for child in self.running.values_mut().filter_map(|r| r.child.as_mut()) {
            terminate(child, STOP_GRACE).await;
        }
    }

    /// Runs the endpoint of every older build something is still pinned to, and
    /// retires every drained one.
    async fn check(&mut self, deployments: &[Deployment]) {
        let own = crate::build::id();
        let mut wanted = HashSet::new();
        self.drained_since.retain(|id, _| {
            deployments
                .iter()
                .any(|d| d.deployment_id == *id && d.state == DeploymentState::Drained)
        });
        for d in deployments {
            if d.build.as_deref() == Some(own) {
                continue;
            }
            // A deployment from before builds had their own URIs is served by the
            // current build; it only needs removing once drained.
            let build = d.build.as_deref().unwrap_or("");
            match d.state {
                DeploymentState::Active | DeploymentState::Draining if !build.is_empty() => {
                    wanted.insert(build.to_owned());
                }
                DeploymentState::Active | DeploymentState::Draining => {}
                DeploymentState::Drained => {
                    let since = *self
                        .drained_since
                        .entry(d.deployment_id.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() >= DRAINED_FOR {
                        self.retire(d, build).await;
                    }
                }
            }
        }
        let unwanted: Vec<String> = (self.running.keys())
            .filter(|b| !wanted.contains(*b))
            .cloned()
            .collect();
        for build in unwanted {
            self.stop(&build).await;
        }
        for build in wanted {
            self.keep_running(&build);
        }
    }

    /// Starts (or restarts, backing off) the endpoint of `build`.
    fn keep_running(&mut self, build: &str) {
        let dir = self.config.builds_dir();
        let exe = executable(&dir, build);
        if !self.usable(build, &exe) {
            return;
        }
        let now = Instant::now();
        let running = self.running.entry(build.to_owned()).or_insert(Running {
            child: None,
            started: now,
            backoff: Backoff::new(),
            next_start: now,
        });
        if let Some(child) = running.child.as_mut() {
            match child.try_wait() {
                Ok(None) => return,
                status => {
                    tracing::warn!(
                        build,
                        ?status,
                        "an older build's endpoint exited; restarting it"
                    );
                    running.child = None;
                    running.backoff = running.backoff.after_run(running.started.elapsed());
                    running.next_start = now + running.backoff.next();
                }
            }
        }
        if now < running.next_start {
            return;
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("services")
            .envs(self.config.to_env())
            .env("SHOPFLOW_SERVICES_SOCKET", build_socket(&dir, build))
            .stdin(Stdio::null());
        match self.spawner.spawn_tokio(cmd) {
            Ok(child) => {
                tracing::info!(
                    build,
                    pid = child.id(),
                    "endpoint of an older build started"
                );
                running.child = Some(child);
                running.started = now;
            }
            Err(e) => {
                tracing::error!(build, error = %e, "cannot start an older build's endpoint");
                running.next_start = now + running.backoff.next();
            }
        }
    }

    /// Whether the kept copy of `build` is there and still that build (checked before
    /// its first start); reported once when not.
    fn usable(&mut self, build: &str, exe: &Path) -> bool {
        let problem = if !exe.exists() {
            "no copy of it is kept there"
        } else if !self.running.contains_key(build) && !still_the_build(exe, build) {
            "the file kept there is no longer that build (written over in place?)"
        } else {
            return true;
        };
        if self.missing.insert(build.to_owned()) {
            tracing::error!(
                build,
                "Restate has invocations pinned to build {build} ({}): {problem}; they wait \
                 until that build's executable is back there",
                exe.display()
            );
        }
        false
    }

    async fn stop(&mut self, build: &str) {
        if let Some(mut running) = self.running.remove(build)
            && let Some(child) = running.child.as_mut()
        {
            terminate(child, STOP_GRACE).await;
        }
    }

    /// Removes a drained deployment from Restate and its build from disk.
    async fn retire(&mut self, deployment: &Deployment, build: &str) {
        self.stop(build).await;
        if let Err(e) = self
            .restate
            .remove_deployment(&deployment.deployment_id)
            .await
        {
            tracing::warn!(build, error = %format!("{e:#}"), "cannot remove a drained deployment yet");
            return;
        }
        let dir = self.config.builds_dir().join(build);
        if !build.is_empty()
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(build, error = %e, "cannot delete {}", dir.display());
        }
        self.missing.remove(build);
        tracing::info!(
            build,
            deployment = deployment.deployment_id,
            "build drained: its deployment is removed and its copy deleted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_executable_written_over_is_no_longer_its_build() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("shopflow");
        std::fs::write(&exe, b"build one").unwrap();
        let id = crate::build::hash_of(&exe).unwrap();
        assert!(still_the_build(&exe, &id), "the file its id was taken from");
        std::fs::write(&exe, b"build two").unwrap();
        assert!(!still_the_build(&exe, &id), "written over in place");
        assert!(
            !still_the_build(&exe, "202612041530"),
            "a name that looks like a hash is checked unless marked"
        );
        std::fs::write(dir.path().join(NAMED), b"").unwrap();
        assert!(
            still_the_build(&exe, "202612041530"),
            "a build marked as named is not checked"
        );
    }
}
