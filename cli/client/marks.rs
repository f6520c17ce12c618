//! Mark flags: `PdfOptions.background` (behind the page content) and
//! `stamp` (over it), one flag per field of `PdfMark`, prefixed with
//! `--background-` or `--stamp-`. A mark is text (`--…-text`) or a file
//! (`--…-file`, a PNG, JPEG or PDF), which is sent after the documents as
//! a further file of the same `Submit`, with `DocumentHeader.mark`. The
//! service checks the values, as for the options.

use super::attach::Attaching;
use clap::{Args, ValueEnum};
use docconv::proto::v1::{ConversionOptions, DocumentHeader, PdfMark, PdfMarkLayer, PdfMarkPosition};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Marks (PDF)")]
pub struct MarkArgs {
    /// Background (drawn behind the page content): its text, e.g. CONFIDENTIAL
    #[arg(long, value_name = "TEXT", conflicts_with = "background_file")]
    background_text: Option<String>,
    /// Background: a PNG or JPEG image, or a PDF (its first page), instead of text
    #[arg(long, value_name = "FILE")]
    background_file: Option<PathBuf>,
    /// Background: the pages, e.g. "1,3-" [default: every page]
    #[arg(long, value_name = "RANGES")]
    background_pages: Option<String>,
    /// Background text: an installed font family [default: DejaVu Sans]
    #[arg(long, value_name = "FAMILY")]
    background_font: Option<String>,
    /// Background text: its size in points [default: fills the page]
    #[arg(long, value_name = "POINTS")]
    background_font_size: Option<f32>,
    /// Background text: its colour, #RRGGBB [default: #808080]
    #[arg(long, value_name = "#RRGGBB")]
    background_color: Option<String>,
    /// Background: from 0 (invisible) to 1 (opaque) [default: 1]
    #[arg(long, value_name = "0-1")]
    background_opacity: Option<f32>,
    /// Background: degrees counter-clockwise [default: 45 for text, else 0]
    #[arg(long, value_name = "DEGREES", allow_hyphen_values = true)]
    background_angle: Option<f32>,
    /// Background: where on the page [default: center]
    #[arg(long, value_enum, value_name = "POSITION")]
    background_position: Option<Position>,
    /// Background: repeated across the whole page
    #[arg(long)]
    background_tiled: bool,
    /// Background: its width as a fraction of the page's [default: 0.5 for images]
    #[arg(long, value_name = "FRACTION")]
    background_scale: Option<f32>,
    /// Stamp (drawn over the page content): its text, e.g. COPY
    #[arg(long, value_name = "TEXT", conflicts_with = "stamp_file")]
    stamp_text: Option<String>,
    /// Stamp: a PNG or JPEG image, or a PDF (its first page), instead of text
    #[arg(long, value_name = "FILE")]
    stamp_file: Option<PathBuf>,
    /// Stamp: the pages, e.g. "1,3-" [default: every page]
    #[arg(long, value_name = "RANGES")]
    stamp_pages: Option<String>,
    /// Stamp text: an installed font family [default: DejaVu Sans]
    #[arg(long, value_name = "FAMILY")]
    stamp_font: Option<String>,
    /// Stamp text: its size in points [default: fills the page when centred, else 24]
    #[arg(long, value_name = "POINTS")]
    stamp_font_size: Option<f32>,
    /// Stamp text: its colour, #RRGGBB [default: #808080]
    #[arg(long, value_name = "#RRGGBB")]
    stamp_color: Option<String>,
    /// Stamp: from 0 (invisible) to 1 (opaque) [default: 1]
    #[arg(long, value_name = "0-1")]
    stamp_opacity: Option<f32>,
    /// Stamp: degrees counter-clockwise [default: 0]
    #[arg(long, value_name = "DEGREES", allow_hyphen_values = true)]
    stamp_angle: Option<f32>,
    /// Stamp: where on the page [default: center]
    #[arg(long, value_enum, value_name = "POSITION")]
    stamp_position: Option<Position>,
    /// Stamp: repeated across the whole page
    #[arg(long)]
    stamp_tiled: bool,
    /// Stamp: its width as a fraction of the page's [default: 0.5 for images]
    #[arg(long, value_name = "FRACTION")]
    stamp_scale: Option<f32>,
}

/// `PdfMarkPosition` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Center,
    TopLeft,
    Top,
    TopRight,
    Left,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl From<Position> for PdfMarkPosition {
    fn from(position: Position) -> PdfMarkPosition {
        match position {
            Position::Center => PdfMarkPosition::Center,
            Position::TopLeft => PdfMarkPosition::TopLeft,
            Position::Top => PdfMarkPosition::Top,
            Position::TopRight => PdfMarkPosition::TopRight,
            Position::Left => PdfMarkPosition::Left,
            Position::Right => PdfMarkPosition::Right,
            Position::BottomLeft => PdfMarkPosition::BottomLeft,
            Position::Bottom => PdfMarkPosition::Bottom,
            Position::BottomRight => PdfMarkPosition::BottomRight,
        }
    }
}

