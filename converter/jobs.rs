//! The job hub: the converter's view of jobs, over the job backend.
//!
//! Every job lives in the backend: its record (whose revision is the
//! `sequence` clients see), its place in the queue, and the events its
//! watchers follow. This node keeps only what is its own: uploads
//! streaming in, the queue places they hold, and, for each job it runs,
//! the lease and a keeper task that extends it, publishes progress and
//! listens for cancellation.
//!
//! Transitions that matter after a crash (queued, running, retried,
//! cancel asked, ended) are lasting writes; progress and queue positions
//! are passing ones. Every write is a compare-and-set, so writers racing
//! on one job (a cancel against the end, positions against the start)
//! never undo each other.
//!
//! The lock is a std mutex: it is held for map edits only, never across an
//! await or any I/O.

use super::error::{Error, Result};
use super::failure::Failure;
use super::files;
use super::metrics::{Ended, Input, Metrics};
use super::patience::{self, STORE_PATIENCE};
use super::webhooks;
use docconv::proto::v1::{ConversionOptions, Job, JobState, Output, Progress, Stage, StageTimings, WebhookState};
use docconv::trace::TraceParent;
use docconv_backend::{
    Backend, BackendError, Blobs, Created, Durability, Events, Lease, Modified, StoredInput, StoredJob,
};
use docconv_backend::{has_ended, modify, modify_from, revision_of};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// When a client refused for a full queue is told to try again: about the
/// time a few small documents take.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(5);

/// A lease time for tests. The service's is `--job-lease-secs`; the
/// keeper extends a lease three times as often, so only a node that
/// stopped (or a runtime stalled that long) loses a job to another worker.
#[cfg(test)]
pub const LEASE: Duration = Duration::from_secs(30);

/// How long a runner waits before asking the backend for work again after
/// it failed to answer.
const BACKEND_RETRY: Duration = Duration::from_secs(1);

pub struct Jobs {
    backend: Backend,
    inner: Mutex<Inner>,
    capacity: usize,
    /// How old files without a record must be to be swept: zero when this
    /// node is the only one (its own uploads in progress are known), more
    /// when other nodes' uploads may be about to be recorded.
    orphan_age: Duration,
    positions: Arc<positions::Positions>,
    metrics: Arc<Metrics>,
}

mod positions;
#[cfg(test)]
mod tests;

struct Inner {
    /// Uploads in progress that have a place in the queue held for them.
    reserved: usize,
    /// Ids of uploads streaming in: their directories have no record yet
    /// and must not be swept.
    uploading: HashSet<String>,
    accepting: bool,
    last_order: u64,
    /// The leases of the jobs this node is running, to hand back if it
    /// stops before they end.
    leases: HashMap<String, Lease>,
}

/// A job handed to a runner, with the lease that makes it this node's.
pub struct Claim {
    pub id: String,
    /// As submitted, passwords included.
    pub options: ConversionOptions,
    pub file_name: String,
    pub input_extension: String,
    /// The documents after the first, for a merge.
    pub more_inputs: Vec<StoredInput>,
    pub target_format: String,
    /// Starts of the job, this one included (as clients see them).
    pub attempts: u32,
    /// Workers that died converting it before; one such death earns a
    /// retry.
    pub worker_deaths: u32,
    /// When this node took it, for the conversion's duration.
    claimed_at: Instant,
    /// The span of its work and log lines, in the trace it was submitted
    /// in (see `docconv::trace`).
    pub span: tracing::Span,
    /// Notified when the job is cancelled while running (or stops being
    /// this node's).
    pub cancel: Arc<Notify>,
    lease: Lease,
    queue_wait_ms: u64,
    progress: watch::Sender<Option<Reported>>,
    /// Set when the lease was lost: the job is another worker's now, and
    /// this one must not record its end.
    lost: Arc<AtomicBool>,
    /// Resolves once the start is recorded.
    started: Option<oneshot::Receiver<()>>,
    stop: Option<oneshot::Sender<()>>,
    keeper: Option<JoinHandle<()>>,
}

