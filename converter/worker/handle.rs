//! The converter's side of one worker process: start it, send it a
//! conversion, read its events, kill it.
//!
//! A worker runs in its own process group, is killed when its handle drops,
//! and dies with the converter (`PR_SET_PDEATHSIG`), so no LibreOffice ever
//! outlives the job or the service that started it.
//!
//! A worker never sees the job directories: its sandbox lets it read and
//! write only its own directory. Each document is linked into that
//! directory's `job/` folder, converted there, and what the worker wrote is
//! moved to where the converter asked for it; the folder is emptied before
//! the next document, so nothing of one job is visible to the next.

use super::profile;
use super::protocol::{read_frame_async, readable_within, write_frame_async};
use super::zygote_handle::{Forked, Zygote};
use crate::proto::{Convert, Event, Failed, Request, Sandbox, event, request};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

/// How workers are started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Forked from a zygote holding LibreOffice preinitialised (see
    /// `zygote`); exec'd when the zygote cannot be had.
    Fork,
    /// A fresh `docconv worker` process, loading LibreOffice itself.
    Exec,
}

impl std::str::FromStr for StartMode {
    type Err = String;

    fn from_str(s: &str) -> Result<StartMode, String> {
        match s {
            "fork" => Ok(StartMode::Fork),
            "exec" => Ok(StartMode::Exec),
            _ => Err(format!("{s:?} is neither fork nor exec")),
        }
    }
}

/// How to start workers.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// The docconv binary, started as `docconv worker`.
    pub exe: PathBuf,
    /// LibreOffice's `program` directory.
    pub program_dir: PathBuf,
    /// Where each worker gets its private profile and temp directory.
    pub scratch_dir: PathBuf,
    /// How long LibreOffice may take to start before the worker is given up.
    pub start_timeout: Duration,
    /// Whether the profile tells LibreOffice to refuse links (always, but
    /// for tests that show the sandbox holds on its own).
    pub profile_blocks_links: bool,
    pub start: StartMode,
}

/// Why talking to a worker failed. Any of these means the process is gone
/// or unusable and must be replaced.
#[derive(Debug)]
pub enum WorkerError {
    Spawn(std::io::Error),
    /// The process ended (or closed its pipe) unexpectedly.
    Died(String),
    /// LibreOffice did not come up in time.
    StartTimeout,
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerError::Spawn(e) => write!(f, "cannot start the worker process: {e}"),
            WorkerError::Died(why) => write!(f, "the worker process died: {why}"),
            WorkerError::StartTimeout => write!(f, "LibreOffice did not start in time"),
        }
    }
}

/// What a worker reports while converting.
#[derive(Debug)]
pub enum Progress {
    Loading { percent: u32 },
    Loaded,
}

/// The worker's answer to a conversion it completed without dying.
#[derive(Debug)]
pub enum Outcome {
    Done,
    Failed(Failed),
}

pub struct Worker {
    process: Process,
    stdin: Box<dyn AsyncWrite + Send + Unpin>,
    events: Box<dyn AsyncRead + Send + Unpin>,
    /// Removed when the worker goes; holds its profile and temp files.
    home: PathBuf,
    pub jobs_done: u32,
    /// How the worker confined itself.
    pub sandbox: Sandbox,
}

/// The worker's process: our child when exec'd; the zygote's when forked,
/// followed through a pidfd (which, unlike the PID, can never name another
/// process once the worker is gone).
enum Process {
    Spawned(Child),
    /// `ended` is told the worker's wait status by the zygote.
    Forked {
        pid: u32,
        pidfd: Option<OwnedFd>,
        ended: pipe::Receiver,
    },
}

static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

/// How long a dead worker's status may take to be known once its pipes
/// have closed (the kernel, or the zygote, reaps it).
const EXIT_STATUS_WITHIN: Duration = Duration::from_secs(2);

