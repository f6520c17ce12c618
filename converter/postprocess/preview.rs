//! Previews: a small PNG of a PDF result's first page, by pdftoppm.

use super::tools::{RemovedOnDrop, qpdf, run_tool, tool_failed};
use crate::failure::Failure;
use std::path::{Path, PathBuf};

/// Renders a small PNG of the first page of `pdf` into `png`. An
/// encrypted PDF is first decrypted into a temporary copy (the password goes
/// through an argument file; pdftoppm would need it on its command line).
pub async fn render(pdf: &Path, png: &Path, password: Option<&str>) -> Result<(), Failure> {
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
