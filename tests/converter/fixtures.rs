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
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.attempts, 1);
}
