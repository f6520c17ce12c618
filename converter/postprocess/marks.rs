//! Marks drawn on the finished PDF: `background` behind each chosen page's
//! content (a watermark), `stamp` over it. Text and images are drawn on a
//! PDF of our own, one page per chosen page with exactly the size of that
//! page's trimmed area as the reader sees it (turned by its /Rotate), and
//! qpdf lays those pages under (`--underlay`) or over (`--overlay`) the
//! document's: qpdf fits each onto its page's trimmed area and undoes the
//! page's rotation, so the mark stands upright as the page is shown and
//! is centred on what is seen. A PDF mark is laid as it is, its first page
//! on every chosen page, centred and shrunk to fit by qpdf.
//!
//! The marks' content is marked as an artifact (`/Artifact BMC … EMC`):
//! it is no part of a tagged document's structure, which PDF/UA requires.
//!
//! - `pages.rs` reads the chosen pages' trimmed areas and rotation;
//! - `layout.rs` decides where on a page the mark goes, and how large;
//! - `text.rs` turns text into glyph outlines of a fontconfig font;
//! - `image.rs` makes PDF images of PNG and JPEG files;
//! - `draw.rs` writes the PDF of marks.

mod draw;
mod image;
mod layout;
mod pages;
mod text;

use super::tools::{RemovedOnDrop, page_count, qpdf_in_place};
use crate::failure::Failure;
use crate::page_ranges;
use docconv::proto::v1::{PdfMark, PdfMarkLayer, PdfOptions, PdfStandard};
use std::path::{Path, PathBuf};

/// The file of a mark, as the job received it.
pub struct MarkImage {
    pub layer: PdfMarkLayer,
    pub path: PathBuf,
}

/// Draws the marks `pdf_options` asks for on `pdf`: the background first,
/// then the stamp, so a stamp lies over a background where both are.
pub async fn draw(pdf_options: &PdfOptions, files: &[MarkImage], pdf: &Path) -> Result<(), Failure> {
    let marks = [
        (PdfMarkLayer::Background, "options.pdf.background", &pdf_options.background),
        (PdfMarkLayer::Stamp, "options.pdf.stamp", &pdf_options.stamp),
    ];
    for (layer, field, mark) in marks {
        let Some(mark) = mark else { continue };
        let file = files.iter().find(|f| f.layer == layer).map(|f| f.path.as_path());
        let job = Job { layer, field, mark, standard: pdf_options.standard() };
        apply(&job, file, pdf).await?;
    }
    Ok(())
}

/// One mark to draw, and what it is drawn for.
struct Job<'a> {
    layer: PdfMarkLayer,
    /// The option, e.g. "options.pdf.stamp", to name in failures.
    field: &'static str,
    mark: &'a PdfMark,
    standard: PdfStandard,
}

async fn apply(job: &Job<'_>, file: Option<&Path>, pdf: &Path) -> Result<(), Failure> {
    let pages = page_count(pdf, &[]).await?;
    let chosen = match job.mark.pages.as_str() {
        "" => (1..=pages).collect(),
        text => page_ranges::select(text, pages),
    };
    if chosen.is_empty() {
        let field =
            if job.layer == PdfMarkLayer::Stamp { "options.pdf.stamp.pages" } else { "options.pdf.background.pages" };
        return Err(Failure::NoPagesSelected { field, pages });
    }
    let layer = if job.layer == PdfMarkLayer::Stamp { "--overlay" } else { "--underlay" };
    let to = format!("--to={}", page_ranges::for_qpdf(&chosen));
    let source = match file {
        Some(file) => image::Source::read(file, job.field).await?,
        None => image::Source::Text,
    };
    if let image::Source::Pdf = source {
        // Its first page on every chosen page.
        let file = file.expect("a PDF source is a file").to_string_lossy().into_owned();
        return qpdf_in_place(pdf, &[layer.into(), file, to, "--from=".into(), "--repeat=1".into(), "--".into()]).await;
    }
    let sizes = pages::trimmed_sizes(pdf, &chosen).await?;
    let mark_pdf = pdf.with_extension(format!("mark-{}.pdf", docconv::ids::new_id()));
    let _scratch = RemovedOnDrop(vec![mark_pdf.clone()]);
    let drawing = match source {
        image::Source::Text => draw::Drawing::Text(text::Outlines::of(job.mark, job.field).await?),
        image::Source::Image(image) => {
            if image.alpha.is_some() && job.standard == PdfStandard::PdfA1b {
                return Err(Failure::MarkUnusable {
                    field: job.field,
                    reason: "the PNG has transparent parts, which PDF/A-1 forbids: use one without an alpha channel, \
                             or PDF_A_2B"
                        .into(),
                });
            }
            draw::Drawing::Image(image)
        }
        image::Source::Pdf => unreachable!("placed above"),
    };
    let written = draw::write(&drawing, job, &sizes);
    std::fs::write(&mark_pdf, written).map_err(|e| super::tools::tool_failed("marks", &e.to_string()))?;
    let from = format!("--from=1-{}", sizes.len());
    qpdf_in_place(pdf, &[layer.into(), mark_pdf.to_string_lossy().into_owned(), to, from, "--".into()]).await
}
