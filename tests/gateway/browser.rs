//! A real browser: headless Chromium, driven over the DevTools protocol,
//! uploads a document through the form and watches the page update itself;
//! also through two gateways on two converters of one NATS cluster, one of
//! them killed under the page. `pages` checks what the pages are like:
//! nothing logged, accessible, fit for a phone.

use crate::support::{big_text_document, pdf_pages};
use crate::web::serve;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use docconv::proto::v1::{GetJobRequest, JobState};
use docconv_backend::conformance::NatsServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

mod pages;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium with its own profile, killed on drop.
struct Browser {
    process: Child,
    _profile: tempfile::TempDir,
    socket: Socket,
    session: String,
    next_id: u64,
    /// DevTools events received so far (messages without an id).
    events: Vec<Value>,
    /// What the browser answers when a site asks for a user name and
    /// password (see `sign_in_as`).
    credentials: Option<(String, String)>,
}

impl Browser {
    async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut process = Command::new(std::env::var("DOCCONV_CHROMIUM").unwrap_or_else(|_| "chromium".into()))
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium is not installed; run scripts/test");
        // Chromium prints where its DevTools endpoint listens.
        let stderr = BufReader::new(process.stderr.take().unwrap());
        let mut endpoint = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                endpoint = Some(url.trim().to_owned());
                break;
            }
        }
        let endpoint = endpoint.expect("chromium did not open DevTools");
        let (socket, _) = tokio_tungstenite::connect_async(endpoint).await.unwrap();
        let mut browser = Browser {
            process,
            _profile: profile,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            credentials: None,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached =
            browser.call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// Sends a DevTools command and waits for its answer.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::Text(message.to_string().into())).await.unwrap();
        while let Some(frame) = self.socket.next().await {
            let Message::Text(text) = frame.unwrap() else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
            if reply.get("method").is_some() {
                self.answer(&reply).await;
                self.events.push(reply);
            }
        }
        panic!("the browser went away");
    }

    /// From now on, answers every site's request for a user name and
    /// password as a person would in the browser's dialog (which headless
    /// Chromium cannot show); the browser then remembers them for the site.
    async fn sign_in_as(&mut self, user: &str, password: &str) {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self.call("Fetch.enable", json!({ "handleAuthRequests": true })).await;
    }

    /// Lets requests paused by `Fetch` go on, giving credentials when asked.
    /// Sent without waiting for the answer: `call` is busy waiting for its own.
    async fn answer(&mut self, event: &Value) {
        let request = &event["params"]["requestId"];
        let (method, params) = match (event["method"].as_str(), &self.credentials) {
            (Some("Fetch.requestPaused"), _) => ("Fetch.continueRequest", json!({ "requestId": request })),
            (Some("Fetch.authRequired"), Some((user, password))) => (
                "Fetch.continueWithAuth",
                json!({ "requestId": request, "authChallengeResponse": {
                    "response": "ProvideCredentials", "username": user, "password": password } }),
            ),
            _ => return,
        };
        self.next_id += 1;
        let message = json!({ "id": self.next_id, "method": method, "params": params, "sessionId": self.session });
        self.socket.send(Message::Text(message.to_string().into())).await.unwrap();
    }

    /// Evaluates JavaScript in the page (awaiting promises) and returns the value.
    async fn eval(&mut self, script: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": script, "awaitPromise": true, "returnByValue": true }))
            .await;
        assert!(result.get("exceptionDetails").is_none(), "{script}: {result}");
        result["result"]["value"].clone()
    }

    /// Opens `url` and waits until it has loaded.
    async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'", url).await;
    }

    /// Opens the upload page of the gateway at `gateway` and waits for its form.
    async fn open_upload_page(&mut self, gateway: impl std::fmt::Display) {
        self.open(&format!("http://{gateway}/")).await;
        self.wait_for("!!document.querySelector('form[data-upload]')", "the upload page").await;
    }

    /// The status of each WebSocket handshake answered so far.
    fn websocket_handshakes(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.webSocketHandshakeResponseReceived")
            .map(|e| &e["params"]["response"]["status"])
            .collect()
    }

    /// How many WebSockets the page has opened so far.
    fn websockets_opened(&self) -> usize {
        self.events.iter().filter(|e| e["method"] == "Network.webSocketCreated").count()
    }

    /// How many WebSocket messages the page has received so far.
    fn websocket_frames_received(&self) -> usize {
        self.events.iter().filter(|e| e["method"] == "Network.webSocketFrameReceived").count()
    }

    /// Chooses `document` in the upload form's file input and submits the form.
    async fn upload(&mut self, document: &std::path::Path) {
        let root = self.call("DOM.getDocument", json!({})).await;
        let input = self
            .call("DOM.querySelector", json!({ "nodeId": root["root"]["nodeId"], "selector": "input[type=file]" }))
            .await;
        self.call("DOM.setFileInputFiles", json!({ "nodeId": input["nodeId"], "files": [document.to_str().unwrap()] }))
            .await;
        self.eval("document.querySelector('form[data-upload]').requestSubmit()").await;
    }

    /// Waits for the status page an upload leads to, with its job's card.
    async fn wait_for_status_page(&mut self) {
        let status_page = "location.pathname.startsWith('/jobs/') && !!document.querySelector('[data-job-card]')";
        self.wait_for(status_page, "the status page").await;
    }

    /// Polls `script` until it returns true.
    async fn wait_for(&mut self, script: &str, what: &str) {
        self.wait_for_within(script, what, Duration::from_secs(60)).await;
    }

    /// `wait_for`, for up to `limit`.
    async fn wait_for_within(&mut self, script: &str, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.eval(script).await != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fetches the page's download link as the page would: the content
    /// type, the content disposition and the bytes.
    async fn download(&mut self) -> (Value, Value, Vec<u8>) {
        let download = self
            .eval(
                "(async () => {
                    const response = await fetch(document.querySelector('[data-download]').href);
                    const bytes = new Uint8Array(await response.arrayBuffer());
                    let binary = '';
                    for (let i = 0; i < bytes.length; i += 0x8000) {
                        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
                    }
                    return { type: response.headers.get('content-type'),
                             disposition: response.headers.get('content-disposition'),
                             body: btoa(binary) };
                })()",
            )
            .await;
        let body = BASE64.decode(download["body"].as_str().unwrap()).unwrap();
        (download["type"].clone(), download["disposition"].clone(), body)
    }

    /// What the job card shows: its class (`card card--STATE`), the
    /// sequence of the state it shows, and its text.
    async fn card(&mut self) -> Value {
        self.eval(
            "(() => {
                const card = document.querySelector('[data-job-card]');
                return { class: card.className, sequence: card.dataset.sequence, text: card.textContent.trim() };
            })()",
        )
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn a_person_uploads_watches_live_progress_and_downloads_the_pdf() {
    let gateway = serve();
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the page shows progress before the result; a name
    // with a non-ASCII letter, as people's files have.
    let document = dir.path().join("Quarterly report ß.fodt");
    std::fs::write(&document, big_text_document(8000)).unwrap();

    let mut browser = Browser::start().await;
    browser.open_upload_page(gateway).await;

    browser.upload(&document).await;
    browser.wait_for_status_page().await;

    // Mark this page: a reload or a Turbo visit would replace the body and
    // lose the mark; a stream update replaces only the card.
    browser.eval("document.body.dataset.mark = 'live'").await;
    let state = browser.eval("document.querySelector('[data-job-card]').className").await;
    let state = state.as_str().unwrap().to_owned();
    assert!(
        state.contains("card--queued") || state.contains("card--running"),
        "the job ended before the page showed it: {state}"
    );

    browser.wait_for("!!document.querySelector('[data-download]')", "the download link").await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    let announced = browser.eval("document.querySelector('[role=status]').textContent").await;
    assert!(announced.as_str().unwrap().starts_with("Ready:"), "{announced}");

    let (content_type, disposition, pdf) = browser.download().await;
    assert_eq!(content_type, "application/pdf");
    assert!(disposition.as_str().unwrap().contains("Quarterly%20report%20%C3%9F.pdf"));
    assert!(pdf_pages(&pdf) > 100);
}

