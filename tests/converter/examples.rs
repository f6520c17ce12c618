//! The client examples in other languages (`examples/python`,
//! `examples/node`), built from `proto/` and run against a real converter:
//! each submits in chunks, follows the job, downloads (resuming from an
//! offset) and prints a refusal's field violations. `scripts/test`
//! installs their packages.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How to run one example: the interpreter and the script, with whatever
/// the script needs beside it.
struct Example {
    command: Command,
    /// Generated code lives here while the example runs.
    _generated: Option<tempfile::TempDir>,
}

/// The Python example, with its gRPC code generated into a temporary
/// directory from `proto/` by the venv's grpcio-tools.
fn python() -> Example {
    let python = std::env::var_os("DOCCONV_EXAMPLES_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/examples/python-venv/bin/python"));
    assert!(python.exists(), "{} is missing; scripts/test makes the examples' venv", python.display());
    let generated = tempfile::tempdir().unwrap();
    let out = generated.path().to_str().unwrap();
    let status = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I", "proto"])
        .args([format!("--python_out={out}"), format!("--grpc_python_out={out}")])
        .arg("docconv/v1/converter.proto")
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(status.success(), "grpc_tools.protoc failed");
    let mut command = Command::new(python);
    command.arg(repo().join("examples/python/client.py")).env("PYTHONPATH", generated.path());
    Example { command, _generated: Some(generated) }
}

/// The Node example, which loads `proto/` itself at run time.
fn node() -> Example {
    let modules = repo().join("examples/node/node_modules");
    assert!(modules.exists(), "{} is missing; scripts/test runs npm ci", modules.display());
    let mut command = Command::new("node");
    command.arg(repo().join("examples/node/client.js"));
    Example { command, _generated: None }
}

fn run(mut example: Example, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let child = example
        .command
        .args(["--server", &shared().addr.to_string()])
        .args(args)
        .current_dir(dir)
        .env_remove("DOCCONV_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example's interpreter");
    let output = exit_within(child, Duration::from_secs(120));
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

fn converts_watches_and_downloads(example: fn() -> Example) {
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("pages_12.docx");
    let (code, out, err) = run(example(), dir.path(), &[document.to_str().unwrap(), "out.pdf"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("submitted "), "{out}");
    // Live states from WatchJob, in order, ending with the end.
    assert!(lines.iter().any(|l| l.starts_with("RUNNING ") && l.ends_with('%')), "{out}");
    let succeeded = lines.iter().position(|l| *l == "SUCCEEDED").expect("SUCCEEDED");
    assert!(lines[succeeded + 1].starts_with("saved out.pdf ("), "{out}");
    let pdf = std::fs::read(dir.path().join("out.pdf")).unwrap();
    assert_eq!(pdf_pages(&pdf), 12);
    assert!(pdf_text(&pdf, Some(12)).contains("Page 12"));
}

async fn resumes_a_download_from_an_offset(example: fn() -> Example) {
    let dir = tempfile::tempdir().unwrap();
    let mut client = shared().client().await;
    let (job, expected) = convert(&mut client, "pages_3.docx").await;
    let half = expected.len() / 2;
    std::fs::write(dir.path().join(format!("out.pdf.{}.part", job.id)), &expected[..half]).unwrap();
    let (code, out, err) = run(example(), dir.path(), &["--job", &job.id, "out.pdf"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with(&format!("resuming at offset {half}\n")), "{out}");
    assert_eq!(std::fs::read(dir.path().join("out.pdf")).unwrap(), expected);
}

fn prints_the_field_violations_of_a_refusal(example: fn() -> Example) {
    let dir = tempfile::tempdir().unwrap();
    let document = fixture("pages_3.docx");
    let (code, out, err) = run(example(), dir.path(), &["--page-ranges", "3-1", document.to_str().unwrap(), "out.pdf"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.starts_with("refused: INVALID_ARGUMENT"), "{err}");
    // The indented line comes from the google.rpc.BadRequest detail, not the message.
    assert!(err.contains("\n  options.pdf.page_ranges: \"3-1\" is not a page range"), "{err}");
    assert!(!dir.path().join("out.pdf").exists());
}

#[test]
fn python_converts_watches_and_downloads() {
    converts_watches_and_downloads(python);
}

#[tokio::test]
async fn python_resumes_a_download_from_an_offset() {
    resumes_a_download_from_an_offset(python).await;
}

#[test]
fn python_prints_the_field_violations_of_a_refusal() {
    prints_the_field_violations_of_a_refusal(python);
}

#[test]
fn node_converts_watches_and_downloads() {
    converts_watches_and_downloads(node);
}

#[tokio::test]
async fn node_resumes_a_download_from_an_offset() {
    resumes_a_download_from_an_offset(node).await;
}

#[test]
fn node_prints_the_field_violations_of_a_refusal() {
    prints_the_field_violations_of_a_refusal(node);
}
