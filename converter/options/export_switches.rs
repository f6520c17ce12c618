//! LibreOffice's PDF export switches: settings LibreOffice applies while
//! it writes the PDF, each a key of the export filter data. Each acts on
//! one kind of document (slides, text, images, forms), so asking for one
//! where it has nothing to act on is refused, naming the field, rather than
//! quietly doing nothing: a user asking for notes pages of a spreadsheet
//! would otherwise get a PDF without them and no word why.

use super::{Violation, violation};
use crate::formats::Kind;
use docconv::proto::v1::{PdfOptions, PdfStandard};
use serde_json::{Value, json};

/// Combinations that contradict each other, whatever the document.
pub fn check(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if pdf.export_only_notes_pages && !pdf.export_notes_pages {
        violations.push(violation(
            "options.pdf.export_only_notes_pages",
            "needs export_notes_pages: it leaves the slides out of the notes pages export",
        ));
    }
    if pdf.lossless_images && pdf.image_quality != 0 {
        violations.push(violation(
            "options.pdf.lossless_images",
            "not with image_quality, which sets the quality of JPEG compression that lossless images do not use",
        ));
    }
    if pdf.keep_image_resolution && pdf.max_image_resolution != 0 {
        violations.push(violation(
            "options.pdf.keep_image_resolution",
            "not with max_image_resolution, which lowers the resolution this keeps",
        ));
    }
    if pdf.embed_original {
        if pdf.standard != PdfStandard::Unspecified as i32 {
            violations.push(violation(
                "options.pdf.embed_original",
                "not with a PDF/A standard: LibreOffice does not embed the document into PDF/A",
            ));
        }
        if pdf.split.is_some() {
            violations.push(violation(
                "options.pdf.embed_original",
                "not with split: each part would carry the whole document it is only a piece of",
            ));
        }
    }
}

/// What a document of `kind` cannot take.
pub fn check_for_kind(violations: &mut Vec<Violation>, pdf: &PdfOptions, kind: Kind) {
    let mut refuse = |field: &str, acts_on: &str| {
        let why = match kind {
            Kind::Pdf => super::pdf_input::NOT_CONVERTED.into(),
            kind => format!("it applies to {acts_on}, and this is a {} document", kind.name()),
        };
        violations.push(violation(&format!("options.pdf.{field}"), why));
    };
    if kind != Kind::Presentation {
        let slides = "presentations";
        if pdf.export_hidden_slides {
            refuse("export_hidden_slides", slides);
        }
        if pdf.export_notes_pages {
            refuse("export_notes_pages", slides);
        }
        if pdf.export_only_notes_pages {
            refuse("export_only_notes_pages", slides);
        }
    }
    if kind != Kind::Text {
        let text = "text documents";
        if pdf.skip_empty_pages.is_some() {
            refuse("skip_empty_pages", text);
        }
        if pdf.export_placeholders {
            refuse("export_placeholders", text);
        }
    }
    if kind == Kind::Pdf {
        let any = "documents LibreOffice converts";
        for (set, field) in [
            (pdf.lossless_images, "lossless_images"),
            (pdf.keep_image_resolution, "keep_image_resolution"),
            (pdf.named_destinations, "named_destinations"),
            (pdf.allow_duplicate_field_names, "allow_duplicate_field_names"),
            (pdf.embed_original, "embed_original"),
        ] {
            if set {
                refuse(field, any);
            }
        }
    }
}

/// What a merge cannot keep.
pub fn check_merge(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if pdf.embed_original {
        violations.push(violation(
            "options.pdf.embed_original",
            "not with several documents: a merged PDF has no single original to embed",
        ));
    }
}

