//! What the marks drawn on a finished PDF (`PdfOptions.background` and
//! `stamp`, see `postprocess::marks`) must satisfy: each field when the
//! options are checked; the file of a mark when its header arrives; and,
//! once the upload ended, that every mark without text got its file.

use super::{Violation, page_ranges, violation};
use docconv::proto::v1::{ConversionOptions, PdfMark, PdfMarkLayer, PdfMarkPosition, PdfOptions, PdfStandard};

/// Largest font size, in points: far past any page.
const MAX_FONT_SIZE: f32 = 1000.0;
/// Longest font family name.
const MAX_FONT_NAME: usize = 100;

/// The marks the options ask for, with the field each is named by.
pub fn asked(pdf: &PdfOptions) -> impl Iterator<Item = (PdfMarkLayer, &'static str, &PdfMark)> {
    let background = pdf.background.as_ref().map(|m| (PdfMarkLayer::Background, "options.pdf.background", m));
    let stamp = pdf.stamp.as_ref().map(|m| (PdfMarkLayer::Stamp, "options.pdf.stamp", m));
    background.into_iter().chain(stamp)
}

/// Checks every field of both marks.
pub fn check(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    for (_, field, mark) in asked(pdf) {
        check_mark(violations, field, mark, pdf.standard());
    }
}

fn check_mark(violations: &mut Vec<Violation>, field: &str, mark: &PdfMark, standard: PdfStandard) {
    let mut refuse = |name: &str, why: String| violations.push(violation(&format!("{field}.{name}"), why));
    if mark.text.chars().count() > super::MAX_TEXT || mark.text.chars().any(char::is_control) {
        refuse("text", format!("must be at most {} characters on one line", super::MAX_TEXT));
    }
    if !mark.pages.is_empty() && !page_ranges::is_valid(&mark.pages) {
        refuse(
            "pages",
            format!("{:?} is not a page range; write e.g. \"1\", \"2-3\" or \"4-\" (empty: every page)", mark.pages),
        );
    }
    let text = !mark.text.is_empty();
    let for_text = "is for text marks; this mark is the file sent with next_document.mark";
    if !mark.font.is_empty() {
        if !text {
            refuse("font", for_text.into());
        } else if mark.font.chars().count() > MAX_FONT_NAME || mark.font.chars().any(char::is_control) {
            refuse("font", format!("must be a font family name of at most {MAX_FONT_NAME} characters"));
        }
    }
    if mark.font_size != 0.0 {
        if !text {
            refuse("font_size", for_text.into());
        } else if !(mark.font_size > 0.0 && mark.font_size <= MAX_FONT_SIZE) {
            refuse("font_size", format!("must be above 0 and at most {MAX_FONT_SIZE} points (0: fitted to the page)"));
        }
    }
    if !mark.color.is_empty() {
        if !text {
            refuse("color", for_text.into());
        } else if parse_color(&mark.color).is_none() {
            refuse("color", format!("{:?} is not a colour; write \"#RRGGBB\", e.g. \"#C00000\"", mark.color));
        }
    }
    if let Some(opacity) = mark.opacity {
        if !(0.0..=1.0).contains(&opacity) {
            refuse("opacity", "must be from 0 (invisible) to 1 (opaque)".into());
        } else if opacity < 1.0 && standard == PdfStandard::PdfA1b {
            refuse("opacity", "PDF/A-1 forbids transparency: leave it unset (opaque) or use PDF_A_2B".into());
        }
    }
    if let Some(angle) = mark.angle
        && !(-360.0..=360.0).contains(&angle)
    {
        refuse("angle", "must be from -360 to 360 degrees (counter-clockwise)".into());
    }
    if PdfMarkPosition::try_from(mark.position).is_err() {
        refuse(
            "position",
            "unknown position; use CENTER, TOP_LEFT, TOP, TOP_RIGHT, LEFT, RIGHT, BOTTOM_LEFT, BOTTOM or BOTTOM_RIGHT"
                .into(),
        );
    }
    if !(0.0..=1.0).contains(&mark.scale) {
        refuse("scale", "must be a fraction of the page's width, from 0 to 1 (0: the default)".into());
    } else if mark.scale != 0.0 && mark.font_size != 0.0 {
        refuse("scale", "give font_size or scale, not both".into());
    }
}

/// "#RRGGBB" as red, green and blue from 0 to 1.
pub fn parse_color(text: &str) -> Option<[f32; 3]> {
    let hex = text.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok().map(|v| f32::from(v) / 255.0);
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// What a mark's file is, told by its name or MIME type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkFile {
    Png,
    Jpeg,
    Pdf,
}

