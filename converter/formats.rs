//! The document formats docconv reads, and what it checks before handing a
//! file to LibreOffice.
//!
//! LibreOffice detects formats by content, and falls back to importing
//! unknown bytes as plain text: a damaged `.docx` would become a PDF of
//! garbage. So binary formats must at least look like their container, and
//! flat OpenDocument files like an OpenDocument XML document.
//!
//! A PDF is an input too, but never LibreOffice's: it would import it into
//! Draw and write a poorer copy. A PDF goes straight to the tools that work
//! on finished PDFs (see `pdf_input`).

use docconv::proto::v1::{InputFormat, OutputFormat};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Spreadsheet,
    Presentation,
    Drawing,
    /// A finished PDF, which LibreOffice never sees.
    Pdf,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Spreadsheet => "spreadsheet",
            Kind::Presentation => "presentation",
            Kind::Drawing => "drawing",
            Kind::Pdf => "pdf",
        }
    }

    pub const ALL: [Kind; 5] = [Kind::Text, Kind::Spreadsheet, Kind::Presentation, Kind::Drawing, Kind::Pdf];

    /// The kinds LibreOffice converts, whose targets the probe learns.
    pub const OFFICE: [Kind; 4] = [Kind::Text, Kind::Spreadsheet, Kind::Presentation, Kind::Drawing];

    /// What a document of this kind may become: the export formats
    /// LibreOfficeKit names by extension. Which of them this LibreOffice
    /// really produces is learned at start (see `probe`); only those are
    /// offered. `png` is an image of the first page.
    pub fn candidates(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["pdf", "docx", "doc", "odt", "fodt", "rtf", "txt", "html", "epub", "png"],
            Kind::Spreadsheet => &["pdf", "xlsx", "xls", "ods", "fods", "csv", "html", "png"],
            Kind::Presentation => &["pdf", "pptx", "ppt", "odp", "fodp", "png"],
            Kind::Drawing => &["pdf", "odg", "fodg", "png"],
            Kind::Pdf => &["pdf"],
        }
    }
}

/// The targets each kind of document can become with this LibreOffice, as
/// the probe found them, in the order of `Kind::candidates`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    by_kind: Vec<(Kind, Vec<&'static str>)>,
}

impl Targets {
    /// Records that `kind` can become `target`.
    pub fn add(&mut self, kind: Kind, target: &'static str) {
        match self.by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, targets)) => targets.push(target),
            None => self.by_kind.push((kind, vec![target])),
        }
    }

    pub fn extend(&mut self, other: Targets) {
        for (kind, targets) in other.by_kind {
            targets.into_iter().for_each(|t| self.add(kind, t));
        }
    }

    pub fn of(&self, kind: Kind) -> &[&'static str] {
        // A PDF stays a PDF, by our tools alone: nothing to probe.
        if kind == Kind::Pdf {
            return Kind::Pdf.candidates();
        }
        self.by_kind.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, targets)| targets)
    }
}

/// How the bytes of a format must begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    /// ZIP (OOXML, ODF) or OLE2 (legacy MS Office) or RTF: office files are
    /// often misnamed between these, and LibreOffice reads them all.
    Office,
    /// Flat OpenDocument: one XML document whose root is `office:document`.
    FlatXml,
    /// Anything: text formats (plain text, CSV, HTML) have no signature.
    Any,
    /// A PDF file's header, `%PDF-`, first.
    Pdf,
}

pub struct Format {
    pub extension: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    container: Container,
}

const fn f(extension: &'static str, kind: Kind, description: &'static str, container: Container) -> Format {
    Format { extension, kind, description, container }
}

use Container::{Any, FlatXml, Office};
use Kind::{Drawing, Pdf, Presentation, Spreadsheet, Text};

