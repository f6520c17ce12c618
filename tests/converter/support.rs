//! Test support: real converters on 127.0.0.1:0 with real LibreOffice
//! workers (in process, or processes of their own, alone or as nodes of a
//! NATS cluster), gateway processes, a gRPC client, and PDF checks with
//! poppler's command-line tools.

// Shared by several test binaries; each uses a part.
#![allow(dead_code)]

use docconv::auth::Bearer;
use docconv::proto::v1::converter_client::ConverterClient;
use docconv::proto::v1::{
    GetJobRequest, Job, JobError, JobState, ReadResultRequest, SubmitHeader, SubmitRequest, WatchJobRequest,
    submit_request, watch_job_response,
};
use docconv_auth::tls::ServerCertificate;
use docconv_backend::conformance::NatsServer;
use docconv_converter::config::ConverterConfig;
use docconv_converter::server;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A client that sends a token with every call, or none (`Bearer::none`).
pub type Client = ConverterClient<InterceptedService<Channel, Bearer>>;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gotenberg").join(name)
}

/// The docconv binary, which the converter starts as `docconv worker`.
pub fn docconv_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_docconv"))
}

pub fn config(data_dir: &Path, edit: impl FnOnce(&mut ConverterConfig)) -> ConverterConfig {
    let mut config = ConverterConfig {
        data_dir: Some(data_dir.to_path_buf()),
        workers: Some(1),
        heartbeat_secs: 0.3,
        shutdown_grace_secs: 0,
        ..ConverterConfig::default()
    };
    edit(&mut config);
    config
}

/// A converter running in this test process on its own runtime thread.
pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    /// The certificate it serves, if it serves TLS.
    tls: Option<Arc<ServerCertificate>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a converter with one worker and waits until it is ready.
    pub fn start(edit: impl FnOnce(&mut ConverterConfig)) -> Server {
        Server::start_in(&std::env::temp_dir(), edit)
    }

    /// `start`, with the data directory inside `parent`.
    pub fn start_in(parent: &Path, edit: impl FnOnce(&mut ConverterConfig)) -> Server {
        let data_dir = tempfile::tempdir_in(parent).unwrap();
        let config = config(data_dir.path(), edit);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = config.tls.clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let stop = async move {
                    let _ = stop.await;
                };
                server::run(config, docconv_exe(), listener, stop).await.unwrap();
            });
            // Workers, runners and the store go with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(5));
        });
        let server = Server { addr, data_dir, tls: tls.clone(), shutdown: Some(shutdown), thread: Some(thread) };
        wait_ready_with(addr, tls);
        server
    }

    /// A client without a token; over TLS if the server serves it, trusting
    /// exactly the certificate served.
    pub async fn client(&self) -> Client {
        let channel = endpoint(self.addr, self.tls.as_ref()).connect().await.unwrap();
        ConverterClient::with_interceptor(channel, Bearer::none())
    }

    /// The `docconv worker` processes of this server.
    pub fn worker_pids(&self) -> Vec<u32> {
        worker_pids_under(self.data_dir.path())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One converter with two workers shared by the tests that need nothing
/// special, so LibreOffice starts once for all of them.
pub fn shared() -> &'static Server {
    static SHARED: OnceLock<Server> = OnceLock::new();
    SHARED.get_or_init(|| {
        Server::start(|c| {
            c.workers = Some(2);
            c.max_upload_mib = 4;
        })
    })
}

pub async fn connect(addr: SocketAddr) -> Client {
    connect_with(addr, Bearer::none()).await
}

/// A client whose calls carry `token`.
pub async fn connect_with(addr: SocketAddr, token: Bearer) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    ConverterClient::with_interceptor(channel, token)
}

/// Polls grpc.health.v1 until the converter reports SERVING. Blocks, on a
/// thread of its own so that async tests may call it too.
pub fn wait_ready(addr: SocketAddr) {
    wait_ready_with(addr, None);
}