impl MarkFile {
    fn of(file_name: &str, content_type: &str) -> Option<MarkFile> {
        let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        match (content_type, extension.as_str()) {
            ("image/png", _) | ("", "png") => Some(MarkFile::Png),
            ("image/jpeg", _) | ("", "jpg" | "jpeg") => Some(MarkFile::Jpeg),
            ("application/pdf", _) | ("", "pdf") => Some(MarkFile::Pdf),
            _ => None,
        }
    }
}

/// Checks the file of a mark (sent with `next_document.mark`), named
/// `file_name` with MIME type `content_type` (may be empty), given the
/// layers whose files came already.
pub fn check_file(
    layer: i32,
    file_name: &str,
    content_type: &str,
    options: &ConversionOptions,
    sent: &[PdfMarkLayer],
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let field = "next_document.mark";
    let Ok(layer) = PdfMarkLayer::try_from(layer) else {
        return vec![violation(field, "unknown layer; use BACKGROUND or STAMP")];
    };
    let none = PdfOptions::default();
    let pdf = options.pdf.as_ref().unwrap_or(&none);
    let Some((_, mark_field, mark)) = asked(pdf).find(|(l, _, _)| *l == layer) else {
        let option = if layer == PdfMarkLayer::Stamp { "stamp" } else { "background" };
        return vec![violation(
            field,
            format!("a file for a mark the options do not ask for: set options.pdf.{option}"),
        )];
    };
    if !mark.text.is_empty() {
        violations.push(violation(field, format!("{mark_field} has text already: a mark is text or a file, not both")));
    }
    if sent.contains(&layer) {
        violations.push(violation(field, format!("{mark_field} has its file already: send one file per mark")));
    }
    match MarkFile::of(file_name, content_type) {
        None => violations.push(violation(
            "next_document.file_name",
            format!("{file_name:?}: a mark is a PNG or JPEG image or a PDF (.png, .jpg, .pdf or their MIME types)"),
        )),
        Some(MarkFile::Pdf) => check_pdf_file(&mut violations, mark_field, mark, pdf),
        Some(_) => {}
    }
    violations
}

/// A PDF mark is placed as it is (`postprocess::marks`): what would need
/// drawing it anew is refused, and so are the standards its content cannot
/// be promised to meet.
fn check_pdf_file(violations: &mut Vec<Violation>, field: &str, mark: &PdfMark, pdf: &PdfOptions) {
    let placed = "a PDF mark is placed as it is, centred and shrunk to fit; use an image to";
    let mut refuse =
        |name: &str, what: &str| violations.push(violation(&format!("{field}.{name}"), format!("{placed} {what}")));
    if mark.position != PdfMarkPosition::Unspecified as i32 && mark.position != PdfMarkPosition::Center as i32 {
        refuse("position", "place it elsewhere");
    }
    if mark.angle.is_some_and(|a| a != 0.0) {
        refuse("angle", "turn it");
    }
    if mark.scale != 0.0 {
        refuse("scale", "size it");
    }
    if mark.tiled {
        refuse("tiled", "tile it");
    }
    if mark.opacity.is_some_and(|o| o != 1.0) {
        refuse("opacity", "make it translucent");
    }
    if pdf.standard != PdfStandard::Unspecified as i32 {
        violations.push(violation(
            "options.pdf.standard",
            "a PDF mark's fonts and colours cannot be promised to meet PDF/A; use text or an image",
        ));
    }
    if pdf.universal_access {
        violations.push(violation(
            "options.pdf.universal_access",
            "a PDF mark's content is not marked as an artifact, which PDF/UA requires; use text or an image",
        ));
    }
}

