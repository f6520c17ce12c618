//! Flags for how readers open the PDF (`PdfViewer`) and for its
//! bookmarks, named as the API's fields in kebab-case.

use clap::{Args, ValueEnum};
use docconv::proto::v1::{PdfBookmark, PdfInitialView, PdfMagnification, PdfPageLayout, PdfViewer};

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Conversion options")]
pub struct ViewerArgs {
    /// PDF viewer: the panel shown beside the pages
    #[arg(long, value_enum, value_name = "VIEW")]
    initial_view: Option<InitialView>,
    /// PDF viewer: the page shown first, from 1 (before any split)
    #[arg(long, value_name = "PAGE")]
    initial_page: Option<u32>,
    /// PDF viewer: how that page is zoomed
    #[arg(long, value_enum, value_name = "MAGNIFICATION")]
    magnification: Option<Magnification>,
    /// PDF viewer: the zoom in percent, with --magnification zoom
    #[arg(long, value_name = "PERCENT")]
    zoom: Option<u32>,
    /// PDF viewer: how pages are laid out
    #[arg(long, value_enum, value_name = "LAYOUT")]
    page_layout: Option<PageLayout>,
    /// PDF viewer: with --page-layout two-columns, the first page on the left
    #[arg(long)]
    first_page_on_left: bool,
    /// PDF viewer: resize the window to the first page shown
    #[arg(long)]
    resize_window_to_page: bool,
    /// PDF viewer: center the window on the screen
    #[arg(long)]
    center_window: bool,
    /// PDF viewer: open in full-screen mode
    #[arg(long)]
    full_screen: bool,
    /// PDF viewer: title the window with the document's title
    #[arg(long)]
    display_document_title: bool,
    /// PDF viewer: hide the reader's menu bar
    #[arg(long)]
    hide_menubar: bool,
    /// PDF viewer: hide the reader's toolbar
    #[arg(long)]
    hide_toolbar: bool,
    /// PDF viewer: hide the reader's panels and navigation controls
    #[arg(long)]
    hide_window_controls: bool,
    /// PDF viewer: how many levels of bookmarks show (1: the top level only)
    #[arg(long, value_name = "LEVELS")]
    open_bookmark_levels: Option<u32>,
    /// PDF: the result's bookmarks, replacing its own, as JSON:
    /// '[{"title": "Intro", "page": 1, "children": […]}]'
    #[arg(long, value_name = "JSON", value_parser = parse_bookmarks)]
    bookmarks: Option<Bookmarks>,
    /// PDF: one bookmark per document, titled with its file name, holding
    /// its own bookmarks
    #[arg(long)]
    title_bookmarks: bool,
}

/// Bookmarks given as one value (clap would take a bare `Vec` for a
/// repeated flag).
#[derive(Debug, Clone)]
pub struct Bookmarks(Vec<PdfBookmark>);

fn parse_bookmarks(text: &str) -> Result<Bookmarks, String> {
    docconv_gateway::bookmarks::parse(text).map(Bookmarks)
}

/// `PdfInitialView` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialView {
    None,
    Outline,
    Thumbnails,
}

/// `PdfMagnification` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magnification {
    FitPage,
    FitWidth,
    FitVisible,
    Zoom,
}

/// `PdfPageLayout` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageLayout {
    SinglePage,
    OneColumn,
    TwoColumns,
}

impl ViewerArgs {
    /// The viewer message, unless no viewer flag was given.
    pub fn to_viewer(&self) -> Option<PdfViewer> {
        let viewer = PdfViewer {
            initial_view: self.initial_view.map_or(PdfInitialView::Unspecified, |view| match view {
                InitialView::None => PdfInitialView::None,
                InitialView::Outline => PdfInitialView::Outline,
                InitialView::Thumbnails => PdfInitialView::Thumbnails,
            }) as i32,
            initial_page: self.initial_page.unwrap_or(0),
            magnification: self.magnification.map_or(PdfMagnification::Unspecified, |m| match m {
                Magnification::FitPage => PdfMagnification::FitPage,
                Magnification::FitWidth => PdfMagnification::FitWidth,
                Magnification::FitVisible => PdfMagnification::FitVisible,
                Magnification::Zoom => PdfMagnification::Zoom,
            }) as i32,
            zoom: self.zoom.unwrap_or(0),
            page_layout: self.page_layout.map_or(PdfPageLayout::Unspecified, |layout| match layout {
                PageLayout::SinglePage => PdfPageLayout::SinglePage,
                PageLayout::OneColumn => PdfPageLayout::OneColumn,
                PageLayout::TwoColumns => PdfPageLayout::TwoColumns,
            }) as i32,
            first_page_on_left: self.first_page_on_left,
            resize_window_to_page: self.resize_window_to_page,
            center_window: self.center_window,
            full_screen: self.full_screen,
            display_document_title: self.display_document_title,
            hide_menubar: self.hide_menubar,
            hide_toolbar: self.hide_toolbar,
            hide_window_controls: self.hide_window_controls,
            open_bookmark_levels: self.open_bookmark_levels.unwrap_or(0),
        };
        // A page or zoom of 0 given still sends the message, for the
        // service to judge.
        let given = self.initial_page.is_some() || self.zoom.is_some() || self.open_bookmark_levels.is_some();
        (given || viewer != PdfViewer::default()).then_some(viewer)
    }

    pub fn bookmarks(&self) -> Vec<PdfBookmark> {
        self.bookmarks.as_ref().map(|b| b.0.clone()).unwrap_or_default()
    }

    pub fn title_bookmarks(&self) -> bool {
        self.title_bookmarks
    }
}
