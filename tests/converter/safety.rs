//! Bad and hostile input: clear errors, nothing read from outside the job,
//! no network access, and the service keeps serving.

use crate::reliability::Case;
use crate::support::*;
use docconv::proto::v1::{JobState, SubmitHeader};
use tonic::Code;

/// A real local file for documents to link, and its `file://` URL.
fn local_image() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.png");
    std::fs::write(&secret, red_png()).unwrap();
    let href = format!("file://{}", secret.display());
    (dir, href)
}

/// Converts `document` to PDF and checks that its text is there and no
/// image is; the case counts a result that carries one as a local file read.
async fn assert_converted_without_images(case: &mut Case, header: SubmitHeader, document: &[u8], text: &str) {
    let mut client = shared().client().await;
    let name = header.file_name.clone();
    let job = case.submit(submit(&mut client, header, document).await).unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert!(pdf_text(&pdf, None).contains(text), "{name}");
    let images = pdf_images(&pdf);
    case.count("local_file_read", u64::from(images > 0));
    assert_eq!(images, 0, "{name}: the linked local file was embedded");
}

#[tokio::test]
async fn a_linked_local_file_is_never_read_into_the_pdf() {
    // The fixture links a path that may not exist here; this document links
    // a file that certainly does.
    let mut case = Case::hostile("linked local file", "linked image; the linked-external fixture");
    let (_dir, href) = local_image();
    let document = document_linking(&href);
    assert_converted_without_images(&mut case, header("linked.fodt"), &document, "Linked image below").await;

    let mut client = shared().client().await;
    let (job, pdf) = convert(&mut client, "libreoffice-linked-external.fodt").await;
    case.accepted(&job.id);
    let images = pdf_images(&pdf);
    case.count("local_file_read", u64::from(images > 0));
    assert_eq!(images, 0, "the fixture's linked file was embedded");
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn documents_turned_to_landscape_still_read_no_linked_file() {
    // Landscape sends a document through a second load, of LibreOffice's
    // own copy; the link it keeps must stay blocked there too.
    let mut case = Case::hostile("linked local file", "turned to landscape: text, spreadsheet");
    let (_dir, href) = local_image();
    for (name, document, text) in [
        ("linked.fodt", document_linking(&href), "Linked image below"),
        ("linked.fods", spreadsheet_linking(&href), "Beside the image"),
    ] {
        let pdf = docconv::proto::v1::PdfOptions { landscape: true, ..Default::default() };
        let options = docconv::proto::v1::ConversionOptions { pdf: Some(pdf), ..Default::default() };
        let landscape = SubmitHeader { options: Some(options), ..header(name) };
        assert_converted_without_images(&mut case, landscape, &document, text).await;
    }
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn a_linked_url_is_never_fetched() {
    let mut case = Case::hostile("linked URL", "image on a local listener");
    let listener = Listener::start().await;
    let mut client = shared().client().await;
    let document = document_linking(&format!("http://127.0.0.1:{}/tracker.png", listener.port));
    let job = case.submit(submit(&mut client, header("remote.fodt"), &document).await).unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded);
    let pdf = read_result(&mut client, &job.id, 0).await;
    assert_eq!(pdf_images(&pdf), 0);
    case.figure("connections", listener.connections());
    assert_eq!(listener.connections(), 0, "the worker connected to the linked URL");
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn macros_in_a_macro_enabled_show_do_not_stop_the_conversion() {
    let mut case = Case::hostile("macros", "macro-enabled show (.ppsm)");
    let mut client = shared().client().await;
    let (job, pdf) = convert(&mut client, "slideshow.ppsm").await;
    case.accepted(&job.id);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(pdf_pages(&pdf), 1);
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn random_bytes_fail_with_a_clear_message() {
    let mut case = Case::hostile("random bytes", "4000 bytes named .docx");
    let mut client = shared().client().await;
    let noise: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let started = std::time::Instant::now();
    let job = case.submit(submit(&mut client, header("noise.docx"), &noise).await).unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    case.recovered(started.elapsed(), "submitted → failed, saying why");
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(error.message.contains("not a valid .docx"), "{}", error.message);
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn a_damaged_zip_fails_with_a_clear_message() {
    let mut case = Case::hostile("damaged zip", "a zip header, then garbage (.xlsx)");
    let mut client = shared().client().await;
    let started = std::time::Instant::now();
    let job = case.submit(submit(&mut client, header("damaged.xlsx"), b"PK\x03\x04 and then garbage").await).unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    case.recovered(started.elapsed(), "submitted → failed, saying why");
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(error.message.contains("not a document LibreOffice can read"), "{}", error.message);
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn an_empty_upload_is_refused() {
    let mut case = Case::hostile("empty upload", "0 bytes named .docx");
    let mut client = shared().client().await;
    let status = case.submit(submit(&mut client, header("empty.docx"), b"").await).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("empty"));
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn a_password_protected_document_fails_fast_and_clearly() {
    let mut case = Case::hostile("encrypted", "password-protected .docx, no password");
    let mut client = shared().client().await;
    let started = std::time::Instant::now();
    let job = submit_fixture(&mut client, "protected_page_1.docx").await;
    case.accepted(&job.id);
    let error = wait_failed(&mut client, &job.id).await;
    case.recovered(started.elapsed(), "submitted → failed, saying why");
    assert_eq!(error.code, Code::FailedPrecondition as i32, "{error:?}");
    assert!(error.message.contains("password-protected"), "{}", error.message);
    // It says how to give the password, by the field's name.
    assert!(error.message.contains("input_password"), "{}", error.message);
    // Far below the 60 s deadline: LibreOffice was told no, not left waiting.
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn an_oversized_upload_is_refused_while_streaming() {
    let mut case = Case::hostile("oversized upload", "5 MiB streamed; 5 MiB declared (limit 4)");
    let mut client = shared().client().await;
    // The shared converter takes 4 MiB.
    let big = vec![b'a'; 5 * 1024 * 1024];
    let status = case.submit(submit(&mut client, header("big.txt"), &big).await).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("4 MiB"), "{}", status.message());

    // A declared size over the limit is refused before any data is read.
    let declared = SubmitHeader { size_bytes: Some(5 * 1024 * 1024), ..header("big.txt") };
    let status = case.submit(submit(&mut client, declared, b"x").await).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);

    // And the service goes on.
    let refused = std::time::Instant::now();
    case.accepted(&convert(&mut client, "page_1.docx").await.0.id);
    case.recovered(refused.elapsed(), "refused → next document converted");
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn a_chunk_over_one_mib_is_refused() {
    use docconv::proto::v1::{SubmitRequest, submit_request::Payload};
    let mut case = Case::hostile("oversized upload", "one chunk over 1 MiB");
    let mut client = shared().client().await;
    let messages = vec![
        SubmitRequest { payload: Some(Payload::Header(header("a.txt"))) },
        SubmitRequest { payload: Some(Payload::Data(vec![b'a'; 1024 * 1024 + 1])) },
    ];
    let status = case.submit(client.submit(tokio_stream::iter(messages)).await.map(|r| r.into_inner())).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn random_bytes_named_as_flat_odf_fail_clearly() {
    let mut case = Case::hostile("flat-ODF garbage", "random bytes as .fodt, .fods, .fodp");
    let mut client = shared().client().await;
    let noise: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let mut slowest = std::time::Duration::ZERO;
    for name in ["noise.fodt", "noise.fods", "noise.fodp"] {
        let started = std::time::Instant::now();
        let job = case.submit(submit(&mut client, header(name), &noise).await).unwrap();
        let error = wait_failed(&mut client, &job.id).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(error.code, Code::InvalidArgument as i32, "{name}");
        let extension = name.rsplit('.').next().unwrap();
        assert!(error.message.contains(&format!("not a valid .{extension}")), "{name}: {}", error.message);
    }
    case.recovered(slowest, "submitted → failed, saying why (the slowest of 3)");
    case.finish_on(shared()).await.assert_clean();
}

#[tokio::test]
async fn excels_unicode_text_converts_to_its_text() {
    // Excel's "Unicode text": UTF-16LE with a byte order mark, tab separated.
    let text = "Name\tCity\tAmount\r\nZoë\tMünchen\t12.5\r\nRenée\t€uropa\t7\r\n";
    let mut csv = vec![0xFF, 0xFE];
    csv.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut client = shared().client().await;
    let job = submit(&mut client, header("unicode.csv"), &csv).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let pdf = read_result(&mut client, &job.id, 0).await;
    let words = pdf_text(&pdf, None);
    for word in ["Name", "City", "Zoë", "München", "Renée", "€uropa", "12.5"] {
        assert!(words.contains(word), "{word} missing from {words:?}");
    }
}
