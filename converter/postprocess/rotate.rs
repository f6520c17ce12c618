//! Turning pages of the result, with qpdf: each chosen page's /Rotate
//! grows by the angle, so pages already turned stay right relative to it.

use super::tools::{page_count, qpdf_in_place};
use crate::failure::Failure;
use crate::page_ranges;
use docconv::proto::v1::PdfRotate;
use std::path::Path;

pub async fn rotate(rotate: &PdfRotate, pdf: &Path) -> Result<(), Failure> {
    let pages = page_count(pdf, &[]).await?;
    let chosen = match rotate.pages.as_str() {
        "" => (1..=pages).collect(),
        text => page_ranges::select(text, pages),
    };
    if chosen.is_empty() {
        return Err(Failure::NoPagesSelected { field: "options.pdf.rotate.pages", pages });
    }
    let turn = format!("--rotate=+{}:{}", rotate.degrees, page_ranges::for_qpdf(&chosen));
    qpdf_in_place(pdf, &[turn]).await
}
