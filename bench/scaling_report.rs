//! Scenario 7's figures: per level, documents per second, latency
//! percentiles, CPU and memory per document; as a table and a chart.

use super::chart::{self, Panel, Reference, Series};
use super::peers::BatchTimes;
use super::scaling::Plan;
use super::stats::Samples;
use super::system::TreeMemory;
use std::fmt::Write as _;
use std::time::Duration;

/// One service at one level.
pub struct Row {
    pub peer: String,
    pub clients: usize,
    /// Measured one document at a time, not with concurrent clients.
    pub sequential: bool,
    pub measured: Measured,
}

/// What one batch cost.
pub struct Measured {
    pub documents: usize,
    pub wall: Duration,
    /// Each document's latency, in ms.
    pub latencies: Samples,
    /// User and system CPU time of the service's process trees.
    pub cpu: Duration,
    /// Proportional memory of those trees over the batch, when sampled.
    pub memory: Option<TreeMemory>,
}

impl Measured {
    pub fn new(times: BatchTimes, cpu: Duration, memory: Option<TreeMemory>) -> Measured {
        let mut latencies = Samples::default();
        for latency in &times.latencies {
            latencies.push_duration(*latency);
        }
        Measured { documents: times.latencies.len(), wall: times.wall, latencies, cpu, memory }
    }

