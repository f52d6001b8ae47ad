//! `/metrics` in the Prometheus (OpenMetrics) text format: the web role's requests and
//! their latency per route and its open live streams, counted as they happen; and, read
//! from the order read model when scraped, orders per status, payment requests per
//! state, compensations per step and saga runs. Restate's own metrics are on its node
//! port (`:5122/metrics`).
//!
//! Labels come only from bounded sets (the router's route patterns, known methods,
//! status codes, the domain's states), so no request can grow a new series.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use crate::domain::{OrderStatus, PaymentState};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// A route pattern as a label: the router's own string (shared, not copied), or
/// `unmatched` for the fallback.
#[derive(Clone, Debug)]
pub enum Route {
    Matched(MatchedPath),
    Unmatched,
}

impl Route {
    /// The pattern the request matched (never its raw path).
    pub fn of(req: &Request) -> Route {
        req.extensions()
            .get::<MatchedPath>()
            .map_or(Route::Unmatched, |path| Route::Matched(path.clone()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The registry and the series the web role keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    open_streams: Gauge,
    orders: Family<StatusLabel, Gauge>,
    payments: Family<StateLabel, Gauge>,
    compensations: Family<StepLabel, Gauge>,
    saga_runs: Gauge,
    /// One scrape at a time reads the read model, sets its gauges and encodes them:
    /// `/metrics` is public, and a flood of scrapes must not become a flood of
    /// concurrent table scans.
    scraping: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shopflow");
        let requests = Family::default();
        // 0.5 ms … ~7.6 s
        let latency: Latency =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.5, 12)));
        let open_streams = Gauge::default();
        let orders = Family::default();
        let payments = Family::default();
        let compensations = Family::default();
        let saga_runs = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time until the response's head, by method and route pattern",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "open_streams",
            "Live SSE streams open now",
            open_streams.clone(),
        );
        registry.register(
            "orders",
            "Orders in each status (read model)",
            orders.clone(),
        );
        registry.register(
            "payment_requests",
            "Payment requests in each state: the gateway's outcomes (read model)",
            payments.clone(),
        );
        registry.register(
            "compensations",
            "Saga compensations that ran, by step (read model)",
            compensations.clone(),
        );
        registry.register(
            "saga_runs",
            "Orders whose saga ran compensations (read model)",
            saga_runs.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            open_streams,
            orders,
            payments,
            compensations,
            saga_runs,
            scraping: tokio::sync::Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Counts and times one answered request.
    pub fn observe(&self, method: &'static str, route: Route, status: StatusCode, took: Duration) {
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
    }
}

/// A method as a label: the standard ones by name, anything else as `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Sets a family to exactly these values: every known label (0 when absent) and
/// whatever else the read model counts.
fn set_all<
    L: Clone + std::hash::Hash + Eq + std::fmt::Debug + prometheus_client::encoding::EncodeLabelSet,
>(
    family: &Family<L, Gauge>,
    known: impl IntoIterator<Item = L>,
    counted: impl IntoIterator<Item = (L, i64)>,
) {
    family.clear();
    for label in known {
        family.get_or_create(&label).set(0);
    }
    for (label, n) in counted {
        family.get_or_create(&label).set(n);
    }
}

/// Prometheus metrics, OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200,
    content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = &state.metrics;
    let _one = m.scraping.lock().await;
    let totals = crate::app::totals(&state).await?;
    m.open_streams.set(state.limits.open_streams() as i64);
    let status = |s: &str| StatusLabel {
        status: s.to_owned(),
    };
    set_all(
        &m.orders,
        OrderStatus::ALL.iter().map(|s| status(s.as_str())),
        totals.orders.iter().map(|(s, n)| (status(s.as_str()), *n)),
    );
    let state_label = |s: &str| StateLabel {
        state: s.to_owned(),
    };
    set_all(
        &m.payments,
        PaymentState::ALL.iter().map(|s| state_label(s.as_str())),
        totals.payments.iter().map(|(s, n)| (state_label(s), *n)),
    );
    set_all(
        &m.compensations,
        [],
        totals
            .compensations
            .into_iter()
            .map(|(step, n)| (StepLabel { step }, n)),
    );
    m.saga_runs.set(totals.saga_runs);
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &m.registry)
        .map_err(ApiError::internal)?;
    let kind = HeaderValue::from_static(CONTENT_TYPE);
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_name_a_series() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn requests_are_counted_and_timed_by_route() {
        let m = Metrics::default();
        let ok = StatusCode::OK;
        m.observe("GET", Route::Unmatched, ok, Duration::from_millis(3));
        m.observe("GET", Route::Unmatched, ok, Duration::from_millis(4));
        m.observe(
            "GET",
            Route::Unmatched,
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        let count =
            r#"shopflow_http_requests_total{method="GET",route="unmatched",status="200"} 2"#;
        assert!(text.contains(count), "{text}");
        let timed =
            r#"shopflow_http_request_duration_seconds_count{method="GET",route="unmatched"} 3"#;
        assert!(text.contains(timed), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
