//! Flags for LibreOffice's PDF export switches, one per field of
//! `PdfOptions` they set, named as the field in kebab-case.

use clap::Args;
use docconv::proto::v1::PdfOptions;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "PDF export switches (LibreOffice)")]
pub struct ExportSwitchArgs {
    /// Presentations: include slides hidden in the slide show
    #[arg(long)]
    export_hidden_slides: bool,
    /// Presentations: add a notes page per slide after the slides
    #[arg(long)]
    export_notes_pages: bool,
    /// Presentations: the notes pages alone (with --export-notes-pages)
    #[arg(long)]
    export_only_notes_pages: bool,
    /// Text documents: leave out blank pages inserted to start chapters on a right-hand page [default: true]
    #[arg(long, value_name = "BOOL")]
    skip_empty_pages: Option<bool>,
    /// Text documents: export placeholder fields a template leaves to fill in
    #[arg(long)]
    export_placeholders: bool,
    /// Keep images lossless instead of JPEG
    #[arg(long)]
    lossless_images: bool,
    /// Export bookmarks as named destinations too ("file.pdf#Heading")
    #[arg(long)]
    named_destinations: bool,
    /// Allow several form fields with the same name
    #[arg(long)]
    allow_duplicate_field_names: bool,
    /// Embed the document itself in the PDF (a hybrid PDF LibreOffice opens for editing)
    #[arg(long)]
    embed_original: bool,
    /// Keep images at their own resolution (not lowered to 300 DPI)
    #[arg(long)]
    keep_image_resolution: bool,
}

impl ExportSwitchArgs {
    /// Sets the switches given on `pdf`.
    pub fn apply(&self, pdf: &mut PdfOptions) {
        pdf.export_hidden_slides = self.export_hidden_slides;
        pdf.export_notes_pages = self.export_notes_pages;
        pdf.export_only_notes_pages = self.export_only_notes_pages;
        pdf.skip_empty_pages = self.skip_empty_pages;
        pdf.export_placeholders = self.export_placeholders;
        pdf.lossless_images = self.lossless_images;
        pdf.named_destinations = self.named_destinations;
        pdf.allow_duplicate_field_names = self.allow_duplicate_field_names;
        pdf.embed_original = self.embed_original;
        pdf.keep_image_resolution = self.keep_image_resolution;
    }
}
