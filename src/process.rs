//! Child processes that never outlive their parent, and the handle the crash drill
//! uses on the supervised service endpoint.
//!
//! Linux's parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that forked
//! the child exits, not the process. So children are forked from one dedicated thread
//! that lives as long as its `Spawner`: a child started from a short-lived (e.g. pooled
//! blocking) thread would be killed as soon as that thread retires.

use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::watch;

type Job = Box<dyn FnOnce() + Send>;

/// Owns the thread children are forked from. Dropping it and its clones (or the whole process dying,
/// SIGKILL included) sends SIGKILL to every child started through it.
#[derive(Clone)]
pub struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the spawner thread. Inside a tokio runtime the thread enters it, so
    /// `tokio::process::Command`s can be spawned there too.
    pub fn new() -> io::Result<Spawner> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let runtime = tokio::runtime::Handle::try_current().ok();
        thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                let _guard = runtime.as_ref().map(|rt| rt.enter());
                for job in rx {
                    job();
                }
            })?;
        Ok(Spawner { jobs })
    }

    /// Spawns `command` from the spawner thread, set up to die with this process.
    pub fn spawn_std(&self, mut command: Command) -> io::Result<std::process::Child> {
        die_with_parent(&mut command);
        self.on_thread(move || command.spawn())
    }

    /// Like `spawn_std`, for a child whose exit is awaited on the tokio runtime.
    pub fn spawn_tokio(&self, mut command: Command) -> io::Result<tokio::process::Child> {
        die_with_parent(&mut command);
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        self.on_thread(move || command.spawn())
    }

    fn on_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<R> + Send + 'static,
    ) -> io::Result<R> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the spawner thread has stopped"))?
    }
}

/// Arranges for the child to get SIGKILL when the forking thread (see module docs) dies.
/// Linux only: elsewhere (macOS) there is no parent-death signal, so a child outlives a
/// supervisor killed with SIGKILL (an orderly stop still ends it).
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Arranges for the child to get SIGKILL when the forking thread (see module docs) dies.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

/// Asks a child to stop with SIGTERM and waits up to `grace`; then SIGKILLs it.
pub async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: plain kill(2) on a pid we own and have not reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// What the web role may do to a supervised child (the service endpoint, or
/// restate-server): the admin's crash drill kills it, then watches the supervisor start
/// the next one and waits until it accepts connections at `addr`.
#[derive(Clone, Debug)]
pub struct ChildControl {
    addr: SocketAddr,
    /// The running endpoint's pid (0 while none runs) and how many have been started.
    current: watch::Sender<(u32, u64)>,
}

impl ChildControl {
    pub fn new(addr: SocketAddr) -> Self {
        ChildControl {
            addr,
            current: watch::channel((0, 0)).0,
        }
    }

    /// The supervisor started the endpoint with this pid.
    pub fn started(&self, pid: Option<u32>) {
        self.current
            .send_modify(|(p, generation)| (*p, *generation) = (pid.unwrap_or(0), *generation + 1));
    }

    /// Kills the endpoint with SIGKILL, as a crash would. Returns its pid.
    pub fn crash(&self) -> std::io::Result<u32> {
        let (pid, _) = *self.current.borrow();
        if pid == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "it is not running right now (being restarted)",
            ));
        }
        // SAFETY: kill(2) with a pid we started and still supervise.
        if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(pid)
    }

    /// Waits until an endpoint newer than `after_pid` runs and accepts connections;
    /// returns its pid.
    pub async fn wait_restarted(&self, after_pid: u32, deadline: Duration) -> Option<u32> {
        let mut rx = self.current.subscribe();
        let started = Instant::now();
        let pid = tokio::time::timeout(deadline, async {
            let next = rx.wait_for(|(pid, _)| *pid != 0 && *pid != after_pid).await;
            next.ok().map(|v| v.0)
        })
        .await
        .ok()
        .flatten()?;
        while started.elapsed() < deadline {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Some(pid);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_is_not_running_is_never_killed() {
        let control = ChildControl::new("127.0.0.1:1".parse().unwrap());
        assert!(control.crash().is_err(), "nothing started yet");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        control.started(Some(sleeper.id()));
        // It exited; while the next one starts, its pid may be anyone's.
        control.started(None);
        assert_eq!(control.crash().unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(
            sleeper.try_wait().unwrap().is_none(),
            "the old pid was not killed"
        );
        control.started(Some(sleeper.id()));
        assert_eq!(control.crash().unwrap(), sleeper.id());
        assert!(
            sleeper.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
    }
}
