//! Factur-X (ZUGFeRD 2) invoices: what `pdf.factur_x` must satisfy, which
//! attachment is the invoice's XML, and the names the standard fixes for
//! the embedded file and the XMP values (see `postprocess::factur_x`).
//!
//! A Factur-X PDF is a PDF/A-3 document carrying one XML invoice, so
//! everything that would keep the result from being one PDF/A-3 written by
//! LibreOffice is refused: another standard, encryption, a split (each
//! part would carry the whole invoice while showing only some of its
//! pages: several PDFs claiming one invoice), a merge and a PDF input.

use super::{Violation, check_text, violation};
use docconv::proto::v1::{
    AttachmentRelationship, FacturXDocumentType, FacturXLevel, PdfFacturX, PdfOptions, PdfStandard,
};

const FIELD: &str = "options.pdf.factur_x";
/// The version written when none is given: Factur-X 1.0 (ZUGFeRD 2.1 and
/// later use the same XMP schema and version).
pub const DEFAULT_VERSION: &str = "1.0";

pub fn check(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    let Some(factur_x) = &pdf.factur_x else { return };
    match FacturXLevel::try_from(factur_x.conformance_level) {
        Ok(FacturXLevel::Unspecified) => violations.push(violation(
            &format!("{FIELD}.conformance_level"),
            "required: the profile the invoice's XML follows (MINIMUM, BASIC_WL, BASIC, EN16931, EXTENDED or XRECHNUNG)",
        )),
        Ok(_) => {}
        Err(_) => violations.push(violation(
            &format!("{FIELD}.conformance_level"),
            "unknown value; use MINIMUM, BASIC_WL, BASIC, EN16931, EXTENDED or XRECHNUNG",
        )),
    }
    if FacturXDocumentType::try_from(factur_x.document_type).is_err() {
        violations.push(violation(
            &format!("{FIELD}.document_type"),
            "unknown value; use INVOICE, ORDER, ORDER_RESPONSE or ORDER_CHANGE",
        ));
    }
    let version = &factur_x.version;
    check_text(violations, &format!("{FIELD}.version"), version);
    let well_formed = version.len() <= 8
        && version.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !version.is_empty() && !well_formed {
        violations
            .push(violation(&format!("{FIELD}.version"), format!("{version:?} is not a version such as \"1.0\"")));
    }
    match pdf.standard() {
        PdfStandard::Unspecified | PdfStandard::PdfA3b => {}
        _ => violations.push(violation(
            "options.pdf.standard",
            "not with factur_x: a Factur-X invoice is PDF/A-3b (leave standard unspecified or use PDF_A_3B)",
        )),
    }
    // With a standard set, encryption is refused for PDF/A already.
    if pdf.encryption.is_some() && pdf.standard() == PdfStandard::Unspecified {
        violations.push(violation(
            "options.pdf.encryption",
            "not with factur_x: a Factur-X invoice is PDF/A-3, which cannot be encrypted",
        ));
    }
    if pdf.split.is_some() {
        violations.push(violation(
            "options.pdf.split",
            "not with factur_x: every part would carry the whole invoice's XML while showing only some of its pages",
        ));
    }
}

/// A merged PDF is written by qpdf, not LibreOffice, and is not PDF/A.
pub fn check_merge(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if pdf.factur_x.is_some() {
        violations.push(violation(
            FIELD,
            "not with several documents: a merged PDF cannot keep the PDF/A-3 conformance a Factur-X invoice needs",
        ));
    }
}

/// The standard LibreOffice writes to: PDF/A-3b for an invoice whose
/// options name none.
pub fn standard(pdf: &PdfOptions) -> PdfStandard {
    match pdf.standard() {
        PdfStandard::Unspecified if pdf.factur_x.is_some() => PdfStandard::PdfA3b,
        standard => standard,
    }
}

/// Whether an attachment is XML, and so the invoice of a Factur-X job: its
/// content type says so, or, without one, its name does.
pub fn is_xml(file_name: &str, content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(essence.as_str(), "text/xml" | "application/xml")
        || essence.ends_with("+xml")
        || file_name.to_ascii_lowercase().ends_with(".xml")
}

