//! Scenario 7: how each service scales with concurrent clients, and what a
//! document costs it in CPU and memory.
//!
//! docconv with 1 and 2 workers and unoserver as 1 and 2 instances are
//! each given the same batch of fixtures at every level of concurrency;
//! levels go in turn and, within a level, the services take turns in a
//! rotating order, so drift on a shared machine falls on all alike. Bare
//! LibreOfficeKit and soffice per document are one process converting one
//! document at a time; they are measured sequentially, to place them.

use super::Bench;
use super::documents::Document;
use super::peers::{self, BareEngine, BatchTimes, Client, Unoserver};
use super::report::Report;
use super::scaling_report::{Measured, Row};
use super::service::Service;
use super::speed;
use super::system::{self, TreeMemory, TreeMemorySampler};
use std::time::{Duration, Instant};

/// What scenario 7 runs, by mode.
pub struct Plan {
    /// Concurrent clients, level by level.
    pub levels: Vec<usize>,
    /// docconv's worker counts.
    pub workers: Vec<usize>,
    /// unoserver instance counts.
    pub unoserver_instances: Vec<usize>,
    /// Documents converted at each level, by each service.
    pub documents: usize,
    /// Documents the bare engine converts one after another.
    pub sequential: usize,
    /// Documents soffice converts, each in a fresh process.
    pub soffice: usize,
}

/// A service that takes concurrent clients.
enum Concurrent {
    Docconv { workers: usize, service: Service, client: Client },
    Unoserver { instances: usize, peer: Unoserver },
}

impl Concurrent {
    fn name(&self) -> String {
        match self {
            Concurrent::Docconv { workers: 1, .. } => "docconv, 1 worker".into(),
            Concurrent::Docconv { workers, .. } => format!("docconv, {workers} workers"),
            Concurrent::Unoserver { instances: 1, .. } => "unoserver, 1 instance".into(),
            Concurrent::Unoserver { instances, .. } => format!("unoserver, {instances} instances"),
        }
    }

    /// The roots of the process trees whose CPU and memory are the
    /// service's.
    fn roots(&self) -> Vec<u32> {
        match self {
            Concurrent::Docconv { service, .. } => vec![service.pid()],
            Concurrent::Unoserver { peer, .. } => peer.pids(),
        }
    }

    async fn batch(&mut self, documents: &[Document], clients: usize) -> Result<BatchTimes, String> {
        match self {
            Concurrent::Docconv { client, .. } => {
                speed::run_docconv_batch_timed(std::slice::from_ref(client), documents, clients).await
            }
            Concurrent::Unoserver { peer, .. } => peer.batch_timed(documents, clients),
        }
    }

    /// One level, measured: the batch with `clients` at once, with the CPU
    /// and memory of the service's process trees over it.
    async fn measure(&mut self, documents: &[Document], clients: usize) -> Result<Measured, String> {
        let roots = self.roots();
        let cpu = || roots.iter().map(|pid| system::cpu_time(*pid)).sum::<Duration>();
        let sampler = TreeMemorySampler::start(roots.clone());
        let before = cpu();
        let times = self.batch(documents, clients).await?;
        let used = cpu() - before;
        let memory = sampler.stop();
        Ok(Measured::new(times, used, Some(memory)))
    }
}

