//! Durable job records and the files of each job.
//!
//! `JobStore` is the narrow interface the rest of the converter uses; the
//! embedded implementation keeps records in a redb database under the data
//! directory. A shared backend for several converter nodes implements the
//! same trait. Inputs and outputs are plain files in one directory per job.

use crate::proto::store::StoredJob;
use crate::proto::v1::JobState;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

/// Job id → encoded `StoredJob`.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
/// Request id → job id, for idempotent submits.
const REQUESTS: TableDefinition<&str, &str> = TableDefinition::new("requests");

#[derive(Debug)]
pub struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job store: {}", self.0)
    }
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError(e.into().to_string())
    }
}

/// What `insert` did. Short-lived and never stored, so the size of the
/// record it may carry does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Inserted {
    New,
    /// A job with the same request id already existed; nothing was written.
    Existing(StoredJob),
}

/// Where jobs are recorded. Every write is durable when the call returns.
pub trait JobStore: Send + Sync + 'static {
    /// Records a new job, unless its request id is already taken.
    fn insert(&self, job: &StoredJob) -> Result<Inserted, StoreError>;
    /// Replaces the record of an existing job.
    fn update(&self, job: &StoredJob) -> Result<(), StoreError>;
    fn get(&self, id: &str) -> Result<Option<StoredJob>, StoreError>;
    fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>, StoreError>;
    /// Jobs not yet ended, in submission order.
    fn unfinished(&self) -> Result<Vec<StoredJob>, StoreError>;
    /// Ids of jobs that ended before `cutoff_seconds` (Unix time).
    fn ended_before(&self, cutoff_seconds: i64) -> Result<Vec<String>, StoreError>;
    fn delete(&self, id: &str) -> Result<(), StoreError>;
}

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(JOBS)?;
        txn.open_table(REQUESTS)?;
        txn.commit()?;
        Ok(RedbStore { db })
    }

    fn all(&self) -> Result<Vec<StoredJob>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(JOBS)?;
        let mut jobs = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            jobs.push(decode(value.value())?);
        }
        Ok(jobs)
    }
}

fn decode(bytes: &[u8]) -> Result<StoredJob, StoreError> {
    StoredJob::decode(bytes).map_err(|e| StoreError(format!("corrupt record: {e}")))
}

fn id_of(job: &StoredJob) -> &str {
    job.job.as_ref().map_or("", |j| j.id.as_str())
}

impl JobStore for RedbStore {
    fn insert(&self, job: &StoredJob) -> Result<Inserted, StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut requests = txn.open_table(REQUESTS)?;
            let mut jobs = txn.open_table(JOBS)?;
            if !job.request_id.is_empty() {
                let existing = requests.get(job.request_id.as_str())?.map(|id| id.value().to_owned());
                if let Some(existing) = existing
                    && let Some(record) = jobs.get(existing.as_str())?
                {
                    return Ok(Inserted::Existing(decode(record.value())?));
                }
                requests.insert(job.request_id.as_str(), id_of(job))?;
            }
            jobs.insert(id_of(job), job.encode_to_vec().as_slice())?;
        }
        txn.commit()?;
        Ok(Inserted::New)
    }

    fn update(&self, job: &StoredJob) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(JOBS)?.insert(id_of(job), job.encode_to_vec().as_slice())?;
        txn.commit()?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<StoredJob>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(JOBS)?;
        table.get(id)?.map(|v| decode(v.value())).transpose()
    }

    fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>, StoreError> {
        let id = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(REQUESTS)?;
            table.get(request_id)?.map(|id| id.value().to_owned())
        };
        match id {
            Some(id) => self.get(&id),
            None => Ok(None),
        }
    }

    fn unfinished(&self) -> Result<Vec<StoredJob>, StoreError> {
        let mut jobs: Vec<_> =
            self.all()?.into_iter().filter(|j| j.job.as_ref().is_some_and(|j| !is_terminal(j.state()))).collect();
        jobs.sort_by_key(|j| j.order);
        Ok(jobs)
    }

    fn ended_before(&self, cutoff_seconds: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .all()?
            .into_iter()
            .filter_map(|j| j.job)
            .filter(|j| is_terminal(j.state()) && j.end_time.is_some_and(|t| t.seconds < cutoff_seconds))
            .map(|j| j.id)
            .collect())
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut jobs = txn.open_table(JOBS)?;
            let request_id = jobs.remove(id)?.map(|v| decode(v.value())).transpose()?.map(|j| j.request_id);
            if let Some(request_id) = request_id.filter(|r| !r.is_empty()) {
                txn.open_table(REQUESTS)?.remove(request_id.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

pub fn is_terminal(state: JobState) -> bool {
    matches!(state, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

/// The files of each job: `<root>/<id>/input.<ext>` and `output.<ext>`.
#[derive(Clone, Debug)]
pub struct JobFiles {
    root: PathBuf,
}

impl JobFiles {
    pub fn new(root: PathBuf) -> JobFiles {
        JobFiles { root }
    }

    /// The job's directory. Ids are checked by the caller (`ids::is_valid`)
    /// before they reach a path.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn input(&self, id: &str, extension: &str) -> PathBuf {
        self.dir(id).join(format!("input.{extension}"))
    }

    /// The `index`-th further document of a merge (from 1).
    pub fn more_input(&self, id: &str, index: usize, extension: &str) -> PathBuf {
        self.dir(id).join(format!("input-{index}.{extension}"))
    }

    pub fn output(&self, id: &str, extension: &str) -> PathBuf {
        self.dir(id).join(format!("output.{extension}"))
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.dir(id));
    }

    /// The directory holding every job's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of every job directory on disk, whatever their records.
    pub fn dir_names(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::Job;

    fn job(id: &str, request_id: &str, state: JobState, order: u64) -> StoredJob {
        let mut job = Job { id: id.into(), ..Job::default() };
        job.set_state(state);
        StoredJob {
            job: Some(job),
            request_id: request_id.into(),
            input_extension: "docx".into(),
            order,
            options: None,
            more_inputs: vec![],
        }
    }

    #[test]
    fn request_ids_are_idempotent_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            assert!(matches!(store.insert(&job("a", "r1", JobState::Queued, 1)).unwrap(), Inserted::New));
            match store.insert(&job("b", "r1", JobState::Queued, 2)).unwrap() {
                Inserted::Existing(existing) => assert_eq!(id_of(&existing), "a"),
                Inserted::New => panic!("a repeated request id made a second job"),
            }
            assert!(store.get("b").unwrap().is_none());
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(id_of(&store.by_request_id("r1").unwrap().unwrap()), "a");
        store.delete("a").unwrap();
        assert!(store.by_request_id("r1").unwrap().is_none());
    }

    #[test]
    fn unfinished_jobs_come_back_in_submission_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("jobs.redb")).unwrap();
        store.insert(&job("z", "", JobState::Queued, 3)).unwrap();
        store.insert(&job("y", "", JobState::Running, 1)).unwrap();
        store.insert(&job("x", "", JobState::Succeeded, 2)).unwrap();
        let ids: Vec<_> = store.unfinished().unwrap().iter().map(|j| id_of(j).to_owned()).collect();
        assert_eq!(ids, ["y", "z"]);
    }
}
