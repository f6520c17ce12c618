//! Webhooks end to end: real conversions calling a receiver on this
//! machine, signed and retried; addresses the policy refuses are never
//! reached; a pending delivery outlives a killed converter.
//!
//! Receivers listen on 127.0.0.2, the one network the converters under
//! test allow (`--webhook-allow-private-networks 127.0.0.2/32`), so a
//! receiver on 127.0.0.1 stands for an address that must not be reached.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use docconv::proto::v1::{GetJobRequest, JobState, Webhook, WebhookEvents, WebhookState, WebhookStatus};
use docconv_converter::metrics::WebhookAttempt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tonic_types::StatusExt;

const SECRET: &str = "the webhook secret of the tests";
const ALLOWED: &str = "127.0.0.2/32";
/// What the receivers answer with a redirect: the cloud metadata address.
const METADATA: &str = "http://169.254.169.254/latest/meta-data/";

/// One converter for the tests that need nothing special: it signs with
/// `SECRET` and reaches `ALLOWED` only, beside public addresses.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(|c| {
            c.webhook_secret = Some(SECRET.into());
            c.webhook_allow_private_networks = vec![ALLOWED.parse().unwrap()];
            c.webhook_timeout_secs = 5;
        })
    })
}

/// A request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    /// Path and query.
    target: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<Received>>>,
    /// Answers for the first requests, in order.
    script: Arc<Mutex<Vec<u16>>>,
    /// The answer once the script is used up.
    otherwise: Arc<AtomicU16>,
}

/// An HTTP server that records what it gets and answers as told.
struct Receiver {
    addr: SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// On 127.0.0.2, answering `script` and then `otherwise` (a 3xx
    /// redirects to the metadata address).
    async fn start(script: &[u16], otherwise: u16) -> Receiver {
        Receiver::start_on("127.0.0.2", script, otherwise).await
    }

    async fn start_on(ip: &str, script: &[u16], otherwise: u16) -> Receiver {
        let seen = Seen {
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
            otherwise: Arc::new(AtomicU16::new(otherwise)),
            ..Seen::default()
        };
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(receive).with_state(seen.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.seen.requests.lock().unwrap().clone()
    }

    fn answer_from_now(&self, status: u16) {
        self.seen.otherwise.store(status, Ordering::SeqCst);
    }

    /// Waits until at least `count` requests arrived.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(Instant::now() < deadline, "{} of {count} requests arrived", requests.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(seen): State<Seen>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let target = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    seen.requests.lock().unwrap().push(Received { method: method.to_string(), target, headers, body: body.to_vec() });
    let status = seen.script.lock().unwrap().pop().unwrap_or_else(|| seen.otherwise.load(Ordering::SeqCst));
    let status = StatusCode::from_u16(status).unwrap();
    if status.is_redirection() {
        return (status, [("location", METADATA)]).into_response();
    }
    (status, "noted").into_response()
}

/// A converter process of a test, killed when dropped (a failed
/// assertion must not leave it running).
struct Process(std::process::Child);

impl Process {
    /// Kills it at once, as a crash would.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn webhook(url: String) -> Webhook {
    Webhook { url, ..Webhook::default() }
}

/// Submits `data` as `name` with `webhook`.
async fn submit_with(client: &mut Client, name: &str, data: &[u8], webhook: Webhook) -> docconv::proto::v1::Job {
    let header = docconv::proto::v1::SubmitHeader { webhook: Some(webhook), ..header(name) };
    submit(client, header, data).await.unwrap()
}

/// Polls the job until its webhook is no longer pending.
async fn settled(client: &mut Client, id: &str) -> WebhookStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = client.get_job(GetJobRequest { id: id.into() }).await.unwrap().into_inner();
        let status = job.webhook.clone().expect("a job with a webhook shows its delivery");
        if status.state() != WebhookState::Pending {
            return status;
        }
        assert!(Instant::now() < deadline, "the webhook is still pending: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The signature a receiver computes, as the README shows.
fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[tokio::test]
async fn a_succeeded_job_calls_its_webhook_once_signed_and_describing_the_job() {
    let receiver = Receiver::start(&[], 200).await;
    let mut client = server().client().await;
    let mut hook = webhook(receiver.url("/hooks/docconv?tenant=7"));
    hook.headers.insert("X-Tenant".into(), "7".into());
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut client, "page_1.docx", &data, hook).await;
    let pending = job.webhook.clone().unwrap();
    assert_eq!((pending.state(), pending.attempts), (WebhookState::Pending, 0), "{pending:?}");
    let ended = wait_end(&mut client, &job.id).await;
    assert_eq!(ended.state(), JobState::Succeeded);

    let status = settled(&mut client, &job.id).await;
    assert_eq!(status.state(), WebhookState::Delivered, "{status:?}");
    assert_eq!((status.attempts, status.last_status_code), (1, 200));
    assert_eq!(status.delivery_id, pending.delivery_id, "the delivery id is fixed at submission");
    assert!(status.delivered_time.is_some() && status.last_error.is_empty(), "{status:?}");
    // Delivered means delivered once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");

    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.target.as_str()), ("POST", "/hooks/docconv?tenant=7"));
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-tenant"), "7");
    assert_eq!(request.header("docconv-delivery"), status.delivery_id);
    assert_eq!(request.header("docconv-event"), "job.succeeded");
    assert_eq!(request.header("docconv-signature"), signature(SECRET, &request.body), "signed over the body");
    let sent_at: u64 = request.header("docconv-timestamp").parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(sent_at.abs_diff(now) < 60, "{sent_at} vs {now}");

    let body = request.json();
    let output = ended.output.unwrap();
    assert_eq!(body["event"], "job.succeeded");
    assert_eq!(body["delivery_id"], status.delivery_id.as_str());
    assert_eq!(body["job"]["id"], job.id.as_str());
    assert_eq!(body["job"]["state"], "succeeded");
    assert_eq!(body["job"]["file_name"], "page_1.docx");
    assert_eq!(body["job"]["target_format"], "pdf");
    assert_eq!(body["job"]["output"]["file_name"], output.file_name.as_str());
    assert_eq!(body["job"]["output"]["size_bytes"], output.size_bytes);
    assert_eq!(body["job"]["output"]["sha256"], output.sha256.as_str());
    assert_eq!(body["job"]["end_time"], ended.end_time.unwrap().to_string());
    assert!(body["job"].get("error").is_none(), "{body}");
}

