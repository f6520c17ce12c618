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

/// The merged PDF's bookmarks as (title, page), depth first, from qpdf.
fn bookmarks(pdf: &[u8]) -> Vec<(String, u64)> {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output =
        std::process::Command::new("qpdf").args(["--json", "--json-key=outlines"]).arg(file.path()).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    fn walk(items: &serde_json::Value, into: &mut Vec<(String, u64)>) {
        for item in items.as_array().into_iter().flatten() {
            let page = item["destpageposfrom1"].as_u64().unwrap_or(0);
            into.push((item["title"].as_str().unwrap_or_default().to_owned(), page));
            walk(&item["kids"], into);
        }
    }
    let mut found = Vec::new();
    walk(&json["outlines"], &mut found);
    found
}

/// A text document of two chapters, each starting a page, the second with
/// a section.
fn chapters(first: &str, second: &str) -> Vec<u8> {
    flat_odf(
        "text",
        "<office:automatic-styles><style:style style:name=\"Break\" style:family=\"paragraph\">\
         <style:paragraph-properties fo:break-before=\"page\"/></style:style></office:automatic-styles>",
        &format!(
            "<text:h text:outline-level=\"1\">{first}</text:h><text:p>Text.</text:p>\
             <text:h text:style-name=\"Break\" text:outline-level=\"1\">{second}</text:h>\
             <text:h text:outline-level=\"2\">{second} section</text:h><text:p>More.</text:p>"
        ),
    )
}

#[tokio::test]
async fn a_merge_keeps_each_documents_bookmarks_at_its_pages() {
    let mut client = shared().client().await;
    let documents = [("a.fodt", chapters("Alpha", "Beta")), ("b.fodt", chapters("Gamma", "Delta"))];
    let job = submit_merge(&mut client, header("a.fodt"), &documents).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert_eq!(pdf_pages(&pdf), 4);
    let found = bookmarks(&pdf);
    let expected = [("Alpha", 1), ("Beta", 2), ("Beta section", 2), ("Gamma", 3), ("Delta", 4), ("Delta section", 4)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(t, p)| (t.to_string(), *p)).collect();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn pdfs_merge_as_they_are_with_converted_documents_and_keep_their_bookmarks() {
    let mut client = shared().client().await;
    // A PDF with bookmarks, made by the service from a document with
    // chapters.
    let job = submit(&mut client, header("a.fodt"), &chapters("Alpha", "Beta")).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    let made = read_result(&mut client, &job.id, 0).await;
    assert_eq!(bookmarks(&made).len(), 3);
    let page_2 = std::fs::read(fixture("page_2.docx")).unwrap();
    let documents = [("page_2.docx", page_2), ("chapters.pdf", made.clone()), ("b.fodt", chapters("Gamma", "Delta"))];
    let job = submit_merge(&mut client, header("page_2.docx"), &documents).await.unwrap();
    assert_eq!(job.merged_file_names, ["page_2.docx", "chapters.pdf", "b.fodt"]);
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert_eq!(pdf_pages(&pdf), 5);
    assert!(pdf_text(&pdf, Some(1)).contains("Page 2"));
    assert!(pdf_text(&pdf, Some(2)).contains("Alpha"));
    assert!(pdf_text(&pdf, Some(4)).contains("Gamma"));
    let expected = [("Alpha", 2), ("Beta", 3), ("Beta section", 3), ("Gamma", 4), ("Delta", 5), ("Delta section", 5)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(t, p)| (t.to_string(), *p)).collect();
    assert_eq!(bookmarks(&pdf), expected);

    // Without bookmarks, the PDF's own are left out too.
    let no_bookmarks = PdfOptions { export_bookmarks: Some(false), ..Default::default() };
    let plain = SubmitHeader {
        options: Some(ConversionOptions { pdf: Some(no_bookmarks), ..Default::default() }),
        ..header("chapters.pdf")
    };
    let job = submit(&mut client, plain.clone(), &made).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    let alone = read_result(&mut client, &job.id, 0).await;
    assert!(bookmarks(&alone).is_empty(), "{:?}", bookmarks(&alone));
    let job = submit_merge(&mut client, plain, &documents[1..]).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    let merged = read_result(&mut client, &job.id, 0).await;
    assert!(bookmarks(&merged).is_empty(), "{:?}", bookmarks(&merged));
}