/// The name the invoice is embedded under, fixed by the standard (readers
/// look for it).
pub fn file_name(factur_x: &PdfFacturX) -> &'static str {
    match factur_x.conformance_level() {
        FacturXLevel::Xrechnung => "xrechnung.xml",
        _ => "factur-x.xml",
    }
}

/// How the invoice relates to the document: Factur-X allows Data (the
/// PDF shows what the XML says), Alternative (as Germany uses it) and
/// Source; Data unless the attachment chose one of the others.
pub fn relationship(given: AttachmentRelationship) -> Result<AttachmentRelationship, Violation> {
    match given {
        AttachmentRelationship::Unspecified | AttachmentRelationship::Data => Ok(AttachmentRelationship::Data),
        AttachmentRelationship::Alternative | AttachmentRelationship::Source => Ok(given),
        AttachmentRelationship::Supplement => Err(violation(
            "next_document.attachment.relationship",
            "the Factur-X invoice's XML is DATA, ALTERNATIVE or SOURCE to the document, not SUPPLEMENT",
        )),
    }
}

/// Whether `guideline`, the profile an invoice's XML declares
/// (GuidelineSpecifiedDocumentContextParameter/ID), is the level of
/// `factur_x`. The identifiers end in the profile's name (Factur-X's
/// `urn:factur-x.eu:1p0:…` and ZUGFeRD 2's `urn:zugferd.de:2p0:…` alike),
/// except EN 16931's, which is the norm's own; XRechnung's carries a
/// version of its own.
pub fn declares(factur_x: &PdfFacturX, guideline: &str) -> bool {
    match factur_x.conformance_level() {
        FacturXLevel::Unspecified | FacturXLevel::En16931 => guideline == "urn:cen.eu:en16931:2017",
        FacturXLevel::Minimum => guideline.ends_with(":minimum"),
        FacturXLevel::BasicWl => guideline.ends_with(":basicwl"),
        FacturXLevel::Basic => guideline.ends_with(":basic"),
        FacturXLevel::Extended => guideline.ends_with(":extended"),
        FacturXLevel::Xrechnung => guideline.contains(":xrechnung"),
    }
}

/// fx:ConformanceLevel, as the standard spells it.
pub fn level_name(factur_x: &PdfFacturX) -> &'static str {
    match factur_x.conformance_level() {
        FacturXLevel::Unspecified | FacturXLevel::En16931 => "EN 16931",
        FacturXLevel::Minimum => "MINIMUM",
        FacturXLevel::BasicWl => "BASIC WL",
        FacturXLevel::Basic => "BASIC",
        FacturXLevel::Extended => "EXTENDED",
        FacturXLevel::Xrechnung => "XRECHNUNG",
    }
}

/// fx:DocumentType.
pub fn document_type_name(factur_x: &PdfFacturX) -> &'static str {
    match factur_x.document_type() {
        FacturXDocumentType::Unspecified | FacturXDocumentType::Invoice => "INVOICE",
        FacturXDocumentType::Order => "ORDER",
        FacturXDocumentType::OrderResponse => "ORDER_RESPONSE",
        FacturXDocumentType::OrderChange => "ORDER_CHANGE",
    }
}

