//! What a Factur-X invoice's XML must be before docconv embeds it:
//! well-formed XML whose root element is a CrossIndustryInvoice of the
//! UN/CEFACT namespace. Its schema (and the profile's business rules) are
//! not checked: that needs the profile's XSD and Schematron, which belong
//! to the invoicing software that wrote the XML; docconv only makes sure
//! it embeds an invoice and not some other file by mistake.
//!
//! It also reads the profile the XML declares it follows (its guideline,
//! `ExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID`),
//! so that a PDF never claims a conformance level its own XML denies.
//!
//! The file is read as a stream (quick-xml over tokio), never whole.
//! quick-xml checks tags and nesting itself; attributes, references and
//! what may stand outside the root are checked here.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use tokio::io::{AsyncRead, BufReader};

/// The namespace of the root element (`rsm:CrossIndustryInvoice`).
pub const CII_NAMESPACE: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
const ROOT: &str = "CrossIndustryInvoice";

/// Where the guideline is, by local names below the root.
const GUIDELINE_PATH: [&str; 3] = ["ExchangedDocumentContext", "GuidelineSpecifiedDocumentContextParameter", "ID"];

/// Reads `xml` to its end and returns the guideline it declares (empty
/// when none); an error says what is wrong, in words a person can act on.
pub async fn check(xml: impl AsyncRead + Unpin) -> Result<String, String> {
    let mut reader = NsReader::from_reader(BufReader::new(xml));
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut roots = 0usize;
    // Local names of the open elements below the root, while they follow
    // GUIDELINE_PATH; `matched` counts how many do.
    let mut matched = 0usize;
    let mut guideline = String::new();
    loop {
        let position = reader.buffer_position();
        let at = |what: String| format!("{what} (at byte {position})");
        let (namespace, event) = match reader.read_resolved_event_into_async(&mut buf).await {
            Ok(read) => read,
            Err(e) => {
                return Err(format!("it is not well-formed XML: {e} (at byte {})", reader.error_position()));
            }
        };
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                for attribute in element.attributes() {
                    attribute.map_err(|e| at(format!("it is not well-formed XML: {e}")))?;
                }
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(at("it is not well-formed XML: a second root element".into()));
                    }
                    check_root(&namespace, element.local_name().as_ref())?;
                }
                if matches!(event, Event::Start(_)) {
                    if depth == matched + 1 && GUIDELINE_PATH.get(matched) == Some(&element.local_name().into_inner()) {
                        matched += 1;
                    }
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth -= 1;
                // The element closing sits at level `depth` (the root at 0);
                // the path's n-th element sits at level n.
                if matched > 0 && depth == matched {
                    matched -= 1;
                }
            }
            Event::Text(text) if matched == GUIDELINE_PATH.len() && guideline.len() < 1000 => {
                let text: &str = text;
                guideline.extend(text.trim().chars().filter(|c| !c.is_control()));
            }
            Event::Text(text) if depth == 0 && !text.chars().all(|c| c.is_ascii_whitespace()) => {
                return Err(at("it is not well-formed XML: text outside the root element".into()));
            }
            Event::GeneralRef(reference) if depth == 0 => {
                return Err(at(format!("it is not well-formed XML: &{}; outside the root element", &**reference)));
            }
            Event::GeneralRef(reference) => {
                let known = matches!(&**reference, "lt" | "gt" | "amp" | "apos" | "quot");
                let character = reference.resolve_char_ref().map_err(|e| at(format!("{e}")))?;
                if !known && character.is_none() {
                    return Err(at(format!("it refers to &{}; which XML does not define", &**reference)));
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(at("it is not well-formed XML: CDATA outside the root element".into()));
            }
            Event::Eof if roots == 0 => return Err("it has no root element: it is empty or not XML".into()),
            Event::Eof if depth > 0 => return Err("it is not well-formed XML: it ends inside an element".into()),
            Event::Eof => return Ok(guideline),
            _ => {}
        }
        buf.clear();
    }
}

fn check_root(namespace: &ResolveResult, local_name: &str) -> Result<(), String> {
    let in_cii = matches!(namespace, ResolveResult::Bound(ns) if ns.into_inner() == CII_NAMESPACE);
    if local_name == ROOT && in_cii {
        return Ok(());
    }
    let found = match namespace {
        ResolveResult::Bound(ns) => format!("{} in {}", show(local_name), show(ns.into_inner())),
        _ => format!("{} in no namespace", show(local_name)),
    };
    Err(format!("its root element is {found}; a Factur-X invoice is a CrossIndustryInvoice in {}", show(CII_NAMESPACE)))
}

fn show(text: &str) -> String {
    let short: String = text.chars().take(100).collect();
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CII: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";

    async fn checked(xml: &str) -> Result<(), String> {
        check(xml.as_bytes()).await.map(|_| ())
    }

    #[tokio::test]
    async fn the_declared_guideline_is_read() {
        let xml = format!(
            "<rsm:CrossIndustryInvoice xmlns:rsm=\"{CII}\" xmlns:ram=\"urn:r\"><rsm:ExchangedDocumentContext>\
             <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>A1</ram:ID>\
             </ram:BusinessProcessSpecifiedDocumentContextParameter>\
             <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID> urn:factur-x.eu:1p0:minimum </ram:ID>\
             </ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>\
             <rsm:ExchangedDocument><ram:ID>INV-1</ram:ID></rsm:ExchangedDocument></rsm:CrossIndustryInvoice>"
        );
        assert_eq!(check(xml.as_bytes()).await.unwrap(), "urn:factur-x.eu:1p0:minimum");
        let none = format!(
            "<rsm:CrossIndustryInvoice xmlns:rsm=\"{CII}\"><rsm:ExchangedDocument/></rsm:CrossIndustryInvoice>"
        );
        assert_eq!(check(none.as_bytes()).await.unwrap(), "");
    }

    #[tokio::test]
    async fn a_cross_industry_invoice_passes() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- invoice -->\n<rsm:CrossIndustryInvoice \
             xmlns:rsm=\"{CII}\" xmlns:ram=\"urn:x\"><ram:Note>A &amp; B &#233;</ram:Note><![CDATA[<x>]]>\
             </rsm:CrossIndustryInvoice>\n"
        );
        assert_eq!(checked(&xml).await, Ok(()));
        assert_eq!(checked(&format!("<CrossIndustryInvoice xmlns=\"{CII}\"/>")).await, Ok(()));
    }

    #[tokio::test]
    async fn other_roots_are_named() {
        let ubl = "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>";
        let error = checked(ubl).await.unwrap_err();
        assert!(error.contains("\"Invoice\" in \"urn:oasis"), "{error}");
        let error = checked("<CrossIndustryInvoice/>").await.unwrap_err();
        assert!(error.contains("in no namespace"), "{error}");
    }

    #[tokio::test]
    async fn malformed_xml_is_refused() {
        let root =
            |inner: &str| format!("<rsm:CrossIndustryInvoice xmlns:rsm=\"{CII}\">{inner}</rsm:CrossIndustryInvoice>");
        for bad in [
            String::new(),
            "not xml at all".into(),
            root("<a></b>"),
            root("<a x=1/>"),
            root("<a x=\"1\" x=\"2\"/>"),
            root("&nbsp;"),
            format!("{}<second/>", root("")),
            format!("{}trailing", root("")),
            format!("<rsm:CrossIndustryInvoice xmlns:rsm=\"{CII}\"><a>"),
        ] {
            assert!(checked(&bad).await.is_err(), "{bad:?} passed");
        }
    }
}
