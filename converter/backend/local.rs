//! A backend for one process: records, events and the queue in memory,
//! over a [`Ledger`] that keeps what must outlive the process.
//!
//! Jobs that have not ended live in memory with their current record (its
//! passing writes included) and a broadcast channel of its revisions; an
//! ended job lives only in the ledger. Lasting writes reach the ledger
//! before anyone sees them. The queue's durable form is the records
//! themselves: at open, every job that had not ended waits again, in
//! submission order (its lease died with the process).
//!
//! The state lock is a std mutex held for map and queue edits only, never
//! across an await or any I/O; writes of one job are put in order by that
//! job's own async lock, held across its ledger write.

use crate::error::{BackendError, Result};
use crate::ledger::{Inserted, Ledger};
use crate::line::{self, Line};
use crate::record::StoredJob;
use crate::{Created, Durability, Events, Lease, Queue, Records, Revision, has_ended, id_of, revision_of, stamp};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, broadcast};

/// Room for the revisions of a job, so a watcher that is a little slow
/// still sees each one; one further behind skips to newer ones. Records are
/// shared (`Arc`), so the buffer costs a pointer per slot.
const EVENTS_BUFFER: usize = 64;

/// Revisions reserved in the ledger ahead of use: one ledger write per
/// this many revisions keeps revisions growing across a crash that lost
/// passing writes.
const REVISION_BLOCK: Revision = 1 << 20;

pub struct Local {
    ledger: Arc<dyn Ledger>,
    lease: Duration,
    state: Mutex<State>,
    /// Wakes `lease` callers: one per pushed job, all at close.
    work: Notify,
}

#[derive(Default)]
struct State {
    live: HashMap<String, Live>,
    line: Line,
    /// The last revision handed out.
    revision: Revision,
    /// Revisions up to this are reserved in the ledger.
    reserved: Revision,
}

struct Live {
    record: Arc<StoredJob>,
    events: broadcast::Sender<Arc<StoredJob>>,
    /// Held by a write of this job from its check to its publication.
    writing: Arc<tokio::sync::Mutex<()>>,
    deliveries: u32,
}

impl Live {
    fn new(record: StoredJob) -> Live {
        Live {
            record: Arc::new(record),
            events: broadcast::channel(EVENTS_BUFFER).0,
            writing: Arc::default(),
            deliveries: 0,
        }
    }
}

impl Local {
    /// An empty backend over `ledger` (which holds nothing unfinished).
    pub(crate) fn new(ledger: Arc<dyn Ledger>, lease: Duration) -> Local {
        Local { ledger, lease, state: Mutex::default(), work: Notify::new() }
    }

    /// A backend over a ledger that may hold jobs from an earlier process:
    /// those that had not ended wait in the queue again.
    pub(crate) fn open(ledger: Arc<dyn Ledger>, lease: Duration) -> Result<Local> {
        let revision = ledger.revisions()?;
        let reserved = revision + REVISION_BLOCK;
        ledger.reserve_revisions(reserved)?;
        let unfinished = ledger.unfinished()?;
        let local = Local::new(ledger, lease);
        {
            let mut state = local.state();
            state.revision = revision;
            state.reserved = reserved;
            for record in unfinished {
                let id = id_of(&record).to_owned();
                state.live.insert(id.clone(), Live::new(record));
                state.line.waiting.push_back(id);
            }
        }
        Ok(local)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a ledger call off the async threads.
    async fn ledger<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Ledger) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || call(&*ledger))
            .await
            .map_err(|e| BackendError::Other(format!("a ledger call failed: {e}")))?
    }

    /// The next revision, reserved in the ledger before it is handed out.
    async fn next_revision(&self) -> Result<Revision> {
        let (revision, reserve) = {
            let mut state = self.state();
            state.revision += 1;
            let revision = state.revision;
            (revision, (revision > state.reserved).then_some(revision + REVISION_BLOCK))
        };
        if let Some(up_to) = reserve {
            self.ledger(move |ledger| ledger.reserve_revisions(up_to)).await?;
            let mut state = self.state();
            state.reserved = state.reserved.max(up_to);
        }
        Ok(revision)
    }

    /// Writes `record` to a job that has ended (it is not live): straight to
    /// the ledger, checked against the stored revision.
    async fn update_ended(&self, mut record: StoredJob) -> Result<StoredJob> {
        let id = id_of(&record).to_owned();
        let stored = {
            let id = id.clone();
            self.ledger(move |ledger| ledger.get(&id)).await?
        };
        let Some(stored) = stored else {
            return Err(BackendError::Missing { id });
        };
        if revision_of(&stored) != revision_of(&record) {
            return Err(BackendError::Conflict { id, current: revision_of(&stored) });
        }
        record.job.get_or_insert_default().sequence = self.next_revision().await?;
        stamp(&mut record);
        let written = record.clone();
        self.ledger(move |ledger| ledger.write(&written)).await?;
        Ok(record)
    }
}

#[async_trait]
impl Records for Local {
    async fn create(&self, mut record: StoredJob) -> Result<Created> {
        record.job.get_or_insert_default().sequence = self.next_revision().await?;
        stamp(&mut record);
        let written = record.clone();
        match self.ledger(move |ledger| ledger.insert(&written)).await? {
            Inserted::New => {
                self.state().live.insert(id_of(&record).to_owned(), Live::new(record.clone()));
                Ok(Created::New(record))
            }
            Inserted::Existing(existing) => {
                let live = self.state().live.get(id_of(&existing)).map(|l| StoredJob::clone(&l.record));
                Ok(Created::Existing(live.unwrap_or(existing)))
            }
        }
    }

