//! Conversion option flags: one per field of the API's ConversionOptions,
//! named as the field in kebab-case. The service checks the values (and
//! names a wrong one by its field), so nothing is checked twice here.

use super::export_switches::ExportSwitchArgs;
use super::viewer::ViewerArgs;
use clap::{Args, ValueEnum};
use docconv::proto::v1::{
    ConversionOptions, FacturXDocumentType, FacturXLevel, PageRanges, PdfEncryption, PdfFacturX, PdfMetadata,
    PdfOptions, PdfRotate, PdfSplit, PdfStandard, PdfTrapped, pdf_split,
};
use prost_types::Timestamp;
use std::collections::HashMap;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Conversion options")]
pub struct OptionArgs {
    /// The password that opens a protected input document
    #[arg(long, env = "DOCCONV_INPUT_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    input_password: Option<String>,
    /// PDF: an archival standard to conform to
    #[arg(long, value_enum, value_name = "STANDARD")]
    standard: Option<Standard>,
    /// PDF: tagged PDF conforming to PDF/UA (universal accessibility)
    #[arg(long)]
    universal_access: bool,
    /// PDF: pages to export, e.g. "2-3" or "1,4-" (from 4 to the end)
    #[arg(long, value_name = "RANGES")]
    page_ranges: Option<String>,
    /// PDF: spreadsheets put each sheet on one page, however large
    #[arg(long)]
    single_page_sheets: bool,
    /// PDF: JPEG quality of images, 1 to 100
    #[arg(long, value_name = "1-100")]
    image_quality: Option<u32>,
    /// PDF: downsample images above this resolution: 75, 150, 300, 600 or 1200 DPI
    #[arg(long, value_name = "DPI")]
    max_image_resolution: Option<u32>,
    /// PDF: export headings as bookmarks [default: true]
    #[arg(long, value_name = "BOOL")]
    export_bookmarks: Option<bool>,
    /// PDF: export comments as annotations [default: true]
    #[arg(long, value_name = "BOOL")]
    export_notes: Option<bool>,
    /// PDF: export form controls as form fields [default: true]
    #[arg(long, value_name = "BOOL")]
    export_form_fields: Option<bool>,
    /// PDF: text drawn across every page, e.g. DRAFT
    #[arg(long, value_name = "TEXT")]
    watermark: Option<String>,
    /// PDF: turn portrait pages of text documents and spreadsheets to landscape
    #[arg(long)]
    landscape: bool,
    /// PDF encryption: the password needed to open the PDF
    #[arg(long, env = "DOCCONV_OPEN_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    open_password: Option<String>,
    /// PDF encryption: the password needed to change permissions (required
    /// to restrict them)
    #[arg(long, env = "DOCCONV_OWNER_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    owner_password: Option<String>,
    /// PDF encryption: readers without the owner password may print
    #[arg(long)]
    allow_printing: bool,
    /// PDF encryption: readers without the owner password may copy text
    #[arg(long)]
    allow_copying: bool,
    /// PDF encryption: readers without the owner password may edit (and
    /// so annotate, fill in forms and assemble)
    #[arg(long)]
    allow_editing: bool,
    /// PDF encryption: readers without the owner password may add comments
    /// and fill in forms
    #[arg(long)]
    allow_annotating: bool,
    /// PDF encryption: readers without the owner password may fill in forms
    #[arg(long)]
    allow_filling_forms: bool,
    /// PDF encryption: readers without the owner password may insert,
    /// delete and turn pages
    #[arg(long)]
    allow_assembling: bool,
    /// PDF metadata: the document's title
    #[arg(long, value_name = "TEXT")]
    title: Option<String>,
    /// PDF metadata: the document's author
    #[arg(long, value_name = "TEXT")]
    author: Option<String>,
    /// PDF metadata: the document's subject
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// PDF metadata: keywords, comma-separated or the flag repeated
    #[arg(long, value_name = "WORDS", value_delimiter = ',')]
    keywords: Vec<String>,
    /// PDF metadata: the application the original document was made with
    #[arg(long, value_name = "TEXT")]
    creator: Option<String>,
    /// PDF metadata: the application that made the PDF
    #[arg(long, value_name = "TEXT")]
    producer: Option<String>,
    /// PDF metadata: when the document was made, e.g. 2026-05-04T10:00:00Z
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    creation_time: Option<Timestamp>,
    /// PDF metadata: when the document was last changed, e.g. 2026-05-04T10:00:00Z
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    modification_time: Option<Timestamp>,
    /// PDF metadata: whether the document has been trapped for printing
    #[arg(long, value_enum, value_name = "TRAPPED")]
    trapped: Option<Trapped>,
    /// PDF metadata: a custom entry, e.g. Department=Finance, the flag
    /// repeated for each
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_entry)]
    custom: Vec<(String, String)>,
    /// PDF: turn pages clockwise by 90, 180 or 270 degrees
    #[arg(long, value_name = "DEGREES")]
    rotate: Option<u32>,
    /// PDF: the pages --rotate turns, e.g. "1,3-" [default: every page]
    #[arg(long, value_name = "RANGES", requires = "rotate")]
    rotate_pages: Option<String>,
    /// PDF: draw form fields and annotations into the pages
    #[arg(long)]
    flatten: bool,
    /// PDF split: a zip with one PDF per this many pages
    #[arg(long, value_name = "PAGES", conflicts_with = "split_ranges")]
    split_every_pages: Option<u32>,
    /// PDF split: a zip with one PDF per page range ("1-2", "3,5", "6-"),
    /// the flag repeated for each
    #[arg(long, value_name = "RANGES")]
    split_ranges: Vec<String>,
    #[command(flatten)]
    switches: ExportSwitchArgs,
    #[command(flatten)]
    viewer: ViewerArgs,
    /// PDF: a Factur-X / ZUGFeRD invoice (PDF/A-3b) of this profile; the
    /// invoice's XML is the one XML file given with --attach
    #[arg(long, value_enum, value_name = "LEVEL")]
    factur_x: Option<FacturXLevelArg>,
    /// PDF, with --factur-x: what the document is [default: invoice]
    #[arg(long, value_enum, value_name = "TYPE", requires = "factur_x")]
    factur_x_document_type: Option<FacturXDocumentTypeArg>,
    /// PDF, with --factur-x: the Factur-X version of the XML [default: 1.0]
    #[arg(long, value_name = "VERSION", requires = "factur_x")]
    factur_x_version: Option<String>,
}

