//! Child processes that never outlive their parent.
//!
//! Linux's parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that forked
//! the child exits, not the process. So children are forked from one dedicated thread
//! that lives as long as its `Spawner`: a child started from a short-lived (e.g. pooled
//! blocking) thread would be killed as soon as that thread retires.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Owns the thread children are forked from. Dropping it (or the whole process dying,
/// SIGKILL included) sends SIGKILL to every child started through it.
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
fn die_with_parent(command: &mut Command) {
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
