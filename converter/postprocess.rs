//! What happens to a PDF once LibreOffice wrote it (or a PDF input was
//! opened): merging, flattening, rotation, attachments, metadata,
//! encryption and splitting, done with maintained tools (qpdf, exiftool)
//! rather than by editing PDF structures ourselves; and previews.
//!
//! Order matters, and is the same for every job, so each option reaches
//! every output (each document of a merge, each part of a split):
//! documents are merged first; fields and annotations are flattened before
//! pages turn (flattening places appearances on the page as it lies);
//! attachments and metadata are written before encryption (an encrypted
//! file cannot be edited without its password); the file is then written
//! anew, encrypted if asked; splitting comes last, so every part carries
//! all of it.
//!
//! - `tools.rs` runs the tools (deadlines, argument files);
//! - `objects.rs` reads and changes PDF objects through qpdf's JSON;
//! - `outline.rs` gives a merge each document's bookmarks;
//! - `conforming_merge.rs` keeps a merge PDF/A or PDF/UA, with
//!   `structure.rs` making the documents' structure trees one;
//! - `flatten.rs`, `rotate.rs`, `attachments.rs`, `metadata.rs`,
//!   `encrypt.rs` and `split.rs` are one step each;
//! - `preview.rs` renders a result's first page.

mod attachments;
mod conforming_merge;
mod encrypt;
mod flatten;
mod metadata;
mod objects;
pub mod outline;
mod preview;
mod rotate;
mod split;
mod structure;
pub mod tools;

pub use attachments::Attached;
pub use preview::render as render_preview;

use super::failure::Failure;
use docconv::proto::v1::{ConversionOptions, PdfOptions, PdfStandard};
use std::path::{Path, PathBuf};

/// Debian packages of the tools used here, for the start-up check.
pub const PACKAGES: &str = "qpdf libimage-exiftool-perl poppler-utils";
const TOOLS: &[&str] = &["qpdf", "exiftool", "pdftoppm"];

/// The tools that are not installed.
pub fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    TOOLS.iter().copied().filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())).collect()
}

/// The final result of a PDF job: the file and how to name and type it.
pub struct Product {
    pub path: PathBuf,
    pub extension: &'static str,
    /// Pages of the PDF (before any split).
    pub page_count: u32,
}

/// Applies the post-processing options to `pdf` (in the job's directory),
/// embedding `attached`.
pub async fn finish(options: &ConversionOptions, pdf: &Path, attached: &[Attached]) -> Result<Product, Failure> {
    let none = PdfOptions::default();
    let pdf_options = options.pdf.as_ref().unwrap_or(&none);
    if pdf_options.flatten {
        flatten::flatten(pdf).await?;
    }
    if let Some(turn) = &pdf_options.rotate {
        rotate::rotate(turn, pdf).await?;
    }
    if !attached.is_empty() {
        attachments::attach(attached, pdf).await?;
    }
    let metadata = pdf_options.metadata.as_ref().filter(|m| !metadata::is_empty(m));
    if let Some(metadata) = metadata {
        metadata::write(metadata, pdf).await?;
    }
    let page_count = tools::page_count(pdf, &[]).await?;
    if pdf_options.encryption.is_some() || metadata.is_some() {
        encrypt::rewrite(pdf_options.encryption.as_ref(), pdf).await?;
    }
    match &pdf_options.split {
        Some(by) => {
            let password = pdf_options.encryption.as_ref().map(|e| e.open_password.as_str()).filter(|p| !p.is_empty());
            Ok(Product { path: split::to_zip(by, pdf, password).await?, extension: "zip", page_count })
        }
        None => Ok(Product { path: pdf.to_path_buf(), extension: "pdf", page_count }),
    }
}

/// Joins `parts` into one PDF, in order, keeping each part's bookmarks
/// at its pages. When `options` ask for PDF/A or PDF/UA (every part is
/// then a document LibreOffice wrote so), the merged file keeps that
/// conformance (`conforming_merge.rs`); otherwise it starts from an empty
/// file, taking only the parts' pages.
pub async fn merge(options: &ConversionOptions, parts: &[PathBuf], merged: &Path) -> Result<(), Failure> {
    let mut outlines = Vec::with_capacity(parts.len());
    for part in parts {
        outlines.push(outline::read(part).await?);
    }
    let pages = outline::page_counts(parts).await?;
    let conforming =
        options.pdf.as_ref().is_some_and(|pdf| pdf.standard != PdfStandard::Unspecified as i32 || pdf.universal_access);
    if conforming {
        conforming_merge::merge(parts, merged).await?;
    } else {
        let mut args: Vec<String> = vec!["--empty".into(), "--pages".into()];
        args.extend(parts.iter().map(|p| p.to_string_lossy().into_owned()));
        args.extend(["--".into(), merged.to_string_lossy().into_owned()]);
        tools::qpdf(merged, &args).await?;
    }
    outline::write(merged, &outlines, &pages).await
}
