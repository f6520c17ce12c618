//! Splitting a finished PDF into a zip of parts. Each part is the whole
//! document with the other pages left out (qpdf's page selection with the
//! document itself as the primary input), so it keeps what the whole has:
//! the document information, XMP metadata, attachments, viewer
//! preferences, PDF/A output intents and the PDF/UA structure tree.
//! (`qpdf --split-pages` writes bare documents.) Parts are made from the
//! unencrypted whole, then fitted (`part`) and encrypted one by one.

use super::tools::{page_count, qpdf, tool_failed};
use crate::failure::Failure;
use crate::page_ranges;
use docconv::proto::v1::{PdfSplit, pdf_split};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One part: its file and the whole's pages (from 1) it holds.
pub struct Part {
    pub path: PathBuf,
    pub pages: Vec<u32>,
}

/// Splits `pdf` into parts, in a folder next to it.
pub async fn parts(split: &PdfSplit, pdf: &Path) -> Result<Vec<Part>, Failure> {
    let parts_dir = pdf.with_extension("parts");
    let _ = std::fs::remove_dir_all(&parts_dir);
    std::fs::create_dir_all(&parts_dir).map_err(|e| tool_failed("split", &e.to_string()))?;
    let pages = page_count(pdf, &[]).await?;
    let selections: Vec<Vec<u32>> = match &split.by {
        Some(pdf_split::By::EveryPages(every)) => {
            let every = (*every).max(1);
            (1..=pages)
                .step_by(every as usize)
                .map(|first| (first..=(first + every - 1).min(pages)).collect())
                .collect()
        }
        Some(pdf_split::By::Ranges(ranges)) => {
            let mut parts = Vec::with_capacity(ranges.ranges.len());
            for range in &ranges.ranges {
                let selected = page_ranges::select(range, pages);
                if selected.is_empty() {
                    return Err(Failure::NoPagesSelected { field: "options.pdf.split.ranges", pages });
                }
                parts.push(selected);
            }
            parts
        }
        None => return Err(tool_failed("split", "no split given")),
    };
    let mut parts = Vec::with_capacity(selections.len());
    for (index, selected) in selections.into_iter().enumerate() {
        let path = parts_dir.join(format!("part-{:03}.pdf", index + 1));
        let args = [
            pdf.to_string_lossy().into_owned(),
            "--pages".into(),
            ".".into(),
            page_ranges::for_qpdf(&selected),
            "--".into(),
            path.to_string_lossy().into_owned(),
        ];
        qpdf(pdf, &args).await?;
        parts.push(Part { path, pages: selected });
    }
    Ok(parts)
}

/// Packs `parts` of `pdf` into a zip next to it, and removes them.
pub async fn to_zip(parts: Vec<Part>, pdf: &Path) -> Result<PathBuf, Failure> {
    let zip_path = pdf.with_extension("zip");
    let stem = pdf.file_stem().and_then(|s| s.to_str()).unwrap_or("part").to_owned();
    let paths: Vec<PathBuf> = parts.into_iter().map(|p| p.path).collect();
    let zip = zip_path.clone();
    tokio::task::spawn_blocking(move || zip_parts(&paths, &zip, &stem))
        .await
        .map_err(|e| tool_failed("zip", &e.to_string()))?
        .map_err(|e| tool_failed("zip", &e.to_string()))?;
    let _ = std::fs::remove_dir_all(pdf.with_extension("parts"));
    Ok(zip_path)
}

/// Stores (no compression: PDFs are compressed already) each part, in
/// order, as `<stem>-<n>.pdf`.
fn zip_parts(parts: &[PathBuf], zip_path: &Path, stem: &str) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(zip_path)?);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (index, part) in parts.iter().enumerate() {
        zip.start_file(format!("{stem}-{}.pdf", index + 1), stored)?;
        zip.write_all(&std::fs::read(part)?)?;
    }
    zip.finish()?.sync_all()
}
