//! One trace from a web request into Restate. With `OTEL_EXPORTER_OTLP_ENDPOINT` set,
//! the web role exports its request spans over OTLP/HTTP and the restate-server it
//! starts exports its invocation spans to the same collector; the durable calls a
//! request makes carry its `traceparent`, so both land in one trace. Each request's
//! log line names that trace. A small OTLP/HTTP receiver here collects the spans.

use crate::common;

use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{Api, AppConfig, TestApp, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// A received span: who sent it and where it sits.
#[derive(Clone, Debug)]
struct Span {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
    /// The trace ids this span links to.
    links: Vec<String>,
}

type Received = Arc<Mutex<Vec<Span>>>;

/// Every span in an OTLP/HTTP protobuf export request.
fn spans_of(body: &[u8]) -> Vec<Span> {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut spans = Vec::new();
    for batch in request.resource_spans {
        let service = batch
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for span in batch.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(Span {
                service: service.clone(),
                name: span.name,
                trace: hex::encode(span.trace_id),
                id: hex::encode(span.span_id),
                parent: hex::encode(span.parent_span_id),
                links: span
                    .links
                    .iter()
                    .map(|l| hex::encode(&l.trace_id))
                    .collect(),
            });
        }
    }
    spans
}

/// A small OTLP/HTTP receiver on its own thread (the tests' runtimes come and go):
/// keeps every span posted to `/v1/traces`.
fn receiver() -> (String, Received) {
    let received = Received::default();
    let keep = |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
        let mut bytes = body.to_vec();
        if headers
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes() == b"gzip")
        {
            bytes.clear();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut bytes)
                .unwrap();
        }
        received.lock().unwrap().extend(spans_of(&bytes));
    };
    let app = axum::Router::new()
        .route("/v1/traces", post(keep))
        .with_state(received.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap()
        })
    });
    (format!("http://{addr}"), received)
}

struct Traced {
    app: TestApp,
    spans: Received,
    log: std::path::PathBuf,
}

/// One app per test binary, exporting to the receiver and logging JSON to a file.
async fn traced() -> &'static Traced {
    static APP: OnceCell<Traced> = OnceCell::const_new();
    APP.get_or_init(|| async {
        let (endpoint, spans) = receiver();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tracing-app");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("shopflow.log");
        let mut config = AppConfig::new(&dir.join("data"));
        config.log_file = Some(log.clone());
        for (key, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "warn,shopflow=info"),
            ("SHOPFLOW_LOG_FORMAT", "json"),
        ] {
            config.extra_env.push((key.into(), value.into()));
        }
        let app = TestApp::start(config).await;
        Traced { app, spans, log }
    })
    .await
}

/// The spans received so far in `trace`.
fn in_trace(spans: &Received, trace: &str) -> Vec<Span> {
    let spans = spans.lock().unwrap();
    spans.iter().filter(|s| s.trace == trace).cloned().collect()
}

#[tokio::test]
async fn a_checkout_is_one_trace_from_the_web_span_into_restates_invocations() {
    let traced = traced().await;
    let api = Api::new(&traced.app.config);
    // The order is paid, so the checkout goes on to start the order's workflow.
    let (awakeable, total) = api.place_order("alice", "trace-1", &[("P001", 1)]).await;
    assert_eq!(api.pay(&awakeable, total).await.0, 200);

    // The web role's server span for the checkout, in a trace of its own making.
    let web = eventually("the checkout's web span", || async {
        let spans = traced.spans.lock().unwrap();
        spans
            .iter()
            .find(|s| s.service == "shopflow" && s.name == "POST /api/checkout")
            .cloned()
    })
    .await;
    assert!(web.parent.is_empty(), "a new trace: {web:?}");

    // The use case's span under the web span, and Restate's spans for the checkout's
    // invocation in the same trace: its ingress span the use case's child, the
    // invocation through to its end. The workflow the
    // checkout then started (a one-way call) runs in a trace of its own that Restate
    // links to this one.
    eventually(
        "Restate's spans in the checkout's trace, and the workflow's link",
        || async {
            let spans = in_trace(&traced.spans, &web.trace);
            let use_case = spans.iter().find(|s| s.name == "place_order")?;
            let ingress = spans
                .iter()
                .find(|s| s.name == "ingress UserSession/{key}/Checkout")?;
            let ended = spans
                .iter()
                .any(|s| s.name == "invocation-end UserSession/{key}/Checkout");
            let received = traced.spans.lock().unwrap();
            let workflow = received.iter().any(|s| {
                s.name == "invocation-start OrderFulfillmentWorkflow/{key}/Run"
                    && s.links.contains(&web.trace)
            });
            let nested = use_case.parent == web.id && ingress.parent == use_case.id;
            (nested && ended && workflow).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_callers_trace_is_joined_and_each_request_logs_one_line_naming_it() {
    let traced = traced().await;
    let api = Api::new(&traced.app.config);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let add = api
        .request(reqwest::Method::POST, "/api/cart/add")
        .bearer_auth(api.token("bob"))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&json!({"product_id": "P001", "quantity": 1}));
    assert_eq!(api.send(add).await.0, 200);

    // The web span is the caller's child, the use case's span the web span's, and
    // Restate's span for the call the use case's.
    eventually(
        "the web span under the caller, and Restate's spans",
        || async {
            let spans = in_trace(&traced.spans, trace);
            let web = spans
                .iter()
                .find(|s| s.service == "shopflow" && s.name == "POST /api/cart/add")?;
            let use_case = spans.iter().find(|s| s.name == "add_item")?;
            let restate = spans
                .iter()
                .any(|s| s.parent == use_case.id && s.service == "Restate");
            (web.parent == caller && use_case.parent == web.id && restate).then_some(())
        },
    )
    .await;

    // One JSON line for the request, naming its trace, route, status and latency.
    let lines = eventually("the request's log line", || async {
        let log = std::fs::read_to_string(&traced.log).unwrap_or_default();
        let lines: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "answered" && l["span"]["trace_id"] == trace)
            .collect();
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 200);
    assert_eq!(line["span"]["method"], "POST");
    assert_eq!(line["span"]["route"], "/api/cart/add");
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );

    // Reads: one answered 200 has its line at DEBUG (not in an `info` log), one refused
    // is at INFO and says what was asked. The second is sent after the first, so once
    // its line is written the first one's would have been.
    for path in ["/api/products/P001", "/api/products/P999"] {
        let status = api.send(api.request(reqwest::Method::GET, path)).await.0;
        assert_eq!(
            status,
            if path.ends_with("P001") { 200 } else { 404 },
            "{path}"
        );
    }
    let refused = eventually("the refused read's line", || async {
        let log = std::fs::read_to_string(&traced.log).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == "answered" && l["path"] == "/api/products/P999")
    })
    .await;
    assert_eq!(
        (&refused["level"], &refused["status"]),
        (&json!("INFO"), &json!(404)),
        "{refused}"
    );
    assert_eq!(refused["method"], "GET", "{refused}");
    let log = std::fs::read_to_string(&traced.log).unwrap_or_default();
    let read = log.lines().find(|l| l.contains("/api/products/P001"));
    assert_eq!(read, None, "a read answered 200 logs no line at `info`");
}