/// `FacturXLevel` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacturXLevelArg {
    Minimum,
    #[value(name = "basic-wl")]
    BasicWl,
    Basic,
    /// Also called comfort
    #[value(name = "en16931", alias = "comfort")]
    En16931,
    Extended,
    Xrechnung,
}

/// `FacturXDocumentType` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacturXDocumentTypeArg {
    Invoice,
    Order,
    OrderResponse,
    OrderChange,
}

impl FacturXLevelArg {
    fn level(self) -> FacturXLevel {
        match self {
            FacturXLevelArg::Minimum => FacturXLevel::Minimum,
            FacturXLevelArg::BasicWl => FacturXLevel::BasicWl,
            FacturXLevelArg::Basic => FacturXLevel::Basic,
            FacturXLevelArg::En16931 => FacturXLevel::En16931,
            FacturXLevelArg::Extended => FacturXLevel::Extended,
            FacturXLevelArg::Xrechnung => FacturXLevel::Xrechnung,
        }
    }
}

impl FacturXDocumentTypeArg {
    fn document_type(self) -> FacturXDocumentType {
        match self {
            FacturXDocumentTypeArg::Invoice => FacturXDocumentType::Invoice,
            FacturXDocumentTypeArg::Order => FacturXDocumentType::Order,
            FacturXDocumentTypeArg::OrderResponse => FacturXDocumentType::OrderResponse,
            FacturXDocumentTypeArg::OrderChange => FacturXDocumentType::OrderChange,
        }
    }
}

/// `PdfStandard` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    #[value(name = "pdf-a-1b")]
    PdfA1b,
    #[value(name = "pdf-a-2b")]
    PdfA2b,
    #[value(name = "pdf-a-3b")]
    PdfA3b,
}

/// `PdfTrapped` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trapped {
    True,
    False,
    Unknown,
}

impl From<Trapped> for PdfTrapped {
    fn from(trapped: Trapped) -> PdfTrapped {
        match trapped {
            Trapped::True => PdfTrapped::True,
            Trapped::False => PdfTrapped::False,
            Trapped::Unknown => PdfTrapped::Unknown,
        }
    }
}