/// Adds the switches that differ from LibreOffice's defaults to the
/// export filter data, through `set(name, type, value)`.
pub fn filter_data(pdf: &PdfOptions, set: &mut impl FnMut(&str, &str, Value)) {
    let switches = [
        (pdf.export_hidden_slides, "ExportHiddenSlides"),
        (pdf.export_notes_pages, "ExportNotesPages"),
        (pdf.export_only_notes_pages, "ExportOnlyNotesPages"),
        (pdf.export_placeholders, "ExportPlaceholders"),
        (pdf.lossless_images, "UseLosslessCompression"),
        (pdf.named_destinations, "ExportBookmarksToPDFDestination"),
        (pdf.allow_duplicate_field_names, "AllowDuplicateFieldNames"),
        (pdf.embed_original, "IsAddStream"),
    ];
    for (on, name) in switches {
        if on {
            set(name, "boolean", json!(true));
        }
    }
    if let Some(skip) = pdf.skip_empty_pages {
        set("IsSkipEmptyPages", "boolean", json!(skip));
    }
    if pdf.keep_image_resolution {
        set("ReduceImageResolution", "boolean", json!(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pdf: &PdfOptions, kind: Kind) -> Vec<String> {
        let mut violations = Vec::new();
        check(&mut violations, pdf);
        check_for_kind(&mut violations, pdf, kind);
        violations.into_iter().map(|v| v.field).collect()
    }

    fn every_switch() -> PdfOptions {
        PdfOptions {
            export_hidden_slides: true,
            export_notes_pages: true,
            export_only_notes_pages: true,
            skip_empty_pages: Some(false),
            export_placeholders: true,
            lossless_images: true,
            named_destinations: true,
            allow_duplicate_field_names: true,
            embed_original: true,
            keep_image_resolution: true,
            ..Default::default()
        }
    }

    #[test]
    fn each_switch_is_refused_where_it_has_nothing_to_act_on() {
        let all = every_switch();
        assert_eq!(
            fields(&all, Kind::Presentation),
            ["options.pdf.skip_empty_pages", "options.pdf.export_placeholders"]
        );
        assert_eq!(
            fields(&all, Kind::Text),
            [
                "options.pdf.export_hidden_slides",
                "options.pdf.export_notes_pages",
                "options.pdf.export_only_notes_pages"
            ]
        );
        assert_eq!(fields(&all, Kind::Pdf).len(), 10, "LibreOffice never sees a PDF input");
        let general = PdfOptions { lossless_images: true, named_destinations: true, ..Default::default() };
        for kind in [Kind::Text, Kind::Spreadsheet, Kind::Presentation, Kind::Drawing] {
            assert!(fields(&general, kind).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn contradictions_are_refused() {
        let only_notes = PdfOptions { export_only_notes_pages: true, ..Default::default() };
        assert_eq!(fields(&only_notes, Kind::Presentation), ["options.pdf.export_only_notes_pages"]);
        let jpeg = PdfOptions { lossless_images: true, image_quality: 80, ..Default::default() };
        assert_eq!(fields(&jpeg, Kind::Text), ["options.pdf.lossless_images"]);
        let lowered = PdfOptions { keep_image_resolution: true, max_image_resolution: 150, ..Default::default() };
        assert_eq!(fields(&lowered, Kind::Text), ["options.pdf.keep_image_resolution"]);
        let archived = PdfOptions { embed_original: true, standard: PdfStandard::PdfA3b as i32, ..Default::default() };
        assert_eq!(fields(&archived, Kind::Text), ["options.pdf.embed_original"]);
        let mut merged = Vec::new();
        check_merge(&mut merged, &archived);
        assert_eq!(merged.len(), 1);
    }

    #[test]
    fn only_switches_that_differ_from_libreoffice_are_sent() {
        let mut sent = serde_json::Map::new();
        filter_data(&PdfOptions::default(), &mut |name, _, value| {
            sent.insert(name.into(), value);
        });
        assert!(sent.is_empty());
        filter_data(&every_switch(), &mut |name, kind, value| {
            assert_eq!(kind, "boolean");
            sent.insert(name.into(), value);
        });
        assert_eq!(sent["IsSkipEmptyPages"], json!(false));
        assert_eq!(sent["ReduceImageResolution"], json!(false));
        assert_eq!(sent["IsAddStream"], json!(true));
        assert_eq!(sent.len(), 10);
    }
}
