//! The worker pool: one runner per worker slot takes jobs from the queue
//! and supervises the LibreOffice process that converts them.
//!
//! Supervision rules:
//! - every conversion has a deadline; past it the worker is killed and the
//!   job fails with DEADLINE_EXCEEDED;
//! - a worker that dies mid-job is replaced and the job retried once on the
//!   fresh worker, then failed;
//! - a cancelled running job has its worker killed;
//! - a worker whose memory passes the limit while converting is killed and
//!   its job fails (no retry: the document would do it again);
//! - a worker that has converted many documents or grown large is replaced
//!   by a warmed-up successor, which takes over only once it is ready, so no
//!   job waits for a cold start;
//! - a job store that does not answer is asked again for a while (see
//!   `patience`), then the job goes back to the queue: its document is not
//!   at fault.

use super::failure::Failure;
use super::files;
use super::formats::{self, Kind, Targets};
use super::html;
use super::jobs::{Claim, Ending, Jobs};
use super::patience;
use super::postprocess;
use super::probe;
use super::workers::{Launcher, WorkerProcess};
use docconv::metrics::Active;
use docconv::proto::v1::{Output, Stage, StageTimings};
use docconv_backend::BackendError;
use docconv_worker::proto::{Convert, Sandbox};
use docconv_worker::{Outcome, Progress, WorkerError};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub workers: usize,
    pub job_timeout: Duration,
    pub max_jobs_per_worker: u32,
    pub max_worker_rss: u64,
    /// Resident memory a worker may reach while converting.
    pub worker_memory_limit: u64,
    /// Where what the probe found is kept across restarts; `None` probes
    /// at every start.
    pub probe_cache: Option<probe::ProbeCache>,
    /// How long a job waits for an unavailable job store before it goes
    /// back to the queue (`patience::STORE_PATIENCE` in the service).
    pub store_patience: Duration,
}

mod prepare;
#[cfg(test)]
mod tests;

use prepare::{Document, Prepared, prepare_all};

/// A worker as the pool holds it.
type Worker = Box<dyn WorkerProcess>;

pub struct Pool {
    jobs: Arc<Jobs>,
    launcher: Arc<dyn Launcher>,
    /// Where the samples for warming up and probing are.
    samples_dir: PathBuf,
    config: PoolConfig,
    /// How many slots have had a warm worker; health reports ready when all have.
    warm: watch::Sender<usize>,
    /// What documents can become, once the first workers have probed it.
    targets: watch::Sender<Option<Arc<Targets>>>,
    /// The probe so far: the targets found, how many runners have done
    /// their share, and whether a worker died during it.
    probed: std::sync::Mutex<Probed>,
    /// How the workers are confined, as the first one reported it.
    sandbox: watch::Sender<Option<Sandbox>>,
}

/// The probe as the runners' shares come in.
#[derive(Default)]
struct Probed {
    targets: Targets,
    shares: usize,
    deaths: usize,
}

/// A started pool: the runners, the count of warm slots, and the targets
/// the probe found (`None` until it has run).
pub struct Running {
    pub runners: Vec<JoinHandle<()>>,
    pub warm: watch::Receiver<usize>,
    pub targets: watch::Receiver<Option<Arc<Targets>>>,
    /// How workers are confined (`None` until the first has started).
    pub sandbox: watch::Receiver<Option<Sandbox>>,
}

