//! Conversion options: checked field by field before a job is queued, then
//! turned into LibreOffice's PDF export filter data (what LibreOffice does
//! while exporting) or left to `postprocess` (what tools do afterwards).
//!
//! LibreOfficeKit takes export settings as a JSON object of typed
//! properties (`{"PageRange": {"type": "string", "value": "2-3"}}`), the
//! same names as the PDF export dialog's settings.

use super::formats::{Kind, Targets};
use docconv::proto::v1::{ConversionOptions, PdfOptions, PdfStandard, pdf_split};
use serde_json::{Map, Value, json};

/// One field that is wrong, and why, as in google.rpc.BadRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

fn violation(field: &str, description: impl Into<String>) -> Violation {
    Violation { field: field.into(), description: description.into() }
}

const RESOLUTIONS: &[u32] = &[75, 150, 300, 600, 1200];
const MAX_TEXT: usize = 256;

/// Checks the target format for the input's kind and every option.
pub fn check(options: &ConversionOptions, target: &str, kind: Kind, targets: &Targets) -> Vec<Violation> {
    let mut violations = Vec::new();
    if !targets.of(kind).contains(&target) {
        violations.push(violation(
            "header.target_format",
            format!("a {} document can become {}, not {target:?}", kind.name(), targets.of(kind).join(", ")),
        ));
    }
    check_text(&mut violations, "options.input_password", &options.input_password);
    if let Some(pdf) = &options.pdf {
        if target != "pdf" {
            violations
                .push(violation("options.pdf", format!("PDF options need target_format \"pdf\", not {target:?}")));
        }
        check_pdf(&mut violations, pdf);
        check_landscape(&mut violations, pdf, kind);
    }
    violations
}

/// What a further document of a merge must satisfy: the merged result is
/// one PDF, and what cannot survive merging is refused rather than lost.
pub fn check_merge(options: &ConversionOptions, target: &str, kind: Kind) -> Vec<Violation> {
    let mut violations = Vec::new();
    if target != "pdf" {
        violations.push(violation("header.target_format", "several documents are merged into one PDF: use \"pdf\""));
    }
    if let Some(pdf) = &options.pdf {
        if pdf.standard != PdfStandard::Unspecified as i32 {
            violations.push(violation("options.pdf.standard", "a merged PDF cannot keep PDF/A conformance"));
        }
        if pdf.universal_access {
            violations.push(violation("options.pdf.universal_access", "a merged PDF cannot keep PDF/UA tagging"));
        }
        if !pdf.page_ranges.is_empty() {
            violations.push(violation(
                "options.pdf.page_ranges",
                "not with several documents; split the result by ranges instead",
            ));
        }
        check_landscape(&mut violations, pdf, kind);
    }
    violations
}

/// Landscape turns the pages of text documents and spreadsheets. Slides
/// and drawings are laid out for their page: turning it would not move a
/// single shape, so they keep their own format.
fn check_landscape(violations: &mut Vec<Violation>, pdf: &PdfOptions, kind: Kind) {
    if pdf.landscape && !matches!(kind, Kind::Text | Kind::Spreadsheet) {
        violations.push(violation(
            "options.pdf.landscape",
            format!("only text documents and spreadsheets can be turned to landscape, not a {} document", kind.name()),
        ));
    }
}

fn check_text(violations: &mut Vec<Violation>, field: &str, text: &str) {
    if text.chars().count() > MAX_TEXT || text.chars().any(char::is_control) {
        violations.push(violation(field, format!("must be at most {MAX_TEXT} characters, without control characters")));
    }
}

