//! Scenario 6, latency: end to end, and the job backend's own steps per
//! job, of embedded mode and of one cluster node, document by document in
//! turn.

use super::Bench;
use super::documents::Document;
use super::peers::{self, Client};
use super::report::{Report, median_p95};
use super::stats::Samples;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The steps of a job where the backend does its work, as the client and
/// the job's own timings saw them.
const STEPS: [&str; 5] = [
    "Submit (upload, record, queue)",
    "Submit answer → RUNNING seen (lease)",
    "result stored (hash, keep)",
    "end written → watcher",
    "ReadResult to the last byte",
];

/// The steps the backend overhead target counts: what a job waits for
/// around its conversion, the lease and the end's delivery.
const OVERHEAD: [usize; 2] = [1, 3];

/// Samples of one mode and of the other: 0 embedded, 1 cluster.
type Both = [Samples; 2];

pub async fn latency(
    bench: &Bench,
    embedded: &mut Client,
    cluster: &mut Client,
    fixtures: &[Document],
    report: &mut Report,
) -> Result<String, String> {
    // One unrecorded pass: both have seen every kind of document.
    for document in fixtures {
        peers::docconv_convert(embedded, document).await?;
        peers::docconv_convert(cluster, document).await?;
    }
    let mut latency: BTreeMap<String, Both> = BTreeMap::new();
    let mut steps: [Both; STEPS.len()] = Default::default();
    let mut unseen = [0; 2];
    // A round is a few small documents, so there are three times as many
    // as in scenario 1: the backend's steps take ms, and need samples.
    let rounds = bench.rounds * 3;
    for round in 0..rounds {
        for (index, document) in fixtures.iter().enumerate() {
            for turn in 0..2 {
                let mode = (round + index + turn) % 2;
                let client = if mode == 0 { &mut *embedded } else { &mut *cluster };
                let started = Instant::now();
                let traced = peers::docconv_convert_traced(client, document).await?;
                latency.entry(document.name.clone()).or_default()[mode].push_duration(started.elapsed());
                let stored = Duration::from_millis(traced.job.timings.unwrap_or_default().store_ms);
                let values =
                    [Some(traced.submit), traced.to_running, Some(stored), Some(traced.end_delay), Some(traced.read)];
                for (step, value) in steps.iter_mut().zip(values) {
                    match value {
                        Some(value) => step[mode].push_duration(value),
                        None => unseen[mode] += 1,
                    }
                }
            }
        }
    }
    let mut out = latency_table(&latency, rounds, report);
    out.push_str(&overhead_table(&steps, unseen, report));
    Ok(out)
}

fn latency_table(latency: &BTreeMap<String, Both>, rounds: usize, report: &mut Report) -> String {
    let mut out = String::from(
        "\n### Latency\n\nEnd to end as a client sees it (Submit, WatchJob to the end, ReadResult to the last byte), \
         each document on embedded mode and on one cluster node in turn; median and p95 (ms):\n\n\
         | document | embedded | cluster | cluster ÷ embedded |\n|---|---|---|---|\n",
    );
    let mut ratios = Samples::default();
    for (name, [embedded, cluster]) in latency {
        let ratio = match (embedded.median(), cluster.median()) {
            (Some(e), Some(c)) if e > 0.0 => {
                ratios.push(c / e);
                format!("{:.2}×", c / e)
            }
            _ => "–".into(),
        };
        let _ = writeln!(out, "| {name} | {} | {} | {ratio} |", median_p95(embedded), median_p95(cluster));
    }
    let ratio = ratios.median().unwrap_or(f64::NAN);
    let _ = write!(
        out,
        "\n{rounds} rounds after one unrecorded pass. The median of the per-document ratios, {ratio:.2}×, is what \
         keeping jobs in NATS instead of in the data directory costs a client, with NATS on the same machine.\n"
    );
    report.target(
        "cluster",
        "latency on a cluster node within 1.15× of embedded (median over fixtures)",
        format!("{ratio:.2}×"),
        ratio <= 1.15,
    );
    out
}

fn overhead_table(steps: &[Both; STEPS.len()], unseen: [usize; 2], report: &mut Report) -> String {
    let mut out = String::from(
        "\n### Backend overhead per job\n\nThe steps of a job where the job backend works, in ms (median and p95 over \
         every job above): the Submit call; from its answer to the first RUNNING state the client's watch delivers \
         (queueing, a worker's lease, the start's write and its delivery); storing the result (the job's own \
         `store_ms`); from the end's writing (its `update_time`) to its arrival at the watcher; and ReadResult.\n\n\
         | step | embedded | cluster | cluster − embedded (medians) |\n|---|---|---|---|\n",
    );
    let added: Vec<f64> = steps
        .iter()
        .map(|[embedded, cluster]| cluster.median().unwrap_or(f64::NAN) - embedded.median().unwrap_or(f64::NAN))
        .collect();
    for ((step, [embedded, cluster]), more) in STEPS.iter().zip(steps).zip(&added) {
        let _ = writeln!(out, "| {step} | {} | {} | {more:+.1} ms |", median_p95(embedded), median_p95(cluster));
    }
    if unseen.iter().any(|&n| n > 0) {
        let _ = writeln!(
            out,
            "\nJobs that ended before the watch began, so never seen running: {} embedded, {} cluster.",
            unseen[0], unseen[1]
        );
    }
    let overhead: f64 = OVERHEAD.iter().map(|&n| added[n]).sum();
    let _ = write!(
        out,
        "\nWaiting for a lease and for the end's delivery costs a job on a cluster node {overhead:+.1} ms against \
         an embedded one; the other steps are the files' way through NATS's object store (in with \
         Submit, out to the worker and back, out with ReadResult). Fetching the input for the worker falls \
         between the lease and the start of loading, in no step here.\n"
    );
    report.target(
        "cluster",
        "backend overhead per job on a cluster node (lease, end to watcher): under 10 ms more than embedded",
        format!("{overhead:+.1} ms"),
        overhead < 10.0,
    );
    out
}