/// An RFC 3339 time, as protobuf's JSON writes Timestamps.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse().map_err(|_| format!("{text:?} is not a time such as 2026-05-04T10:00:00Z"))
}

/// NAME=VALUE; the value may hold '=' too.
fn parse_entry(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

impl From<Standard> for PdfStandard {
    fn from(standard: Standard) -> PdfStandard {
        match standard {
            Standard::PdfA1b => PdfStandard::PdfA1b,
            Standard::PdfA2b => PdfStandard::PdfA2b,
            Standard::PdfA3b => PdfStandard::PdfA3b,
        }
    }
}

impl OptionArgs {
    /// The options as the API takes them. PDF options stay unset unless a
    /// PDF flag was given: the service refuses them for other targets.
    pub fn to_options(&self) -> ConversionOptions {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let encryption = (self.open_password.is_some()
            || self.owner_password.is_some()
            || self.allow_printing
            || self.allow_copying
            || self.allow_editing
            || self.allow_annotating
            || self.allow_filling_forms
            || self.allow_assembling)
            .then(|| PdfEncryption {
                open_password: text(&self.open_password),
                owner_password: text(&self.owner_password),
                allow_printing: self.allow_printing,
                allow_copying: self.allow_copying,
                allow_editing: self.allow_editing,
                allow_annotating: self.allow_annotating,
                allow_filling_forms: self.allow_filling_forms,
                allow_assembling: self.allow_assembling,
            });
        let metadata = PdfMetadata {
            title: text(&self.title),
            author: text(&self.author),
            subject: text(&self.subject),
            keywords: self.keywords.clone(),
            creator: text(&self.creator),
            producer: text(&self.producer),
            creation_time: self.creation_time,
            modification_time: self.modification_time,
            trapped: self.trapped.map_or(PdfTrapped::Unspecified, PdfTrapped::from) as i32,
            custom: self.custom.iter().cloned().collect::<HashMap<_, _>>(),
        };
        // A flag given with an empty value still sends the message.
        let given = self.title.is_some()
            || self.author.is_some()
            || self.subject.is_some()
            || self.creator.is_some()
            || self.producer.is_some();
        let metadata = (given || metadata != PdfMetadata::default()).then_some(metadata);
        let rotate = self.rotate.map(|degrees| PdfRotate { degrees, pages: text(&self.rotate_pages) });
        let split = match (self.split_every_pages, self.split_ranges.is_empty()) {
            (Some(pages), _) => Some(PdfSplit { by: Some(pdf_split::By::EveryPages(pages)) }),
            (None, false) => {
                Some(PdfSplit { by: Some(pdf_split::By::Ranges(PageRanges { ranges: self.split_ranges.clone() })) })
            }
            (None, true) => None,
        };
        let mut pdf = PdfOptions {
            standard: self.standard.map_or(PdfStandard::Unspecified, PdfStandard::from) as i32,
            universal_access: self.universal_access,
            page_ranges: text(&self.page_ranges),
            single_page_sheets: self.single_page_sheets,
            image_quality: self.image_quality.unwrap_or(0),
            max_image_resolution: self.max_image_resolution.unwrap_or(0),
            export_bookmarks: self.export_bookmarks,
            export_notes: self.export_notes,
            export_form_fields: self.export_form_fields,
            watermark: text(&self.watermark),
            encryption,
            landscape: self.landscape,
            metadata,
            split,
            rotate,
            flatten: self.flatten,
            factur_x: self.factur_x.map(|level| PdfFacturX {
                conformance_level: level.level() as i32,
                document_type: self
                    .factur_x_document_type
                    .map_or(FacturXDocumentType::Unspecified, |t| t.document_type())
                    as i32,
                version: text(&self.factur_x_version),
            }),
            viewer: self.viewer.to_viewer(),
            bookmarks: self.viewer.bookmarks(),
            title_bookmarks: self.viewer.title_bookmarks(),
            // Set by `MarkArgs`.
            background: None,
            stamp: None,
            ..Default::default()
        };
        self.switches.apply(&mut pdf);
        ConversionOptions {
            input_password: text(&self.input_password),
            pdf: (pdf != PdfOptions::default()).then_some(pdf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use docconv::proto::v1::{PdfInitialView, PdfMagnification, PdfPageLayout};

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        options: OptionArgs,
    }

    fn parse(args: &[&str]) -> ConversionOptions {
        let all = std::iter::once("convert").chain(args.iter().copied());
        Command::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}")).options.to_options()
    }

    fn pdf(args: &[&str]) -> PdfOptions {
        parse(args).pdf.expect("PDF options")
    }

    #[test]
    fn no_flag_sends_no_options() {
        assert_eq!(parse(&[]), ConversionOptions::default());
        // A document password alone is no PDF option: other targets take it.
        let options = parse(&["--input-password", "secret"]);
        assert_eq!(options.input_password, "secret");
        assert_eq!(options.pdf, None);
    }

    #[test]
    fn each_pdf_flag_sets_its_field() {
        let cases: Vec<(&[&str], PdfOptions)> = vec![
            (&["--standard", "pdf-a-1b"], PdfOptions { standard: PdfStandard::PdfA1b as i32, ..Default::default() }),
            (&["--standard", "pdf-a-2b"], PdfOptions { standard: PdfStandard::PdfA2b as i32, ..Default::default() }),
            (&["--standard", "pdf-a-3b"], PdfOptions { standard: PdfStandard::PdfA3b as i32, ..Default::default() }),
            (&["--universal-access"], PdfOptions { universal_access: true, ..Default::default() }),
            (&["--page-ranges", "1,4-"], PdfOptions { page_ranges: "1,4-".into(), ..Default::default() }),
            (&["--single-page-sheets"], PdfOptions { single_page_sheets: true, ..Default::default() }),
            (&["--image-quality", "70"], PdfOptions { image_quality: 70, ..Default::default() }),
            (&["--max-image-resolution", "150"], PdfOptions { max_image_resolution: 150, ..Default::default() }),
            (&["--export-bookmarks", "false"], PdfOptions { export_bookmarks: Some(false), ..Default::default() }),
            (&["--export-notes=true"], PdfOptions { export_notes: Some(true), ..Default::default() }),
            (&["--export-form-fields", "false"], PdfOptions { export_form_fields: Some(false), ..Default::default() }),
            (&["--watermark", "DRAFT"], PdfOptions { watermark: "DRAFT".into(), ..Default::default() }),
            (&["--landscape"], PdfOptions { landscape: true, ..Default::default() }),
            (&["--flatten"], PdfOptions { flatten: true, ..Default::default() }),
            (
                &["--export-notes-pages", "--skip-empty-pages", "false", "--embed-original"],
                PdfOptions {
                    export_notes_pages: true,
                    skip_empty_pages: Some(false),
                    embed_original: true,
                    ..Default::default()
                },
            ),
            (
                &["--rotate", "90", "--rotate-pages", "2-"],
                PdfOptions { rotate: Some(PdfRotate { degrees: 90, pages: "2-".into() }), ..Default::default() },
            ),
            (
                &["--rotate", "180"],
                PdfOptions { rotate: Some(PdfRotate { degrees: 180, ..Default::default() }), ..Default::default() },
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(pdf(args), expected, "{args:?}");
        }
    }

    #[test]
    fn encryption_flags_fill_one_message() {
        let encryption = pdf(&["--open-password", "o", "--owner-password", "w", "--allow-printing", "--allow-editing"])
            .encryption
            .unwrap();
        let expected = PdfEncryption {
            open_password: "o".into(),
            owner_password: "w".into(),
            allow_printing: true,
            allow_copying: false,
            allow_editing: true,
            ..Default::default()
        };
        assert_eq!(encryption, expected);
        let lesser =
            pdf(&["--owner-password", "w", "--allow-annotating", "--allow-filling-forms", "--allow-assembling"])
                .encryption
                .unwrap();
        assert!(lesser.allow_annotating && lesser.allow_filling_forms && lesser.allow_assembling);
        // A permission alone still sends encryption, for the service to
        // say that it needs a password rather than drop it silently.
        assert!(pdf(&["--allow-copying"]).encryption.unwrap().allow_copying);
    }

    #[test]
    fn metadata_flags_fill_one_message() {
        let metadata =
            pdf(&["--title", "T", "--author", "A", "--subject", "S", "--keywords", "a,b", "--keywords", "c"])
                .metadata
                .unwrap();
        let expected = PdfMetadata {
            title: "T".into(),
            author: "A".into(),
            subject: "S".into(),
            keywords: vec!["a".into(), "b".into(), "c".into()],
            ..Default::default()
        };
        assert_eq!(metadata, expected);
        let more = pdf(&[
            "--creator",
            "Writer",
            "--producer",
            "",
            "--creation-time",
            "2026-05-04T10:00:00Z",
            "--trapped",
            "false",
            "--custom",
            "Department=Finance=1",
            "--custom",
            "Cycle=Q3",
        ])
        .metadata
        .unwrap();
        assert_eq!(more.creator, "Writer");
        assert_eq!(more.creation_time, Some(Timestamp { seconds: 1_777_888_800, nanos: 0 }));
        assert_eq!(more.trapped, PdfTrapped::False as i32);
        assert_eq!(more.custom["Department"], "Finance=1");
        assert_eq!(more.custom["Cycle"], "Q3");
        for bad in [&["--creation-time", "yesterday"][..], &["--custom", "novalue"], &["--rotate-pages", "1"]] {
            let all = std::iter::once("convert").chain(bad.iter().copied());
            assert!(Command::try_parse_from(all).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn viewer_and_bookmark_flags_fill_their_fields() {
        let options = pdf(&[
            "--initial-view",
            "outline",
            "--initial-page",
            "2",
            "--magnification",
            "zoom",
            "--zoom",
            "150",
            "--page-layout",
            "two-columns",
            "--first-page-on-left",
            "--hide-window-controls",
            "--open-bookmark-levels",
            "1",
            "--bookmarks",
            r#"[{"title": "Start", "page": 1, "children": [{"title": "End", "page": 2}]}]"#,
            "--title-bookmarks",
        ]);
        let viewer = options.viewer.unwrap();
        assert_eq!(viewer.initial_view(), PdfInitialView::Outline);
        assert_eq!((viewer.initial_page, viewer.zoom, viewer.open_bookmark_levels), (2, 150, 1));
        assert_eq!(viewer.magnification(), PdfMagnification::Zoom);
        assert_eq!(viewer.page_layout(), PdfPageLayout::TwoColumns);
        assert!(viewer.first_page_on_left && viewer.hide_window_controls && !viewer.full_screen);
        assert_eq!(options.bookmarks[0].children[0].page, 2);
        assert!(options.title_bookmarks);
        assert!(pdf(&["--full-screen"]).viewer.unwrap().full_screen);
        let bad = ["convert", "--bookmarks", "[{\"title\": 1}]"];
        assert!(Command::try_parse_from(bad).is_err());
    }

    #[test]
    fn split_by_pages_or_by_ranges_not_both() {
        assert_eq!(pdf(&["--split-every-pages", "2"]).split.unwrap().by, Some(pdf_split::By::EveryPages(2)));
        let ranges = pdf(&["--split-ranges", "1-2", "--split-ranges", "3,5"]).split.unwrap().by;
        let expected = PageRanges { ranges: vec!["1-2".into(), "3,5".into()] };
        assert_eq!(ranges, Some(pdf_split::By::Ranges(expected)));
        let both = ["convert", "--split-every-pages", "2", "--split-ranges", "1-2"];
        assert!(Command::try_parse_from(both).is_err());
    }

    #[test]
    fn factur_x_flags_fill_one_message() {
        let invoice = pdf(&["--factur-x", "comfort", "--factur-x-document-type", "order-change"]).factur_x.unwrap();
        let expected = PdfFacturX {
            conformance_level: FacturXLevel::En16931 as i32,
            document_type: FacturXDocumentType::OrderChange as i32,
            version: String::new(),
        };
        assert_eq!(invoice, expected);
        let invoice = pdf(&["--factur-x", "basic-wl", "--factur-x-version", "1.0"]).factur_x.unwrap();
        assert_eq!((invoice.conformance_level(), invoice.version.as_str()), (FacturXLevel::BasicWl, "1.0"));
        assert!(Command::try_parse_from(["convert", "--factur-x-version", "1.0"]).is_err());
        assert!(Command::try_parse_from(["convert", "--factur-x", "gold"]).is_err());
    }

    #[test]
    fn values_are_not_judged_here() {
        // The service names the field of a wrong value; the client passes it on.
        assert_eq!(pdf(&["--image-quality", "500"]).image_quality, 500);
        assert_eq!(pdf(&["--page-ranges", "3-1"]).page_ranges, "3-1");
        let unknown = ["convert", "--standard", "pdf-x"];
        assert!(Command::try_parse_from(unknown).is_err());
    }
}