/// `wait_ready` for a converter serving TLS with `tls`.
pub fn wait_ready_with(addr: SocketAddr, tls: Option<Arc<ServerCertificate>>) {
    std::thread::spawn(move || wait_ready_on_this_thread(addr, tls.as_ref())).join().unwrap();
}

fn wait_ready_on_this_thread(addr: SocketAddr, tls: Option<&Arc<ServerCertificate>>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if health_of(endpoint(addr, tls)).await == Some(1) {
                return;
            }
            assert!(Instant::now() < deadline, "converter at {addr} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The converter at `addr`: plain, or over TLS trusting exactly the
/// certificate `tls` serves (as `docconv serve`'s gateway does).
pub fn endpoint(addr: SocketAddr, tls: Option<&Arc<ServerCertificate>>) -> Endpoint {
    match tls {
        None => Endpoint::from_shared(format!("http://{addr}")).unwrap(),
        Some(certificate) => Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config_with_verifier(ClientTlsConfig::new(), certificate.own_verifier())
            .unwrap(),
    }
}

/// The overall health status (1 = SERVING, 2 = NOT_SERVING), if reachable.
pub async fn health(addr: SocketAddr) -> Option<i32> {
    health_of(endpoint(addr, None)).await
}

/// `health` through `endpoint`.
pub async fn health_of(endpoint: Endpoint) -> Option<i32> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = endpoint.connect().await.ok()?;
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.ok()?;
    Some(response.into_inner().status)
}

pub fn header(file_name: &str) -> SubmitHeader {
    SubmitHeader { file_name: file_name.into(), ..SubmitHeader::default() }
}

/// Submits `data` in 1 MiB chunks after `header`.
pub async fn submit(client: &mut Client, header: SubmitHeader, data: &[u8]) -> Result<Job, tonic::Status> {
    let mut messages = vec![SubmitRequest { payload: Some(submit_request::Payload::Header(header)) }];
    for chunk in data.chunks(1024 * 1024) {
        messages.push(SubmitRequest { payload: Some(submit_request::Payload::Data(chunk.to_vec())) });
    }
    client.submit(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

/// Options with only their PDF part, as `edit` sets it.
pub fn pdf_options(edit: impl FnOnce(&mut docconv::proto::v1::PdfOptions)) -> docconv::proto::v1::ConversionOptions {
    let mut pdf = docconv::proto::v1::PdfOptions::default();
    edit(&mut pdf);
    docconv::proto::v1::ConversionOptions { pdf: Some(pdf), ..Default::default() }
}

/// Converts `data` on the shared converter; returns the succeeded job and
/// its result.
pub async fn convert_on_shared(header: SubmitHeader, data: &[u8]) -> (Job, Vec<u8>) {
    let mut client = shared().client().await;
    let job = submit(&mut client, header, data).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let result = read_result(&mut client, &job.id, 0).await;
    (job, result)
}

pub async fn submit_fixture(client: &mut Client, name: &str) -> Job {
    let data = std::fs::read(fixture(name)).unwrap();
    submit(client, header(name), &data).await.unwrap()
}

/// Every state `WatchJob` sends, until the stream ends.
pub async fn watch_all(client: &mut Client, id: &str) -> Vec<Job> {
    let mut stream = client.watch_job(WatchJobRequest { id: id.into() }).await.unwrap().into_inner();
    let mut states = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        if let Some(watch_job_response::Event::Job(job)) = message.event {
            states.push(job);
        }
    }
    states
}

/// Watches the job to its end and returns the final state.
pub async fn wait_end(client: &mut Client, id: &str) -> Job {
    let job = watch_all(client, id).await.pop().unwrap();
    assert!(is_ended(&job), "the watch ended before the job: {job:?}");
    job
}

/// Polls until the job runs.
pub async fn wait_running(client: &mut Client, id: &str) -> Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = client.get_job(GetJobRequest { id: id.into() }).await.unwrap().into_inner();
        if job.state() == JobState::Running {
            return job;
        }
        assert!(Instant::now() < deadline, "job never started: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a job that must fail, and returns its error.
pub async fn wait_failed(client: &mut Client, id: &str) -> JobError {
    let job = wait_end(client, id).await;
    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    job.error.expect("a failed job carries its error")
}

pub fn is_ended(job: &Job) -> bool {
    matches!(job.state(), JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

pub async fn read_result(client: &mut Client, id: &str, offset: u64) -> Vec<u8> {
    let request = ReadResultRequest { id: id.into(), offset, limit: 0 };
    let mut stream = client.read_result(request).await.unwrap().into_inner();
    let mut data = Vec::new();
    let mut first = true;
    while let Some(chunk) = stream.message().await.unwrap() {
        assert_eq!(chunk.offset, offset + data.len() as u64);
        // The first message describes the result; later ones do not repeat it.
        assert_eq!(chunk.output.is_some(), first, "output on a message other than the first");
        first = false;
        data.extend_from_slice(&chunk.data);
    }
    data
}

/// Converts a fixture and returns the final job and the PDF.
pub async fn convert(client: &mut Client, name: &str) -> (Job, Vec<u8>) {
    let job = submit_fixture(client, name).await;
    let job = wait_end(client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{name}: {job:?}");
    let pdf = read_result(client, &job.id, 0).await;
    (job, pdf)
}

fn with_pdf_file<T>(pdf: &[u8], run: impl FnOnce(&Path) -> T) -> T {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    run(file.path())
}

fn poppler(tool: &str, args: &[&str], pdf: &Path) -> String {
    let output = Command::new(tool)
        .args(args)
        .arg(pdf)
        .args(if tool == "pdftotext" { &["-"][..] } else { &[][..] })
        .output()
        .unwrap_or_else(|e| panic!("{tool} is missing (poppler-utils): {e}"));
    assert!(output.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn pdf_pages(pdf: &[u8]) -> u32 {
    let info = with_pdf_file(pdf, |p| poppler("pdfinfo", &[], p));
    let line = info.lines().find(|l| l.starts_with("Pages:")).expect("pdfinfo prints Pages");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The text of one page (1-based), or of all pages with `None`.
pub fn pdf_text(pdf: &[u8], page: Option<u32>) -> String {
    let page = page.map(|p| p.to_string());
    let args: Vec<&str> = match &page {
        Some(p) => vec!["-f", p, "-l", p],
        None => vec![],
    };
    with_pdf_file(pdf, |p| poppler("pdftotext", &args, p))
}

/// How many images the PDF contains.
pub fn pdf_images(pdf: &[u8]) -> usize {
    let list = with_pdf_file(pdf, |p| poppler("pdfimages", &["-list"], p));
    // Two header lines, then one line per image.
    list.lines().skip(2).filter(|l| !l.trim().is_empty()).count()
}

/// A long text document: `paragraphs` paragraphs, about 40 per page; it
/// keeps a worker busy for seconds.
pub fn big_text_document(paragraphs: usize) -> Vec<u8> {
    let body: String = (0..paragraphs)
        .map(|i| {
            format!("<text:p>Paragraph {i}: the quick brown fox jumps over the lazy dog, again and again.</text:p>")
        })
        .collect();
    text_document(&body)
}

/// A flat ODF text document showing one image linked (not embedded) from `href`.
pub fn document_linking(href: &str) -> Vec<u8> {
    text_document(&format!(
        "<text:p>Linked image below.</text:p><text:p>\
         <draw:frame text:anchor-type=\"as-char\" svg:width=\"3cm\" svg:height=\"3cm\">\
         <draw:image xlink:href=\"{href}\" xlink:type=\"simple\" xlink:show=\"embed\" xlink:actuate=\"onLoad\"/>\
         </draw:frame></text:p>"
    ))
}

/// A flat ODF spreadsheet with one image linked (not embedded) from `href`
/// beside its only filled cell.
pub fn spreadsheet_linking(href: &str) -> Vec<u8> {
    spreadsheet_with_image(&format!(
        "<draw:image xlink:href=\"{href}\" xlink:type=\"simple\" xlink:show=\"embed\" xlink:actuate=\"onLoad\"/>"
    ))
}

/// A flat ODF spreadsheet with `image` (a `draw:image` element) in a frame
/// beside its only filled cell.
pub fn spreadsheet_with_image(image: &str) -> Vec<u8> {
    flat_odf(
        "spreadsheet",
        "",
        &format!(
            "<table:table table:name=\"S\"><table:shapes>\
             <draw:frame svg:width=\"3cm\" svg:height=\"3cm\" svg:x=\"3cm\" svg:y=\"1cm\">{image}</draw:frame>\
             </table:shapes><table:table-row><table:table-cell office:value-type=\"string\">\
             <text:p>Beside the image.</text:p></table:table-cell></table:table-row></table:table>"
        ),
    )
}

/// A valid 8×8 red PNG.
pub fn red_png() -> Vec<u8> {
    png(8, 8, |_, _| [255, 0, 0])
}

/// The worker processes of the converter whose data is in `data_dir`:
/// `docconv worker` processes whose profile lives there, and workers
/// forked from its zygote (`docconv worker-zygote`, named
/// `docconv-worker`).
pub fn worker_pids_under(data_dir: &Path) -> Vec<u32> {
    let marker = data_dir.to_string_lossy().into_owned();
    let cmdline_of = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = cmdline_of(pid) else {
            continue;
        };
        let exec_worker = cmdline.contains(" worker ");
        let forked_worker = cmdline.contains(" worker-zygote ")
            && std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|comm| comm.trim() == "docconv-worker");
        if (exec_worker || forked_worker) && cmdline.contains(&marker) {
            pids.push(pid);
        }
    }
    pids
}

/// A worker's own directory: `--home` on an exec'd worker's command line,
/// the working directory of a forked one.
pub fn worker_home(pid: u32) -> Option<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let home = match args.iter().position(|a| *a == b"--home") {
        Some(at) => PathBuf::from(String::from_utf8_lossy(args.get(at + 1)?).into_owned()),
        None => std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?,
    };
    Some(home.canonicalize().unwrap_or(home))
}

/// The worker zygote of the converter whose data is in `data_dir`.
pub fn zygote_pids_under(data_dir: &Path) -> Vec<u32> {
    let marker = data_dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" worker-zygote ") && cmdline.contains(&marker) && !is_forked_worker(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is a worker forked from the zygote (not exec'd).
pub fn is_forked_worker(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "docconv-worker")
}

pub fn process_alive(pid: u32) -> bool {
    // A zombie has exited; only its entry remains until it is reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A converter in a process of its own, to be killed for real.
pub fn start_process(data_dir: &Path, port: u16) -> (std::process::Child, SocketAddr) {
    start_process_with(data_dir, port, &[])
}

/// `start_process` with extra converter flags.
pub fn start_process_with(data_dir: &Path, port: u16, flags: &[&str]) -> (std::process::Child, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(docconv_exe())
        .args(["converter", "--listen", &addr.to_string(), "--shutdown-grace-secs", "0"])
        .args(if flags.contains(&"--workers") { &[][..] } else { &["--workers", "1"][..] })
        .args(flags)
        .arg("--data-dir")
        .arg(data_dir)
        .env("DOCCONV_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, addr)
}

/// A process of the test, killed when dropped (a failed assertion must not
/// leave it running).
pub struct Process(pub std::process::Child);

impl Process {
    /// Kills it at once, as a crash or a power cut would.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A converter node of the cluster on `nats`, in a process of its own on
/// `port`, with extra converter flags. Not yet ready: see `wait_ready`.
pub fn cluster_node(nats: &NatsServer, data_dir: &Path, port: u16, flags: &[&str]) -> (Process, SocketAddr) {
    let flags: Vec<&str> = ["--nats-url", nats.url.as_str()].into_iter().chain(flags.iter().copied()).collect();
    let (child, addr) = start_process_with(data_dir, port, &flags);
    (Process(child), addr)
}

/// A `docconv gateway` process in front of `converters` (all given to one
/// `--converter-url`), once it listens.
pub async fn gateway_process(converters: &[SocketAddr]) -> (Process, SocketAddr) {
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let urls: Vec<String> = converters.iter().map(|c| format!("http://{c}")).collect();
    let gateway = Process(
        Command::new(docconv_exe())
            .args(["gateway", "--listen", &http.to_string(), "--converter-url", &urls.join(",")])
            .env("DOCCONV_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(http).await.is_err() {
        assert!(Instant::now() < deadline, "the gateway never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (gateway, http)
}

/// A PNG of `width`×`height` RGB pixels from `pixel(x, y)`.
pub fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    docconv_bench::png(width, height, pixel)
}

/// A flat ODF text document with `body` (ODF text markup) as its content.
pub fn text_document(body: &str) -> Vec<u8> {
    flat_odf("text", "", body)
}

/// A flat ODF document of `kind` ("text", "spreadsheet" or "drawing"):
/// `styles` (automatic and master styles) before the body, `body` inside
/// `<office:{kind}>`. Every namespace the tests use is declared.
pub fn flat_odf(kind: &str, styles: &str, body: &str) -> Vec<u8> {
    let media_kind = if kind == "drawing" { "graphics" } else { kind };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<office:document \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" \
         xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" \
         xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\" \
         xmlns:presentation=\"urn:oasis:names:tc:opendocument:xmlns:presentation:1.0\" \
         office:version=\"1.2\" office:mimetype=\"application/vnd.oasis.opendocument.{media_kind}\">\
         {styles}<office:body><office:{kind}>{body}</office:{kind}></office:body></office:document>"
    )
    .into_bytes()
}

/// Runs a poppler tool with extra arguments on a PDF; `None` if it fails.
pub fn poppler_with(tool: &str, args: &[&str], pdf: &[u8]) -> Option<String> {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output = Command::new(tool).args(args).arg(file.path()).output().unwrap();
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Submits several documents as one merge: the first after `header`, each
/// further one after its `next_document` message.
pub async fn submit_merge(
    client: &mut Client,
    header: SubmitHeader,
    documents: &[(&str, Vec<u8>)],
) -> Result<Job, tonic::Status> {
    use docconv::proto::v1::DocumentHeader;
    let (first, more) = documents.split_first().expect("a document");
    let further = more
        .iter()
        .map(|(name, data)| (DocumentHeader { file_name: name.to_string(), ..DocumentHeader::default() }, &data[..]))
        .collect::<Vec<_>>();
    submit_with_files(client, header, &first.1, &further).await
}

/// Submits `data` after `header`, then each further file (a document, an
/// attachment, a mark's file) after its own header.
pub async fn submit_with_files(
    client: &mut Client,
    header: SubmitHeader,
    data: &[u8],
    further: &[(docconv::proto::v1::DocumentHeader, &[u8])],
) -> Result<Job, tonic::Status> {
    let data_messages = |data: &[u8]| {
        data.chunks(1024 * 1024).map(|chunk| submit_request::Payload::Data(chunk.to_vec())).collect::<Vec<_>>()
    };
    let mut payloads = vec![submit_request::Payload::Header(header)];
    payloads.extend(data_messages(data));
    for (next, bytes) in further {
        payloads.push(submit_request::Payload::NextDocument(next.clone()));
        payloads.extend(data_messages(bytes));
    }
    let messages = payloads.into_iter().map(|payload| SubmitRequest { payload: Some(payload) });
    client.submit(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

/// Waits for `job` to end, checks that it succeeded, and returns it with
/// its result.
pub async fn succeeded(job: Job) -> (Job, Vec<u8>) {
    let mut client = shared().client().await;
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), docconv::proto::v1::JobState::Succeeded, "{job:?}");
    let result = read_result(&mut client, &job.id, 0).await;
    (job, result)
}

/// `docconv hash-token`, run for real with `input` on its standard input.
pub fn hash_token(input: &str, name: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut command = Command::new(docconv_exe());
    command.arg("hash-token").args(name.map(|n| ["--name", n]).iter().flatten());
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A tokens file in a directory of its own, its lines made by `docconv
/// hash-token` as people make them.
pub struct TokensFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TokensFile {
    pub fn with(tokens: &[&str]) -> TokensFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let file = TokensFile { _dir: dir, path };
        file.rewrite(tokens);
        file
    }

    fn content(tokens: &[&str]) -> String {
        let mut text = String::from("# docconv tokens, one SHA-256 a line\n");
        for (index, token) in tokens.iter().enumerate() {
            let output = hash_token(token, Some(&format!("test token {index}")));
            assert!(output.status.success(), "hash-token: {}", String::from_utf8_lossy(&output.stderr));
            text.push_str(&String::from_utf8(output.stdout).unwrap());
        }
        text
    }

    /// Writes the file in place, as an editor that does not rename saves.
    pub fn rewrite(&self, tokens: &[&str]) {
        std::fs::write(&self.path, Self::content(tokens)).unwrap();
    }

    /// Writes a new file and renames it over this one, as tools save.
    pub fn replace(&self, tokens: &[&str]) {
        let new = self.path.with_extension("new");
        std::fs::write(&new, Self::content(tokens)).unwrap();
        std::fs::rename(&new, &self.path).unwrap();
    }
}

/// Waits up to `limit` for a process that should exit by itself; kills it
/// and fails if it does not.
pub fn exit_within(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("process {pid} was still running after {limit:?}");
        }
    }
}

/// A local listener that counts the connections it accepts, for documents
/// that must never reach out.
pub struct Listener {
    pub port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn start() -> Listener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Listener { port, connections, task }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test CA, and a server certificate it issued for `localhost` and
/// 127.0.0.1, as PEM files in a directory of their own (`ca.pem`,
/// `cert.pem` with the chain, `key.pem`).
pub struct TlsFiles {
    _dir: tempfile::TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub ca_path: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn new() -> TlsFiles {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "docconv test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let files = TlsFiles {
            ca_path: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
            ca,
        };
        std::fs::write(&files.ca_path, files.ca.pem()).unwrap();
        let (chain, key, _) = files.issue();
        std::fs::write(&files.cert, chain).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    /// A new certificate and key from the same CA: the chain, the key and
    /// the certificate's fingerprint.
    pub fn issue(&self) -> (String, String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let leaf = params.signed_by(&key, &*self.ca).unwrap();
        (format!("{}{}", leaf.pem(), self.ca.pem()), key.serialize_pem(), fingerprint(leaf.der()))
    }

    /// Renews the pair as a renewal tool does, each file written aside and
    /// renamed over the old one, the certificate first; returns the new
    /// certificate's fingerprint.
    pub fn renew(&self) -> String {
        let (chain, key, fingerprint) = self.issue();
        replace(&self.cert, &chain);
        replace(&self.key, &key);
        fingerprint
    }

    /// The pair, as the command line opens it.
    pub fn open(&self) -> Arc<ServerCertificate> {
        ServerCertificate::open(&self.cert, &self.key).unwrap()
    }

    /// A client's TLS settings: trusting this CA, offering `alpn`.
    pub fn connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A TLS connection to `addr` checked against this CA for the name
    /// `localhost`, with its fresh handshake (a new client config each
    /// time: no session is resumed).
    pub async fn connect(&self, addr: SocketAddr, alpn: &[&[u8]]) -> TlsClientStream {
        let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        self.connector(alpn).connect(name, socket).await.unwrap()
    }

    /// A converter client over TLS, checking the certificate against this
    /// CA as any client would.
    pub async fn client(&self, addr: SocketAddr) -> Client {
        let tls = ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(self.ca.pem()))
            .domain_name("localhost");
        let channel =
            Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
        ConverterClient::with_interceptor(channel, Bearer::none())
    }
}

pub type TlsClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// The SHA-256 of a certificate, in hex.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of the certificate the server presented on `stream`.
pub fn peer_fingerprint(stream: &TlsClientStream) -> String {
    fingerprint(stream.get_ref().1.peer_certificates().expect("the server sent a certificate")[0].as_ref())
}

/// The ALPN protocol the server chose on `stream`.
pub fn alpn(stream: &TlsClientStream) -> Option<String> {
    stream.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())
}

/// Writes `path` aside and renames it over the old file.
fn replace(path: &Path, content: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, content).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// An HTTP/1.1 answer, as the tests' own small client reads it.
pub struct Reply {
    pub status: u16,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP/1.1 request head for `host`; `close` asks the server to close
/// the connection after its answer.
pub fn request_head(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    length: usize,
    close: bool,
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// An answer's head, once `raw` holds all of it: the answer with what
/// followed the head as its body so far.
pub fn parse_head(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Reply { status, headers, body: raw[end + 4..].to_vec() })
}

/// One request on a new connection that the server closes after
/// answering; the answer, read whole (plain bodies only).
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = request_head(method, path, &addr.to_string(), headers, body.len(), true);
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.unwrap();
    let reply = parse_head(&raw).expect("a complete head");
    assert_ne!(reply.header("transfer-encoding"), Some("chunked"), "this helper reads plain bodies only");
    reply
}

/// Runs qpdf with `args`, then the PDF as a file, and returns how it ended.
pub fn qpdf_on(args: &[&str], pdf: &[u8]) -> std::process::Output {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    Command::new("qpdf").args(args).arg(file.path()).output().expect("qpdf is installed")
}

/// What exiftool prints for `pdf` with `args`.
pub fn exiftool(args: &[&str], pdf: &[u8]) -> String {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output = Command::new("exiftool").args(args).arg(file.path()).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// exiftool's JSON (`-j` and `args`) of `pdf`: its one object.
pub fn exiftool_json(args: &[&str], pdf: &[u8]) -> serde_json::Value {
    let mut all = vec!["-j"];
    all.extend(args);
    serde_json::from_str::<serde_json::Value>(&exiftool(&all, pdf)).unwrap()[0].clone()
}

/// What `qpdf --json` says of the PDF, with `options` (e.g. "--json-key=pages").
pub fn qpdf_json(pdf: &[u8], options: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend(options);
    let output = qpdf_on(&args, pdf);
    assert!(matches!(output.status.code(), Some(0 | 3)), "qpdf --json: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Whether `qpdf --check` finds the PDF sound (exit 0: no errors, no warnings).
pub fn qpdf_check(pdf: &[u8]) -> bool {
    let output = qpdf_on(&["--check"], pdf);
    output.status.code() == Some(0)
}

/// A PDF of its own, written by qpdf from `pdf`: here, encrypted with
/// `args` (e.g. `--encrypt u o 256 --`).
pub fn qpdf_rewrite(pdf: &[u8], args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&input, pdf).unwrap();
    let status = Command::new("qpdf").arg(&input).args(args).arg(&output).status().unwrap();
    assert!(matches!(status.code(), Some(0 | 3)), "qpdf {args:?}");
    std::fs::read(output).unwrap()
}

/// The PDFs inside a zip, in order, with their names.
pub fn unzip(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("result.zip");
    std::fs::write(&zip, data).unwrap();
    let listing = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); \
                print(json.dumps([[n, z.read(n).hex()] for n in z.namelist()]))",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    let entries: Vec<(String, String)> = serde_json::from_slice(&listing.stdout).unwrap();
    entries
        .into_iter()
        .map(|(name, hex)| {
            (name, (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect())
        })
        .collect()
}
