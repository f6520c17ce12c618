//! `docconv-bench`: docconv side by side with its peers, in one run.
//!
//! Peers run on the same machine, on the same documents, interleaved, and
//! the report gives ratios: absolute times drift on a shared machine, ratios
//! within one run hold. Targets are reported as met or missed, never
//! enforced: a slow machine must not fail anything.
#![forbid(unsafe_code)]

mod chart;
mod cluster;
mod cluster_latency;
mod command_line;
mod documents;
mod failover;
mod peers;
pub mod reliability;
mod report;
mod scaling;
mod scaling_report;
mod service;
mod speed;
mod stats;
mod streaming;
mod system;
mod watchers;
pub mod worker_startup;

use docconv_worker::StartMode;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use documents::png;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// quick (about three minutes), full (under twelve), or smoke (seconds; checks
    /// the harness itself)
    #[arg(long, default_value = "quick")]
    pub mode: String,
    /// Where to write the report; the chart goes beside it
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// The test documents
    #[arg(long, default_value = "tests/fixtures/gotenberg")]
    pub fixtures: PathBuf,
    /// A Python virtual environment with unoserver installed (and access to
    /// LibreOffice's `uno` module); without it unoserver is left out
    #[arg(long)]
    pub unoserver_venv: Option<PathBuf>,
    /// Leave out the soffice-per-document peer
    #[arg(long)]
    pub no_soffice: bool,
    /// Run only these scenarios (1 to 8), e.g. --only 4
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<u32>,
    /// The docconv binary to measure [default: `docconv` beside this one]
    #[arg(long)]
    pub docconv: Option<PathBuf>,
}

