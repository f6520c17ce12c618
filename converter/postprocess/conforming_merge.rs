//! Merging documents that LibreOffice wrote as PDF/A or PDF/UA into one
//! file that still is. The first document is qpdf's primary input rather
//! than an empty file, so its catalog stays the merged file's: the XMP
//! metadata declaring the standard (pdfaid, pdfuaid), the one output
//! intent, /MarkInfo, /Lang and viewer preferences; and its document
//! information, which agrees with that XMP, with it. The structure trees
//! of all documents become one (`structure.rs`); qpdf writes the document
//! ID. Every document was written with the same options, so all claim the
//! same standard.

use super::structure;
use super::tools::qpdf;
use crate::failure::Failure;
use std::path::{Path, PathBuf};

/// Joins `parts` (at least two) into `merged`, in order.
pub async fn merge(parts: &[PathBuf], merged: &Path) -> Result<(), Failure> {
    let prepared = structure::prepare(parts).await?;
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    let mut args = vec![path(&prepared.inputs[0]), "--pages".into(), ".".into()];
    args.extend(prepared.inputs[1..].iter().map(path));
    args.extend(["--".into(), merged.to_string_lossy().into_owned()]);
    qpdf(merged, &args).await?;
    match &prepared.trees {
        Some(trees) => structure::join(merged, trees).await,
        None => Ok(()),
    }
}
