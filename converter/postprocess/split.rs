//! Splitting a finished PDF into a zip of parts. Each part is the whole
//! document with the other pages left out (qpdf's page selection with the
//! document itself as the primary input), so it keeps what the whole has:
//! encryption, the document information, XMP metadata, attachments, PDF/A
//! output intents and the PDF/UA structure tree. (`qpdf --split-pages`
//! writes bare documents.)

use super::tools::{page_count, qpdf, tool_failed};
use crate::failure::Failure;
use crate::page_ranges;
use docconv::proto::v1::{PdfSplit, pdf_split};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Splits into parts and packs them into a zip next to `pdf`.
pub async fn to_zip(split: &PdfSplit, pdf: &Path, password: Option<&str>) -> Result<PathBuf, Failure> {
    let parts_dir = pdf.with_extension("parts");
    let _ = std::fs::remove_dir_all(&parts_dir);
    std::fs::create_dir_all(&parts_dir).map_err(|e| tool_failed("split", &e.to_string()))?;
    let mut common = Vec::new();
    if let Some(password) = password {
        common.push(format!("--password={password}"));
    }
    let pages = page_count(pdf, &common).await?;
    let ranges: Vec<String> = match &split.by {
        Some(pdf_split::By::EveryPages(every)) => {
            let every = (*every).max(1);
            (1..=pages)
                .step_by(every as usize)
                .map(|first| format!("{first}-{}", (first + every - 1).min(pages)))
                .collect()
        }
        Some(pdf_split::By::Ranges(ranges)) => {
            let mut parts = Vec::with_capacity(ranges.ranges.len());
            for range in &ranges.ranges {
                let selected = page_ranges::select(range, pages);
                if selected.is_empty() {
                    return Err(Failure::NoPagesSelected { field: "options.pdf.split.ranges", pages });
                }
                parts.push(page_ranges::for_qpdf(&selected));
            }
            parts
        }
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