/// Sizes of one run, by mode.
pub struct Bench {
    exe: PathBuf,
    work: PathBuf,
    unoserver_venv: Option<PathBuf>,
    rounds: usize,
    soffice_rounds: usize,
    concurrency: Vec<usize>,
    batch_factor: usize,
    batch_minimum: usize,
    workers: usize,
    watchers: Vec<usize>,
    /// Times a cluster node is killed in scenario 6.
    failover_rounds: usize,
    upload_mib: usize,
    large_docx_paragraphs: usize,
    large_xlsx_rows: Option<usize>,
    scaling: scaling::Plan,
    worker_startup: worker_startup::Plan,
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    let exe = match &args.docconv {
        Some(exe) => exe.clone(),
        None => {
            let own = std::env::current_exe().map_err(|e| e.to_string())?;
            own.with_file_name("docconv")
        }
    };
    if !exe.is_file() {
        return Err(format!("{} not found: build it (cargo build --release) or pass --docconv", exe.display()));
    }
    let work = std::env::temp_dir().join(format!("docconv-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let soffice = if args.no_soffice { 0 } else { 1 };
    let bench = match args.mode.as_str() {
        "smoke" => Bench {
            exe,
            work: work.clone(),
            unoserver_venv: args.unoserver_venv.clone(),
            rounds: 1,
            soffice_rounds: 0,
            concurrency: vec![1, 2],
            batch_factor: 1,
            batch_minimum: 2,
            workers: 2,
            watchers: vec![20],
            failover_rounds: 1,
            upload_mib: 4,
            large_docx_paragraphs: 200,
            large_xlsx_rows: None,
            scaling: scaling::Plan {
                levels: vec![1, 2],
                workers: vec![1],
                unoserver_instances: vec![1],
                documents: 4,
                sequential: 4,
                soffice: 0,
            },
            worker_startup: worker_startup::Plan {
                counts: vec![2],
                modes: vec![StartMode::Fork],
                rounds: 1,
                restarts: 1,
            },
        },
        "quick" => Bench {
            exe,
            work: work.clone(),
            unoserver_venv: args.unoserver_venv.clone(),
            rounds: 3,
            soffice_rounds: soffice,
            concurrency: vec![1, 2, 4, 16],
            batch_factor: 2,
            batch_minimum: 8,
            workers: 2,
            watchers: vec![1000],
            failover_rounds: 1,
            upload_mib: 32,
            large_docx_paragraphs: 4400,
            large_xlsx_rows: None,
            scaling: scaling::Plan {
                levels: vec![1, 4],
                workers: vec![1],
                unoserver_instances: vec![1],
                documents: 16,
                sequential: 8,
                soffice: 4 * soffice,
            },
            worker_startup: worker_startup::Plan {
                counts: vec![2, 4],
                modes: vec![StartMode::Exec, StartMode::Fork],
                rounds: 1,
                restarts: 1,
            },
        },
        "full" => Bench {
            exe,
            work: work.clone(),
            unoserver_venv: args.unoserver_venv.clone(),
            rounds: 5,
            soffice_rounds: 2 * soffice,
            concurrency: vec![1, 2, 4, 16],
            batch_factor: 3,
            batch_minimum: 16,
            workers: 2,
            watchers: vec![1000, 10000],
            failover_rounds: 3,
            upload_mib: 100,
            large_docx_paragraphs: 4400,
            large_xlsx_rows: Some(25_000),
            scaling: scaling::Plan {
                levels: vec![1, 2, 4, 8, 16],
                workers: vec![1, 2],
                unoserver_instances: vec![1, 2],
                documents: 48,
                sequential: 24,
                soffice: 8 * soffice,
            },
            worker_startup: worker_startup::Plan {
                counts: vec![2, 4, 8],
                modes: vec![StartMode::Exec, StartMode::Fork],
                rounds: 2,
                restarts: 3,
            },
        },
        other => return Err(format!("unknown mode {other:?}: use quick, full or smoke")),
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let result = runtime.block_on(run_scenarios(&bench, &args, started));
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn run_scenarios(bench: &Bench, args: &BenchArgs, started: Instant) -> Result<(), String> {
    let fixtures = documents::fixtures(&args.fixtures);
    let mut documents = fixtures.clone();
    let large = documents::write_large_docx(&bench.work.join("large.docx"), bench.large_docx_paragraphs)
        .map_err(|e| e.to_string())?;
    documents.push(large.clone());
    if let Some(rows) = bench.large_xlsx_rows {
        documents.push(documents::write_large_xlsx(&bench.work.join("large.xlsx"), rows).map_err(|e| e.to_string())?);
    }
    let small = documents[0].clone();
    let mut report = report::Report::default();

    let wanted = |n: u32| args.only.is_empty() || args.only.contains(&n);
    if wanted(1) || wanted(2) {
        speed_scenarios(bench, &documents, &fixtures, &mut report, started).await?;
    }
    if wanted(3) {
        eprintln!("bench: 3. cold start ({:.0} s so far)", started.elapsed().as_secs_f64());
        speed::cold_start(bench, &small, &mut report).await?;
    }
    if wanted(4) {
        eprintln!("bench: 4. watchers ({:.0} s so far)", started.elapsed().as_secs_f64());
        watchers::watchers(bench, &large, &small, &mut report).await?;
    }
    if wanted(5) {
        eprintln!("bench: 5. streaming ({:.0} s so far)", started.elapsed().as_secs_f64());
        streaming::streaming(bench, &mut report).await?;
    }
    if wanted(6) {
        eprintln!("bench: 6. cluster mode ({:.0} s so far)", started.elapsed().as_secs_f64());
        cluster::cluster(bench, &fixtures, &small, &mut report).await?;
    }
    if wanted(7) {
        eprintln!("bench: 7. scaling ({:.0} s so far)", started.elapsed().as_secs_f64());
        scaling::scaling(bench, &fixtures, &mut report, started).await?;
    }
    if wanted(8) {
        eprintln!("bench: 8. worker start-up ({:.0} s so far)", started.elapsed().as_secs_f64());
        worker_startup::scenario(bench, &mut report).await?;
    }
    let preamble = preamble(bench, args, started);
    write_report(&args.out, &report.markdown(&preamble), &report.chart_svg(), &report.files)?;
    eprintln!("bench: done in {:.0} s; report in {}", started.elapsed().as_secs_f64(), args.out.display());
    Ok(())
}

/// Scenarios 1 and 2 share one docconv and the peers: 1 converts every
/// document, 2 the fixtures alone (the first of which warms unoserver).
async fn speed_scenarios(
    bench: &Bench,
    documents: &[documents::Document],
    fixtures: &[documents::Document],
    report: &mut report::Report,
    started: Instant,
) -> Result<(), String> {
    eprintln!("bench: starting docconv, the engine floor and the peers");
    let args_workers = ["--workers".to_owned(), bench.workers.to_string()];
    let args_workers: Vec<&str> = args_workers.iter().map(String::as_str).collect();
    let service = service::Service::start(&bench.exe, &bench.work, "main", false, &args_workers)?;
    service.wait_ready().await?;
    let mut client = peers::connect(service.grpc).await?;
    let floor = peers::Floor::start(&bench.exe, &bench.work).await?;
    let bare = peers::BareEngine::start(&bench.exe, &bench.work)?;
    let mut engines = speed::Engines { floor, bare };
    let mut unoserver = match &bench.unoserver_venv {
        Some(venv) => Some(peers::Unoserver::start(venv, &bench.work, &fixtures[0])?.0),
        None => None,
    };
    eprintln!("bench: 1. sequential latency ({:.0} s so far)", started.elapsed().as_secs_f64());
    speed::latency(bench, &mut client, &mut engines, &mut unoserver, documents, fixtures, report).await?;
    drop(engines);
    command_line::overhead(bench, service.grpc, &mut client, fixtures, report).await?;
    eprintln!("bench: 2. throughput ({:.0} s so far)", started.elapsed().as_secs_f64());
    speed::throughput(bench, &client, service.pid(), &mut unoserver, fixtures, report).await?;
    Ok(())
}

fn write_report(out: &Path, markdown: &str, svg: &str, files: &[(String, String)]) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, markdown).map_err(|e| e.to_string())?;
    for (name, text) in files {
        std::fs::write(out.with_file_name(name), text).map_err(|e| e.to_string())?;
    }
    std::fs::write(out.with_file_name("benchmarks-throughput.svg"), svg).map_err(|e| e.to_string())
}

fn preamble(bench: &Bench, args: &BenchArgs, started: Instant) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0.0, |kib| kib as f64 / 1048576.0);
    let version = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
            .unwrap_or_else(|| "not found".into())
    };
    let unoserver = match &bench.unoserver_venv {
        Some(venv) => std::process::Command::new(venv.join("bin/pip"))
            .args(["show", "unoserver"])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find(|l| l.starts_with("Version:"))
                    .map(|l| l[8..].trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into()),
        None => "not run".into(),
    };
    format!(
        "# Benchmarks\n\n\
         docconv against its peers on one machine, in one run, interleaved. Absolute times drift on a shared \
         machine; the ratios within one run are the figures that matter.\n\n\
         - Machine: {cpu}, {cores} cores, {memory:.0} GiB\n\
         - docconv {}; {}; unoserver {unoserver}\n\
         - Mode: `{}`, {:.0} s in all; produced by `scripts/bench --mode {}`\n\
         - Peers: **docconv** end to end as a client sees it (Submit, WatchJob to the end, ReadResult to the \
         last byte); **bare LibreOfficeKit** (one process calling `documentLoad`, `saveAs` to PDF and \
         `destroy` per document and nothing else: no docconv profile, sandbox, callbacks, options or pipes \
         protocol; files in memory), the true floor; the **engine floor** (LibreOfficeKit load and save in a \
         warm docconv worker, files in memory, no queue, gRPC or store); **unoserver** (one warm LibreOffice over UNO, documents passed in \
         memory over XML-RPC, from a persistent Python client); **soffice per document** (the prototype's way, \
         a fresh process and profile each time). Scenario 6 sets docconv's **cluster mode** (converters sharing \
         one job space through a NATS server, here on the same machine) beside its embedded mode; scenario 7 \
         follows each service from 1 to 16 concurrent clients, with its CPU and memory per document; scenario 8 \
         times docconv's workers from start to ready and reads their memory, exec'd or forked from the zygote.\n\n\
         What the figures say, and what is being done about the misses: [performance.md](performance.md).\n",
        env!("CARGO_PKG_VERSION"),
        version("soffice", "--version"),
        args.mode,
        started.elapsed().as_secs_f64(),
        args.mode
    )
}
