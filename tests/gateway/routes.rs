//! Routes through the router with `oneshot`, against a real converter.

use crate::reliability::Case;
use crate::support::{self, fixture, pdf_pages};
use crate::web::{converter, form, multipart, state};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use docconv_gateway::app;
use tower::ServiceExt;

async fn get(uri: &str) -> Response {
    app(state(|_| {})).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(response: Response) -> String {
    String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

async fn post_files(files: &[(&str, &str, &[u8])], json: bool, max_files: usize) -> Response {
    let (content_type, body) = multipart(files);
    let mut request = Request::post("/convert").header(header::CONTENT_TYPE, content_type);
    if json {
        request = request.header(header::ACCEPT, "application/json");
    }
    app(state(|c| c.max_files = max_files)).oneshot(request.body(Body::from(body)).unwrap()).await.unwrap()
}

/// The job directories under `dir` (other tests' too: compare before and after).
fn job_dirs(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
    )
}

/// Waits until the converter says the job ended.
async fn finish(id: &str) {
    let mut client = crate::web::converter().client().await;
    support::wait_end(&mut client, id).await;
}

#[tokio::test]
async fn health_and_readiness() {
    assert_eq!(get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.status(), StatusCode::OK);
    let nowhere = docconv_gateway::AppState::new(&["http://127.0.0.1:1".to_owned()], Default::default()).unwrap();
    let response = app(nowhere).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_upload_page_lists_the_converters_formats_and_limit() {
    let response = get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'"));
    let html = text(response).await;
    for needle in [".docx", ".xlsx", ".pptx", ".csv", "1 MB each", "enctype=\"multipart/form-data\""] {
        assert!(html.contains(needle), "missing {needle}");
    }
    // The "convert to" menu is the converter's list of outputs.
    for needle in [
        "<option value=\"pdf\" selected>PDF</option>",
        "<option value=\"docx\">",
        "<option value=\"odg\">",
        "→ pdf, xlsx",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert!(!html.contains("<option value=\"zip\">"), "a zip is a split's result, not a target");
}

/// The nonce of a page's Content-Security-Policy, and the one its
/// `<meta name="csp-nonce">` gives Turbo.
async fn nonces(uri: &str) -> (String, String) {
    let response = get(uri).await;
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let in_policy = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect(&csp);
    let html = text(response).await;
    let meta = html.split("<meta name=\"csp-nonce\" content=\"").nth(1).and_then(|rest| rest.split('"').next());
    (in_policy.to_owned(), meta.unwrap_or_else(|| panic!("{uri} has no csp-nonce: {html}")).to_owned())
}

#[tokio::test]
async fn each_page_allows_turbos_stylesheet_by_a_nonce_of_its_own() {
    let (first, in_page) = nonces("/").await;
    assert_eq!(first, in_page);
    assert!(first.len() >= 22, "{first}");
    // Error pages load Turbo too. Many, so that every character a nonce
    // may hold is likely to be seen in the page as in the header.
    let mut seen = std::collections::HashSet::from([first]);
    for _ in 0..32 {
        let (nonce, in_page) = nonces("/nowhere").await;
        assert_eq!(nonce, in_page);
        assert!(seen.insert(nonce), "a nonce was used twice");
    }
    let csp = get("/").await.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self';"), "scripts never by nonce: {csp}");
}

#[tokio::test]
async fn assets_are_embedded_and_cached_for_long() {
    let html = text(get("/").await).await;
    let start = html.find("/assets/").unwrap() + "/assets/".len();
    let path = format!("/assets/{}", &html[start..start + html[start..].find('/').unwrap()]);
    assert!(html.contains(&format!("<link rel=\"icon\" href=\"{path}/icon.svg\" type=\"image/svg+xml\">")));
    for (name, needle) in [
        ("app.js", "connectStreamSource"),
        ("turbo.es2017-esm.js", "Turbo 8.0.23"),
        ("style.css", ".card"),
        ("icon.svg", "<svg"),
    ] {
        let response = get(&format!("{path}/{name}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert!(response.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert!(text(response).await.contains(needle), "{name}");
    }
    assert_eq!(get(&format!("{path}/missing.js")).await.status(), StatusCode::NOT_FOUND);
    // Browsers ask for /favicon.ico where no page names an icon.
    let favicon = get("/favicon.ico").await;
    assert_eq!(favicon.status(), StatusCode::OK);
    assert_eq!(favicon.headers()[header::CONTENT_TYPE], "image/svg+xml");
    assert!(text(favicon).await.starts_with("<svg"));
}

#[tokio::test]
async fn unknown_jobs_and_pages_are_proper_404s() {
    for uri in ["/jobs/0123456789abcdef0123456789abcdef", "/jobs/not-an-id", "/jobs/../etc/passwd", "/nowhere"] {
        let response = get(uri).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        let html = text(response).await;
        assert!(html.contains("<!doctype html>") && html.contains("Not Found"), "{uri}: {html}");
    }
    let download = get("/jobs/0123456789abcdef0123456789abcdef/download").await;
    assert_eq!(download.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_form_upload_redirects_to_a_status_page_that_tells_the_truth() {
    let data = std::fs::read(fixture("pages_3.docx")).unwrap();
    let response = post_files(&[("file", "pages_3.docx", &data)], false, 10).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/jobs/").unwrap().to_owned();
    finish(&id).await;
    let html = text(get(&location).await).await;
    assert!(html.contains("Download pages_3.pdf"), "{html}");
    assert!(html.contains("3 pages"), "{html}");
    assert!(html.contains("data-ended=\"true\""));
    assert!(html.contains(&format!("href=\"/jobs/{id}/download\"")));
}

#[tokio::test]
async fn several_files_lead_to_a_page_listing_each_job() {
    let one = std::fs::read(fixture("page_1.docx")).unwrap();
    let two = std::fs::read(fixture("page_2.docx")).unwrap();
    let response = post_files(&[("file", "page_1.docx", &one), ("file", "page_2.docx", &two)], false, 10).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/batch?ids="), "{location}");
    let html = text(get(&location).await).await;
    assert!(html.contains("page_1.docx") && html.contains("page_2.docx"));
    assert_eq!(html.matches("data-job-card").count(), 2);
}

#[tokio::test]
async fn scripts_get_json_with_the_job_and_its_urls() {
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let response = post_files(&[("file", "page_1.docx", &data)], true, 10).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    let job = &json["jobs"][0];
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["file_name"], "page_1.docx");
    assert_eq!(job["status_url"], format!("/jobs/{id}"));
    assert_eq!(job["download_url"], format!("/jobs/{id}/download"));
    assert_eq!(job["stream_url"], format!("/jobs/{id}/stream"));
}

#[tokio::test]
async fn downloads_carry_the_type_and_the_original_name() {
    let data = std::fs::read(fixture("Special_Chars_ß.docx")).unwrap();
    let response = post_files(&[("file", "Special_Chars_ß.docx", &data)], true, 10).await;
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    let id = json["jobs"][0]["id"].as_str().unwrap().to_owned();
    finish(&id).await;
    let response = get(&format!("/jobs/{id}/download")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/pdf");
    let disposition = response.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_owned();
    assert!(disposition.contains("filename*=UTF-8''Special_Chars_%C3%9F.pdf"), "{disposition}");
    let length: usize = response.headers()[header::CONTENT_LENGTH].to_str().unwrap().parse().unwrap();
    let pdf = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(pdf.len(), length);
    assert_eq!(pdf_pages(&pdf), 1);
}

#[tokio::test]
async fn a_hostile_file_name_shows_as_text() {
    let hostile = "<img src=x onerror=alert(1)>.docx";
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let response = post_files(&[("file", hostile, &data)], false, 10).await;
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let html = text(get(&location).await).await;
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.docx"));
}

#[tokio::test]
async fn bad_uploads_are_refused_clearly() {
    let mut case = Case::fault("upload limits", "web: no file, over 1 MiB, 3 files of 2, unknown format");
    // No file chosen.
    let response = post_files(&[("file", "", b"")], false, 10).await;
    case.tried();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("Choose at least one document"));
    // Over the converter's 1 MiB limit, counted while streaming.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let response = post_files(&[("file", "big.txt", &big)], true, 10).await;
    case.tried();
    let refused = std::time::Instant::now();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert!(json["error"].as_str().unwrap().contains("1 MB"), "{json}");
    // What arrived before the cut is not left on the converter's disk.
    let jobs = converter().data_dir.path().join("jobs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Some(left) = cut_off_upload(&jobs) {
        assert!(std::time::Instant::now() < deadline, "the cut-off upload was left on disk: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    case.recovered(refused.elapsed(), "413 → cut-off upload removed");
    // More files than allowed: the jobs of the files before the one too
    // many were submitted already, and are cancelled with the refusal.
    let jobs_dir = converter().data_dir.path().join("jobs");
    let before = job_dirs(&jobs_dir);
    let one = std::fs::read(fixture("page_1.docx")).unwrap();
    // The first takes seconds to convert, so it is still running when the third is refused.
    let long = support::big_text_document(8000);
    let files =
        [("file", "limit-1.fodt", &long[..]), ("file", "limit-2.docx", &one[..]), ("file", "limit-3.docx", &one[..])];
    let response = post_files(&files, false, 2).await;
    case.tried();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(response).await.contains("At most 2 documents"));
    // Other tests share the converter: its new jobs of these names are this request's.
    let mut client = converter().client().await;
    let mut submitted = Vec::new();
    for id in job_dirs(&jobs_dir).into_iter().filter(|id| !before.contains(id)) {
        if let Ok(job) = client.get_job(docconv::proto::v1::GetJobRequest { id }).await {
            let job = job.into_inner();
            if job.file_name.starts_with("limit-") {
                submitted.push(job);
            }
        }
    }
    assert_eq!(submitted.len(), 2, "the two files before the limit were submitted");
    for job in submitted {
        assert!(support::is_ended(&job), "a refused upload leaves no job to run: {job:?}");
        if job.file_name == "limit-1.fodt" {
            assert_eq!(job.state(), docconv::proto::v1::JobState::Cancelled, "{job:?}");
        }
    }
    // A format the converter does not read: its message reaches the page.
    let response = post_files(&[("file", "program.exe", b"MZ")], false, 10).await;
    case.tried();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("no extension docconv reads"));
    case.finish_on(converter()).await.assert_clean();
}

#[tokio::test]
async fn a_job_without_a_result_has_nothing_to_download() {
    let response = post_files(&[("file", "broken.docx", b"not a word document")], true, 10).await;
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    let id = json["jobs"][0]["id"].as_str().unwrap().to_owned();
    finish(&id).await;
    let response = get(&format!("/jobs/{id}/download")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // The status page shows the converter's reason and a way to try again.
    let html = text(get(&format!("/jobs/{id}")).await).await;
    assert!(html.contains("not a valid .docx document"), "{html}");
    assert!(html.contains("Try again"));
}

async fn post_form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Response {
    let (content_type, body) = form(fields, files);
    let request = Request::post("/convert")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json")
        .body(Body::from(body))
        .unwrap();
    app(state(|_| {})).oneshot(request).await.unwrap()
}

/// The ids of the jobs a JSON upload answer lists.
async fn job_ids(response: Response) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    json["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

async fn download(id: &str) -> Vec<u8> {
    finish(id).await;
    let response = get(&format!("/jobs/{id}/download")).await;
    assert_eq!(response.status(), StatusCode::OK);
    to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()
}

#[tokio::test]
async fn form_options_reach_the_conversion() {
    let data = std::fs::read(fixture("pages_12.docx")).unwrap();
    let fields = [("target_format", "pdf"), ("page_ranges", "2-3"), ("pdf_standard", "none"), ("landscape", "on")];
    let ids = job_ids(post_form(&fields, &[("file", "pages_12.docx", &data)]).await).await;
    let pdf = download(&ids[0]).await;
    assert_eq!(pdf_pages(&pdf), 2);
    assert!(support::pdf_text(&pdf, Some(1)).contains("Page 2"));
    // The status page shows a preview of the first page.
    let html = text(get(&format!("/jobs/{}", ids[0])).await).await;
    assert!(html.contains(&format!("src=\"/jobs/{}/preview.png\"", ids[0])), "{html}");
    let preview = get(&format!("/jobs/{}/preview.png", ids[0])).await;
    assert_eq!(preview.headers()[header::CONTENT_TYPE], "image/png");
    assert!(to_bytes(preview.into_body(), usize::MAX).await.unwrap().starts_with(b"\x89PNG"));

    // The form's "no rotation" adds no PDF option, which another target
    // would refuse.
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let fields = [("target_format", "odt"), ("rotate", "0")];
    let ids = job_ids(post_form(&fields, &[("file", "page_1.docx", &data)]).await).await;
    finish(&ids[0]).await;
    let response = get(&format!("/jobs/{}/download", ids[0])).await;
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/vnd.oasis.opendocument.text");

    // A PDF upload is turned and flattened as asked.
    let fields = [("rotate", "90"), ("rotate_pages", "1"), ("flatten", "on")];
    let ids = job_ids(post_form(&fields, &[("file", "two.pdf", &pdf)]).await).await;
    let turned = download(&ids[0]).await;
    let info = support::poppler_with("pdfinfo", &["-f", "1", "-l", "2"], &turned).unwrap();
    assert!(info.contains("Page    1 rot:   90") && info.contains("Page    2 rot:   0"), "{info}");
}

#[tokio::test]
async fn merge_puts_every_file_into_one_pdf() {
    let one = std::fs::read(fixture("page_1.docx")).unwrap();
    let csv = std::fs::read(fixture("sheet.csv")).unwrap();
    let files = [("file", "page_1.docx", &one[..]), ("file", "sheet.csv", &csv[..])];
    let ids = job_ids(post_form(&[("merge", "on")], &files).await).await;
    assert_eq!(ids.len(), 1);
    let pdf = download(&ids[0]).await;
    assert_eq!(pdf_pages(&pdf), 2);
    assert!(support::pdf_text(&pdf, Some(2)).contains("Alice"));
    let html = text(get(&format!("/jobs/{}", ids[0])).await).await;
    assert!(html.contains("and 1 more, merged"), "{html}");
}

#[tokio::test]
async fn bad_options_are_refused_with_the_field_named() {
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let file = [("file", "page_1.docx", &data[..])];
    for (fields, needle) in [
        (vec![("image_quality", "high")], "image_quality"),
        (vec![("page_ranges", "x")], "options.pdf.page_ranges"),
        (vec![("target_format", "pptx")], "header.target_format"),
    ] {
        let response = post_form(&fields, &file).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let body = text(response).await;
        assert!(body.contains(needle), "{needle}: {body}");
    }
    // Several bad fields: each is named, whether the gateway or the
    // converter finds it.
    for fields in [
        vec![("image_quality", "high"), ("landscape", "sideways"), ("colour", "red")],
        vec![("page_ranges", "x"), ("image_quality", "500")],
    ] {
        let response = post_form(&fields, &file).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let body = text(response).await;
        for (name, _) in &fields {
            assert!(body.contains(name), "{name} not named: {body}");
        }
    }
    // Options after the files would apply to nothing already sent.
    let (content_type, mut body) = form(&[], &file);
    let end = body.len() - "--docconv-test-boundary-7MA4YWxkTrZu0gW--\r\n".len();
    body.truncate(end);
    body.extend_from_slice(b"--docconv-test-boundary-7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=\"page_ranges\"\r\n\r\n1\r\n--docconv-test-boundary-7MA4YWxkTrZu0gW--\r\n");
    let request = Request::post("/convert").header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap();
    let response = app(state(|_| {})).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("must come before the files"));
}

/// An input of `big.txt` (the upload cut off at the limit) in any job
/// directory under `jobs`.
fn cut_off_upload(jobs: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut inputs = std::fs::read_dir(jobs).into_iter().flatten().flatten().map(|dir| dir.path().join("input.txt"));
    // Other tests' text inputs are a few bytes; the cut-off one is ~1 MiB.
    inputs.find(|input| input.metadata().is_ok_and(|m| m.len() >= 512 * 1024))
}

#[tokio::test]
async fn a_trickled_upload_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut case = Case::fault("slow clients", "upload body at 10 bytes a second");
    let gateway = crate::web::serve();
    let mut socket = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let boundary = "trickle";
    let head = format!(
        "POST /convert HTTP/1.1\r\nHost: {gateway}\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    // One byte every 100 ms, far below the minimum rate, until the gateway
    // answers (reading in between) or 30 s pass.
    let mut answer = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        if socket.write_all(b"x").await.is_err() {
            break;
        }
        let mut buffer = [0u8; 4096];
        match tokio::time::timeout(std::time::Duration::from_millis(100), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    case.tried();
    case.recovered(started.elapsed(), "trickle began → answered 408");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "after {:?}: {answer:?}", started.elapsed());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "cut off only after {:?}", started.elapsed());
    // What the converter had of the upload goes with it.
    case.finish_on(converter()).await.assert_clean();
}

#[tokio::test]
async fn trickled_request_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut case = Case::fault("slow clients", "request head at 5 bytes a second");
    let gateway = crate::web::serve();
    let mut socket = tokio::net::TcpStream::connect(gateway).await.unwrap();
    socket.write_all(format!("GET / HTTP/1.1\r\nHost: {gateway}\r\nX-Slow: ").as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < std::time::Duration::from_secs(30) {
        if socket.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 1024];
        match tokio::time::timeout(std::time::Duration::from_millis(200), socket.read(&mut buffer)).await {
            // Closed, or answered (an error status) before closing.
            Ok(Ok(_)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    case.tried();
    case.recovered(started.elapsed(), "trickle began → connection closed");
    assert!(closed, "the connection was still open after {:?}", started.elapsed());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "cut off only after {:?}", started.elapsed());
    case.finish_on(converter()).await.assert_clean();
}

#[tokio::test]
async fn uploads_posted_from_another_site_are_refused() {
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let (content_type, body) = multipart(&[("file", "page_1.docx", &data[..])]);
    let post = |origin: &'static str| {
        Request::post("/convert")
            .header(header::CONTENT_TYPE, content_type.clone())
            .header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, origin)
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let response = app(state(|_| {})).oneshot(post("http://evil.example")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app(state(|_| {})).oneshot(post("http://localhost:8080")).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn one_client_cannot_hold_more_uploads_than_its_share() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut case = Case::fault("uploads per client", "1 allowed: a second while one trickles");
    let config = docconv_gateway::config::GatewayConfig { max_uploads_per_client: 1, ..Default::default() };
    let gateway = crate::web::spawn_gateway_with(converter().addr, config);
    // An upload in progress: the head and the start of a file, then nothing.
    let mut slow = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let head = format!(
        "POST /convert HTTP/1.1\r\nHost: {gateway}\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\n\r\nsome text"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // A second upload from the same address is turned away for now.
    let post = |gateway: std::net::SocketAddr| async move {
        let mut socket = tokio::net::TcpStream::connect(gateway).await.unwrap();
        let body =
            "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n\r\nhello\r\n--b--\r\n";
        let request = format!(
            "POST /convert HTTP/1.1\r\nHost: {gateway}\r\nAccept: application/json\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let answer = post(gateway).await;
    case.tried();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 5"), "{answer}");

    // Once the first is gone, the next is taken within 300 ms.
    drop(slow);
    case.tried();
    let gone = std::time::Instant::now();
    let answer = loop {
        let answer = post(gateway).await;
        if !answer.starts_with("HTTP/1.1 429") || gone.elapsed() > std::time::Duration::from_millis(300) {
            break answer;
        }
        case.tried();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    case.recovered(gone.elapsed(), "slow upload gone → next upload taken");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let id = answer.split("\"id\":\"").nth(1).and_then(|rest| rest.get(..32)).expect("the job's id");
    case.accepted(id);
    case.finish_on(converter()).await.assert_clean();
}
