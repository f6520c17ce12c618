//! The courier: this node's share of webhook delivery. It leases job ids
//! from the backend's deliveries queue (pushed by the hub before it
//! records a job's end), and for each, with its lease held the whole time:
//! waits for the end to be recorded, sends the webhook, records what came
//! of it in the job (a compare-and-set, like every write of a record), and
//! after a failure that another try may mend, waits out the backoff and
//! tries again; the lease is acknowledged once the delivery is settled.
//!
//! A node that dies holding a delivery lets its lease run out, and the
//! delivery goes to another node (or to this one after a restart), which
//! picks up at the attempt the record shows. Delivery is thus at least
//! once: an attempt cut short after the receiver got it is made again,
//! with the same delivery id.

use super::body;
use super::send::{Request, SendError, Sender};
use super::sign::{self, Secret};
use super::wanted;
use crate::metrics::{Metrics, WebhookAttempt};
use bytes::Bytes;
use docconv::metrics::Active;
use docconv::proto::v1::{Job, Webhook, WebhookMethod, WebhookState, WebhookStatus};
use docconv_backend::{BackendError, Durability, Lease, Modified, Queue, Records, StoredJob, has_ended, modify};
use futures_util::StreamExt;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Deliveries one node sends at once; more wait in the queue (for this
/// node or another).
const CONCURRENCY: usize = 32;
/// The wait after the first failed attempt; each later one doubles it, up
/// to `LONGEST_WAIT`.
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(300);
/// How long to wait before asking the backend again after it failed.
const BACKEND_RETRY: Duration = Duration::from_secs(1);

/// The wait after `attempts` failed attempts: 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    FIRST_WAIT.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1))).min(LONGEST_WAIT)
}

/// How delivery goes on this node.
pub struct Courier {
    records: Arc<dyn Records>,
    deliveries: Arc<dyn Queue>,
    sender: Sender,
    secret: Option<Secret>,
    /// Attempts before a delivery is given up.
    max_attempts: u32,
    metrics: Arc<Metrics>,
}

/// Where a delivery stands after a step.
enum Step {
    Settled,
    TryAgain,
}

impl Courier {
    pub fn new(
        records: Arc<dyn Records>,
        deliveries: Arc<dyn Queue>,
        sender: Sender,
        secret: Option<Secret>,
        max_attempts: u32,
    ) -> Courier {
        let max_attempts = max_attempts.max(1);
        Courier { records, deliveries, sender, secret, max_attempts, metrics: Arc::default() }
    }

