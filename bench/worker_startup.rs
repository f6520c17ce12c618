//! `docconv-bench worker-startup`: how long a worker takes to come up and
//! what it costs in memory, with 2, 4 and 8 of them started together as the
//! pool starts them.
//!
//! For each count, round and way of starting (exec'd, or forked from a
//! zygote started for the round), every worker is started at once (as the
//! pool's runners do); each is timed from its spawn (or its fork request)
//! to its `Ready` (LibreOffice started, sandbox entered) and to warm (the
//! pool's warm-up samples, one Writer, Calc and Impress document,
//! converted). Once all are warm, one more worker is started alone, as the
//! pool replaces a crashed or recycled one. Proportional set size (`Pss` of `/proc/PID/smaps_rollup`)
//! is read once all are warm, and again after four seconds idle: shared pages count once across the
//! processes, so it is what each worker adds to the machine; with a zygote
//! its own PSS is shared out over the workers. The figures go to
//! `docs/performance.md`.
//!
//! Last, the service itself is restarted: `docconv converter` with 2
//! workers on a data directory an earlier run left (the format probe's
//! answer kept), timed from its start to ready (health SERVING) and to its
//! first PDF.

use crate::documents::Document;
use crate::peers;
use crate::report::Report;
use crate::service::Service;
use crate::stats::Samples;
use crate::system::pss_kib;
use clap::Args;
use docconv_worker::proto::Convert;
use docconv_worker::{Outcome, StartMode, Worker, WorkerSpec, Zygote};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pool's warm-up samples (`converter/warmup`).
const SAMPLES: &[(&str, &[u8])] = &[
    ("warm.docx", include_bytes!("../converter/warmup/warm.docx")),
    ("warm.xlsx", include_bytes!("../converter/warmup/warm.xlsx")),
    ("warm.pptx", include_bytes!("../converter/warmup/warm.pptx")),
];

#[derive(Args)]
pub struct WorkerStartupArgs {
    /// The docconv binary [default: `docconv` beside this one]
    #[arg(long)]
    docconv: Option<PathBuf>,
    /// Worker counts to start together, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    workers: Vec<usize>,
    /// Rounds per count; the counts and ways take turns
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Ways of starting workers to compare, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "exec,fork")]
    start: Vec<StartMode>,
    /// Restarts of the service per way of starting workers
    #[arg(long, default_value_t = 3)]
    restarts: usize,
}

/// One worker's figures.
struct Started {
    ready: Duration,
    warm: Duration,
    /// Right after its warm-up.
    pss_kib: u64,
    /// After `IDLE` without a job (a worker gives freed heap back when idle).
    pss_idle_kib: u64,
}

/// How long workers sit idle before their memory is read again: a worker
/// gives back its freed heap after half a second without a job, the zygote
/// the code its workers did not take three seconds after its last fork.
const IDLE: Duration = Duration::from_secs(4);

/// What to measure: worker counts, ways of starting, rounds and restarts.
#[derive(Clone)]
pub struct Plan {
    pub counts: Vec<usize>,
    pub modes: Vec<StartMode>,
    pub rounds: usize,
    pub restarts: usize,
}

/// Everything one run measured.
pub struct Measured {
    series: Vec<Series>,
    restarts: Vec<(StartMode, Samples, Samples)>,
    plan: Plan,
}

