//! A script's view: the real grpcurl binary, through server reflection.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::PathBuf;
use std::process::Command;

/// grpcurl from `DOCCONV_GRPCURL`, the project's tool directory (where the
/// test command installs it), or PATH.
pub fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("DOCCONV_GRPCURL") {
        return path.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/grpcurl");
    if local.exists() { local } else { PathBuf::from("grpcurl") }
}

pub fn run(args: &[&str], input: Option<&str>) -> String {
    use std::io::Write;
    let mut command = Command::new(grpcurl());
    command.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    if input.is_some() {
        command.stdin(std::process::Stdio::piped());
    }
    let mut child = command.spawn().expect("grpcurl is not installed; run scripts/test");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "grpcurl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// grpcurl prints a stream as concatenated JSON objects.
pub fn json_stream(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text).into_iter().collect::<Result<_, _>>().unwrap()
}

#[test]
fn grpcurl_submits_watches_and_downloads_through_reflection() {
    let addr = shared().addr.to_string();
    let services = run(&["-plaintext", &addr, "list"], None);
    for service in ["docconv.v1.Converter", "grpc.health.v1.Health"] {
        assert!(services.contains(service), "{services}");
    }
    let described = run(&["-plaintext", &addr, "describe", "docconv.v1.Converter"], None);
    assert!(described.contains("rpc WatchJob"), "{described}");

    let document = std::fs::read(fixture("page_2.docx")).unwrap();
    let body =
        format!("{{\"header\": {{\"file_name\": \"page_2.docx\"}}}} {{\"data\": \"{}\"}}", BASE64.encode(&document));
    let submitted = run(&["-plaintext", "-d", "@", &addr, "docconv.v1.Converter/Submit"], Some(&body));
    let job = &json_stream(&submitted)[0];
    let id = job.get("id").and_then(|v| v.as_str()).expect("a job id").to_owned();
    assert_eq!(job.get("state").and_then(|v| v.as_str()), Some("JOB_STATE_QUEUED"));

    let request = format!("{{\"id\": \"{id}\"}}");
    let watched = json_stream(&run(&["-plaintext", "-d", &request, &addr, "docconv.v1.Converter/WatchJob"], None));
    let last = watched.last().and_then(|m| m.get("job")).expect("a job state");
    assert_eq!(last.get("state").and_then(|v| v.as_str()), Some("JOB_STATE_SUCCEEDED"));

    let chunks = json_stream(&run(&["-plaintext", "-d", &request, &addr, "docconv.v1.Converter/ReadResult"], None));
    let pdf: Vec<u8> = chunks
        .iter()
        .flat_map(|c| BASE64.decode(c.get("data").and_then(|v| v.as_str()).unwrap_or("")).unwrap())
        .collect();
    assert_eq!(pdf_pages(&pdf), 1);
    assert!(pdf_text(&pdf, None).contains("Page 2"));
}

/// Runs grpcurl expecting a failure; returns what it printed.
pub fn run_failing(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(grpcurl())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("grpcurl is not installed; run scripts/test");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "grpcurl {args:?} should have failed");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn grpcurl_users_set_options_and_read_which_field_is_wrong() {
    let addr = shared().addr.to_string();
    let document = BASE64.encode(std::fs::read(fixture("pages_3.docx")).unwrap());
    let with_options = |pdf: &str| {
        format!(
            "{{\"header\": {{\"file_name\": \"pages_3.docx\", \"options\": {{\"pdf\": {pdf}}}}}}} {{\"data\": \"{document}\"}}"
        )
    };
    let good = with_options(r#"{"standard": "PDF_STANDARD_PDF_A_2B", "page_ranges": "1-2", "watermark": "DRAFT"}"#);
    let submitted = json_stream(&run(&["-plaintext", "-d", "@", &addr, "docconv.v1.Converter/Submit"], Some(&good)));
    let id = submitted[0]["id"].as_str().unwrap().to_owned();
    let request = format!("{{\"id\": \"{id}\"}}");
    let watched = json_stream(&run(&["-plaintext", "-d", &request, &addr, "docconv.v1.Converter/WatchJob"], None));
    assert_eq!(watched.last().unwrap()["job"]["output"]["pageCount"], 2);

    let bad = with_options(r#"{"page_ranges": "3-1", "image_quality": 500}"#);
    let printed = run_failing(&["-plaintext", "-d", "@", &addr, "docconv.v1.Converter/Submit"], &bad);
    assert!(printed.contains("InvalidArgument"), "{printed}");
    assert!(printed.contains("options.pdf.page_ranges") && printed.contains("options.pdf.image_quality"), "{printed}");
}
