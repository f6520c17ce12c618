//! What happens to a PDF after LibreOffice wrote it: metadata, encryption
//! and splitting, done with maintained tools (exiftool, qpdf) rather than
//! by editing PDF structures ourselves. Each tool runs as a child process
//! with a deadline, in its own process group, killed if dropped.
//!
//! Order matters: metadata is written before encryption (an encrypted file
//! cannot be edited without its password), and splitting comes last so
//! every part carries both. Each part is the whole document with the other
//! pages left out (qpdf's page selection with the document itself as the
//! primary input), so it keeps what the whole has: encryption, the
//! document information, XMP metadata, PDF/A output intents and the
//! PDF/UA structure tree. (`qpdf --split-pages` writes bare documents.)

mod outline;

use super::failure::Failure;
use docconv::proto::v1::{ConversionOptions, PdfEncryption, PdfMetadata, PdfSplit, pdf_split};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Debian packages of the tools used here, for the start-up check.
pub const PACKAGES: &str = "qpdf libimage-exiftool-perl poppler-utils";
const TOOLS: &[&str] = &["qpdf", "exiftool", "pdftoppm"];

/// Time any one tool may take; they work on a finished PDF in seconds.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// The tools that are not installed.
pub fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    TOOLS.iter().copied().filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())).collect()
}

/// The final result of a PDF job: the file and how to name and type it.
pub struct Product {
    pub path: PathBuf,
    pub extension: &'static str,
}

/// Applies the post-processing options to `pdf` (in the job's directory).
pub async fn finish(options: &ConversionOptions, pdf: &Path) -> Result<Product, Failure> {
    let Some(pdf_options) = &options.pdf else {
        return Ok(Product { path: pdf.to_path_buf(), extension: "pdf" });
    };
    if let Some(metadata) = pdf_options.metadata.as_ref().filter(|m| !is_empty(m)) {
        write_metadata(metadata, pdf).await?;
    }
    if let Some(encryption) = &pdf_options.encryption {
        encrypt(encryption, pdf).await?;
    }
    match &pdf_options.split {
        Some(split) => Ok(Product { path: split_to_zip(split, pdf, password_of(options)).await?, extension: "zip" }),
        None => Ok(Product { path: pdf.to_path_buf(), extension: "pdf" }),
    }
}

fn password_of(options: &ConversionOptions) -> Option<&str> {
    let encryption = options.pdf.as_ref()?.encryption.as_ref()?;
    Some(encryption.open_password.as_str()).filter(|p| !p.is_empty())
}

fn is_empty(metadata: &PdfMetadata) -> bool {
    metadata.title.is_empty()
        && metadata.author.is_empty()
        && metadata.subject.is_empty()
        && metadata.keywords.is_empty()
}

/// Writes the fields both into the document information dictionary and the
/// XMP packet, so PDF/A files stay consistent.
async fn write_metadata(metadata: &PdfMetadata, pdf: &Path) -> Result<(), Failure> {
    let mut args = vec!["-overwrite_original".to_owned(), "-charset".into(), "utf8".into()];
    let keywords = metadata.keywords.join(", ");
    for (tags, value) in [
        (&["PDF:Title", "XMP-dc:Title"][..], &metadata.title),
        (&["PDF:Author", "XMP-dc:Creator"][..], &metadata.author),
        (&["PDF:Subject", "XMP-dc:Description"][..], &metadata.subject),
        (&["PDF:Keywords", "XMP-pdf:Keywords"][..], &keywords),
    ] {
        if !value.is_empty() {
            for tag in tags {
                args.push(format!("-{tag}={value}"));
            }
        }
    }
    // Arguments come from a file: values may start with '-' and must never
    // be read as options.
    let argfile = ArgFile::write(pdf, &args)?;
    run_tool("exiftool", &["-@".as_ref(), argfile.path.as_os_str(), pdf.as_os_str()]).await
}

/// AES-256 encryption with qpdf. Passwords travel in an argument file
/// readable only by us, never on a command line other users can see.
async fn encrypt(encryption: &PdfEncryption, pdf: &Path) -> Result<(), Failure> {
    let encrypted = pdf.with_extension("encrypted.pdf");
    let yes_no = |allowed: bool| if allowed { "y" } else { "n" };
    let (owner, print, modify, extract) = if encryption.owner_password.is_empty() {
        // Only an open password: whoever opens the file may do anything,
        // and nobody can change that (the owner password is random).
        (docconv::ids::new_id(), "full", "all", "y")
    } else {
        (
            encryption.owner_password.clone(),
            if encryption.allow_printing { "full" } else { "none" },
            if encryption.allow_editing { "all" } else { "none" },
            yes_no(encryption.allow_copying),
        )
    };
    let args = [
        pdf.to_string_lossy().into_owned(),
        "--encrypt".into(),
        encryption.open_password.clone(),
        owner,
        "256".into(),
        format!("--print={print}"),
        format!("--modify={modify}"),
        format!("--extract={extract}"),
        "--".into(),
        encrypted.to_string_lossy().into_owned(),
    ];
    qpdf(pdf, &args).await?;
    std::fs::rename(&encrypted, pdf).map_err(|e| tool_failed("qpdf", &e.to_string()))
}

