//! Factur-X invoices: a document converted with the invoice's XML becomes
//! a PDF/A-3b carrying it under the standard's name, described in XMP.
//! Checked with qpdf, poppler and exiftool, and with the `factur-x` Python
//! library (an independent reader of Factur-X PDFs, which also checks the
//! XML against the profile's XSD); and what cannot make an invoice is
//! refused at Submit, naming the field.

use crate::support::*;
use docconv::proto::v1::{
    Attachment, AttachmentRelationship, DocumentHeader, FacturXDocumentType, FacturXLevel, Job, PdfFacturX,
    PdfMetadata, SubmitHeader,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use tonic::Code;
use tonic_types::StatusExt;

/// `INVOICE` declaring another profile (its guideline identifier).
fn invoice_of(guideline: &str) -> String {
    INVOICE.replace("urn:factur-x.eu:1p0:minimum", guideline)
}

/// A Factur-X MINIMUM invoice, valid against the profile's XSD.
const INVOICE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter>
      <ram:ID>urn:factur-x.eu:1p0:minimum</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>INV-2026-042</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime>
      <udt:DateTimeString format="102">20260504</udt:DateTimeString>
    </ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>Example Supplies SARL</ram:Name>
        <ram:PostalTradeAddress>
          <ram:CountryID>FR</ram:CountryID>
        </ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration>
          <ram:ID schemeID="VA">FR11123456782</ram:ID>
        </ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty>
        <ram:Name>Example Buyer GmbH</ram:Name>
      </ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>120.00</ram:GrandTotalAmount>
        <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#;

const FX_NAMESPACE: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

fn invoice_options(level: FacturXLevel, edit: impl FnOnce(&mut PdfFacturX)) -> SubmitHeader {
    let mut factur_x = PdfFacturX { conformance_level: level as i32, ..Default::default() };
    edit(&mut factur_x);
    SubmitHeader { options: Some(pdf_options(|p| p.factur_x = Some(factur_x))), ..header("page_1.docx") }
}

/// An attachment: name, MIME type, bytes, relationship.
type Attaching<'a> = (&'a str, &'a str, &'a [u8], AttachmentRelationship);

