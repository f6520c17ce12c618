//! Queue positions: each waiting job's place in line, written into its
//! record so that its watchers see it move up.
//!
//! A pass reads the whole queue and every waiting record, which on a
//! shared backend is a round trip each. Passes are therefore shared: a
//! caller waits for a pass that began after it asked (so the pass saw the
//! caller's change), and every caller that asks while a pass runs shares
//! the next one. Under load that is at most two passes however many jobs
//! are submitted or started meanwhile.

use docconv::proto::v1::JobState;
use docconv_backend::{Backend, Durability, modify};
use futures_util::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records read and written at once in a pass: enough to hide round trips
/// to a shared backend, few enough not to crowd out the jobs' own writes.
const AT_ONCE: usize = 16;

#[derive(Default)]
pub(super) struct Positions {
    /// Set to the number of waiting jobs at each pass.
    depth: Gauge,
    /// Tickets handed out: one per request.
    asked: AtomicU64,
    /// The last ticket the latest finished pass covers. Held while a pass
    /// runs, so passes never overlap.
    covered: tokio::sync::Mutex<u64>,
}

impl Positions {
    /// Positions whose passes also report the queue's depth.
    pub fn counting_into(depth: Gauge) -> Positions {
        Positions { depth, ..Positions::default() }
    }

    /// Brings every waiting job's position up to date with the queue as it
    /// is now (or later).
    pub async fn refresh(&self, backend: &Backend) {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            // A pass that began after this request has already finished.
            return;
        }
        // Every ticket up to here was asked before this pass reads the queue.
        let covers = self.asked.load(Ordering::SeqCst);
        if let Some(waiting) = pass(backend).await {
            self.depth.set(waiting as i64);
        }
        *covered = covers;
    }
}

/// Gives each waiting job its position (a passing write where it
/// moved). Returns how many are waiting, if the queue could be read.
async fn pass(backend: &Backend) -> Option<usize> {
    let waiting = match backend.queue.waiting().await {
        Ok(waiting) => waiting,
        Err(e) => {
            tracing::warn!("cannot read the queue for positions: {e}");
            return None;
        }
    };
    let records = &*backend.records;
    futures_util::stream::iter(waiting.iter().enumerate())
        .for_each_concurrent(AT_ONCE, |(index, id)| async move {
            let position = index as u32 + 1;
            let moved = modify(records, id, Durability::Passing, |record| {
                let job = record.job.get_or_insert_default();
                if job.state() != JobState::Queued || job.queue_position == position {
                    return false;
                }
                job.queue_position = position;
                true
            });
            if let Err(e) = moved.await {
                tracing::warn!(job = %id, "cannot publish the queue position: {e}");
            }
        })
        .await;
    Some(waiting.len())
}
