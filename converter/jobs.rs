//! The job hub: every job's current state, the queue, and the watchers.
//!
//! Jobs that have not ended live here in memory, each with a broadcast
//! channel of its states; ended jobs live only in the store. Every state
//! change goes through `Jobs`, which gives it the next sequence number and
//! sends it to all watchers. Transitions that matter after a crash (queued,
//! running, ended) are written to the store before anyone sees them.
//!
//! The lock is a std mutex: it is held for map and queue edits only, never
//! across an await or any I/O.

use super::error::{Error, Result};
use super::failure::Failure;
use super::store::{Inserted, JobFiles, JobStore, StoreError};
use crate::record::{StoredInput, StoredJob};
use docconv::proto::v1::{ConversionOptions, Job, JobState, Output, Progress, Stage, StageTimings};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, broadcast};

/// Room for the states of a job, so a watcher that is a little slow still
/// sees each one; a watcher further behind skips to newer full states.
/// States are shared (`Arc`), so the buffer costs a pointer per slot.
const UPDATES_BUFFER: usize = 64;

/// When a client refused for a full queue is told to try again: about the
/// time a few small documents take.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(5);

pub struct Jobs {
    store: Arc<dyn JobStore>,
    pub files: JobFiles,
    inner: Mutex<Inner>,
    /// Wakes runners waiting for work (one per queued job; all at shutdown).
    work: Notify,
    capacity: usize,
}

struct Inner {
    live: HashMap<String, Live>,
    queue: VecDeque<String>,
    /// Uploads in progress that have a place in the queue held for them.
    reserved: usize,
    /// Ids of uploads streaming in: their directories have no record yet
    /// and must not be swept.
    uploading: HashSet<String>,
    accepting: bool,
    last_order: u64,
}

struct Live {
    record: StoredJob,
    updates: broadcast::Sender<Arc<Job>>,
    cancel: Arc<Notify>,
    /// Set once a final state is being written; nothing else may change it.
    ending: bool,
}

/// A job handed to a runner.
pub struct Claim {
    pub id: String,
    /// As submitted, passwords included.
    pub options: ConversionOptions,
    pub file_name: String,
    pub input_extension: String,
    /// The documents after the first, for a merge.
    pub more_inputs: Vec<StoredInput>,
    pub target_format: String,
    pub attempts: u32,
    /// Notified when the job is cancelled while running.
    pub cancel: Arc<Notify>,
    /// The write of the running state, if still under way.
    recording: Option<tokio::task::JoinHandle<std::result::Result<(), StoreError>>>,
}

impl Claim {
    /// Waits until the running state is written.
    async fn recorded(&mut self) {
        if let Some(recording) = self.recording.take() {
            match recording.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(job = %self.id, "could not record the start: {e}"),
                Err(e) => tracing::error!(job = %self.id, "could not record the start: {e}"),
            }
        }
    }
}

/// How a running job ended.
pub enum Ending {
    Succeeded(Output),
    Failed(Failure),
}

/// A place in the queue, held while an upload streams in.
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

    /// The job is recorded; its directory is its own from now on.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PendingUpload<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.jobs.files.remove(&self.id);
        }
        self.jobs.lock().uploading.remove(&self.id);
    }
}

/// What a new watcher gets: the current state, and the changes after it
/// (none for a job that has ended).
pub struct Watch {
    pub snapshot: Job,
    pub updates: Option<broadcast::Receiver<Arc<Job>>>,
}

