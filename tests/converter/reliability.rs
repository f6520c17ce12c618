//! Measurements for the reliability report. A fault or hostile test
//! describes each case it runs as a `Case` (what it tried, the jobs the
//! service accepted, how long recovery took), and `finish` measures what
//! the case left behind: accepted jobs that never ended or vanished (lost),
//! and files on disk that nothing owns any more (leaked).
//!
//! With `DOCCONV_RELIABILITY_OUT` set to a file, every finished case is
//! appended to it as one JSON line; `docconv-bench reliability` renders
//! those lines as `docs/reliability.md` (see `scripts/reliability`).
//! Without it nothing is written, and the tests assert what they measured
//! all the same.

// Shared by both test binaries; each uses a part.
#![allow(dead_code)]

use crate::support::{Client, Server, is_ended, worker_home, worker_pids_under};
use docconv::proto::v1::{GetJobRequest, Job};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::{Code, Status};

/// One case of a fault, hostile or soak class, as the test observed it.
pub struct Case {
    kind: &'static str,
    class: String,
    name: String,
    tried: u64,
    accepted: Vec<String>,
    recovery: Option<(Duration, String)>,
    figures: Map<String, Value>,
}

impl Case {
    /// A case of a fault: something going wrong around the service.
    pub fn fault(class: &str, name: &str) -> Case {
        Case::new("fault", class, name)
    }

    /// A case of a hostile input: a document or request made to do harm.
    pub fn hostile(class: &str, name: &str) -> Case {
        Case::new("hostile", class, name)
    }

    /// A soak: a long mixed load.
    pub fn soak(class: &str, name: &str) -> Case {
        Case::new("soak", class, name)
    }

    fn new(kind: &'static str, class: &str, name: &str) -> Case {
        Case {
            kind,
            class: class.into(),
            name: name.into(),
            tried: 0,
            accepted: Vec::new(),
            recovery: None,
            figures: Map::new(),
        }
    }

    /// One more attempt that yielded no job (a call refused, a connection
    /// cut off, a request of a kind that makes none).
    pub fn tried(&mut self) {
        self.tried += 1;
    }

    /// Counts a Submit's outcome, an attempt that may have been accepted,
    /// and hands it back.
    pub fn submit(&mut self, outcome: Result<Job, Status>) -> Result<Job, Status> {
        match &outcome {
            Ok(job) => self.accepted(&job.id),
            Err(_) => self.tried(),
        }
        outcome
    }

    /// An attempt the service accepted as job `id`.
    pub fn accepted(&mut self, id: &str) {
        self.tried += 1;
        self.accepted.push(id.to_owned());
    }

    /// How long the service took to recover, and from what to what.
    pub fn recovered(&mut self, took: Duration, what: &str) {
        self.recovery = Some((took, what.to_owned()));
    }

    /// A figure of this case beyond the common ones.
    pub fn figure(&mut self, name: &str, value: impl Into<Value>) {
        self.figures.insert(name.to_owned(), value.into());
    }

    /// Adds `n` to a counting figure.
    pub fn count(&mut self, name: &str, n: u64) {
        let now = self.figures.get(name).and_then(Value::as_u64).unwrap_or(0);
        self.figures.insert(name.to_owned(), (now + n).into());
    }

    /// Measures what the case left on `server`, records it, and returns it.
    pub async fn finish_on(self, server: &Server) -> Outcome {
        let client = server.client().await;
        self.finish(&client, server.data_dir.path()).await
    }

    /// Measures what the case left on the converter `client` talks to,
    /// whose data directory is `data_dir`, records it, and returns it.
    pub async fn finish(self, client: &Client, data_dir: &Path) -> Outcome {
        let lost = lost_jobs(client, &self.accepted).await;
        let leftovers = leftovers(client, data_dir).await;
        self.finish_with(lost, leftovers)
    }

    /// Records figures the test measured by itself, where there is no
    /// converter to ask (one that refused to start).
    pub fn finish_with(self, lost: Vec<String>, leftovers: Leftovers) -> Outcome {
        let line = json!({
            "kind": self.kind,
            "class": self.class,
            "case": self.name,
            "tried": self.tried,
            "accepted": self.accepted.len(),
            "lost": lost.len(),
            "leaked_bytes": leftovers.bytes(),
            "recover_ms": self.recovery.as_ref().map(|(took, _)| took.as_millis() as u64),
            "recovery": self.recovery.as_ref().map(|(_, what)| what.clone()),
            "figures": self.figures,
        });
        append(&line);
        Outcome { what: format!("{}: {}", self.class, self.name), lost, leftovers }
    }
}

/// What a case left behind.
pub struct Outcome {
    what: String,
    pub lost: Vec<String>,
    pub leftovers: Leftovers,
}

impl Outcome {
    /// The promise of every case that makes it: no accepted job lost, and
    /// nothing left on disk that nothing owns.
    pub fn assert_clean(&self) {
        assert!(self.lost.is_empty(), "{}: accepted jobs lost: {:?}", self.what, self.lost);
        assert!(self.leftovers.0.is_empty(), "{}: left on disk: {:?}", self.what, self.leftovers.0);
    }
}

