//! Scenario 6: cluster mode (converters sharing one job space through
//! NATS) beside embedded mode, in one run: end-to-end latency, the
//! backend's own cost per job, throughput over one and two nodes, watchers
//! spread over two nodes, and how long a dead node's jobs take to finish
//! on another (`failover.rs`); the latency and overhead tables are in
//! `cluster_latency.rs`.
//!
//! Every setup compared has two workers in all, as the other scenarios'
//! docconv: one node with both, or two nodes with one each. The workers
//! fill this machine's cores, so more of them would only share the same
//! cores, and equal workers is the fair comparison.

use super::Bench;
use super::documents::{self, Document};
use super::peers;
use super::report::Report;
use super::service::{Nats, Service};
use super::stats::Samples;
use super::watchers::{self, Route, WatchedJobs};
use super::{cluster_latency, failover, speed, system};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Clients at once in the throughput comparison.
const CLIENTS: usize = 4;

pub async fn cluster(
    bench: &Bench,
    fixtures: &[Document],
    small: &Document,
    report: &mut Report,
) -> Result<(), String> {
    let begun = Instant::now();
    let step = |what: &str| eprintln!("bench: 6. {what} ({:.0} s into the scenario)", begun.elapsed().as_secs_f64());
    let nats = Nats::start(&bench.work).await?;
    let embedded = Service::start(&bench.exe, &bench.work, "embedded", false, &["--workers", "2"])?;
    // Each prefix is a job space of its own, so the single node never
    // takes the pair's jobs.
    let single = node(bench, &nats, "single", "single", 2, None)?;
    let pair = [node(bench, &nats, "pair-a", "pair", 1, None)?, node(bench, &nats, "pair-b", "pair", 1, None)?];
    for service in [&embedded, &single, &pair[0], &pair[1]] {
        service.wait_ready().await?;
    }
    step("latency and backend overhead, embedded against cluster");
    let mut body = String::from(
        "Converters given one NATS server (`--nats-url`) share one job space: any of them answers for any job. \
         Here each setup has two workers in all: one node with both, or two nodes with one each, since on this \
         machine the workers fill the cores and more would only share them. The NATS server (JetStream, one \
         server, files on local disk) runs on the same machine.\n",
    );
    let (mut on_embedded, mut on_single) = (peers::connect(embedded.grpc).await?, peers::connect(single.grpc).await?);
    body.push_str(&cluster_latency::latency(bench, &mut on_embedded, &mut on_single, fixtures, report).await?);
    let setups = [
        Setup { name: "one embedded node, 2 workers", nodes: vec![&embedded], nats: None },
        Setup { name: "one cluster node, 2 workers", nodes: vec![&single], nats: Some(&nats) },
        Setup { name: "two cluster nodes, 1 worker each", nodes: pair.iter().collect(), nats: Some(&nats) },
    ];
    step("throughput over one and two nodes");
    body.push_str(&throughput(bench, &setups, fixtures, report).await?);
    drop((embedded, single));
    step("watchers over two nodes");
    body.push_str(&watchers(bench, &pair, &nats, small, report).await?);
    drop(pair);
    step("failover");
    body.push_str(&failover::failover(bench, &nats, report).await?);
    step("done");
    report.section("6. Cluster mode", body);
    Ok(())
}

/// A cluster-mode converter with `workers` workers, sharing the job space
/// `space` (its NATS prefix) with every node given the same one; with
/// `lease_secs`, its running jobs' leases last that long.
pub fn node(
    bench: &Bench,
    nats: &Nats,
    name: &str,
    space: &str,
    workers: usize,
    lease_secs: Option<u64>,
) -> Result<Service, String> {
    let (workers, lease) = (workers.to_string(), lease_secs.map(|s| s.to_string()));
    let mut args = vec!["--workers", &workers, "--nats-url", &nats.url, "--nats-prefix", space];
    if let Some(lease) = &lease {
        args.extend(["--job-lease-secs", lease]);
    }
    Service::start(&bench.exe, &bench.work, name, false, &args)
}

/// One way of running the service in the throughput comparison.
struct Setup<'a> {
    name: &'static str,
    /// Clients take turns over these.
    nodes: Vec<&'a Service>,
    /// The NATS server, whose CPU counts too.
    nats: Option<&'a Nats>,
}

impl Setup<'_> {
    /// CPU time used so far by the nodes' process trees, and by NATS.
    fn cpu_time(&self) -> [Duration; 2] {
        let nodes = self.nodes.iter().map(|n| system::cpu_time(n.pid())).sum();
        [nodes, self.nats.map_or(Duration::ZERO, |n| system::cpu_time(n.pid()))]
    }
}

