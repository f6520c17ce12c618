//! Writing the final PDF anew with qpdf: AES-256 encrypted when asked.

use super::tools::qpdf_in_place;
use crate::failure::Failure;
use docconv::proto::v1::PdfEncryption;
use std::path::Path;

/// Writes `pdf` anew, encrypted with `encryption` if given. Passwords
/// travel in an argument file readable only by us, never on a command line
/// other users can see.
///
/// Rewriting also drops earlier revisions: exiftool's edits are
/// incremental updates (reversible by design), which would leave the
/// values it replaced, such as LibreOffice's producer, in the file.
pub async fn rewrite(encryption: Option<&PdfEncryption>, pdf: &Path) -> Result<(), Failure> {
    let Some(encryption) = encryption else {
        return qpdf_in_place(pdf, &[]).await;
    };
    let (owner, print, modify, extract) = if encryption.owner_password.is_empty() {
        // Only an open password: whoever opens the file may do anything,
        // and nobody can change that (the owner password is random).
        (docconv::ids::new_id(), "full", "all", "y")
    } else {
        let yes_no = |allowed: bool| if allowed { "y" } else { "n" };
        (
            encryption.owner_password.clone(),
            if encryption.allow_printing { "full" } else { "none" },
            if encryption.allow_editing { "all" } else { "none" },
            yes_no(encryption.allow_copying),
        )
    };
    let options = [
        "--encrypt".into(),
        encryption.open_password.clone(),
        owner,
        "256".into(),
        format!("--print={print}"),
        format!("--modify={modify}"),
        format!("--extract={extract}"),
    ];
    // `--encrypt` takes its own options up to a "--", which `qpdf_in_place`
    // adds before the output.
    qpdf_in_place(pdf, &options).await
}
