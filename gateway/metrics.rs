//! What the gateway counts for Prometheus (`--metrics-listen`): requests
//! by route and status class, open WebSockets, and bytes uploaded and
//! downloaded through it.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Handled {
    /// The route's pattern (`/jobs/{id}`), never the path itself: one
    /// series per route, not per job.
    pub route: String,
    /// 2xx, 3xx, 4xx or 5xx.
    pub status: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub requests: Family<Handled, Counter>,
    pub websockets: Gauge,
    pub received: Counter,
    pub sent: Counter,
}

impl Metrics {
    /// Adds every family to `registry`, under `docconv_gateway_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("docconv_gateway");
        r.register("requests", "HTTP requests answered, by route and status class", self.requests.clone());
        r.register("websockets_active", "Open WebSockets of status pages", self.websockets.clone());
        r.register_with_unit("received", "Document bytes uploaded", Unit::Bytes, self.received.clone());
        r.register_with_unit("sent", "Result bytes downloaded", Unit::Bytes, self.sent.clone());
    }
}

/// Counts each request by its route once answered.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics.requests.get_or_create(&Handled { route, status }).inc();
    response
}
