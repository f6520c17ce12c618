//! A PDF input: opened by qpdf, never by LibreOffice (which would import
//! it into Draw and write a poorer copy). Preparing one leaves a plain,
//! unencrypted PDF of the chosen pages where a converted document's PDF
//! would be, for the same steps after it (`postprocess`).
//!
//! The input's own encryption is not kept: `input_password` opens it, as
//! it opens an office document, and `encryption` protects the result.

use crate::failure::Failure;
use crate::page_ranges;
use crate::postprocess::outline;
use crate::postprocess::tools::{RemovedOnDrop, page_count, qpdf, qpdf_status};
use docconv::proto::v1::ConversionOptions;
use std::path::Path;

/// Writes the PDF input at `input` to `output`, opened with the job's
/// input password, cut to its page ranges, without bookmarks when they
/// are not wanted. Fails as an office document would for a missing,
/// wrong or needless password, and for a file that is not a PDF at all.
pub async fn prepare(input: &Path, output: &Path, options: &ConversionOptions) -> Result<(), Failure> {
    let password = Some(options.input_password.as_str()).filter(|p| !p.is_empty());
    let opened = output.with_extension("opened.pdf");
    let _scratch = RemovedOnDrop(vec![opened.clone()]);
    let mut args: Vec<String> = password.map(|p| format!("--password={p}")).into_iter().collect();
    args.extend(["--decrypt".into(), input.to_string_lossy().into_owned(), opened.to_string_lossy().into_owned()]);
    let status = qpdf_status(output, &args).await?;
    // 0, or 3: warnings about a damaged file qpdf repaired.
    if !matches!(status.status.code(), Some(0 | 3)) {
        let said = String::from_utf8_lossy(&status.stderr);
        tracing::info!("qpdf refused a PDF input: {}", said.trim());
        return Err(match (said.contains("invalid password"), password) {
            (true, None) => Failure::PasswordRequired,
            (true, Some(_)) => Failure::WrongPassword,
            (false, _) => Failure::NotADocument { extension: "pdf".into() },
        });
    }
    if password.is_some() && !is_encrypted(input).await? {
        return Err(Failure::PasswordNotNeeded);
    }
    let pdf = options.pdf.clone().unwrap_or_default();
    if pdf.page_ranges.is_empty() {
        std::fs::rename(&opened, output).map_err(|_| Failure::Unreadable)?;
    } else {
        let pages = page_count(&opened, &[]).await?;
        let chosen = page_ranges::select(&pdf.page_ranges, pages);
        if chosen.is_empty() {
            return Err(Failure::NoPagesSelected { field: "options.pdf.page_ranges", pages });
        }
        let opened_path = opened.to_string_lossy().into_owned();
        let selection = page_ranges::for_qpdf(&chosen);
        let args =
            [opened_path, "--pages".into(), ".".into(), selection, "--".into(), output.to_string_lossy().into_owned()];
        qpdf(output, &args).await?;
    }
    if pdf.export_bookmarks == Some(false) {
        outline::remove(output).await?;
    }
    Ok(())
}

/// Whether `pdf` is encrypted at all (qpdf exits 0 if so, 2 if not).
async fn is_encrypted(pdf: &Path) -> Result<bool, Failure> {
    let status = qpdf_status(pdf, &["--is-encrypted".into(), pdf.to_string_lossy().into_owned()]).await?;
    Ok(status.status.code() == Some(0))
}
