//! Flattening: form fields and annotations drawn into the page content by
//! qpdf, so the result looks the same everywhere and can no longer be
//! filled in or edited. Fields without an appearance of their own (a PDF
//! that asks readers to draw them) get one first, or they would vanish.

use super::tools::qpdf_in_place;
use crate::failure::Failure;
use std::path::Path;

pub async fn flatten(pdf: &Path) -> Result<(), Failure> {
    let options = ["--generate-appearances".to_owned(), "--flatten-annotations=all".to_owned()];
    qpdf_in_place(pdf, &options).await
}