#[tokio::test]
async fn a_failed_conversion_sends_the_failed_event() {
    let receiver = Receiver::start(&[], 204).await;
    let mut client = server().client().await;
    let mut hook = webhook(receiver.url("/failed"));
    hook.events = WebhookEvents::Failed as i32;
    let job = submit_with(&mut client, "damaged.xlsx", b"PK\x03\x04 and then garbage", hook).await;
    let error = wait_failed(&mut client, &job.id).await;
    let status = settled(&mut client, &job.id).await;
    assert_eq!((status.state(), status.last_status_code), (WebhookState::Delivered, 204), "{status:?}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("docconv-event"), "job.failed");
    let body = requests[0].json();
    assert_eq!((body["event"].as_str(), body["job"]["state"].as_str()), (Some("job.failed"), Some("failed")));
    assert_eq!(body["job"]["error"]["code"], error.code);
    assert_eq!(body["job"]["error"]["message"], error.message.as_str());
    assert!(body["job"].get("output").is_none(), "{body}");

    // A success is not what a FAILED webhook listens for.
    let mut hook = webhook(receiver.url("/failed"));
    hook.events = WebhookEvents::Failed as i32;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut client, "page_1.docx", &data, hook).await;
    wait_end(&mut client, &job.id).await;
    assert_eq!(settled(&mut client, &job.id).await.state(), WebhookState::NotSent);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_it_on_the_third_attempt_with_the_same_delivery_id() {
    let receiver = Receiver::start(&[500, 503], 200).await;
    // A converter of its own, so that its metrics count this delivery only.
    let metrics = std::sync::Arc::new(docconv_converter::metrics::Metrics::default());
    let own = Server::start(|c| {
        c.webhook_secret = Some(SECRET.into());
        c.webhook_allow_private_networks = vec![ALLOWED.parse().unwrap()];
        c.metrics = metrics.clone();
    });
    let mut client = own.client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut client, "page_1.docx", &data, webhook(receiver.url("/flaky"))).await;
    let started = Instant::now();
    let status = settled(&mut client, &job.id).await;
    assert_eq!((status.state(), status.attempts, status.last_status_code), (WebhookState::Delivered, 3, 200));
    // Waits of 1 s, then 2 s.
    assert!(started.elapsed() >= Duration::from_secs(3), "{:?}", started.elapsed());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.header("docconv-delivery"), status.delivery_id);
        assert_eq!(request.body, requests[0].body, "every attempt says the same");
        assert_eq!(request.header("docconv-signature"), signature(SECRET, &request.body));
    }
    let attempts = |outcome| metrics.webhook_attempts.get_or_create(&WebhookAttempt { outcome }).get();
    assert_eq!((attempts("retry"), attempts("delivered"), attempts("failed")), (2, 1, 0), "counted for Prometheus");
}