/// Joins `parts` into one PDF, in order, keeping each part's bookmarks
/// at its pages.
pub async fn merge(parts: &[PathBuf], merged: &Path) -> Result<(), Failure> {
    let mut outlines = Vec::with_capacity(parts.len());
    for part in parts {
        outlines.push(outline::read(part).await?);
    }
    let pages = outline::page_counts(parts).await?;
    let mut args: Vec<String> = vec!["--empty".into(), "--pages".into()];
    args.extend(parts.iter().map(|p| p.to_string_lossy().into_owned()));
    args.extend(["--".into(), merged.to_string_lossy().into_owned()]);
    qpdf(merged, &args).await?;
    outline::write(merged, &outlines, &pages).await
}

/// What qpdf's `--json` says of `pdf`, restricted by `options`.
async fn qpdf_json(pdf: &Path, options: &[String]) -> Result<serde_json::Value, Failure> {
    let mut args = vec!["--json".to_owned()];
    args.extend(options.iter().cloned());
    args.push(pdf.to_string_lossy().into_owned());
    let argfile = ArgFile::write(pdf, &args)?;
    let output = run_tool_for_output("qpdf", &[format!("@{}", argfile.path.display()).as_ref()]).await?;
    serde_json::from_slice(&output).map_err(|e| tool_failed("qpdf", &format!("unreadable JSON: {e}")))
}

/// Splits into parts and packs them into a zip next to `pdf`.
async fn split_to_zip(split: &PdfSplit, pdf: &Path, password: Option<&str>) -> Result<PathBuf, Failure> {
    let parts_dir = pdf.with_extension("parts");
    let _ = std::fs::remove_dir_all(&parts_dir);
    std::fs::create_dir_all(&parts_dir).map_err(|e| tool_failed("split", &e.to_string()))?;
    let mut common = Vec::new();
    if let Some(password) = password {
        common.push(format!("--password={password}"));
    }
    let ranges: Vec<String> = match &split.by {
        Some(pdf_split::By::EveryPages(every)) => {
            let pages = page_count(pdf, &common).await?;
            let every = (*every).max(1);
            (1..=pages)
                .step_by(every as usize)
                .map(|first| format!("{first}-{}", (first + every - 1).min(pages)))
                .collect()
        }
        Some(pdf_split::By::Ranges(ranges)) => ranges.ranges.iter().map(|range| qpdf_range(range)).collect(),
        None => return Err(tool_failed("split", "no split given")),
    };
    for (index, range) in ranges.iter().enumerate() {
        let mut args = common.clone();
        args.extend([pdf.to_string_lossy().into_owned(), "--pages".into(), ".".into(), range.clone()]);
        args.extend(["--".into(), parts_dir.join(format!("part-{:03}.pdf", index + 1)).to_string_lossy().into_owned()]);
        qpdf(pdf, &args).await?;
    }
    let zip_path = pdf.with_extension("zip");
    let stem = pdf.file_stem().and_then(|s| s.to_str()).unwrap_or("part").to_owned();
    let (dir, zip) = (parts_dir.clone(), zip_path.clone());
    tokio::task::spawn_blocking(move || zip_parts(&dir, &zip, &stem))
        .await
        .map_err(|e| tool_failed("zip", &e.to_string()))?
        .map_err(|e| tool_failed("zip", &e.to_string()))?;
    let _ = std::fs::remove_dir_all(&parts_dir);
    Ok(zip_path)
}

/// The number of pages of `pdf`, as qpdf reads it (`common` holds the
/// password of an encrypted file).
async fn page_count(pdf: &Path, common: &[String]) -> Result<u32, Failure> {
    let mut args = common.to_vec();
    args.extend(["--show-npages".into(), pdf.to_string_lossy().into_owned()]);
    let argfile = ArgFile::write(pdf, &args)?;
    let output = run_tool_for_output("qpdf", &[format!("@{}", argfile.path.display()).as_ref()]).await?;
    String::from_utf8_lossy(&output).trim().parse().map_err(|_| tool_failed("qpdf", "no page count"))
}

