//! Turning a document's pages to landscape before it is exported.
//!
//! Text documents take LibreOffice's own page-size command. Calc has no such
//! command under LibreOfficeKit (its views ignore `.uno:AttributePageSize`),
//! so a spreadsheet goes through its own flat ODF form instead: LibreOffice
//! writes it, we turn every page layout in that XML, and LibreOffice loads
//! the result back. The XML is LibreOffice's output, never the user's file.

use super::lok::{self, Document, DocumentKind, Office};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Returns the document with landscape pages: the same one for text, a
/// reloaded one for spreadsheets. `scratch` is a file path the worker may
/// use for the intermediate flat ODF file.
pub fn turn<'a>(
    office: &'a Office,
    document: Document<'a>,
    scratch: &Path,
    load_options: &str,
) -> Result<Document<'a>, String> {
    match document.kind() {
        DocumentKind::Text => turn_text(&document).map(|()| document),
        DocumentKind::Spreadsheet => turn_sheets(office, document, scratch, load_options),
        kind => Err(format!("a {kind:?} document cannot be turned to landscape")),
    }
}

/// Swaps the page size of a portrait text document's first page style.
/// LibreOffice keeps the margins and reflows the text onto the wider pages.
fn turn_text(document: &Document<'_>) -> Result<(), String> {
    document.initialize_for_rendering()?;
    let Some((width, height)) = document.first_page_size() else {
        return Err("this document has no page size to turn".into());
    };
    if width >= height {
        return Ok(());
    }
    let arguments = format!(
        r#"{{"AttributePageSize.Width":{{"type":"long","value":{}}},"AttributePageSize.Height":{{"type":"long","value":{}}}}}"#,
        twips_to_hmm(height),
        twips_to_hmm(width)
    );
    document.uno_command(".uno:AttributePageSize", &arguments)?;
    // LibreOffice applies commands on its own thread; wait until the page
    // has turned (the converter's deadline bounds this too).
    let deadline = Instant::now() + Duration::from_secs(10);
    while document.first_page_size() != Some((height, width)) {
        if Instant::now() > deadline {
            return Err("LibreOffice did not turn the pages to landscape".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// 1/100 mm, the unit of page size items.
fn twips_to_hmm(twips: i64) -> i64 {
    twips * 2540 / 1440
}

fn turn_sheets<'a>(
    office: &'a Office,
    document: Document<'a>,
    scratch: &Path,
    load_options: &str,
) -> Result<Document<'a>, String> {
    let paper = default_paper(office, load_options)?;
    let url = lok::file_url(scratch)?;
    document.save_as(&url, "fods", "")?;
    drop(document);
    let turned = std::fs::read_to_string(scratch)
        .map(|xml| to_landscape(&xml, paper))
        .and_then(|xml| std::fs::write(scratch, xml));
    let reloaded = turned.map_err(|e| format!("cannot turn the pages: {e}")).and_then(|()| office.load(&url, load_options));
    // The copy is only needed while loading; the job keeps its own input.
    let _ = std::fs::remove_file(scratch);
    reloaded
}

/// The paper LibreOffice gives page styles that name no size (it depends on
/// the system's paper setting): the page of a new text document, in twips.
/// Asked once per worker.
fn default_paper(office: &Office, load_options: &str) -> Result<(i64, i64), String> {
    static PAPER: OnceLock<(i64, i64)> = OnceLock::new();
    if let Some(&paper) = PAPER.get() {
        return Ok(paper);
    }
    let blank = office.load("private:factory/swriter", load_options)?;
    blank.initialize_for_rendering()?;
    let paper = blank.first_page_size().ok_or("LibreOffice reports no default paper size")?;
    Ok(*PAPER.get_or_init(|| paper))
}

/// Rewrites every page layout of a flat ODF document to landscape: the
/// orientation flag, and width and height swapped where the page is taller
/// than wide. Layouts that name no size get `paper` (twips), turned.
fn to_landscape(xml: &str, paper: (i64, i64)) -> String {
    const TAG: &str = "<style:page-layout-properties";
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    while let Some(start) = rest.find(TAG) {
        let after = &rest[start + TAG.len()..];
        // LibreOffice escapes `>` inside attribute values, so the first one
        // ends the tag.
        let Some(end) = after.find('>') else { break };
        out.push_str(&rest[..start]);
        out.push_str(&turned_tag(&after[..end], paper));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The page layout properties tag for `attributes` (the text between the
/// tag name and its `>`, including any closing `/`).
fn turned_tag(attributes: &str, paper: (i64, i64)) -> String {
    let (body, self_closing) = match attributes.trim_end().strip_suffix('/') {
        Some(body) => (body, true),
        None => (attributes, false),
    };
    let mut pairs = parse_attributes(body);
    let inches = |twips: i64| format!("{:.4}in", twips as f64 / 1440.0);
    let mut width = take(&mut pairs, "fo:page-width").unwrap_or_else(|| inches(paper.0));
    let mut height = take(&mut pairs, "fo:page-height").unwrap_or_else(|| inches(paper.1));
    take(&mut pairs, "style:print-orientation");
    if let (Some(w), Some(h)) = (points(&width), points(&height)) {
        if w < h {
            std::mem::swap(&mut width, &mut height);
        }
    }
    let mut tag = String::from("<style:page-layout-properties");
    pairs.push(("fo:page-width".into(), width));
    pairs.push(("fo:page-height".into(), height));
    pairs.push(("style:print-orientation".into(), "landscape".into()));
    for (name, value) in pairs {
        tag.push_str(&format!(" {name}=\"{value}\""));
    }
    if self_closing {
        tag.push('/');
    }
    tag
}

/// `name="value"` pairs, values kept escaped as they were.
fn parse_attributes(mut text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    while let Some(eq) = text.find("=\"") {
        let name = text[..eq].trim();
        let value_and_rest = &text[eq + 2..];
        let Some(close) = value_and_rest.find('"') else { break };
        pairs.push((name.to_owned(), value_and_rest[..close].to_owned()));
        text = &value_and_rest[close + 1..];
    }
    pairs
}

fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let index = pairs.iter().position(|(n, _)| n == name)?;
    Some(pairs.remove(index).1)
}

/// An ODF length in points, for comparing width with height.
fn points(length: &str) -> Option<f64> {
    let split = length.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = length.split_at(split);
    let number: f64 = number.parse().ok()?;
    let per_unit = match unit {
        "in" => 72.0,
        "cm" => 72.0 / 2.54,
        "mm" => 72.0 / 25.4,
        "pt" => 1.0,
        "pc" => 12.0,
        _ => return None,
    };
    Some(number * per_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A4: (i64, i64) = (11906, 16838);

    #[test]
    fn layouts_without_a_size_get_the_default_paper_turned() {
        let xml = r#"<style:page-layout style:name="pm1"><style:page-layout-properties style:print-orientation="portrait" fo:margin-top="0.7874in" style:writing-mode="lr-tb"/></style:page-layout>"#;
        let turned = to_landscape(xml, A4);
        assert_eq!(
            turned,
            r#"<style:page-layout style:name="pm1"><style:page-layout-properties fo:margin-top="0.7874in" style:writing-mode="lr-tb" fo:page-width="11.6931in" fo:page-height="8.2681in" style:print-orientation="landscape"/></style:page-layout>"#
        );
    }

    #[test]
    fn portrait_sizes_are_swapped_and_landscape_ones_kept() {
        let xml = concat!(
            r#"<a><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm" style:print-orientation="portrait">"#,
            r#"<style:columns/></style:page-layout-properties>"#,
            r#"<style:page-layout-properties fo:page-width="11in" fo:page-height="8.5in"/></a>"#
        );
        let turned = to_landscape(xml, A4);
        assert_eq!(
            turned,
            concat!(
                r#"<a><style:page-layout-properties fo:page-width="29.7cm" fo:page-height="21cm" style:print-orientation="landscape">"#,
                r#"<style:columns/></style:page-layout-properties>"#,
                r#"<style:page-layout-properties fo:page-width="11in" fo:page-height="8.5in" style:print-orientation="landscape"/></a>"#
            )
        );
    }

    #[test]
    fn documents_without_page_layouts_are_unchanged() {
        let xml = "<office:document><table:table/></office:document>";
        assert_eq!(to_landscape(xml, A4), xml);
    }

    #[test]
    fn lengths_compare_across_units() {
        assert_eq!(points("1in"), Some(72.0));
        assert!(points("21cm").unwrap() < points("11in").unwrap());
        assert_eq!(points("12"), None);
        assert_eq!(points("3furlongs"), None);
    }
}