#[tokio::test]
async fn the_form_watermarks_and_protects_the_pdf() {
    let gateway = serve();
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("memo.fodt");
    std::fs::write(&document, big_text_document(20)).unwrap();

    let mut browser = Browser::start().await;
    browser.open_upload_page(gateway).await;
    browser
        .eval(
            "document.querySelector('details.options').open = true;
             document.querySelector('input[name=background_text]').value = 'DRAFT';
             document.querySelector('input[name=open_password]').value = 'open sesame';",
        )
        .await;
    browser.upload(&document).await;
    browser.wait_for_status_page().await;
    browser.wait_for("!!document.querySelector('[data-download]')", "the download link").await;
    let (_, _, pdf) = browser.download().await;

    let file = dir.path().join("memo.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let needs_password = Command::new("qpdf").arg("--requires-password").arg(&file).status().unwrap();
    assert_eq!(needs_password.code(), Some(0), "the PDF opens without the password");
    // Opened with the password and written out uncompressed, the pages
    // hold the watermark: content marked as an artifact.
    let plain = dir.path().join("plain.pdf");
    let opened = Command::new("qpdf")
        .args(["--password=open sesame", "--decrypt", "--qdf", "--object-streams=disable"])
        .arg(&file)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(opened.success(), "the password does not open it");
    let bytes = std::fs::read(plain).unwrap();
    assert!(bytes.windows(13).any(|w| w == b"/Artifact BMC"), "no watermark drawn");
}

/// Submits `document` straight to the converter and returns the job id.
async fn submit(name: &str, document: &[u8]) -> String {
    let mut client = crate::web::converter().client().await;
    crate::support::submit(&mut client, crate::support::header(name), document).await.unwrap().id
}

#[tokio::test]
async fn a_finished_job_opens_no_stream_and_a_running_one_does() {
    let gateway = serve();
    let finished = submit("done.docx", &std::fs::read(crate::support::fixture("page_1.docx")).unwrap()).await;
    let mut client = crate::web::converter().client().await;
    crate::support::wait_end(&mut client, &finished).await;

    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser.open(&format!("http://{gateway}/jobs/{finished}")).await;
    // Give the page's script every chance to (wrongly) connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.eval("1").await;
    assert_eq!(browser.websockets_opened(), 0, "a finished job's page connected");
    assert_eq!(browser.eval("!!document.querySelector('[data-download]')").await, json!(true));

    let running = submit("long.fodt", &big_text_document(6000)).await;
    browser.open(&format!("http://{gateway}/jobs/{running}")).await;
    browser.wait_for("!!document.querySelector('[data-download]')", "the result").await;
    assert_eq!(browser.websockets_opened(), 1);
}

#[tokio::test]
async fn the_back_button_never_shows_a_stale_spinner() {
    let gateway = serve();
    let running = submit("long.fodt", &big_text_document(6000)).await;
    let mut browser = Browser::start().await;
    browser.open(&format!("http://{gateway}/jobs/{running}")).await;
    browser.wait_for("!!document.querySelector('.card--queued, .card--running')", "the live card").await;
    // Leave through the page's own link (a Turbo visit) while it runs.
    browser.eval("document.querySelector('.back a').click()").await;
    browser
        .wait_for("location.pathname === '/' && !!document.querySelector('form[data-upload]')", "the start page")
        .await;
    let mut client = crate::web::converter().client().await;
    crate::support::wait_end(&mut client, &running).await;

    browser.eval("history.back()").await;
    browser.wait_for(&format!("location.pathname === '/jobs/{running}'"), "the job page again").await;
    browser.wait_for("!!document.querySelector('[data-download]')", "the finished card").await;
    assert_eq!(browser.eval("document.querySelectorAll('.spinner, progress').length").await, json!(0));
}

#[tokio::test]
async fn the_page_reconnects_when_the_converter_restarts() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let (mut first, converter) = crate::support::start_process(data_dir.path(), port);
    crate::support::wait_ready(converter);
    let gateway = crate::web::spawn_gateway(converter);
    let mut client = crate::support::connect(converter).await;
    let job = crate::support::submit(&mut client, crate::support::header("long.fodt"), &big_text_document(16000))
        .await
        .unwrap();

    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser.open(&format!("http://{gateway}/jobs/{}", job.id)).await;
    browser.wait_for("!!document.querySelector('.card--running')", "the running card").await;
    browser.eval("document.body.dataset.mark = 'live'").await;

    // The converter dies mid-job; its stream breaks off (close 1013) and
    // the page keeps trying with backoff until a new converter answers.
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut second, _) = crate::support::start_process(data_dir.path(), port);
    browser.wait_for("!!document.querySelector('[data-download]')", "the result after the restart").await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    assert!(browser.websockets_opened() >= 2, "the page never reconnected");
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn a_person_signs_in_with_a_token_and_the_page_stays_live() {
    use docconv_gateway::config::GatewayConfig;
    let (converter, tokens) = crate::auth::converter();
    let config = GatewayConfig { auth_tokens_file: Some(tokens.path.clone()), ..GatewayConfig::default() };
    let gateway = crate::web::spawn_gateway_with(converter.addr, config);
    let token = docconv::auth::Bearer::new(crate::auth::BROWSER).unwrap();
    let mut client = crate::support::connect_with(converter.addr, token).await;
    let running = crate::support::submit(&mut client, crate::support::header("long.fodt"), &big_text_document(6000))
        .await
        .unwrap()
        .id;

    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser.sign_in_as("someone", crate::auth::BROWSER).await;
    browser.open(&format!("http://{gateway}/jobs/{running}")).await;
    assert!(browser.events.iter().any(|e| e["method"] == "Fetch.authRequired"), "the page was not protected");
    browser.wait_for("!!document.querySelector('.card--queued, .card--running')", "the live card").await;
    browser.eval("document.body.dataset.mark = 'live'").await;

    // The status stream's handshake carries the remembered credentials,
    // so the card updates itself to the end over one WebSocket.
    browser.wait_for("!!document.querySelector('[data-download]')", "the result").await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    assert_eq!(browser.websockets_opened(), 1);
    assert_eq!(browser.websocket_handshakes(), [&json!(101)]);
}