    async fn get(&self, id: &str) -> Result<Option<StoredJob>> {
        if let Some(live) = self.state().live.get(id) {
            return Ok(Some(StoredJob::clone(&live.record)));
        }
        let id = id.to_owned();
        self.ledger(move |ledger| ledger.get(&id)).await
    }

    async fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>> {
        let request_id = request_id.to_owned();
        let Some(stored) = self.ledger(move |ledger| ledger.by_request_id(&request_id)).await? else {
            return Ok(None);
        };
        let live = self.state().live.get(id_of(&stored)).map(|l| StoredJob::clone(&l.record));
        Ok(Some(live.unwrap_or(stored)))
    }

    async fn update(&self, mut record: StoredJob, durability: Durability) -> Result<StoredJob> {
        let id = id_of(&record).to_owned();
        let Some(writing) = self.state().live.get(&id).map(|l| l.writing.clone()) else {
            return self.update_ended(record).await;
        };
        let _writing = writing.lock().await;
        let current = self.state().live.get(&id).map(|l| revision_of(&l.record));
        match current {
            // It ended while this write waited its turn.
            None => return self.update_ended(record).await,
            Some(current) if current != revision_of(&record) => {
                return Err(BackendError::Conflict { id, current });
            }
            Some(_) => {}
        }
        record.job.get_or_insert_default().sequence = self.next_revision().await?;
        stamp(&mut record);
        // An end is always lasting: an ended job lives only in the ledger.
        if durability == Durability::Lasting || has_ended(&record) {
            let written = record.clone();
            self.ledger(move |ledger| ledger.write(&written)).await?;
        }
        let record = Arc::new(record);
        let mut state = self.state();
        if let Some(live) = state.live.get_mut(&id) {
            live.record = record.clone();
            let _ = live.events.send(record.clone());
            if has_ended(&record) {
                // Dropping the sender ends every watch after this record.
                state.live.remove(&id);
            }
        }
        Ok(StoredJob::clone(&record))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        {
            let mut state = self.state();
            state.live.remove(id);
            state.line.forget(id);
        }
        let id = id.to_owned();
        self.ledger(move |ledger| ledger.delete(&id)).await
    }

    async fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>> {
        self.ledger(move |ledger| ledger.ended_before(cutoff)).await
    }

    async fn watch(&self, id: &str, from: Revision) -> Result<Option<Events>> {
        let live = self.state().live.get(id).map(|l| (l.record.clone(), l.events.subscribe()));
        let (current, events) = match live {
            Some((record, events)) => (record, Some(events)),
            None => {
                let id = id.to_owned();
                match self.ledger(move |ledger| ledger.get(&id)).await? {
                    Some(record) => (Arc::new(record), None),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(Box::pin(watch_stream(id.to_owned(), current, events, from))))
    }
}

/// Where a watch is: the record to send first, the revision last sent,
/// and the channel of later ones (none once the job has ended).
struct Watching {
    id: String,
    first: Option<Arc<StoredJob>>,
    last: Revision,
    events: Option<broadcast::Receiver<Arc<StoredJob>>>,
}

fn watch_stream(
    id: String,
    current: Arc<StoredJob>,
    events: Option<broadcast::Receiver<Arc<StoredJob>>>,
    from: Revision,
) -> impl futures_util::Stream<Item = Result<StoredJob>> + Send {
    let watching = Watching { id, first: Some(current), last: from.saturating_sub(1), events };
    futures_util::stream::unfold(watching, |mut w| async move {
        if let Some(first) = w.first.take() {
            if has_ended(&first) {
                w.events = None;
            }
            if revision_of(&first) > w.last {
                w.last = revision_of(&first);
                return Some((Ok(StoredJob::clone(&first)), w));
            }
        }
        let events = w.events.as_mut()?;
        loop {
            match events.recv().await {
                Ok(record) if revision_of(&record) <= w.last => {}
                Ok(record) => {
                    w.last = revision_of(&record);
                    if has_ended(&record) {
                        w.events = None;
                    }
                    return Some((Ok(StoredJob::clone(&record)), w));
                }
                // Too far behind: the records still buffered are newer anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                // The job was deleted before it ended.
                Err(broadcast::error::RecvError::Closed) => {
                    w.events = None;
                    let id = w.id.clone();
                    return Some((Err(BackendError::Missing { id }), w));
                }
            }
        }
    })
}

#[async_trait]
impl Queue for Local {
    async fn push(&self, id: &str) -> Result<()> {
        self.state().line.waiting.push_back(id.to_owned());
        self.work.notify_one();
        Ok(())
    }

    fn lease_time(&self) -> Duration {
        self.lease
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        line::lease(&self.work, || {
            let state = &mut *self.state();
            let live = &mut state.live;
            // A job deleted while it waited, or while leased, is dropped.
            state.line.expire(|id| live.contains_key(id));
            state.line.take(self.lease, |id| {
                live.get_mut(id).map(|live| {
                    live.deliveries += 1;
                    live.deliveries
                })
            })
        })
        .await
    }

    async fn extend(&self, lease: &Lease) -> Result<()> {
        self.state().line.extend(lease, self.lease)
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        self.state().line.finish(lease)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.state().line.release(lease)?;
        self.work.notify_one();
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        Ok(self.state().line.remove(id))
    }

    async fn waiting(&self) -> Result<Vec<String>> {
        Ok(self.state().line.waiting.iter().cloned().collect())
    }

    fn close(&self) {
        self.state().line.closed = true;
        self.work.notify_waiters();
    }
}
