//! Running the PDF tools: each as a child process with a deadline, in its
//! own process group, killed if dropped; arguments (which may hold
//! passwords, or values starting with '-') through private argument files.

use crate::failure::Failure;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

/// Time any one tool may take; they work on a finished PDF in seconds.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// Runs qpdf with `args` passed through an argument file next to `beside`.
/// The file it writes has an end of line before each `endstream` outside
/// the stream's length, as PDF/A requires (qpdf otherwise leaves it out
/// after data ending in a newline).
pub async fn qpdf(beside: &Path, args: &[String]) -> Result<(), Failure> {
    let mut all = vec!["--newline-before-endstream".to_owned()];
    all.extend(args.iter().cloned());
    let argfile = ArgFile::write(beside, &all)?;
    run_tool("qpdf", &[argfile.qpdf_arg().as_ref()]).await
}

/// Runs qpdf like `qpdf`, but hands back how it ended whatever it was, for
/// callers that tell a refused password or a damaged file from a failure.
pub async fn qpdf_status(beside: &Path, args: &[String]) -> Result<Output, Failure> {
    let argfile = ArgFile::write(beside, args)?;
    run("qpdf", &[argfile.qpdf_arg().as_ref()]).await
}

/// What qpdf's `--json` says of `pdf`, restricted by `options`.
pub async fn qpdf_json(pdf: &Path, options: &[String]) -> Result<serde_json::Value, Failure> {
    let mut args = vec!["--json".to_owned()];
    args.extend(options.iter().cloned());
    args.push(pdf.to_string_lossy().into_owned());
    let argfile = ArgFile::write(pdf, &args)?;
    let output = run_tool_for_output("qpdf", &[argfile.qpdf_arg().as_ref()]).await?;
    serde_json::from_slice(&output).map_err(|e| tool_failed("qpdf", &format!("unreadable JSON: {e}")))
}

/// The number of pages of `pdf`, as qpdf reads it (`common` holds the
/// password of an encrypted file).
pub async fn page_count(pdf: &Path, common: &[String]) -> Result<u32, Failure> {
    let mut args = common.to_vec();
    args.extend(["--show-npages".into(), pdf.to_string_lossy().into_owned()]);
    let output = qpdf_output(pdf, &args).await?;
    String::from_utf8_lossy(&output).trim().parse().map_err(|_| tool_failed("qpdf", "no page count"))
}

/// What qpdf prints when run with `args` (through an argument file next
/// to `beside`).
pub async fn qpdf_output(beside: &Path, args: &[String]) -> Result<Vec<u8>, Failure> {
    let argfile = ArgFile::write(beside, args)?;
    run_tool_for_output("qpdf", &[argfile.qpdf_arg().as_ref()]).await
}

/// Runs qpdf on `pdf` writing a new file, which then replaces it.
pub async fn qpdf_in_place(pdf: &Path, options: &[String]) -> Result<(), Failure> {
    let written = pdf.with_extension(format!("rewritten-{}.pdf", docconv::ids::new_id()));
    let mut args = vec![pdf.to_string_lossy().into_owned()];
    args.extend(options.iter().cloned());
    args.extend(["--".into(), written.to_string_lossy().into_owned()]);
    let _scratch = RemovedOnDrop(vec![written.clone()]);
    qpdf(pdf, &args).await?;
    std::fs::rename(&written, pdf).map_err(|e| tool_failed("qpdf", &e.to_string()))
}

/// A private file of arguments, one per line, removed on drop.
pub struct ArgFile {
    pub path: PathBuf,
}

impl ArgFile {
    pub fn write(beside: &Path, args: &[String]) -> Result<ArgFile, Failure> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = beside.with_extension(format!("args-{}", docconv::ids::new_id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| tool_failed("arguments", &e.to_string()))?;
        let argfile = ArgFile { path };
        for arg in args {
            if arg.contains('\n') {
                return Err(tool_failed("arguments", "an argument holds a line break"));
            }
            writeln!(file, "{arg}").map_err(|e| tool_failed("arguments", &e.to_string()))?;
        }
        Ok(argfile)
    }

    /// How qpdf is told to read it.
    fn qpdf_arg(&self) -> String {
        format!("@{}", self.path.display())
    }
}

impl Drop for ArgFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Files removed when this goes, if they are still there.
pub struct RemovedOnDrop(pub Vec<PathBuf>);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub async fn run_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), Failure> {
    run_tool_for_output(program, args).await.map(drop)
}

/// Runs a tool to a successful end within the deadline; returns what it
/// printed.
pub async fn run_tool_for_output(program: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, Failure> {
    let output = run(program, args).await?;
    // qpdf exits 3 for warnings on a file it still wrote correctly.
    if output.status.success() || (program == "qpdf" && output.status.code() == Some(3)) {
        Ok(output.stdout)
    } else {
        Err(tool_failed(program, &String::from_utf8_lossy(&output.stderr)))
    }
}

/// Runs a tool to its end, whatever its exit status, within the deadline.
async fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<Output, Failure> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| tool_failed(program, &e.to_string()))?;
    match tokio::time::timeout(TOOL_DEADLINE, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(tool_failed(program, &e.to_string())),
        Err(_) => Err(tool_failed(program, "took too long")),
    }
}

pub fn tool_failed(tool: &str, detail: &str) -> Failure {
    tracing::error!(tool, "post-processing failed: {}", detail.trim());
    Failure::ExportFailed
}