/// The latest progress of a running job, for its keeper to publish.
#[derive(Clone, Copy)]
struct Reported {
    stage: Stage,
    percent: u32,
    timings: Option<StageTimings>,
}

impl Claim {
    /// Publishes progress (coalesced: a watcher may skip a step, never
    /// see an older one after a newer).
    pub fn progress(&self, stage: Stage, percent: u32, timings: Option<StageTimings>) {
        self.progress.send_modify(|reported| {
            let timings = timings.or(reported.and_then(|r| r.timings));
            *reported = Some(Reported { stage, percent, timings });
        });
    }

    /// Waits until the start is recorded, so a later write lands after it.
    async fn started(&mut self) {
        if let Some(started) = self.started.take() {
            let _ = started.await;
        }
    }

    /// Stops the keeper once it has recorded the start and published what
    /// it was given.
    async fn settle(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.await;
        }
    }
}

impl Drop for Claim {
    /// A runner dropped mid-job (the service stopping past its grace)
    /// stops its keeper: the lease then runs out and the job goes to the
    /// next worker, here after a restart or on another node.
    fn drop(&mut self) {
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
    }
}

/// How a running job ended.
#[derive(Clone)]
pub enum Ending {
    /// The result's description, and its name among the job's files.
    Succeeded(Output, String),
    Failed(Failure),
}

impl Ending {
    /// The job's state after this end.
    fn state(&self) -> JobState {
        match self {
            Ending::Succeeded(..) => JobState::Succeeded,
            Ending::Failed(Failure::Cancelled) => JobState::Cancelled,
            Ending::Failed(_) => JobState::Failed,
        }
    }
}

/// A place in the queue, held while an upload is recorded.
pub struct Reservation<'a> {
    jobs: &'a Jobs,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.jobs.lock().reserved -= 1;
    }
}

/// The directory of an upload streaming in. Unless `keep` is called once
/// the job is recorded, dropping it deletes the directory: a refused, broken
/// or abandoned upload (the client went away mid-stream) leaves nothing.
pub struct PendingUpload<'a> {
    jobs: &'a Jobs,
    id: String,
    kept: bool,
}

impl PendingUpload<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The upload failed or was refused: its files go now, before the
    /// caller answers (dropping it would delete them a moment later).
    pub async fn discard(mut self) {
        self.kept = true;
        if let Err(e) = self.jobs.backend.blobs.delete(&self.id).await {
            tracing::warn!(job = %self.id, "cannot delete a refused upload: {e}");
        }
    }

    /// The job is recorded; its directory is its own from now on.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PendingUpload<'_> {
    fn drop(&mut self) {
        if !self.kept {
            // The client went away mid-upload (this call's future was dropped).
            let (blobs, id) = (self.jobs.backend.blobs.clone(), self.id.clone());
            tokio::spawn(async move { blobs.delete(&id).await });
        }
        self.jobs.lock().uploading.remove(&self.id);
    }
}

/// What a new watcher gets: the current state, and the changes after it
/// (none for a job that has ended).
pub struct Watch {
    pub snapshot: Job,
    pub updates: Option<Events>,
}

