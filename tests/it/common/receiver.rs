//! A webhook receiver for the tests: a real HTTP server on this machine that records
//! every request it gets and can refuse them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub accepted: bool,
}

/// A webhook receiver on a free local port: answers 503 while down (or flapping), 204
/// while up.
#[derive(Clone)]
pub struct Receiver {
    pub up: Arc<AtomicBool>,
    /// Every n-th request is refused even while up (0: none): a receiver that flaps.
    pub refuse_every: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Received>>>,
    addr: SocketAddr,
}

impl Receiver {
    pub async fn start(up: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            up: Arc::new(AtomicBool::new(up)),
            refuse_every: Arc::default(),
            log: Arc::default(),
            addr: listener.local_addr().unwrap(),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        let value = headers.get(name).and_then(|v| v.to_str().ok());
                        value.unwrap_or_default().to_owned()
                    };
                    let mut log = state.log.lock().unwrap();
                    let every = state.refuse_every.load(Ordering::SeqCst);
                    let flapped = every > 0 && (log.len() + 1).is_multiple_of(every);
                    let accepted = state.up.load(Ordering::SeqCst) && !flapped;
                    log.push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        accepted,
                    });
                    if accepted {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}