fn check_pdf(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if PdfStandard::try_from(pdf.standard).is_err() {
        violations.push(violation("options.pdf.standard", "unknown standard; use PDF_A_1B, PDF_A_2B or PDF_A_3B"));
    }
    if !pdf.page_ranges.is_empty() && !valid_page_ranges(&pdf.page_ranges) {
        violations.push(violation(
            "options.pdf.page_ranges",
            format!(
                "{:?} is not a page range; write e.g. \"2-3\", \"1,4-\" or \"5\" (pages count from 1)",
                pdf.page_ranges
            ),
        ));
    }
    if pdf.image_quality > 100 {
        violations.push(violation("options.pdf.image_quality", "must be between 1 and 100 (0 keeps the default)"));
    }
    if pdf.max_image_resolution != 0 && !RESOLUTIONS.contains(&pdf.max_image_resolution) {
        violations.push(violation(
            "options.pdf.max_image_resolution",
            "must be one of 75, 150, 300, 600 or 1200 DPI (0 keeps the default, 300)",
        ));
    }
    check_text(violations, "options.pdf.watermark", &pdf.watermark);
    if let Some(encryption) = &pdf.encryption {
        check_text(violations, "options.pdf.encryption.open_password", &encryption.open_password);
        check_text(violations, "options.pdf.encryption.owner_password", &encryption.owner_password);
        if encryption.open_password.is_empty() && encryption.owner_password.is_empty() {
            violations.push(violation(
                "options.pdf.encryption",
                "needs an open_password, an owner_password (to restrict permissions), or both",
            ));
        }
        if pdf.standard != PdfStandard::Unspecified as i32 {
            violations.push(violation("options.pdf.encryption", "PDF/A documents cannot be encrypted"));
        }
    }
    if let Some(metadata) = &pdf.metadata {
        check_text(violations, "options.pdf.metadata.title", &metadata.title);
        check_text(violations, "options.pdf.metadata.author", &metadata.author);
        check_text(violations, "options.pdf.metadata.subject", &metadata.subject);
        if metadata.keywords.len() > 32 {
            violations.push(violation("options.pdf.metadata.keywords", "at most 32 keywords"));
        }
        for keyword in &metadata.keywords {
            check_text(violations, "options.pdf.metadata.keywords", keyword);
        }
    }
    if let Some(split) = &pdf.split {
        match &split.by {
            None => violations.push(violation("options.pdf.split", "give every_pages or ranges")),
            Some(pdf_split::By::EveryPages(0)) => {
                violations.push(violation("options.pdf.split.every_pages", "must be at least 1"))
            }
            Some(pdf_split::By::EveryPages(_)) => {}
            Some(pdf_split::By::Ranges(ranges)) => {
                if ranges.ranges.is_empty() || ranges.ranges.len() > 100 {
                    violations.push(violation("options.pdf.split.ranges", "give between 1 and 100 ranges"));
                }
                if let Some(bad) = ranges.ranges.iter().find(|r| !valid_page_ranges(r)) {
                    violations.push(violation(
                        "options.pdf.split.ranges",
                        format!("{bad:?} is not a page range; write e.g. \"1-2\", \"3,5\" or \"6-\""),
                    ));
                }
            }
        }
    }
}

/// "2-3", "1,4-", "5", "-3": comma-separated pages or inclusive ranges,
/// counting from 1, either end of a range may be left open.
fn valid_page_ranges(text: &str) -> bool {
    let page = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n >= 1);
    text.split(',').all(|part| match part.split_once('-') {
        None => page(part).is_some(),
        Some((from, to)) => match (from.trim().is_empty(), to.trim().is_empty()) {
            (true, true) => false,
            (true, false) => page(to).is_some(),
            (false, true) => page(from).is_some(),
            (false, false) => matches!((page(from), page(to)), (Some(a), Some(b)) if a <= b),
        },
    })
}

/// The export filter data for LibreOffice, as LOK's JSON; empty when the
/// defaults do.
pub fn filter_data(options: &ConversionOptions, target: &str) -> String {
    let Some(pdf) = options.pdf.as_ref().filter(|_| target == "pdf") else {
        return String::new();
    };
    let mut data = Map::new();
    let mut set = |name: &str, kind: &str, value: Value| {
        data.insert(name.into(), json!({ "type": kind, "value": value }));
    };
    match pdf.standard() {
        PdfStandard::Unspecified => {}
        PdfStandard::PdfA1b => set("SelectPdfVersion", "long", json!(1)),
        PdfStandard::PdfA2b => set("SelectPdfVersion", "long", json!(2)),
        PdfStandard::PdfA3b => set("SelectPdfVersion", "long", json!(3)),
    }
    if pdf.universal_access {
        set("PDFUACompliance", "boolean", json!(true));
        set("UseTaggedPDF", "boolean", json!(true));
    }
    if !pdf.page_ranges.is_empty() {
        set("PageRange", "string", json!(pdf.page_ranges.replace(' ', "")));
    }
    if pdf.single_page_sheets {
        set("SinglePageSheets", "boolean", json!(true));
    }
    if pdf.image_quality > 0 {
        set("Quality", "long", json!(pdf.image_quality));
    }
    if pdf.max_image_resolution > 0 {
        set("ReduceImageResolution", "boolean", json!(true));
        set("MaxImageResolution", "long", json!(pdf.max_image_resolution));
    }
    if let Some(bookmarks) = pdf.export_bookmarks {
        set("ExportBookmarks", "boolean", json!(bookmarks));
    }
    if let Some(notes) = pdf.export_notes {
        set("ExportNotes", "boolean", json!(notes));
    }
    if let Some(forms) = pdf.export_form_fields {
        set("ExportFormFields", "boolean", json!(forms));
    }
    if !pdf.watermark.is_empty() {
        set("Watermark", "string", json!(pdf.watermark));
    }
    // Encryption, metadata and splitting happen after export (`postprocess`).
    if data.is_empty() { String::new() } else { Value::Object(data).to_string() }
}