impl Pool {
    pub fn start(jobs: Arc<Jobs>, launcher: Arc<dyn Launcher>, config: PoolConfig) -> std::io::Result<Running> {
        let samples_dir = launcher.samples_dir();
        std::fs::create_dir_all(&samples_dir)?;
        probe::write_samples(&samples_dir)?;
        let (warm, warm_rx) = watch::channel(0);
        let (targets, targets_rx) = watch::channel(None);
        let probed = std::sync::Mutex::new(Probed::default());
        // Kept from a start with this very LibreOffice: no probe needed.
        if let Some(kept) = config.probe_cache.as_ref().and_then(|cache| cache.load()) {
            tracing::info!(targets = ?kept, "what LibreOffice can export, as probed at an earlier start");
            targets.send_replace(Some(Arc::new(kept)));
        }
        let (sandbox, sandbox_rx) = watch::channel(None);
        let pool = Arc::new(Pool { jobs, launcher, samples_dir, config, warm, targets, probed, sandbox });
        let runners = (0..pool.config.workers).map(|slot| tokio::spawn(pool.clone().runner(slot))).collect();
        Ok(Running { runners, warm: warm_rx, targets: targets_rx, sandbox: sandbox_rx })
    }

    async fn runner(self: Arc<Self>, slot: usize) {
        let Some(mut worker) = self.start_worker().await else {
            return;
        };
        if self.targets.borrow().is_none() {
            self.probe_share(slot, &mut worker).await;
        }
        self.warm.send_modify(|n| *n += 1);
        let mut successor: Option<JoinHandle<Option<Worker>>> = None;
        loop {
            tokio::select! {
                biased;
                ready = async { successor.as_mut().expect("guarded").await }, if successor.is_some() => {
                    successor = None;
                    if let Ok(Some(fresh)) = ready {
                        tracing::info!(old = ?worker.pid(), new = ?fresh.pid(), "worker replaced");
                        worker = fresh;
                    }
                }
                claim = self.jobs.next() => {
                    let Some(claim) = claim else { break };
                    let id = claim.id.clone();
                    // In a task of its own, so that a bug (a panic) while
                    // converting ends that job, not this runner.
                    let pool = self.clone();
                    let span = claim.span.clone();
                    let mut job = AbortOnDrop(tokio::spawn(async move { pool.run(claim, worker).await }.instrument(span)));
                    worker = match (&mut job.0).await {
                        Ok(Some(next)) => next,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(job = %id, "converting the job failed unexpectedly ({e}); it fails, and its worker is replaced");
                            self.jobs.abandon(&id).await;
                            self.jobs.metrics().restarted("bug");
                            let Some(fresh) = self.start_worker().await else { break };
                            fresh
                        }
                    };
                    if successor.is_none() && self.worn_out(&worker) {
                        let pool = self.clone();
                        self.jobs.metrics().restarted("recycled");
                        successor = Some(tokio::spawn(async move { pool.start_worker().await }));
                    }
                }
            }
        }
    }

    /// Probes this slot's share of the document kinds (the kinds are dealt
    /// out over the slots, so the probe takes a fraction of the time), and
    /// publishes the targets once every slot has done its share.
    async fn probe_share(&self, slot: usize, worker: &mut Worker) {
        let slots = self.config.workers;
        let kinds: Vec<Kind> =
            Kind::OFFICE.into_iter().enumerate().filter(|(i, _)| i % slots == slot).map(|(_, k)| k).collect();
        let mut deaths = 0;
        let replace = || {
            deaths += 1;
            self.start_worker()
        };
        let found = probe::find_targets(worker, &self.samples_dir, &kinds, replace).await;
        let mut probed = self.probed.lock().unwrap();
        probed.targets.extend(found);
        probed.shares += 1;
        probed.deaths += deaths;
        if probed.shares == slots {
            tracing::info!(targets = ?probed.targets, "what LibreOffice can export");
            if let Some(cache) = self.config.probe_cache.as_ref().filter(|_| probed.deaths == 0) {
                cache.store(&probed.targets);
            }
            self.targets.send_replace(Some(Arc::new(probed.targets.clone())));
        }
    }

    fn worn_out(&self, worker: &Worker) -> bool {
        worker.jobs_done() >= self.config.max_jobs_per_worker
            || worker.rss_bytes().is_some_and(|rss| rss > self.config.max_worker_rss)
    }

    /// Starts and warms up a worker, retrying with backoff while LibreOffice
    /// fails to start. `None` once the service is shutting down.
    async fn start_worker(&self) -> Option<Worker> {
        let mut backoff = Duration::from_millis(500);
        loop {
            if !self.jobs.is_accepting() {
                return None;
            }
            match self.launcher.start().await {
                Ok(mut worker) => match probe::warm_up(&mut worker, &self.samples_dir).await {
                    Ok(()) => {
                        self.report_sandbox(worker.sandbox());
                        return Some(worker);
                    }
                    Err(e) => tracing::error!("worker warm-up failed: {e}"),
                },
                Err(e) => tracing::error!("{e}"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Runs a stage of a job that needs no worker (preparing inputs,
    /// post-processing) unless the job's deadline passes or it is
    /// cancelled first; dropping the stage stops its tools.
    async fn within<T>(&self, claim: &Claim, deadline: Instant, stage: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::select! {
            result = tokio::time::timeout_at(deadline.into(), stage) => result.map_err(|_| {
                tracing::warn!(job = %claim.id, limit_secs = self.config.job_timeout.as_secs(), "the job passed its deadline");
                Failure::TimedOut(self.config.job_timeout)
            }),
            () = claim.cancel.notified() => Err(Failure::Cancelled),
        }
    }

    /// Runs a call to the job store, trying again while the store is
    /// unavailable (see `patience`), unless the job is cancelled first.
    /// Another error fails the job as `failure`, with the cause logged.
    async fn with_store<T, F: Future<Output = docconv_backend::Result<T>>>(
        &self,
        claim: &Claim,
        doing: &str,
        failure: Failure,
        call: impl FnMut() -> F,
    ) -> Result<T, Stop> {
        let doing = format!("job {}: {doing}", claim.id);
        let unavailable = |e: &BackendError| matches!(e, BackendError::Unavailable(_));
        let tried = patience::while_unavailable(self.config.store_patience, &doing, unavailable, call);
        tokio::select! {
            result = tried => result.map_err(|e| match e {
                BackendError::Unavailable(_) => Stop::StoreUnavailable,
                e => {
                    tracing::error!("{doing}: {e}");
                    Stop::Failed(failure)
                }
            }),
            () = claim.cancel.notified() => Err(Stop::Failed(Failure::Cancelled)),
        }
    }

    /// Ends the job as failed, or hands it back to the queue when the job
    /// store stayed unavailable: the job is not at fault, and runs again
    /// here or on another node once the store answers.
    async fn stop(&self, claim: &mut Claim, stop: Stop, timings: StageTimings) {
        match stop {
            Stop::Failed(failure) => self.jobs.finish(claim, Ending::Failed(failure), timings).await,
            Stop::StoreUnavailable => self.jobs.requeue(claim).await,
        }
    }

    /// Publishes (and logs, once) how the workers are confined. Every
    /// worker runs the same code on the same kernel, so the first report
    /// stands for all; a later one that differs is logged too.
    fn report_sandbox(&self, sandbox: &Sandbox) {
        let changed = self.sandbox.send_if_modified(|known| {
            let differs = known.as_ref() != Some(sandbox);
            if differs {
                *known = Some(sandbox.clone());
            }
            differs
        });
        if !changed {
            return;
        }
        let none = "none";
        let layer = |s: &str| {
            if s.is_empty() { none.to_owned() } else { s.to_owned() }
        };
        let (network, filesystem, syscalls) =
            (layer(&sandbox.network), layer(&sandbox.filesystem), layer(&sandbox.syscalls));
        if sandbox.problems.is_empty() {
            tracing::info!(network, filesystem, syscalls, "workers are sandboxed");
        } else {
            tracing::warn!(network, filesystem, syscalls, problems = ?sandbox.problems, "workers are only partly sandboxed");
        }
    }

    /// Runs one job to its end. Returns the worker to use next (the same
    /// one, or a replacement when it had to be killed).
    ///
    /// Each attempt has one deadline for all of it: preparing the inputs,
    /// converting every document, merging and post-processing. Cancellation
    /// stops any of those stages too.
    async fn run(&self, mut claim: Claim, mut worker: Worker) -> Option<Worker> {
        let _running = Active::of(&self.jobs.metrics().running);
        let blobs = self.jobs.blobs();
        let names = prepare::input_names(&claim);
        let checkout = || blobs.checkout(&claim.id, &names);
        let folder = match self.with_store(&claim, "checking out the job's files", Failure::Unreadable, checkout).await
        {
            Ok(folder) => folder,
            Err(stop) => {
                self.stop(&mut claim, stop, StageTimings::default()).await;
                return Some(worker);
            }
        };
        let mut deadline = Instant::now() + self.config.job_timeout;
        let prepared = self.within(&claim, deadline, prepare_all(folder, &names, &claim)).await;
        let prepared = match prepared.and_then(|prepared| prepared) {
            Ok(prepared) => prepared,
            Err(failure) => {
                self.jobs.finish(&mut claim, Ending::Failed(failure), StageTimings::default()).await;
                return Some(worker);
            }
        };
        loop {
            let (attempt, mut timings) = self.convert_all(&claim, &mut worker, &prepared.documents, deadline).await;
            // A worker stopped mid-conversion is in an unknown state; one
            // that finished its part while post-processing ran out of time
            // is fine.
            let stopped = match attempt {
                Attempt::Died(_) => Some("died"),
                Attempt::TimedOut => Some("timed_out"),
                Attempt::Cancelled => Some("cancelled"),
                Attempt::OutOfMemory => Some("out_of_memory"),
                Attempt::Done | Attempt::Refused(_) => None,
            };
            let ending = match attempt {
                Attempt::Done => {
                    let started = Instant::now();
                    let made = self.within(&claim, deadline, make_output(&prepared, &claim)).await;
                    let ending = match made.and_then(|made| made) {
                        Ok((output, file)) => {
                            let keep = || blobs.keep(&claim.id, std::slice::from_ref(&file));
                            let kept = self.with_store(&claim, "keeping the output", Failure::ExportFailed, keep).await;
                            kept.map(|()| Ending::Succeeded(output, file))
                        }
                        Err(failure) => Ok(Ending::Failed(failure)),
                    };
                    timings.store_ms = started.elapsed().as_millis() as u64;
                    match ending {
                        Ok(ending) => ending,
                        Err(stop) => {
                            self.stop(&mut claim, stop, timings).await;
                            return Some(worker);
                        }
                    }
                }
                Attempt::Refused(failure) => Ending::Failed(failure),
                Attempt::Died(e) if claim.worker_deaths == 0 => {
                    tracing::warn!(job = %claim.id, "{e}; retrying on a fresh worker");
                    self.jobs.metrics().restarted("died");
                    drop(worker);
                    worker = self.start_worker().await?;
                    self.jobs.retry(&mut claim).await;
                    // The new attempt gets the whole deadline again.
                    deadline = Instant::now() + self.config.job_timeout;
                    continue;
                }
                Attempt::Died(e) => {
                    tracing::warn!(job = %claim.id, "{e}; giving up");
                    Ending::Failed(Failure::Crashed { attempts: claim.attempts })
                }
                Attempt::TimedOut => Ending::Failed(Failure::TimedOut(self.config.job_timeout)),
                Attempt::OutOfMemory => Ending::Failed(Failure::OutOfMemory { limit: self.config.worker_memory_limit }),
                Attempt::Cancelled => Ending::Failed(Failure::Cancelled),
            };
            if let Some(reason) = stopped {
                // Kill first, so a hung LibreOffice stops burning CPU while
                // the job's end is recorded.
                worker.kill();
                self.jobs.metrics().restarted(reason);
            }
            self.jobs.finish(&mut claim, ending, timings).await;
            return if stopped.is_some() {
                drop(worker);
                self.start_worker().await
            } else {
                Some(worker)
            };
        }
    }

    /// Converts every document of the job in order (one, or several for a
    /// merge), stopping at the first that does not convert. PDF inputs are
    /// ready already: the worker only sees the others.
    async fn convert_all(
        &self,
        claim: &Claim,
        worker: &mut Worker,
        documents: &[Document],
        deadline: Instant,
    ) -> (Attempt, StageTimings) {
        let mut total = StageTimings::default();
        let converted = documents.iter().filter(|d| d.convert.is_some()).count() as u32;
        let mut share = Share { index: 0, count: converted };
        for (index, document) in documents.iter().enumerate() {
            let Some(request) = &document.convert else { continue };
            let (attempt, timings) = self.attempt(claim, worker, request.clone(), share, deadline).await;
            share.index += 1;
            total.load_ms += timings.load_ms;
            total.export_ms += timings.export_ms;
            match attempt {
                Attempt::Done => continue,
                Attempt::Refused(failure) if documents.len() > 1 => {
                    let name = document.name.clone();
                    let failure = Failure::InDocument { position: index + 1, name, failure: Box::new(failure) };
                    return (Attempt::Refused(failure), total);
                }
                other => return (other, total),
            }
        }
        if converted == 0 {
            // Only PDF inputs: nothing for LibreOffice, straight to the tools.
            claim.progress(Stage::Storing, 90, Some(total));
        }
        (Attempt::Done, total)
    }

    /// One conversion on `worker`, bounded by the deadline and by cancellation.
    async fn attempt(
        &self,
        claim: &Claim,
        worker: &mut Worker,
        request: Convert,
        share: Share,
        deadline: Instant,
    ) -> (Attempt, StageTimings) {
        let started = Instant::now();
        let mut loaded_at = None;
        let id = claim.id.as_str();
        let pid = worker.pid();
        let mut on_progress = |progress| match progress {
            // Loading is the first 60 % of the bar, exporting the next 30 %.
            Progress::Loading { percent } => claim.progress(Stage::Loading, share.of(percent * 60 / 100), None),
            Progress::Loaded => {
                let load_ms = started.elapsed().as_millis() as u64;
                loaded_at = Some(Instant::now());
                let timings = StageTimings { load_ms, ..Default::default() };
                claim.progress(Stage::Exporting, share.of(60), Some(timings));
            }
        };
        let convert = worker.convert(request, &mut on_progress);
        let attempt = tokio::select! {
            result = tokio::time::timeout_at(deadline.into(), convert) => match result {
                Ok(Ok(Outcome::Done)) => Attempt::Done,
                Ok(Ok(Outcome::Failed(failed))) => {
                    tracing::info!(job = id, detail = %failed.detail, "LibreOffice refused the document");
                    Attempt::Refused(Failure::from_worker(failed.reason()))
                }
                Ok(Err(e)) => Attempt::Died(e),
                Err(_) => {
                    tracing::warn!(job = id, limit_secs = self.config.job_timeout.as_secs(), "the conversion passed its deadline; killing the worker");
                    Attempt::TimedOut
                }
            },
            () = claim.cancel.notified() => Attempt::Cancelled,
            () = memory_passes(pid, self.config.worker_memory_limit) => {
                tracing::warn!(job = id, limit_mib = self.config.worker_memory_limit >> 20, "the worker passed its memory limit; killing it");
                Attempt::OutOfMemory
            }
        };
        let total = started.elapsed();
        let load = loaded_at.map_or(total, |at| at - started);
        let timings = StageTimings {
            queue_wait_ms: 0,
            load_ms: load.as_millis() as u64,
            export_ms: (total - load).as_millis() as u64,
            store_ms: 0,
        };
        if matches!(attempt, Attempt::Done) && share.is_last() {
            claim.progress(Stage::Storing, 90, Some(timings));
        }
        (attempt, timings)
    }
}

/// A job's task, stopped with its runner (a runner stopped at shutdown
/// must stop the conversion it was waiting for, and kill its worker).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Which of a job's documents a conversion is, to spread the progress bar
/// over all of them.
#[derive(Clone, Copy)]
struct Share {
    index: u32,
    count: u32,
}

impl Share {
    /// The overall percent for `percent` of this document's 0–90 %.
    fn of(self, percent: u32) -> u32 {
        (self.index * 90 + percent) / self.count
    }

    fn is_last(self) -> bool {
        self.index + 1 == self.count
    }
}

enum Attempt {
    Done,
    Refused(Failure),
    Died(WorkerError),
    TimedOut,
    Cancelled,
    OutOfMemory,
}

/// How often a converting worker's memory is read. A decompression bomb
/// grows by a few hundred MiB a second at most, so the limit is overshot by
/// little; reading `/proc` this often costs nothing measurable.
const MEMORY_CHECK: Duration = Duration::from_millis(50);

/// Resolves once the worker `pid` holds more than `limit` bytes resident.
/// Never resolves for an unknown pid (the worker is gone; its pipe says so).
async fn memory_passes(pid: Option<u32>, limit: u64) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let mut ticks = tokio::time::interval(MEMORY_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if docconv_worker::rss_of(pid).is_some_and(|rss| rss > limit) {
            return;
        }
    }
}

/// Why a job stopped short of a conversion's end.
enum Stop {
    Failed(Failure),
    /// The job store did not answer within the pool's patience.
    StoreUnavailable,
}

/// Merges (for several documents), post-processes, hashes and measures
/// the output, under a name of its own in the job's folder (see
/// `files::result`). Returns its description and that name.
async fn make_output(prepared: &Prepared, claim: &Claim) -> Result<(Output, String), Failure> {
    let folder = &prepared.folder;
    let title_bookmarks = claim.options.pdf.as_ref().is_some_and(|p| p.title_bookmarks);
    let titles: Vec<String> =
        prepared.documents.iter().map(|d| formats::stem(&d.name).to_owned()).filter(|_| title_bookmarks).collect();
    let written = match prepared.documents.as_slice() {
        [single] => {
            if let Some(title) = titles.first().filter(|_| claim.target_format == "pdf") {
                postprocess::entitle(&single.output, title).await?;
            }
            single.output.clone()
        }
        parts => {
            let merged = folder.join(files::output("pdf"));
            let parts: Vec<PathBuf> = parts.iter().map(|d| d.output.clone()).collect();
            postprocess::merge(&claim.options, &parts, title_bookmarks.then_some(&titles[..]), &merged).await?;
            merged
        }
    };
    let (path, extension, page_count) = if claim.target_format == "pdf" {
        let product = postprocess::finish(&claim.options, &written, &prepared.attached, &prepared.marks).await?;
        (product.path, product.extension, product.page_count)
    } else {
        (written.clone(), claim.target_format.as_str(), 0)
    };
    let file_name = formats::output_name(&claim.file_name, extension);
    let extension = extension.to_owned();
    let kept = files::result(&extension);
    let result = folder.join(&kept);
    let output = tokio::task::spawn_blocking(move || -> std::io::Result<Output> {
        if extension == "html" {
            html::inline_images(&path)?;
        }
        std::fs::rename(&path, &result)?;
        let data = std::fs::read(&result)?;
        Ok(Output {
            file_name,
            content_type: formats::content_type(&extension).into(),
            size_bytes: data.len() as u64,
            sha256: docconv::ids::hex(&Sha256::digest(&data)),
            page_count,
        })
    })
    .await
    .map_err(|_| Failure::ExportFailed)?
    .map_err(|e| {
        tracing::error!(job = %claim.id, "cannot read the output: {e}");
        Failure::ExportFailed
    })?;
    Ok((output, kept))
}
