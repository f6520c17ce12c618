//! `--metrics-listen`: the Prometheus endpoint. It has an address of its
//! own, so it can stay inside the operator's network whatever the
//! service's own listeners face, and needs no token.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where the metrics go, if anywhere.
#[derive(clap::Args)]
pub struct Observe {
    /// Address to serve Prometheus metrics on, at /metrics (e.g.
    /// 127.0.0.1:9090) [default: none]
    #[arg(long, env = "DOCCONV_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

impl Observe {
    /// Serves `registry` in the background, if an address was given.
    pub async fn serve(self, registry: Registry) -> Result<(), String> {
        let Some(address) = self.metrics_listen else { return Ok(()) };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address} for metrics: {e}"))?;
        tracing::info!(%address, "metrics at /metrics");
        let registry = Arc::new(registry);
        let app =
            axum::Router::new().route(
                "/metrics",
                get(move || {
                    let registry = registry.clone();
                    async move {
                        ([(header::CONTENT_TYPE, CONTENT_TYPE)], docconv::metrics::render(&registry)).into_response()
                    }
                }),
            );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the metrics endpoint stopped: {e}");
            }
        });
        Ok(())
    }
}
