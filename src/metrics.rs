//! What the converter and the gateway share to count for Prometheus.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counts one more of something for as long as it lives (a watch, a
/// running job, an open WebSocket): the gauge goes back down however it
/// ends, a dropped task included.
pub struct Active(Gauge);

impl Active {
    pub fn of(gauge: &Gauge) -> Active {
        gauge.inc();
        Active(gauge.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The text a Prometheus scrape gets, in its exposition format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}