#[tokio::test]
async fn over_https_the_page_comes_over_http2_and_its_upload_and_stream_work() {
    use docconv_gateway::config::GatewayConfig;
    let files = crate::support::TlsFiles::new();
    let config = GatewayConfig { tls: Some(files.open()), ..GatewayConfig::default() };
    let gateway = crate::web::spawn_gateway_with(crate::web::converter().addr, config);
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("long.fodt");
    std::fs::write(&document, big_text_document(6000)).unwrap();

    let mut browser = Browser::start().await;
    // The test CA is not one the browser knows; what is tested here is
    // what the page does over HTTPS, not who signed the certificate.
    browser.call("Security.setIgnoreCertificateErrors", json!({ "ignore": true })).await;
    browser.call("Network.enable", json!({})).await;
    browser.open(&format!("https://localhost:{}/", gateway.port())).await;
    let protocol = browser.eval("performance.getEntriesByType('navigation')[0].nextHopProtocol").await;
    assert_eq!(protocol, json!("h2"));

    // The form posts over HTTP/2 and passes the same-site check.
    browser.upload(&document).await;
    browser
        .wait_for(
            "location.pathname.startsWith('/jobs/') && !!document.querySelector('.card--queued, .card--running')",
            "the live status page",
        )
        .await;
    browser.eval("document.body.dataset.mark = 'live'").await;

    // The card updates itself to the end over one wss:// stream.
    browser.wait_for("!!document.querySelector('[data-download]')", "the result").await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    let sockets: Vec<&Value> = browser
        .events
        .iter()
        .filter(|e| e["method"] == "Network.webSocketCreated")
        .map(|e| &e["params"]["url"])
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert!(sockets[0].as_str().unwrap().starts_with("wss://localhost:"), "{sockets:?}");
    assert_eq!(browser.websocket_handshakes(), [&json!(101)]);
}