impl Jobs {
    pub fn new(backend: Backend, capacity: usize, orphan_age: Duration) -> Jobs {
        Jobs {
            orphan_age,
            backend,
            inner: Mutex::new(Inner {
                reserved: 0,
                uploading: HashSet::new(),
                accepting: true,
                last_order: 0,
                leases: HashMap::new(),
            }),
            capacity,
            positions: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts into `metrics` (which a registry may serve) from now on.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Jobs {
        let positions = Arc::new(positions::Positions::counting_into(metrics.queue_depth.clone()));
        Jobs { metrics, positions, ..self }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The files of jobs.
    pub fn blobs(&self) -> &dyn Blobs {
        &*self.backend.blobs
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gets the jobs waiting since before this start ready to run again:
    /// a job that was running when its node stopped is queued again (its
    /// lease died with the node), and one whose input is gone fails.
    /// Returns how many wait.
    pub async fn recover(&self) -> Result<usize> {
        let waiting = self.backend.queue.waiting().await?;
        let mut count = 0;
        for id in waiting {
            let Some(record) = self.backend.records.get(&id).await? else {
                continue;
            };
            if self.backend.blobs.open(&id, &files::input(&record.input_extension), 0).await?.is_none() {
                tracing::warn!(job = %id, "input missing after restart");
                if self.backend.queue.remove(&id).await? {
                    self.end(&id, Ending::Failed(Failure::Unreadable), None).await?;
                }
                continue;
            }
            let order = record.order;
            modify(&*self.backend.records, &id, Durability::Lasting, |record| {
                let job = record.job.get_or_insert_default();
                if job.state() == JobState::Queued && job.progress.is_none() && job.start_time.is_none() {
                    return false;
                }
                job.set_state(JobState::Queued);
                job.progress = None;
                job.start_time = None;
                true
            })
            .await?;
            let mut inner = self.lock();
            inner.last_order = inner.last_order.max(order);
            count += 1;
        }
        self.positions.refresh(&self.backend).await;
        Ok(count)
    }

    /// Marks `id`'s directory as an upload in progress (see `PendingUpload`).
    pub fn begin_upload(&self, id: String) -> PendingUpload<'_> {
        self.lock().uploading.insert(id.clone());
        PendingUpload { jobs: self, id, kept: false }
    }

    /// Refuses early when the queue has no room, without holding a place:
    /// an upload holds one only once it has fully arrived (`reserve`), so
    /// slow uploads cannot fill the queue.
    pub async fn check_room(&self) -> Result<()> {
        drop(self.reserve().await?);
        Ok(())
    }

    /// Deletes job directories that have no record and no upload streaming
    /// into them: the remains of an upload cut off by a crash. Returns how
    /// many.
    pub async fn sweep_orphans(&self) -> Result<usize> {
        let names = self.backend.blobs.ids(self.orphan_age).await?;
        let mut swept = 0;
        for name in names {
            if self.lock().uploading.contains(&name) {
                continue;
            }
            if self.backend.records.get(&name).await?.is_some() {
                continue;
            }
            // An upload may have begun and been recorded since the listing.
            if self.lock().uploading.contains(&name) {
                continue;
            }
            tracing::info!(dir = %name, "removing a job directory without a record (an upload cut off)");
            self.backend.blobs.delete(&name).await?;
            swept += 1;
        }
        Ok(swept)
    }

    /// Holds a place in the queue for an upload that has arrived.
    pub async fn reserve(&self) -> Result<Reservation<'_>> {
        let waiting = self.backend.queue.waiting_count().await?;
        let mut inner = self.lock();
        if !inner.accepting {
            return Err(Error::Unavailable("the service is shutting down; retry on another instance".into()));
        }
        if waiting + inner.reserved >= self.capacity {
            return Err(Error::Overloaded {
                message: format!("the queue is full ({} jobs); retry later", self.capacity),
                retry_after: QUEUE_FULL_RETRY,
            });
        }
        inner.reserved += 1;
        Ok(Reservation { jobs: self })
    }

    /// Records a new job whose input is already on disk and queues it.
    /// If its request id was used before, returns that job instead (the
    /// caller's `PendingUpload` deletes the new input).
    pub async fn enqueue(&self, reservation: Reservation<'_>, mut record: StoredJob) -> Result<Job> {
        {
            let mut inner = self.lock();
            let order = (inner.last_order + 1).max(now_micros());
            inner.last_order = order;
            record.order = order;
        }
        let job = record.job.get_or_insert_default();
        job.set_state(JobState::Queued);
        job.create_time = Some(now_timestamp());
        let id = job.id.clone();
        let record_input = record.input_extension.clone();
        match self.backend.records.create(record).await? {
            Created::Existing(existing) => {
                drop(reservation);
                return Ok(existing.job.unwrap_or_default());
            }
            Created::New(_) => {}
        }
        self.backend.queue.push(&id).await?;
        self.metrics.submitted.get_or_create(&Input { input: record_input }).inc();
        // The held place becomes the job's own.
        drop(reservation);
        self.positions.refresh(&self.backend).await;
        self.get(&id).await
    }

    /// Waits for the next queued job, leases it and marks it running.
    /// `None` once the service is shutting down.
    pub async fn next(&self) -> Option<Claim> {
        loop {
            let lease = match self.backend.queue.lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => return None,
                Err(e) => {
                    // A store unavailable for now (a leader being elected)
                    // is expected in a cluster; the next try mends it.
                    if matches!(e, BackendError::Unavailable(_)) {
                        tracing::warn!("cannot take a job from the queue: {e}");
                    } else {
                        tracing::error!("cannot take a job from the queue: {e}");
                    }
                    tokio::time::sleep(BACKEND_RETRY).await;
                    continue;
                }
            };
            match self.claim(lease).await {
                Ok(Some(claim)) => return Some(claim),
                Ok(None) => {}
                Err(e) => tracing::error!("cannot start a job: {e:?}"),
            }
        }
    }

    /// Makes a leased job this runner's. `None` when there is nothing to
    /// run: the job is gone, has ended, or was cancelled before it started.
    async fn claim(&self, lease: Lease) -> Result<Option<Claim>> {
        let backend = &self.backend;
        let Some(record) = backend.records.get(&lease.id).await? else {
            let _ = backend.queue.ack(&lease).await;
            return Ok(None);
        };
        if has_ended(&record) {
            let _ = backend.queue.ack(&lease).await;
            return Ok(None);
        }
        if record.cancel_requested {
            self.end(&lease.id, Ending::Failed(Failure::Cancelled), None).await?;
            let _ = backend.queue.ack(&lease).await;
            return Ok(None);
        }
        let job = record.job.clone().unwrap_or_default();
        let queue_wait_ms = job
            .create_time
            .and_then(|created| SystemTime::try_from(created).ok())
            .and_then(|created| created.elapsed().ok())
            .unwrap_or_default()
            .as_millis() as u64;
        self.metrics.waited(Duration::from_millis(queue_wait_ms));
        let cancel = Arc::new(Notify::new());
        let lost = Arc::new(AtomicBool::new(false));
        let (progress, reported) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let (started_tx, started) = oneshot::channel();
        let keeper = Keeper {
            backend: backend.clone(),
            positions: self.positions.clone(),
            lease: lease.clone(),
            queue_wait_ms,
            cancel: cancel.clone(),
            lost: lost.clone(),
            last: Some(record.clone()),
        };
        let span = job_span(&lease.id, TraceParent::parse(&record.traceparent));
        let keeper = tokio::spawn(keeper.run(reported, started_tx, stopped).instrument(span.clone()));
        self.lock().leases.insert(lease.id.clone(), lease.clone());
        Ok(Some(Claim {
            id: lease.id.clone(),
            options: record.options.unwrap_or_default(),
            file_name: job.file_name,
            input_extension: record.input_extension,
            more_inputs: record.more_inputs,
            target_format: job.target_format,
            attempts: job.attempts + 1,
            worker_deaths: record.worker_deaths,
            claimed_at: Instant::now(),
            span,
            cancel,
            lease,
            queue_wait_ms,
            progress,
            lost,
            started: Some(started),
            stop: Some(stop),
            keeper: Some(keeper),
        }))
    }

    /// Records another attempt of a running job (after its worker died).
    pub async fn retry(&self, claim: &mut Claim) {
        claim.started().await;
        claim.attempts += 1;
        claim.worker_deaths += 1;
        let (attempts, worker_deaths) = (claim.attempts, claim.worker_deaths);
        let retried = modify(&*self.backend.records, &claim.id, Durability::Lasting, |record| {
            let job = record.job.get_or_insert_default();
            if job.state().is_terminal() {
                return false;
            }
            job.attempts = attempts;
            job.progress = Some(Progress { stage: Stage::Loading as i32, percent: 0 });
            record.worker_deaths = worker_deaths;
            true
        })
        .await;
        if let Err(e) = retried {
            tracing::error!(job = %claim.id, "could not record the retry: {e}");
        }
    }

    /// Ends a running job: writes the final state (which tells the
    /// watchers) and hands the job back to the queue as done.
    pub async fn finish(&self, claim: &mut Claim, ending: Ending, timings: StageTimings) {
        claim.settle().await;
        self.lock().leases.remove(&claim.id);
        if claim.lost.load(Ordering::Relaxed) {
            tracing::warn!(job = %claim.id, "the job went to another worker; not recording this end");
            return;
        }
        let timings = StageTimings { queue_wait_ms: claim.queue_wait_ms, ..timings };
        self.metrics.stages(&timings);
        if matches!(ending, Ending::Succeeded(..)) {
            let input = Input { input: claim.input_extension.clone() };
            self.metrics.conversion.get_or_create(&input).observe(claim.claimed_at.elapsed().as_secs_f64());
        }
        let doing = format!("job {}: recording its end", claim.id);
        let unavailable = |e: &Error| matches!(e, Error::Unavailable(_));
        let end = || self.end(&claim.id, ending.clone(), Some(timings));
        let ended = match patience::while_unavailable(STORE_PATIENCE, &doing, unavailable, end).await {
            Ok(ended) => ended,
            Err(e) => {
                tracing::error!(job = %claim.id, "could not record the end: {e:?}");
                return;
            }
        };
        let state = ended.state().as_str_name().trim_start_matches("JOB_STATE_").to_lowercase();
        let ms = claim.claimed_at.elapsed().as_millis() as u64;
        tracing::info!(state, ms, attempts = claim.attempts, "job ended");
        if let Err(e) = self.backend.queue.ack(&claim.lease).await {
            tracing::warn!(job = %claim.id, "could not hand the job back as done: {e}");
        }
        if let Err(e) = self.backend.blobs.forget_local(&claim.id).await {
            tracing::warn!(job = %claim.id, "could not clear the job's local folder: {e}");
        }
    }

    /// Hands a running job back to the queue without an end, for this
    /// node or another to run it again: the job store stayed unavailable
    /// while it ran, which is no fault of the job's.
    pub async fn requeue(&self, claim: &mut Claim) {
        claim.settle().await;
        self.lock().leases.remove(&claim.id);
        tracing::warn!(job = %claim.id, "the job store stayed unavailable; the job goes back to the queue");
        if let Err(e) = self.backend.queue.release(&claim.lease).await {
            tracing::warn!(job = %claim.id, "could not hand the job back ({e}); it runs again once its lease runs out");
        }
        if let Err(e) = self.backend.blobs.forget_local(&claim.id).await {
            tracing::warn!(job = %claim.id, "could not clear the job's local folder: {e}");
        }
    }

    /// Writes the final state of a job, unless it has ended already.
    /// Returns the job as it now stands.
    ///
    /// A webhook that wants this end is queued for delivery first: should
    /// this node die before the end is written, the delivery waits for the
    /// end the job's next run writes; queued after, it could be lost.
    async fn end(&self, id: &str, ending: Ending, timings: Option<StageTimings>) -> Result<Job> {
        let state = ending.state();
        let record = self.backend.records.get(id).await?;
        let wants = |record: &StoredJob| record.webhook.as_ref().is_some_and(|w| webhooks::wanted(w.events(), state));
        if record.as_ref().is_some_and(|record| !has_ended(record) && wants(record)) {
            self.backend.deliveries.push(id).await?;
        }
        // The change may be tried again after a conflict, so it takes a copy each time.
        let modified = modify_from(&*self.backend.records, id, record, Durability::Lasting, |record| {
            if has_ended(record) {
                return false;
            }
            let wanted = wants(record);
            let job = record.job.get_or_insert_default();
            if let Some(webhook) = job.webhook.as_mut().filter(|w| w.state() == WebhookState::Pending && !wanted) {
                webhook.set_state(WebhookState::NotSent);
            }
            job.progress = None;
            job.queue_position = 0;
            job.end_time = Some(now_timestamp());
            if timings.is_some() {
                job.timings = timings;
            }
            job.set_state(state);
            match &ending {
                Ending::Succeeded(output, file) => {
                    job.output = Some(output.clone());
                    record.result_file = file.clone();
                }
                Ending::Failed(failure) => job.error = Some(failure.to_job_error()),
            }
            true
        });
        match modified.await? {
            Modified::Written(record) => {
                self.count_end(&record);
                Ok(record.job.unwrap_or_default())
            }
            Modified::Kept(record) => Ok(record.job.unwrap_or_default()),
            Modified::Missing => Err(not_found(id)),
        }
    }

    fn count_end(&self, record: &StoredJob) {
        let job = record.job.as_ref();
        let outcome = match job.map(Job::state) {
            Some(JobState::Succeeded) => "succeeded",
            Some(JobState::Cancelled) => "cancelled",
            _ => "failed",
        };
        let code = job
            .and_then(|job| job.error.as_ref())
            .filter(|_| outcome == "failed")
            .map(|error| format!("{:?}", tonic::Code::from_i32(error.code)));
        let ended = Ended { input: record.input_extension.clone(), outcome, code: code.unwrap_or_default() };
        self.metrics.ended.get_or_create(&ended).inc();
    }

    /// Cancels a job that has not ended; returns its final state. A queued
    /// job ends at once; a running one once its worker is stopped, by
    /// whichever node runs it.
    pub async fn cancel(&self, id: &str) -> Result<Job> {
        if self.backend.queue.remove(id).await? {
            let job = self.end(id, Ending::Failed(Failure::Cancelled), None).await?;
            self.positions.refresh(&self.backend).await;
            return Ok(job);
        }
        let asked = modify(&*self.backend.records, id, Durability::Lasting, |record| {
            if has_ended(record) || record.cancel_requested {
                return false;
            }
            record.cancel_requested = true;
            true
        });
        let record = match asked.await? {
            Modified::Missing => return Err(not_found(id)),
            Modified::Kept(record) if has_ended(&record) => return Ok(record.job.unwrap_or_default()),
            Modified::Written(record) | Modified::Kept(record) => record,
        };
        let Some(mut events) = self.backend.records.watch(id, revision_of(&record)).await? else {
            return Err(not_found(id));
        };
        while let Some(event) = events.next().await {
            let record = event?;
            if has_ended(&record) {
                return Ok(record.job.unwrap_or_default());
            }
        }
        self.get(id).await
    }

    /// The job's current state. `NotFound` for unknown or expired ids.
    pub async fn get(&self, id: &str) -> Result<Job> {
        Ok(self.record(id).await?.job.unwrap_or_default())
    }

    /// The job's record (with its private fields). `NotFound` for unknown
    /// or expired ids.
    pub async fn record(&self, id: &str) -> Result<StoredJob> {
        self.backend.records.get(id).await?.filter(|r| r.job.is_some()).ok_or_else(|| not_found(id))
    }

    pub async fn by_request_id(&self, request_id: &str) -> Result<Option<Job>> {
        Ok(self.backend.records.by_request_id(request_id).await?.and_then(|record| record.job))
    }

    /// The current state and the changes after it.
    pub async fn watch(&self, id: &str) -> Result<Watch> {
        let Some(mut events) = self.backend.records.watch(id, 0).await? else {
            return Err(not_found(id));
        };
        let Some(first) = events.next().await else {
            return Err(not_found(id));
        };
        let snapshot = first?.job.unwrap_or_default();
        let updates = (!snapshot.state().is_terminal()).then_some(events);
        Ok(Watch { snapshot, updates })
    }

    /// Stops taking and starting jobs. Queued jobs stay recorded as queued
    /// and run at the next start.
    pub fn stop_accepting(&self) {
        self.lock().accepting = false;
        self.backend.queue.close();
        self.backend.deliveries.close();
    }

    /// Ends a job whose runner failed unexpectedly (its claim is gone): as
    /// failed, with the lease acknowledged, so that it is not handed out
    /// again to fail the same way.
    pub async fn abandon(&self, id: &str) {
        let lease = self.lock().leases.remove(id);
        if let Err(e) = self.end(id, Ending::Failed(Failure::Internal), None).await {
            tracing::error!(job = id, "could not record the end: {e:?}");
            return;
        }
        if let Some(lease) = lease
            && let Err(e) = self.backend.queue.ack(&lease).await
        {
            tracing::warn!(job = id, "could not hand the job back as done: {e}");
        }
    }

    /// Hands the jobs still running here back to the queue (their runners
    /// were stopped at shutdown), so that another node takes them now
    /// rather than when their leases run out. Returns how many.
    pub async fn hand_back(&self) -> usize {
        let leases: Vec<Lease> = self.lock().leases.drain().map(|(_, lease)| lease).collect();
        let mut handed = 0;
        for lease in leases {
            match self.backend.queue.release(&lease).await {
                Ok(()) => handed += 1,
                Err(e) => tracing::warn!(job = %lease.id, "could not hand the job back: {e}"),
            }
        }
        handed
    }

    pub fn is_accepting(&self) -> bool {
        self.lock().accepting
    }

    /// Deletes jobs that ended more than `retention` ago, with their files.
    pub async fn expire(&self, retention: Duration) -> Result<usize> {
        let cutoff = SystemTime::now().checked_sub(retention).unwrap_or(UNIX_EPOCH);
        let expired = self.backend.records.ended_before(cutoff).await?;
        for id in &expired {
            self.backend.records.delete(id).await?;
        }
        // Files without a record are swept as orphans should this fail.
        self.backend.blobs.delete_all(&expired).await?;
        Ok(expired.len())
    }
}

/// What a running job's keeper needs.
struct Keeper {
    positions: Arc<positions::Positions>,
    backend: Backend,
    lease: Lease,
    queue_wait_ms: u64,
    cancel: Arc<Notify>,
    lost: Arc<AtomicBool>,
    /// The job's record as last read or written here: each write starts
    /// from it instead of reading the job again (a shared store's round
    /// trip), and reads again only when another writer came in between.
    last: Option<StoredJob>,
}

impl Keeper {
    /// Records the start, then until stopped: extends the lease, publishes
    /// the latest progress, and tells the runner when a cancel is asked.
    /// Recording the start runs beside the conversion instead of before
    /// it: a crash before it lands leaves the job queued, which a restart
    /// treats the same as running; the end waits for it (`Claim::settle`).
    async fn run(
        mut self,
        mut reported: watch::Receiver<Option<Reported>>,
        started_tx: oneshot::Sender<()>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let id = self.lease.id.clone();
        let queue_wait_ms = self.queue_wait_ms;
        let read = self.last.take();
        let started = modify_from(&*self.backend.records, &id, read, Durability::Lasting, |record| {
            let job = record.job.get_or_insert_default();
            if job.state().is_terminal() {
                return false;
            }
            job.set_state(JobState::Running);
            job.queue_position = 0;
            job.attempts += 1;
            job.start_time = Some(now_timestamp());
            job.progress = Some(Progress { stage: Stage::Loading as i32, percent: 0 });
            job.timings = Some(StageTimings { queue_wait_ms, ..Default::default() });
            true
        })
        .await;
        // The jobs behind move up. Here rather than before the conversion
        // starts: a long queue on a shared backend takes a while to walk.
        self.positions.refresh(&self.backend).await;
        let _ = started_tx.send(());
        let from = match started {
            Ok(Modified::Written(record) | Modified::Kept(record)) => {
                let from = revision_of(&record);
                self.last = Some(record);
                from
            }
            Ok(Modified::Missing) => return,
            Err(e) => {
                tracing::error!(job = %id, "could not record the start: {e}");
                0
            }
        };
        let mut events = match self.backend.records.watch(&id, from).await {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(job = %id, "cannot follow the job for cancellation: {e}");
                None
            }
        };
        let mut extend = tokio::time::interval(self.backend.queue.lease_time() / 3);
        // After a stall, one renewal, not a burst of those missed.
        extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        extend.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                changed = reported.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let latest = *reported.borrow_and_update();
                    if let Some(latest) = latest {
                        self.publish(latest).await;
                    }
                }
                event = next_event(&mut events) => match event {
                    Some(Ok(record)) => {
                        if record.cancel_requested {
                            self.cancel.notify_one();
                        }
                        if self.last.as_ref().is_none_or(|last| revision_of(last) < revision_of(&record)) {
                            self.last = Some(record);
                        }
                    }
                    Some(Err(_)) | None => events = None,
                },
                // A lease once lost stays lost: nothing left to renew.
                _ = extend.tick(), if !self.lost.load(Ordering::Relaxed) => match self.backend.queue.extend(&self.lease).await {
                    Ok(()) => {}
                    Err(BackendError::LeaseLost { .. }) => {
                        tracing::warn!(job = %id, "the job's lease ran out; another worker has it");
                        self.lost.store(true, Ordering::Relaxed);
                        self.cancel.notify_one();
                    }
                    Err(e) => tracing::warn!(job = %id, "cannot extend the job's lease: {e}"),
                },
            }
        }
        // The last progress may not have been published yet; the end
        // replaces it anyway.
    }

    async fn publish(&mut self, reported: Reported) {
        let read = match self.last.take() {
            Some(last) => Some(last),
            None => match self.backend.records.get(&self.lease.id).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(job = %self.lease.id, "could not publish progress: {e}");
                    return;
                }
            },
        };
        let queue_wait_ms = self.queue_wait_ms;
        let written = modify_from(&*self.backend.records, &self.lease.id, read, Durability::Passing, |record| {
            let job = record.job.get_or_insert_default();
            if job.state() != JobState::Running {
                return false;
            }
            job.progress = Some(Progress { stage: reported.stage as i32, percent: reported.percent });
            if let Some(timings) = reported.timings {
                job.timings = Some(StageTimings { queue_wait_ms, ..timings });
            }
            true
        });
        match written.await {
            Ok(Modified::Written(record) | Modified::Kept(record)) => self.last = Some(record),
            Ok(Modified::Missing) => {}
            Err(e) => tracing::warn!(job = %self.lease.id, "could not publish progress: {e}"),
        }
    }
}

/// The span of running job `id`'s work and log lines, a child of the
/// Submit it came from.
fn job_span(id: &str, submitted: Option<TraceParent>) -> tracing::Span {
    let span = tracing::info_span!("job", id, trace_id = tracing::field::Empty);
    TraceParent::adopt(&span, submitted);
    span
}

/// The next event of a watch, or never once there is none.
async fn next_event(events: &mut Option<Events>) -> Option<docconv_backend::Result<StoredJob>> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no job {id}: it never existed or has expired"))
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

pub fn now_timestamp() -> prost_types::Timestamp {
    SystemTime::now().into()
}