/// Once every file arrived: each mark without text needs its file.
pub fn check_files_sent(options: &ConversionOptions, sent: &[PdfMarkLayer]) -> Vec<Violation> {
    let Some(pdf) = &options.pdf else { return Vec::new() };
    asked(pdf)
        .filter(|(layer, _, mark)| mark.text.is_empty() && !sent.contains(layer))
        .map(|(layer, field, _)| {
            let name = if layer == PdfMarkLayer::Stamp { "STAMP" } else { "BACKGROUND" };
            violation(
                &format!("{field}.text"),
                format!("give text, or send the mark's image or PDF as a further file with next_document.mark {name}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(edit: impl FnOnce(&mut PdfOptions)) -> ConversionOptions {
        let mut pdf = PdfOptions::default();
        edit(&mut pdf);
        ConversionOptions { pdf: Some(pdf), ..Default::default() }
    }

    fn fields(pdf: &ConversionOptions) -> Vec<String> {
        let mut violations = Vec::new();
        check(&mut violations, pdf.pdf.as_ref().unwrap());
        violations.into_iter().map(|v| v.field).collect()
    }

    fn text(text: &str) -> PdfMark {
        PdfMark { text: text.into(), ..Default::default() }
    }

    #[test]
    fn each_bad_field_is_named() {
        let bad = options(|p| {
            p.background = Some(PdfMark {
                text: "DRAFT".into(),
                pages: "3-1".into(),
                font: "a\nb".into(),
                font_size: -1.0,
                color: "red".into(),
                opacity: Some(1.5),
                angle: Some(720.0),
                position: 42,
                scale: 2.0,
                ..Default::default()
            });
            p.stamp = Some(PdfMark { color: "#000000".into(), font_size: 10.0, scale: 0.5, ..text("COPY") });
        });
        assert_eq!(
            fields(&bad),
            [
                "options.pdf.background.pages",
                "options.pdf.background.font",
                "options.pdf.background.font_size",
                "options.pdf.background.color",
                "options.pdf.background.opacity",
                "options.pdf.background.angle",
                "options.pdf.background.position",
                "options.pdf.background.scale",
                "options.pdf.stamp.scale",
            ]
        );
        let good = options(|p| {
            p.background =
                Some(PdfMark { color: "#c0C0c0".into(), opacity: Some(0.3), angle: Some(-45.0), ..text("x") });
            p.stamp = Some(PdfMark { scale: 0.2, position: PdfMarkPosition::TopRight as i32, ..Default::default() });
        });
        assert!(fields(&good).is_empty());
        assert_eq!(parse_color("#FF8000"), Some([1.0, 128.0 / 255.0, 0.0]));
    }

    #[test]
    fn text_settings_need_text_and_pdf_a_1_no_transparency() {
        let image = options(|p| p.stamp = Some(PdfMark { font: "DejaVu Serif".into(), ..Default::default() }));
        assert_eq!(fields(&image), ["options.pdf.stamp.font"]);
        let translucent = |standard: PdfStandard| {
            options(|p| {
                p.standard = standard as i32;
                p.background = Some(PdfMark { opacity: Some(0.5), ..text("x") });
            })
        };
        assert_eq!(fields(&translucent(PdfStandard::PdfA1b)), ["options.pdf.background.opacity"]);
        assert!(fields(&translucent(PdfStandard::PdfA2b)).is_empty());
    }

    #[test]
    fn files_go_with_marks_that_want_them() {
        let both = options(|p| {
            p.background = Some(text("DRAFT"));
            p.stamp = Some(PdfMark::default());
        });
        let field_of = |v: Vec<Violation>| v.into_iter().map(|v| v.field).collect::<Vec<_>>();
        let stamp = PdfMarkLayer::Stamp as i32;
        assert!(check_file(stamp, "seal.png", "", &both, &[]).is_empty());
        assert_eq!(field_of(check_file(stamp, "seal.png", "", &both, &[PdfMarkLayer::Stamp])), ["next_document.mark"]);
        assert_eq!(
            field_of(check_file(PdfMarkLayer::Background as i32, "a.png", "", &both, &[])),
            ["next_document.mark"]
        );
        assert_eq!(field_of(check_file(stamp, "seal.gif", "", &both, &[])), ["next_document.file_name"]);
        assert!(check_file(stamp, "seal", "image/jpeg", &both, &[]).is_empty());
        assert_eq!(field_of(check_file(9, "a.png", "", &both, &[])), ["next_document.mark"]);
        let nothing = ConversionOptions::default();
        assert_eq!(field_of(check_file(stamp, "a.png", "", &nothing, &[])), ["next_document.mark"]);
        assert_eq!(field_of(check_files_sent(&both, &[])), ["options.pdf.stamp.text"]);
        assert!(check_files_sent(&both, &[PdfMarkLayer::Stamp]).is_empty());
    }

    #[test]
    fn a_pdf_mark_is_placed_as_it_is() {
        let placed = options(|p| {
            p.standard = PdfStandard::PdfA2b as i32;
            p.stamp = Some(PdfMark { angle: Some(30.0), tiled: true, ..Default::default() });
        });
        let fields: Vec<String> =
            check_file(PdfMarkLayer::Stamp as i32, "seal.pdf", "", &placed, &[]).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["options.pdf.stamp.angle", "options.pdf.stamp.tiled", "options.pdf.standard"]);
    }
}