    /// Counts attempts into `metrics` (which a registry may serve).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Courier {
        Courier { metrics, ..self }
    }

    /// Takes deliveries from the queue until it is closed (at shutdown),
    /// `CONCURRENCY` at a time. Deliveries under way when it returns go
    /// on until the runtime stops; unfinished ones go back to the queue
    /// when their leases run out.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            let lease = match self.deliveries.lease().await {
                Ok(Some(lease)) => lease,
                Ok(None) => return,
                Err(e) => {
                    // A store unavailable for now (a leader being elected)
                    // is expected in a cluster; the next try mends it.
                    if matches!(e, BackendError::Unavailable(_)) {
                        tracing::warn!("cannot take a webhook delivery from the queue: {e}");
                    } else {
                        tracing::error!("cannot take a webhook delivery from the queue: {e}");
                    }
                    tokio::time::sleep(BACKEND_RETRY).await;
                    continue;
                }
            };
            let courier = self.clone();
            tokio::spawn(async move {
                courier.deliver(lease).await;
                drop(slot);
            });
        }
    }

    /// Settles one delivery while holding its lease, then acknowledges it.
    async fn deliver(&self, lease: Lease) {
        let _held = Active::of(&self.metrics.webhooks_held);
        let id = lease.id.clone();
        let settle = async {
            loop {
                match self.step(&id).await {
                    Ok(Step::Settled) => return,
                    Ok(Step::TryAgain) => {}
                    Err(e) => {
                        tracing::warn!(job = %id, "webhook delivery: {e}; trying again");
                        tokio::time::sleep(BACKEND_RETRY).await;
                    }
                }
            }
        };
        if hold(&*self.deliveries, &lease, settle).await.is_none() {
            tracing::warn!(job = %id, "the webhook delivery's lease ran out; another node has it");
            return;
        }
        if let Err(e) = self.deliveries.ack(&lease).await {
            tracing::warn!(job = %id, "could not mark the webhook delivery done: {e}");
        }
    }

    /// Waits for the job's end, then makes the next attempt (once it is
    /// due) and records it.
    async fn step(&self, id: &str) -> docconv_backend::Result<Step> {
        let Some(record) = self.ended(id).await? else {
            // Expired, or deleted: nothing to tell anyone.
            return Ok(Step::Settled);
        };
        let (Some(webhook), Some(job)) = (record.webhook, record.job) else {
            return Ok(Step::Settled);
        };
        let status = job.webhook.clone().unwrap_or_default();
        if status.state() != WebhookState::Pending {
            return Ok(Step::Settled);
        }
        if !wanted(webhook.events(), job.state()) {
            self.record(id, |status| status.set_state(WebhookState::NotSent)).await?;
            return Ok(Step::Settled);
        }
        let due = status.next_attempt_time.and_then(|t| SystemTime::try_from(t).ok());
        if let Some(wait) = due.and_then(|due| due.duration_since(SystemTime::now()).ok()) {
            tokio::time::sleep(wait).await;
        }
        let attempt = status.attempts + 1;
        let outcome = self.sender.send(self.request(&webhook, &job, &status.delivery_id)).await;
        let counted = match &outcome {
            Ok(code) => {
                tracing::info!(job = %id, attempt, code, "webhook delivered");
                "delivered"
            }
            Err(e) if e.retry && attempt < self.max_attempts => {
                tracing::info!(job = %id, attempt, "webhook not delivered, will try again: {}", e.message);
                "retry"
            }
            Err(e) => {
                tracing::warn!(job = %id, attempt, "webhook not delivered, given up: {}", e.message);
                "failed"
            }
        };
        self.metrics.webhook_attempts.get_or_create(&WebhookAttempt { outcome: counted }).inc();
        let max_attempts = self.max_attempts;
        let state = self.record(id, |status| outcome_into(status, attempt, &outcome, max_attempts)).await?;
        Ok(match state {
            Some(WebhookState::Pending) => Step::TryAgain,
            _ => Step::Settled,
        })
    }

    /// The job's record once its end is recorded; `None` if it is gone.
    async fn ended(&self, id: &str) -> docconv_backend::Result<Option<StoredJob>> {
        let Some(mut events) = self.records.watch(id, 0).await? else {
            return Ok(None);
        };
        while let Some(event) = events.next().await {
            match event {
                Ok(record) if has_ended(&record) => return Ok(Some(record)),
                Ok(_) => {}
                Err(BackendError::Missing { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(BackendError::Unavailable(format!("the updates of job {id} ended early")))
    }

    /// Edits the delivery's status in the job's record while it is
    /// pending; returns its state as it now stands (`None` for a job gone).
    async fn record(
        &self,
        id: &str,
        mut change: impl FnMut(&mut WebhookStatus) + Send,
    ) -> docconv_backend::Result<Option<WebhookState>> {
        let modified = modify(&*self.records, id, Durability::Lasting, |record| {
            let Some(status) = record.job.as_mut().and_then(|job| job.webhook.as_mut()) else {
                return false;
            };
            // Settled meanwhile (by a node that held it before this one).
            if status.state() != WebhookState::Pending {
                return false;
            }
            change(status);
            true
        });
        Ok(match modified.await? {
            Modified::Written(record) | Modified::Kept(record) => {
                record.job.and_then(|job| job.webhook).map(|status| status.state())
            }
            Modified::Missing => None,
        })
    }

    /// The request of one attempt: the body, signed when there is a
    /// secret, with the caller's headers.
    fn request(&self, webhook: &Webhook, job: &Job, delivery_id: &str) -> Request {
        let body = Bytes::from(body::body(job, delivery_id));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let ours = [
            (CONTENT_TYPE, "application/json".to_owned()),
            (USER_AGENT, concat!("docconv/", env!("CARGO_PKG_VERSION")).to_owned()),
            (HeaderName::from_static(sign::DELIVERY), delivery_id.to_owned()),
            (HeaderName::from_static(sign::EVENT), body::event(job.state()).to_owned()),
            (HeaderName::from_static(sign::TIMESTAMP), now.to_string()),
        ];
        let signature =
            self.secret.as_ref().map(|secret| (HeaderName::from_static(sign::SIGNATURE), secret.sign(&body)));
        // The caller's headers were checked at submission.
        let theirs = webhook
            .headers
            .iter()
            .filter_map(|(name, value)| Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value.clone())));
        let headers = ours
            .into_iter()
            .chain(signature)
            .chain(theirs)
            .filter_map(|(name, value)| Some((name, HeaderValue::from_str(&value).ok()?)))
            .collect();
        let method = match webhook.method() {
            WebhookMethod::Put => Method::PUT,
            WebhookMethod::Patch => Method::PATCH,
            WebhookMethod::Post | WebhookMethod::Unspecified => Method::POST,
        };
        Request { url: webhook.url.clone(), method, headers, body }
    }
}

/// Writes what attempt `attempt` came to into the delivery's status.
fn outcome_into(status: &mut WebhookStatus, attempt: u32, outcome: &Result<u16, SendError>, max_attempts: u32) {
    let now = SystemTime::now();
    status.attempts = status.attempts.max(attempt);
    status.next_attempt_time = None;
    match outcome {
        Ok(code) => {
            status.set_state(WebhookState::Delivered);
            status.last_status_code = u32::from(*code);
            status.last_error.clear();
            status.delivered_time = Some(now.into());
        }
        Err(e) => {
            status.last_status_code = e.status.map_or(0, u32::from);
            if e.retry && attempt < max_attempts {
                status.last_error = e.message.clone();
                status.next_attempt_time = Some((now + backoff(attempt)).into());
            } else {
                status.set_state(WebhookState::Failed);
                status.last_error = match e.retry {
                    true => format!("given up after {attempt} attempts; the last: {}", e.message),
                    false => e.message.clone(),
                };
            }
        }
    }
}

/// Runs `work` while keeping `lease` extended; `None` if the lease was
/// lost meanwhile (the work is stopped: another node has it).
async fn hold<T>(queue: &dyn Queue, lease: &Lease, work: impl Future<Output = T>) -> Option<T> {
    let mut extend = tokio::time::interval(queue.lease_time() / 3);
    extend.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = extend.tick() => match queue.extend(lease).await {
                Ok(()) => {}
                Err(BackendError::LeaseLost { .. }) => return None,
                Err(e) => tracing::warn!(job = %lease.id, "cannot extend the webhook delivery's lease: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::{Policy, pending};
    use docconv::proto::v1::JobState;
    use docconv_backend::Backend;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver on 127.0.0.1 answering 200 to every request; returns its
    /// address and the bodies it got.
    async fn receiver() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let got = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut seen = Vec::new();
                let mut buffer = [0u8; 4096];
                let body = loop {
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        break None;
                    }
                    seen.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else { continue };
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break Some(seen[end + 4..end + 4 + length].to_vec());
                    }
                };
                if let Some(body) = body {
                    got.lock().unwrap().push(body);
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                }
            }
        });
        (addr, bodies)
    }

    /// A running job with a webhook to `url`, recorded in `backend`.
    async fn job_with_webhook(backend: &Backend, id: &str, url: String) {
        let mut job = Job { id: id.into(), file_name: "a.docx".into(), webhook: Some(pending()), ..Job::default() };
        job.set_state(JobState::Running);
        let webhook = Webhook { url, ..Webhook::default() };
        let record = StoredJob { job: Some(job), webhook: Some(webhook), ..StoredJob::default() };
        backend.records.create(record).await.unwrap();
    }

    async fn status(backend: &Backend, id: &str) -> WebhookStatus {
        backend.records.get(id).await.unwrap().unwrap().job.unwrap().webhook.unwrap()
    }

    #[tokio::test]
    async fn a_delivery_queued_before_the_end_waits_for_it_then_is_sent_once() {
        let backend = Backend::in_memory(Duration::from_secs(30));
        let (addr, bodies) = receiver().await;
        job_with_webhook(&backend, "a", format!("http://{addr}/hook")).await;
        let policy = Policy { networks: vec!["127.0.0.1/32".parse().unwrap()], ..Policy::default() };
        let sender = Sender::new(policy, Duration::from_secs(5));
        let secret = Secret::new(b"s");
        let courier = Courier::new(backend.records.clone(), backend.deliveries.clone(), sender, secret, 3);
        let running = tokio::spawn(Arc::new(courier).run());
        // As the hub does: queued, then the end recorded.
        backend.deliveries.push("a").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(bodies.lock().unwrap().is_empty(), "nothing is sent before the end");
        assert_eq!(status(&backend, "a").await.state(), WebhookState::Pending);
        modify(&*backend.records, "a", Durability::Lasting, |record| {
            let job = record.job.as_mut().unwrap();
            job.set_state(JobState::Succeeded);
            job.end_time = Some(SystemTime::now().into());
            true
        })
        .await
        .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while status(&backend, "a").await.state() == WebhookState::Pending {
            assert!(tokio::time::Instant::now() < deadline, "never delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delivered = status(&backend, "a").await;
        assert_eq!((delivered.state(), delivered.attempts), (WebhookState::Delivered, 1));
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
        assert_eq!((body["event"].as_str(), body["job"]["id"].as_str()), (Some("job.succeeded"), Some("a")));
        assert!(backend.deliveries.waiting().await.unwrap().is_empty());
        backend.deliveries.close();
        running.await.unwrap();
    }

    #[test]
    fn waits_double_from_a_second_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), LONGEST_WAIT);
        // The default of 20 attempts spans about an hour.
        let total: Duration = (1..20).map(backoff).sum();
        assert!(total > Duration::from_secs(3000) && total < Duration::from_secs(4200), "{total:?}");
    }

    #[test]
    fn outcomes_settle_or_schedule_the_delivery() {
        let retry = Err(SendError { message: "answered 503".into(), status: Some(503), retry: true });
        let mut status = WebhookStatus { delivery_id: "d".into(), ..Default::default() };
        status.set_state(WebhookState::Pending);
        outcome_into(&mut status, 1, &retry, 3);
        assert_eq!((status.state(), status.attempts, status.last_status_code), (WebhookState::Pending, 1, 503));
        assert!(status.next_attempt_time.is_some());
        outcome_into(&mut status, 2, &Ok(200), 3);
        assert_eq!(status.state(), WebhookState::Delivered);
        assert!(status.last_error.is_empty() && status.next_attempt_time.is_none() && status.delivered_time.is_some());

        let mut status = WebhookStatus::default();
        status.set_state(WebhookState::Pending);
        outcome_into(&mut status, 3, &retry, 3);
        assert_eq!(status.state(), WebhookState::Failed);
        assert!(status.last_error.starts_with("given up after 3 attempts"), "{}", status.last_error);
        let refused = Err(SendError { message: "refused: 404".into(), status: Some(404), retry: false });
        let mut status = WebhookStatus::default();
        outcome_into(&mut status, 1, &refused, 3);
        assert_eq!((status.state(), status.last_error.as_str()), (WebhookState::Failed, "refused: 404"));
    }
}
