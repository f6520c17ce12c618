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
use crate::{Lease, Queue};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub struct DurableQueue {
    ledger: Arc<dyn QueueLedger>,
    lease: Duration,
    state: Mutex<State>,
    /// Wakes `lease` callers: one per pushed id, all at close.
    work: Notify,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<String>,
    leased: HashMap<String, Held>,
    /// Times each queued id was handed out.
    deliveries: HashMap<String, u32>,
    next_token: u64,
    /// The place of the next push, above every place in the ledger.
    next_place: u64,
    closed: bool,
}

struct Held {
    token: u64,
    deadline: Instant,
}

impl DurableQueue {
    /// The queue `ledger` holds: what was queued when the last process
    /// stopped waits again, in the order it was pushed (its leases died
    /// with that process).
    pub(crate) fn open(ledger: Arc<dyn QueueLedger>, lease: Duration) -> Result<DurableQueue> {
        let mut queued = ledger.queued()?;
        queued.sort_by_key(|(_, place)| *place);
        let state = State {
            next_place: queued.last().map_or(1, |(_, place)| place + 1),
            waiting: queued.into_iter().map(|(id, _)| id).collect(),
            ..State::default()
        };
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

impl State {
    fn queued(&self, id: &str) -> bool {
        self.leased.contains_key(id) || self.waiting.iter().any(|w| w == id)
    }

    fn held(&self, lease: &Lease) -> bool {
        self.leased.get(&lease.id).is_some_and(|held| held.token == lease.token)
    }

    /// Puts ids whose lease ran out back at the front, oldest lease first.
    fn expire_leases(&mut self, now: Instant) {
        let mut expired: Vec<(Instant, String)> = self
            .leased
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(id, held)| (held.deadline, id.clone()))
            .collect();
        expired.sort();
        for (_, id) in expired.into_iter().rev() {
            self.leased.remove(&id);
            self.waiting.push_front(id);
        }
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
            if state.queued(id) {
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
            if state.queued(id) {
                return Ok(());
            }
            state.waiting.push_back(id.to_owned());
        }
        self.work.notify_one();
        Ok(())
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_expiry = {
                let mut state = self.state();
                if state.closed {
                    return Ok(None);
                }
                let now = Instant::now();
                state.expire_leases(now);
                if let Some(id) = state.waiting.pop_front() {
                    let deliveries = {
                        let count = state.deliveries.entry(id.clone()).or_default();
                        *count += 1;
                        *count
                    };
                    state.next_token += 1;
                    let token = state.next_token;
                    state.leased.insert(id.clone(), Held { token, deadline: now + self.lease });
                    if !state.waiting.is_empty() {
                        // Another caller may take the next one.
                        self.work.notify_one();
                    }
                    return Ok(Some(Lease { id, deliveries, token }));
                }
                state.leased.values().map(|held| held.deadline).min()
            };
            match next_expiry {
                Some(deadline) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn extend(&self, lease: &Lease) -> Result<()> {
        let mut state = self.state();
        match state.leased.get_mut(&lease.id) {
            // Past its deadline but not handed out again yet: still this
            // holder's, as in `Local`.
            Some(held) if held.token == lease.token => {
                held.deadline = Instant::now() + self.lease;
                Ok(())
            }
            _ => Err(BackendError::LeaseLost { id: lease.id.clone() }),
        }
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        if !self.state().held(lease) {
            return Err(BackendError::LeaseLost { id: lease.id.clone() });
        }
        // Forgotten durably first: should that fail, the lease runs out and
        // the work is handed out again, which at-least-once allows.
        let id = lease.id.clone();
        self.ledger(move |ledger| ledger.dequeue(&id)).await?;
        let mut state = self.state();
        if !state.held(lease) {
            return Err(BackendError::LeaseLost { id: lease.id.clone() });
        }
        state.leased.remove(&lease.id);
        state.deliveries.remove(&lease.id);
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        {
            let mut state = self.state();
            if !state.held(lease) {
                return Err(BackendError::LeaseLost { id: lease.id.clone() });
            }
            state.leased.remove(&lease.id);
            state.waiting.push_front(lease.id.clone());
        }
        self.work.notify_one();
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        {
            let mut state = self.state();
            let Some(index) = state.waiting.iter().position(|w| w == id) else {
                return Ok(false);
            };
            state.waiting.remove(index);
            state.deliveries.remove(id);
        }
        let owned = id.to_owned();
        self.ledger(move |ledger| ledger.dequeue(&owned)).await?;
        Ok(true)
    }

    async fn waiting(&self) -> Result<Vec<String>> {
        Ok(self.state().waiting.iter().cloned().collect())
    }

    fn close(&self) {
        self.state().closed = true;
        self.work.notify_waiters();
    }
}