/// Files (or empty directories, as 0 bytes) that nothing owns.
#[derive(Debug, Default)]
pub struct Leftovers(pub Vec<(PathBuf, u64)>);

impl Leftovers {
    pub fn bytes(&self) -> u64 {
        self.0.iter().map(|(_, bytes)| bytes).sum()
    }
}

/// Appends `line` to the report's input, if one is asked for. One write
/// per line, under a lock, so the lines of tests running at once never mix.
fn append(line: &Value) {
    use std::io::Write;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let Some(path) = std::env::var_os("DOCCONV_RELIABILITY_OUT") else {
        return;
    };
    let _held = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("DOCCONV_RELIABILITY_OUT {}: {e}", Path::new(&path).display()));
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// The accepted jobs that vanished or never reached an end. A job still
/// under way is given a minute, shared by all, to end.
pub async fn lost_jobs(client: &Client, ids: &[String]) -> Vec<String> {
    let mut client = client.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lost = Vec::new();
    for id in ids {
        loop {
            match client.get_job(GetJobRequest { id: id.clone() }).await {
                Ok(job) if is_ended(job.get_ref()) => break,
                Ok(job) if Instant::now() > deadline => {
                    lost.push(format!("{id} never ended ({:?})", job.get_ref().state()));
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(status) if status.code() == Code::NotFound => {
                    lost.push(format!("{id} vanished"));
                    break;
                }
                // The converter cannot say what became of it.
                Err(status) => {
                    lost.push(format!("{id}: {status:?}"));
                    break;
                }
            }
        }
    }
    lost
}

/// What is on disk under `data_dir` that nothing owns, once the service
/// had up to 30 s to settle (uploads of other tests under way, a killed
/// worker's directory about to be removed):
/// - a job directory without a job record (an upload cut off or refused);
/// - in the directory of a job that has ended, a file not written to the
///   end (`*.partial`) or a tool's scratch copy (`*.rendering-*`,
///   `*.decrypted.pdf`);
/// - a worker directory whose worker is no longer running.
pub async fn leftovers(client: &Client, data_dir: &Path) -> Leftovers {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = leftovers_now(client, data_dir).await;
        if found.0.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leftovers_now(client: &Client, data_dir: &Path) -> Leftovers {
    let mut client = client.clone();
    let mut found = Vec::new();
    for dir in entries(&data_dir.join("jobs")) {
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        match client.get_job(GetJobRequest { id }).await {
            Err(status) if status.code() == Code::NotFound => found.extend(files_under(&dir)),
            Ok(job) if is_ended(job.get_ref()) => found.extend(files_under(&dir).into_iter().filter(|(path, _)| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                name.ends_with(".partial") || name.contains(".rendering-") || name.ends_with(".decrypted.pdf")
            })),
            // Under way: its files are still being written.
            Ok(_) => {}
            Err(status) => panic!("the converter did not answer for {}: {status:?}", dir.display()),
        }
    }
    // Beside the workers' own directories lie the warm-up samples, which
    // every start writes again.
    let running = live_worker_homes(data_dir);
    for home in worker_homes(data_dir) {
        let home = home.canonicalize().unwrap_or(home);
        if !running.contains(&home) {
            found.extend(files_under(&home));
        }
    }
    Leftovers(found)
}

/// The directories of the running workers of the converter whose data is
/// in `data_dir`.
fn live_worker_homes(data_dir: &Path) -> Vec<PathBuf> {
    worker_pids_under(data_dir).into_iter().filter_map(worker_home).collect()
}

/// The workers' own directories under `data_dir`, live or not.
fn worker_homes(data_dir: &Path) -> Vec<PathBuf> {
    let homes = entries(&data_dir.join("workers")).into_iter();
    homes.filter(|home| home.file_name().is_some_and(|name| name.to_string_lossy().starts_with("worker-"))).collect()
}

/// The entries of `dir`; none if it does not exist.
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

/// Every file under `path` with its size (an empty directory as itself
/// with 0 bytes, so that it counts as something left). Entries that go
/// away while being walked are skipped.
pub fn files_under(path: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Vec::new();
    };
    if !metadata.is_dir() {
        return vec![(path.to_path_buf(), metadata.len())];
    }
    let children = entries(path);
    if children.is_empty() {
        return vec![(path.to_path_buf(), 0)];
    }
    children.iter().flat_map(|child| files_under(child)).collect()
}

/// Files in the scratch folders (`tmp`) of the workers under `data_dir`.
pub fn worker_temp_files(data_dir: &Path) -> usize {
    let files = worker_homes(data_dir).into_iter().flat_map(|home| files_under(&home.join("tmp")));
    // An empty folder is listed as itself; it is no file.
    files.filter(|(path, _)| !path.is_dir()).count()
}
