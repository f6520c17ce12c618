//! Where a [`Local`](crate::Local) backend keeps what must outlive the
//! process: the records as of their last lasting write, and the highest
//! revision handed out. Calls block (file I/O); `Local` runs them off the
//! async threads.

use crate::error::BackendError;
use crate::record::StoredJob;
use crate::{Revision, ended_before, has_ended, id_of, revision_of};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// What `insert` did. Short-lived, so the size of the variants is moot.
#[allow(clippy::large_enum_variant)]
pub enum Inserted {
    New,
    /// A job with the same request id already existed; nothing was written.
    Existing(StoredJob),
}

/// Durable records. Every write is durable when the call returns.
pub trait Ledger: Send + Sync + 'static {
    /// Records a new job, unless its request id is already taken.
    fn insert(&self, job: &StoredJob) -> Result<Inserted, BackendError>;
    /// Replaces the record of a job, unless the stored one has a higher
    /// revision (writes of one job may finish out of order).
    fn write(&self, job: &StoredJob) -> Result<(), BackendError>;
    fn get(&self, id: &str) -> Result<Option<StoredJob>, BackendError>;
    fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>, BackendError>;
    /// Jobs not yet ended, in submission order.
    fn unfinished(&self) -> Result<Vec<StoredJob>, BackendError>;
    /// Ids of jobs that ended before `cutoff`.
    fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>, BackendError>;
    fn delete(&self, id: &str) -> Result<(), BackendError>;
    /// The highest revision that may have been handed out: every later one
    /// must be above it. Passing writes are not in the ledger, so revisions
    /// are reserved in blocks ahead of use (`reserve_revisions`).
    fn revisions(&self) -> Result<Revision, BackendError>;
    fn reserve_revisions(&self, up_to: Revision) -> Result<(), BackendError>;
}

/// A ledger in memory, for the in-memory backend: it lasts as long as the
/// process, which is all its tests need.
#[derive(Default)]
pub struct MemoryLedger {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    jobs: HashMap<String, StoredJob>,
    requests: HashMap<String, String>,
    reserved: Revision,
}

impl MemoryLedger {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ledger for MemoryLedger {
    fn insert(&self, job: &StoredJob) -> Result<Inserted, BackendError> {
        let mut state = self.state();
        if !job.request_id.is_empty() {
            if let Some(existing) = state.requests.get(&job.request_id).and_then(|id| state.jobs.get(id)) {
                return Ok(Inserted::Existing(existing.clone()));
            }
            state.requests.insert(job.request_id.clone(), id_of(job).to_owned());
        }
        state.jobs.insert(id_of(job).to_owned(), job.clone());
        Ok(Inserted::New)
    }

    fn write(&self, job: &StoredJob) -> Result<(), BackendError> {
        let mut state = self.state();
        let newer = state.jobs.get(id_of(job)).is_none_or(|stored| revision_of(stored) <= revision_of(job));
        if newer {
            state.jobs.insert(id_of(job).to_owned(), job.clone());
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<StoredJob>, BackendError> {
        Ok(self.state().jobs.get(id).cloned())
    }

    fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>, BackendError> {
        let state = self.state();
        Ok(state.requests.get(request_id).and_then(|id| state.jobs.get(id)).cloned())
    }

    fn unfinished(&self) -> Result<Vec<StoredJob>, BackendError> {
        let mut jobs: Vec<_> = self.state().jobs.values().filter(|j| !has_ended(j)).cloned().collect();
        jobs.sort_by_key(|j| j.order);
        Ok(jobs)
    }

    fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>, BackendError> {
        Ok(self.state().jobs.values().filter(|j| ended_before(j, cutoff)).map(|j| id_of(j).to_owned()).collect())
    }

    fn delete(&self, id: &str) -> Result<(), BackendError> {
        let mut state = self.state();
        if let Some(job) = state.jobs.remove(id)
            && !job.request_id.is_empty()
        {
            state.requests.remove(&job.request_id);
        }
        Ok(())
    }

    fn revisions(&self) -> Result<Revision, BackendError> {
        let state = self.state();
        Ok(state.jobs.values().map(revision_of).fold(state.reserved, u64::max))
    }

    fn reserve_revisions(&self, up_to: Revision) -> Result<(), BackendError> {
        self.state().reserved = up_to;
        Ok(())
    }
}

/// Where a [`DurableQueue`](crate::DurableQueue) keeps which ids wait in it
/// (leased or not), so they wait again after a restart. Every write is
/// durable when the call returns.
pub trait QueueLedger: Send + Sync + 'static {
    /// Records `id` as queued at `place` (places grow with every push).
    fn enqueue(&self, id: &str, place: u64) -> Result<(), BackendError>;
    /// Forgets `id`; nothing happens if it is not queued.
    fn dequeue(&self, id: &str) -> Result<(), BackendError>;
    /// The queued ids with their places, in no particular order.
    fn queued(&self) -> Result<Vec<(String, u64)>, BackendError>;
}

/// A queue ledger in memory, for the in-memory backend.
#[derive(Default)]
pub struct MemoryQueueLedger {
    queued: Mutex<HashMap<String, u64>>,
}

impl QueueLedger for MemoryQueueLedger {
    fn enqueue(&self, id: &str, place: u64) -> Result<(), BackendError> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), place);
        Ok(())
    }

    fn dequeue(&self, id: &str) -> Result<(), BackendError> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        Ok(())
    }

    fn queued(&self) -> Result<Vec<(String, u64)>, BackendError> {
        let queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(queued.iter().map(|(id, place)| (id.clone(), *place)).collect())
    }
}
