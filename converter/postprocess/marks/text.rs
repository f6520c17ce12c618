//! A text mark as the outlines of its glyphs, in the font fontconfig
//! finds for the family asked (`fc-match`, as LibreOffice finds fonts).
//! Drawing outlines instead of embedding the font keeps PDF/A valid with
//! no font subsetting. Glyphs are set left to right by their advance
//! widths, kerned by the font's `kern` table where it has one; there is no
//! shaping (no ligatures, no right-to-left or complex scripts), which a
//! line of mark text rarely needs. A character the font lacks is drawn as
//! the font's missing-glyph box.

use super::super::tools::{run_tool_for_output, tool_failed};
use crate::failure::Failure;
use docconv::proto::v1::PdfMark;
use ttf_parser::{Face, GlyphId, OutlineBuilder};

/// The family used when the mark names none.
const DEFAULT_FONT: &str = "DejaVu Sans";

/// The glyph outlines of a line of text, in font units, its box from
/// (0, 0) (the left end at the font's descender) to (`width`, `height`).
pub struct Outlines {
    /// PDF path operators, filled with the nonzero rule.
    pub path: Vec<u8>,
    pub width: f32,
    pub height: f32,
    pub units_per_em: f32,
}

impl Outlines {
    /// The outlines of `mark`'s text (the option `field`).
    pub async fn of(mark: &PdfMark, field: &'static str) -> Result<Outlines, Failure> {
        let family = if mark.font.is_empty() { DEFAULT_FONT } else { mark.font.as_str() };
        let (file, index) = find_font(family).await?;
        let data = tokio::fs::read(&file).await.map_err(|e| tool_failed("fc-match", &format!("{file}: {e}")))?;
        let face = Face::parse(&data, index).map_err(|e| Failure::MarkUnusable {
            field,
            reason: format!("the font {family:?} found as {file} cannot be read ({e}); name another"),
        })?;
        Ok(outline(&face, &mark.text))
    }
}

/// The file and face index of the installed font closest to `family`.
async fn find_font(family: &str) -> Result<(String, u32), Failure> {
    let pattern = escape(family);
    let args: [&std::ffi::OsStr; 3] = ["-f".as_ref(), "%{file}\n%{index}\n".as_ref(), pattern.as_ref()];
    let output = run_tool_for_output("fc-match", &args).await?;
    let text = String::from_utf8_lossy(&output);
    let mut lines = text.lines();
    let file = lines.next().filter(|f| !f.is_empty()).ok_or_else(|| tool_failed("fc-match", "no font found"))?;
    let index = lines.next().and_then(|i| i.trim().parse().ok()).unwrap_or(0);
    Ok((file.to_owned(), index))
}

/// A family name as a fontconfig pattern: '-', ':' and ',' have meanings
/// there, so they (and the escape itself) are escaped.
fn escape(family: &str) -> String {
    let mut pattern = String::with_capacity(family.len());
    for c in family.chars() {
        if matches!(c, '\\' | '-' | ':' | ',') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

fn outline(face: &Face, text: &str) -> Outlines {
    let descender = f32::from(face.descender());
    let height = f32::from(face.ascender()) - descender;
    let kerning = face.tables().kern.map(|kern| kern.subtables);
    let mut pen = Path { ops: Vec::new(), x: 0.0, dy: -descender, last: (0.0, 0.0) };
    let mut previous: Option<GlyphId> = None;
    for c in text.chars() {
        let glyph = face.glyph_index(c).unwrap_or(GlyphId(0));
        if let (Some(left), Some(subtables)) = (previous, kerning) {
            let kern = subtables
                .into_iter()
                .filter(|t| t.horizontal && !t.variable && !t.has_cross_stream)
                .find_map(|t| t.glyphs_kerning(left, glyph));
            pen.x += f32::from(kern.unwrap_or(0));
        }
        face.outline_glyph(glyph, &mut pen);
        pen.x += f32::from(face.glyph_hor_advance(glyph).unwrap_or(0));
        previous = Some(glyph);
    }
    Outlines { path: pen.ops, width: pen.x.max(1.0), height, units_per_em: f32::from(face.units_per_em()) }
}

/// Writes glyph outlines as PDF path operators, each glyph moved right to
/// the pen and up by the descender (so the box starts at 0).
struct Path {
    ops: Vec<u8>,
    x: f32,
    dy: f32,
    /// The current point, for turning quadratic curves into cubic ones.
    last: (f32, f32),
}

impl Path {
    fn point(&mut self, x: f32, y: f32) -> (f32, f32) {
        (x + self.x, y + self.dy)
    }

    fn write(&mut self, numbers: &[f32], operator: &str) {
        use std::io::Write;
        for n in numbers {
            let _ = write!(self.ops, "{} ", (n * 100.0).round() / 100.0);
        }
        let _ = writeln!(self.ops, "{operator}");
    }
}

impl OutlineBuilder for Path {
    fn move_to(&mut self, x: f32, y: f32) {
        let p = self.point(x, y);
        self.write(&[p.0, p.1], "m");
        self.last = p;
    }

    fn line_to(&mut self, x: f32, y: f32) {
        let p = self.point(x, y);
        self.write(&[p.0, p.1], "l");
        self.last = p;
    }

    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        // The cubic curve equal to the quadratic one: control points two
        // thirds of the way from each end to the quadratic's.
        let (q, p, start) = (self.point(x1, y1), self.point(x, y), self.last);
        let c1 = (start.0 + 2.0 / 3.0 * (q.0 - start.0), start.1 + 2.0 / 3.0 * (q.1 - start.1));
        let c2 = (p.0 + 2.0 / 3.0 * (q.0 - p.0), p.1 + 2.0 / 3.0 * (q.1 - p.1));
        self.write(&[c1.0, c1.1, c2.0, c2.1, p.0, p.1], "c");
        self.last = p;
    }

    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let (c1, c2, p) = (self.point(x1, y1), self.point(x2, y2), self.point(x, y));
        self.write(&[c1.0, c1.1, c2.0, c2.1, p.0, p.1], "c");
        self.last = p;
    }

    fn close(&mut self) {
        self.ops.extend_from_slice(b"h\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_are_escaped_for_fontconfig() {
        assert_eq!(escape("DejaVu Sans"), "DejaVu Sans");
        assert_eq!(escape("Noto Sans-Bold:x,y\\"), "Noto Sans\\-Bold\\:x\\,y\\\\");
    }

    #[tokio::test]
    async fn text_becomes_outlines_of_the_default_font() {
        let mark = PdfMark { text: "AV A".into(), ..Default::default() };
        let outlines = Outlines::of(&mark, "options.pdf.stamp").await.unwrap();
        let path = String::from_utf8(outlines.path).unwrap();
        // Three glyphs with outlines (the space has none): at least a
        // contour each, each closed.
        assert!(path.matches(" m\n").count() >= 3, "{path}");
        assert_eq!(path.matches(" m\n").count(), path.matches("h\n").count());
        assert!(path.ends_with("h\n"));
        // About two and a half em wide, in DejaVu Sans's 2048 units.
        assert_eq!(outlines.units_per_em, 2048.0);
        assert!(outlines.width > 1.5 * 2048.0 && outlines.width < 3.0 * 2048.0, "{}", outlines.width);
        // No glyph goes below the box.
        let lowest = path
            .lines()
            .flat_map(|l| {
                l.split_whitespace().filter_map(|n| n.parse::<f32>().ok()).skip(1).step_by(2).collect::<Vec<_>>()
            })
            .fold(f32::MAX, f32::min);
        assert!(lowest >= 0.0, "{lowest}");
    }
}