pub async fn scaling(
    bench: &Bench,
    fixtures: &[Document],
    report: &mut Report,
    started: Instant,
) -> Result<(), String> {
    let plan = &bench.scaling;
    let batch: Vec<Document> = fixtures.iter().cycle().take(plan.documents).cloned().collect();
    let mut services = Vec::new();
    for &workers in &plan.workers {
        let args = ["--workers".to_owned(), workers.to_string()];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let service = Service::start(&bench.exe, &bench.work, &format!("scaling-{workers}"), false, &args)?;
        service.wait_ready().await?;
        let client = peers::connect(service.grpc).await?;
        services.push(Concurrent::Docconv { workers, service, client });
    }
    if let Some(venv) = &bench.unoserver_venv {
        for &instances in &plan.unoserver_instances {
            let (peer, _) = Unoserver::start_instances(venv, &bench.work, &fixtures[0], instances)?;
            services.push(Concurrent::Unoserver { instances, peer });
        }
    }
    // One unrecorded pass, with as many clients as the widest service has
    // engines, so every engine has seen every kind of document.
    let widest = plan.workers.iter().chain(&plan.unoserver_instances).copied().max().unwrap_or(1);
    let warm: Vec<Document> = fixtures.iter().cycle().take(fixtures.len() * widest).cloned().collect();
    for service in &mut services {
        service.batch(&warm, widest).await?;
    }

    let mut rows = Vec::new();
    for (index, &clients) in plan.levels.iter().enumerate() {
        eprintln!("bench: 7. scaling, {clients} clients ({:.0} s so far)", started.elapsed().as_secs_f64());
        let count = services.len();
        for turn in 0..count {
            let service = &mut services[(index + turn) % count];
            let measured = service.measure(&batch, clients).await?;
            rows.push(Row { peer: service.name(), clients, sequential: false, measured });
        }
    }
    // In the table, each service's levels together, in the order started.
    let order: Vec<String> = services.iter().map(Concurrent::name).collect();
    rows.sort_by_key(|row| (order.iter().position(|name| *name == row.peer), row.clients));
    drop(services);

    eprintln!("bench: 7. scaling, sequential peers ({:.0} s so far)", started.elapsed().as_secs_f64());
    rows.push(Row {
        peer: "bare LibreOfficeKit".into(),
        clients: 1,
        sequential: true,
        measured: bare_sequential(bench, fixtures, plan.sequential)?,
    });
    if plan.soffice > 0 {
        rows.push(Row {
            peer: "soffice per document".into(),
            clients: 1,
            sequential: true,
            measured: soffice_sequential(bench, fixtures, plan.soffice)?,
        });
    }
    let (body, svg) = super::scaling_report::render(plan, &rows);
    report.section("7. Scaling", body);
    report.file("benchmarks-scaling.svg", svg);
    Ok(())
}

/// The bare engine converting `count` fixtures one after another, after an
/// unrecorded pass over them.
fn bare_sequential(bench: &Bench, fixtures: &[Document], count: usize) -> Result<Measured, String> {
    let mut bare = BareEngine::start(&bench.exe, &bench.work)?;
    for document in fixtures {
        bare.convert(document)?;
    }
    let pid = bare.pid();
    let sampler = TreeMemorySampler::start(vec![pid]);
    let before = system::cpu_time(pid);
    let began = Instant::now();
    let mut latencies = Vec::new();
    for document in fixtures.iter().cycle().take(count) {
        latencies.push(bare.convert(document)?);
    }
    let wall = began.elapsed();
    let used = system::cpu_time(pid) - before;
    let memory = sampler.stop();
    Ok(Measured::new(BatchTimes { wall, latencies }, used, Some(memory)))
}

/// soffice converting `count` fixtures, a fresh process and profile each.
/// Its CPU is read from this process's waited-for children (each soffice
/// is gone by the time it is read); its memory, over before it could be
/// sampled steadily, is left out.
fn soffice_sequential(bench: &Bench, fixtures: &[Document], count: usize) -> Result<Measured, String> {
    let before = system::reaped_children_cpu_time();
    let began = Instant::now();
    let mut latencies = Vec::new();
    for (run, document) in fixtures.iter().cycle().take(count).enumerate() {
        latencies.push(peers::soffice_convert(document, &bench.work, run)?);
    }
    let wall = began.elapsed();
    let used = system::reaped_children_cpu_time() - before;
    Ok(Measured::new(BatchTimes { wall, latencies }, used, None::<TreeMemory>))
}
