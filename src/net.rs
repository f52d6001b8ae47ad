//! Sockets: listeners with TCP_NODELAY and early, readable port-in-use errors.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

/// Binds a listener with SO_REUSEADDR (a restarted process can take its port back at
/// once) and TCP_NODELAY (inherited by accepted sockets: no 40 ms delayed-ACK stalls).
pub fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("cannot create a socket")?;
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket
        .bind(addr)
        .and_then(|()| socket.listen(1024))
        .map_err(|e| port_error(addr, what, e))
}

/// Fails with a one-line reason when `addr` cannot be bound right now.
pub fn ensure_free(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| port_error(addr, what, e))
}

/// Waits (up to `deadline`) until `addr` can be bound: a child killed a moment ago
/// may still hold its port while it dies.
pub async fn wait_free(
    addr: SocketAddr,
    what: &str,
    deadline: std::time::Duration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match ensure_free(addr, what) {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

fn port_error(addr: SocketAddr, what: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "port {addr} ({what}) is already in use; stop what holds it or choose another address"
        )
    } else {
        anyhow::anyhow!("cannot listen on {addr} ({what}): {e}")
    }
}
