//! The embedded ledger: job records in a redb database file.
//!
//! The store has to survive what a disk does to it:
//! - After a failed write (a full disk, most often) redb refuses every later
//!   call until the database is opened again, so the store reopens it and
//!   tries the call once more: freeing space is enough to recover.
//! - A full disk is reported as such (`BackendError::OutOfSpace`), so callers
//!   can say so instead of reporting an internal error.
//! - A damaged file (empty, not a database, failing redb's integrity check,
//!   or making redb panic) stops the start with `BackendError::Damaged`; it is
//!   never replaced by an empty store, which would lose every job silently.

use crate::error::BackendError;
use crate::ledger::{Inserted, Ledger, QueueLedger};
use crate::record::StoredJob;
use crate::{Revision, ended_before, has_ended, id_of, revision_of};
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

/// Job id → encoded `StoredJob`.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
/// Request id → job id, for idempotent submits.
const REQUESTS: TableDefinition<&str, &str> = TableDefinition::new("requests");
/// Job id → place, for the webhook deliveries queued (see `DurableQueue`).
const DELIVERIES: TableDefinition<&str, u64> = TableDefinition::new("deliveries");
/// Settings of the store itself: `REVISIONS_RESERVED`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// No revision up to this one may be handed out again (see `Ledger`).
const REVISIONS_RESERVED: &str = "revisions-reserved";

impl<E: Into<redb::Error>> From<E> for BackendError {
    fn from(e: E) -> Self {
        classify(e.into(), None)
    }
}

/// Sorts a redb error into what a caller can act on. `file` names the
/// database in a `Damaged` message when it is known.
fn classify(e: redb::Error, file: Option<&Path>) -> BackendError {
    if is_no_space(&e) {
        BackendError::OutOfSpace(format!("out of disk space ({e})"))
    } else if matches!(e, redb::Error::Corrupted(_)) {
        damaged(file, e)
    } else {
        BackendError::Other(e.to_string())
    }
}

/// Errors at open time: redb reports a file that is not a database, or one
/// too short to hold its header, as an I/O error of these kinds.
fn classify_open(e: redb::Error, file: &Path) -> BackendError {
    match &e {
        redb::Error::Io(io)
            if matches!(io.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
        {
            damaged(Some(file), e)
        }
        _ => classify(e, Some(file)),
    }
}

/// Whether the disk or quota is full, wherever redb keeps the I/O error.
fn is_no_space(e: &redb::Error) -> bool {
    match e {
        redb::Error::Io(io) => chain_has_no_space(io),
        redb::Error::Backend(inner) => chain_has_no_space(&**inner),
        _ => false,
    }
}

fn chain_has_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
                || matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
            {
                return true;
            }
            // An io::Error wrapping another error reports the wrapped
            // error's source, not the wrapped error itself.
            if let Some(inner) = io.get_ref()
                && chain_has_no_space(inner)
            {
                return true;
            }
        }
        next = e.source();
    }
    false
}

fn damaged(file: Option<&Path>, detail: impl std::fmt::Display) -> BackendError {
    let file = file.map_or_else(|| "the database".to_owned(), |f| f.display().to_string());
    BackendError::Damaged(format!(
        "{file} is damaged ({detail}); move it aside to start with an empty store (the jobs it held are lost) \
         or restore it from a backup"
    ))
}

/// A panic inside redb means it met data it never wrote: the file is damaged.
fn panicked(file: &Path, payload: &(dyn Any + Send)) -> BackendError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    damaged(Some(file), format_args!("the database engine panicked: {message}"))
}

/// Why one try of an operation failed: the database's error, kept whole so
/// that `run` can tell whether reopening may help, or a record that does not
/// decode.
enum Failure {
    Redb(redb::Error),
    Record(String),
}

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Redb(e.into())
    }
}

