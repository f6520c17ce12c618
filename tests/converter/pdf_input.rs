//! PDF documents as input: never given to LibreOffice, taken through the
//! PDF steps alone, alone or in a merge; each result checked with qpdf and
//! poppler.

use crate::support::*;
use docconv::proto::v1::{
    ConversionOptions, ListFormatsRequest, PdfEncryption, PdfSplit, PdfStandard, SubmitHeader, pdf_split,
};
use tonic::Code;
use tonic_types::StatusExt;

fn with_options(name: &str, options: ConversionOptions) -> SubmitHeader {
    SubmitHeader { options: Some(options), ..header(name) }
}

/// A fixture made into a PDF by the service, to be an input.
async fn pdf_of(fixture_name: &str) -> Vec<u8> {
    let data = std::fs::read(fixture(fixture_name)).unwrap();
    convert_on_shared(header(fixture_name), &data).await.1
}

/// Font names pdffonts lists, in order.
fn fonts(pdf: &[u8]) -> Vec<String> {
    let list = poppler_with("pdffonts", &[], pdf).unwrap();
    list.lines().skip(2).filter_map(|l| l.split_whitespace().next().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_pdf_is_taken_as_it_is_without_libreoffice() {
    let input = pdf_of("pages_3.docx").await;
    let (job, pdf) = convert_on_shared(header("scan.pdf"), &input).await;
    let output = job.output.clone().unwrap();
    assert_eq!((output.file_name.as_str(), output.content_type.as_str()), ("scan.pdf", "application/pdf"));
    assert_eq!(output.page_count, 3);
    assert!(qpdf_check(&pdf), "qpdf --check finds faults");
    // The same pages, text and fonts: LibreOffice (which would import it
    // into Draw and rewrite it) never saw it, and no worker time was spent.
    assert_eq!(pdf_text(&pdf, None), pdf_text(&input, None));
    assert_eq!(fonts(&pdf), fonts(&input));
    let timings = job.timings.unwrap();
    assert_eq!((timings.load_ms, timings.export_ms), (0, 0), "{timings:?}");

    let mut client = shared().client().await;
    let formats = client.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    let listed = formats.inputs.iter().find(|f| f.extension == "pdf").expect("pdf is an input");
    assert_eq!((listed.kind.as_str(), listed.targets.as_slice()), ("pdf", &["pdf".to_owned()][..]));
}

#[tokio::test]
async fn page_ranges_of_a_pdf_are_selected_by_qpdf() {
    let input = pdf_of("pages_12.docx").await;
    let (job, pdf) =
        convert_on_shared(with_options("long.pdf", pdf_options(|p| p.page_ranges = "2-3,11-".into())), &input).await;
    let pages = qpdf_on(&["--show-npages"], &pdf);
    assert_eq!(String::from_utf8_lossy(&pages.stdout).trim(), "4");
    assert_eq!(job.output.unwrap().page_count, 4);
    for (page, text) in [(1, "Page 2"), (2, "Page 3"), (3, "Page 11"), (4, "Page 12")] {
        assert!(pdf_text(&pdf, Some(page)).contains(text), "page {page}");
    }
    // Past the end, nothing is left: the job says so.
    let mut client = shared().client().await;
    let job = submit(&mut client, with_options("long.pdf", pdf_options(|p| p.page_ranges = "13-".into())), &input)
        .await
        .unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(
        error.message.contains("options.pdf.page_ranges names none of the document's 12 pages"),
        "{}",
        error.message
    );
    // So does a part of a split that would be empty.
    let ranges = docconv::proto::v1::PageRanges { ranges: vec!["1".into(), "20-".into()] };
    let split = pdf_options(|p| p.split = Some(PdfSplit { by: Some(pdf_split::By::Ranges(ranges)) }));
    let job = submit(&mut client, with_options("long.pdf", split), &input).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(
        error.message.contains("options.pdf.split.ranges names none of the document's 12 pages"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_encrypted_pdf_opens_with_the_input_password_only() {
    let plain = pdf_of("page_1.docx").await;
    let locked = qpdf_rewrite(&plain, &["--encrypt", "user pw", "owner pw", "256", "--"]);
    let mut client = shared().client().await;
    // Without a password, the job says which field to give.
    let job = submit(&mut client, header("locked.pdf"), &locked).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, Code::FailedPrecondition as i32);
    assert!(error.message.contains("input_password"), "{}", error.message);
    let wrong = ConversionOptions { input_password: "guess".into(), ..Default::default() };
    let job = submit(&mut client, with_options("locked.pdf", wrong), &locked).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(error.message.starts_with("input_password does not open the document"), "{}", error.message);
    // With it, the result is the document, no longer locked (encryption
    // would lock it again).
    let right = ConversionOptions { input_password: "user pw".into(), ..Default::default() };
    let (job, pdf) = convert_on_shared(with_options("locked.pdf", right.clone()), &locked).await;
    assert_eq!(qpdf_on(&["--is-encrypted"], &pdf).status.code(), Some(2), "still encrypted");
    assert!(pdf_text(&pdf, None).contains("Page 1"));
    assert!(job.options.unwrap().input_password.is_empty(), "the password shows in the job");
    // A password for a PDF that has none is refused, as for office documents.
    let job = submit(&mut client, with_options("plain.pdf", right), &plain).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(error.message.contains("not password-protected"), "{}", error.message);
}

#[tokio::test]
async fn what_is_not_a_pdf_fails_as_a_damaged_document() {
    let mut client = shared().client().await;
    for data in [&b"hello, not a PDF"[..], b"%PDF-1.7\nnothing more"] {
        let job = submit(&mut client, header("fake.pdf"), data).await.unwrap();
        let error = wait_failed(&mut client, &job.id).await;
        assert_eq!(error.code, Code::InvalidArgument as i32);
        assert!(error.message.starts_with("the file is not a valid .pdf document"), "{}", error.message);
    }
}

#[tokio::test]
async fn options_only_libreoffice_applies_are_refused_for_a_pdf() {
    let mut client = shared().client().await;
    let input = b"%PDF-1.4 never read: the call is refused first";
    let cases: Vec<(ConversionOptions, &str)> = vec![
        (pdf_options(|p| p.standard = PdfStandard::PdfA2b as i32), "options.pdf.standard"),
        (pdf_options(|p| p.universal_access = true), "options.pdf.universal_access"),
        (pdf_options(|p| p.single_page_sheets = true), "options.pdf.single_page_sheets"),
        (pdf_options(|p| p.image_quality = 50), "options.pdf.image_quality"),
        (pdf_options(|p| p.max_image_resolution = 150), "options.pdf.max_image_resolution"),
        (pdf_options(|p| p.export_notes = Some(false)), "options.pdf.export_notes"),
        (pdf_options(|p| p.export_form_fields = Some(false)), "options.pdf.export_form_fields"),
        (pdf_options(|p| p.watermark = "DRAFT".into()), "options.pdf.watermark"),
        (pdf_options(|p| p.landscape = true), "options.pdf.landscape"),
    ];
    for (options, field) in cases {
        let status = submit(&mut client, with_options("in.pdf", options), input).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        assert!(bad_request.field_violations.iter().any(|v| v.field == field), "{field}: {bad_request:?}");
    }
    let to_docx = SubmitHeader { target_format: "docx".into(), ..header("in.pdf") };
    let status = submit(&mut client, to_docx, input).await.unwrap_err();
    assert!(status.message().contains("header.target_format"), "{}", status.message());
    // In a merge too: the option could not reach the PDF.
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let documents = [("page_1.docx", word), ("in.pdf", input.to_vec())];
    let sharp = with_options("page_1.docx", pdf_options(|p| p.image_quality = 50));
    let status = submit_merge(&mut client, sharp, &documents).await.unwrap_err();
    assert!(status.message().contains("options.pdf.image_quality"), "{}", status.message());
}

#[tokio::test]
async fn a_pdf_takes_the_finishing_steps() {
    let input = pdf_of("pages_3.docx").await;
    let every = PdfSplit { by: Some(pdf_split::By::EveryPages(1)) };
    let options = pdf_options(|p| {
        p.split = Some(every);
        p.encryption = Some(PdfEncryption { open_password: "pw".into(), ..Default::default() });
        p.metadata = Some(docconv::proto::v1::PdfMetadata { title: "From a PDF".into(), ..Default::default() });
    });
    let (job, zip) = convert_on_shared(with_options("three.pdf", options), &input).await;
    assert_eq!(job.output.unwrap().page_count, 3);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.zip"), zip).unwrap();
    let listing = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2]); print(len(z.namelist()))"])
        .arg(dir.path().join("r.zip"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "3");
    for part in 1..=3 {
        let data = std::fs::read(dir.path().join(format!("output-{part}.pdf"))).unwrap();
        assert_eq!(qpdf_on(&["--requires-password"], &data).status.code(), Some(0), "part {part} opens freely");
        let info = poppler_with("pdfinfo", &["-upw", "pw"], &data).unwrap();
        assert!(info.contains("Title:           From a PDF"), "{info}");
        assert!(info.contains("Pages:           1"), "{info}");
    }
}