/// Lease time of the cluster nodes below: a dead node's job moves on soon,
/// and a busy machine does not make a live node's job move.
const LEASE_SECS: &str = "5";

#[tokio::test]
async fn two_gateways_on_two_clustered_converters_show_and_serve_one_job_alike() {
    use crate::support::{cluster_node, connect, free_port, gateway_process, wait_ready};
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flags = ["--job-lease-secs", LEASE_SECS];
    let (_a, addr_a) = cluster_node(&nats, dir_a.path(), free_port(), &flags);
    let (_b, addr_b) = cluster_node(&nats, dir_b.path(), free_port(), &flags);
    wait_ready(addr_a);
    wait_ready(addr_b);
    let (_gateway_1, gateway_1) = gateway_process(&[addr_a, addr_b]).await;
    let (_gateway_2, gateway_2) = gateway_process(&[addr_a, addr_b]).await;
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("Cluster report.fodt");
    std::fs::write(&document, big_text_document(12000)).unwrap();

    // Uploaded on the first gateway, the page follows the job to its end.
    let mut browser = Browser::start().await;
    browser.open_upload_page(gateway_1).await;
    browser.upload(&document).await;
    browser.wait_for_status_page().await;
    browser.eval("document.body.dataset.mark = 'live'").await;
    let shown = browser.card().await;
    let shown = shown["class"].as_str().unwrap();
    assert!(
        shown.contains("card--queued") || shown.contains("card--running"),
        "the job ended before the page showed it: {shown}"
    );
    browser
        .wait_for_within("!!document.querySelector('[data-download]')", "the download link", Duration::from_secs(180))
        .await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    let id = browser.eval("location.pathname.split('/')[2]").await.as_str().unwrap().to_owned();
    let on_first = browser.card().await;
    let (content_type, _, pdf) = browser.download().await;
    assert_eq!(content_type, "application/pdf");

    // What the converters say of it, and the bytes they describe.
    let ended = connect(addr_b).await.get_job(GetJobRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(ended.state(), JobState::Succeeded, "{ended:?}");
    assert_eq!(on_first["sequence"], json!(ended.sequence.to_string()), "the page shows the last state");
    let output = ended.output.unwrap();
    assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf)), output.sha256, "the bytes the job describes");
    assert_eq!(pdf_pages(&pdf), output.page_count);

    // The second gateway shows the same finished job and serves the same bytes.
    browser.open(&format!("http://{gateway_2}/jobs/{id}")).await;
    let here = format!("location.host === '{gateway_2}' && !!document.querySelector('[data-job-card]')");
    browser.wait_for(&here, "the job's page on the second gateway").await;
    assert_eq!(browser.card().await, on_first, "both gateways show the same card");
    let (content_type, _, again) = browser.download().await;
    assert_eq!(content_type, "application/pdf");
    assert!(again == pdf, "the second gateway served other bytes");
}