pub const INPUTS: &[Format] = &[
    f("docx", Text, "Word document", Office),
    f("docm", Text, "Word macro-enabled document (macros never run)", Office),
    f("dotx", Text, "Word template", Office),
    f("dotm", Text, "Word macro-enabled template (macros never run)", Office),
    f("doc", Text, "Word 97-2003 document", Office),
    f("dot", Text, "Word 97-2003 template", Office),
    f("odt", Text, "OpenDocument text", Office),
    f("ott", Text, "OpenDocument text template", Office),
    f("fodt", Text, "Flat OpenDocument text", FlatXml),
    f("rtf", Text, "Rich Text Format", Office),
    f("txt", Text, "Plain text", Any),
    f("html", Text, "HTML page", Any),
    f("htm", Text, "HTML page", Any),
    f("xlsx", Spreadsheet, "Excel workbook", Office),
    f("xlsm", Spreadsheet, "Excel macro-enabled workbook (macros never run)", Office),
    f("xltx", Spreadsheet, "Excel template", Office),
    f("xls", Spreadsheet, "Excel 97-2003 workbook", Office),
    f("xlt", Spreadsheet, "Excel 97-2003 template", Office),
    f("ods", Spreadsheet, "OpenDocument spreadsheet", Office),
    f("ots", Spreadsheet, "OpenDocument spreadsheet template", Office),
    f("fods", Spreadsheet, "Flat OpenDocument spreadsheet", FlatXml),
    f("csv", Spreadsheet, "Comma-separated values", Any),
    f("tsv", Spreadsheet, "Tab-separated values", Any),
    f("pptx", Presentation, "PowerPoint presentation", Office),
    f("pptm", Presentation, "PowerPoint macro-enabled presentation (macros never run)", Office),
    f("ppsx", Presentation, "PowerPoint show", Office),
    f("ppsm", Presentation, "PowerPoint macro-enabled show (macros never run)", Office),
    f("potx", Presentation, "PowerPoint template", Office),
    f("ppt", Presentation, "PowerPoint 97-2003 presentation", Office),
    f("pps", Presentation, "PowerPoint 97-2003 show", Office),
    f("odp", Presentation, "OpenDocument presentation", Office),
    f("otp", Presentation, "OpenDocument presentation template", Office),
    f("fodp", Presentation, "Flat OpenDocument presentation", FlatXml),
    f("odg", Drawing, "OpenDocument drawing", Office),
    f("fodg", Drawing, "Flat OpenDocument drawing", FlatXml),
    f("pdf", Pdf, "PDF document (taken as it is, not converted)", Container::Pdf),
];

/// The format of a file name, by its extension (case-insensitive).
pub fn by_file_name(name: &str) -> Option<&'static Format> {
    let (_, ext) = name.rsplit_once('.')?;
    INPUTS.iter().find(|f| f.extension.eq_ignore_ascii_case(ext))
}

/// How many of a file's first bytes `looks_like` wants to see.
pub const HEAD_LEN: usize = 4096;

/// Whether a file's first bytes (up to `HEAD_LEN` of them) fit its
/// format's container.
pub fn looks_like(format: &Format, head: &[u8]) -> bool {
    const ZIP: &[u8] = b"PK\x03\x04";
    const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    const RTF: &[u8] = b"{\\rtf";
    match format.container {
        Container::Any => true,
        Container::Office => [ZIP, OLE, RTF].iter().any(|sig| head.starts_with(sig)),
        Container::FlatXml => is_flat_odf(head),
        Container::Pdf => head.starts_with(b"%PDF-"),
    }
}

/// After an optional UTF-8 BOM and whitespace, an XML declaration or the
/// root element itself, and the root `office:document` within the head.
fn is_flat_odf(head: &[u8]) -> bool {
    const ROOT: &[u8] = b"<office:document";
    let xml = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let xml = xml.trim_ascii_start();
    let starts_as_xml = xml.starts_with(b"<?xml") || xml.starts_with(ROOT);
    starts_as_xml && xml.windows(ROOT.len()).any(|w| w == ROOT)
}

/// The extension of a result's file name, which says which file in the
/// job's directory holds it (`output.<ext>`).
pub fn result_extension(output_name: &str) -> &str {
    output_name.rsplit_once('.').map_or("", |(_, ext)| ext)
}

