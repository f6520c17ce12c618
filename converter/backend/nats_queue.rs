//! A `Queue` on NATS JetStream: a work-queue stream, one subject per id,
//! and one durable pull consumer shared by every node. Its ack wait is the
//! lease: in-progress acks extend it, an ack ends it, and the server hands
//! out again what was not acknowledged in time. Cluster mode has two: the
//! jobs (`<prefix>-queue`) and the webhook deliveries
//! (`<prefix>-deliveries`).

use crate::error::{BackendError, Result};
use crate::nats::failed;
use crate::{Lease, Queue};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long one pull waits for work before asking again: an idle node asks
/// NATS this often per worker (a close is noticed at once, not by this).
const PULL_WAIT: Duration = Duration::from_secs(5);

/// Queue messages read at once when listing the waiting ids.
const READS_AT_ONCE: usize = 16;

/// What tells one queue from another on the same NATS.
pub struct QueueNames {
    /// The stream's name, e.g. `docconv-queue`.
    pub stream: String,
    /// Subjects are `<subjects>.<id>`, e.g. `docconv.queue`.
    pub subjects: String,
    /// The durable consumer's name.
    pub consumer: String,
    /// Whether a push of an id is dropped while an earlier push of it is
    /// recent (the stream's duplicate window): for work that is one piece
    /// however often it is asked for.
    pub dedupe: bool,
}

pub struct NatsQueue {
    js: jetstream::Context,
    stream: stream::Stream,
    consumer: consumer::Consumer<consumer::pull::Config>,
    names: QueueNames,
    lease: Duration,
    /// Messages this node holds a lease on, by token.
    held: Mutex<HashMap<u64, Held>>,
    next_token: AtomicU64,
    closed: AtomicBool,
    closing: Notify,
}

struct Held {
    message: jetstream::Message,
    /// When this node counts the lease as gone: a little before the
    /// server does, since the server's clock started at delivery.
    deadline: Instant,
}