pub fn run(args: WorkerStartupArgs) -> Result<(), String> {
    let exe = match args.docconv {
        Some(exe) => exe,
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("docconv"),
    };
    let plan = Plan { counts: args.workers, modes: args.start, rounds: args.rounds, restarts: args.restarts };
    let work = std::env::temp_dir().join(format!("docconv-worker-startup-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let measured = runtime.block_on(measure(&exe, &work, plan));
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", measured?.tables());
    Ok(())
}

/// Runs `plan` with the docconv binary `exe`, in `work`.
pub async fn measure(exe: &Path, work: &Path, plan: Plan) -> Result<Measured, String> {
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    for (name, bytes) in SAMPLES {
        std::fs::write(work.join(name), bytes).map_err(|e| e.to_string())?;
    }
    let spec = WorkerSpec {
        exe: exe.to_path_buf(),
        program_dir: "/usr/lib/libreoffice/program".into(),
        scratch_dir: work.to_path_buf(),
        start_timeout: Duration::from_secs(120),
        profile_blocks_links: true,
        start: StartMode::Exec,
    };
    let mut series: Vec<Series> =
        plan.counts.iter().flat_map(|&count| plan.modes.iter().map(move |&mode| Series::new(count, mode))).collect();
    for round in 0..plan.rounds {
        for series in &mut series {
            let (count, mode) = (series.count, series.mode);
            let spec = WorkerSpec { start: mode, ..spec.clone() };
            let figures = start_together(&spec, work, count).await?;
            eprintln!("round {round}, {count} workers, {mode:?}: {}", summary(&figures.started));
            if let Some(ready) = figures.zygote_ready {
                series.zygote_ready.push_duration(ready);
            }
            series.started.extend(figures.started);
            series.replacements.push(figures.replacement);
        }
    }
    let restarts = restarts(exe, work, &plan.modes, plan.restarts).await?;
    Ok(Measured { series, restarts, plan })
}

impl Measured {
    /// The figures as markdown tables.
    pub fn tables(&self) -> String {
        let rounds = self.plan.rounds;
        let mut out = String::from(
            "| workers | start | spawn → ready (median, max) | spawn → warm (median, max) | PSS per worker, warm (mean) | idle (mean) | rounds |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for series in &self.series {
            out += &format!("| {} | {:?} | {} | {rounds} |\n", series.count, series.mode, summary(&series.started));
        }
        out += "\nA replacement started alone once the others are warm:\n\n\
                | beside | start | spawn → ready (median, max) | spawn → warm (median, max) | PSS, warm (mean) | idle (mean) | rounds |\n\
                |---|---|---|---|---|---|---|\n";
        for series in &self.series {
            out +=
                &format!("| {} | {:?} | {} | {rounds} |\n", series.count, series.mode, summary(&series.replacements));
        }
        let zygote: Vec<String> = self
            .series
            .iter()
            .filter_map(|s| s.zygote_ready.median().map(|median| format!("{median:.0} ms beside {} workers", s.count)))
            .collect();
        if !zygote.is_empty() {
            out += &format!("\nThe zygote ready after its start (median): {}.\n", zygote.join(", "));
        }
        if !self.restarts.is_empty() {
            out += "\nThe service restarted (2 workers, the probe's answer kept):\n\n\
                    | start | start → ready (median, max) | start → first PDF (median, max) | restarts |\n|---|---|---|---|\n";
            for (mode, ready, first) in &self.restarts {
                out +=
                    &format!("| {mode:?} | {} | {} | {} |\n", median_max(ready), median_max(first), self.plan.restarts);
            }
        }
        out
    }

    /// The slowest median spawn → ready of a replacement, over the counts,
    /// for `mode`.
    pub fn replacement_ready_ms(&self, mode: StartMode) -> Option<f64> {
        self.of(mode).filter_map(|s| ms_samples(&s.replacements, |w| w.ready).median()).reduce(f64::max)
    }

    /// Mean idle PSS per worker (MiB) for `mode`, by worker count.
    pub fn idle_pss_mib(&self, mode: StartMode) -> Vec<(usize, f64)> {
        self.of(mode).map(|s| (s.count, mean_mib(&s.started, |w| w.pss_idle_kib))).collect()
    }

    /// Median restart to ready (ms) for `mode`.
    pub fn restart_ready_ms(&self, mode: StartMode) -> Option<f64> {
        self.restarts.iter().find(|(m, ..)| *m == mode).and_then(|(_, ready, _)| ready.median())
    }

    fn of(&self, mode: StartMode) -> impl Iterator<Item = &Series> {
        self.series.iter().filter(move |s| s.mode == mode)
    }
}

/// Scenario 8: workers' start-up and memory, and the service's restart,
/// with its targets.
pub(crate) async fn scenario(bench: &crate::Bench, report: &mut Report) -> Result<(), String> {
    let plan = bench.worker_startup.clone();
    let measured = measure(&bench.exe, &bench.work.join("worker-startup"), plan).await?;
    let mut body = measured.tables();
    body += "\nEach count of workers is started at once, as the pool starts them, and each worker is timed from its \
             spawn (or fork request) to ready (LibreOffice started, sandbox entered) and to warm (the pool's Writer, \
             Calc and Impress samples converted). PSS is read once all are warm and again after four seconds idle \
             (an idle worker gives back its freed heap; the zygote, three seconds after its last fork, the code its \
             workers did not take); the zygote's own PSS is shared out over its workers. A restart keeps the data \
             directory, so the probe's answer is read back instead of measured again.\n";
    report.section("8. Worker start-up", body);
    if let Some(ms) = measured.replacement_ready_ms(StartMode::Fork) {
        let goal = "a replacement worker ready within 300 ms (forked, the default)";
        report.target("worker start-up", goal, format!("{ms:.0} ms"), ms <= 300.0);
    }
    for (count, mib) in measured.idle_pss_mib(StartMode::Fork) {
        let goal = format!("{count} workers: mean PSS per worker under 80 MiB (forked, idle)");
        report.target("memory", &goal, format!("{mib:.0} MiB"), mib <= 80.0);
    }
    if let (Some(ms), Some(unoserver)) = (measured.restart_ready_ms(StartMode::Fork), report.unoserver_start_ms) {
        let goal = "restart to ready within 0.25× unoserver's start to first PDF";
        let ratio = ms / unoserver;
        report.target("worker start-up", goal, format!("{ms:.0} ms ({ratio:.2}×)"), ratio <= 0.25);
    }
    Ok(())
}

fn median_max(samples: &Samples) -> String {
    format!("{:.0} ms, {:.0} ms", samples.median().unwrap_or(0.0), samples.percentile(1.0).unwrap_or(0.0))
}

/// One duration of each figure, in milliseconds.
fn ms_samples(figures: &[Started], pick: fn(&Started) -> Duration) -> Samples {
    Samples(figures.iter().map(|s| pick(s).as_secs_f64() * 1000.0).collect())
}

fn mean_mib(figures: &[Started], pick: fn(&Started) -> u64) -> f64 {
    figures.iter().map(pick).sum::<u64>() as f64 / figures.len().max(1) as f64 / 1024.0
}

/// Starts the service once per way of starting workers (so that its data
/// directory holds the probe's answer), then restarts it `count` times,
/// the ways taking turns. Returns ready and first-PDF times per way.
async fn restarts(
    exe: &Path,
    work: &Path,
    modes: &[StartMode],
    count: usize,
) -> Result<Vec<(StartMode, Samples, Samples)>, String> {
    let document = Document { name: "warm.docx".into(), path: work.join("warm.docx") };
    let mut results: Vec<(StartMode, Samples, Samples)> =
        modes.iter().map(|&m| (m, Samples::default(), Samples::default())).collect();
    let data_dir = |mode: StartMode| work.join(format!("service-{mode:?}"));
    let args = |mode: StartMode| {
        let mode = match mode {
            StartMode::Fork => "fork",
            StartMode::Exec => "exec",
        };
        ["--workers", "2", "--worker-start", mode]
    };
    for &mode in modes {
        let _ = std::fs::remove_dir_all(data_dir(mode));
        let first = Service::restart(exe, &data_dir(mode), &args(mode))?;
        first.wait_ready().await?;
    }
    for _ in 0..count {
        for (mode, ready, first_pdf) in &mut results {
            let service = Service::restart(exe, &data_dir(*mode), &args(*mode))?;
            ready.push_duration(service.wait_ready().await?);
            let mut client = peers::connect(service.grpc).await?;
            peers::docconv_convert(&mut client, &document).await?;
            first_pdf.push_duration(service.started().elapsed());
        }
    }
    Ok(results)
}

/// The figures of one worker count and way of starting, over the rounds.
struct Series {
    count: usize,
    mode: StartMode,
    started: Vec<Started>,
    zygote_ready: Samples,
    replacements: Vec<Started>,
}

impl Series {
    fn new(count: usize, mode: StartMode) -> Series {
        Series { count, mode, started: Vec::new(), zygote_ready: Samples::default(), replacements: Vec::new() }
    }
}

/// What one round measured.
struct Round {
    started: Vec<Started>,
    replacement: Started,
    zygote_ready: Option<Duration>,
}

/// Starts `count` workers at once (forked from a new zygote if `spec` says
/// so), warms each up, and reads their PSS once all are warm; then starts
/// one more.
async fn start_together(spec: &WorkerSpec, samples: &Path, count: usize) -> Result<Round, String> {
    let begun = Instant::now();
    let zygote = match spec.start {
        StartMode::Fork => Some(std::sync::Arc::new(Zygote::start(spec).await.map_err(|e| e.to_string())?)),
        StartMode::Exec => None,
    };
    let zygote_ready = zygote.as_ref().map(|_| begun.elapsed());
    let starts = (0..count).map(|_| {
        let (spec, samples, zygote) = (spec.clone(), samples.to_path_buf(), zygote.clone());
        tokio::spawn(async move { start_one(&spec, zygote.as_deref(), &samples).await })
    });
    let mut workers = Vec::new();
    for start in starts.collect::<Vec<_>>() {
        workers.push(start.await.map_err(|e| e.to_string())??);
    }
    // Each worker's PSS, with the zygote's own shared out over them.
    let zygote_pid = zygote.as_ref().and_then(|z| z.pid());
    let pss_of = |workers: &[(Worker, Duration, Duration)]| -> Vec<u64> {
        let zygote_share = zygote_pid.map_or(0, pss_kib) / workers.len().max(1) as u64;
        workers.iter().map(|(worker, ..)| worker.pid().map_or(0, pss_kib) + zygote_share).collect()
    };
    let warm_pss = pss_of(&workers);
    tokio::time::sleep(IDLE).await;
    let idle_pss = pss_of(&workers);
    let started = workers
        .iter()
        .zip(warm_pss.into_iter().zip(idle_pss))
        .map(|((_, ready, warm), (pss_kib, pss_idle_kib))| Started {
            ready: *ready,
            warm: *warm,
            pss_kib,
            pss_idle_kib,
        })
        .collect();
    let (worker, ready, warm) = start_one(spec, zygote.as_deref(), samples).await?;
    let pss = worker.pid().map_or(0, pss_kib);
    tokio::time::sleep(IDLE).await;
    let replacement = Started { ready, warm, pss_kib: pss, pss_idle_kib: worker.pid().map_or(0, pss_kib) };
    Ok(Round { started, replacement, zygote_ready })
}

async fn start_one(
    spec: &WorkerSpec,
    zygote: Option<&Zygote>,
    samples: &Path,
) -> Result<(Worker, Duration, Duration), String> {
    let begun = Instant::now();
    let started = match zygote {
        Some(zygote) => Worker::fork(spec, zygote).await,
        None => Worker::start(spec).await,
    };
    let mut worker = started.map_err(|e| e.to_string())?;
    let ready = begun.elapsed();
    for (name, _) in SAMPLES {
        let request = Convert {
            input_path: samples.join(name).to_string_lossy().into_owned(),
            output_path: worker.scratch_dir().join(format!("{name}.pdf")).to_string_lossy().into_owned(),
            format: "pdf".into(),
            ..Convert::default()
        };
        match worker.convert(request, |_| {}).await.map_err(|e| e.to_string())? {
            Outcome::Done => {}
            Outcome::Failed(failed) => return Err(format!("{name}: {}", failed.detail)),
        }
    }
    Ok((worker, ready, begun.elapsed()))
}

fn summary(figures: &[Started]) -> String {
    let ms = |pick: fn(&Started) -> Duration| median_max(&ms_samples(figures, pick));
    let (warm, idle) = (mean_mib(figures, |s| s.pss_kib), mean_mib(figures, |s| s.pss_idle_kib));
    format!("{} | {} | {warm:.0} MiB | {idle:.0} MiB", ms(|s| s.ready), ms(|s| s.warm))
}
