//! What a file to embed in the result must satisfy (see
//! `postprocess::attachments`), checked when its header arrives.

use super::{Violation, check_text, violation};
use docconv::proto::v1::{Attachment, AttachmentRelationship, ConversionOptions, PdfStandard};

/// Checks an attachment sent with content type `content_type` (may be
/// empty) into a job with these options.
pub fn check(attachment: &Attachment, content_type: &str, options: &ConversionOptions, target: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    if target != "pdf" {
        violations.push(violation("header.target_format", "files are embedded in PDFs only: use \"pdf\""));
    }
    let standard = options.pdf.as_ref().map_or(PdfStandard::Unspecified, |pdf| pdf.standard());
    // PDF/A-1 forbids embedded files; PDF/A-2 allows only PDF/A files,
    // which an attachment cannot be promised to be; PDF/A-3 allows any.
    if matches!(standard, PdfStandard::PdfA1b | PdfStandard::PdfA2b) {
        violations.push(violation(
            "options.pdf.standard",
            "PDF/A-1 and PDF/A-2 forbid attached files of any kind; use PDF_A_3B to attach files",
        ));
    }
    check_text(&mut violations, "next_document.attachment.description", &attachment.description);
    if AttachmentRelationship::try_from(attachment.relationship).is_err() {
        violations.push(violation(
            "next_document.attachment.relationship",
            "unknown value; use SOURCE, DATA, ALTERNATIVE or SUPPLEMENT",
        ));
    }
    if !content_type.is_empty() && !is_mime_type(content_type) {
        violations.push(violation(
            "next_document.content_type",
            format!("{content_type:?} is not a MIME type such as \"text/xml\" or \"application/json\""),
        ));
    }
    violations
}

/// A bare `type/subtype` of token characters (no parameters: PDF's
/// /Subtype holds only that).
fn is_mime_type(text: &str) -> bool {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    text.len() <= 127 && text.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub))
}

/// The MIME type of a file named `name`, when none was given: the common
/// kinds of attachment, else a byte stream.
pub fn guess_mime_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "xml" => "text/xml",
        "json" => "application/json",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::PdfOptions;

    fn fields(attachment: Attachment, content_type: &str, standard: PdfStandard, target: &str) -> Vec<String> {
        let pdf = PdfOptions { standard: standard as i32, ..Default::default() };
        let options = ConversionOptions { pdf: Some(pdf), ..Default::default() };
        check(&attachment, content_type, &options, target).into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn attachments_need_a_pdf_that_may_hold_them() {
        let plain = Attachment::default();
        assert!(fields(plain.clone(), "", PdfStandard::Unspecified, "pdf").is_empty());
        assert!(fields(plain.clone(), "text/xml", PdfStandard::PdfA3b, "pdf").is_empty());
        assert_eq!(fields(plain.clone(), "", PdfStandard::PdfA2b, "pdf"), ["options.pdf.standard"]);
        assert_eq!(fields(plain.clone(), "", PdfStandard::PdfA1b, "pdf"), ["options.pdf.standard"]);
        assert_eq!(fields(plain, "", PdfStandard::Unspecified, "docx"), ["header.target_format"]);
    }

    #[test]
    fn descriptions_relationships_and_types_are_checked() {
        let bad = Attachment { description: "a\nb".into(), relationship: 9 };
        assert_eq!(
            fields(bad, "text/xml; charset=utf-8", PdfStandard::Unspecified, "pdf"),
            [
                "next_document.attachment.description",
                "next_document.attachment.relationship",
                "next_document.content_type"
            ]
        );
        assert!(is_mime_type("application/vnd.oasis.opendocument.text"));
        assert!(!is_mime_type("text"));
        assert!(!is_mime_type("text/"));
        assert_eq!(guess_mime_type("factur-x.XML"), "text/xml");
        assert_eq!(guess_mime_type("data"), "application/octet-stream");
    }
}