/// After an I/O error redb answers `PreviousIo` to everything until the
/// database is opened again; an `Io` error is the first of those.
fn needs_reopen(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

pub struct RedbStore {
    path: PathBuf,
    /// Operations hold the read lock for as long as their transactions live;
    /// reopening holds the write lock, so the old `Database` is dropped (and
    /// its file lock released) only when no transaction is in flight.
    handle: RwLock<Handle>,
}

struct Handle {
    /// `None` once a failure has closed the database and reopening it has not
    /// worked yet (the disk is still full, say); the next operation tries again.
    db: Option<Database>,
    /// Counts the databases opened, so that of several operations failing on
    /// the same one only the first reopens it.
    generation: u64,
}

impl RedbStore {
    /// Opens the store at `path`, creating it only if there is no file there.
    pub fn open(path: &Path) -> Result<RedbStore, BackendError> {
        let db = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_database(path)?,
            Err(e) => return Err(BackendError::Other(format!("cannot read {}: {e}", path.display()))),
            Ok(_) => open_database(path)?,
        };
        Ok(RedbStore { path: path.to_owned(), handle: RwLock::new(Handle { db: Some(db), generation: 0 }) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Handle> {
        // Panics are caught inside the guards, so poisoning means nothing here.
        self.handle.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Handle> {
        self.handle.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` on the database. If it fails in a way redb only recovers
    /// from by being opened again, reopens it and runs `op` once more. `op`
    /// must therefore be safe to repeat, including after a commit that took
    /// effect although it reported an error.
    fn run<T>(&self, op: impl Fn(&Database) -> Result<T, Failure>) -> Result<T, BackendError> {
        let (result, generation) = self.attempt(&op)?;
        let e = match result {
            Ok(value) => return Ok(value),
            Err(Failure::Redb(e)) if needs_reopen(&e) => e,
            Err(failure) => return Err(self.failed(failure, generation)),
        };
        tracing::warn!("job store {}: {e}; opening it again and retrying", self.path.display());
        self.reopen(Some(generation))?;
        match self.attempt(&op)? {
            (Ok(value), _) => Ok(value),
            (Err(failure), generation) => Err(self.failed(failure, generation)),
        }
    }

    /// The error to report for `failure` on the database of `generation`.
    fn failed(&self, failure: Failure, generation: u64) -> BackendError {
        let e = match failure {
            Failure::Redb(e) => classify(e, Some(&self.path)),
            Failure::Record(message) => BackendError::Other(message),
        };
        if matches!(e, BackendError::Damaged(_)) {
            // As after a panic: the next operation opens the file again,
            // and the integrity check decides whether it may be used.
            self.close(generation);
        }
        e
    }

    /// One try of `op`, opening the database first if it is closed. Returns
    /// the result with the generation of the database it ran on.
    fn attempt<T>(
        &self,
        op: &impl Fn(&Database) -> Result<T, Failure>,
    ) -> Result<(Result<T, Failure>, u64), BackendError> {
        // Another operation may close the database again between the reopen
        // and the read lock (it panicked); a few rounds are plenty.
        for _ in 0..3 {
            {
                let handle = self.read();
                if let Some(db) = &handle.db {
                    let generation = handle.generation;
                    return match catch_unwind(AssertUnwindSafe(|| op(db))) {
                        Ok(result) => Ok((result, generation)),
                        Err(payload) => {
                            drop(handle);
                            // redb may be left inconsistent by the panic: no
                            // retry; the next operation reopens the file, which
                            // checks it.
                            self.close(generation);
                            Err(panicked(&self.path, &*payload))
                        }
                    };
                }
            }
            self.reopen(None)?;
        }
        Err(BackendError::Other(format!("{} keeps being closed by failing operations", self.path.display())))
    }

    /// Opens the database again: if `failed` is the generation that is still
    /// open, or if it is closed. Several operations failing on the same
    /// database thus reopen it once.
    fn reopen(&self, failed: Option<u64>) -> Result<(), BackendError> {
        let mut handle = self.write();
        if handle.db.is_some() && failed != Some(handle.generation) {
            return Ok(());
        }
        // redb locks the file: the old database must be gone before the
        // file can be opened again.
        if let Some(old) = handle.db.take() {
            discard(old);
        }
        handle.generation += 1;
        // Never created here: a file gone while the service runs must not
        // turn into an empty store.
        handle.db = Some(open_database(&self.path)?);
        Ok(())
    }

    /// Closes the database after a panic or damage, unless it was reopened
    /// meanwhile.
    fn close(&self, generation: u64) {
        let mut handle = self.write();
        if handle.generation == generation
            && let Some(old) = handle.db.take()
        {
            handle.generation += 1;
            discard(old);
        }
    }
}

/// Drops a database that may be in a bad state: its drop writes to the file
/// and may panic on the same damage that closed it.
fn discard(db: Database) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
}

/// Opens an existing store, refusing a file that is not an intact job store.
fn open_database(path: &Path) -> Result<Database, BackendError> {
    // redb's `open` refuses an empty file too, but with a message that does
    // not say what to do.
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() == 0 => return Err(damaged(Some(path), "the file is empty")),
        Ok(_) => {}
        Err(e) => return Err(BackendError::Other(format!("cannot open {}: {e}", path.display()))),
    }
    let repaired = Arc::new(AtomicBool::new(false));
    let mut builder = Database::builder();
    {
        let repaired = repaired.clone();
        builder.set_repair_callback(move |_| repaired.store(true, Ordering::Relaxed));
    }
    // `Database::open`, never `create`: `create` initialises an empty file.
    let mut db = match catch_unwind(AssertUnwindSafe(|| builder.open(path))) {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(classify_open(e.into(), path)),
        Err(payload) => return Err(panicked(path, &*payload)),
    };
    if repaired.load(Ordering::Relaxed) {
        // Normal after a crash or a failed write: redb rolls back to the last
        // complete commit.
        tracing::warn!("job store {} was not closed cleanly and has been repaired", path.display());
    }
    // A plain open trusts a cleanly closed file, and may panic later on pages
    // garbled behind redb's back; the check reads every page now.
    let checked = match catch_unwind(AssertUnwindSafe(|| db.check_integrity())) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(damaged(Some(path), "it failed the integrity check")),
        Ok(Err(e)) => Err(classify_open(e.into(), path)),
        Err(payload) => Err(panicked(path, &*payload)),
    };
    if let Err(e) = checked {
        discard(db);
        return Err(e);
    }
    match catch_unwind(AssertUnwindSafe(|| create_tables(&db))) {
        Ok(Ok(())) => Ok(db),
        Ok(Err(e)) => {
            discard(db);
            Err(classify_open(e, path))
        }
        Err(payload) => {
            discard(db);
            Err(panicked(path, &*payload))
        }
    }
}

fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(JOBS)?;
    txn.open_table(REQUESTS)?;
    txn.open_table(META)?;
    txn.open_table(DELIVERIES)?;
    txn.commit()?;
    Ok(())
}

/// Creates a new store at `path`, which does not exist. It is built under a
/// temporary name and renamed into place, so that a crash or a full disk
/// while creating leaves either no file or a complete store: a half-written
/// `path` would be refused as damaged at every later start.
fn create_database(path: &Path) -> Result<Database, BackendError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".new");
    let partial = PathBuf::from(partial);
    // Left by a crash while creating; it never held a job.
    let _ = std::fs::remove_file(&partial);
    let created = match catch_unwind(AssertUnwindSafe(|| -> Result<(), redb::Error> {
        let db = Database::create(&partial)?;
        create_tables(&db)?;
        // `close` reports what dropping would ignore.
        db.close()?;
        Ok(())
    })) {
        Ok(Ok(())) => std::fs::rename(&partial, path).map_err(|e| file_error("cannot create", path, e)),
        Ok(Err(e)) => Err(classify(e, Some(&partial))),
        Err(payload) => Err(panicked(&partial, &*payload)),
    };
    if let Err(e) = created {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // The rename is durable once the directory is.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| file_error("cannot sync", dir, e))?;
    open_database(path)
}

fn file_error(what: &str, path: &Path, e: std::io::Error) -> BackendError {
    if chain_has_no_space(&e) {
        BackendError::OutOfSpace(format!("out of disk space ({what} {}: {e})", path.display()))
    } else {
        BackendError::Other(format!("{what} {}: {e}", path.display()))
    }
}

fn decode(bytes: &[u8]) -> Result<StoredJob, Failure> {
    StoredJob::decode(bytes).map_err(|e| Failure::Record(format!("corrupt record: {e}")))
}

fn all(db: &Database) -> Result<Vec<StoredJob>, Failure> {
    let txn = db.begin_read()?;
    let table = txn.open_table(JOBS)?;
    let mut jobs = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        jobs.push(decode(value.value())?);
    }
    Ok(jobs)
}

impl Ledger for RedbStore {
    fn insert(&self, job: &StoredJob) -> Result<Inserted, BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut requests = txn.open_table(REQUESTS)?;
                let mut jobs = txn.open_table(JOBS)?;
                if !job.request_id.is_empty() {
                    let existing = requests.get(job.request_id.as_str())?.map(|id| id.value().to_owned());
                    if let Some(existing) = existing {
                        // This very job: a first try whose commit took
                        // effect although it reported an I/O error.
                        if existing == id_of(job) {
                            return Ok(Inserted::New);
                        }
                        if let Some(record) = jobs.get(existing.as_str())? {
                            return Ok(Inserted::Existing(decode(record.value())?));
                        }
                    }
                    requests.insert(job.request_id.as_str(), id_of(job))?;
                }
                jobs.insert(id_of(job), job.encode_to_vec().as_slice())?;
            }
            txn.commit()?;
            Ok(Inserted::New)
        })
    }

    fn write(&self, job: &StoredJob) -> Result<(), BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut jobs = txn.open_table(JOBS)?;
                let stored = jobs.get(id_of(job))?.map(|v| decode(v.value())).transpose()?;
                // Writes of one job may finish out of order; the newest stays.
                if stored.is_some_and(|stored| revision_of(&stored) > revision_of(job)) {
                    return Ok(());
                }
                jobs.insert(id_of(job), job.encode_to_vec().as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn get(&self, id: &str) -> Result<Option<StoredJob>, BackendError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(JOBS)?;
            table.get(id)?.map(|v| decode(v.value())).transpose()
        })
    }

    fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>, BackendError> {
        self.run(|db| {
            // Both lookups in one transaction: they see the same commit.
            let txn = db.begin_read()?;
            let Some(id) = txn.open_table(REQUESTS)?.get(request_id)?.map(|id| id.value().to_owned()) else {
                return Ok(None);
            };
            let table = txn.open_table(JOBS)?;
            table.get(id.as_str())?.map(|v| decode(v.value())).transpose()
        })
    }

    fn unfinished(&self) -> Result<Vec<StoredJob>, BackendError> {
        let mut jobs: Vec<_> = self.run(all)?.into_iter().filter(|j| !has_ended(j)).collect();
        jobs.sort_by_key(|j| j.order);
        Ok(jobs)
    }

    fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>, BackendError> {
        Ok(self.run(all)?.iter().filter(|j| ended_before(j, cutoff)).map(|j| id_of(j).to_owned()).collect())
    }

    fn delete(&self, id: &str) -> Result<(), BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut jobs = txn.open_table(JOBS)?;
                let request_id = jobs.remove(id)?.map(|v| decode(v.value())).transpose()?.map(|j| j.request_id);
                if let Some(request_id) = request_id.filter(|r| !r.is_empty()) {
                    txn.open_table(REQUESTS)?.remove(request_id.as_str())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn revisions(&self) -> Result<Revision, BackendError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let reserved = txn.open_table(META)?.get(REVISIONS_RESERVED)?.map_or(0, |v| v.value());
            // Stores written before revisions were reserved hold only their records'.
            Ok(all(db)?.iter().map(revision_of).fold(reserved, u64::max))
        })
    }

    fn reserve_revisions(&self, up_to: Revision) -> Result<(), BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(REVISIONS_RESERVED, up_to)?;
            txn.commit()?;
            Ok(())
        })
    }
}

/// The deliveries queue lives in the job store's file: one file to keep,
/// back up and check, and redb allows one process per file anyway.
impl QueueLedger for RedbStore {
    fn enqueue(&self, id: &str, place: u64) -> Result<(), BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(DELIVERIES)?.insert(id, place)?;
            txn.commit()?;
            Ok(())
        })
    }

    fn dequeue(&self, id: &str) -> Result<(), BackendError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(DELIVERIES)?.remove(id)?;
            txn.commit()?;
            Ok(())
        })
    }

    fn queued(&self) -> Result<Vec<(String, u64)>, BackendError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(DELIVERIES)?;
            let mut queued = Vec::new();
            for entry in table.iter()? {
                let (id, place) = entry?;
                queued.push((id.value().to_owned(), place.value()));
            }
            Ok(queued)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::Job;
    use docconv::proto::v1::JobState;

    fn job(id: &str, request_id: &str, state: JobState, order: u64) -> StoredJob {
        let mut job = Job { id: id.into(), ..Job::default() };
        job.set_state(state);
        StoredJob {
            job: Some(job),
            request_id: request_id.into(),
            input_extension: "docx".into(),
            order,
            ..StoredJob::default()
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

    /// Deterministic pseudo-random bytes (splitmix64), so that every run
    /// garbles the same bytes.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed;
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    /// A record of about 1 KiB, so that a few hundred fill many pages.
    fn big_job(n: usize) -> StoredJob {
        let mut record = job(&format!("job-{n:04}"), &format!("request-{n:04}"), JobState::Queued, n as u64);
        record.job.as_mut().unwrap().file_name = format!("{n:04}-{}.docx", "x".repeat(1000));
        record
    }

    fn expect_damaged(result: Result<RedbStore, BackendError>) -> String {
        match result {
            Err(BackendError::Damaged(message)) => message,
            Err(e) => panic!("expected Damaged, got {e:?}"),
            Ok(_) => panic!("expected Damaged, the store opened"),
        }
    }

    #[test]
    fn a_missing_file_is_created_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        // Left by a crash while creating.
        std::fs::write(dir.path().join("jobs.redb.new"), b"half").unwrap();
        let store = RedbStore::open(&path).unwrap();
        store.insert(&job("a", "", JobState::Queued, 1)).unwrap();
        assert!(!dir.path().join("jobs.redb.new").exists());
        drop(store);
        assert!(RedbStore::open(&path).unwrap().get("a").unwrap().is_some());
    }

    #[test]
    fn an_empty_file_is_damaged_not_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        std::fs::write(&path, b"").unwrap();
        let message = expect_damaged(RedbStore::open(&path));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("move it aside"), "{message}");
        // Left as it was, for whoever looks at it.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        for len in [1, 7, 100, 4096, 65536] {
            std::fs::write(&path, noise(len as u64, len)).unwrap();
            let message = expect_damaged(RedbStore::open(&path));
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(std::fs::read(&path).unwrap(), noise(len as u64, len), "the file was changed");
        }
    }

    #[test]
    fn a_truncated_store_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            for n in 0..50 {
                store.insert(&big_job(n)).unwrap();
            }
        }
        let whole = std::fs::read(&path).unwrap();
        for len in [10, 100, 512, 4096] {
            std::fs::write(&path, &whole[..len]).unwrap();
            expect_damaged(RedbStore::open(&path));
        }
    }

    #[test]
    fn errors_say_whether_the_disk_is_full_or_the_store_damaged() {
        use std::io::Error as IoError;
        let no_space = || IoError::from_raw_os_error(libc::ENOSPC);
        for e in [
            BackendError::from(redb::StorageError::Io(no_space())),
            BackendError::from(redb::CommitError::Storage(redb::StorageError::Io(no_space()))),
            BackendError::from(redb::Error::Io(IoError::from_raw_os_error(libc::EDQUOT))),
            // Wrapped errors are looked into.
            BackendError::from(redb::Error::Io(IoError::other(no_space()))),
            BackendError::from(redb::Error::Backend(Box::new(no_space()))),
        ] {
            assert!(e.is_out_of_space(), "{e:?}");
            assert!(e.to_string().starts_with("job store: out of disk space ("), "{e}");
        }
        let e = BackendError::from(redb::StorageError::Corrupted("bad page".into()));
        assert!(
            matches!(&e, BackendError::Damaged(m) if m.contains("bad page") && m.contains("move it aside")),
            "{e:?}"
        );
        for e in [
            BackendError::from(redb::Error::Io(IoError::from_raw_os_error(libc::EACCES))),
            BackendError::from(redb::StorageError::PreviousIo),
            BackendError::from(redb::TransactionError::WouldBlock),
        ] {
            assert!(matches!(e, BackendError::Other(_)), "{e:?}");
            assert!(!e.is_out_of_space());
            assert!(e.to_string().starts_with("job store: "), "{e}");
        }
    }

    /// A small tmpfs mounted on a directory, unmounted when dropped.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        /// `None` when this process may not mount file systems.
        fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
            let output = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir)
                .output()
                .expect("mount could not be run");
            if output.status.success() {
                return Some(Tmpfs(dir.to_owned()));
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            // SAFETY: geteuid has no preconditions and cannot fail.
            if !rustix::process::geteuid().is_root() {
                eprintln!("skipped: mounting a tmpfs to fill needs root ({})", stderr.trim());
                return None;
            }
            panic!("mount failed although running as root: {stderr}");
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let unmounted = std::process::Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
            if !unmounted {
                let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
            }
        }
    }

    /// Writes to `path` until the file system is full.
    fn fill(path: &Path) {
        use std::io::Write;
        let mut filler = std::fs::File::create(path).unwrap();
        let chunk = vec![0x55; 64 * 1024];
        loop {
            match filler.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }

    /// Inserts records from `first` on until one fails; returns its number and error.
    fn insert_until_failure(store: &RedbStore, first: usize) -> (usize, BackendError) {
        for n in first..first + 10_000 {
            if let Err(e) = store.insert(&big_job(n)) {
                return (n, e);
            }
        }
        panic!("10000 inserts of 1 KiB succeeded on a full 8 MiB file system");
    }

    #[test]
    fn a_full_disk_is_reported_and_freeing_space_is_enough_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        // Declared before the store, so the store is closed before the unmount.
        let Some(_tmpfs) = Tmpfs::mount(dir.path(), "8m") else { return };
        let path = dir.path().join("jobs.redb");
        let filler = dir.path().join("filler");
        let store = RedbStore::open(&path).unwrap();
        store.insert(&big_job(0)).unwrap();

        fill(&filler);
        let (failed, e) = insert_until_failure(&store, 1);
        assert!(e.is_out_of_space(), "{e:?}");
        assert!(e.to_string().starts_with("job store: out of disk space ("), "{e}");

        // Freeing space is all it takes: no reopening by hand.
        std::fs::remove_file(&filler).unwrap();
        assert!(matches!(store.insert(&big_job(failed)).unwrap(), Inserted::New));
        assert_eq!(store.get(&format!("job-{failed:04}")).unwrap(), Some(big_job(failed)));

        // Full again, then several threads at once after space is freed:
        // each of them finds the database failed, and it is reopened once.
        fill(&filler);
        let (failed, e) = insert_until_failure(&store, failed + 1);
        assert!(e.is_out_of_space(), "{e:?}");
        std::fs::remove_file(&filler).unwrap();
        let generation = store.read().generation;
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = &store;
                scope.spawn(move || {
                    for n in (0..5).map(|i| 100_000 + t * 10 + i) {
                        store.insert(&big_job(n)).unwrap();
                        assert_eq!(store.get(&format!("job-{n:04}")).unwrap(), Some(big_job(n)));
                    }
                });
            }
        });
        assert_eq!(store.read().generation, generation + 1, "the database was reopened more than once");

        // Everything that was acknowledged is durable.
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        for n in (0..failed).chain((0..4).flat_map(|t| (0..5).map(move |i| 100_000 + t * 10 + i))) {
            assert!(store.get(&format!("job-{n:04}")).unwrap().is_some(), "job {n} is lost");
        }
    }

    /// A store of `count` 1 KiB records, as bytes, and the records.
    fn many_pages(dir: &Path, count: usize) -> Vec<u8> {
        let path = dir.join("pristine.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            for n in 0..count {
                store.insert(&big_job(n)).unwrap();
            }
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        bytes
    }

    /// Where `garble` overwrites: three 4 KiB pages past the header, spread
    /// over a file of `len` bytes, different for each seed.
    fn garbled_offsets(seed: u64, len: usize) -> impl Iterator<Item = (u64, Vec<u8>)> {
        let pages = (len as u64 - 8192) / 4096;
        (0..3u64).map(move |k| (4096 * (1 + (seed * 7919 + k * 104_729) % pages), noise(seed * 10 + k, 4096)))
    }

    #[test]
    fn garbled_pages_are_damage_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let whole = many_pages(dir.path(), 300);
        assert!(whole.len() > 100 * 4096, "only {} bytes", whole.len());
        let path = dir.path().join("jobs.redb");
        for seed in 1..=12 {
            let mut bytes = whole.clone();
            for (offset, garbage) in garbled_offsets(seed, whole.len()) {
                bytes[offset as usize..][..4096].copy_from_slice(&garbage);
            }
            std::fs::write(&path, &bytes).unwrap();
            // Every one of these is refused at open: redb panics on the
            // garbled pages or its integrity check fails. The refusal does
            // not repair the file into something a second start accepts.
            for _ in 0..2 {
                let message = expect_damaged(RedbStore::open(&path));
                assert!(message.contains(&path.display().to_string()), "seed {seed}: {message}");
            }
        }
    }

    #[test]
    fn pages_garbled_while_open_give_damage_not_a_panic() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let count = 300;
        let whole = many_pages(dir.path(), count);
        let path = dir.path().join("jobs.redb");
        for seed in 1..=12 {
            std::fs::write(&path, &whole).unwrap();
            let store = RedbStore::open(&path).unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            for (offset, garbage) in garbled_offsets(seed, whole.len()) {
                file.write_all_at(&garbage, offset).unwrap();
            }
            // Each record comes back whole or the store reports damage;
            // once damage is found, the store stays refused.
            let mut damaged = 0;
            for n in 0..count {
                match store.get(&format!("job-{n:04}")) {
                    Ok(record) => {
                        assert_eq!(damaged, 0, "seed {seed}: job {n} read after the damage was found");
                        assert_eq!(record, Some(big_job(n)), "seed {seed}");
                    }
                    Err(BackendError::Damaged(_)) => damaged += 1,
                    Err(e) => panic!("seed {seed}: {e:?}"),
                }
            }
            assert!(damaged > 0, "seed {seed}: no read met the garbled pages");
            assert!(matches!(store.unfinished(), Err(BackendError::Damaged(_))), "seed {seed}");
            assert!(matches!(store.insert(&big_job(count)), Err(BackendError::Damaged(_))), "seed {seed}");
        }
    }

    #[test]
    fn a_store_left_open_by_a_crash_is_repaired_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.redb");
        let copy = dir.path().join("crashed.redb");
        let store = RedbStore::open(&path).unwrap();
        for n in 0..20 {
            store.insert(&big_job(n)).unwrap();
        }
        // The file as a crash would leave it: every commit in it, but not
        // closed.
        std::fs::copy(&path, &copy).unwrap();
        drop(store);
        let store = RedbStore::open(&copy).unwrap();
        for n in 0..20 {
            assert_eq!(store.get(&format!("job-{n:04}")).unwrap(), Some(big_job(n)));
        }
    }

    #[test]
    fn a_panic_is_reported_as_damage_and_the_file_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("jobs.redb")).unwrap();
        store.insert(&job("a", "", JobState::Queued, 1)).unwrap();
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let e = store
            .run(|_| -> Result<(), Failure> {
                tries.fetch_add(1, Ordering::Relaxed);
                panic!("page out of range")
            })
            .unwrap_err();
        assert!(matches!(&e, BackendError::Damaged(m) if m.contains("page out of range")), "{e:?}");
        assert_eq!(tries.into_inner(), 1, "a panic was retried");
        assert!(store.read().db.is_none(), "the database is still open after a panic");
        // The file itself is intact: the next call opens it and works.
        assert!(store.get("a").unwrap().is_some());
    }

    #[test]
    fn an_io_failure_reopens_the_database_and_retries_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("jobs.redb")).unwrap();
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let value = store
            .run(|_| match tries.fetch_add(1, Ordering::Relaxed) {
                0 => Err(redb::StorageError::PreviousIo)?,
                _ => Ok(7),
            })
            .unwrap();
        assert_eq!((value, store.read().generation), (7, 1));

        let tries = std::sync::atomic::AtomicUsize::new(0);
        let e = store
            .run(|_| -> Result<(), Failure> {
                tries.fetch_add(1, Ordering::Relaxed);
                Err(redb::StorageError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)))?
            })
            .unwrap_err();
        assert!(e.is_out_of_space(), "{e:?}");
        assert_eq!((tries.into_inner(), store.read().generation), (2, 2));
    }

    #[test]
    fn inserting_the_same_job_again_is_not_a_duplicate() {
        // A retry after a commit that took effect although it reported an
        // I/O error: the job is there, and it is this job, not an earlier one.
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("jobs.redb")).unwrap();
        assert!(matches!(store.insert(&job("a", "r1", JobState::Queued, 1)).unwrap(), Inserted::New));
        assert!(matches!(store.insert(&job("a", "r1", JobState::Queued, 1)).unwrap(), Inserted::New));
        assert!(matches!(store.insert(&job("b", "r1", JobState::Queued, 2)).unwrap(), Inserted::Existing(_)));
    }
}
