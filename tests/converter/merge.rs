//! Several documents, one PDF.

use crate::support::*;
use docconv::proto::v1::{ConversionOptions, JobState, PdfOptions, PdfStandard, SubmitHeader};
use tonic::Code;

fn documents<'a>(names: &[&'a str]) -> Vec<(&'a str, Vec<u8>)> {
    names.iter().map(|&name| (name, std::fs::read(fixture(name)).unwrap())).collect()
}

#[tokio::test]
async fn documents_of_every_kind_merge_in_the_given_order() {
    let mut client = shared().client().await;
    let docs = documents(&["pages_3.docx", "sheet.csv", "page_2.docx"]);
    let job = submit_merge(&mut client, header("pages_3.docx"), &docs).await.unwrap();
    assert_eq!(job.merged_file_names, ["pages_3.docx", "sheet.csv", "page_2.docx"]);
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert_eq!(pdf_pages(&pdf), 5);
    assert_eq!(job.output.unwrap().page_count, 5);
    let expected = ["Page 1", "Page 2", "Page 3", "Alice", "Page 2"];
    for (page, text) in expected.iter().enumerate() {
        let found = pdf_text(&pdf, Some(page as u32 + 1));
        assert!(found.contains(text), "page {}: {found:?}", page + 1);
    }
}

#[tokio::test]
async fn a_bad_document_in_a_merge_is_named_in_the_failure() {
    let mut client = shared().client().await;
    let mut docs = documents(&["page_1.docx"]);
    docs.push(("broken.docx", b"not a word document".to_vec()));
    let job = submit_merge(&mut client, header("page_1.docx"), &docs).await.unwrap();
    let message = wait_failed(&mut client, &job.id).await.message;
    assert!(message.starts_with("document 2 (broken.docx): the file is not a valid .docx document"), "{message}");
}

#[tokio::test]
async fn what_cannot_survive_a_merge_is_refused() {
    let mut client = shared().client().await;
    let docs = documents(&["page_1.docx", "page_2.docx"]);
    let to_docx = SubmitHeader { target_format: "docx".into(), ..header("page_1.docx") };
    let status = submit_merge(&mut client, to_docx, &docs).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("header.target_format"), "{}", status.message());

    let pdf_a = PdfOptions { standard: PdfStandard::PdfA2b as i32, ..Default::default() };
    let archival = SubmitHeader {
        options: Some(ConversionOptions { pdf: Some(pdf_a), ..Default::default() }),
        ..header("page_1.docx")
    };
    let status = submit_merge(&mut client, archival, &docs).await.unwrap_err();
    assert!(status.message().contains("options.pdf.standard"), "{}", status.message());
}
