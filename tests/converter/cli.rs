//! The command-line client, `docconv convert` and `docconv job`, run as the
//! real binary against real converters: what it writes, prints and exits
//! with, and what reaches the job.

use crate::support::*;
use docconv::proto::v1::{GetJobRequest, Job, JobState, Output, ReadResultResponse, WatchJobResponse};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `docconv ARGS` against `server` (http://ADDR) in `dir`, with none of
/// the client's settings from this environment.
pub(crate) fn docconv(dir: &Path, server: &str, args: &[&str]) -> std::process::Output {
    let child = Command::new(docconv_exe())
        .args(args)
        .current_dir(dir)
        .env("DOCCONV_SERVER", server)
        .env_remove("DOCCONV_TOKEN")
        .env_remove("DOCCONV_CA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    exit_within(child, Duration::from_secs(120))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

pub(crate) fn shared_url() -> String {
    url(shared().addr)
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Each line of standard output as JSON.
fn json_lines(output: &std::process::Output) -> Vec<Value> {
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The names in `dir`, sorted, hidden ones included.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn sha256_hex(data: &[u8]) -> String {
    docconv::ids::hex(&Sha256::digest(data))
}

async fn get_job(addr: SocketAddr, id: &str) -> Job {
    connect(addr).await.get_job(GetJobRequest { id: id.into() }).await.unwrap().into_inner()
}

#[tokio::test]
async fn convert_writes_the_pdf_and_its_json_matches_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("pages_3.docx");
    let output = docconv(dir.path(), &shared_url(), &["convert", "--json", fixture.to_str().unwrap(), "-o", "out"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // --json prints nothing but its objects: no progress.
    assert_eq!(stderr(&output), "");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["file"], fixture.to_str().unwrap());
    assert_eq!(line["state"], "JOB_STATE_SUCCEEDED");
    assert_eq!(line["error"], Value::Null);
    assert_eq!(line["output"], "out/pages_3.pdf");

    let pdf = std::fs::read(dir.path().join("out/pages_3.pdf")).unwrap();
    assert_eq!(pdf_pages(&pdf), 3);
    assert!(pdf_text(&pdf, Some(2)).contains("Page 2"));
    // Only the result is left: its temporary file was renamed.
    assert_eq!(names_in(&dir.path().join("out")), ["pages_3.pdf"]);

    let job = get_job(shared().addr, line["id"].as_str().unwrap()).await;
    assert_eq!(line["job"]["id"], job.id);
    assert_eq!(line["job"]["state"], job.state().as_str_name());
    assert_eq!(line["job"]["sequence"], job.sequence);
    let output = job.output.unwrap();
    assert_eq!(line["job"]["output"]["sha256"], output.sha256);
    assert_eq!(line["job"]["output"]["page_count"], output.page_count);
    assert_eq!(sha256_hex(&pdf), output.sha256);
    assert_eq!(pdf.len() as u64, output.size_bytes);
}

#[test]
fn without_a_terminal_progress_is_plain_lines_and_stdout_names_each_result() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (fixture("page_1.docx"), fixture("sheet.csv"));
    let output = docconv(dir.path(), &shared_url(), &["convert", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "./page_1.pdf\n./sheet.pdf\n");
    let progress = stderr(&output);
    // No bars, no cursor movement: a log reads line by line.
    assert!(!progress.contains('\x1b') && !progress.contains('\r'), "{progress:?}");
    for file in [&a, &b] {
        let name = file.to_str().unwrap();
        for step in ["uploading", "succeeded", "downloading", "done: ./"] {
            assert!(progress.contains(&format!("{name}: {step}")), "{name} {step}: {progress}");
        }
    }
    assert_eq!(pdf_pages(&std::fs::read(dir.path().join("sheet.pdf")).unwrap()), 1);
}

#[test]
fn a_corrupt_document_exits_1_with_the_jobs_own_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.docx"), b"not a word document").unwrap();
    let good = fixture("page_2.docx");
    let output = docconv(dir.path(), &shared_url(), &["convert", "broken.docx", good.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let printed = stderr(&output);
    assert!(printed.contains("broken.docx (job "), "{printed}");
    assert!(printed.contains("failed: the file is not a valid .docx document"), "{printed}");
    // The other file was converted all the same; nothing of the broken one.
    assert_eq!(names_in(dir.path()), ["broken.docx", "page_2.pdf"]);

    let output = docconv(dir.path(), &shared_url(), &["convert", "--json", "broken.docx"]);
    assert_eq!(output.status.code(), Some(1));
    let line = &json_lines(&output)[0];
    assert_eq!(line["state"], "JOB_STATE_FAILED");
    assert_eq!(line["output"], Value::Null);
    assert_eq!(line["error"]["code"], 3);
    assert!(line["error"]["message"].as_str().unwrap().contains("not a valid .docx"), "{line}");
}

#[test]
fn refused_options_and_unreachable_servers_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("pages_3.docx");
    let document = document.to_str().unwrap();
    let args = ["convert", document, "--page-ranges", "3-1", "--image-quality", "500"];
    let output = docconv(dir.path(), &shared_url(), &args);
    assert_eq!(output.status.code(), Some(2));
    let printed = stderr(&output);
    for field in ["options.pdf.page_ranges: \"3-1\" is not a page range", "options.pdf.image_quality: must be"] {
        assert!(printed.contains(&format!("\n  {field}")), "{field}: {printed}");
    }
    let output = docconv(dir.path(), &shared_url(), &[&["convert", "--json"][..], &args[1..]].concat());
    assert_eq!(output.status.code(), Some(2));
    let error = &json_lines(&output)[0]["error"];
    assert_eq!(error["code"], 3, "{error}");
    let fields: Vec<&str> =
        error["field_violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["options.pdf.page_ranges", "options.pdf.image_quality"]);

    let closed = format!("http://127.0.0.1:{}", free_port());
    let output = docconv(dir.path(), &closed, &["convert", document]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(&format!("cannot reach the docconv service at {closed}")), "{}", stderr(&output));
    // A usage error is clap's 2 too.
    assert_eq!(docconv(dir.path(), &closed, &["convert", "--standard", "pdf-x", document]).status.code(), Some(2));
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn merged_files_make_one_pdf_in_the_given_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = [fixture("page_2.docx"), fixture("pages_3.docx"), fixture("sheet.csv")];
    let mut args = vec!["convert", "--merge", "--json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let output = docconv(dir.path(), &shared_url(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["files"].as_array().unwrap().len(), 3);
    let job = get_job(shared().addr, lines[0]["id"].as_str().unwrap()).await;
    assert_eq!(job.merged_file_names, ["page_2.docx", "pages_3.docx", "sheet.csv"]);
    let pdf = std::fs::read(dir.path().join("page_2.pdf")).unwrap();
    assert_eq!(pdf_pages(&pdf), 5);
    for (page, text) in [(1, "Page 2"), (2, "Page 1"), (5, "Alice")] {
        assert!(pdf_text(&pdf, Some(page)).contains(text), "page {page}");
    }
}

#[tokio::test]
async fn option_flags_reach_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("pages_3.docx");
    let args = [
        "convert",
        "--json",
        document.to_str().unwrap(),
        "--landscape",
        "--page-ranges",
        "2-3",
        "--watermark",
        "DRAFT",
        "--title",
        "Quarterly",
        "--keywords",
        "a,b",
        "--export-bookmarks",
        "false",
    ];
    let output = docconv(dir.path(), &shared_url(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let job = get_job(shared().addr, json_lines(&output)[0]["id"].as_str().unwrap()).await;
    let pdf_options = job.options.unwrap().pdf.unwrap();
    assert!(pdf_options.landscape);
    assert_eq!(pdf_options.page_ranges, "2-3");
    assert_eq!(pdf_options.watermark, "DRAFT");
    assert_eq!(pdf_options.export_bookmarks, Some(false));
    let metadata = pdf_options.metadata.unwrap();
    assert_eq!((metadata.title.as_str(), metadata.keywords), ("Quarterly", vec!["a".to_owned(), "b".to_owned()]));

    let pdf = std::fs::read(dir.path().join("pages_3.pdf")).unwrap();
    assert_eq!(pdf_pages(&pdf), 2);
    let info = poppler_with("pdfinfo", &[], &pdf).unwrap();
    let size = info.lines().find(|l| l.starts_with("Page size:")).unwrap();
    let numbers: Vec<f64> = size.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(numbers[0] > numbers[1], "landscape pages are wider than high: {size}");
    assert!(info.contains("Quarterly"), "{info}");
}

#[tokio::test]
async fn pdf_inputs_and_the_finishing_flags_reach_the_job() {
    let dir = tempfile::tempdir().unwrap();
    // A PDF to start from, made by the service.
    let made = docconv(dir.path(), &shared_url(), &["convert", fixture("pages_3.docx").to_str().unwrap()]);
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    std::fs::rename(dir.path().join("pages_3.pdf"), dir.path().join("input.pdf")).unwrap();
    std::fs::write(dir.path().join("data.xml"), "<data/>").unwrap();
    let args = [
        "convert",
        "--json",
        "input.pdf",
        "--output-dir",
        "out",
        "--rotate",
        "90",
        "--rotate-pages",
        "2",
        "--flatten",
        "--producer",
        "docconv cli",
        "--creation-time",
        "2026-05-04T10:00:00Z",
        "--trapped",
        "false",
        "--custom",
        "Department=Finance",
        "--attach",
        "data.xml",
        "--attachment-description",
        "Data",
        "--attachment-relationship",
        "data",
    ];
    let output = docconv(dir.path(), &shared_url(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line = &json_lines(&output)[0];
    let job = get_job(shared().addr, line["id"].as_str().unwrap()).await;
    assert_eq!(job.attachment_file_names, ["data.xml"]);
    let pdf_options = job.options.unwrap().pdf.unwrap();
    assert!(pdf_options.flatten);
    assert_eq!(pdf_options.rotate.unwrap().pages, "2");
    let pdf = std::fs::read(dir.path().join("out/input.pdf")).unwrap();
    let info = poppler_with("pdfinfo", &["-custom"], &pdf).unwrap();
    let pages = poppler_with("pdfinfo", &["-f", "1", "-l", "3"], &pdf).unwrap();
    for (expected, found) in [
        ("Producer:        docconv cli", &info),
        ("Department:      Finance", &info),
        ("Page    2 rot:   90", &pages),
        ("Page    3 rot:   0", &pages),
    ] {
        assert!(found.contains(expected), "{expected}: {found}");
    }
    let listed = qpdf_on(&["--list-attachments"], &pdf);
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("data.xml ->"), "{listed:?}");
    // More descriptions than files is a usage error, before anything is sent.
    let extra = ["convert", "input.pdf", "--attachment-description", "for nothing"];
    assert_eq!(docconv(dir.path(), &shared_url(), &extra).status.code(), Some(2));
}

#[tokio::test]
async fn job_get_watch_cancel_and_download() {
    let dir = tempfile::tempdir().unwrap();
    let server = shared_url();
    let mut client = shared().client().await;
    let job = submit_fixture(&mut client, "pages_3.docx").await;
    let id = job.id.as_str();

    // watch: every state until the end, in order, then exit 0.
    let watched = docconv(dir.path(), &server, &["job", "watch", "--json", id]);
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    let states = json_lines(&watched);
    let sequences: Vec<u64> = states.iter().map(|s| s["sequence"].as_u64().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert_eq!(states.last().unwrap()["state"], "JOB_STATE_SUCCEEDED");
    let plain = docconv(dir.path(), &server, &["job", "watch", id]);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "succeeded\n");

    // get: the job as GetJob answers.
    let got = docconv(dir.path(), &server, &["job", "get", "--json", id]);
    let got = &json_lines(&got)[0];
    let job = get_job(shared().addr, id).await;
    assert_eq!(got["id"], job.id);
    assert_eq!(got["state"], "JOB_STATE_SUCCEEDED");
    assert_eq!(got["output"]["sha256"], job.output.as_ref().unwrap().sha256);
    let summary = String::from_utf8(docconv(dir.path(), &server, &["job", "get", id]).stdout).unwrap();
    assert!(summary.contains("state:    succeeded") && summary.contains("3 pages"), "{summary}");

    // download: the same bytes as ReadResult, to a file name or a directory.
    let expected = read_result(&mut client, id, 0).await;
    let downloaded = docconv(dir.path(), &server, &["job", "download", id, "-o", "named.pdf"]);
    assert_eq!(downloaded.status.code(), Some(0), "{}", stderr(&downloaded));
    assert_eq!(std::fs::read(dir.path().join("named.pdf")).unwrap(), expected);
    std::fs::create_dir(dir.path().join("into")).unwrap();
    docconv(dir.path(), &server, &["job", "download", id, "-o", "into"]);
    assert_eq!(std::fs::read(dir.path().join("into/pages_3.pdf")).unwrap(), expected);

    // cancel: a job that has not ended is cancelled, and watch says so with 1.
    let long = submit(&mut client, header("long.fodt"), &big_text_document(4000)).await.unwrap();
    let cancelled = docconv(dir.path(), &server, &["job", "cancel", "--json", &long.id]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", stderr(&cancelled));
    assert_eq!(json_lines(&cancelled)[0]["state"], "JOB_STATE_CANCELLED");
    let watched = docconv(dir.path(), &server, &["job", "watch", &long.id]);
    assert_eq!(watched.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&watched.stdout).ends_with("cancelled\n"));
    let refused = docconv(dir.path(), &server, &["job", "download", &long.id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains(&format!("job {} cancelled", long.id)), "{}", stderr(&refused));

    let unknown = docconv(dir.path(), &server, &["job", "get", "0123456789abcdef0123456789abcdef"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no job"), "{}", stderr(&unknown));
    let not_an_id = docconv(dir.path(), &server, &["job", "download", "../../etc/passwd"]);
    assert_eq!(not_an_id.status.code(), Some(2));
    assert!(stderr(&not_an_id).contains("is not a job id"), "{}", stderr(&not_an_id));
}

#[tokio::test]
async fn a_download_resumes_from_its_temporary_file_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = shared().client().await;
    let (job, expected) = convert(&mut client, "pages_12.docx").await;
    let partial = dir.path().join(format!(".pages_12.pdf.{}.partial", job.id));

    std::fs::write(&partial, &expected[..expected.len() / 2]).unwrap();
    let output = docconv(dir.path(), &shared_url(), &["job", "download", &job.id]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(dir.path().join("pages_12.pdf")).unwrap(), expected);
    assert_eq!(names_in(dir.path()), ["pages_12.pdf"]);

    // A temporary file that is not the beginning of this result fails the
    // check of the whole, and is thrown away rather than renamed.
    std::fs::remove_file(dir.path().join("pages_12.pdf")).unwrap();
    std::fs::write(&partial, vec![b'x'; 1000]).unwrap();
    let output = docconv(dir.path(), &shared_url(), &["job", "download", &job.id]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("does not match its SHA-256"), "{}", stderr(&output));
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}

/// A converter that knows one succeeded job and serves its result, up to
/// `cut` bytes of it and then nothing more if `cut` is set. It records
/// the offset of each ReadResult, and the request id of each Submit, the
/// first `unavailable` of which it answers UNAVAILABLE.
#[derive(Clone, Default)]
struct Fake {
    result: Arc<Vec<u8>>,
    cut: Option<usize>,
    offsets: Arc<Mutex<Vec<u64>>>,
    unavailable: usize,
    submits: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn job(&self) -> Job {
        let output = Output {
            file_name: "fake.pdf".into(),
            content_type: "application/pdf".into(),
            size_bytes: self.result.len() as u64,
            sha256: sha256_hex(&self.result),
            page_count: 1,
        };
        Job { id: FAKE_ID.into(), state: JobState::Succeeded as i32, output: Some(output), ..Default::default() }
    }
}

const FAKE_ID: &str = "00112233445566778899aabbccddeeff";

type FakeStream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl docconv::proto::v1::converter_server::Converter for Fake {
    async fn submit(
        &self,
        request: tonic::Request<tonic::Streaming<docconv::proto::v1::SubmitRequest>>,
    ) -> Result<tonic::Response<Job>, tonic::Status> {
        use docconv::proto::v1::submit_request::Payload;
        let mut stream = request.into_inner();
        let mut request_id = String::new();
        while let Some(message) = stream.message().await? {
            if let Some(Payload::Header(header)) = message.payload {
                request_id = header.request_id;
            }
        }
        let mut submits = self.submits.lock().unwrap();
        submits.push(request_id);
        match submits.len() <= self.unavailable {
            true => Err(tonic::Status::unavailable("the job store is unavailable for now; try again shortly")),
            false => Ok(tonic::Response::new(self.job())),
        }
    }
    type WatchJobStream = FakeStream<WatchJobResponse>;
    async fn watch_job(
        &self,
        _: tonic::Request<docconv::proto::v1::WatchJobRequest>,
    ) -> Result<tonic::Response<Self::WatchJobStream>, tonic::Status> {
        use docconv::proto::v1::watch_job_response::Event;
        let last = WatchJobResponse { event: Some(Event::Job(self.job())) };
        Ok(tonic::Response::new(Box::pin(tokio_stream::once(Ok(last)))))
    }
    async fn get_job(&self, _: tonic::Request<GetJobRequest>) -> Result<tonic::Response<Job>, tonic::Status> {
        Ok(tonic::Response::new(self.job()))
    }
    async fn cancel_job(
        &self,
        _: tonic::Request<docconv::proto::v1::CancelJobRequest>,
    ) -> Result<tonic::Response<Job>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    type ReadResultStream = FakeStream<ReadResultResponse>;
    async fn read_result(
        &self,
        request: tonic::Request<docconv::proto::v1::ReadResultRequest>,
    ) -> Result<tonic::Response<Self::ReadResultStream>, tonic::Status> {
        use tokio_stream::StreamExt;
        let offset = request.get_ref().offset;
        self.offsets.lock().unwrap().push(offset);
        let end = self.cut.unwrap_or(self.result.len());
        let chunks: Vec<_> = (offset as usize..end)
            .step_by(4096)
            .map(|at| {
                let data = self.result[at..(at + 4096).min(end)].to_vec();
                Ok(ReadResultResponse { offset: at as u64, data, output: None })
            })
            .collect();
        let stream = tokio_stream::iter(chunks);
        Ok(tonic::Response::new(match self.cut {
            // Then silence, until the server goes away.
            Some(_) => Box::pin(stream.chain(tokio_stream::pending())),
            None => Box::pin(stream),
        }))
    }
    async fn list_formats(
        &self,
        _: tonic::Request<docconv::proto::v1::ListFormatsRequest>,
    ) -> Result<tonic::Response<docconv::proto::v1::ListFormatsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    async fn get_preview(
        &self,
        _: tonic::Request<docconv::proto::v1::GetPreviewRequest>,
    ) -> Result<tonic::Response<docconv::proto::v1::Preview>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
    async fn get_server_info(
        &self,
        _: tonic::Request<docconv::proto::v1::GetServerInfoRequest>,
    ) -> Result<tonic::Response<docconv::proto::v1::ServerInfo>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake"))
    }
}

/// Serves `fake` on its own runtime; dropping the runtime takes the server
/// and its connections away at once, as a killed process would.
fn serve_fake(fake: Fake) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(docconv::proto::v1::converter_server::ConverterServer::new(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, runtime)
}

#[test]
fn a_server_gone_mid_download_leaves_no_file_under_the_final_name_and_the_next_download_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let result: Arc<Vec<u8>> = Arc::new((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect());
    let cut = 120_000;
    let offsets = Arc::new(Mutex::new(Vec::new()));
    let (addr, runtime) =
        serve_fake(Fake { result: result.clone(), cut: Some(cut), offsets: offsets.clone(), ..Fake::default() });

    let child = Command::new(docconv_exe())
        .args(["job", "download", FAKE_ID, "--server", &url(addr)])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = dir.path().join(format!(".fake.pdf.{FAKE_ID}.partial"));
    let final_path = dir.path().join("fake.pdf");
    // The bytes arrive in the temporary file while the final name stays free.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < cut as u64 {
        assert!(Instant::now() < deadline, "the download never reached {cut} bytes");
        assert!(!final_path.exists());
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.shutdown_background();
    let output = exit_within(child, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let resume = format!("`docconv job download {FAKE_ID} -o ./fake.pdf` goes on from there");
    assert!(stderr(&output).contains(&resume), "{}", stderr(&output));
    assert!(!final_path.exists());
    assert_eq!(std::fs::read(&partial).unwrap(), result[..cut]);

    // The next download asks only for the rest, and the whole is identical.
    let (addr, _runtime) =
        serve_fake(Fake { result: result.clone(), cut: None, offsets: offsets.clone(), ..Fake::default() });
    let output = docconv(dir.path(), &url(addr), &["job", "download", FAKE_ID]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(*offsets.lock().unwrap(), [0, cut as u64]);
    assert_eq!(std::fs::read(&final_path).unwrap(), *result);
    assert_eq!(names_in(dir.path()), ["fake.pdf"]);
}

#[tokio::test]
async fn convert_over_tls_trusting_a_ca_file() {
    let (server, files) = crate::tls::server();
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("page_1.docx");
    let https = format!("https://localhost:{}", server.addr.port());
    let ca = files.ca_path.to_str().unwrap();
    let output = docconv(dir.path(), &https, &["convert", "--ca", ca, document.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(pdf_pages(&std::fs::read(dir.path().join("page_1.pdf")).unwrap()), 1);
    // Without the CA, the system's roots do not know the test CA.
    let output = docconv(dir.path(), &https, &["convert", document.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot reach"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_token_from_the_environment_is_sent() {
    let (server, _) = crate::auth::server();
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("page_1.docx");
    let run = |token: Option<&str>| {
        let mut command = Command::new(docconv_exe());
        command
            .args(["convert", "--json", document.to_str().unwrap()])
            .current_dir(dir.path())
            .env("DOCCONV_SERVER", url(server.addr))
            .env_remove("DOCCONV_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env("DOCCONV_TOKEN", token);
        }
        exit_within(command.spawn().unwrap(), Duration::from_secs(120))
    };
    let refused = run(None);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(json_lines(&refused)[0]["error"]["code"], tonic::Code::Unauthenticated as i32);
    let accepted = run(Some(crate::auth::CLI));
    assert_eq!(accepted.status.code(), Some(0), "{}", stderr(&accepted));
    assert_eq!(pdf_pages(&std::fs::read(dir.path().join("page_1.pdf")).unwrap()), 1);
}

#[test]
fn a_submit_answered_unavailable_is_sent_again_with_the_same_request_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("letter.docx"), b"a document").unwrap();
    let result = Arc::new(b"%PDF-1.7 fake".to_vec());
    let submits = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake { result: result.clone(), unavailable: 2, submits: submits.clone(), ..Fake::default() };
    let (addr, _runtime) = serve_fake(fake);
    let output = docconv(dir.path(), &url(addr), &["convert", "letter.docx"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let submits = submits.lock().unwrap().clone();
    assert_eq!(submits.len(), 3, "twice unavailable, then accepted");
    assert!(docconv::ids::is_valid(&submits[0]), "a request id is sent: {submits:?}");
    assert!(submits.iter().all(|id| *id == submits[0]), "the same one each time: {submits:?}");
    assert_eq!(std::fs::read(dir.path().join("fake.pdf")).unwrap(), *result);
}