/// Creates a worker's private directory: its profile, temporary files and
/// job folder. Returns the directory and the profile's.
pub(crate) fn create_home(spec: &WorkerSpec, kind: &str) -> Result<(PathBuf, PathBuf), WorkerError> {
    let home =
        spec.scratch_dir.join(format!("{kind}-{}-{}", std::process::id(), NEXT_WORKER.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&home);
    let install = spec.program_dir.parent().unwrap_or(&spec.program_dir);
    profile::create(&home.join("profile"), install, spec.profile_blocks_links)
        .and_then(|()| std::fs::create_dir_all(home.join("tmp")))
        .and_then(|()| std::fs::create_dir_all(home.join(JOB_DIR)))
        .map_err(WorkerError::Spawn)?;
    let home = home.canonicalize().map_err(WorkerError::Spawn)?;
    Ok((home.clone(), home.join("profile")))
}

impl Worker {
    /// Starts a worker and waits until LibreOffice is loaded in it.
    pub async fn start(spec: &WorkerSpec) -> Result<Worker, WorkerError> {
        let (home, profile_dir) = create_home(spec, "worker")?;
        let mut command = libreoffice_command(spec, "worker", &home, &profile_dir)?;
        command.arg("--home").arg(&home).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(WorkerError::Spawn)?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("piped stdin");
        let events = child.stdout.take().expect("piped stdout");
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(pid, stderr));
        }
        let process = Process::Spawned(child);
        let worker = Worker::new(process, Box::new(stdin), Box::new(events), home);
        worker.until_ready(spec.start_timeout).await
    }

    /// Forks a worker from `zygote` and waits until LibreOffice has
    /// finished starting in it.
    pub async fn fork(spec: &WorkerSpec, zygote: &Zygote) -> Result<Worker, WorkerError> {
        let (home, profile_dir) = create_home(spec, "worker")?;
        let Forked { pid, pidfd, stdin, events, stderr, ended } = match zygote.fork(&home, &profile_dir).await {
            Ok(forked) => forked,
            Err(e) => {
                remove_dir_later(&home);
                return Err(e);
            }
        };
        tokio::spawn(forward_stderr(pid, stderr));
        let process = Process::Forked { pid, pidfd, ended };
        let worker = Worker::new(process, Box::new(stdin), Box::new(events), home);
        worker.until_ready(spec.start_timeout).await
    }

    fn new(
        process: Process,
        stdin: Box<dyn AsyncWrite + Send + Unpin>,
        events: Box<dyn AsyncRead + Send + Unpin>,
        home: PathBuf,
    ) -> Worker {
        Worker { process, stdin, events, home, jobs_done: 0, sandbox: Sandbox::default() }
    }

    async fn until_ready(self, limit: Duration) -> Result<Worker, WorkerError> {
        let mut worker = self;
        match tokio::time::timeout(limit, worker.next_event()).await {
            Ok(Ok(Event { kind: Some(event::Kind::Ready(ready)) })) => {
                worker.sandbox = ready.sandbox.unwrap_or_default();
                Ok(worker)
            }
            Ok(Ok(other)) => Err(WorkerError::Died(format!("unexpected first event {other:?}"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(WorkerError::StartTimeout),
        }
    }

    /// A directory private to this worker, removed with it.
    pub fn scratch_dir(&self) -> PathBuf {
        self.home.join("tmp")
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::Spawned(child) => child.id(),
            Process::Forked { pid, pidfd, .. } => pidfd.as_ref().is_none_or(still_running).then_some(*pid),
        }
    }

    /// Resident memory of the worker process, from `/proc`.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid()?)
    }

    /// Converts one document. `on_progress` sees each progress event.
    ///
    /// Cancel-safe only in the sense that matters here: if this future is
    /// dropped mid-way, the worker is in an unknown state and must be killed.
    pub async fn convert(
        &mut self,
        mut job: Convert,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Outcome, WorkerError> {
        let window = self.home.join(JOB_DIR);
        let wanted = PathBuf::from(&job.output_path);
        let staged = tokio::task::spawn_blocking({
            let (window, input) = (window.clone(), PathBuf::from(&job.input_path));
            move || stage(&window, &input)
        })
        .await
        .map_err(|e| WorkerError::Died(e.to_string()))?
        .map_err(WorkerError::Spawn)?;
        job.input_path = staged.to_string_lossy().into_owned();
        let output_name =
            wanted.file_name().ok_or_else(|| WorkerError::Spawn(std::io::Error::other("no output name")))?;
        job.output_path = window.join(output_name).to_string_lossy().into_owned();
        let outcome = self.convert_staged(job, &mut on_progress).await?;
        if let Outcome::Done = outcome {
            tokio::task::spawn_blocking(move || unstage(&window, &staged, &wanted))
                .await
                .map_err(|e| WorkerError::Died(e.to_string()))?
                .map_err(WorkerError::Spawn)?;
        }
        Ok(outcome)
    }

    async fn convert_staged(
        &mut self,
        job: Convert,
        on_progress: &mut impl FnMut(Progress),
    ) -> Result<Outcome, WorkerError> {
        let request = Request { kind: Some(request::Kind::Convert(job)) };
        if let Err(e) = write_frame_async(&mut self.stdin, &request).await {
            return Err(WorkerError::Died(match e.kind() {
                // Nobody reads its requests: the process has ended.
                std::io::ErrorKind::BrokenPipe => self.exit_status().await,
                _ => e.to_string(),
            }));
        }
        loop {
            match self.next_event().await?.kind {
                Some(event::Kind::LoadProgress(p)) => on_progress(Progress::Loading { percent: p.percent }),
                Some(event::Kind::Loaded(_)) => on_progress(Progress::Loaded),
                Some(event::Kind::Done(_)) => {
                    self.jobs_done += 1;
                    return Ok(Outcome::Done);
                }
                Some(event::Kind::Failed(failed)) => {
                    self.jobs_done += 1;
                    return Ok(Outcome::Failed(failed));
                }
                Some(event::Kind::Ready(_)) | None => {}
            }
        }
    }

    async fn next_event(&mut self) -> Result<Event, WorkerError> {
        match read_frame_async::<Event>(&mut self.events).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(WorkerError::Died(self.exit_status().await)),
            Err(e) => Err(WorkerError::Died(e.to_string())),
        }
    }

    /// How the process ended ("signal: 9 (SIGKILL)", "exit status: 3"),
    /// once its pipes have closed.
    async fn exit_status(&mut self) -> String {
        let status = match &mut self.process {
            Process::Spawned(child) => {
                tokio::time::timeout(EXIT_STATUS_WITHIN, child.wait()).await.ok().and_then(Result::ok)
            }
            Process::Forked { ended, .. } => {
                let mut status = [0u8; 4];
                let told = tokio::time::timeout(EXIT_STATUS_WITHIN, ended.read_exact(&mut status)).await;
                told.ok().and_then(Result::ok).map(|_| ExitStatus::from_raw(i32::from_be_bytes(status)))
            }
        };
        status.map_or_else(|| "its event pipe closed".into(), |status| status.to_string())
    }

    /// Kills the worker's whole process group at once.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling the worker's own process group (its PID,
            // which is still the worker's: checked just above).
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
        if let Process::Spawned(child) = &mut self.process {
            let _ = child.start_kill();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        remove_dir_later(&self.home);
    }
}