/// The options as job states show them: without any password.
pub fn redacted(options: &ConversionOptions) -> ConversionOptions {
    let mut shown = options.clone();
    shown.input_password.clear();
    if let Some(encryption) = shown.pdf.as_mut().and_then(|p| p.encryption.as_mut()) {
        encryption.open_password.clear();
        encryption.owner_password.clear();
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::PdfEncryption;

    fn pdf(edit: impl FnOnce(&mut PdfOptions)) -> ConversionOptions {
        let mut pdf = PdfOptions::default();
        edit(&mut pdf);
        ConversionOptions { pdf: Some(pdf), ..Default::default() }
    }

    fn fields(options: &ConversionOptions, target: &str, kind: Kind) -> Vec<String> {
        let mut targets = Targets::default();
        for kind in Kind::ALL {
            kind.candidates().iter().for_each(|t| targets.add(kind, t));
        }
        check(options, target, kind, &targets).into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn page_ranges_follow_the_print_dialog_syntax() {
        for good in ["1", "2-3", "1,4-", "-3", "1, 3-5 ,7"] {
            assert!(valid_page_ranges(good), "{good}");
        }
        for bad in ["", "0", "3-2", "a", "1-2-3", "-", "1,,2", "1.5"] {
            assert!(!valid_page_ranges(bad), "{bad}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let options = pdf(|p| {
            p.page_ranges = "x".into();
            p.image_quality = 101;
            p.max_image_resolution = 100;
            p.standard = 9;
            p.watermark = "a\u{7}".into();
        });
        assert_eq!(
            fields(&options, "pdf", Kind::Text),
            [
                "options.pdf.standard",
                "options.pdf.page_ranges",
                "options.pdf.image_quality",
                "options.pdf.max_image_resolution",
                "options.pdf.watermark"
            ]
        );
        assert_eq!(fields(&options, "docx", Kind::Text)[0], "options.pdf");
        assert_eq!(fields(&ConversionOptions::default(), "pptx", Kind::Spreadsheet), ["header.target_format"]);
    }

    #[test]
    fn targets_the_probe_did_not_find_are_refused() {
        let mut targets = Targets::default();
        targets.add(Kind::Drawing, "pdf");
        targets.add(Kind::Drawing, "odg");
        let violations = check(&ConversionOptions::default(), "fodg", Kind::Drawing, &targets);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "header.target_format");
        assert_eq!(violations[0].description, "a drawing document can become pdf, odg, not \"fodg\"");
    }

    #[test]
    fn pdf_a_cannot_be_encrypted_and_encryption_needs_a_password() {
        let encrypted = |standard: PdfStandard, open: &str| {
            pdf(|p| {
                p.standard = standard as i32;
                p.encryption = Some(PdfEncryption { open_password: open.into(), ..Default::default() });
            })
        };
        assert_eq!(fields(&encrypted(PdfStandard::PdfA2b, "x"), "pdf", Kind::Text), ["options.pdf.encryption"]);
        assert_eq!(fields(&encrypted(PdfStandard::Unspecified, ""), "pdf", Kind::Text), ["options.pdf.encryption"]);
        assert!(fields(&encrypted(PdfStandard::Unspecified, "x"), "pdf", Kind::Text).is_empty());
    }

    #[test]
    fn filter_data_uses_libreoffice_names_and_types() {
        let options = pdf(|p| {
            p.standard = PdfStandard::PdfA2b as i32;
            p.page_ranges = "2-3".into();
            p.watermark = "DRAFT".into();
            p.export_bookmarks = Some(false);
        });
        let data: Value = serde_json::from_str(&filter_data(&options, "pdf")).unwrap();
        assert_eq!(data["SelectPdfVersion"], json!({"type": "long", "value": 2}));
        assert_eq!(data["PageRange"], json!({"type": "string", "value": "2-3"}));
        assert_eq!(data["Watermark"]["value"], "DRAFT");
        assert_eq!(data["ExportBookmarks"], json!({"type": "boolean", "value": false}));
        assert_eq!(filter_data(&ConversionOptions::default(), "pdf"), "");
        assert_eq!(filter_data(&options, "docx"), "");
    }

    #[test]
    fn job_states_never_show_passwords() {
        let mut options = pdf(|p| {
            p.encryption =
                Some(PdfEncryption { open_password: "o".into(), owner_password: "w".into(), ..Default::default() })
        });
        options.input_password = "secret".into();
        let shown = redacted(&options);
        assert!(shown.input_password.is_empty());
        let encryption = shown.pdf.unwrap().encryption.unwrap();
        assert!(encryption.open_password.is_empty() && encryption.owner_password.is_empty());
    }
}
