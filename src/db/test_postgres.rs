//! A real PostgreSQL server for tests: Debian's `postgresql` package (`make deps`
//! installs it), a new cluster in a temp dir on a free port, one per test binary, a new
//! database per caller. The server dies with the test binary. Compiled into the
//! library's unit tests and, by path, into the integration tests' harness.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running server.
pub struct Postgres {
    port: u16,
    _dir: tempfile::TempDir,
}

/// Whether tests run against PostgreSQL (`SHOPFLOW_TEST_DATABASE=postgres`) instead of
/// SQLite files.
pub fn wanted() -> bool {
    std::env::var("SHOPFLOW_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The directory of the server programs: `SHOPFLOW_TEST_PG_BIN`, or the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOPFLOW_TEST_PG_BIN") {
        return dir.into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs (`make deps` installs Debian's postgresql)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

/// The user the server runs as: PostgreSQL refuses root, so as root the package's
/// `postgres` user; otherwise the caller.
fn unprivileged() -> Option<(libc::uid_t, libc::gid_t)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let user = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(
        !user.is_null(),
        "the postgres user (Debian's postgresql package)"
    );
    Some(unsafe { ((*user).pw_uid, (*user).pw_gid) })
}

/// A new cluster in `data`, its superuser `shopflow` trusted on loopback.
fn initdb(bin: &Path, data: &Path) {
    let out = command(&bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "shopflow",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits up to a minute for the server on `port` to take connections.
fn wait_ready(bin: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = || {
        Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    };
    while !ready() {
        assert!(Instant::now() < deadline, "postgres did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `program` as that user, killed when the process that spawns it exits.
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    let user = unprivileged();
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After the user change, which clears it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// A command to start, and where to say it has started.
type Start = (Command, std::sync::mpsc::Sender<std::io::Result<u32>>);

/// Spawns from a thread that lives as long as the process (and keeps the child): the
/// parent-death signal fires when the spawning thread ends, not only the process.
fn spawn_for_good(cmd: Command) -> std::io::Result<u32> {
    static SPAWNER: OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Start>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Start>();
        std::thread::spawn(move || {
            let mut children: Vec<Child> = Vec::new();
            for (mut cmd, reply) in rx {
                let started = cmd.spawn().map(|child| {
                    let pid = child.id();
                    children.push(child);
                    pid
                });
                let _ = reply.send(started);
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    spawner.lock().unwrap().send((cmd, tx)).unwrap();
    rx.recv().unwrap()
}

/// Removes the clusters earlier test binaries left behind (the server is a static,
/// never dropped, so its temp dir outlives the binary): those older than ten minutes
/// whose server is gone. Without this every PostgreSQL pass left 400 MB in the temp
/// dir.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("shopflow-pg")
        {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        let pid = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<libc::pid_t>().ok());
        // Signal 0 only asks whether the process exists (EPERM: it does, another user's).
        let alive = pid.is_some_and(|pid| {
            let answer = unsafe { libc::kill(pid, 0) };
            answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        });
        if old && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Postgres {
    /// The server of this test binary, started on first use.
    pub fn shared() -> &'static Postgres {
        static SERVER: OnceLock<Postgres> = OnceLock::new();
        SERVER.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        sweep_stale();
        let dir = tempfile::Builder::new()
            .prefix("shopflow-pg")
            .tempdir()
            .unwrap();
        if let Some((uid, gid)) = unprivileged() {
            let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(path.as_ptr(), uid, gid) }, 0);
        }
        let data = dir.path().join("data");
        let bin = bin_dir();
        initdb(&bin, &data);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut postgres = command(&bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            // Test data need not survive a power cut (the apps' crashes, which tests
            // cause, do not lose committed data either way).
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_for_good(postgres).expect("start postgres");
        wait_ready(&bin, port);
        Postgres { port, _dir: dir }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://shopflow@127.0.0.1:{}/{name}", self.port)
    }

    /// Database `name`, created if it does not exist yet; its URL.
    pub fn database(&self, name: &str) -> String {
        let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{name}'");
        if self
            .client("psql", &["-d", "postgres", "-tAc", &exists])
            .is_empty()
        {
            self.client("createdb", &[name]);
        }
        self.url(name)
    }

    /// What client `program` (psql, createdb) prints when run with `args` against this
    /// server as user shopflow; panics with its error when it fails.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let port = self.port.to_string();
        let out = Command::new(bin_dir().join(program))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "shopflow"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(out.stdout.trim_ascii()).into_owned()
    }

    /// A new database with a name no other caller in this process gets; its URL.
    pub fn fresh_database(&self) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        self.database(&format!("t{}_{n}", std::process::id()))
    }
}
