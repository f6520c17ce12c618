//! Scenarios 1–3: sequential latency, throughput by concurrency, cold start.

use super::Bench;
use super::documents::Document;
use super::peers::{self, BareEngine, Client, Floor, Unoserver};
use super::report::{Report, median_p95};
use super::stats::Samples;
use super::system;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DOCCONV: &str = "docconv";
const FLOOR: &str = "engine floor";
const UNOSERVER: &str = "unoserver";
const SOFFICE: &str = "soffice per document";
const BARE: &str = "bare LibreOfficeKit";

/// Latency samples per (peer, document).
type Latencies = BTreeMap<(&'static str, String), Samples>;

/// LibreOffice driven directly, without docconv's service around it: bare,
/// and in a docconv worker.
pub struct Engines {
    pub floor: Floor,
    pub bare: BareEngine,
}

/// How many times the large documents' rounds the fixtures get.
const FIXTURE_ROUNDS: usize = 3;

/// Scenario 1: each peer converts each document in turn, round after round,
/// in a rotating order, so drift on a shared machine hits all alike.
pub async fn latency(
    bench: &Bench,
    client: &mut Client,
    engines: &mut Engines,
    unoserver: &mut Option<Unoserver>,
    documents: &[Document],
    fixtures: &[Document],
    report: &mut Report,
) -> Result<Latencies, String> {
    let mut samples: Latencies = BTreeMap::new();
    let mut stages: BTreeMap<String, [Samples; 4]> = BTreeMap::new();
    // One unrecorded pass: every peer has seen every kind of document.
    for document in documents {
        peers::docconv_convert(client, document).await?;
        engines.floor.convert(document).await?;
        engines.bare.convert(document)?;
        if let Some(unoserver) = unoserver.as_mut() {
            unoserver.convert(document)?;
        }
    }
    // The fixtures take tens of milliseconds each, so they get more rounds
    // than the large documents: their medians carry the targets, and on a
    // shared machine 5 samples moved them by a tenth from run to run.
    let fixture_rounds = bench.rounds * FIXTURE_ROUNDS;
    for round in 0..fixture_rounds {
        for document in documents {
            let is_fixture = fixtures.iter().any(|f| f.name == document.name);
            if round >= bench.rounds && !is_fixture {
                continue;
            }
            for turn in 0..4 {
                match (round + turn) % 4 {
                    0 => {
                        let started = Instant::now();
                        let job = peers::docconv_convert(client, document).await?;
                        let elapsed = started.elapsed();
                        samples.entry((DOCCONV, document.name.clone())).or_default().push_duration(elapsed);
                        let t = job.timings.unwrap_or_default();
                        let entry = stages.entry(document.name.clone()).or_default();
                        for (slot, value) in entry.iter_mut().zip([t.queue_wait_ms, t.load_ms, t.export_ms, t.store_ms])
                        {
                            slot.push(value as f64);
                        }
                    }
                    1 => {
                        let elapsed = engines.floor.convert(document).await?;
                        samples.entry((FLOOR, document.name.clone())).or_default().push_duration(elapsed);
                    }
                    2 => {
                        let elapsed = engines.bare.convert(document)?;
                        samples.entry((BARE, document.name.clone())).or_default().push_duration(elapsed);
                    }
                    _ => {
                        if let Some(unoserver) = unoserver.as_mut() {
                            let elapsed = unoserver.convert(document)?;
                            samples.entry((UNOSERVER, document.name.clone())).or_default().push_duration(elapsed);
                        }
                    }
                }
            }
            if round < bench.soffice_rounds {
                let elapsed = peers::soffice_convert(document, &bench.work, round)?;
                samples.entry((SOFFICE, document.name.clone())).or_default().push_duration(elapsed);
            }
        }
    }

    let peers = [DOCCONV, BARE, FLOOR, UNOSERVER, SOFFICE];
    let mut table = String::from("Median latency per document, and p95 (ms):\n\n| document |");
    for peer in peers {
        let _ = write!(table, " {peer} |");
    }
    table.push_str(
        " docconv ÷ bare | docconv ÷ floor | unoserver ÷ docconv | soffice ÷ docconv |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let median = |peer: &'static str, name: &str| samples.get(&(peer, name.to_owned())).and_then(|s| s.median());
    let (mut over_bare, mut over_floor, mut vs_unoserver, mut vs_soffice) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    // The same two ratios over every document, the large ones included.
    let (mut vs_unoserver_all, mut vs_soffice_all) = (Samples::default(), Samples::default());
    for document in documents {
        let _ = write!(table, "| {} |", document.name);
        for peer in peers {
            let cell = samples.get(&(peer, document.name.clone())).map_or("–".into(), median_p95);
            let _ = write!(table, " {cell} |");
        }
        let ratio = |a: Option<f64>, b: Option<f64>, into: Option<&mut Samples>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => {
                if let Some(into) = into {
                    into.push(a / b);
                }
                format!("{:.2}×", a / b)
            }
            _ => "–".into(),
        };
        let d = median(DOCCONV, &document.name);
        // The targets against bare LibreOfficeKit, unoserver and soffice
        // are over the fixtures: small documents, where what each adds to
        // the engine weighs most. On a large document the engine's own
        // time dominates every peer alike.
        let is_fixture = fixtures.iter().any(|f| f.name == document.name);
        let (uno, soffice) = (median(UNOSERVER, &document.name), median(SOFFICE, &document.name));
        if let (Some(u), Some(s), Some(d)) = (uno, soffice, d) {
            vs_unoserver_all.push(u / d);
            vs_soffice_all.push(s / d);
        }
        let cells = [
            ratio(d, median(BARE, &document.name), is_fixture.then_some(&mut over_bare)),
            ratio(d, median(FLOOR, &document.name), Some(&mut over_floor)),
            ratio(uno, d, is_fixture.then_some(&mut vs_unoserver)),
            ratio(soffice, d, is_fixture.then_some(&mut vs_soffice)),
        ];
        let _ = writeln!(table, " {} | {} | {} | {} |", cells[0], cells[1], cells[2], cells[3]);
    }
    table.push_str("\nWhere docconv's time goes (medians, ms): queue wait, LibreOffice load, export, hashing and storing the result.\n\n| document | queue | load | export | store |\n|---|---|---|---|---|\n");
    for (name, [queue, load, export, store]) in &stages {
        let m = |s: &Samples| s.median().map_or("–".into(), |v| format!("{v:.0}"));
        let _ = writeln!(table, "| {name} | {} | {} | {} | {} |", m(queue), m(load), m(export), m(store));
    }
    let rounds = bench.rounds;
    let _ = write!(
        table,
        "\n{fixture_rounds} rounds of the fixtures and {rounds} of the large documents, after one unrecorded pass; soffice {} \
         round(s), as each run starts LibreOffice with a fresh profile. \
         Ratios are of medians; the targets use the median of the per-document ratios over the fixtures (all but \
         the large documents). Over every document: unoserver ÷ docconv {}, soffice ÷ docconv {}.\n",
        bench.soffice_rounds,
        vs_unoserver_all.median().map_or("–".into(), |r| format!("{r:.2}×")),
        vs_soffice_all.median().map_or("–".into(), |r| format!("{r:.1}×")),
    );
    report.section("1. Sequential latency", table);

    if let Some(r) = over_bare.median() {
        let goal = "docconv within 1.25× of bare LibreOfficeKit (median over the fixtures)";
        report.target("latency", goal, format!("{r:.2}×"), r <= 1.25);
    }
    if let Some(r) = over_floor.median() {
        report.target("latency", "docconv within 1.3× of the engine floor", format!("{r:.2}×"), r <= 1.3);
    }
    if let Some(r) = vs_unoserver.median() {
        let goal = "at least 1.5× faster than unoserver (median over the fixtures)";
        report.target("latency", goal, format!("{r:.2}× faster"), r >= 1.5);
    }
    if let Some(r) = vs_soffice.median() {
        let goal = "at least 20× faster than soffice per document (median over the fixtures)";
        report.target("latency", goal, format!("{r:.1}× faster"), r >= 20.0);
    }
    Ok(samples)
}

/// Scenario 2: documents per second with 1, 2, 4 and 16 clients at once.
pub async fn throughput(
    bench: &Bench,
    client: &Client,
    service_pid: u32,
    unoserver: &mut Option<Unoserver>,
    documents: &[Document],
    report: &mut Report,
) -> Result<(), String> {
    let mut table = String::from(
        "| clients | docconv docs/s | docconv CPU (cores) | unoserver docs/s | unoserver CPU (cores) | docconv ÷ unoserver |\n|---|---|---|---|---|---|\n",
    );
    for (index, &concurrency) in bench.concurrency.iter().enumerate() {
        let count = (concurrency * bench.batch_factor).max(bench.batch_minimum);
        let batch: Vec<Document> = documents.iter().cycle().take(count).cloned().collect();
        let mut docconv = None;
        let mut theirs = None;
        // Alternate who goes first, level by level.
        for turn in 0..2 {
            if (index + turn) % 2 == 0 {
                let cpu = system::cpu_time(service_pid);
                let wall = run_docconv_batch(std::slice::from_ref(client), &batch, concurrency).await?;
                docconv = Some((wall, system::cpu_time(service_pid) - cpu));
            } else if let Some(peer) = unoserver.as_mut() {
                let cpu = peer.pids().into_iter().map(system::cpu_time).sum::<Duration>();
                let wall = peer.batch(&batch, concurrency)?;
                theirs = Some((wall, peer.pids().into_iter().map(system::cpu_time).sum::<Duration>() - cpu));
            }
        }
        let rate = |(wall, _): (Duration, Duration)| count as f64 / wall.as_secs_f64();
        let cores = |(wall, cpu): (Duration, Duration)| cpu.as_secs_f64() / wall.as_secs_f64();
        let ours = docconv.map(rate).unwrap_or(0.0);
        report.throughput.push((DOCCONV.into(), concurrency, ours));
        let fmt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
        let theirs_rate = theirs.map(rate);
        if let Some(rate) = theirs_rate {
            report.throughput.push((UNOSERVER.into(), concurrency, rate));
        }
        let ratio = theirs_rate.map(|t| ours / t);
        let _ = writeln!(
            table,
            "| {concurrency} | {ours:.2} | {} | {} | {} | {} |",
            fmt(docconv.map(cores)),
            fmt(theirs_rate),
            fmt(theirs.map(cores)),
            ratio.map_or("–".into(), |r| format!("{r:.2}×"))
        );
        if concurrency >= 4
            && let Some(r) = ratio
        {
            report.target(
                "throughput",
                &format!("at {concurrency} clients, at least 1.8× unoserver's documents per second"),
                format!("{r:.2}×"),
                r >= 1.8,
            );
        }
    }
    let _ = write!(
        table,
        "\nEach level converts a batch of the fixture documents (at least {} documents, {}× the clients); \
         docconv runs {} workers. CPU is user+system time of each service's whole process tree over the wall time.\n\n\
         ![Throughput by concurrency](benchmarks-throughput.svg)\n",
        bench.batch_minimum, bench.batch_factor, bench.workers
    );
    report.section("2. Throughput", table);
    Ok(())
}

/// Converts `batch` with `concurrency` clients at once, each taking the
/// next document when done; client `n` talks to `services[n % len]`.
pub async fn run_docconv_batch(
    services: &[Client],
    batch: &[Document],
    concurrency: usize,
) -> Result<Duration, String> {
    Ok(run_docconv_batch_timed(services, batch, concurrency).await?.wall)
}

/// `run_docconv_batch`, keeping each document's latency as well.
pub async fn run_docconv_batch_timed(
    services: &[Client],
    batch: &[Document],
    concurrency: usize,
) -> Result<peers::BatchTimes, String> {
    let queue = Arc::new(Mutex::new(batch.to_vec()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let (queue, mut client) = (queue.clone(), services[n % services.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(document) = next else {
                    return Ok::<_, String>(latencies);
                };
                let began = Instant::now();
                peers::docconv_convert(&mut client, &document).await?;
                latencies.push(began.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(peers::BatchTimes { wall: started.elapsed(), latencies })
}

/// Scenario 3: from starting a service to its first finished conversion,
/// and that conversion against the steady state.
pub async fn cold_start(bench: &Bench, document: &Document, report: &mut Report) -> Result<(), String> {
    let args = ["--workers", &bench.workers.to_string()];
    let service = super::service::Service::start(&bench.exe, &bench.work, "cold", false, &args)?;
    let ready = service.wait_ready().await?;
    let mut client = peers::connect(service.grpc).await?;
    let started = Instant::now();
    peers::docconv_convert(&mut client, document).await?;
    let first = started.elapsed();
    let total = service.started().elapsed();
    let mut steady = Samples::default();
    for _ in 0..bench.rounds.max(3) {
        let started = Instant::now();
        peers::docconv_convert(&mut client, document).await?;
        steady.push_duration(started.elapsed());
    }
    drop(service);
    let steady_ms = steady.median().unwrap_or(f64::NAN);
    let first_ms = first.as_secs_f64() * 1000.0;
    let ratio = first_ms / steady_ms;

    let unoserver_line = match &bench.unoserver_venv {
        Some(venv) => {
            let (peer, until_first) = Unoserver::start(venv, &bench.work, document)?;
            drop(peer);
            report.unoserver_start_ms = Some(until_first.as_secs_f64() * 1000.0);
            format!("| unoserver | – | – | {:.0} ms |\n", until_first.as_secs_f64() * 1000.0)
        }
        None => String::new(),
    };
    let body = format!(
        "| service | ready (health SERVING) | first conversion | start to first result |\n|---|---|---|---|\n\
         | docconv ({} workers) | {:.0} ms | {first_ms:.0} ms (steady state {steady_ms:.0} ms, {ratio:.2}×) | {:.0} ms |\n{unoserver_line}\n\
         The document is {}. docconv reports ready only once its workers have converted a Writer, Calc and Impress \
         document and have exported samples to every candidate format (which is how it learns what this LibreOffice \
         can produce); unoserver's figure is from its start to its first conversion finished.\n",
        bench.workers,
        ready.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0,
        document.name
    );
    report.section("3. Cold start", body);
    report.target(
        "cold start",
        "first conversion within 1.5× of the steady state",
        format!("{ratio:.2}×"),
        ratio <= 1.5,
    );
    Ok(())
}
