//! Every fixture converts with the result its README lists.

use crate::support::*;
use docconv::proto::v1::JobState;

/// (file, pages, text expected on page 1)
const EXPECTED: &[(&str, u32, &str)] = &[
    ("page_1.docx", 1, "Page 1"),
    ("page_2.docx", 1, "Page 2"),
    ("pages_3.docx", 3, "Page 1"),
    ("pages_12.docx", 12, "Page 1"),
    ("Special_Chars_ß.docx", 1, "Page 1"),
    ("singlepagesheets-scrolled.xlsx", 6, ""),
    ("sheet.csv", 1, "Alice"),
    ("slideshow.ppsx", 1, ""),
    ("slideshow.ppsm", 1, ""),
    ("libreoffice-embedded-image.fodt", 1, ""),
    ("libreoffice-linked-external.fodt", 1, "must not load"),
];

#[tokio::test]
async fn every_fixture_converts_with_the_right_pages_and_text() {
    let mut client = shared().client().await;
    for &(name, pages, text) in EXPECTED {
        let (job, pdf) = convert(&mut client, name).await;
        assert_eq!(pdf_pages(&pdf), pages, "{name}: pages");
        let output = job.output.as_ref().unwrap();
        assert_eq!(output.page_count, pages, "{name}: page_count in the job");
        assert_eq!(output.size_bytes, pdf.len() as u64, "{name}: size");
        assert_eq!(output.content_type, "application/pdf");
        assert!(pdf.starts_with(b"%PDF-"), "{name}: not a PDF");
        assert!(pdf_text(&pdf, Some(1)).contains(text), "{name}: page 1 lacks {text:?}");
    }
}

#[tokio::test]
async fn multi_page_documents_have_each_page_in_order() {
    let mut client = shared().client().await;
    for (name, pages) in [("pages_3.docx", 3), ("pages_12.docx", 12)] {
        let (_, pdf) = convert(&mut client, name).await;
        for page in 1..=pages {
            let text = pdf_text(&pdf, Some(page));
            assert!(text.contains(&format!("Page {page}")), "{name} page {page}: {text:?}");
        }
    }
}

#[tokio::test]
async fn output_is_named_after_the_upload() {
    let mut client = shared().client().await;
    let (job, _) = convert(&mut client, "Special_Chars_ß.docx").await;
    assert_eq!(job.file_name, "Special_Chars_ß.docx");
    assert_eq!(job.output.unwrap().file_name, "Special_Chars_ß.pdf");
}

#[tokio::test]
async fn csv_sheet_carries_its_own_name_not_a_temporary_one() {
    let mut client = shared().client().await;
    let (job, pdf) = convert(&mut client, "sheet.csv").await;
    let text = pdf_text(&pdf, None);
    for needle in ["Alice", "Bob", "100", "200"] {
        assert!(text.contains(needle), "missing {needle:?} in {text:?}");
    }
    assert!(!text.contains("input"), "a temporary file name leaked: {text:?}");
    assert!(!text.contains(&job.id), "the job id leaked: {text:?}");
}

#[tokio::test]
async fn embedded_images_are_kept() {
    let mut client = shared().client().await;
    let (_, pdf) = convert(&mut client, "libreoffice-embedded-image.fodt").await;
    assert!(pdf_images(&pdf) >= 1, "the embedded image is missing");
}

#[tokio::test]
async fn jobs_report_their_stage_timings() {
    let mut client = shared().client().await;
    let (job, _) = convert(&mut client, "pages_12.docx").await;
    let timings = job.timings.unwrap();
    assert!(timings.load_ms > 0, "{timings:?}");
    // The worker reports the end of loading from inside LibreOffice's load
    // call; without that event the whole conversion would count as load.
    assert!(timings.export_ms > 0, "{timings:?}");
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.attempts, 1);
}

/// The fonts a PDF embeds, by name without subset prefix, from pdffonts.
fn fonts(pdf: &[u8]) -> Vec<String> {
    let listing = poppler_with("pdffonts", &[], pdf).unwrap();
    listing
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| name.split_once('+').map_or(name, |(_, font)| font).to_owned())
        .collect()
}

/// A text document whose paragraphs use `font`.
fn in_font(font: &str, text: &str) -> Vec<u8> {
    flat_odf(
        "text",
        &format!(
            "<office:font-face-decls><style:font-face style:name=\"{font}\" svg:font-family=\"{font}\"/>\
             </office:font-face-decls><office:automatic-styles><style:style style:name=\"P1\" \
             style:family=\"paragraph\"><style:text-properties style:font-name=\"{font}\" \
             style:font-name-asian=\"{font}\" style:font-name-complex=\"{font}\"/></style:style>\
             </office:automatic-styles>"
        ),
        &format!("<text:p text:style-name=\"P1\">{text}</text:p>"),
    )
}

#[tokio::test]
async fn microsoft_fonts_get_metric_compatible_stand_ins() {
    let mut client = shared().client().await;
    for (font, stand_in) in [
        ("Calibri", "Carlito"),
        ("Cambria", "Caladea"),
        ("Arial", "LiberationSans"),
        ("Times New Roman", "LiberationSerif"),
        ("Courier New", "LiberationMono"),
    ] {
        let job = submit(&mut client, header("font.fodt"), &in_font(font, "Quarterly figures")).await.unwrap();
        let job = wait_end(&mut client, &job.id).await;
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
        let pdf = read_result(&mut client, &job.id, 0).await;
        let used = fonts(&pdf);
        assert!(used.iter().any(|f| f.starts_with(stand_in)), "{font}: {used:?}");
    }
}

#[tokio::test]
async fn cjk_arabic_hebrew_and_indic_text_render_with_covering_fonts() {
    let mut client = shared().client().await;
    for text in ["中文文档的标题", "日本語の文書", "한국어 문서", "مستند عربي", "מסמך בעברית", "हिन्दी दस्तावेज़"]
    {
        let job = submit(&mut client, header("script.fodt"), &text_document(&format!("<text:p>{text}</text:p>")))
            .await
            .unwrap();
        let job = wait_end(&mut client, &job.id).await;
        assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
        let pdf = read_result(&mut client, &job.id, 0).await;
        let used = fonts(&pdf);
        assert!(used.iter().any(|f| f.starts_with("Noto") || f.starts_with("DejaVu")), "{text}: {used:?}");
        // Every word is in the PDF's text: nothing became boxes.
        let extracted: String = pdf_text(&pdf, None).split_whitespace().collect();
        for word in text.split_whitespace() {
            assert!(extracted.contains(word) || right_to_left(word), "{text}: {extracted:?}");
        }
    }
}

/// pdftotext may give right-to-left words in visual order; for them the
/// font check above carries the proof.
fn right_to_left(word: &str) -> bool {
    word.chars().any(|c| ('\u{0590}'..='\u{06FF}').contains(&c))
}