#[tokio::test]
async fn a_name_resolving_to_a_refused_address_is_not_sent_to() {
    // Listening where `localhost` resolves, which only 127.0.0.2 is allowed beside.
    let receiver = Receiver::start_on("127.0.0.1", &[], 200).await;
    let mut client = server().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let job = submit_with(&mut client, "page_1.docx", &data, webhook(url)).await;
    let status = settled(&mut client, &job.id).await;
    assert_eq!(status.state(), WebhookState::Failed, "{status:?}");
    assert!(status.last_error.starts_with("not sent: localhost resolves to "), "{}", status.last_error);
    assert!(status.last_error.contains("not a public address (loopback)"), "{}", status.last_error);
    assert_eq!((status.attempts, status.last_status_code), (1, 0), "refused for good, not retried");
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let receiver = Receiver::start(&[], 302).await;
    let mut client = server().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut client, "page_1.docx", &data, webhook(receiver.url("/moved"))).await;
    let status = settled(&mut client, &job.id).await;
    assert_eq!((status.state(), status.attempts, status.last_status_code), (WebhookState::Failed, 1, 302));
    assert!(status.last_error.contains(&format!("a redirect to {METADATA}; redirects are not followed")), "{status:?}");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn submit_refuses_webhooks_that_could_never_be_sent_naming_the_field() {
    let mut client = server().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is not a public address (loopback)"),
        (METADATA, "169.254.169.254 is not a public address (link-local, where cloud metadata"),
        ("http://10.0.0.7/", "private"),
        ("ftp://example.com/hook", "the scheme must be http or https"),
        ("http://user:secret@example.com/", "user name or password"),
        ("not a url", "is not a URL"),
    ] {
        let header = docconv::proto::v1::SubmitHeader { webhook: Some(webhook(url.into())), ..header("page_1.docx") };
        let status = submit(&mut client, header, &data).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{url}: {status:?}");
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        let fields: Vec<_> = bad_request.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["webhook.url"], "{url}");
        assert!(bad_request.field_violations[0].description.contains(why), "{url}: {bad_request:?}");
    }
    let mut hook = webhook("https://example.com/".into());
    hook.headers.insert("Host".into(), "internal.example".into());
    let header = docconv::proto::v1::SubmitHeader { webhook: Some(hook), ..header("page_1.docx") };
    let status = submit(&mut client, header, &data).await.unwrap_err();
    let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
    assert_eq!(bad_request.field_violations[0].field, "webhook.headers");
}

// Receivers answer on the runtime's other thread while `wait_ready` blocks this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_outlives_a_killed_converter() {
    let receiver = Receiver::start(&[], 503).await;
    let data_dir = tempfile::tempdir().unwrap();
    let flags = ["--webhook-allow-private-networks", ALLOWED, "--webhook-secret", SECRET];
    let (first, addr) = start_process_with(data_dir.path(), free_port(), &flags);
    let mut first = Process(first);
    wait_ready(addr);
    let mut client = connect(addr).await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut client, "page_1.docx", &data, webhook(receiver.url("/later"))).await;
    let delivery_id = job.webhook.unwrap().delivery_id;
    // The first attempt failed and is recorded; the next waits out its
    // backoff when the converter is killed.
    first_attempt_recorded(&mut client, &receiver, &job.id).await;
    first.kill();
    let before = receiver.requests().len();

    receiver.answer_from_now(200);
    let (second, addr) = start_process_with(data_dir.path(), free_port(), &flags);
    let mut second = Process(second);
    wait_ready(addr);
    let mut client = connect(addr).await;
    let status = settled(&mut client, &job.id).await;
    second.kill();
    assert_eq!((status.state(), status.last_status_code), (WebhookState::Delivered, 200), "{status:?}");
    let requests = receiver.requests();
    assert!(requests.len() > before, "the restarted converter sent it: {} requests", requests.len());
    // An attempt cut short by the kill is made again, so the receiver may
    // have got one more than the record counts.
    assert!(status.attempts >= 2 && status.attempts as usize <= requests.len(), "{status:?}");
    for request in &requests {
        assert_eq!(request.header("docconv-delivery"), delivery_id);
        assert_eq!(request.header("docconv-signature"), signature(SECRET, &request.body));
    }
}

/// Waits until the receiver got a first attempt and the job records it,
/// with the next one scheduled.
async fn first_attempt_recorded(client: &mut Client, receiver: &Receiver, id: &str) {
    receiver.wait_for(1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = client.get_job(GetJobRequest { id: id.into() }).await.unwrap().into_inner();
        let status = job.webhook.unwrap();
        if status.attempts >= 1 {
            assert_eq!(status.state(), WebhookState::Pending, "{status:?}");
            assert!(status.next_attempt_time.is_some(), "{status:?}");
            return;
        }
        assert!(Instant::now() < deadline, "the first attempt was never recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_another_node_delivers_what_a_dead_node_held() {
    let nats = docconv_backend::conformance::NatsServer::start();
    let receiver = Receiver::start(&[], 503).await;
    let flags = [
        "--nats-url",
        nats.url.as_str(),
        "--job-lease-secs",
        "2",
        "--webhook-allow-private-networks",
        ALLOWED,
        "--webhook-secret",
        SECRET,
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, addr_a) = start_process_with(dir_a.path(), free_port(), &flags);
    let mut a = Process(a);
    wait_ready(addr_a);
    let mut on_a = connect(addr_a).await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with(&mut on_a, "page_1.docx", &data, webhook(receiver.url("/cluster"))).await;
    first_attempt_recorded(&mut on_a, &receiver, &job.id).await;
    a.kill();

    receiver.answer_from_now(200);
    let (b, addr_b) = start_process_with(dir_b.path(), free_port(), &flags);
    let mut b = Process(b);
    wait_ready(addr_b);
    let mut on_b = connect(addr_b).await;
    let status = settled(&mut on_b, &job.id).await;
    b.kill();
    assert_eq!((status.state(), status.last_status_code), (WebhookState::Delivered, 200), "{status:?}");
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.header("docconv-delivery") == status.delivery_id), "{requests:?}");
}
