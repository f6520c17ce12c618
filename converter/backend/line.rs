//! A queue's waiting line and leases in this process's memory, shared by
//! the queues of one process (`Local`'s jobs, `DurableQueue`'s
//! deliveries): ids handed out in order, each lease with a token and a
//! deadline, a lease that runs out putting its id back at the front,
//! release, removal and close.
//!
//! `Line` is plain data under its owner's lock; `lease` is the one async
//! part, waiting on the owner's `Notify` for work or for the next lease to
//! run out.

use crate::Lease;
use crate::error::{BackendError, Result};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub(crate) struct Line {
    pub waiting: VecDeque<String>,
    leased: HashMap<String, Held>,
    next_token: u64,
    pub closed: bool,
}

struct Held {
    token: u64,
    deadline: Instant,
}

/// What an attempt to take the next id found.
pub(crate) enum Take {
    /// Handed out; `more` says others wait, for another caller to take.
    Leased {
        lease: Lease,
        more: bool,
    },
    Closed,
    /// Nothing to hand out until more is pushed or the lease ending at
    /// this time (if any) runs out.
    Wait(Option<Instant>),
}

impl Line {
    /// Whether `lease` is still its holder's.
    pub fn held(&self, lease: &Lease) -> bool {
        self.leased.get(&lease.id).is_some_and(|held| held.token == lease.token)
    }

    /// Whether `id` waits or is leased.
    pub fn has(&self, id: &str) -> bool {
        self.leased.contains_key(id) || self.waiting.iter().any(|w| w == id)
    }

    /// Hands out the first waiting id that `deliver` still knows, for
    /// `lease_time`; `deliver` counts the delivery and says how many there
    /// were (`None`: the id is gone, and is dropped from the line). Call
    /// `expire` first.
    pub fn take(&mut self, lease_time: Duration, mut deliver: impl FnMut(&str) -> Option<u32>) -> Take {
        if self.closed {
            return Take::Closed;
        }
        let now = Instant::now();
        while let Some(id) = self.waiting.pop_front() {
            let Some(deliveries) = deliver(&id) else { continue };
            self.next_token += 1;
            let token = self.next_token;
            self.leased.insert(id.clone(), Held { token, deadline: now + lease_time });
            return Take::Leased { lease: Lease { id, deliveries, token }, more: !self.waiting.is_empty() };
        }
        Take::Wait(self.leased.values().map(|held| held.deadline).min())
    }

    /// Puts the ids of leases that ran out back at the front, oldest lease
    /// first: those `known` still knows (the others are gone).
    pub fn expire(&mut self, known: impl Fn(&str) -> bool) {
        let now = Instant::now();
        let mut expired: Vec<(Instant, String)> = self
            .leased
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(id, held)| (held.deadline, id.clone()))
            .collect();
        expired.sort();
        for (_, id) in expired.into_iter().rev() {
            self.leased.remove(&id);
            if known(&id) {
                self.waiting.push_front(id);
            }
        }
    }

    /// A lease past its deadline but not handed out again yet is still its
    /// holder's, and renewed.
    pub fn extend(&mut self, lease: &Lease, lease_time: Duration) -> Result<()> {
        match self.leased.get_mut(&lease.id) {
            Some(held) if held.token == lease.token => {
                held.deadline = Instant::now() + lease_time;
                Ok(())
            }
            _ => Err(lost(lease)),
        }
    }

    /// Ends a held lease: the id is done (ack).
    pub fn finish(&mut self, lease: &Lease) -> Result<()> {
        if !self.held(lease) {
            return Err(lost(lease));
        }
        self.leased.remove(&lease.id);
        Ok(())
    }

    /// Puts a held lease's id back at the front.
    pub fn release(&mut self, lease: &Lease) -> Result<()> {
        self.finish(lease)?;
        self.waiting.push_front(lease.id.clone());
        Ok(())
    }

    /// Takes a waiting id out of the line; false if it was not waiting.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(index) = self.waiting.iter().position(|w| w == id) else {
            return false;
        };
        self.waiting.remove(index);
        true
    }

    /// Forgets `id` wherever it is (its job was deleted).
    pub fn forget(&mut self, id: &str) {
        self.waiting.retain(|w| w != id);
        self.leased.remove(id);
    }
}

pub(crate) fn lost(lease: &Lease) -> BackendError {
    BackendError::LeaseLost { id: lease.id.clone() }
}

/// Waits until `take` (run under the owner's lock) hands something out or
/// finds the line closed. `work` is notified once per push and for all at
/// close.
pub(crate) async fn lease(work: &Notify, mut take: impl FnMut() -> Take) -> Result<Option<Lease>> {
    loop {
        let notified = work.notified();
        tokio::pin!(notified);
        // Registered before looking, so a push in between is not missed.
        notified.as_mut().enable();
        match take() {
            Take::Leased { lease, more } => {
                if more {
                    // Another caller may take the next one.
                    work.notify_one();
                }
                return Ok(Some(lease));
            }
            Take::Closed => return Ok(None),
            Take::Wait(Some(deadline)) => {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            Take::Wait(None) => notified.await,
        }
    }
}
