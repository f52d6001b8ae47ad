//! The endpoint's HTTP/2 server. Restate calls each build of ShopFlow at its own URI,
//! `{services url}/{build id}` (the SDK serves `/discover` and `/invoke/…` under any
//! prefix). A request for this build reaches its handlers; one for an older build is
//! passed on to that build's own endpoint, a child of the supervisor listening on
//! `<data dir>/builds/<id>/endpoint.sock`, so an invocation pinned to an old
//! deployment runs on the old build's code. A path without a build (a deployment
//! registered before builds had their own URIs) is served by this build.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use restate_sdk::endpoint::Endpoint;
use restate_sdk::hyper::HyperEndpoint;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Where the endpoint listens: the TCP address Restate calls, or (an older build run
/// by the supervisor) the socket the current build's endpoint passes its calls to.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// The socket an older build's endpoint listens on.
pub fn build_socket(builds_dir: &Path, build: &str) -> PathBuf {
    builds_dir.join(build).join("endpoint.sock")
}

/// Which code answers a request path.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Here,
    Build(PathBuf),
    Gone(String),
}

struct Routes {
    own: String,
    builds_dir: PathBuf,
}

impl Routes {
    fn target(&self, path: &str) -> Target {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        // The SDK's own paths, and the services' names, start with a capital or are
        // these words; a build id never is one of them.
        if first == self.own || matches!(first, "" | "discover" | "health" | "invoke") {
            return Target::Here;
        }
        if !crate::build::is_id(first) {
            return Target::Here;
        }
        let socket = build_socket(&self.builds_dir, first);
        if socket.exists() {
            Target::Build(socket)
        } else {
            Target::Gone(first.to_owned())
        }
    }
}

/// Serves the endpoint on `listener` until `shutdown` completes, passing requests for
/// other builds to theirs. `builds_dir` is where the supervisor keeps older builds.
pub async fn serve(
    endpoint: Endpoint,
    listener: Listener,
    builds_dir: PathBuf,
    shutdown: impl Future,
) {
    let routes = Arc::new(Routes {
        own: crate::build::id().to_owned(),
        builds_dir,
    });
    let endpoint = HyperEndpoint::new(endpoint);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok(io) => {
                    let (endpoint, routes) = (endpoint.clone(), routes.clone());
                    let service = hyper::service::service_fn(move |req| {
                        route(req, endpoint.clone(), routes.clone())
                    });
                    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "endpoint connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("endpoint connections still open after 10 s; closing them");
        }
    }
}

/// A connection, TCP or Unix, as hyper's I/O.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn accept(listener: &Listener) -> std::io::Result<TokioIo<Box<dyn Io>>> {
    let io: Box<dyn Io> = match listener {
        Listener::Tcp(l) => Box::new(l.accept().await?.0),
        Listener::Unix(l) => Box::new(l.accept().await?.0),
    };
    Ok(TokioIo::new(io))
}

async fn route(
    req: Request<Incoming>,
    endpoint: HyperEndpoint,
    routes: Arc<Routes>,
) -> Result<Response<Body>, Infallible> {
    Ok(match routes.target(req.uri().path()) {
        Target::Here => {
            let Ok(resp) = endpoint.call(req).await;
            resp.map(|b| b.map_err(Into::into).boxed_unsync())
        }
        Target::Build(socket) => match pass_on(&socket, req).await {
            Ok(resp) => resp,
            Err(e) => plain(
                StatusCode::BAD_GATEWAY,
                format!("the endpoint of that build does not answer: {e}"),
            ),
        },
        Target::Gone(build) => plain(
            StatusCode::NOT_FOUND,
            format!("build {build} is not kept here"),
        ),
    })
}

/// Passes a request on to an older build's endpoint over its socket.
async fn pass_on(socket: &Path, req: Request<Incoming>) -> Result<Response<Body>, BoxError> {
    let stream = UnixStream::connect(socket).await?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection to an older build ended with an error");
        }
    });
    let resp = sender.send_request(req).await?;
    Ok(resp.map(|b| b.map_err(Into::into).boxed_unsync()))
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(text))
            .map_err(Into::into)
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_to_this_build_an_older_one_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let routes = Routes {
            own: "aaaaaaaaaaaa".into(),
            builds_dir: dir.path().to_owned(),
        };
        std::fs::create_dir(dir.path().join("bbbbbbbbbbbb")).unwrap();
        std::fs::write(build_socket(dir.path(), "bbbbbbbbbbbb"), b"").unwrap();
        let cases = [
            ("/aaaaaaaaaaaa/invoke/UserSession/Checkout", Target::Here),
            ("/discover", Target::Here),
            ("/invoke/UserSession/Checkout", Target::Here),
            (
                "/bbbbbbbbbbbb/discover",
                Target::Build(build_socket(dir.path(), "bbbbbbbbbbbb")),
            ),
            (
                "/cccccccccccc/discover",
                Target::Gone("cccccccccccc".into()),
            ),
            ("/../discover", Target::Here),
        ];
        for (path, want) in cases {
            assert_eq!(routes.target(path), want, "path {path}");
        }
    }
}
