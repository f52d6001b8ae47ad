//! The operator's line to a running supervisor: a Unix socket in the data dir
//! (`control.sock`, reachable only by whoever may read the data dir). `shopflow backup`
//! asks through it for restate-server to stop while Restate's data is copied, and for
//! it to start again; a connection that ends while Restate is stopped starts it again,
//! and so does the end of ten minutes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The socket of the supervisor of `data_dir`.
pub fn socket(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

const PAUSE: &str = "pause-restate";
/// The longest restate-server stays stopped for one request.
const PAUSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);
const RESUME: &str = "resume-restate";

/// What the supervisor is asked to do; it answers on the channel.
pub enum Request {
    PauseRestate(oneshot::Sender<Result<(), String>>),
    ResumeRestate(oneshot::Sender<Result<(), String>>),
}

/// Listens on the data dir's control socket, passing requests to the supervisor.
pub fn listen(data_dir: &Path, requests: mpsc::Sender<Request>) -> anyhow::Result<()> {
    let path = socket(data_dir);
    // One left by a supervisor that was killed.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, requests.clone()));
        }
    });
    Ok(())
}

/// One operator's connection: `pause-restate`, then `resume-restate` (or the end of
/// the connection); each answered with `ok` or `error: …`.
async fn serve(stream: UnixStream, requests: mpsc::Sender<Request>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut paused = false;
    loop {
        // A pause ends at the latest after PAUSE_LIMIT, whatever the other end does.
        let next = if paused {
            match tokio::time::timeout(PAUSE_LIMIT, lines.next_line()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!("a backup kept restate-server stopped too long; starting it");
                    break;
                }
            }
        } else {
            lines.next_line().await
        };
        let Ok(Some(line)) = next else { break };
        let (reply, answer) = oneshot::channel();
        let request = match line.trim() {
            PAUSE if !paused => Request::PauseRestate(reply),
            RESUME if paused => Request::ResumeRestate(reply),
            other => {
                let _ = write
                    .write_all(format!("error: not now: {other:?}\n").as_bytes())
                    .await;
                continue;
            }
        };
        let outcome = ask(&requests, request, answer).await;
        if outcome.is_ok() {
            paused = !paused;
        }
        let text = match outcome {
            Ok(()) => "ok\n".to_owned(),
            Err(e) => format!("error: {e}\n"),
        };
        if write.write_all(text.as_bytes()).await.is_err() {
            break;
        }
    }
    if paused {
        let (reply, answer) = oneshot::channel();
        let _ = ask(&requests, Request::ResumeRestate(reply), answer).await;
    }
}

async fn ask(
    requests: &mpsc::Sender<Request>,
    request: Request,
    answer: oneshot::Receiver<Result<(), String>>,
) -> Result<(), String> {
    requests
        .send(request)
        .await
        .map_err(|_| "the supervisor is stopping".to_owned())?;
    answer
        .await
        .unwrap_or_else(|_| Err("the supervisor is stopping".to_owned()))
}

/// restate-server stopped by the supervisor of `data_dir` for as long as this lives
/// (it starts again when this is resumed or dropped).
pub struct RestatePause {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl RestatePause {
    /// Asks the running supervisor to stop restate-server; `None` when no supervisor
    /// runs on `data_dir`.
    pub async fn begin(data_dir: &Path) -> anyhow::Result<Option<RestatePause>> {
        let stream = match UnixStream::connect(socket(data_dir)).await {
            Ok(stream) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e).context("cannot reach the running ShopFlow"),
        };
        let (read, write) = stream.into_split();
        let mut pause = RestatePause {
            lines: BufReader::new(read).lines(),
            write,
        };
        pause.say(PAUSE).await?;
        Ok(Some(pause))
    }

    /// Starts restate-server again and waits until it is healthy.
    pub async fn resume(mut self) -> anyhow::Result<()> {
        self.say(RESUME).await
    }

    async fn say(&mut self, what: &str) -> anyhow::Result<()> {
        self.write.write_all(format!("{what}\n").as_bytes()).await?;
        match self.lines.next_line().await? {
            Some(line) if line == "ok" => Ok(()),
            Some(line) => bail!("ShopFlow answered {what}: {line}"),
            None => bail!("ShopFlow ended the connection at {what}"),
        }
    }
}
