//! Hostile documents: each links a local image (a "secret" outside the
//! job) or a URL on a local listener through a path that LibreOffice's own
//! link blocking does not cover. For every output the input can become,
//! the secret must not be in the result and the listener must see no
//! connection: first with the service as configured, then with the
//! profile's link blocking turned off, where the worker's sandbox alone
//! holds.

use crate::reliability::Case;
use crate::support::*;
use docconv::proto::v1::{GetServerInfoRequest, JobState, ListFormatsRequest, SubmitHeader, WorkerSandbox};
use docconv_worker::StartMode;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use tonic::Code;

/// A converter whose profile does not block links: only the sandbox
/// stands between a document and the machine.
fn sandbox_alone() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(|c| c.insecure_profile_allows_links = true))
}

/// One way for a document to pull in something from outside itself.
struct Vector {
    /// What it is, for the reliability report.
    class: &'static str,
    name: &'static str,
    /// The document, linking `href`.
    document: fn(&str) -> Vec<u8>,
}

/// The outputs checked: every one of these the input can become.
const OUTPUTS: &[&str] = &["pdf", "html", "docx", "pptx", "txt", "png"];

/// The link attributes every ODF vector uses.
fn link(href: &str) -> String {
    format!("xlink:href=\"{href}\" xlink:type=\"simple\" xlink:actuate=\"onLoad\"")
}

fn page_background(href: &str) -> Vec<u8> {
    flat_odf(
        "text",
        &format!(
            "<office:automatic-styles><style:page-layout style:name=\"pm1\"><style:page-layout-properties \
             fo:page-width=\"21cm\" fo:page-height=\"29.7cm\"><style:background-image {} style:repeat=\"stretch\"/>\
             </style:page-layout-properties></style:page-layout></office:automatic-styles><office:master-styles>\
             <style:master-page style:name=\"Standard\" style:page-layout-name=\"pm1\"/></office:master-styles>",
            link(href)
        ),
        "<text:p>Page background</text:p>",
    )
}

fn paragraph_background(href: &str) -> Vec<u8> {
    flat_odf(
        "text",
        &format!(
            "<office:automatic-styles><style:style style:name=\"P1\" style:family=\"paragraph\">\
             <style:paragraph-properties><style:background-image {} style:repeat=\"repeat\"/>\
             </style:paragraph-properties></style:style></office:automatic-styles>",
            link(href)
        ),
        "<text:p text:style-name=\"P1\">Paragraph background</text:p>",
    )
}

fn shape_bitmap_fill(href: &str) -> Vec<u8> {
    flat_odf(
        "text",
        &format!(
            "<office:styles><draw:fill-image draw:name=\"img1\" {}/></office:styles><office:automatic-styles>\
             <style:style style:name=\"gr1\" style:family=\"graphic\"><style:graphic-properties draw:fill=\"bitmap\" \
             draw:fill-image-name=\"img1\" style:repeat=\"stretch\"/></style:style></office:automatic-styles>",
            link(href)
        ),
        "<text:p>Shape fill<draw:rect draw:style-name=\"gr1\" text:anchor-type=\"as-char\" svg:width=\"4cm\" \
         svg:height=\"4cm\"/></text:p>",
    )
}

fn image_bullet(href: &str) -> Vec<u8> {
    flat_odf(
        "text",
        &format!(
            "<office:automatic-styles><text:list-style style:name=\"L1\"><text:list-level-style-image \
             text:level=\"1\" {}><style:list-level-properties text:min-label-width=\"1cm\" fo:width=\"1cm\" \
             fo:height=\"1cm\"/></text:list-level-style-image></text:list-style></office:automatic-styles>",
            link(href)
        ),
        "<text:list text:style-name=\"L1\"><text:list-item><text:p>Image bullet</text:p></text:list-item></text:list>",
    )
}

fn slide_background(href: &str) -> Vec<u8> {
    flat_odf(
        "presentation",
        &format!(
            "<office:styles><draw:fill-image draw:name=\"bg1\" {}/></office:styles><office:automatic-styles>\
             <style:page-layout style:name=\"PM1\"><style:page-layout-properties fo:page-width=\"28cm\" \
             fo:page-height=\"15.75cm\"/></style:page-layout><style:style style:name=\"dp1\" \
             style:family=\"drawing-page\"><style:drawing-page-properties draw:fill=\"bitmap\" \
             draw:fill-image-name=\"bg1\" style:repeat=\"stretch\"/></style:style></office:automatic-styles>\
             <office:master-styles><style:master-page style:name=\"Default\" style:page-layout-name=\"PM1\"/>\
             </office:master-styles>",
            link(href)
        ),
        "<draw:page draw:name=\"s1\" draw:style-name=\"dp1\" draw:master-page-name=\"Default\"><draw:frame \
         svg:x=\"2cm\" svg:y=\"2cm\" svg:width=\"10cm\" svg:height=\"2cm\"><draw:text-box><text:p>Slide background\
         </text:p></draw:text-box></draw:frame></draw:page>",
    )
}

