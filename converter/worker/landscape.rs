//! Turning a document's pages to landscape before it is exported, and
//! forgetting where a spreadsheet was scrolled to.
//!
//! LibreOfficeKit offers no way to change every page style of a loaded
//! document: the page-size command acts on the style under the cursor
//! (only the first page's, in a text document with a title page), and Calc
//! ignores it altogether. So the document goes through its own flat ODF
//! form: LibreOffice writes it, every page layout in that XML is turned,
//! and LibreOffice loads the result back. The XML is LibreOffice's output,
//! never the user's file, which keeps the rewriting simple.
//!
//! The same pass resets spreadsheets' views: a workbook saved scrolled down
//! (Excel's `topLeftCell`) otherwise exports its single-page sheets from
//! the first visible row, losing the rows above. The round trip through
//! flat ODF, without the view settings, starts every sheet at its top.

use super::lok::{self, Document, DocumentKind, Office};
use std::path::Path;
use std::sync::OnceLock;

/// What the pass changes.
#[derive(Clone, Copy, Debug)]
pub struct Changes {
    pub landscape: bool,
    pub reset_views: bool,
}

/// Returns the document reloaded with the `changes` made (the document
/// itself when there is nothing to do for its kind). The flat ODF copy is
/// written beside `output` (the job's result file) for the time it takes to
/// load it.
pub fn rewrite<'a>(
    office: &'a Office,
    document: Document<'a>,
    output: &Path,
    load_options: &str,
    changes: Changes,
) -> Result<Document<'a>, String> {
    let kind = document.kind();
    let reset_views = changes.reset_views && kind == DocumentKind::Spreadsheet;
    if !changes.landscape && !reset_views {
        return Ok(document);
    }
    let flat_format = match kind {
        DocumentKind::Text => "fodt",
        DocumentKind::Spreadsheet => "fods",
        kind => return Err(format!("a {kind:?} document cannot be turned to landscape")),
    };
    let scratch = output.with_extension(format!("landscape.{flat_format}"));
    let url = lok::file_url(&scratch)?;
    document.save_as(&url, flat_format, "")?;
    drop(document);
    let turned = std::fs::read_to_string(&scratch)
        .map_err(|e| format!("cannot read LibreOffice's flat ODF: {e}"))
        .map(|xml| if reset_views { without_view_settings(&xml) } else { xml })
        .and_then(|xml| match changes.landscape {
            true => to_landscape(&xml, || default_paper(office, load_options)),
            false => Ok(xml),
        })
        .and_then(|xml| std::fs::write(&scratch, xml).map_err(|e| format!("cannot write the turned pages: {e}")));
    let reloaded = turned.and_then(|()| office.load(&url, load_options));
    // The copy is only needed while loading; the job keeps its own input.
    let _ = std::fs::remove_file(&scratch);
    reloaded
}

/// `xml` without its view settings (scroll positions, selected cells),
/// which LibreOffice keeps in one config item set.
fn without_view_settings(xml: &str) -> String {
    const OPEN: &str = "<config:config-item-set";
    const CLOSE: &str = "</config:config-item-set>";
    let Some(start) = xml.find("<config:config-item-set config:name=\"ooo:view-settings\">") else {
        return xml.to_owned();
    };
    // Sets nest: the view settings end at the end tag that balances theirs.
    let (mut depth, mut at) = (0usize, start);
    loop {
        let open = xml[at..].find(OPEN).map(|i| at + i);
        let Some(close) = xml[at..].find(CLOSE).map(|i| at + i) else { return xml.to_owned() };
        match open {
            Some(open) if open < close => {
                depth += 1;
                at = open + OPEN.len();
            }
            _ => {
                depth -= 1;
                at = close + CLOSE.len();
                if depth == 0 {
                    return format!("{}{}", &xml[..start], &xml[at..]);
                }
            }
        }
    }
}

