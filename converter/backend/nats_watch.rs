//! One watch of the jobs bucket per node, shared by every watch of a job
//! on it.
//!
//! A KV watch of one key is a consumer the server makes, feeds and later
//! drops; with a watch per `WatchJob` call and another per running job
//! (for cancellation), that was most of what the NATS server did per
//! job. Instead, each node follows every write to the bucket once, from a
//! known revision on, and hands each to the watches of its key here.

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait before following the bucket again after the watch
/// ended (the server or the connection lost).
const REWATCH_PAUSE: Duration = Duration::from_millis(500);

/// Entries go out shared: a channel's first block holds 32 of what it
/// carries, which for whole entries would be kilobytes per watch.
type Subscribers = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Arc<kv::Entry>>)>>;

pub(crate) struct Watches {
    subscribers: Mutex<Subscribers>,
    next_subscriber: std::sync::atomic::AtomicU64,
    /// Dropped with this, which stops the task following the bucket.
    _following: tokio::sync::oneshot::Sender<()>,
}

/// Writes to one job's key, from the time it was made on.
pub(crate) struct Subscription {
    watches: Arc<Watches>,
    key: String,
    number: u64,
    entries: mpsc::UnboundedReceiver<Arc<kv::Entry>>,
}

impl Watches {
    /// Starts following the bucket from its next write on; the task ends
    /// when the returned value is dropped.
    pub async fn start(jobs: kv::Store) -> Result<Arc<Watches>, String> {
        let mut stream = jobs.stream.clone();
        let info = stream.info().await.map_err(|e| e.to_string())?;
        let from = info.state.last_sequence + 1;
        let watch = jobs.watch_all_from_revision(from).await.map_err(|e| e.to_string())?;
        let (following, stopped) = tokio::sync::oneshot::channel();
        let watches = Arc::new(Watches {
            subscribers: Mutex::default(),
            next_subscriber: Default::default(),
            _following: following,
        });
        let follow = follow(jobs, watch, from, Arc::downgrade(&watches));
        tokio::spawn(async move {
            tokio::select! {
                () = follow => {}
                _ = stopped => {}
            }
        });
        Ok(watches)
    }

    /// The writes to `key` from now on.
    pub fn subscribe(self: &Arc<Self>, key: &str) -> Subscription {
        let (sender, entries) = mpsc::unbounded_channel();
        let number = self.next_subscriber.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().entry(key.to_owned()).or_default().push((number, sender));
        Subscription { watches: self.clone(), key: key.to_owned(), number, entries }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hand_out(&self, entry: kv::Entry) {
        let entry = Arc::new(entry);
        let mut subscribers = self.lock();
        if let Some(watching) = subscribers.get_mut(&entry.key) {
            watching.retain(|(_, sender)| sender.send(entry.clone()).is_ok());
            if watching.is_empty() {
                subscribers.remove(&entry.key);
            }
        }
    }
}

impl Subscription {
    /// The next write; `None` once this node no longer follows the bucket.
    pub async fn next(&mut self) -> Option<Arc<kv::Entry>> {
        self.entries.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.watches.lock();
        if let Some(watching) = subscribers.get_mut(&self.key) {
            watching.retain(|(number, _)| *number != self.number);
            if watching.is_empty() {
                subscribers.remove(&self.key);
            }
        }
    }
}

/// Hands out every write to the bucket, following it again from the next
/// revision whenever the watch ends, so that no write is missed.
async fn follow(jobs: kv::Store, mut watch: kv::Watch, mut from: u64, watches: Weak<Watches>) {
    loop {
        match watch.next().await {
            Some(Ok(entry)) => {
                let Some(watches) = watches.upgrade() else { return };
                from = entry.revision + 1;
                watches.hand_out(entry);
            }
            // The watch's consumer recovers from a lost message by itself.
            Some(Err(e)) => tracing::debug!("following the jobs bucket: {e}"),
            None => loop {
                tokio::time::sleep(REWATCH_PAUSE).await;
                match jobs.watch_all_from_revision(from).await {
                    Ok(again) => {
                        watch = again;
                        break;
                    }
                    Err(e) => tracing::warn!("following the jobs bucket again: {e}"),
                }
            },
        }
    }
}