fn rtf_include_picture(href: &str) -> Vec<u8> {
    format!("{{\\rtf1\\ansi {{\\field{{\\*\\fldinst INCLUDEPICTURE \"{href}\" \\\\d}}{{\\fldrslt }}}}\\par Include picture\\par}}")
        .into_bytes()
}

fn html_body_background(href: &str) -> Vec<u8> {
    format!("<html><body background=\"{href}\"><p>Body background</p></body></html>").into_bytes()
}

fn html_stylesheet(href: &str) -> Vec<u8> {
    format!("<html><head><link rel=\"stylesheet\" href=\"{href}\"></head><body><p>Stylesheet</p></body></html>")
        .into_bytes()
}

/// LibreOffice's own URL schemes: `vnd.sun.star.expand:` expands
/// bootstrap variables and environment values into the link
/// (CVE-2024-12426 exfiltrated them this way).
fn expand_url_image(href: &str) -> Vec<u8> {
    document_linking(&format!("vnd.sun.star.expand:{href}"))
}

const EXPAND_URL: Vector = Vector { class: "expand URL", name: "expand_url.fodt", document: expand_url_image };
const PAGE_BACKGROUND: Vector =
    Vector { class: "page background", name: "page_background.fodt", document: page_background };
const PARAGRAPH_BACKGROUND: Vector =
    Vector { class: "paragraph background", name: "paragraph_background.fodt", document: paragraph_background };
const SHAPE_BITMAP_FILL: Vector =
    Vector { class: "shape bitmap fill", name: "shape_fill.fodt", document: shape_bitmap_fill };
const IMAGE_BULLET: Vector = Vector { class: "image bullet", name: "image_bullet.fodt", document: image_bullet };
const SLIDE_BACKGROUND: Vector =
    Vector { class: "slide background", name: "slide_background.fodp", document: slide_background };
const RTF_INCLUDE_PICTURE: Vector =
    Vector { class: "RTF INCLUDEPICTURE", name: "include_picture.rtf", document: rtf_include_picture };
const HTML_BODY_BACKGROUND: Vector =
    Vector { class: "HTML body background", name: "body_background.html", document: html_body_background };
const HTML_STYLESHEET: Vector = Vector { class: "HTML stylesheet", name: "stylesheet.html", document: html_stylesheet };

/// Converts `document` to `target` and returns the result's bytes.
async fn result(server: &Server, case: &mut Case, name: &str, document: &[u8], target: &str) -> Vec<u8> {
    let mut client = server.client().await;
    let header = SubmitHeader { target_format: target.into(), ..header(name) };
    let job = case.submit(submit(&mut client, header, document).await).unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{name} → {target}: {job:?}");
    read_result(&mut client, &job.id, 0).await
}

/// The outputs of `OUTPUTS` that `name`'s format can become.
async fn outputs_of(server: &Server, name: &str) -> Vec<&'static str> {
    let extension = name.rsplit('.').next().unwrap();
    let listing = server.client().await.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    let input = listing.inputs.iter().find(|i| i.extension == extension).expect("an accepted input");
    OUTPUTS.iter().copied().filter(|o| input.targets.iter().any(|t| t == o)).collect()
}

/// Whether `output` (in format `target`) carries the linked image. `control`
/// is the same document linking a file that does not exist: a picture of
/// the page (PNG), and the pictures an HTML page holds (LibreOffice renders
/// shapes as images there), must be exactly the control's.
fn carries_image(target: &str, output: &[u8], control: &[u8]) -> bool {
    match target {
        "pdf" => pdf_images(output) > 0,
        "html" => inlined_images(output) != inlined_images(control),
        "docx" | "pptx" => {
            let archive = zip::ZipArchive::new(std::io::Cursor::new(output)).expect("an OOXML result is a zip");
            archive.file_names().any(|n| n.contains("/media/"))
        }
        "png" => control != output,
        // Text has no images; only the network check applies.
        _ => false,
    }
}

/// The images an HTML result carries as `data:` URLs (base64 payloads).
fn inlined_images(html: &[u8]) -> Vec<String> {
    let html = String::from_utf8_lossy(html);
    html.split("data:image/")
        .skip(1)
        .filter_map(|rest| rest.split_once(";base64,"))
        .map(|(_, data)| data.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c))).next().unwrap_or(""))
        .map(str::to_owned)
        .collect()
}

