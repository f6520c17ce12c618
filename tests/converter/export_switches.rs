//! LibreOffice's PDF export switches, each checked on the output against
//! the same document converted without it.

use crate::options::{document_with_a_photo, form_field_names, image_ppi, with_options};
use crate::support::*;
use docconv::proto::v1::{ConversionOptions, PdfOptions};

async fn pdf_of(name: &str, document: &[u8], edit: impl FnOnce(&mut PdfOptions)) -> Vec<u8> {
    let (job, pdf) = convert_on_shared(with_options(name, "pdf", pdf_options(edit)), document).await;
    assert_eq!(job.state(), docconv::proto::v1::JobState::Succeeded, "{job:?}");
    pdf
}

async fn default_pdf_of(name: &str, document: &[u8]) -> Vec<u8> {
    convert_on_shared(with_options(name, "pdf", ConversionOptions::default()), document).await.1
}

/// Two slides, the second hidden, each with speaker notes.
fn slides_with_notes() -> Vec<u8> {
    let slide = |name: &str, style: &str, text: &str| {
        format!(
            "<draw:page draw:name=\"{name}\" draw:style-name=\"{style}\" draw:master-page-name=\"Default\">\
             <draw:frame svg:x=\"2cm\" svg:y=\"2cm\" svg:width=\"20cm\" svg:height=\"3cm\"><draw:text-box>\
             <text:p>{text} on the slide</text:p></draw:text-box></draw:frame><presentation:notes>\
             <draw:frame presentation:class=\"notes\" svg:x=\"2cm\" svg:y=\"14cm\" svg:width=\"17cm\" \
             svg:height=\"10cm\"><draw:text-box><text:p>{text} in the notes</text:p></draw:text-box></draw:frame>\
             </presentation:notes></draw:page>"
        )
    };
    flat_odf(
        "presentation",
        "<office:automatic-styles><style:page-layout style:name=\"PM1\"><style:page-layout-properties \
         fo:page-width=\"28cm\" fo:page-height=\"15.75cm\"/></style:page-layout><style:style style:name=\"dp1\" \
         style:family=\"drawing-page\"/><style:style style:name=\"dp2\" style:family=\"drawing-page\">\
         <style:drawing-page-properties presentation:visibility=\"hidden\"/></style:style>\
         </office:automatic-styles><office:master-styles><style:master-page style:name=\"Default\" \
         style:page-layout-name=\"PM1\"/></office:master-styles>",
        &format!("{}{}", slide("s1", "dp1", "Shown"), slide("s2", "dp2", "Hidden")),
    )
}

#[tokio::test]
async fn hidden_slides_and_notes_pages_follow_the_switches() {
    let document = slides_with_notes();
    let default = default_pdf_of("talk.fodp", &document).await;
    assert_eq!(pdf_pages(&default), 1, "the hidden slide is left out by default");
    assert!(!pdf_text(&default, None).contains("Hidden"));

    let hidden = pdf_of("talk.fodp", &document, |p| p.export_hidden_slides = true).await;
    assert_eq!(pdf_pages(&hidden), 2);
    assert!(pdf_text(&hidden, Some(2)).contains("Hidden on the slide"));

    let notes = pdf_of("talk.fodp", &document, |p| p.export_notes_pages = true).await;
    assert_eq!(pdf_pages(&notes), 2, "the slide, then its notes page");
    assert!(!pdf_text(&notes, Some(1)).contains("in the notes"));
    assert!(pdf_text(&notes, Some(2)).contains("Shown in the notes"));

    let only_notes = pdf_of("talk.fodp", &document, |p| {
        p.export_notes_pages = true;
        p.export_only_notes_pages = true;
    })
    .await;
    assert_eq!(pdf_pages(&only_notes), 1, "the notes page alone");
    assert!(pdf_text(&only_notes, Some(1)).contains("Shown in the notes"));
}

/// A first page, then a chapter whose page style is for right-hand pages
/// only: LibreOffice inserts a blank left page before it.
fn chapter_on_a_right_page() -> Vec<u8> {
    flat_odf(
        "text",
        "<office:automatic-styles><style:page-layout style:name=\"pm1\"/><style:page-layout \
         style:name=\"pm2\" style:page-usage=\"right\"/><style:style style:name=\"P1\" style:family=\"paragraph\" \
         style:master-page-name=\"Right\"/></office:automatic-styles><office:master-styles>\
         <style:master-page style:name=\"Standard\" style:page-layout-name=\"pm1\"/><style:master-page \
         style:name=\"Right\" style:page-layout-name=\"pm2\"/></office:master-styles>",
        "<text:p>Title page</text:p><text:p text:style-name=\"P1\">Chapter one</text:p>",
    )
}