impl NatsQueue {
    /// Makes (or finds) the stream and its consumer.
    pub async fn open(
        js: &jetstream::Context,
        names: QueueNames,
        lease: Duration,
        retention: Duration,
        replicas: usize,
    ) -> Result<NatsQueue> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: names.stream.clone(),
                subjects: vec![format!("{}.*", names.subjects)],
                retention: stream::RetentionPolicy::WorkQueue,
                max_age: retention,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&format!("making the stream {}", names.stream), e))?;
        let config = consumer::pull::Config {
            durable_name: Some(names.consumer.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: lease,
            // Attempts are counted in the job record, not here.
            max_deliver: -1,
            ..Default::default()
        };
        let making = |e| failed(&format!("making the consumer of {}", names.stream), e);
        let mut consumer = stream.get_or_create_consumer(&names.consumer, config.clone()).await.map_err(making)?;
        let shared = consumer.cached_info().config.ack_wait;
        if shared != lease {
            // The consumer outlives the nodes that made it: one made with
            // another lease would otherwise keep it, and this node would
            // count on a lease the server does not give.
            tracing::warn!(
                stream = %names.stream,
                was_secs = shared.as_secs_f64(),
                now_secs = lease.as_secs_f64(),
                "the shared queue had another lease; this node's applies from now on (give every node the same)"
            );
            consumer = stream.create_consumer(config).await.map_err(making)?;
        }
        Ok(NatsQueue {
            js: js.clone(),
            stream,
            consumer,
            names,
            lease,
            held: Mutex::default(),
            next_token: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn subject(&self, id: &str) -> String {
        format!("{}.{id}", self.names.subjects)
    }

    /// The message of a lease this node still holds, taken out of the map.
    fn take_held(&self, lease: &Lease) -> Result<Held> {
        let held = self.held().remove(&lease.token);
        match held {
            Some(held) if held.deadline > Instant::now() => Ok(held),
            _ => Err(BackendError::LeaseLost { id: lease.id.clone() }),
        }
    }

    /// Publishes `id`; with `dedupe`, under the id as its message id.
    async fn publish(&self, id: &str, dedupe: bool) -> Result<()> {
        let doing = format!("queueing in {}", self.names.stream);
        let mut headers = HeaderMap::new();
        if dedupe {
            headers.insert("Nats-Msg-Id", id);
        }
        let ack = self
            .js
            .publish_with_headers(self.subject(id), headers, id.to_owned().into())
            .await
            .map_err(|e| failed(&doing, e))?;
        ack.await.map_err(|e| failed(&doing, e))?;
        Ok(())
    }
}

#[async_trait]
impl Queue for NatsQueue {
    fn lease_time(&self) -> Duration {
        self.lease
    }

    async fn push(&self, id: &str) -> Result<()> {
        self.publish(id, self.names.dedupe).await
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let closing = self.closing.notified();
            let fetched = async {
                let mut batch = self
                    .consumer
                    .batch()
                    .max_messages(1)
                    .expires(PULL_WAIT)
                    .messages()
                    .await
                    .map_err(|e| failed("asking for work", e))?;
                batch.next().await.transpose().map_err(|e| failed("receiving work", e))
            };
            let message = tokio::select! {
                message = fetched => message?,
                () = closing => return Ok(None),
            };
            let Some(message) = message else {
                continue;
            };
            let info = message.info().map_err(|e| failed("reading a delivery of work", e))?;
            let deliveries = info.delivered.max(1) as u32;
            let id = String::from_utf8_lossy(&message.payload).into_owned();
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            // The server's ack wait began when it sent the message, a
            // moment before it arrived here: a tenth of the lease covers that.
            let deadline = Instant::now() + self.lease * 9 / 10;
            self.held().insert(token, Held { message, deadline });
            return Ok(Some(Lease { id, deliveries, token }));
        }
    }

    async fn extend(&self, lease: &Lease) -> Result<()> {
        let held = self.take_held(lease)?;
        let asked = Instant::now();
        held.message.ack_with(AckKind::Progress).await.map_err(|e| failed("extending a lease", e))?;
        let deadline = asked + self.lease * 9 / 10;
        self.held().insert(lease.token, Held { deadline, ..held });
        Ok(())
    }

    async fn ack(&self, lease: &Lease) -> Result<()> {
        let held = self.take_held(lease)?;
        held.message.double_ack().await.map_err(|e| failed("acknowledging work", e))
    }

    /// Hands the work back at the end of the line: acknowledged, then
    /// queued again (a negative acknowledgement would leave it out of
    /// `waiting`), never dropped as a duplicate of itself.
    async fn release(&self, lease: &Lease) -> Result<()> {
        let held = self.take_held(lease)?;
        held.message.double_ack().await.map_err(|e| failed("handing work back", e))?;
        self.publish(&lease.id, false).await
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let message = match self.stream.get_last_raw_message_by_subject(&self.subject(id)).await {
            Ok(message) => message,
            Err(_) => return Ok(false),
        };
        let mut consumer = self.consumer.clone();
        let delivered = consumer.info().await.map_err(|e| failed("reading a queue", e))?.delivered.stream_sequence;
        if message.sequence <= delivered {
            // Handed out (or about to be again): its holder ends it.
            return Ok(false);
        }
        self.stream.delete_message(message.sequence).await.map_err(|e| failed("taking work out of a queue", e))
    }

    async fn waiting(&self) -> Result<Vec<String>> {
        let mut consumer = self.consumer.clone();
        let info = consumer.info().await.map_err(|e| failed("reading a queue", e))?;
        if info.num_pending == 0 {
            // Nothing waits (the usual case but under load): no need to
            // ask the stream where the waiting ones are.
            return Ok(Vec::new());
        }
        let delivered = info.delivered.stream_sequence;
        let mut stream = self.stream.clone();
        let state = stream.info().await.map_err(|e| failed("reading a queue", e))?.state.clone();
        let mut waiting = Vec::new();
        if state.messages == 0 {
            return Ok(waiting);
        }
        // One request per message, several at once (in order) so that a
        // long queue costs a few round trips' time, not one per id.
        let sequences = (delivered + 1).max(state.first_sequence)..=state.last_sequence;
        let mut messages = futures_util::stream::iter(sequences)
            .map(|sequence| self.stream.get_raw_message(sequence))
            .buffered(READS_AT_ONCE);
        while let Some(message) = messages.next().await {
            // Gaps are ids taken out of the queue.
            if let Ok(message) = message {
                waiting.push(String::from_utf8_lossy(&message.payload).into_owned());
            }
        }
        Ok(waiting)
    }

    /// The consumer's count of messages not yet handed out: one request
    /// however long the queue (every Submit asks, for the queue's bound).
    async fn waiting_count(&self) -> Result<usize> {
        let mut consumer = self.consumer.clone();
        let info = consumer.info().await.map_err(|e| failed("reading a queue", e))?;
        Ok(info.num_pending as usize)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.notify_waiters();
    }
}
