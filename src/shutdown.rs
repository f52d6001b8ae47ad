//! The process-wide shutdown request: SIGINT or SIGTERM, waited on by every task.

use tokio::sync::watch;

/// Completes once SIGINT or SIGTERM arrives; cheap to clone and to wait on repeatedly.
#[derive(Clone, Debug)]
pub struct Shutdown(pub(crate) watch::Receiver<bool>);

impl Shutdown {
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = tx.send(true);
        });
        Ok(Shutdown(rx))
    }

    /// True when a shutdown is requested now or within the next half second.
    pub async fn requested_soon(&self) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(500), self.wait())
            .await
            .is_ok()
    }

    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
