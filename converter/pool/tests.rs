//! Supervision against fake workers: a fake converts without LibreOffice,
//! doing what the document tells it (`ok`, `slow`, `hang`, `crash`,
//! `crash-once`, `refuse`, `panic`), and logs what happened, so the rules of the
//! pool are tested in milliseconds and without sleeps in the assertions.

use super::*;
use std::path::Path;

/// What the fake worker writes: a PDF of one blank page, which the PDF
/// tools (qpdf counts the pages of every result) read, repairing its
/// missing cross-reference table.
const ONE_PAGE_PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n\
    2 0 obj\n<</Type/Pages/Kids[3 0 R]/Count 1>>\nendobj\n\
    3 0 obj\n<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n";
use crate::error::Error;
use docconv::ids;
use docconv::proto::v1::{Job, JobState};
use docconv_backend::{Backend, BackendError, Blobs, StoredJob};
use docconv_worker::proto::{Failed, Reason};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// What happened, in order, across every fake worker.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    Starting(u32),
    Ready(u32),
    Converted { worker: u32, document: String },
    Killed(u32),
}

#[derive(Default)]
struct Script {
    log: Mutex<Vec<Event>>,
    started: AtomicU32,
    /// How many times each document was tried.
    tries: Mutex<HashMap<String, u32>>,
}

impl Script {
    fn log(&self, event: Event) {
        self.log.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.log.lock().unwrap().clone()
    }

    fn kills(&self) -> usize {
        self.events().iter().filter(|e| matches!(e, Event::Killed(_))).count()
    }
}

struct FakeLauncher {
    script: Arc<Script>,
    dir: PathBuf,
    /// How long a fake takes to start, as LibreOffice would.
    start_delay: Duration,
}

#[async_trait::async_trait]
impl Launcher for FakeLauncher {
    async fn start(&self) -> Result<Worker, WorkerError> {
        let number = self.script.started.fetch_add(1, Ordering::SeqCst) + 1;
        self.script.log(Event::Starting(number));
        tokio::time::sleep(self.start_delay).await;
        let scratch = self.dir.join(format!("fake-{number}"));
        std::fs::create_dir_all(&scratch).map_err(WorkerError::Spawn)?;
        self.script.log(Event::Ready(number));
        Ok(Box::new(Fake {
            number,
            script: self.script.clone(),
            jobs_done: 0,
            killed: AtomicBool::new(false),
            scratch,
            sandbox: Sandbox::default(),
        }))
    }

    fn samples_dir(&self) -> PathBuf {
        self.dir.join("samples")
    }
}

struct Fake {
    number: u32,
    script: Arc<Script>,
    jobs_done: u32,
    killed: AtomicBool,
    scratch: PathBuf,
    sandbox: Sandbox,
}

/// A document for the fake: a zip's magic (so it passes for a .docx), then
/// what the fake should do.
fn document(command: &str) -> Vec<u8> {
    [b"PK\x03\x04".as_slice(), command.as_bytes()].concat()
}