/// Resident memory of process `pid`, from `/proc`.
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The folder of a worker's directory where it sees the job it converts.
const JOB_DIR: &str = "job";

/// Empties the worker's job folder and links `input` into it (a copy where
/// a link is impossible, e.g. across file systems). Returns the path the
/// worker loads.
fn stage(window: &Path, input: &Path) -> std::io::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(window);
    std::fs::create_dir_all(window)?;
    let extension = input.extension().map(|e| e.to_os_string()).unwrap_or_default();
    let staged = window.join("input").with_extension(extension);
    if std::fs::hard_link(input, &staged).is_err() {
        std::fs::copy(input, &staged)?;
    }
    Ok(staged)
}

/// Moves everything the worker wrote (the output, and the files an HTML
/// export writes beside its page) next to `wanted`, the path the converter
/// asked for.
fn unstage(window: &Path, staged_input: &Path, wanted: &Path) -> std::io::Result<()> {
    let destination = wanted.parent().unwrap_or(Path::new("."));
    for entry in std::fs::read_dir(window)? {
        let entry = entry?;
        let (from, name) = (entry.path(), entry.file_name());
        // The input stays; a lock file (which the profile turns off) must
        // never reach a job.
        if from == staged_input || name.to_string_lossy().starts_with(".~lock.") {
            continue;
        }
        let to = destination.join(name);
        if std::fs::rename(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
            std::fs::remove_file(&from)?;
        }
    }
    if !wanted.exists() {
        return Err(std::io::Error::other("the worker reported success but wrote no output"));
    }
    Ok(())
}

/// Deleting a profile is a few hundred files; keep it off the async threads.
pub(crate) fn remove_dir_later(dir: &Path) {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        // LibreOffice may still be writing for a moment after the kill.
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// Whether the process behind `pidfd` has not ended: a pidfd becomes
/// readable when its process exits.
fn still_running(pidfd: &OwnedFd) -> bool {
    !readable_within(pidfd, Duration::ZERO)
}

/// `docconv SUBCOMMAND` (a worker, or the zygote) for LibreOffice in `home`
/// with its profile in `profile_dir`: in its own process group, killed
/// with its handle and with the converter, and with a minimal environment,
/// so nothing of the service's own (addresses, credentials) reaches a
/// process that parses untrusted documents. The caller adds its own
/// arguments and standard streams.
pub(crate) fn libreoffice_command(
    spec: &WorkerSpec,
    subcommand: &str,
    home: &Path,
    profile_dir: &Path,
) -> Result<Command, WorkerError> {
    let extensions_cache = super::lok::file_url(&home.join("shared-extensions"))
        .map_err(|e| WorkerError::Spawn(std::io::Error::other(e)))?;
    let mut command = Command::new(&spec.exe);
    command
        .arg(subcommand)
        .arg("--program-dir")
        .arg(&spec.program_dir)
        .arg("--profile-dir")
        .arg(profile_dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("TMPDIR", home.join("tmp"))
        .env("LANG", "C.UTF-8")
        // LibreOffice's headless rendering backend; no display needed.
        .env("SAL_USE_VCLPLUGIN", "svp")
        // LibreOffice keeps a cache of shared extensions in its own
        // installation and, running as root, tries to write it there; the
        // sandbox forbids that, so the cache goes to the process's own
        // directory (a bootstrap variable read from the environment).
        .env("UNO_SHARED_PACKAGES_CACHE", &extensions_cache)
        // So that no thread is left writing the profile (see `profile`).
        .envs(profile::read_only_layers(&spec.program_dir).map(|layers| ("CONFIGURATION_LAYERS", layers)))
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    Ok(command)
}

/// Has the kernel kill the child `command` starts when its parent (the
/// converter) dies, so no LibreOffice outlives it.
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
    // this child when its parent dies.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// LibreOffice writes warnings to stderr; keep them in our log, not lost.
pub(crate) async fn forward_stderr(pid: u32, stderr: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(worker = pid, "{line}");
    }
}