#[tokio::test]
async fn inserted_blank_pages_are_skipped_unless_asked_for() {
    let document = chapter_on_a_right_page();
    let default = default_pdf_of("book.fodt", &document).await;
    assert_eq!(pdf_pages(&default), 2, "LibreOffice leaves the inserted blank page out by default");
    let kept = pdf_of("book.fodt", &document, |p| p.skip_empty_pages = Some(false)).await;
    assert_eq!(pdf_pages(&kept), 3, "the blank page before the right-hand chapter");
    assert!(pdf_text(&kept, Some(2)).trim().is_empty());
    assert!(pdf_text(&kept, Some(3)).contains("Chapter one"));
}

#[tokio::test]
async fn placeholders_are_exported_when_asked() {
    let document = text_document(
        "<text:p>Dear <text:placeholder text:placeholder-type=\"text\" text:description=\"name\">\
         &lt;Recipient&gt;</text:placeholder>, welcome.</text:p>",
    );
    let default = default_pdf_of("letter.fodt", &document).await;
    assert!(pdf_text(&default, None).contains("Dear"));
    // LibreOffice prints a placeholder's text in capitals.
    let shows_it = |pdf: &[u8]| pdf_text(pdf, None).to_lowercase().contains("<recipient>");
    assert!(!shows_it(&default), "placeholders are left out by default");
    let filled = pdf_of("letter.fodt", &document, |p| p.export_placeholders = true).await;
    assert!(shows_it(&filled), "{}", pdf_text(&filled, None));
}

/// The encoding pdfimages reports for the first image ("jpeg", "image", …).
fn image_encoding(pdf: &[u8]) -> String {
    let list = poppler_with("pdfimages", &["-list"], pdf).unwrap();
    list.lines().nth(2).expect("an image").split_whitespace().nth(8).unwrap().to_owned()
}

#[tokio::test]
async fn images_stay_lossless_or_at_full_resolution_when_asked() {
    let document = document_with_a_photo();
    let default = default_pdf_of("photo.fodt", &document).await;
    assert_eq!(image_encoding(&default), "jpeg", "JPEG by default");
    assert!(image_ppi(&default) <= 310, "lowered to 300 DPI by default: {}", image_ppi(&default));

    let lossless = pdf_of("photo.fodt", &document, |p| p.lossless_images = true).await;
    assert_eq!(image_encoding(&lossless), "image", "Flate-compressed pixels");

    let full = pdf_of("photo.fodt", &document, |p| p.keep_image_resolution = true).await;
    // 600 pixels across 2 cm: 762 DPI.
    assert!(image_ppi(&full) > 700, "kept at {} DPI", image_ppi(&full));
}

#[tokio::test]
async fn bookmarks_become_named_destinations_when_asked() {
    // Bookmarks in the word processor's sense: named places in the text.
    let document = text_document(
        "<text:p><text:bookmark text:name=\"Introduction\"/>Text.</text:p>\
         <text:p><text:bookmark text:name=\"Results\"/>More.</text:p>",
    );
    let catalog = |pdf: &[u8]| qpdf_json(pdf, &["--json-key=qpdf"]).to_string();
    let default = default_pdf_of("paper.fodt", &document).await;
    assert!(!catalog(&default).contains("/Dests"), "no named destinations by default");
    let named = pdf_of("paper.fodt", &document, |p| p.named_destinations = true).await;
    let text = catalog(&named);
    assert!(text.contains("/Dests"), "no /Dests in the catalog");
    assert!(text.contains("Introduction") && text.contains("Results"), "destinations named after the bookmarks");
}

#[tokio::test]
async fn duplicate_field_names_are_kept_when_allowed() {
    let page = b"<!DOCTYPE html><html><body><form action=\"x\">\
        <p>Home <input type=\"text\" name=\"city\" value=\"Oslo\"></p>\
        <p>Work <input type=\"text\" name=\"city\" value=\"Bergen\"></p></form></body></html>";
    let default = default_pdf_of("form.html", page).await;
    let mut renamed = form_field_names(&default);
    renamed.sort();
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    assert_ne!(renamed[0], renamed[1], "LibreOffice renames a repeated field by default");
    let allowed = pdf_of("form.html", page, |p| p.allow_duplicate_field_names = true).await;
    let names = form_field_names(&allowed);
    assert!(!names.is_empty() && names.iter().all(|n| n == "city"), "{names:?}");
}

#[tokio::test]
async fn the_original_document_can_be_embedded() {
    let document = text_document("<text:p>Editable again</text:p>");
    let default = default_pdf_of("hybrid.fodt", &document).await;
    let hybrid = pdf_of("hybrid.fodt", &document, |p| p.embed_original = true).await;
    assert!(hybrid.len() > default.len() + 1000, "{} vs {} bytes", hybrid.len(), default.len());
    let catalog = qpdf_json(&hybrid, &["--json-key=qpdf"]).to_string();
    assert!(catalog.contains("AdditionalStreams"), "no embedded document: {catalog:.2000}");
    assert!(pdf_text(&hybrid, None).contains("Editable again"));
}