    pub fn per_second(&self) -> f64 {
        self.documents as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn cpu_ms_per_document(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / self.documents.max(1) as f64
    }

    /// Documents per CPU-second: what one fully busy core gets through.
    pub fn per_core_second(&self) -> Option<f64> {
        let cpu = self.cpu.as_secs_f64();
        (cpu > 0.0).then(|| self.documents as f64 / cpu)
    }

    /// Memory held over the batch's time, shared out over its documents
    /// (MiB·s): a document's share of the memory as it is used.
    pub fn memory_seconds_per_document(&self) -> Option<f64> {
        self.memory.map(|m| m.mean_kib / 1024.0 * self.wall.as_secs_f64() / self.documents.max(1) as f64)
    }
}

/// The section's markdown and the chart.
pub fn render(plan: &Plan, rows: &[Row]) -> (String, String) {
    let mut table = String::from(
        "| service | clients | docs/s | p50 ms | p95 ms | CPU ms/doc | cores busy | docs per CPU-s | mean PSS MiB | peak PSS MiB | MiB·s/doc |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let cell = |v: Option<f64>, decimals: usize| v.map_or("–".into(), |v| format!("{v:.decimals$}"));
    for row in rows {
        let m = &row.measured;
        let clients = if row.sequential { "1 (sequential)".into() } else { row.clients.to_string() };
        let _ = writeln!(
            table,
            "| {} | {clients} | {:.2} | {} | {} | {:.0} | {:.2} | {} | {} | {} | {} |",
            row.peer,
            m.per_second(),
            cell(m.latencies.median(), 0),
            cell(m.latencies.percentile(0.95), 0),
            m.cpu_ms_per_document(),
            m.cpu.as_secs_f64() / m.wall.as_secs_f64().max(1e-9),
            cell(m.per_core_second(), 2),
            cell(m.memory.map(|m| m.mean_kib / 1024.0), 0),
            cell(m.memory.map(|m| m.peak_kib as f64 / 1024.0), 0),
            cell(m.memory_seconds_per_document(), 1),
        );
    }
    let _ = write!(
        table,
        "\nEach service converts the same {} fixture documents at each level of concurrent clients (levels in turn; \
         within a level the services take turns in a rotating order).{} Bare LibreOfficeKit ({} documents) and \
         soffice per document ({} documents, a fresh process and profile each) convert one document at a time. \
         CPU is user and system time of the service's whole process tree (for soffice, of the finished processes); \
         memory is the tree's proportional set size (PSS), sampled every 100 ms; MiB·s/doc is the mean PSS times \
         the wall time, over the documents. How to read it: [performance.md](performance.md#scaling).\n\n\
         ![Scaling by concurrent clients](benchmarks-scaling.svg)\n",
        plan.documents,
        if plan.unoserver_instances.iter().any(|n| *n > 1) {
            " unoserver with 2 instances is two unoservers, each with its own soffice, the client's threads spread \
             over them."
        } else {
            ""
        },
        plan.sequential,
        plan.soffice
    );
    (table, chart_svg(rows))
}

/// Three panels over the levels: documents per second, p95 latency and
/// documents per CPU-second; the sequential peers as dashed references.
pub fn chart_svg(rows: &[Row]) -> String {
    let panel = |title: &str, value: &dyn Fn(&Measured) -> Option<f64>| {
        let mut series: Vec<Series> = Vec::new();
        let mut references = Vec::new();
        for row in rows {
            let Some(v) = value(&row.measured) else { continue };
            let color = color(&row.peer);
            if row.sequential {
                references.push(Reference { name: format!("{} (sequential)", row.peer), color, value: v });
                continue;
            }
            match series.iter_mut().find(|s| s.name == row.peer) {
                Some(s) => s.points.push((row.clients, v)),
                None => series.push(Series { name: row.peer.clone(), color, points: vec![(row.clients, v)] }),
            }
        }
        Panel { title: title.into(), series, references }
    };
    let panels = [
        panel("Documents per second", &|m| Some(m.per_second())),
        panel("p95 latency (ms)", &|m| m.latencies.percentile(0.95)),
        panel("Documents per CPU-second (per busy core)", &|m| m.per_core_second()),
    ];
    chart::line_chart(&panels, "concurrent clients")
}

/// One hue per peer, darker for more engines, so a peer's lines read as
/// one family in every chart, whichever configurations ran.
fn color(peer: &str) -> &'static str {
    let more_engines = !peer.ends_with(" 1 worker") && !peer.ends_with(" 1 instance");
    match (peer.split(',').next().unwrap_or(peer), more_engines) {
        ("docconv", false) => "#7fa3f0",
        ("docconv", true) => "#2456d6",
        ("unoserver", false) => "#f0a38f",
        ("unoserver", true) => "#d64524",
        ("bare LibreOfficeKit", _) => "#1f7a4d",
        _ => "#8a4fd6",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(documents: usize, wall_s: f64, cpu_s: f64, latency_ms: f64) -> Measured {
        let times = BatchTimes {
            wall: Duration::from_secs_f64(wall_s),
            latencies: (1..=documents).map(|i| Duration::from_secs_f64(latency_ms * i as f64 / 1000.0)).collect(),
        };
        let memory = TreeMemory { mean_kib: 512.0 * 1024.0, peak_kib: 600 * 1024 };
        Measured::new(times, Duration::from_secs_f64(cpu_s), Some(memory))
    }

    #[test]
    fn figures_per_document() {
        let m = measured(20, 4.0, 6.0, 10.0);
        assert_eq!(m.per_second(), 5.0);
        assert_eq!(m.cpu_ms_per_document(), 300.0);
        assert_eq!(m.per_core_second(), Some(20.0 / 6.0));
        assert_eq!(m.memory_seconds_per_document(), Some(512.0 * 4.0 / 20.0));
        assert_eq!(m.latencies.percentile(0.95), Some(190.0));
        assert_eq!(measured(3, 1.0, 0.0, 1.0).per_core_second(), None);
    }

    #[test]
    fn the_chart_draws_services_as_lines_and_sequential_peers_as_references() {
        let rows: Vec<Row> = [("docconv, 1 worker", 1), ("unoserver, 1 instance", 1), ("docconv, 1 worker", 4)]
            .into_iter()
            .map(|(peer, clients)| Row {
                peer: peer.into(),
                clients,
                sequential: false,
                measured: measured(8, 1.0, 1.0, 50.0),
            })
            .chain([Row {
                peer: "bare LibreOfficeKit".into(),
                clients: 1,
                sequential: true,
                measured: measured(8, 1.0, 0.8, 40.0),
            }])
            .collect();
        let svg = chart_svg(&rows);
        // Two services in each of three panels.
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert_eq!(svg.matches(">bare LibreOfficeKit (sequential)</text>").count(), 3);
        let (body, _) = render(
            &Plan {
                levels: vec![1, 4],
                workers: vec![1],
                unoserver_instances: vec![1],
                documents: 8,
                sequential: 8,
                soffice: 0,
            },
            &rows,
        );
        assert_eq!(body.matches("| docconv, 1 worker |").count(), 2);
        assert!(body.contains("| bare LibreOfficeKit | 1 (sequential) |"));
        assert!(body.contains("(benchmarks-scaling.svg)"));
    }

    #[test]
    fn each_configuration_has_its_own_colour() {
        let names = [
            "docconv, 1 worker",
            "docconv, 2 workers",
            "unoserver, 1 instance",
            "unoserver, 2 instances",
            "bare LibreOfficeKit",
            "soffice per document",
        ];
        let mut colors: Vec<&str> = names.iter().map(|n| color(n)).collect();
        colors.sort_unstable();
        colors.dedup();
        assert_eq!(colors.len(), names.len());
    }
}