/// fx:Version.
pub fn version(factur_x: &PdfFacturX) -> &str {
    if factur_x.version.is_empty() { DEFAULT_VERSION } else { &factur_x.version }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::{PdfEncryption, PdfSplit, pdf_split};

    #[test]
    fn each_level_knows_its_guideline() {
        let at = |level: FacturXLevel| PdfFacturX { conformance_level: level as i32, ..Default::default() };
        let guidelines = [
            (FacturXLevel::Minimum, "urn:factur-x.eu:1p0:minimum"),
            (FacturXLevel::BasicWl, "urn:factur-x.eu:1p0:basicwl"),
            (FacturXLevel::Basic, "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic"),
            (FacturXLevel::En16931, "urn:cen.eu:en16931:2017"),
            (FacturXLevel::Extended, "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended"),
            (FacturXLevel::Xrechnung, "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.3"),
        ];
        for (level, guideline) in guidelines {
            for (other, _) in guidelines {
                assert_eq!(declares(&at(other), guideline), other == level, "{other:?} for {guideline}");
            }
        }
        assert!(declares(&at(FacturXLevel::Basic), "urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic"));
        assert!(!declares(&at(FacturXLevel::Minimum), ""));
    }

    fn fields(edit: impl FnOnce(&mut PdfOptions)) -> Vec<String> {
        let factur_x = PdfFacturX { conformance_level: FacturXLevel::En16931 as i32, ..Default::default() };
        let mut pdf = PdfOptions { factur_x: Some(factur_x), ..Default::default() };
        edit(&mut pdf);
        let mut violations = Vec::new();
        check(&mut violations, &pdf);
        violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn an_invoice_is_one_unencrypted_pdf_a_3() {
        assert!(fields(|_| {}).is_empty());
        assert!(fields(|p| p.standard = PdfStandard::PdfA3b as i32).is_empty());
        assert_eq!(fields(|p| p.standard = PdfStandard::PdfA2b as i32), ["options.pdf.standard"]);
        let encrypted = PdfEncryption { open_password: "x".into(), ..Default::default() };
        assert_eq!(fields(|p| p.encryption = Some(encrypted)), ["options.pdf.encryption"]);
        let split = PdfSplit { by: Some(pdf_split::By::EveryPages(1)) };
        assert_eq!(fields(|p| p.split = Some(split)), ["options.pdf.split"]);
        assert!(fields(|p| p.factur_x = None).is_empty());
        let mut violations = Vec::new();
        check_merge(&mut violations, &PdfOptions { factur_x: Some(PdfFacturX::default()), ..Default::default() });
        assert_eq!(violations[0].field, "options.pdf.factur_x");
    }

    #[test]
    fn each_bad_value_is_named() {
        let fx = |edit: fn(&mut PdfFacturX)| fields(|p| edit(p.factur_x.as_mut().unwrap()));
        assert_eq!(fx(|f| f.conformance_level = 0), ["options.pdf.factur_x.conformance_level"]);
        assert_eq!(fx(|f| f.conformance_level = 42), ["options.pdf.factur_x.conformance_level"]);
        assert_eq!(fx(|f| f.document_type = 9), ["options.pdf.factur_x.document_type"]);
        assert!(fx(|f| f.version = "2.3.1".into()).is_empty());
        for bad in ["1.", "v1", "1..0", "1.0000000"] {
            let violations = fields(|p| p.factur_x.as_mut().unwrap().version = bad.into());
            assert_eq!(violations, ["options.pdf.factur_x.version"], "{bad:?}");
        }
    }

    #[test]
    fn names_are_the_standards() {
        let level = |level: FacturXLevel| PdfFacturX { conformance_level: level as i32, ..Default::default() };
        assert_eq!(level_name(&level(FacturXLevel::BasicWl)), "BASIC WL");
        assert_eq!(level_name(&level(FacturXLevel::En16931)), "EN 16931");
        assert_eq!(file_name(&level(FacturXLevel::En16931)), "factur-x.xml");
        assert_eq!(file_name(&level(FacturXLevel::Xrechnung)), "xrechnung.xml");
        assert_eq!(document_type_name(&PdfFacturX::default()), "INVOICE");
        assert_eq!(version(&PdfFacturX::default()), "1.0");
        let mut pdf = PdfOptions { factur_x: Some(PdfFacturX::default()), ..Default::default() };
        assert_eq!(standard(&pdf), PdfStandard::PdfA3b);
        pdf.factur_x = None;
        assert_eq!(standard(&pdf), PdfStandard::Unspecified);
    }

    #[test]
    fn the_invoice_is_the_xml_attachment() {
        assert!(is_xml("invoice.XML", ""));
        assert!(is_xml("invoice", "application/xml"));
        assert!(is_xml("invoice.dat", "text/xml; charset=utf-8"));
        assert!(is_xml("invoice", "application/vnd.example+xml"));
        assert!(!is_xml("terms.pdf", "application/pdf"));
        assert_eq!(relationship(AttachmentRelationship::Unspecified).unwrap(), AttachmentRelationship::Data);
        assert_eq!(relationship(AttachmentRelationship::Alternative).unwrap(), AttachmentRelationship::Alternative);
        assert!(relationship(AttachmentRelationship::Supplement).is_err());
    }
}