/// The whole check of one vector on one server, whose defences are
/// `layers` (for the report).
async fn holds(server: &Server, layers: &str, vector: &Vector) {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.png");
    std::fs::write(&secret, png(64, 64, |_, _| [255, 0, 0])).unwrap();
    let local = format!("file://{}", secret.display());
    let missing = format!("file://{}", secret_dir.path().join("missing.png").display());
    let listener = Listener::start().await;
    let remote = format!("http://127.0.0.1:{}/secret.png", listener.port);

    let outputs = outputs_of(server, vector.name).await;
    assert!(outputs.contains(&"pdf"), "{}: {outputs:?}", vector.name);
    let mut case = Case::hostile(vector.class, &format!("{layers} → {}", outputs.join(", ")));
    for target in outputs {
        let control = result(server, &mut case, vector.name, &(vector.document)(&missing), target).await;
        let leaked = result(server, &mut case, vector.name, &(vector.document)(&local), target).await;
        let read = carries_image(target, &leaked, &control);
        case.count("local_file_read", u64::from(read));
        assert!(!read, "{} → {target}: the local file was read into the result", vector.name);
        result(server, &mut case, vector.name, &(vector.document)(&remote), target).await;
        assert_eq!(listener.connections(), 0, "{} → {target}: the worker connected to the linked URL", vector.name);
    }
    case.figure("connections", listener.connections());
    case.finish_on(server).await.assert_clean();
}

async fn contained(vector: Vector) {
    holds(shared(), "profile and sandbox", &vector).await;
    holds(sandbox_alone(), "sandbox alone", &vector).await;
}

#[tokio::test]
async fn a_page_background_reads_no_local_file_and_fetches_no_url() {
    contained(PAGE_BACKGROUND).await;
}

#[tokio::test]
async fn a_paragraph_background_reads_no_local_file_and_fetches_no_url() {
    contained(PARAGRAPH_BACKGROUND).await;
}

#[tokio::test]
async fn a_shapes_bitmap_fill_reads_no_local_file_and_fetches_no_url() {
    contained(SHAPE_BITMAP_FILL).await;
}

#[tokio::test]
async fn an_image_bullet_reads_no_local_file_and_fetches_no_url() {
    contained(IMAGE_BULLET).await;
}

#[tokio::test]
async fn a_slide_background_reads_no_local_file_and_fetches_no_url() {
    contained(SLIDE_BACKGROUND).await;
}

#[tokio::test]
async fn an_rtf_include_picture_reads_no_local_file_and_fetches_no_url() {
    contained(RTF_INCLUDE_PICTURE).await;
}

#[tokio::test]
async fn an_html_body_background_reads_no_local_file_and_fetches_no_url() {
    contained(HTML_BODY_BACKGROUND).await;
}

#[tokio::test]
async fn an_html_stylesheet_reads_no_local_file_and_fetches_no_url() {
    contained(HTML_STYLESHEET).await;
}

#[tokio::test]
async fn an_expand_url_reads_no_local_file_and_fetches_no_url() {
    contained(EXPAND_URL).await;
}

#[tokio::test]
async fn the_sandbox_alone_stops_the_links_the_profile_blocks() {
    // The classic linked image, which the profile blocks by itself: with
    // the profile's blocking off, the sandbox must still hold.
    let vector = Vector { class: "linked image", name: "linked.fodt", document: document_linking };
    holds(sandbox_alone(), "sandbox alone", &vector).await;
}

/// What the kernel here allows, asked directly, must be what the
/// converter reports and uses.
#[tokio::test]
async fn the_workers_sandbox_is_reported_as_the_kernel_allows_it() {
    let info = shared().client().await.get_server_info(GetServerInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.workers, 2);
    let sandbox: WorkerSandbox = info.sandbox.expect("a sandbox report");
    let landlock = docconv_worker::kernel_landlock_abi();
    assert_eq!(sandbox.filesystem.is_empty(), landlock == 0, "{sandbox:?} with kernel Landlock ABI {landlock}");
    // Root (as the tests run in CI) may always create a network namespace,
    // and seccomp is in every kernel the service supports.
    if running_as_root() {
        assert!(sandbox.network.starts_with("network namespace"), "{sandbox:?}");
    }
    assert!(sandbox.syscalls.starts_with("seccomp"), "{sandbox:?}");
}