impl Jobs {
    pub fn new(store: Arc<dyn JobStore>, files: JobFiles, capacity: usize) -> Jobs {
        Jobs {
            store,
            files,
            inner: Mutex::new(Inner {
                live: HashMap::new(),
                queue: VecDeque::new(),
                reserved: 0,
                uploading: HashSet::new(),
                accepting: true,
                last_order: 0,
            }),
            work: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts jobs that had not ended when the service last stopped back in
    /// the queue, in their original order. Returns how many.
    pub async fn recover(&self) -> Result<usize> {
        let store = self.store.clone();
        let unfinished = tokio::task::spawn_blocking(move || store.unfinished()).await??;
        let count = unfinished.len();
        for mut record in unfinished {
            let job = record.job.get_or_insert_default();
            job.set_state(JobState::Queued);
            job.progress = None;
            job.start_time = None;
            next_sequence(job);
            let input = self.files.input(&job.id, &record.input_extension);
            if !input.exists() {
                tracing::warn!(job = %job.id, "input missing after restart");
                let job = job.clone();
                self.end_record(record, job, Ending::Failed(Failure::Unreadable)).await?;
                continue;
            }
            self.persist(record.clone()).await?;
            let mut inner = self.lock();
            inner.last_order = inner.last_order.max(record.order);
            let id = job_id(&record).to_owned();
            inner.live.insert(id.clone(), Live::new(record));
            inner.queue.push_back(id);
        }
        reposition(&mut self.lock());
        for _ in 0..count {
            self.work.notify_one();
        }
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
    pub fn check_room(&self) -> Result<()> {
        drop(self.reserve()?);
        Ok(())
    }

    /// Deletes job directories that have no record and no upload streaming
    /// into them: the remains of an upload cut off by a crash. Returns how
    /// many.
    pub async fn sweep_orphans(&self) -> Result<usize> {
        let files = self.files.clone();
        let names = tokio::task::spawn_blocking(move || files.dir_names()).await??;
        let mut swept = 0;
        for name in names {
            let busy = {
                let inner = self.lock();
                inner.uploading.contains(&name) || inner.live.contains_key(&name)
            };
            if busy {
                continue;
            }
            let store = self.store.clone();
            let id = name.clone();
            if tokio::task::spawn_blocking(move || store.get(&id)).await??.is_some() {
                continue;
            }
            tracing::info!(dir = %name, "removing a job directory without a record (an upload cut off)");
            let files = self.files.clone();
            tokio::task::spawn_blocking(move || files.remove(&name)).await?;
            swept += 1;
        }
        Ok(swept)
    }

    /// Holds a place in the queue for an upload that has arrived.
    pub fn reserve(&self) -> Result<Reservation<'_>> {
        let mut inner = self.lock();
        if !inner.accepting {
            return Err(Error::Unavailable("the service is shutting down; retry on another instance".into()));
        }
        if inner.queue.len() + inner.reserved >= self.capacity {
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
        next_sequence(job);
        let id = job.id.clone();

        let store = self.store.clone();
        let to_insert = record.clone();
        match tokio::task::spawn_blocking(move || store.insert(&to_insert)).await?? {
            Inserted::Existing(existing) => {
                drop(reservation);
                return self.get(job_id(&existing)).await;
            }
            Inserted::New => {}
        }
        let mut inner = self.lock();
        // The held place becomes the job's own.
        inner.reserved -= 1;
        std::mem::forget(reservation);
        inner.live.insert(id.clone(), Live::new(record));
        inner.queue.push_back(id.clone());
        reposition(&mut inner);
        let job = current(&inner, &id);
        drop(inner);
        self.work.notify_one();
        Ok(job)
    }

    /// Waits for the next queued job and marks it running. `None` once the
    /// service is shutting down.
    pub async fn next(&self) -> Option<Claim> {
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = {
                let mut inner = self.lock();
                if !inner.accepting {
                    return None;
                }
                inner.queue.pop_front().map(|id| {
                    let claim = start(&mut inner, &id);
                    reposition(&mut inner);
                    (claim, inner.live[&id].record.clone())
                })
            };
            if let Some((mut claim, record)) = claimed {
                // Recording the start runs beside the conversion instead of
                // before it: a crash before it lands leaves the job queued,
                // which a restart treats the same as running. Every later
                // write waits for it (`Claim::recorded`), so it never lands
                // over a newer state.
                let store = self.store.clone();
                claim.recording = Some(tokio::task::spawn_blocking(move || store.update(&record)));
                return Some(claim);
            }
            notified.await;
        }
    }

    /// Records another attempt of a running job (after its worker died).
    pub async fn retry(&self, claim: &mut Claim) {
        claim.recorded().await;
        let record = self.update(&claim.id, |job| {
            job.attempts += 1;
            job.progress = Some(Progress { stage: Stage::Loading as i32, percent: 0 });
        });
        claim.attempts += 1;
        if let Some(record) = record
            && let Err(e) = self.persist(record).await
        {
            tracing::error!(job = %claim.id, "could not record the retry: {e:?}");
        }
    }

    /// Publishes progress of a running job (kept in memory only).
    pub fn progress(&self, id: &str, stage: Stage, percent: u32, timings: Option<StageTimings>) {
        self.update(id, |job| {
            job.progress = Some(Progress { stage: stage as i32, percent });
            if let Some(timings) = timings {
                job.timings = Some(timings);
            }
        });
    }

    /// Ends a running job: writes the final state, then tells the watchers.
    pub async fn finish(&self, claim: &mut Claim, ending: Ending, timings: StageTimings) {
        claim.recorded().await;
        let id = claim.id.as_str();
        let record = {
            let mut inner = self.lock();
            let Some(live) = inner.live.get_mut(id) else {
                return;
            };
            if live.ending {
                return;
            }
            live.ending = true;
            live.record.clone()
        };
        let mut job = record.job.clone().unwrap_or_default();
        let queue_wait_ms = job.timings.map_or(0, |t| t.queue_wait_ms);
        job.timings = Some(StageTimings { queue_wait_ms, ..timings });
        if let Err(e) = self.end_record(record, job, ending).await {
            tracing::error!(job = id, "could not record the end: {e:?}");
        }
    }

    /// Writes the final state of `record`, then publishes it and forgets the
    /// job from memory.
    async fn end_record(&self, mut record: StoredJob, mut job: Job, ending: Ending) -> Result<()> {
        job.progress = None;
        job.queue_position = 0;
        job.end_time = Some(now_timestamp());
        match ending {
            Ending::Succeeded(output) => {
                job.set_state(JobState::Succeeded);
                job.output = Some(output);
            }
            Ending::Failed(failure) => {
                let state = match failure {
                    Failure::Cancelled => JobState::Cancelled,
                    _ => JobState::Failed,
                };
                job.set_state(state);
                job.error = Some(failure.to_job_error());
            }
        }
        let id = job.id.clone();
        {
            let inner = self.lock();
            if let Some(live) = inner.live.get(&id) {
                // Sequence after every state the watchers already saw.
                job.sequence = live.record.job.as_ref().map_or(0, |j| j.sequence);
            }
        }
        next_sequence(&mut job);
        record.job = Some(job.clone());
        let result = self.persist(record).await;
        let mut inner = self.lock();
        if let Some(live) = inner.live.remove(&id) {
            let _ = live.updates.send(Arc::new(job));
        }
        result
    }

    /// Cancels a job that has not ended; returns its final state. A queued
    /// job ends at once; a running one once its worker is stopped.
    pub async fn cancel(&self, id: &str) -> Result<Job> {
        #[allow(clippy::large_enum_variant)] // one value, on the stack, briefly
        enum Then {
            EndNow(StoredJob),
            Wait(broadcast::Receiver<Arc<Job>>),
        }
        let then = {
            let mut inner = self.lock();
            let in_queue = inner.queue.iter().position(|q| q == id);
            match (inner.live.get_mut(id), in_queue) {
                (None, _) => None,
                (Some(live), _) if live.ending => Some(Then::Wait(live.updates.subscribe())),
                (Some(live), None) => {
                    // Running: its runner stops the worker and ends the job.
                    live.cancel.notify_one();
                    Some(Then::Wait(live.updates.subscribe()))
                }
                (Some(live), Some(index)) => {
                    live.ending = true;
                    let record = live.record.clone();
                    inner.queue.remove(index);
                    reposition(&mut inner);
                    Some(Then::EndNow(record))
                }
            }
        };
        match then {
            None => self.get(id).await,
            Some(Then::EndNow(record)) => {
                let job = record.job.clone().unwrap_or_default();
                self.end_record(record, job, Ending::Failed(Failure::Cancelled)).await?;
                self.get(id).await
            }
            Some(Then::Wait(mut updates)) => loop {
                match updates.recv().await {
                    Ok(job) if job.state().is_terminal() => return Ok(Job::clone(&job)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return self.get(id).await,
                }
            },
        }
    }

    /// The job's current state. `NotFound` for unknown or expired ids.
    pub async fn get(&self, id: &str) -> Result<Job> {
        if let Some(job) = self.lock().live.get(id).and_then(|l| l.record.job.clone()) {
            return Ok(job);
        }
        self.stored(id).await?.and_then(|r| r.job).ok_or_else(|| not_found(id))
    }

    /// The stored record of a job (with its private fields).
    pub async fn stored(&self, id: &str) -> Result<Option<StoredJob>> {
        let store = self.store.clone();
        let id = id.to_owned();
        Ok(tokio::task::spawn_blocking(move || store.get(&id)).await??)
    }

    pub async fn by_request_id(&self, request_id: &str) -> Result<Option<Job>> {
        let store = self.store.clone();
        let request_id = request_id.to_owned();
        let record = tokio::task::spawn_blocking(move || store.by_request_id(&request_id)).await??;
        match record {
            Some(record) => self.get(job_id(&record)).await.map(Some),
            None => Ok(None),
        }
    }

    /// The current state and a subscription to what follows, taken under
    /// one lock so no change falls between them.
    pub async fn watch(&self, id: &str) -> Result<Watch> {
        {
            let inner = self.lock();
            if let Some(live) = inner.live.get(id) {
                return Ok(Watch {
                    snapshot: live.record.job.clone().unwrap_or_default(),
                    updates: Some(live.updates.subscribe()),
                });
            }
        }
        // Not live: it has ended (or never existed), and the store has the
        // final word.
        Ok(Watch { snapshot: self.get(id).await?, updates: None })
    }

    /// Stops taking and starting jobs. Queued jobs stay recorded as queued
    /// and run at the next start.
    pub fn stop_accepting(&self) {
        self.lock().accepting = false;
        self.work.notify_waiters();
    }

    pub fn is_accepting(&self) -> bool {
        self.lock().accepting
    }

    /// Deletes jobs that ended more than `retention` ago, with their files.
    pub async fn expire(&self, retention: Duration) -> Result<usize> {
        let cutoff = SystemTime::now().checked_sub(retention).unwrap_or(UNIX_EPOCH);
        let cutoff = cutoff.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let store = self.store.clone();
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || -> Result<usize> {
            let expired = store.ended_before(cutoff)?;
            for id in &expired {
                store.delete(id)?;
                files.remove(id);
            }
            Ok(expired.len())
        })
        .await?
    }

    /// Applies `change` to a live job and publishes the result; returns the
    /// new record for callers that persist it.
    fn update(&self, id: &str, change: impl FnOnce(&mut Job)) -> Option<StoredJob> {
        let mut inner = self.lock();
        let live = inner.live.get_mut(id).filter(|l| !l.ending)?;
        let job = live.record.job.get_or_insert_default();
        change(job);
        next_sequence(job);
        let _ = live.updates.send(Arc::new(job.clone()));
        Some(live.record.clone())
    }

    async fn persist(&self, record: StoredJob) -> Result<()> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.update(&record)).await??)
    }
}

