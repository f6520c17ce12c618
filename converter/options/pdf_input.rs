//! What a PDF input cannot take. LibreOffice never opens a PDF input (it
//! would import it into Draw and write a poorer copy), so the options it
//! applies while writing a PDF have nothing to act on: they are refused,
//! each with what to do instead, rather than silently ignored.

use super::{Violation, violation};
use docconv::proto::v1::{PdfOptions, PdfStandard};

/// Said of every refusal: why LibreOffice's options do not reach a PDF.
pub(super) const NOT_CONVERTED: &str =
    "a PDF input is taken as it is, never converted by LibreOffice, which applies this";

pub fn check(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    let mut refuse = |field: &str, instead: &str| {
        violations.push(violation(&format!("options.pdf.{field}"), format!("{NOT_CONVERTED}; {instead}")));
    };
    if pdf.standard != PdfStandard::Unspecified as i32 {
        refuse("standard", "submit the original document to get PDF/A");
    }
    if pdf.universal_access {
        refuse("universal_access", "submit the original document to get a tagged PDF/UA");
    }
    if pdf.single_page_sheets {
        refuse("single_page_sheets", "its pages are laid out already");
    }
    if pdf.image_quality != 0 {
        refuse("image_quality", "its images are kept as they are");
    }
    if pdf.max_image_resolution != 0 {
        refuse("max_image_resolution", "its images are kept as they are");
    }
    // Keeping comments and form fields is what happens anyway; removing
    // them is not something the tools do, flattening is.
    if pdf.export_notes == Some(false) {
        refuse("export_notes", "its comments are kept; flatten takes them out, drawn into the pages if they can be");
    }
    if pdf.export_form_fields == Some(false) {
        refuse("export_form_fields", "its form fields are kept; flatten draws them into the pages");
    }
    if !pdf.watermark.is_empty() {
        refuse("watermark", "background draws text on the finished pages of any input");
    }
    if pdf.landscape {
        refuse("landscape", "its pages are laid out already; rotate turns them");
    }
    if pdf.factur_x.is_some() {
        refuse("factur_x", "a Factur-X invoice is PDF/A-3: submit the original document with the invoice's XML");
    }
}
