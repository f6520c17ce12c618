//! What happens to a PDF once LibreOffice wrote it (or a PDF input was
//! opened): merging, flattening, rotation, marks, attachments, metadata,
//! bookmarks, viewer preferences, encryption and splitting, done with
//! maintained tools (qpdf, exiftool)
//! rather than by editing PDF structures ourselves; and previews.
//!
//! Order matters, and is the same for every job, so each option reaches
//! every output (each document of a merge, each part of a split):
//! documents are merged first; fields and annotations are flattened before
//! pages turn (flattening places appearances on the page as it lies);
//! marks are drawn once pages have turned, so they stand upright as pages
//! are shown, and over flattened fields (a stamp covers all that shows);
//! attachments, metadata (a Factur-X invoice's XMP last, after the
//! document information), bookmarks and viewer preferences are written
//! before encryption (an encrypted file cannot be edited without its
//! password); the file is then written anew, encrypted if asked. A split
//! instead cuts the unencrypted whole into parts, each carrying all of it,
//! points each part's bookmarks and opening page at its own pages, and
//! encrypts each.
//!
//! - `tools.rs` runs the tools (deadlines, argument files);
//! - `objects.rs` reads and changes PDF objects through qpdf's JSON;
//! - `outline.rs` reads and writes bookmarks (for merges, given
//!   bookmarks and split parts);
//! - `conforming_merge.rs` keeps a merge PDF/A or PDF/UA, with
//!   `structure.rs` making the documents' structure trees one;
//! - `flatten.rs`, `rotate.rs`, `marks.rs`, `attachments.rs`,
//!   `metadata.rs`, `factur_x.rs` (a Factur-X invoice's XMP),
//!   `bookmarks.rs`, `viewer.rs`, `encrypt.rs` and `split.rs` are one step
//!   each; `part.rs` fits each part of a split to its pages;
//! - `preview.rs` renders a result's first page.

mod attachments;
mod bookmarks;
mod conforming_merge;
mod encrypt;
mod factur_x;
mod flatten;
mod marks;
mod metadata;
mod objects;
pub mod outline;
mod page_count;
mod part;
mod preview;
mod rotate;
mod split;
mod stream_ends;
mod structure;
pub mod tools;
mod viewer;

pub use attachments::Attached;
pub use marks::MarkImage;
pub use preview::render as render_preview;

use super::failure::Failure;
use docconv::proto::v1::{ConversionOptions, PdfOptions, PdfStandard};
use std::path::{Path, PathBuf};

/// Debian packages of the tools used here, for the start-up check.
pub const PACKAGES: &str = "qpdf libimage-exiftool-perl poppler-utils fontconfig";
const TOOLS: &[&str] = &["qpdf", "exiftool", "pdftoppm", "fc-match"];

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
/// embedding `attached` and drawing the marks with files `marked`.
pub async fn finish(
    options: &ConversionOptions,
    pdf: &Path,
    attached: &[Attached],
    marked: &[MarkImage],
) -> Result<Product, Failure> {
    let none = PdfOptions::default();
    let pdf_options = options.pdf.as_ref().unwrap_or(&none);
    if pdf_options.flatten {
        flatten::flatten(pdf).await?;
    }
    if let Some(turn) = &pdf_options.rotate {
        rotate::rotate(turn, pdf).await?;
    }
    if pdf_options.background.is_some() || pdf_options.stamp.is_some() {
        marks::draw(pdf_options, marked, pdf).await?;
    }
    if !attached.is_empty() {
        attachments::attach(attached, pdf).await?;
    }
    let metadata = pdf_options.metadata.as_ref().filter(|m| !metadata::is_empty(m));
    if let Some(metadata) = metadata {
        metadata::write(metadata, pdf).await?;
    }
    if let Some(invoice) = &pdf_options.factur_x {
        factur_x::describe(invoice, pdf).await?;
    }
    let page_count = page_count::page_count(pdf).await?;
    bookmarks::apply(pdf_options, pdf, page_count).await?;
    if let Some(viewer) = &pdf_options.viewer {
        viewer::apply(viewer, pdf, page_count).await?;
    }
    let archival = pdf_options.standard != PdfStandard::Unspecified as i32;
    let Some(by) = &pdf_options.split else {
        // exiftool appends its changes; writing the file anew drops what they replaced.
        if pdf_options.encryption.is_some() || metadata.is_some() || pdf_options.factur_x.is_some() {
            encrypt::rewrite(pdf_options.encryption.as_ref(), pdf).await?;
        }
        if archival {
            stream_ends::mend(pdf).await?;
        }
        return Ok(Product { path: pdf.to_path_buf(), extension: "pdf", page_count });
    };
    // Parts are written anew by qpdf (no earlier revision stays), and
    // each is encrypted once it points at its own pages.
    let parts = split::parts(by, pdf).await?;
    let whole = part::Whole::read(pdf).await?;
    for part in &parts {
        whole.fit(&part.path, &part.pages).await?;
        if let Some(encryption) = &pdf_options.encryption {
            encrypt::rewrite(Some(encryption), &part.path).await?;
        }
        if archival {
            stream_ends::mend(&part.path).await?;
        }
    }
    Ok(Product { path: split::to_zip(parts, pdf).await?, extension: "zip", page_count })
}

/// Joins `parts` into one PDF, in order, keeping each part's bookmarks
/// at its pages; with `titles` (one per part), under a bookmark of that
/// title opening the part's first page. When `options` ask for PDF/A or
/// PDF/UA (every part is then a document LibreOffice wrote so), the merged
/// file keeps that conformance (`conforming_merge.rs`); otherwise it
/// starts from an empty file, taking only the parts' pages.
pub async fn merge(
    options: &ConversionOptions,
    parts: &[PathBuf],
    titles: Option<&[String]>,
    merged: &Path,
) -> Result<(), Failure> {
    let mut outlines = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let own = outline::read(part).await?;
        outlines.push(match titles.and_then(|titles| titles.get(index)) {
            Some(title) => bookmarks::titled(own, title),
            None => own,
        });
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
    let joined = outline::joined(&outlines, &pages);
    if joined.is_empty() {
        return Ok(());
    }
    outline::write(merged, &joined, true).await
}

/// Gives the only document of a job its title bookmark (see `merge`).
pub async fn entitle(pdf: &Path, title: &str) -> Result<(), Failure> {
    bookmarks::entitle(pdf, title).await
}