/// Documents per second with `CLIENTS` clients, setup after setup in a
/// rotating order, round after round.
async fn throughput(
    bench: &Bench,
    setups: &[Setup<'_>],
    fixtures: &[Document],
    report: &mut Report,
) -> Result<String, String> {
    let mut clients = Vec::new();
    for setup in setups {
        let mut connected = Vec::new();
        for node in &setup.nodes {
            connected.push(peers::connect(node.grpc).await?);
        }
        // Unrecorded: every node's workers have seen every kind of document.
        let warm: Vec<Document> = fixtures.iter().cycle().take(fixtures.len() * connected.len()).cloned().collect();
        speed::run_docconv_batch(&connected, &warm, connected.len()).await?;
        clients.push(connected);
    }
    let count = (CLIENTS * bench.batch_factor).max(bench.batch_minimum) * 2;
    let batch: Vec<Document> = fixtures.iter().cycle().take(count).cloned().collect();
    let mut rates = vec![Samples::default(); setups.len()];
    let mut cpu = vec![<[Samples; 2]>::default(); setups.len()];
    for round in 0..bench.rounds {
        for turn in 0..setups.len() {
            let index = (round + turn) % setups.len();
            let before = setups[index].cpu_time();
            let wall = speed::run_docconv_batch(&clients[index], &batch, CLIENTS).await?;
            rates[index].push(count as f64 / wall.as_secs_f64());
            for ((samples, after), before) in cpu[index].iter_mut().zip(setups[index].cpu_time()).zip(before) {
                samples.push((after - before).as_secs_f64() * 1000.0 / count as f64);
            }
        }
    }
    let mut out = format!(
        "\n### Throughput\n\nDocuments per second with {CLIENTS} clients at once (spread evenly over the nodes), a \
         batch of {count} fixture documents per setup and round, setups in a rotating order; median of {} rounds. \
         CPU per document is user and system time of the nodes' whole process trees (workers included), and of \
         the NATS server.\n\n\
         | setup | documents/s | ÷ embedded | CPU per document: nodes | NATS server |\n|---|---|---|---|---|\n",
        bench.rounds
    );
    let embedded = rates[0].median().unwrap_or(f64::NAN);
    for ((setup, rate), [nodes, nats]) in setups.iter().zip(&rates).zip(&cpu) {
        let rate = rate.median().unwrap_or(f64::NAN);
        let ms = |samples: &Samples| samples.median().map_or("–".into(), |ms| format!("{ms:.0} ms"));
        let nats = if setup.nats.is_some() { ms(nats) } else { "–".into() };
        let _ = writeln!(out, "| {} | {rate:.2} | {:.2}× | {} | {nats} |", setup.name, rate / embedded, ms(nodes));
    }
    let pair = rates.last().and_then(Samples::median).unwrap_or(f64::NAN) / embedded;
    let _ = write!(
        out,
        "\nTwo nodes of one worker each reach {:.0}% of one embedded node's documents per second with the same \
         two workers. On one machine a second node brings no cores of its own, so this is what splitting the \
         workers over two nodes that share jobs through NATS costs; on separate machines each node brings its \
         own cores (see [cluster.md](cluster.md)).\n",
        pair * 100.0
    );
    report.target(
        "cluster",
        &format!("throughput at {CLIENTS} clients: two cluster nodes (1 worker each) at least 95% of one embedded node (2 workers)"),
        format!("{:.0}%", pair * 100.0),
        pair >= 0.95,
    );
    Ok(out)
}

/// Watchers of one job spread evenly over two cluster nodes: memory per
/// watcher in each node, and in the NATS server, where each is a watch of
/// the job's key.
async fn watchers(
    bench: &Bench,
    pair: &[Service; 2],
    nats: &Nats,
    small: &Document,
    report: &mut Report,
) -> Result<String, String> {
    system::raise_file_limit();
    // Connecting a watcher takes longer in cluster mode (a watch in NATS
    // each): the busy jobs are three times scenario 4's large document.
    let mut busy = documents::write_large_docx(&bench.work.join("busy.docx"), bench.large_docx_paragraphs * 3)
        .map_err(|e| e.to_string())?;
    busy.name = "busy.docx".into();
    let count = bench.watchers.iter().copied().max().unwrap_or(0);
    let mut client = peers::connect(pair[0].grpc).await?;
    let jobs = WatchedJobs { busy: &busy, small, workers: pair.len() };
    let route = Route::Grpc(pair.iter().map(|n| n.grpc).collect());
    let pids = [pair[0].pid(), pair[1].pid(), nats.pid()];
    let crowd = watchers::crowd(&mut client, &jobs, count, &route, &pids).await?;
    let per_node = (count / pair.len()).max(1) as f64;
    let [a, b] = [0, 1].map(|n| crowd.growth_kib[n] as f64 / per_node);
    let in_nats = crowd.growth_kib[2] as f64 / count.max(1) as f64;
    let mut out = format!(
        "\n### Watchers over two nodes\n\n{count} gRPC watchers of one job, half on each node (a connection per 500), \
         as in scenario 4:\n\n\
         | watchers | connected in | memory per watcher: node A | node B | NATS server | delay median | delay p99 | states delivered |\n\
         |---|---|---|---|---|---|---|---|\n\
         | {count} | {:.1} s | {a:.1} KiB | {b:.1} KiB | {in_nats:.1} KiB | {:.1} ms | {:.1} ms | {} |\n",
        crowd.connect.as_secs_f64(),
        crowd.delays.median().unwrap_or(f64::NAN),
        crowd.delays.percentile(0.99).unwrap_or(f64::NAN),
        crowd.delivered
    );
    out.push_str(
        "\nMemory per watcher is each process's growth with all watchers connected, divided by the watchers it \
         serves (half of them for a node, all for the NATS server, which holds one watch of the jobs per node \
         whatever the watchers). A node's figure is what a watcher costs whichever node it reaches.\n",
    );
    if let Some(trouble) = crowd.trouble(count) {
        let _ = writeln!(out, "\n**These are not the figures of {count} live watchers:** {trouble}.");
    }
    let (measured, met) = crowd.judge(count, a.max(b));
    report.target(
        "cluster",
        &format!("{count} gRPC watchers over two cluster nodes: under 20 KiB each in each node"),
        measured,
        met,
    );
    Ok(out)
}