/// Submits the one-page Word document with `attachments` after it.
async fn submit_invoice(header: SubmitHeader, attachments: &[Attaching<'_>]) -> Result<Job, tonic::Status> {
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let further: Vec<(DocumentHeader, &[u8])> = attachments
        .iter()
        .map(|(name, content_type, bytes, relationship)| {
            let next = DocumentHeader {
                file_name: name.to_string(),
                content_type: content_type.to_string(),
                attachment: Some(Attachment { relationship: *relationship as i32, ..Default::default() }),
                ..Default::default()
            };
            (next, *bytes)
        })
        .collect();
    submit_with_files(&mut shared().client().await, header, &word, &further).await
}

/// The result of `job`, which must succeed.
async fn finished(job: Job) -> Vec<u8> {
    succeeded(job).await.1
}

fn qpdf_text(args: &[&str], pdf: &[u8]) -> String {
    let output = qpdf_on(args, pdf);
    assert!(output.status.success(), "qpdf {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The XMP packet, as poppler reads it.
fn xmp(pdf: &[u8]) -> String {
    poppler_with("pdfinfo", &["-meta"], pdf).unwrap()
}

/// exiftool's reading of the XMP, structures whole (it names unknown
/// namespaces by their prefix).
fn exiftool_xmp(pdf: &[u8]) -> serde_json::Value {
    exiftool_json(&["-G1", "-struct", "-XMP:all"], pdf)
}

/// The `factur-x` library's Python, in the venv `scripts/test` makes.
fn facturx_python() -> PathBuf {
    let python = std::env::var_os("DOCCONV_FACTURX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/invoices/venv/bin/python"));
    assert!(python.exists(), "{} is missing; scripts/test makes the invoice checker's venv", python.display());
    python
}

/// What the `factur-x` library finds in `pdf`: the invoice (found among
/// the embedded files by pypdf, parsed and checked against its profile's
/// XSD), its level, and the XMP values it reads through pypdf.
fn facturx_reading(pdf: &[u8]) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
import facturx
from lxml import etree
from pypdf import PdfReader
data = open(sys.argv[1], "rb").read()
name, xml = facturx.get_xml_from_pdf(data, check_xsd=True)
level = facturx.get_level(etree.fromstring(xml)) if xml else None
rdf = PdfReader(sys.argv[1]).xmp_metadata.rdf_root
ns = {"fx": sys.argv[2], "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}
def value(name):
    prefix, local = name.split(":")
    found = rdf.getElementsByTagNameNS(ns[prefix], local)
    return found[0].firstChild.data if found else None
print(json.dumps({
    "file": name or None,
    "xml": xml.decode() if xml else None,
    "level": level,
    "xmp": {p: value(p) for p in ["fx:DocumentFileName", "fx:DocumentType", "fx:Version", "fx:ConformanceLevel", "pdfaid:part", "pdfaid:conformance"]},
}))
"#;
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output =
        Command::new(facturx_python()).args(["-c", SCRIPT]).arg(file.path()).arg(FX_NAMESPACE).output().unwrap();
    assert!(output.status.success(), "factur-x: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn an_invoice_carries_its_xml_as_factur_x_describes_it() {
    let invoice = INVOICE.as_bytes();
    let attachments = [("INV-2026-042.xml", "", invoice, AttachmentRelationship::Unspecified)];
    let job = submit_invoice(invoice_options(FacturXLevel::Minimum, |_| {}), &attachments).await.unwrap();
    // The job shows the name the invoice is embedded under.
    assert_eq!(job.attachment_file_names, ["factur-x.xml"]);
    let pdf = finished(job).await;
    assert!(qpdf_check(&pdf));
    assert!(pdf_text(&pdf, None).contains("Page 1"), "the document's page is there");

    // The one embedded file is the XML, byte for byte, typed text/xml.
    let listed = qpdf_text(&["--list-attachments"], &pdf);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.starts_with("factur-x.xml -> "), "{listed}");
    assert_eq!(qpdf_on(&["--show-attachment=factur-x.xml"], &pdf).stdout, invoice);
    let objects = qpdf_json(&pdf, &["--json-key=qpdf"]).to_string();
    assert!(objects.contains("\"/AFRelationship\":\"/Data\""), "no relationship");
    assert!(objects.contains("\"/AF\":["), "the catalog lists no associated files");
    // qpdf's JSON shows names decoded; in the file, the '/' is escaped.
    assert!(objects.contains("\"/Subtype\":\"/text/xml\""), "the embedded file is not typed text/xml");
    assert!(pdf.windows(20).any(|w| w == b"/Subtype /text#2fxml"), "no /Subtype /text#2fxml in the file");
    assert!(objects.contains("\"/UF\":\"u:factur-x.xml\""), "the file specification is not named factur-x.xml");

    // The XMP: PDF/A-3b, the Factur-X values, and the extension schema
    // that describes them.
    let packet = xmp(&pdf);
    for expected in [
        "<pdfaid:part>3</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
        "<fx:DocumentType>INVOICE</fx:DocumentType>",
        "<fx:Version>1.0</fx:Version>",
        "<fx:ConformanceLevel>MINIMUM</fx:ConformanceLevel>",
        "<pdfaExtension:schemas>",
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>",
        &format!("<pdfaSchema:namespaceURI>{FX_NAMESPACE}</pdfaSchema:namespaceURI>"),
    ] {
        assert!(packet.contains(expected), "{expected} is not in the XMP:\n{packet}");
    }
    let read = exiftool_xmp(&pdf);
    assert_eq!(read["XMP-fx:ConformanceLevel"], "MINIMUM", "{read}");
    assert_eq!(read["XMP-pdfaid:Part"], 3, "{read}");
    let schemas = read["XMP-pdfaExtension:Schemas"].as_array().expect("extension schemas");
    assert_eq!(schemas.len(), 1, "{read}");
    assert_eq!(schemas[0]["NamespaceURI"], FX_NAMESPACE);
    assert_eq!(schemas[0]["Prefix"], "fx");
    let properties = schemas[0]["Property"].as_array().unwrap();
    let names: Vec<&str> = properties.iter().map(|p| p["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["DocumentFileName", "DocumentType", "Version", "ConformanceLevel"]);
    for property in properties {
        assert_eq!((&property["ValueType"], &property["Category"]), (&"Text".into(), &"external".into()), "{property}");
        assert!(!property["Description"].as_str().unwrap().is_empty(), "{property}");
    }

    // An independent reader finds the invoice, valid for its profile, and
    // the same values.
    let facturx = facturx_reading(&pdf);
    assert_eq!(facturx["file"], "factur-x.xml", "{facturx}");
    assert_eq!(facturx["xml"], INVOICE, "{facturx}");
    assert_eq!(facturx["level"], "minimum", "{facturx}");
    let expected = serde_json::json!({
        "fx:DocumentFileName": "factur-x.xml",
        "fx:DocumentType": "INVOICE",
        "fx:Version": "1.0",
        "fx:ConformanceLevel": "MINIMUM",
        "pdfaid:part": "3",
        "pdfaid:conformance": "B",
    });
    assert_eq!(facturx["xmp"], expected, "{facturx}");
}

#[tokio::test]
async fn an_xrechnung_keeps_its_relationship_and_the_metadata_beside_it() {
    let xrechnung = invoice_of("urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.3");
    let invoice = xrechnung.as_bytes();
    let attachments = [("data", "application/xml", invoice, AttachmentRelationship::Alternative)];
    let mut header = invoice_options(FacturXLevel::Xrechnung, |f| {
        f.document_type = FacturXDocumentType::Invoice as i32;
        f.version = "2.3".into();
    });
    let pdf = header.options.as_mut().unwrap().pdf.as_mut().unwrap();
    pdf.metadata = Some(PdfMetadata { title: "Invoice INV-2026-042".into(), ..Default::default() });
    let job = submit_invoice(header, &attachments).await.unwrap();
    assert_eq!(job.attachment_file_names, ["xrechnung.xml"]);
    let pdf = finished(job).await;
    assert!(qpdf_check(&pdf));
    assert_eq!(qpdf_on(&["--show-attachment=xrechnung.xml"], &pdf).stdout, invoice);
    let objects = qpdf_json(&pdf, &["--json-key=qpdf"]).to_string();
    assert!(objects.contains("\"/AFRelationship\":\"/Alternative\""), "the relationship given was not kept");
    let read = exiftool_xmp(&pdf);
    assert_eq!(read["XMP-fx:ConformanceLevel"], "XRECHNUNG", "{read}");
    assert_eq!(read["XMP-fx:DocumentFileName"], "xrechnung.xml", "{read}");
    assert_eq!(read["XMP-fx:Version"], 2.3, "{read}");
    // The document information and its XMP twin agree, beside the invoice's.
    assert_eq!(read["XMP-dc:Title"], "Invoice INV-2026-042", "{read}");
    let info = poppler_with("pdfinfo", &[], &pdf).unwrap();
    assert!(info.lines().any(|l| l.starts_with("Title:") && l.ends_with("Invoice INV-2026-042")), "{info}");
    assert!(xmp(&pdf).contains("<pdfaid:part>3</pdfaid:part>"));
}

#[tokio::test]
async fn what_cannot_make_an_invoice_is_refused_at_submit() {
    let invoice = INVOICE.as_bytes();
    let xml = |name| (name, "", invoice, AttachmentRelationship::Unspecified);
    let notes: Attaching = ("notes.txt", "text/plain", b"notes", AttachmentRelationship::Unspecified);
    let ubl = br#"<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>1</ID></Invoice>"#;
    let broken = INVOICE.replace("</rsm:ExchangedDocument>", "</rsm:ExchangedDocumen>");
    let cases: Vec<(Vec<Attaching>, &str, &str)> = vec![
        (vec![], "options.pdf.factur_x", "no XML attachment came"),
        (vec![notes], "options.pdf.factur_x", "no XML attachment came"),
        (vec![xml("a.xml"), notes, xml("b.xml")], "next_document.file_name", "\"b.xml\" would be a second XML"),
        (
            vec![("a.xml", "", broken.as_bytes(), AttachmentRelationship::Unspecified), notes],
            "next_document",
            "not well-formed",
        ),
        (
            vec![("ubl.xml", "", ubl, AttachmentRelationship::Unspecified)],
            "next_document",
            "root element is \"Invoice\"",
        ),
        (
            vec![("a.xml", "", invoice, AttachmentRelationship::Supplement)],
            "next_document.attachment.relationship",
            "not SUPPLEMENT",
        ),
    ];
    for (attachments, field, words) in cases {
        let header = invoice_options(FacturXLevel::Minimum, |_| {});
        let status = submit_invoice(header, &attachments).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        let violation = bad_request.field_violations.iter().find(|v| v.field == field);
        let violation = violation.unwrap_or_else(|| panic!("{field}: {bad_request:?}"));
        assert!(violation.description.contains(words), "{field}: {}", violation.description);
    }

    // An invoice written for MINIMUM does not make an EN 16931 PDF.
    let attachments = [xml("a.xml")];
    let status = submit_invoice(invoice_options(FacturXLevel::En16931, |_| {}), &attachments).await.unwrap_err();
    let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
    let level = &bad_request.field_violations[0];
    assert_eq!(level.field, "options.pdf.factur_x.conformance_level", "{bad_request:?}");
    assert!(level.description.contains("declares the profile \"urn:factur-x.eu:1p0:minimum\""), "{level:?}");

    // A merge is not PDF/A: refused at the second document.
    let mut client = shared().client().await;
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let header = invoice_options(FacturXLevel::Basic, |_| {});
    let status = submit_merge(&mut client, header, &[("a.docx", word.clone()), ("b.docx", word)]).await.unwrap_err();
    let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
    assert_eq!(bad_request.field_violations[0].field, "options.pdf.factur_x", "{bad_request:?}");
}

#[tokio::test]
async fn the_command_line_makes_an_invoice_of_the_attached_xml() {
    use crate::cli::{docconv, shared_url};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("page_1.docx"), dir.path().join("invoice.docx")).unwrap();
    let invoice = invoice_of("urn:cen.eu:en16931:2017");
    std::fs::write(dir.path().join("INV-2026-042.xml"), &invoice).unwrap();
    std::fs::write(dir.path().join("terms.txt"), "Payable within 30 days.").unwrap();
    let args = [
        "convert",
        "invoice.docx",
        "--output-dir",
        "out",
        "--factur-x",
        "comfort",
        "--factur-x-document-type",
        "invoice",
        "--attach",
        "terms.txt",
        "--attach",
        "INV-2026-042.xml",
    ];
    let output = docconv(dir.path(), &shared_url(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let pdf = std::fs::read(dir.path().join("out/invoice.pdf")).unwrap();
    assert_eq!(qpdf_on(&["--show-attachment=factur-x.xml"], &pdf).stdout, invoice.as_bytes());
    assert_eq!(qpdf_on(&["--show-attachment=terms.txt"], &pdf).stdout, b"Payable within 30 days.");
    assert!(xmp(&pdf).contains("<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>"));
    // The service's refusal reaches the command line, naming the field.
    let without_xml = ["convert", "invoice.docx", "--output-dir", "out", "--factur-x", "basic"];
    let output = docconv(dir.path(), &shared_url(), &without_xml);
    assert_ne!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("options.pdf.factur_x"), "{output:?}");
}
