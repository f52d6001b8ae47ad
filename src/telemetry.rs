//! Traces: every request runs in a trace (the caller's, from its W3C `traceparent`, or
//! a new one), the durable calls it makes carry that trace to Restate, and with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set,
//! ShopFlow's own spans are exported over OTLP/HTTP (protobuf) under
//! `OTEL_SERVICE_NAME` (default `shopflow`). The OpenTelemetry crates read the standard
//! variables (headers, timeout, batch delay, sampler); nothing is exported otherwise.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider};
use opentelemetry::{Context, context::FutureExt};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The OTLP exporter of ShopFlow's spans, when one is configured.
pub struct Exporter(SdkTracerProvider);

impl Exporter {
    /// The exporter the standard `OTEL_*` variables describe, or `None` when no OTLP
    /// endpoint is set.
    pub fn from_env() -> anyhow::Result<Option<Exporter>> {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Ok(None);
        }
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "shopflow".into());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(name)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource)
            .build();
        Ok(Some(Exporter(provider)))
    }

    /// The layer that hands ShopFlow's spans (level INFO and up) to the exporter; like
    /// the log lines, a handler's spans once, not again when Restate replays it.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let ours = Targets::new().with_target("shopflow", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(self.0.tracer("shopflow"))
            .with_filter(restate_sdk::filter::ReplayAwareFilter)
            .with_filter(ours)
    }

    /// Sends what is still buffered; call once, before the process exits.
    pub fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("shopflow: exporting the last spans: {e}");
        }
    }
}

/// Puts the request's `span` in a trace: the caller's when `headers` carry a valid
/// `traceparent`, else a new one. Exported spans get their own span id under that
/// parent; without an exporter, a trace is started only when the span is logged.
/// Returns the trace to run the request in (see [`in_trace`]), if any. An exported
/// span is a server span named `name()` (its `otel.name` and `otel.kind` fields, declared
/// empty by the caller), e.g. `POST /api/checkout`.
pub fn join(
    span: &tracing::Span,
    headers: &axum::http::HeaderMap,
    name: impl FnOnce() -> String,
) -> Option<Context> {
    // Nothing logs or exports this span, and no caller's trace is to be carried on.
    if span.is_disabled() && !headers.contains_key("traceparent") {
        return None;
    }
    let parent = if well_formed(headers) {
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    } else {
        Context::new()
    };
    if span.set_parent(parent.clone()).is_ok() {
        span.record("otel.name", name());
        span.record("otel.kind", "server");
        let own = span.context();
        if own.span().span_context().is_valid() {
            return Some(own);
        }
    }
    if parent.span().span_context().is_valid() {
        return Some(parent);
    }
    (!span.is_disabled()).then(new_trace)
}

/// Whether a `traceparent` has ids of the lengths W3C requires (32 and 16 hex digits):
/// the propagator checks the rest, but pads a short trace id instead of refusing it.
fn well_formed(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get("traceparent") else {
        return true;
    };
    let mut parts = value.as_bytes().split(|b| *b == b'-').skip(1);
    parts.next().is_some_and(|t| t.len() == 32) && parts.next().is_some_and(|s| s.len() == 16)
}

/// A new sampled trace with a random id (for requests that bring none), from the
/// SDK's thread-local generator: no system call per request.
fn new_trace() -> Context {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    let ids = RandomIdGenerator::default();
    let span = SpanContext::new(
        ids.new_trace_id(),
        ids.new_span_id(),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(span)
}

/// The trace id of `trace`, as 32 lowercase hex digits (what log lines show).
pub fn trace_id(trace: &Context) -> String {
    trace.span().span_context().trace_id().to_string()
}

/// Runs `work` in `trace`: the durable calls it makes name the trace (see [`inject`]).
pub async fn in_trace<F: std::future::Future>(trace: Context, work: F) -> F::Output {
    work.with_context(trace).await
}

/// Adds `traceparent` for the current trace to an outgoing call's `headers`: the span
/// now entered when spans are exported, else the trace the task runs in. Nothing when
/// there is none.
pub fn inject(headers: &mut axum::http::HeaderMap) {
    let current = Context::current();
    if current.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&current, &mut HeaderInjector(headers));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn trace_of(traceparent: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        // A disabled span: only the caller's trace can be joined.
        join(&tracing::Span::none(), &headers, String::new).map(|t| trace_id(&t))
    }

    #[test]
    fn a_valid_traceparent_gives_its_trace() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let given = trace_of(&format!("00-{id}-00f067aa0ba902b7-01"));
        assert_eq!(given.as_deref(), Some(id));
    }

    #[test]
    fn anything_else_is_no_trace() {
        let zeros = "0".repeat(32);
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            &format!("00-{zeros}-00f067aa0ba902b7-01"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_of(bad), None, "{bad:?}");
        }
        assert!(join(&tracing::Span::none(), &HeaderMap::new(), String::new).is_none());
    }

    #[tokio::test]
    async fn calls_made_in_a_trace_carry_it() {
        let trace = new_trace();
        let id = trace_id(&trace);
        assert!(id.len() == 32 && id != trace_id(&new_trace()));
        let mut headers = HeaderMap::new();
        in_trace(trace, async { inject(&mut headers) }).await;
        let sent = headers["traceparent"].to_str().unwrap();
        assert!(
            sent.starts_with(&format!("00-{id}-")) && sent.ends_with("-01"),
            "{sent}"
        );
        let mut outside = HeaderMap::new();
        inject(&mut outside);
        assert!(outside.is_empty());
    }
}
