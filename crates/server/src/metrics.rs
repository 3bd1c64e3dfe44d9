//! Prometheus metrics: HTTP request counts and latencies by route, open and
//! refused connections. Labels come only from bounded sets (known methods,
//! matched route templates, status codes), so no client can grow them.
//! `/metrics` is for operators: a bearer token (`HIRECJ_METRICS_TOKEN`), or
//! a direct loopback client when no token is set.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: String,
}

/// The method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

type HistogramFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// The app's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    connections_open: Gauge,
    connections_refused: Counter,
}

/// Counts a connection as open until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hirecj");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests handled", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to produce an HTTP response",
            latency.clone(),
        );
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        registry.register(
            "connections_open",
            "TCP connections open (WebSockets included)",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections answered 503 at the connection limit",
            connections_refused.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            connections_open,
            connections_refused,
        }
    }

    /// A connection was accepted; it counts as open until the guard drops.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections_open.inc();
        OpenConnection(self.connections_open.clone())
    }

    /// A connection was refused at the limit.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("could not encode metrics");
        }
        out
    }
}

/// Middleware recording every request.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&LatencyLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`: for operators only (see the module docs); 404 to
/// anyone else, so the endpoint is not advertised.
pub async fn endpoint(
    State(state): State<crate::app::AppState>,
    address: crate::limits::ClientAddress,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let allowed = match &state.settings.metrics_token {
        Some(token) => {
            use subtle::ConstantTimeEq as _;
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
        }
        None => address.is_direct_loopback(&headers),
    };
    if !allowed {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
