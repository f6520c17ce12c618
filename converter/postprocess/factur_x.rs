//! The XMP of a Factur-X invoice: the `fx` values that tell readers which
//! embedded file is the invoice and what it is (DocumentFileName,
//! DocumentType, Version, ConformanceLevel), and the PDF/A extension schema
//! that describes the `fx` namespace, without which a PDF/A-3 validator
//! rejects properties it does not know. The invoice itself is embedded by
//! `attachments.rs`, like any attachment, under the name the service gave it.
//!
//! exiftool writes it, as it writes the rest of the metadata: it edits the
//! XMP packet LibreOffice wrote as RDF, keeping every other property
//! (pdfaid, the dates, what `metadata.rs` wrote), and appends to an
//! extension schema list already there instead of adding a second one.
//! Writing the packet ourselves through qpdf's JSON would mean parsing and
//! serialising RDF by hand. exiftool knows neither namespace, so the job's
//! config file defines them: `fx` as plain text properties, and
//! `pdfaExtension:schemas` as the bag of structures PDF/A defines (schema,
//! namespaceURI, prefix, and a sequence of properties, each with name,
//! valueType, category and description).

use super::tools::{ArgFile, RemovedOnDrop, run_tool, tool_failed};
use crate::failure::Failure;
use crate::options::factur_x;
use docconv::proto::v1::PdfFacturX;
use std::path::Path;

/// The namespace of Factur-X's XMP properties (version 1.0; ZUGFeRD 2.1
/// and later use it too).
pub const NAMESPACE: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

/// Each `fx` property, with its description in the extension schema. All
/// are external text: set by the software that wrote the invoice.
const PROPERTIES: &[(&str, &str)] = &[
    ("DocumentFileName", "The name of the embedded file holding the invoice's XML"),
    ("DocumentType", "INVOICE, or the kind of order the XML is"),
    ("Version", "The version of the Factur-X schema the XML follows"),
    ("ConformanceLevel", "The Factur-X profile the XML conforms to"),
];

pub async fn describe(factur_x: &PdfFacturX, pdf: &Path) -> Result<(), Failure> {
    let config = pdf.with_extension(format!("exiftool-{}.config", docconv::ids::new_id()));
    let _scratch = RemovedOnDrop(vec![config.clone()]);
    std::fs::write(&config, CONFIG).map_err(|e| tool_failed("exiftool", &e.to_string()))?;
    let argfile = ArgFile::write(pdf, &arguments(factur_x))?;
    // `-config` must come first, on the command line itself.
    let args = ["-config".as_ref(), config.as_os_str(), "-@".as_ref(), argfile.path.as_os_str(), pdf.as_os_str()];
    run_tool("exiftool", &args).await
}

fn arguments(factur_x: &PdfFacturX) -> Vec<String> {
    let mut args = vec!["-overwrite_original".to_owned(), "-charset".into(), "utf8".into()];
    for (name, value) in [
        ("DocumentFileName", factur_x::file_name(factur_x)),
        ("DocumentType", factur_x::document_type_name(factur_x)),
        ("Version", factur_x::version(factur_x)),
        ("ConformanceLevel", factur_x::level_name(factur_x)),
    ] {
        args.push(format!("-XMP-fx:{name}={value}"));
    }
    args.push(format!("-XMP-pdfaExtension:Schemas+={}", schema()));
    args
}

/// The extension schema as one exiftool structure:
/// `{schema=…,namespaceURI=…,prefix=fx,property=[{name=…,…},…]}`.
fn schema() -> String {
    let properties: Vec<String> = PROPERTIES
        .iter()
        .map(|(name, description)| {
            format!("{{name={name},valueType=Text,category=external,description={}}}", escape(description))
        })
        .collect();
    format!(
        "{{schema=Factur-X PDFA Extension Schema,namespaceURI={NAMESPACE},prefix=fx,property=[{}]}}",
        properties.join(",")
    )
}

/// exiftool's structure syntax gives `,`, `[`, `]`, `{`, `}` and `|` a
/// meaning; `|` before one takes it literally.
fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            ',' | '[' | ']' | '{' | '}' | '|' => vec!['|', c],
            _ => vec![c],
        })
        .collect()
}

/// The namespaces for exiftool (Perl): `fx` with its four text properties;
/// `pdfaExtension:schemas`, a bag of `pdfaSchema` structures whose
/// `property` is a sequence of `pdfaProperty` structures.
const CONFIG: &str = r#"%Image::ExifTool::UserDefined = (
    'Image::ExifTool::XMP::Main' => {
        fx => { SubDirectory => { TagTable => 'Image::ExifTool::UserDefined::fx' } },
        pdfaExtension => { SubDirectory => { TagTable => 'Image::ExifTool::UserDefined::pdfaExtension' } },
    },
);
%Image::ExifTool::UserDefined::fx = (
    GROUPS => { 0 => 'XMP', 1 => 'XMP-fx', 2 => 'Document' },
    NAMESPACE => { 'fx' => 'urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#' },
    WRITABLE => 'string',
    DocumentFileName => { },
    DocumentType => { },
    Version => { },
    ConformanceLevel => { },
);
my %pdfaProperty = (
    NAMESPACE => { 'pdfaProperty' => 'http://www.aiim.org/pdfa/ns/property#' },
    name => { }, valueType => { }, category => { }, description => { },
);
my %pdfaSchema = (
    NAMESPACE => { 'pdfaSchema' => 'http://www.aiim.org/pdfa/ns/schema#' },
    schema => { }, namespaceURI => { }, prefix => { },
    property => { Struct => \%pdfaProperty, List => 'Seq' },
);
%Image::ExifTool::UserDefined::pdfaExtension = (
    GROUPS => { 0 => 'XMP', 1 => 'XMP-pdfaExtension', 2 => 'Document' },
    NAMESPACE => { 'pdfaExtension' => 'http://www.aiim.org/pdfa/ns/extension/' },
    WRITABLE => 'string',
    schemas => { Struct => \%pdfaSchema, List => 'Bag' },
);
1;
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::FacturXLevel;

    #[test]
    fn the_values_and_the_schema_are_written() {
        let invoice = PdfFacturX { conformance_level: FacturXLevel::BasicWl as i32, ..Default::default() };
        let args = arguments(&invoice);
        assert_eq!(
            &args[3..7],
            [
                "-XMP-fx:DocumentFileName=factur-x.xml",
                "-XMP-fx:DocumentType=INVOICE",
                "-XMP-fx:Version=1.0",
                "-XMP-fx:ConformanceLevel=BASIC WL"
            ]
        );
        let schema = &args[7];
        assert!(schema.starts_with("-XMP-pdfaExtension:Schemas+={schema=Factur-X"), "{schema}");
        assert!(schema.contains(&format!("namespaceURI={NAMESPACE},prefix=fx,property=[{{name=DocumentFileName,")));
        assert_eq!(schema.matches("valueType=Text,category=external").count(), 4);
        assert!(CONFIG.contains(NAMESPACE));
        assert_eq!(escape("a, b [c] {d} |e"), "a|, b |[c|] |{d|} ||e");
    }
}
