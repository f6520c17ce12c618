//! Conversion options: checked field by field before a job is queued, then
//! turned into LibreOffice's PDF export filter data (what LibreOffice does
//! while exporting) or left to `postprocess` (what tools do afterwards).
//!
//! LibreOfficeKit takes export settings as a JSON object of typed
//! properties (`{"PageRange": {"type": "string", "value": "2-3"}}`), the
//! same names as the PDF export dialog's settings.

mod attachments;
mod catalog;
mod export_switches;
pub mod factur_x;
pub mod invoice_xml;
mod marks;
mod metadata;
mod pdf_input;

pub use attachments::{check as check_attachment, guess_mime_type};
pub use marks::{check_file as check_mark_file, check_files_sent as check_mark_files, parse_color};

use super::formats::{Kind, Targets};
use super::page_ranges;
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
        check_for_kind(&mut violations, pdf, kind);
    }
    violations
}

/// What only some kinds of document can take.
fn check_for_kind(violations: &mut Vec<Violation>, pdf: &PdfOptions, kind: Kind) {
    match kind {
        Kind::Pdf => pdf_input::check(violations, pdf),
        _ => check_landscape(violations, pdf, kind),
    }
    export_switches::check_for_kind(violations, pdf, kind);
}

/// What a further document of a merge must satisfy: the merged result is
/// one PDF, and what cannot survive merging is refused rather than lost.
pub fn check_merge(options: &ConversionOptions, target: &str, kind: Kind) -> Vec<Violation> {
    let mut violations = Vec::new();
    if target != "pdf" {
        violations.push(violation("header.target_format", "several documents are merged into one PDF: use \"pdf\""));
    }
    if let Some(pdf) = &options.pdf {
        // PDF/A and PDF/UA survive merging documents LibreOffice writes so
        // (`postprocess::conforming_merge`); a PDF among them is refused
        // both by `check_for_kind`, as it cannot be promised either.
        if !pdf.page_ranges.is_empty() {
            violations.push(violation(
                "options.pdf.page_ranges",
                "not with several documents; split the result by ranges instead",
            ));
        }
        export_switches::check_merge(&mut violations, pdf);
        factur_x::check_merge(&mut violations, pdf);
        check_for_kind(&mut violations, pdf, kind);
    }
    // A PDF input may be refused what the merge refuses already: each
    // field is named once.
    let mut named = std::collections::HashSet::new();
    violations.retain(|v| named.insert(v.field.clone()));
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

pub(crate) fn check_text(violations: &mut Vec<Violation>, field: &str, text: &str) {
    if text.chars().count() > MAX_TEXT || text.chars().any(char::is_control) {
        violations.push(violation(field, format!("must be at most {MAX_TEXT} characters, without control characters")));
    }
}

fn check_pdf(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if PdfStandard::try_from(pdf.standard).is_err() {
        violations.push(violation("options.pdf.standard", "unknown standard; use PDF_A_1B, PDF_A_2B or PDF_A_3B"));
    }
    if !pdf.page_ranges.is_empty() && !page_ranges::is_valid(&pdf.page_ranges) {
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
    export_switches::check(violations, pdf);
    if let Some(metadata) = &pdf.metadata {
        metadata::check(violations, metadata);
    }
    factur_x::check(violations, pdf);
    marks::check(violations, pdf);
    catalog::check(violations, pdf);
    if let Some(rotate) = &pdf.rotate {
        if ![90, 180, 270].contains(&rotate.degrees) {
            violations.push(violation("options.pdf.rotate.degrees", "must be 90, 180 or 270 (clockwise)"));
        }
        if !rotate.pages.is_empty() && !page_ranges::is_valid(&rotate.pages) {
            violations.push(violation(
                "options.pdf.rotate.pages",
                format!(
                    "{:?} is not a page range; write e.g. \"1\", \"2-3\" or \"4-\" (empty: every page)",
                    rotate.pages
                ),
            ));
        }
    }
    if pdf.flatten && pdf.universal_access {
        violations.push(violation(
            "options.pdf.flatten",
            "not with universal_access: flattened fields and comments become untagged page content, which PDF/UA forbids",
        ));
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
                if let Some(bad) = ranges.ranges.iter().find(|r| !page_ranges::is_valid(r)) {
                    violations.push(violation(
                        "options.pdf.split.ranges",
                        format!("{bad:?} is not a page range; write e.g. \"1-2\", \"3,5\" or \"6-\""),
                    ));
                }
            }
        }
    }
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
    match factur_x::standard(pdf) {
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
    export_switches::filter_data(pdf, &mut set);
    // Everything else happens after export (`postprocess`).
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
    use docconv::proto::v1::{PdfEncryption, PdfRotate};

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
    fn a_pdf_input_is_refused_what_only_libreoffice_does() {
        let everything = pdf(|p| {
            p.standard = PdfStandard::PdfA2b as i32;
            p.universal_access = true;
            p.single_page_sheets = true;
            p.image_quality = 80;
            p.max_image_resolution = 150;
            p.export_notes = Some(false);
            p.export_form_fields = Some(false);
            p.watermark = "DRAFT".into();
            p.landscape = true;
        });
        assert_eq!(
            fields(&everything, "pdf", Kind::Pdf),
            [
                "options.pdf.standard",
                "options.pdf.universal_access",
                "options.pdf.single_page_sheets",
                "options.pdf.image_quality",
                "options.pdf.max_image_resolution",
                "options.pdf.export_notes",
                "options.pdf.export_form_fields",
                "options.pdf.watermark",
                "options.pdf.landscape"
            ]
        );
        // What tools do to a finished PDF is fine.
        let tools = pdf(|p| {
            p.page_ranges = "2-".into();
            p.export_bookmarks = Some(false);
            p.export_notes = Some(true);
            p.flatten = true;
            p.rotate = Some(PdfRotate { degrees: 90, pages: "1".into() });
            p.encryption = Some(PdfEncryption { open_password: "x".into(), ..Default::default() });
        });
        assert!(fields(&tools, "pdf", Kind::Pdf).is_empty());
        assert_eq!(fields(&ConversionOptions::default(), "docx", Kind::Pdf), ["header.target_format"]);
        // A merge of documents may be PDF/A and PDF/UA; not with a PDF
        // among them, named once for each field.
        let archival = pdf(|p| {
            p.standard = PdfStandard::PdfA2b as i32;
            p.universal_access = true;
            p.page_ranges = "1".into();
        });
        let merged =
            |kind| -> Vec<String> { check_merge(&archival, "pdf", kind).into_iter().map(|v| v.field).collect() };
        assert_eq!(
            merged(Kind::Pdf),
            ["options.pdf.page_ranges", "options.pdf.standard", "options.pdf.universal_access"]
        );
        assert_eq!(merged(Kind::Spreadsheet), ["options.pdf.page_ranges"]);
        let sharp = pdf(|p| p.image_quality = 90);
        let merged: Vec<String> = check_merge(&sharp, "pdf", Kind::Pdf).into_iter().map(|v| v.field).collect();
        assert_eq!(merged, ["options.pdf.image_quality"]);
    }

    #[test]
    fn rotation_and_flattening_are_checked() {
        let turned = |degrees, pages: &str| pdf(|p| p.rotate = Some(PdfRotate { degrees, pages: pages.into() }));
        assert!(fields(&turned(270, ""), "pdf", Kind::Text).is_empty());
        assert_eq!(fields(&turned(45, ""), "pdf", Kind::Text), ["options.pdf.rotate.degrees"]);
        assert_eq!(fields(&turned(0, "1"), "pdf", Kind::Text), ["options.pdf.rotate.degrees"]);
        assert_eq!(fields(&turned(90, "2-1"), "pdf", Kind::Text), ["options.pdf.rotate.pages"]);
        let flat_ua = pdf(|p| {
            p.flatten = true;
            p.universal_access = true;
        });
        assert_eq!(fields(&flat_ua, "pdf", Kind::Text), ["options.pdf.flatten"]);
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
    fn an_invoice_is_pdf_a_3_made_by_libreoffice() {
        use docconv::proto::v1::{FacturXLevel, PdfFacturX};
        let invoice = pdf(|p| {
            p.factur_x = Some(PdfFacturX { conformance_level: FacturXLevel::Basic as i32, ..Default::default() })
        });
        assert!(fields(&invoice, "pdf", Kind::Text).is_empty());
        let data: Value = serde_json::from_str(&filter_data(&invoice, "pdf")).unwrap();
        assert_eq!(data["SelectPdfVersion"], json!({"type": "long", "value": 3}));
        assert_eq!(fields(&invoice, "pdf", Kind::Pdf), ["options.pdf.factur_x"]);
        let merged: Vec<String> = check_merge(&invoice, "pdf", Kind::Text).into_iter().map(|v| v.field).collect();
        assert_eq!(merged, ["options.pdf.factur_x"]);
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