/// Every result format: extension, description, content type. `zip` holds
/// the PDFs of a split.
const OUTPUTS: &[(&str, &str, &str)] = &[
    ("pdf", "PDF", "application/pdf"),
    ("docx", "Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("doc", "Word 97-2003 document", "application/msword"),
    ("odt", "OpenDocument text", "application/vnd.oasis.opendocument.text"),
    ("fodt", "Flat OpenDocument text", "application/vnd.oasis.opendocument.text-flat-xml"),
    ("rtf", "Rich Text Format", "application/rtf"),
    ("txt", "Plain text", "text/plain; charset=utf-8"),
    ("epub", "EPUB e-book", "application/epub+zip"),
    ("xlsx", "Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("xls", "Excel 97-2003 workbook", "application/vnd.ms-excel"),
    ("ods", "OpenDocument spreadsheet", "application/vnd.oasis.opendocument.spreadsheet"),
    ("fods", "Flat OpenDocument spreadsheet", "application/vnd.oasis.opendocument.spreadsheet-flat-xml"),
    ("csv", "Comma-separated values (first sheet)", "text/csv; charset=utf-8"),
    ("pptx", "PowerPoint presentation", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("ppt", "PowerPoint 97-2003 presentation", "application/vnd.ms-powerpoint"),
    ("odp", "OpenDocument presentation", "application/vnd.oasis.opendocument.presentation"),
    ("fodp", "Flat OpenDocument presentation", "application/vnd.oasis.opendocument.presentation-flat-xml"),
    ("odg", "OpenDocument drawing", "application/vnd.oasis.opendocument.graphics"),
    ("fodg", "Flat OpenDocument drawing", "application/vnd.oasis.opendocument.graphics-flat-xml"),
    ("html", "HTML page", "text/html; charset=utf-8"),
    ("png", "Image of the first page", "image/png"),
    ("zip", "Zip archive", "application/zip"),
];

pub fn content_type(target: &str) -> &'static str {
    OUTPUTS.iter().find(|(ext, _, _)| *ext == target).map_or("application/octet-stream", |(_, _, ct)| ct)
}

/// `report.final.docx` → `report.final`.
pub fn stem(file_name: &str) -> &str {
    match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file_name,
    }
}

/// `report.final.docx` → `report.final.pdf`.
pub fn output_name(input_name: &str, target: &str) -> String {
    format!("{}.{target}", stem(input_name))
}

/// The inputs with what each can become, and the outputs any of them can
/// become, in the order of `OUTPUTS`.
pub fn listing(targets: &Targets) -> (Vec<InputFormat>, Vec<OutputFormat>) {
    let outputs = OUTPUTS
        .iter()
        .filter(|(ext, _, _)| Kind::ALL.iter().any(|&kind| targets.of(kind).contains(ext)))
        .map(|&(extension, description, content_type)| OutputFormat {
            extension: extension.into(),
            description: description.into(),
            content_type: content_type.into(),
        })
        .collect();
    let inputs = INPUTS
        .iter()
        .map(|f| InputFormat {
            extension: f.extension.into(),
            description: f.description.into(),
            kind: f.kind.name().into(),
            targets: targets.of(f.kind).iter().map(|t| t.to_string()).collect(),
        })
        .collect();
    (inputs, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_formats_by_extension_case_insensitively() {
        assert_eq!(by_file_name("Report.DOCX").unwrap().extension, "docx");
        assert_eq!(by_file_name("a.b.xlsx").unwrap().kind, Kind::Spreadsheet);
        assert!(by_file_name("noextension").is_none());
        assert!(by_file_name("virus.exe").is_none());
    }

    #[test]
    fn binary_formats_need_an_office_container() {
        let docx = by_file_name("x.docx").unwrap();
        assert!(looks_like(docx, b"PK\x03\x04rest"));
        assert!(looks_like(docx, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"));
        assert!(!looks_like(docx, b"random bytes"));
        assert!(looks_like(by_file_name("x.csv").unwrap(), b"random bytes"));
    }

    #[test]
    fn pdfs_need_a_pdf_header_and_stay_pdfs() {
        let pdf = by_file_name("Scan.PDF").unwrap();
        assert_eq!(pdf.kind, Kind::Pdf);
        assert!(looks_like(pdf, b"%PDF-1.7\n%\xe2\xe3"));
        assert!(!looks_like(pdf, b"PK\x03\x04"));
        assert!(!looks_like(pdf, b" %PDF-1.4"));
        assert_eq!(Targets::default().of(Kind::Pdf), ["pdf"]);
    }

    #[test]
    fn flat_odf_needs_an_office_document_root() {
        let written_by_libreoffice = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<office:document \
            xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" office:version=\"1.3\" \
            office:mimetype=\"application/vnd.oasis.opendocument.text\">";
        let flat_odf: [&[u8]; 3] = [
            written_by_libreoffice,
            b"\xEF\xBB\xBF \r\n\t<?xml version=\"1.0\"?><office:document>",
            b"\n<office:document xmlns:office=\"o\">",
        ];
        let not_flat_odf: [&[u8]; 5] = [
            b"random bytes",
            b"\x8F\x02<?xml <office:document",
            b"<?xml version=\"1.0\"?><html><body>office</body></html>",
            b"PK\x03\x04 zipped office:document",
            b"",
        ];
        for ext in ["fodt", "fods", "fodp", "fodg"] {
            let format = by_file_name(&format!("x.{ext}")).unwrap();
            for head in flat_odf {
                assert!(looks_like(format, head), "{ext}: {head:?}");
            }
            for head in not_flat_odf {
                assert!(!looks_like(format, head), "{ext}: {head:?}");
            }
        }
    }

    #[test]
    fn the_listing_offers_what_the_probe_found() {
        let mut targets = Targets::default();
        targets.add(Kind::Text, "pdf");
        targets.add(Kind::Text, "docx");
        targets.add(Kind::Drawing, "pdf");
        let (inputs, outputs) = listing(&targets);
        let of = |ext: &str| inputs.iter().find(|f| f.extension == ext).unwrap().targets.clone();
        assert_eq!(of("doc"), ["pdf", "docx"]);
        assert_eq!(of("odg"), ["pdf"]);
        assert!(of("xlsx").is_empty());
        let outputs: Vec<_> = outputs.iter().map(|o| o.extension.as_str()).collect();
        assert_eq!(outputs, ["pdf", "docx"]);
    }

    #[test]
    fn every_candidate_has_a_content_type() {
        for kind in Kind::ALL {
            for target in kind.candidates() {
                assert_ne!(content_type(target), "application/octet-stream", "{target}");
            }
        }
    }

    #[test]
    fn output_names_swap_the_extension() {
        assert_eq!(output_name("report.final.docx", "pdf"), "report.final.pdf");
        assert_eq!(output_name("Special_Chars_ß.docx", "pdf"), "Special_Chars_ß.pdf");
        assert_eq!(output_name(".docx", "pdf"), ".docx.pdf");
    }
}