impl Live {
    fn new(record: StoredJob) -> Live {
        Live { record, updates: broadcast::channel(UPDATES_BUFFER).0, cancel: Arc::new(Notify::new()), ending: false }
    }
}

/// Marks a job running and builds its claim. Called with the lock held.
fn start(inner: &mut Inner, id: &str) -> Claim {
    let live = inner.live.get_mut(id).expect("queued jobs are live");
    let record = &mut live.record;
    let job = record.job.get_or_insert_default();
    job.set_state(JobState::Running);
    job.queue_position = 0;
    job.attempts += 1;
    job.start_time = Some(now_timestamp());
    job.progress = Some(Progress { stage: Stage::Loading as i32, percent: 0 });
    let waited = job
        .create_time
        .and_then(|created| SystemTime::try_from(created).ok())
        .and_then(|created| created.elapsed().ok())
        .unwrap_or_default();
    job.timings = Some(StageTimings { queue_wait_ms: waited.as_millis() as u64, ..Default::default() });
    next_sequence(job);
    let _ = live.updates.send(Arc::new(job.clone()));
    Claim {
        id: id.to_owned(),
        options: record.options.clone().unwrap_or_default(),
        file_name: job.file_name.clone(),
        input_extension: record.input_extension.clone(),
        more_inputs: record.more_inputs.clone(),
        target_format: job.target_format.clone(),
        attempts: job.attempts,
        cancel: live.cancel.clone(),
        recording: None,
    }
}

/// Gives each queued job its position and tells its watchers when it moved.
fn reposition(inner: &mut Inner) {
    let Inner { live, queue, .. } = inner;
    for (index, id) in queue.iter().enumerate() {
        let Some(live) = live.get_mut(id) else {
            continue;
        };
        let job = live.record.job.get_or_insert_default();
        let position = index as u32 + 1;
        if job.queue_position != position {
            job.queue_position = position;
            next_sequence(job);
            let _ = live.updates.send(Arc::new(job.clone()));
        }
    }
}

fn current(inner: &Inner, id: &str) -> Job {
    inner.live.get(id).and_then(|l| l.record.job.clone()).unwrap_or_default()
}

fn job_id(record: &StoredJob) -> &str {
    record.job.as_ref().map_or("", |j| j.id.as_str())
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no job {id}: it never existed or has expired"))
}

/// Sequence numbers grow by at least one per change, and jump to the clock
/// (in microseconds) so they keep growing across restarts, when the changes
/// kept only in memory are lost.
fn next_sequence(job: &mut Job) {
    job.sequence = (job.sequence + 1).max(now_micros());
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

pub fn now_timestamp() -> prost_types::Timestamp {
    SystemTime::now().into()
}