/// Forked from the zygote, a worker confines itself as an exec'd one
/// does: its own process group, a system call filter, no new privileges,
/// its own network namespace, and a document's links stay unread with
/// only the sandbox to stop them.
#[tokio::test]
async fn a_forked_worker_is_sandboxed_like_an_execd_one() {
    let server = Server::start(|c| {
        c.worker_start = StartMode::Fork;
        c.insecure_profile_allows_links = true;
    });
    let pids = server.worker_pids();
    assert_eq!(pids.len(), 1);
    let pid = pids[0];
    assert!(is_forked_worker(pid), "the worker was not forked from the zygote");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "no seccomp filter: {status}");
    assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let group = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(2));
    assert_eq!(group, Some(pid.to_string().as_str()), "not its own process group: {stat}");
    if running_as_root() {
        let namespace = |of: &str| std::fs::read_link(format!("/proc/{of}/ns/net")).unwrap();
        assert_ne!(namespace(&pid.to_string()), namespace("self"), "the worker shares our network");
    }
    holds(&server, "sandbox alone, forked worker", &PAGE_BACKGROUND).await;
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// A tiny spreadsheet that asks for a billion filled cells: LibreOffice
/// grows without bound while loading it.
fn memory_bomb() -> Vec<u8> {
    flat_odf(
        "spreadsheet",
        "",
        "<table:table table:name=\"S\"><table:table-row table:number-rows-repeated=\"1000000\">\
         <table:table-cell table:number-columns-repeated=\"1000\" office:value-type=\"string\">\
         <text:p>bomb</text:p></table:table-cell></table:table-row></table:table>",
    )
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_limit_and_fails_clearly() {
    const LIMIT_MIB: u64 = 700;
    let mut case = Case::hostile("memory bomb", &format!("a billion cells, {LIMIT_MIB} MiB limit"));
    let server = Server::start(|c| {
        c.worker_memory_limit_mib = LIMIT_MIB;
        c.job_timeout_secs = 120;
    });
    let mut client = server.client().await;
    let job = case.submit(submit(&mut client, header("bomb.fods"), &memory_bomb()).await).unwrap();
    wait_running(&mut client, &job.id).await;

    // Watch the worker's memory while it converts.
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let (data_dir, peak) = (server.data_dir.path().to_path_buf(), peak.clone());
        tokio::spawn(async move {
            loop {
                for pid in worker_pids_under(&data_dir) {
                    peak.fetch_max(rss_mib(pid), Ordering::SeqCst);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let error = wait_failed(&mut client, &job.id).await;
    watcher.abort();
    assert_eq!(error.code, Code::ResourceExhausted as i32, "{error:?}");
    assert!(error.message.contains(&format!("{LIMIT_MIB} MiB")), "{}", error.message);
    // The worker grew to the limit (the bomb went off) and was stopped just
    // past it: the watchdog reads memory every 50 ms.
    let peak = peak.load(Ordering::SeqCst);
    case.figure("worker_peak_rss_mib", peak);
    assert!(peak >= LIMIT_MIB * 8 / 10, "the worker peaked at {peak} MiB only");
    assert!(peak < LIMIT_MIB + 300, "the worker reached {peak} MiB with a limit of {LIMIT_MIB} MiB");
    // The service goes on with a fresh worker.
    let stopped = std::time::Instant::now();
    let (job, _) = convert(&mut client, "page_1.docx").await;
    case.recovered(stopped.elapsed(), "stopped → next document converted");
    case.accepted(&job.id);
    assert_eq!(job.state(), JobState::Succeeded);
    case.finish_on(&server).await.assert_clean();
}

fn rss_mib(pid: u32) -> u64 {
    docconv_worker::rss_of(pid).unwrap_or(0) >> 20
}

/// Peak resident memory of process `pid` so far, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() >> 10
}

#[tokio::test]
async fn a_large_csv_is_streamed_without_growing_the_converter() {
    // 23 MiB of CSV, as a user's export would be.
    let mut case = Case::hostile("large CSV", "23 MiB, streamed into a spreadsheet");
    let mut csv = String::from("id,name,amount,note\n");
    let mut row = 0;
    while csv.len() < 23 << 20 {
        row += 1;
        csv.push_str(&format!("{row},customer {row},{}.{:02},\"a note, with a comma\"\n", row % 9973, row % 100));
    }
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut process, addr) =
        start_process_with(data_dir.path(), port, &["--max-upload-mib", "64", "--job-timeout-secs", "5"]);
    wait_ready(addr);
    let mut client = connect(addr).await;
    let job = case.submit(submit(&mut client, header("large.csv"), csv.as_bytes()).await).unwrap();
    // The CSV is turned into a spreadsheet before the worker gets it; the
    // job may then run out of time in LibreOffice, which is not measured here.
    wait_end(&mut client, &job.id).await;
    let fods = data_dir.path().join("jobs").join(&job.id).join("input.fods");
    assert!(fods.metadata().is_ok_and(|m| m.len() > 23 << 20), "the CSV was not made into a spreadsheet");
    let peak = peak_rss_mib(process.id());
    case.figure("converter_peak_rss_mib", peak);
    let outcome = case.finish(&client, data_dir.path()).await;
    process.kill().unwrap();
    process.wait().unwrap();
    // Whole-file parsing took the converter to ~565 MiB on this file.
    assert!(peak < 150, "the converter peaked at {peak} MiB");
    outcome.assert_clean();
}