/// The paper LibreOffice gives page styles that name no size (it depends on
/// the system's paper setting): the page of a new text document, in twips.
/// Found once per worker.
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
/// than wide. Layouts that name no size (Calc leaves the default paper
/// implicit) get `paper()` (twips), turned; it is asked only for them.
fn to_landscape(xml: &str, mut paper: impl FnMut() -> Result<(i64, i64), String>) -> Result<String, String> {
    const TAG: &str = "<style:page-layout-properties";
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    while let Some(start) = rest.find(TAG) {
        let after = &rest[start + TAG.len()..];
        // LibreOffice escapes `>` inside attribute values, so the first one
        // ends the tag.
        let Some(end) = after.find('>') else { break };
        out.push_str(&rest[..start]);
        out.push_str(&turned_tag(&after[..end], &mut paper)?);
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The page layout properties tag for `attributes` (the text between the
/// tag name and its `>`, including any closing `/`).
fn turned_tag(attributes: &str, paper: &mut dyn FnMut() -> Result<(i64, i64), String>) -> Result<String, String> {
    let (body, self_closing) = match attributes.trim_end().strip_suffix('/') {
        Some(body) => (body, true),
        None => (attributes, false),
    };
    let mut pairs = parse_attributes(body);
    let inches = |twips: i64| format!("{:.4}in", twips as f64 / 1440.0);
    let (mut width, mut height) = match (take(&mut pairs, "fo:page-width"), take(&mut pairs, "fo:page-height")) {
        (Some(width), Some(height)) => (width, height),
        (width, height) => {
            let (paper_width, paper_height) = paper()?;
            (width.unwrap_or_else(|| inches(paper_width)), height.unwrap_or_else(|| inches(paper_height)))
        }
    };
    take(&mut pairs, "style:print-orientation");
    if let (Some(w), Some(h)) = (points(&width), points(&height))
        && w < h
    {
        std::mem::swap(&mut width, &mut height);
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
    Ok(tag)
}

/// `name="value"` pairs, values kept escaped as they were.
fn parse_attributes(mut text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    while let Some(eq) = text.find("=\"") {
        let name = text[..eq].trim();
        let value_and_rest = &text[eq + 2..];
        let Some(close) = value_and_rest.find('"') else {
            break;
        };
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
    fn view_settings_go_and_nothing_else() {
        let xml = "<office:settings><config:config-item-set config:name=\"ooo:view-settings\">\
                   <config:config-item config:name=\"VisibleAreaTop\">9</config:config-item>\
                   <config:config-item-map-indexed config:name=\"Views\"><config:config-item-map-entry>\
                   <config:config-item-set config:name=\"nested\"><config:config-item/></config:config-item-set>\
                   </config:config-item-map-entry></config:config-item-map-indexed></config:config-item-set>\
                   <config:config-item-set config:name=\"ooo:configuration-settings\"><kept/></config:config-item-set>\
                   </office:settings>";
        assert_eq!(
            without_view_settings(xml),
            "<office:settings><config:config-item-set config:name=\"ooo:configuration-settings\"><kept/>\
             </config:config-item-set></office:settings>"
        );
        assert_eq!(without_view_settings("<office:settings/>"), "<office:settings/>");
    }

    #[test]
    fn layouts_without_a_size_get_the_default_paper_turned() {
        let xml = r#"<style:page-layout style:name="pm1"><style:page-layout-properties style:print-orientation="portrait" fo:margin-top="0.7874in" style:writing-mode="lr-tb"/></style:page-layout>"#;
        let turned = to_landscape(xml, || Ok(A4)).unwrap();
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
        let turned = to_landscape(xml, || Err("not needed".into())).unwrap();
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
        assert_eq!(to_landscape(xml, || Ok(A4)).unwrap(), xml);
    }

    #[test]
    fn lengths_compare_across_units() {
        assert_eq!(points("1in"), Some(72.0));
        assert!(points("21cm").unwrap() < points("11in").unwrap());
        assert_eq!(points("12"), None);
        assert_eq!(points("3furlongs"), None);
    }
}
