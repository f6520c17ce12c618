//! What the converter counts for Prometheus (`--metrics-listen`): jobs in
//! and out by input kind and outcome, how long they waited and each stage
//! took, the queue, workers restarted and why, watches and bytes.
//!
//! The families exist whether or not anyone reads them (counting is a few
//! atomic adds); `register` puts them in the registry that is served.
//! Queue figures are this node's view: in cluster mode the queue depth is
//! the shared queue's, as this node last read it.

use docconv::proto::v1::StageTimings;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Input {
    /// The document's kind, by extension (docx, xlsx, …).
    pub input: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Ended {
    pub input: String,
    /// succeeded, failed or cancelled.
    pub outcome: &'static str,
    /// The gRPC code of a failure (e.g. INVALID_ARGUMENT), empty otherwise.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Stage {
    /// load, export or store.
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Restart {
    /// died, timed_out, out_of_memory, cancelled, recycled or bug.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookAttempt {
    /// delivered, retry (will be tried again) or failed (given up).
    pub outcome: &'static str,
}

type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;

/// 5 ms to about 80 s, doubling: a small document's stage to a big
/// workbook's whole conversion.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

#[derive(Clone, Debug)]
pub struct Metrics {
    pub submitted: Family<Input, Counter>,
    pub ended: Family<Ended, Counter>,
    /// From the start on a worker to the end, per input kind, succeeded jobs.
    pub conversion: Histograms<Input>,
    pub stage: Histograms<Stage>,
    pub queue_wait: Histogram,
    pub queue_depth: Gauge,
    pub running: Gauge,
    pub worker_restarts: Family<Restart, Counter>,
    pub watches: Gauge,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    pub webhook_attempts: Family<WebhookAttempt, Counter>,
    pub webhooks_held: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            submitted: Family::default(),
            ended: Family::default(),
            conversion: Family::new_with_constructor(seconds),
            stage: Family::new_with_constructor(seconds),
            queue_wait: seconds(),
            queue_depth: Gauge::default(),
            running: Gauge::default(),
            worker_restarts: Family::default(),
            watches: Gauge::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            webhook_attempts: Family::default(),
            webhooks_held: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Adds every family to `registry`, under `docconv_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("docconv");
        r.register("jobs_submitted", "Jobs accepted, by input kind", self.submitted.clone());
        r.register("jobs_ended", "Jobs ended, by input kind, outcome and failure code", self.ended.clone());
        r.register_with_unit(
            "conversion_duration",
            "Succeeded jobs from their start on a worker to their end, by input kind",
            Unit::Seconds,
            self.conversion.clone(),
        );
        r.register_with_unit(
            "stage_duration",
            "Time per stage of a conversion: load, export, store",
            Unit::Seconds,
            self.stage.clone(),
        );
        r.register_with_unit(
            "queue_wait_duration",
            "Time jobs waited in the queue before a worker took them",
            Unit::Seconds,
            self.queue_wait.clone(),
        );
        r.register("queue_depth", "Jobs waiting for a worker", self.queue_depth.clone());
        r.register("jobs_running", "Jobs this converter is running", self.running.clone());
        r.register("worker_restarts", "Workers replaced, by reason", self.worker_restarts.clone());
        r.register("watches_active", "Open WatchJob streams", self.watches.clone());
        r.register_with_unit("received", "Document bytes received", Unit::Bytes, self.bytes_received.clone());
        r.register_with_unit("sent", "Result bytes sent", Unit::Bytes, self.bytes_sent.clone());
        r.register("webhook_attempts", "Webhook delivery attempts, by outcome", self.webhook_attempts.clone());
        r.register(
            "webhooks_held",
            "Webhook deliveries this converter holds (waiting for a job's end or a retry)",
            self.webhooks_held.clone(),
        );
    }

    /// Records the stages a worker reported.
    pub fn stages(&self, timings: &StageTimings) {
        for (stage, ms) in [("load", timings.load_ms), ("export", timings.export_ms), ("store", timings.store_ms)] {
            if ms > 0 {
                self.stage.get_or_create(&Stage { stage }).observe(ms as f64 / 1000.0);
            }
        }
    }

    pub fn restarted(&self, reason: &'static str) {
        self.worker_restarts.get_or_create(&Restart { reason }).inc();
    }

    pub fn waited(&self, wait: Duration) {
        self.queue_wait.observe(wait.as_secs_f64());
    }
}
