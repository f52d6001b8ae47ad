//! One trace from a web request into Restate: the web role sends `traceparent` on the
//! durable calls a request makes, and the restate-server it starts exports its spans to
//! the OTLP collector named by `OTEL_EXPORTER_OTLP_ENDPOINT` (over OTLP/HTTP).

mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{AppConfig, TestApp, eventually};
use serde_json::json;

type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// A small OTLP/HTTP receiver: keeps every body posted to `/v1/traces`.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let keep = |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
        let gzip = headers
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes() == b"gzip");
        let mut bytes = Vec::new();
        if gzip {
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut bytes)
                .unwrap();
        } else {
            bytes = body.to_vec();
        }
        received.lock().unwrap().push(bytes);
    };
    let app = axum::Router::new()
        .route("/v1/traces", post(keep))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

#[tokio::test]
async fn restates_spans_join_the_requests_trace() {
    let (endpoint, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::new(dir.path());
    config
        .extra_env
        .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint));
    let app = TestApp::start(config).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let add = app
        .api
        .request(reqwest::Method::POST, "/api/cart/add")
        .bearer_auth(app.api.token("alice"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"product_id": "P001", "quantity": 1}));
    assert_eq!(app.api.send(add).await.0, 200);

    // OTLP/HTTP carries the trace id as 16 raw bytes (protobuf) or as hex (JSON).
    let raw = hex::decode(trace).unwrap();
    eventually(
        "Restate's spans for the call, in the request's trace",
        || {
            let received = received.clone();
            let raw = raw.clone();
            async move {
                let received = received.lock().unwrap();
                received
                    .iter()
                    .any(|body| {
                        body.windows(raw.len()).any(|w| w == raw)
                            || body.windows(trace.len()).any(|w| w == trace.as_bytes())
                    })
                    .then_some(())
            }
        },
    )
    .await;
}