/// Our page ranges ("1,4-", "-3") in qpdf's syntax ("1,4-z", "1-3").
fn qpdf_range(range: &str) -> String {
    range
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some(("", to)) => format!("1-{}", to.trim()),
                Some((from, "")) => format!("{}-z", from.trim()),
                _ => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Stores (no compression: PDFs are compressed already) each part, in
/// name order, as `<stem>-<n>.pdf`.
fn zip_parts(dir: &Path, zip_path: &Path, stem: &str) -> std::io::Result<()> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // In the order of their numbers (past 999 names no longer sort).
    parts.sort_by_key(|p| {
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        name.rsplit('-').next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0)
    });
    let mut zip = zip::ZipWriter::new(std::fs::File::create(zip_path)?);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (index, part) in parts.iter().enumerate() {
        zip.start_file(format!("{stem}-{}.pdf", index + 1), stored)?;
        zip.write_all(&std::fs::read(part)?)?;
    }
    zip.finish()?.sync_all()
}

/// Runs qpdf with `args` passed through an argument file next to `beside`
/// (they may hold passwords).
async fn qpdf(beside: &Path, args: &[String]) -> Result<(), Failure> {
    let argfile = ArgFile::write(beside, args)?;
    run_tool("qpdf", &[format!("@{}", argfile.path.display()).as_ref()]).await
}

/// A private file of arguments, one per line, removed on drop.
struct ArgFile {
    path: PathBuf,
}

impl ArgFile {
    fn write(beside: &Path, args: &[String]) -> Result<ArgFile, Failure> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = beside.with_extension(format!("args-{}", docconv::ids::new_id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| tool_failed("arguments", &e.to_string()))?;
        for arg in args {
            if arg.contains('\n') {
                return Err(tool_failed("arguments", "an argument holds a line break"));
            }
            writeln!(file, "{arg}").map_err(|e| tool_failed("arguments", &e.to_string()))?;
        }
        Ok(ArgFile { path })
    }
}

impl Drop for ArgFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn run_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), Failure> {
    run_tool_for_output(program, args).await.map(drop)
}

/// Runs a tool to its end within the deadline; returns what it printed.
async fn run_tool_for_output(program: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, Failure> {
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
        // qpdf exits 3 for warnings on a file it still wrote correctly.
        Ok(Ok(output)) if output.status.success() || (program == "qpdf" && output.status.code() == Some(3)) => {
            Ok(output.stdout)
        }
        Ok(Ok(output)) => Err(tool_failed(program, &String::from_utf8_lossy(&output.stderr))),
        Ok(Err(e)) => Err(tool_failed(program, &e.to_string())),
        Err(_) => Err(tool_failed(program, "took too long")),
    }
}

fn tool_failed(tool: &str, detail: &str) -> Failure {
    tracing::error!(tool, "post-processing failed: {}", detail.trim());
    Failure::ExportFailed
}

/// Renders a small PNG of the first page of `pdf` into `png`. An
/// encrypted PDF is first decrypted into a temporary copy (the password goes
/// through an argument file; pdftoppm would need it on its command line).
pub async fn render_preview(pdf: &Path, png: &Path, password: Option<&str>) -> Result<(), Failure> {
    let decrypted = png.with_extension("decrypted.pdf");
    // Rendered under a private name and renamed, so a reader never sees a
    // half-written preview.
    let prefix = png.with_extension(format!("rendering-{}", docconv::ids::new_id()));
    // pdftoppm appends ".png" to the prefix.
    let written = PathBuf::from(format!("{}.png", prefix.display()));
    // Whatever way this ends (an error, or the call dropped mid-render when
    // its client goes away), no scratch file stays beside the job's files.
    let _scratch = RemovedOnDrop(vec![decrypted.clone(), written.clone()]);
    let source = match password {
        None => pdf.to_path_buf(),
        Some(password) => {
            let args = [
                format!("--password={password}"),
                "--decrypt".into(),
                pdf.to_string_lossy().into_owned(),
                decrypted.to_string_lossy().into_owned(),
            ];
            qpdf(png, &args).await?;
            decrypted.clone()
        }
    };
    let args: [&std::ffi::OsStr; 10] = [
        "-png".as_ref(),
        "-singlefile".as_ref(),
        "-f".as_ref(),
        "1".as_ref(),
        "-l".as_ref(),
        "1".as_ref(),
        "-scale-to".as_ref(),
        "400".as_ref(),
        source.as_os_str(),
        prefix.as_os_str(),
    ];
    run_tool("pdftoppm", &args).await?;
    std::fs::rename(&written, png).map_err(|e| tool_failed("pdftoppm", &e.to_string()))
}

/// Files removed when this goes, if they are still there.
struct RemovedOnDrop(Vec<PathBuf>);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_qpdf_ranges() {
        assert_eq!(qpdf_range("2-3"), "2-3");
        assert_eq!(qpdf_range("1,4-"), "1,4-z");
        assert_eq!(qpdf_range("-3"), "1-3");
        assert_eq!(qpdf_range(" 5 "), "5");
    }
}