#[tokio::test]
async fn a_page_whose_converter_dies_follows_the_job_to_its_end_on_another() {
    use crate::support::{cluster_node, connect, free_port, gateway_process, wait_ready, worker_pids_under};
    use rustix::process::{Pid, Signal, kill_process};
    let nats = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Deadlines far off: the conversion is held still below.
    let flags = ["--job-lease-secs", LEASE_SECS, "--job-timeout-secs", "600"];
    let (mut a, addr_a) = cluster_node(&nats, dir_a.path(), free_port(), &flags);
    wait_ready(addr_a);
    // The gateway is given both converters, but B starts only once the
    // page streams: A is then the only one the page can stream from.
    let port_b = free_port();
    let addr_b: std::net::SocketAddr = format!("127.0.0.1:{port_b}").parse().unwrap();
    let (_gateway, gateway) = gateway_process(&[addr_a, addr_b]).await;
    let mut on_a = connect(addr_a).await;
    let job = crate::support::submit(&mut on_a, crate::support::header("long.fodt"), &big_text_document(16000))
        .await
        .unwrap();
    crate::support::wait_running(&mut on_a, &job.id).await;
    // A's worker stops where it is, so that the job is still running on A
    // when A dies, however long B takes to start on a busy machine. A
    // itself goes on renewing the job's lease.
    let workers = worker_pids_under(dir_a.path());
    assert!(!workers.is_empty(), "A has a worker");
    for &pid in &workers {
        kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::STOP).unwrap();
    }

    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser.open(&format!("http://{gateway}/jobs/{}", job.id)).await;
    browser.wait_for("!!document.querySelector('.card--running')", "the running card").await;
    // The stream's first message: the page now streams from A.
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.websocket_frames_received() == 0 {
        assert!(Instant::now() < deadline, "the page's stream sent nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Events arrive while a command waits for its answer.
        browser.eval("1").await;
    }
    browser.eval("document.body.dataset.mark = 'live'").await;

    let (_b, _) = cluster_node(&nats, dir_b.path(), port_b, &flags);
    wait_ready(addr_b);
    let mut on_b = connect(addr_b).await;
    let before = on_b.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!((before.state(), before.attempts), (JobState::Running, 1), "still running on A: {before:?}");
    a.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while workers.iter().any(|&pid| crate::support::process_alive(pid)) {
        assert!(Instant::now() < deadline, "A's worker outlived it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The page's stream broke off with A; it reconnects, through the
    // gateway, to B, which runs the job again once its lease runs out.
    browser
        .wait_for_within("!!document.querySelector('[data-download]')", "the result from B", Duration::from_secs(180))
        .await;
    assert_eq!(browser.eval("document.body.dataset.mark").await, json!("live"), "the page was reloaded");
    assert!(browser.websockets_opened() >= 2, "the page never reconnected");
    let ended = on_b.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!((ended.state(), ended.attempts), (JobState::Succeeded, 2), "it ran again on B: {ended:?}");
    assert_eq!(browser.card().await["sequence"], json!(ended.sequence.to_string()), "the page shows the last state");
    let (content_type, _, pdf) = browser.download().await;
    assert_eq!(content_type, "application/pdf");
    let output = ended.output.unwrap();
    assert_eq!(docconv::ids::hex(&Sha256::digest(&pdf)), output.sha256, "the bytes the job describes");
    assert_eq!(pdf_pages(&pdf), output.page_count);
}
