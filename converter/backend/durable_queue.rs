//! A queue of one process that outlives it: leases in memory, and which
//! ids wait (leased or not) in a [`QueueLedger`]. The job queue of
//! [`Local`](crate::Local) needs none, as its records say which jobs have
//! not ended; a queue of other work (webhook deliveries, which wait for
//! jobs that have ended) keeps its own ledger.
//!
//! An id already waiting or leased is not queued twice: the work it stands
//! for is one piece of work however often it is asked for.
//!
//! The state lock is a std mutex held for map and queue edits only, never
//! across an await or any I/O.

use crate::error::{BackendError, Result};
use crate::ledger::QueueLedger;
use crate::line::{self, Line};
use crate::{Lease, Queue};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

pub struct DurableQueue {
    ledger: Arc<dyn QueueLedger>,
    lease: Duration,
    state: Mutex<State>,
    /// Wakes `lease` callers: one per pushed id, all at close.
    work: Notify,
}

#[derive(Default)]
struct State {
    line: Line,
    /// Times each queued id was handed out.
    deliveries: HashMap<String, u32>,
    /// The place of the next push, above every place in the ledger.
    next_place: u64,
}

impl DurableQueue {
    /// The queue `ledger` holds: what was queued when the last process
    /// stopped waits again, in the order it was pushed (its leases died
    /// with that process).
    pub(crate) fn open(ledger: Arc<dyn QueueLedger>, lease: Duration) -> Result<DurableQueue> {
        let mut queued = ledger.queued()?;
        queued.sort_by_key(|(_, place)| *place);
        let mut state = State { next_place: queued.last().map_or(1, |(_, place)| place + 1), ..State::default() };
        state.line.waiting = queued.into_iter().map(|(id, _)| id).collect();
        Ok(DurableQueue { ledger, lease, state: Mutex::new(state), work: Notify::new() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a ledger call off the async threads.
    async fn ledger(&self, call: impl FnOnce(&dyn QueueLedger) -> Result<()> + Send + 'static) -> Result<()> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || call(&*ledger))
            .await
            .map_err(|e| BackendError::Other(format!("a queue ledger call failed: {e}")))?
    }
}

#[async_trait]
impl Queue for DurableQueue {
    fn lease_time(&self) -> Duration {
        self.lease
    }

    async fn push(&self, id: &str) -> Result<()> {
        let place = {
            let mut state = self.state();
            if state.line.has(id) {
                return Ok(());
            }
            state.next_place += 1;
            state.next_place - 1
        };
        let owned = id.to_owned();
        self.ledger(move |ledger| ledger.enqueue(&owned, place)).await?;
        {
            let mut state = self.state();
            // Pushed by another call meanwhile.
            if state.line.has(id) {
                return Ok(());
            }
            state.line.waiting.push_back(id.to_owned());
        }
        self.work.notify_one();
        Ok(())
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        line::lease(&self.work, || {
            let state = &mut *self.state();
            state.line.expire(|_| true);
            let deliveries = &mut state.deliveries;
            state.line.take(self.lease, |id| {
                let count = deliveries.entry(id.to_owned()).or_default();
                *count += 1;
                Some(*count)
            })
        })
        .await
    }

    async fn extend(&self, lease: &Lease) -> Result<()> {
        self.state().line.extend(lease, self.lease)
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        if !self.state().line.held(lease) {
            return Err(line::lost(lease));
        }
        // Forgotten durably first: should that fail, the lease runs out and
        // the work is handed out again, which at-least-once allows.
        let id = lease.id.clone();
        self.ledger(move |ledger| ledger.dequeue(&id)).await?;
        let mut state = self.state();
        state.line.finish(lease)?;
        state.deliveries.remove(&lease.id);
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.state().line.release(lease)?;
        self.work.notify_one();
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        {
            let mut state = self.state();
            if !state.line.remove(id) {
                return Ok(false);
            }
            state.deliveries.remove(id);
        }
        let owned = id.to_owned();
        self.ledger(move |ledger| ledger.dequeue(&owned)).await?;
        Ok(true)
    }

    async fn waiting(&self) -> Result<Vec<String>> {
        Ok(self.state().line.waiting.iter().cloned().collect())
    }

    fn close(&self) {
        self.state().line.closed = true;
        self.work.notify_waiters();
    }
}