/// The flags of one mark, whichever its prefix.
struct Flags<'a> {
    text: &'a Option<String>,
    file: &'a Option<PathBuf>,
    pages: &'a Option<String>,
    font: &'a Option<String>,
    font_size: Option<f32>,
    color: &'a Option<String>,
    opacity: Option<f32>,
    angle: Option<f32>,
    position: Option<Position>,
    tiled: bool,
    scale: Option<f32>,
}

impl Flags<'_> {
    /// The mark, when any of its flags was given.
    fn mark(&self) -> Option<PdfMark> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let mark = PdfMark {
            text: text(self.text),
            pages: text(self.pages),
            font: text(self.font),
            font_size: self.font_size.unwrap_or(0.0),
            color: text(self.color),
            opacity: self.opacity,
            angle: self.angle,
            position: self.position.map_or(PdfMarkPosition::Unspecified, PdfMarkPosition::from) as i32,
            tiled: self.tiled,
            scale: self.scale.unwrap_or(0.0),
        };
        (self.text.is_some() || self.file.is_some() || mark != PdfMark::default()).then_some(mark)
    }
}

impl MarkArgs {
    fn background(&self) -> Flags<'_> {
        Flags {
            text: &self.background_text,
            file: &self.background_file,
            pages: &self.background_pages,
            font: &self.background_font,
            font_size: self.background_font_size,
            color: &self.background_color,
            opacity: self.background_opacity,
            angle: self.background_angle,
            position: self.background_position,
            tiled: self.background_tiled,
            scale: self.background_scale,
        }
    }

    fn stamp(&self) -> Flags<'_> {
        Flags {
            text: &self.stamp_text,
            file: &self.stamp_file,
            pages: &self.stamp_pages,
            font: &self.stamp_font,
            font_size: self.stamp_font_size,
            color: &self.stamp_color,
            opacity: self.stamp_opacity,
            angle: self.stamp_angle,
            position: self.stamp_position,
            tiled: self.stamp_tiled,
            scale: self.stamp_scale,
        }
    }

    /// `options` with the marks asked for.
    pub fn add_to(&self, mut options: ConversionOptions) -> ConversionOptions {
        let (background, stamp) = (self.background().mark(), self.stamp().mark());
        if background.is_some() || stamp.is_some() {
            let pdf = options.pdf.get_or_insert_with(Default::default);
            pdf.background = background;
            pdf.stamp = stamp;
        }
        options
    }

    /// The files of the marks, to send after the documents.
    pub fn files(&self) -> Vec<Attaching> {
        let layers = [(PdfMarkLayer::Background, &self.background_file), (PdfMarkLayer::Stamp, &self.stamp_file)];
        layers
            .into_iter()
            .filter_map(|(layer, file)| file.as_ref().map(|path| (layer, path)))
            .map(|(layer, path)| Attaching {
                path: path.clone(),
                header: DocumentHeader {
                    file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    mark: layer as i32,
                    ..Default::default()
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        marks: MarkArgs,
    }

    fn parse(args: &[&str]) -> MarkArgs {
        let all = std::iter::once("convert").chain(args.iter().copied());
        Command::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}")).marks
    }

    #[test]
    fn no_flag_asks_no_mark() {
        let marks = parse(&[]);
        assert_eq!(marks.add_to(ConversionOptions::default()), ConversionOptions::default());
        assert!(marks.files().is_empty());
    }

    #[test]
    fn each_flag_sets_its_field() {
        let marks = parse(&[
            "--background-text",
            "DRAFT",
            "--background-font",
            "DejaVu Serif",
            "--background-font-size",
            "72",
            "--background-color",
            "#C00000",
            "--background-opacity",
            "0.3",
            "--background-angle",
            "-30",
            "--background-tiled",
            "--stamp-file",
            "dir/seal.png",
            "--stamp-pages",
            "1",
            "--stamp-position",
            "bottom-right",
            "--stamp-scale",
            "0.2",
        ]);
        let pdf = marks.add_to(ConversionOptions::default()).pdf.unwrap();
        let background = PdfMark {
            text: "DRAFT".into(),
            font: "DejaVu Serif".into(),
            font_size: 72.0,
            color: "#C00000".into(),
            opacity: Some(0.3),
            angle: Some(-30.0),
            tiled: true,
            ..Default::default()
        };
        assert_eq!(pdf.background, Some(background));
        let stamp = PdfMark {
            pages: "1".into(),
            position: PdfMarkPosition::BottomRight as i32,
            scale: 0.2,
            ..Default::default()
        };
        assert_eq!(pdf.stamp, Some(stamp));
        let files = marks.files();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, PathBuf::from("dir/seal.png"));
        assert_eq!(files[0].header.file_name, "seal.png");
        assert_eq!(files[0].header.mark, PdfMarkLayer::Stamp as i32);
    }

    #[test]
    fn a_mark_is_text_or_a_file() {
        let both = ["convert", "--stamp-text", "COPY", "--stamp-file", "seal.png"];
        assert!(Command::try_parse_from(both).is_err());
    }
}