#[async_trait::async_trait]
impl WorkerProcess for Fake {
    async fn convert(
        &mut self,
        request: Convert,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Outcome, WorkerError> {
        let input = std::fs::read(&request.input_path).map_err(WorkerError::Spawn)?;
        let command = String::from_utf8_lossy(input.strip_prefix(b"PK\x03\x04").unwrap_or(&input)).into_owned();
        let tries = {
            let mut tries = self.script.tries.lock().unwrap();
            let count = tries.entry(request.input_path.clone()).or_default();
            *count += 1;
            *count
        };
        self.jobs_done += 1;
        on_progress(Progress::Loading { percent: 50 });
        match command.as_str() {
            "hang" => std::future::pending().await,
            "panic" => panic!("the fake met a bug"),
            "crash" => return Err(WorkerError::Died("the fake crashed".into())),
            "crash-once" if tries == 1 => return Err(WorkerError::Died("the fake crashed".into())),
            "refuse" => {
                let failed = Failed { reason: Reason::Unreadable as i32, detail: "the fake refused".into() };
                return Ok(Outcome::Failed(failed));
            }
            "slow" => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => {}
        }
        on_progress(Progress::Loaded);
        std::fs::write(&request.output_path, ONE_PAGE_PDF).map_err(WorkerError::Spawn)?;
        let document = Path::new(&request.input_path).file_name().unwrap().to_string_lossy().into_owned();
        self.script.log(Event::Converted { worker: self.number, document });
        Ok(Outcome::Done)
    }

    fn kill(&mut self) {
        if !self.killed.swap(true, Ordering::SeqCst) {
            self.script.log(Event::Killed(self.number));
        }
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn rss_bytes(&self) -> Option<u64> {
        None
    }

    fn jobs_done(&self) -> u32 {
        self.jobs_done
    }

    fn reset_jobs_done(&mut self) {
        self.jobs_done = 0;
    }

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn scratch_dir(&self) -> PathBuf {
        self.scratch.clone()
    }
}

struct Rig {
    jobs: Arc<Jobs>,
    script: Arc<Script>,
    running: Running,
    _dir: tempfile::TempDir,
}

fn config() -> PoolConfig {
    PoolConfig {
        workers: 1,
        job_timeout: Duration::from_secs(10),
        max_jobs_per_worker: 1000,
        max_worker_rss: u64::MAX,
        worker_memory_limit: u64::MAX,
        probe_cache: None,
        store_patience: Duration::from_secs(5),
    }
}

async fn rig(config: PoolConfig, start_delay: Duration) -> Rig {
    rig_on(Backend::in_memory(crate::jobs::LEASE), config, start_delay).await
}

async fn rig_on(backend: Backend, config: PoolConfig, start_delay: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let jobs = Arc::new(Jobs::new(backend, 100, Duration::ZERO));
    let script = Arc::new(Script::default());
    let launcher = FakeLauncher { script: script.clone(), dir: dir.path().join("workers"), start_delay };
    let workers = config.workers;
    let mut running = Pool::start(jobs.clone(), Arc::new(launcher), config).unwrap();
    let warm = tokio::time::timeout(Duration::from_secs(10), running.warm.wait_for(|&n| n >= workers)).await;
    warm.expect("fake workers warm up at once").unwrap();
    Rig { jobs, script, running, _dir: dir }
}

async fn submit(jobs: &Jobs, command: &str) -> Job {
    submit_started(jobs, command, 0).await
}

/// `submit` for a job already started `attempts` times elsewhere (whose
/// leases ran out).
async fn submit_started(jobs: &Jobs, command: &str, attempts: u32) -> Job {
    let id = ids::new_id();
    let mut writer = jobs.blobs().create(&id, &files::input("docx")).await.unwrap();
    writer.write(&document(command)).await.unwrap();
    writer.finish().await.unwrap();
    let file_name = format!("{command}.docx");
    let job = Job { id: id.clone(), file_name, target_format: "pdf".into(), attempts, ..Job::default() };
    let record = StoredJob { job: Some(job), input_extension: "docx".into(), ..StoredJob::default() };
    let reservation = jobs.reserve().await.unwrap();
    jobs.enqueue(reservation, record).await.unwrap()
}

/// Waits for the job's state to satisfy `done`, following its watch.
async fn wait_for(jobs: &Jobs, id: &str, done: impl Fn(&Job) -> bool) -> Job {
    let follow = async {
        let watch = jobs.watch(id).await.unwrap();
        if done(&watch.snapshot) {
            return watch.snapshot;
        }
        let mut updates = watch.updates.expect("the job has not ended");
        while let Some(record) = updates.next().await {
            let job = record.unwrap().job.unwrap();
            if done(&job) {
                return job;
            }
        }
        panic!("the job ended without the state waited for");
    };
    tokio::time::timeout(Duration::from_secs(10), follow).await.expect("within 10 s")
}

async fn ended(jobs: &Jobs, id: &str) -> Job {
    wait_for(jobs, id, |job| job.state().is_terminal()).await
}

fn converted_by(script: &Script, worker: u32) -> Vec<String> {
    script
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Converted { worker: w, document } if w == worker => Some(document),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_converted_and_the_worker_kept() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    assert_eq!(job.output.map(|o| o.file_name), Some("ok.pdf".into()));
    assert_eq!(rig.script.started.load(Ordering::SeqCst), 1);
    let warmed: Vec<_> = converted_by(&rig.script, 1);
    assert!(warmed.iter().any(|d| d.starts_with("warm")), "a worker warms up before its first job: {warmed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_is_replaced_and_the_job_retried_once() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "crash-once").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Succeeded, 2), "{job:?}");
    assert_eq!(rig.script.started.load(Ordering::SeqCst), 2, "one fresh worker for the retry");
    assert_eq!(converted_by(&rig.script, 2).last().map(String::as_str), Some("input.docx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_lease_ran_out_before_still_gets_its_retry_when_a_worker_dies() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit_started(&rig.jobs, "crash-once", 2).await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Succeeded, 4), "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_kills_two_workers_fails_and_the_next_job_runs() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "crash").await;
    let next = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Failed, 2), "{job:?}");
    assert!(job.error.unwrap().message.contains("2 attempts"), "the failure says how often it was tried");
    assert_eq!(ended(&rig.jobs, &next.id).await.state(), JobState::Succeeded);
    assert_eq!(rig.script.started.load(Ordering::SeqCst), 3, "each dead worker is replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_past_its_deadline_is_killed_and_fails() {
    let rig = rig(PoolConfig { job_timeout: Duration::from_millis(300), ..config() }, Duration::ZERO).await;
    let job = submit(&rig.jobs, "hang").await;
    let next = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Failed, 1), "no retry after a deadline: {job:?}");
    assert_eq!(job.error.unwrap().code, tonic::Code::DeadlineExceeded as i32);
    assert_eq!(rig.script.kills(), 1, "the hung worker is killed");
    assert_eq!(ended(&rig.jobs, &next.id).await.state(), JobState::Succeeded);
    assert_eq!(converted_by(&rig.script, 2).last().map(String::as_str), Some("input.docx"), "on a fresh worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_kills_its_worker() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "hang").await;
    // Converting, not still preparing its input (the first progress comes
    // from the worker): a cancel then has a worker to stop.
    wait_for(&rig.jobs, &job.id, |job| job.progress.is_some_and(|p| p.percent > 0)).await;
    let cancelled = tokio::time::timeout(Duration::from_secs(10), rig.jobs.cancel(&job.id)).await.unwrap().unwrap();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert_eq!(rig.script.kills(), 1);
    let next = submit(&rig.jobs, "ok").await;
    assert_eq!(ended(&rig.jobs, &next.id).await.state(), JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_document_fails_on_a_worker_that_stays() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "refuse").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Failed, 1));
    let next = submit(&rig.jobs, "ok").await;
    assert_eq!(ended(&rig.jobs, &next.id).await.state(), JobState::Succeeded);
    assert_eq!((rig.script.started.load(Ordering::SeqCst), rig.script.kills()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worn_out_worker_keeps_working_until_its_warm_successor_is_ready() {
    let start_delay = Duration::from_millis(300);
    let rig = rig(PoolConfig { max_jobs_per_worker: 2, ..config() }, start_delay).await;
    let submitted: Vec<Job> = {
        let mut submitted = Vec::new();
        for _ in 0..6 {
            submitted.push(submit(&rig.jobs, "slow").await);
        }
        submitted
    };
    for job in &submitted {
        assert_eq!(ended(&rig.jobs, &job.id).await.state(), JobState::Succeeded);
    }
    let events = rig.script.events();
    let starting = events.iter().position(|e| *e == Event::Starting(2)).expect("a successor was started");
    let ready = events.iter().position(|e| *e == Event::Ready(2)).unwrap();
    let worked_meanwhile = events[starting..ready]
        .iter()
        .any(|e| matches!(e, Event::Converted { worker: 1, document } if document == "input.docx"));
    assert!(worked_meanwhile, "the old worker converts while its successor starts: {events:?}");
    let first_job =
        events.iter().position(|e| matches!(e, Event::Converted { worker: 2, document } if document == "input.docx"));
    let warmed = events
        .iter()
        .position(|e| matches!(e, Event::Converted { worker: 2, document } if document.starts_with("warm")));
    assert!(warmed < first_job, "the successor is warm before its first job: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_running_job_end_and_leaves_the_queued_one() {
    let rig = rig(config(), Duration::ZERO).await;
    let running = submit(&rig.jobs, "slow").await;
    let queued = submit(&rig.jobs, "ok").await;
    wait_for(&rig.jobs, &running.id, |job| job.state() == JobState::Running).await;
    rig.jobs.stop_accepting();
    for runner in rig.running.runners {
        tokio::time::timeout(Duration::from_secs(10), runner).await.expect("runners stop").unwrap();
    }
    assert_eq!(rig.jobs.get(&running.id).await.unwrap().state(), JobState::Succeeded);
    assert_eq!(rig.jobs.get(&queued.id).await.unwrap().state(), JobState::Queued, "it runs at the next start");
    assert!(matches!(rig.jobs.reserve().await, Err(Error::Unavailable(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bug_while_converting_fails_that_job_and_the_runner_goes_on() {
    let rig = rig(config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "panic").await;
    let next = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert_eq!(job.error.unwrap().code, tonic::Code::Internal as i32);
    assert_eq!(ended(&rig.jobs, &next.id).await.state(), JobState::Succeeded, "the slot still converts");
    assert_eq!(rig.script.started.load(Ordering::SeqCst), 2, "on a fresh worker");
}

/// Job files in memory whose store is unavailable for the first calls to
/// `checkout` and to `keep`, as a NATS cluster electing a leader is.
struct Unsteady {
    files: docconv_backend::MemoryFiles,
    /// How many calls to `checkout`, then to `keep`, fail.
    outages: (u32, u32),
    checkouts: AtomicU32,
    keeps: AtomicU32,
}

impl Unsteady {
    fn backend(outages: (u32, u32)) -> (Backend, Arc<Unsteady>) {
        let files = docconv_backend::MemoryFiles::new();
        let unsteady = Arc::new(Unsteady { files, outages, checkouts: AtomicU32::new(0), keeps: AtomicU32::new(0) });
        (Backend { blobs: unsteady.clone(), ..Backend::in_memory(crate::jobs::LEASE) }, unsteady)
    }

    fn answer(&self, calls: &AtomicU32, outages: u32) -> docconv_backend::Result<()> {
        match calls.fetch_add(1, Ordering::SeqCst) < outages {
            true => Err(BackendError::Unavailable("a leader is being elected".into())),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Blobs for Unsteady {
    async fn create(&self, id: &str, name: &str) -> docconv_backend::Result<Box<dyn docconv_backend::BlobWriter>> {
        self.files.create(id, name).await
    }
    async fn open(
        &self,
        id: &str,
        name: &str,
        offset: u64,
    ) -> docconv_backend::Result<Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>> {
        self.files.open(id, name, offset).await
    }
    async fn checkout(&self, id: &str, names: &[String]) -> docconv_backend::Result<PathBuf> {
        self.answer(&self.checkouts, self.outages.0)?;
        self.files.checkout(id, names).await
    }
    async fn keep(&self, id: &str, names: &[String]) -> docconv_backend::Result<()> {
        self.answer(&self.keeps, self.outages.1)?;
        self.files.keep(id, names).await
    }
    async fn forget_local(&self, id: &str) -> docconv_backend::Result<()> {
        self.files.forget_local(id).await
    }
    async fn delete(&self, id: &str) -> docconv_backend::Result<()> {
        self.files.delete(id).await
    }
    async fn ids(&self, older_than: Duration) -> docconv_backend::Result<Vec<String>> {
        self.files.ids(older_than).await
    }
}

/// How many times the fake converted the job's input.
fn tries(rig: &Rig) -> Vec<u32> {
    rig.script.tries.lock().unwrap().iter().filter(|(path, _)| !path.contains("warm")).map(|(_, n)| *n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_out_a_short_store_outage_and_converts_once() {
    let (backend, store) = Unsteady::backend((2, 2));
    let rig = rig_on(backend, config(), Duration::ZERO).await;
    let job = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Succeeded, 1), "{job:?}");
    assert_eq!(tries(&rig), [1], "converted once");
    assert_eq!((store.checkouts.load(Ordering::SeqCst), store.keeps.load(Ordering::SeqCst)), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_goes_back_to_the_queue_when_the_store_stays_unavailable() {
    // Patience for two calls to `keep` (a pause of 250 ms, then one of
    // 500 ms would pass it): the third, on the second run, works.
    let (backend, store) = Unsteady::backend((0, 2));
    let config = PoolConfig { store_patience: Duration::from_millis(400), ..config() };
    let rig = rig_on(backend, config, Duration::ZERO).await;
    let job = submit(&rig.jobs, "ok").await;
    let job = ended(&rig.jobs, &job.id).await;
    assert_eq!((job.state(), job.attempts), (JobState::Succeeded, 2), "not failed, run again: {job:?}");
    assert_eq!(tries(&rig), [2], "converted again");
    assert_eq!(store.keeps.load(Ordering::SeqCst), 3);
}
