//! Conversion options, each verified on the output itself.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use docconv::proto::v1::{ConversionOptions, Job, ListFormatsRequest, PdfEncryption, PdfStandard, SubmitHeader};
use tonic::Code;
use tonic_types::StatusExt;

pub fn with_options(name: &str, target: &str, options: ConversionOptions) -> SubmitHeader {
    SubmitHeader { target_format: target.into(), options: Some(options), ..header(name) }
}

async fn run_fixture(name: &str, target: &str, options: ConversionOptions) -> (Job, Vec<u8>) {
    let data = std::fs::read(fixture(name)).unwrap();
    convert_on_shared(with_options(name, target, options), &data).await
}

#[tokio::test]
async fn page_ranges_pick_the_pages() {
    let (_, pdf) = run_fixture("pages_12.docx", "pdf", pdf_options(|p| p.page_ranges = "2-3".into())).await;
    assert_eq!(pdf_pages(&pdf), 2);
    assert!(pdf_text(&pdf, Some(1)).contains("Page 2"));
    assert!(pdf_text(&pdf, Some(2)).contains("Page 3"));
    let (job, pdf) = run_fixture("pages_12.docx", "pdf", pdf_options(|p| p.page_ranges = "1,4-".into())).await;
    assert_eq!(pdf_pages(&pdf), 10);
    assert_eq!(job.output.unwrap().page_count, 10);
    assert!(pdf_text(&pdf, Some(2)).contains("Page 4"));
}

#[tokio::test]
async fn pdf_a_levels_are_declared_in_the_metadata() {
    for (standard, part) in [(PdfStandard::PdfA1b, 1), (PdfStandard::PdfA2b, 2), (PdfStandard::PdfA3b, 3)] {
        let (_, pdf) = run_fixture("page_1.docx", "pdf", pdf_options(|p| p.standard = standard as i32)).await;
        let meta = poppler_with("pdfinfo", &["-meta"], &pdf).unwrap();
        assert!(meta.contains(&format!("<pdfaid:part>{part}</pdfaid:part>")), "{standard:?}: {meta}");
        // LibreOffice tags PDF/A-1 output, making it level A, which includes
        // every requirement of level B.
        let level = if part == 1 { "A" } else { "B" };
        assert!(meta.contains(&format!("<pdfaid:conformance>{level}</pdfaid:conformance>")), "{standard:?}: {meta}");
        // (Level B's rules: LibreOffice's role map, which maps standard
        // types to themselves, fails a rule of level A.)
        let failed = crate::conformance::failed_rules(&pdf, &format!("{part}b"));
        assert!(failed.is_empty(), "{standard:?}: {failed:?}");
    }
    let (_, plain) = run_fixture("page_1.docx", "pdf", ConversionOptions::default()).await;
    assert!(!poppler_with("pdfinfo", &["-meta"], &plain).unwrap_or_default().contains("pdfaid"));
}

#[tokio::test]
async fn universal_access_makes_a_tagged_pdf_ua() {
    let (_, pdf) = run_fixture("page_1.docx", "pdf", pdf_options(|p| p.universal_access = true)).await;
    let info = poppler_with("pdfinfo", &[], &pdf).unwrap();
    assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{info}");
    assert!(poppler_with("pdfinfo", &["-meta"], &pdf).unwrap().contains("<pdfuaid:part>1</pdfuaid:part>"));
    let (_, plain) = run_fixture("page_1.docx", "pdf", ConversionOptions::default()).await;
    assert!(
        poppler_with("pdfinfo", &[], &plain).unwrap().lines().any(|l| l.starts_with("Tagged:") && l.ends_with("no"))
    );
}

/// (width, height) of the first page in points, from pdfinfo.
fn page_size(pdf: &[u8]) -> (f64, f64) {
    let info = poppler_with("pdfinfo", &[], pdf).unwrap();
    let line = info.lines().find(|l| l.starts_with("Page size:")).unwrap();
    let numbers: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[tokio::test]
async fn landscape_turns_text_pages_and_keeps_the_text() {
    let (_, portrait) = run_fixture("pages_3.docx", "pdf", ConversionOptions::default()).await;
    let (width, height) = page_size(&portrait);
    assert!(width < height);
    let (_, landscape) = run_fixture("pages_3.docx", "pdf", pdf_options(|p| p.landscape = true)).await;
    assert_eq!(page_size(&landscape), (height, width));
    for page in 1..=3 {
        assert!(pdf_text(&landscape, Some(page)).contains(&format!("Page {page}")));
    }
}

#[tokio::test]
async fn landscape_turns_every_page_style() {
    // A title page style and a body page style, both portrait.
    let layout = |name: &str, margin: &str| {
        format!(
            "<style:page-layout style:name=\"{name}\"><style:page-layout-properties fo:page-width=\"21cm\" \
             fo:page-height=\"29.7cm\" style:print-orientation=\"portrait\" fo:margin=\"{margin}\"/></style:page-layout>"
        )
    };
    let styles = format!(
        "<office:automatic-styles>{}{}\
         <style:style style:name=\"Body\" style:family=\"paragraph\" style:master-page-name=\"Body\"/>\
         </office:automatic-styles><office:master-styles>\
         <style:master-page style:name=\"Standard\" style:page-layout-name=\"title\"/>\
         <style:master-page style:name=\"Body\" style:page-layout-name=\"body\"/>\
         </office:master-styles>",
        layout("title", "2cm"),
        layout("body", "3cm")
    );
    let body = "<text:p>Title page</text:p><text:p text:style-name=\"Body\">Body page</text:p>";
    let document = flat_odf("text", &styles, body);
    let (_, pdf) =
        convert_on_shared(with_options("styles.fodt", "pdf", pdf_options(|p| p.landscape = true)), &document).await;
    assert_eq!(pdf_pages(&pdf), 2);
    for page in 1..=2 {
        let info = poppler_with("pdfinfo", &["-f", &page.to_string(), "-l", &page.to_string()], &pdf).unwrap();
        let line = info.lines().find(|l| l.contains("size:")).unwrap();
        let numbers: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        assert!(numbers[1] > numbers[2], "page {page} is not landscape: {line}");
    }
    assert!(pdf_text(&pdf, Some(2)).contains("Body page"));
}

#[tokio::test]
async fn landscape_turns_spreadsheet_pages_and_keeps_the_cells() {
    for input in ["singlepagesheets-scrolled.xlsx", "sheet.csv"] {
        let (_, portrait) = run_fixture(input, "pdf", ConversionOptions::default()).await;
        let (width, height) = page_size(&portrait);
        assert!(width < height, "{input}: {width}×{height}");
        let (_, landscape) = run_fixture(input, "pdf", pdf_options(|p| p.landscape = true)).await;
        assert_eq!(page_size(&landscape), (height, width), "{input}");
        // The same cells, fewer pages: wider pages hold more columns.
        let words =
            |text: String| text.split_whitespace().map(str::to_owned).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(words(pdf_text(&landscape, None)), words(pdf_text(&portrait, None)), "{input}");
        assert!(pdf_pages(&landscape) <= pdf_pages(&portrait), "{input}");
    }
}

#[tokio::test]
async fn single_page_sheets_put_each_sheet_on_one_page() {
    let (_, pdf) =
        run_fixture("singlepagesheets-scrolled.xlsx", "pdf", pdf_options(|p| p.single_page_sheets = true)).await;
    assert_eq!(pdf_pages(&pdf), 1);
    // The workbook was saved scrolled to row 37; the page still holds the
    // whole sheet, header row and first rows included.
    let text = pdf_text(&pdf, Some(1));
    assert!(text.contains("Chunk Type") && text.contains("CharTextSplit"), "{text}");
}

#[tokio::test]
async fn a_watermark_is_on_every_page() {
    let (_, pdf) = run_fixture("pages_3.docx", "pdf", pdf_options(|p| p.watermark = "CONFIDENTIAL".into())).await;
    for page in 1..=3 {
        assert!(pdf_text(&pdf, Some(page)).contains("CONFIDENTIAL"), "page {page}");
    }
}

#[tokio::test]
async fn encryption_requires_the_password_and_limits_permissions() {
    let encryption = PdfEncryption {
        open_password: "open sesame".into(),
        owner_password: "owner".into(),
        allow_printing: false,
        allow_copying: false,
        allow_editing: false,
        ..Default::default()
    };
    let options = pdf_options(|p| p.encryption = Some(encryption));
    let (job, pdf) = run_fixture("page_1.docx", "pdf", options).await;
    assert!(poppler_with("pdfinfo", &[], &pdf).is_none(), "opened without the password");
    let info = poppler_with("pdfinfo", &["-upw", "open sesame"], &pdf).unwrap();
    let encrypted = info.lines().find(|l| l.starts_with("Encrypted:")).unwrap_or_default();
    for expected in ["print:no", "copy:no", "change:no", "AES-256"] {
        assert!(encrypted.contains(expected), "{expected}: {encrypted}");
    }
    assert!(poppler_with("pdftotext", &["-upw", "open sesame"], &pdf).is_some());
    // Job states never show the passwords.
    let shown = job.options.unwrap().pdf.unwrap().encryption.unwrap();
    assert!(shown.open_password.is_empty() && shown.owner_password.is_empty());

    let printable = PdfEncryption { owner_password: "owner".into(), allow_printing: true, ..Default::default() };
    let (_, pdf) = run_fixture("page_1.docx", "pdf", pdf_options(|p| p.encryption = Some(printable))).await;
    let info = poppler_with("pdfinfo", &[], &pdf).expect("no open password: anyone opens it");
    assert!(info.contains("print:yes") && info.contains("copy:no"), "{info}");
}

#[tokio::test]
async fn metadata_is_written_into_the_pdf() {
    let metadata = docconv::proto::v1::PdfMetadata {
        title: "Quarterly report — Q3".into(),
        author: "Zoë Example".into(),
        subject: "Numbers".into(),
        keywords: vec!["finance".into(), "2026".into()],
        ..Default::default()
    };
    let options = pdf_options(|p| p.metadata = Some(metadata));
    let (_, pdf) = run_fixture("page_1.docx", "pdf", options.clone()).await;
    let info = poppler_with("pdfinfo", &[], &pdf).unwrap();
    for line in ["Title:           Quarterly report — Q3", "Author:          Zoë Example", "Subject:         Numbers"]
    {
        assert!(info.contains(line), "{line}: {info}");
    }
    assert!(info.lines().any(|l| l.starts_with("Keywords:") && l.contains("finance") && l.contains("2026")), "{info}");
    // With PDF/A, the XMP packet says the same.
    let mut archival = options;
    archival.pdf.as_mut().unwrap().standard = PdfStandard::PdfA2b as i32;
    let (_, pdf) = run_fixture("page_1.docx", "pdf", archival).await;
    let meta = poppler_with("pdfinfo", &["-meta"], &pdf).unwrap();
    assert!(meta.contains("Quarterly report — Q3") && meta.contains("<pdfaid:part>2</pdfaid:part>"), "{meta}");
    // Written anew by the tools, it is still PDF/A to a validator.
    let failed = crate::conformance::failed_rules(&pdf, "2b");
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test]
async fn results_split_into_a_zip_of_pdfs() {
    use docconv::proto::v1::{PageRanges, PdfSplit, pdf_split::By};
    let every = |n| pdf_options(move |p| p.split = Some(PdfSplit { by: Some(By::EveryPages(n)) }));
    let (job, zip) = run_fixture("pages_12.docx", "pdf", every(5)).await;
    let output = job.output.unwrap();
    assert_eq!(output.content_type, "application/zip");
    assert_eq!(output.file_name, "pages_12.zip");
    assert_eq!(output.page_count, 12);
    let parts = unzip(&zip);
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["output-1.pdf", "output-2.pdf", "output-3.pdf"]);
    let pages: Vec<u32> = parts.iter().map(|(_, pdf)| pdf_pages(pdf)).collect();
    assert_eq!(pages, [5, 5, 2]);
    assert!(pdf_text(&parts[1].1, Some(1)).contains("Page 6"));
    let mut client = shared().client().await;
    let preview = client.get_preview(docconv::proto::v1::GetPreviewRequest { id: job.id.clone() }).await;
    assert_eq!(preview.unwrap_err().code(), tonic::Code::FailedPrecondition, "parts have no one preview");

    let ranges = PageRanges { ranges: vec!["2-3".into(), "1,12".into(), "10-".into()] };
    let options = pdf_options(|p| p.split = Some(PdfSplit { by: Some(By::Ranges(ranges)) }));
    let (_, zip) = run_fixture("pages_12.docx", "pdf", options).await;
    let parts = unzip(&zip);
    let pages: Vec<u32> = parts.iter().map(|(_, pdf)| pdf_pages(pdf)).collect();
    assert_eq!(pages, [2, 2, 3]);
    assert!(pdf_text(&parts[1].1, Some(2)).contains("Page 12"));
}

#[tokio::test]
async fn pdf_results_have_a_preview_of_the_first_page() {
    use docconv::proto::v1::GetPreviewRequest;
    let (job, _) = run_fixture("pages_3.docx", "pdf", ConversionOptions::default()).await;
    let mut client = shared().client().await;
    let preview = client.get_preview(GetPreviewRequest { id: job.id.clone() }).await.unwrap().into_inner().png;
    assert!(preview.starts_with(b"\x89PNG\r\n\x1a\n"));
    let (width, height) = (
        u32::from_be_bytes(preview[16..20].try_into().unwrap()),
        u32::from_be_bytes(preview[20..24].try_into().unwrap()),
    );
    assert_eq!(width.max(height), 400, "{width}×{height}");
    assert!(width < height, "a portrait page gives a portrait preview");
    // Encrypted results still get one.
    let encryption = PdfEncryption { open_password: "pw".into(), ..Default::default() };
    let (encrypted, _) = run_fixture("page_1.docx", "pdf", pdf_options(|p| p.encryption = Some(encryption))).await;
    let preview = client.get_preview(GetPreviewRequest { id: encrypted.id }).await.unwrap().into_inner().png;
    assert!(preview.starts_with(b"\x89PNG"));
    // Other targets have none.
    let (docx, _) = run_fixture("page_1.docx", "docx", ConversionOptions::default()).await;
    let status = client.get_preview(GetPreviewRequest { id: docx.id }).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn the_input_password_opens_a_protected_document() {
    let options = ConversionOptions { input_password: "foo".into(), ..Default::default() };
    let (job, pdf) = run_fixture("protected_page_1.docx", "pdf", options).await;
    assert_eq!(pdf_pages(&pdf), 1);
    assert!(pdf_text(&pdf, None).contains("Page 1"));
    assert!(job.options.unwrap().input_password.is_empty());

    let mut client = shared().client().await;
    let data = std::fs::read(fixture("protected_page_1.docx")).unwrap();
    let wrong = ConversionOptions { input_password: "bar".into(), ..Default::default() };
    let job = submit(&mut client, with_options("protected_page_1.docx", "pdf", wrong), &data).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(error.message.starts_with("input_password does not open the document"), "{}", error.message);

    // A password for a document that has none is refused, naming the
    // document in a merge.
    let given = ConversionOptions { input_password: "foo".into(), ..Default::default() };
    let plain = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit(&mut client, with_options("page_1.docx", "pdf", given.clone()), &plain).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, tonic::Code::InvalidArgument as i32);
    assert!(error.message.contains("not password-protected"), "{}", error.message);
    let documents = [("protected_page_1.docx", data.clone()), ("page_1.docx", plain)];
    let job = submit_merge(&mut client, with_options("protected_page_1.docx", "pdf", given), &documents).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(error.message.starts_with("document 2 (page_1.docx): input_password was given"), "{}", error.message);
}

/// A document showing a 600×600 noisy image 2 cm wide (about 760 DPI).
pub fn document_with_a_photo() -> Vec<u8> {
    let noise = png(600, 600, |x, y| {
        let v = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)).wrapping_mul(2246822519) >> 8;
        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
    });
    text_document(&format!(
        "<text:p>A photo:</text:p><text:p><draw:frame text:anchor-type=\"as-char\" svg:width=\"2cm\" svg:height=\"2cm\">\
         <draw:image><office:binary-data>{}</office:binary-data></draw:image></draw:frame></text:p>",
        BASE64.encode(noise)
    ))
}

/// The x-ppi of the first image in the PDF.
pub fn image_ppi(pdf: &[u8]) -> u32 {
    let list = poppler_with("pdfimages", &["-list"], pdf).unwrap();
    let row = list.lines().nth(2).expect("an image");
    row.split_whitespace().nth(12).unwrap().parse().unwrap()
}

#[tokio::test]
async fn images_are_downsampled_and_compressed_as_asked() {
    let document = document_with_a_photo();
    // LibreOffice's default caps images at 300 DPI.
    let (_, default) =
        convert_on_shared(with_options("photo.fodt", "pdf", ConversionOptions::default()), &document).await;
    assert!((250..=310).contains(&image_ppi(&default)), "default: {} DPI", image_ppi(&default));
    let resolution = |dpi| pdf_options(move |p| p.max_image_resolution = dpi);
    let (_, sharp) = convert_on_shared(with_options("photo.fodt", "pdf", resolution(1200)), &document).await;
    assert!(image_ppi(&sharp) > 600, "1200 DPI allowed, yet {} DPI", image_ppi(&sharp));
    let (_, reduced) = convert_on_shared(with_options("photo.fodt", "pdf", resolution(75)), &document).await;
    assert!(image_ppi(&reduced) <= 80, "not downsampled: {} DPI", image_ppi(&reduced));

    let quality = |q| pdf_options(move |p| p.image_quality = q);
    let (_, low) = convert_on_shared(with_options("photo.fodt", "pdf", quality(10)), &document).await;
    let (_, high) = convert_on_shared(with_options("photo.fodt", "pdf", quality(100)), &document).await;
    assert!(low.len() * 2 < high.len(), "quality 10: {} bytes, quality 100: {} bytes", low.len(), high.len());
}

#[tokio::test]
async fn bookmarks_and_notes_follow_the_options() {
    let document = text_document(
        "<text:h text:outline-level=\"1\">Chapter one</text:h><text:p>Text.\
         <office:annotation><dc:creator>Ann</dc:creator><text:p>A note.</text:p></office:annotation></text:p>\
         <text:h text:outline-level=\"1\">Chapter two</text:h><text:p>More.</text:p>",
    );
    let contains = |pdf: &[u8], needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
    let (_, default) =
        convert_on_shared(with_options("notes.fodt", "pdf", ConversionOptions::default()), &document).await;
    assert!(contains(&default, b"/Outlines"), "bookmarks are exported by default");
    assert!(contains(&default, b"/Popup"), "notes are exported by default");

    let options = pdf_options(|p| {
        p.export_bookmarks = Some(false);
        p.export_notes = Some(false);
    });
    let (_, changed) = convert_on_shared(with_options("notes.fodt", "pdf", options), &document).await;
    assert!(!contains(&changed, b"/Outlines"), "bookmarks were exported");
    assert!(!contains(&changed, b"/Popup"), "the note was exported");
    assert!(pdf_text(&changed, None).contains("Chapter two"));
}

/// The names of the PDF's interactive form fields, as qpdf reads them.
pub fn form_field_names(pdf: &[u8]) -> Vec<String> {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output = std::process::Command::new("qpdf").arg("--json").arg(file.path()).output().unwrap();
    assert!(output.status.success(), "qpdf --json failed");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let fields = json["acroform"]["fields"].as_array().cloned().unwrap_or_default();
    fields.iter().filter_map(|f| f["fullname"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn form_fields_follow_the_option() {
    // LibreOffice imports an HTML form as real form controls.
    let page = b"<!DOCTYPE html><html><body><p>Sign up</p><form action=\"x\">\
        <input type=\"text\" name=\"fullname\" value=\"Ada\">\
        <input type=\"checkbox\" name=\"agree\" checked></form></body></html>";
    let (_, default) = convert_on_shared(with_options("form.html", "pdf", ConversionOptions::default()), page).await;
    let mut names = form_field_names(&default);
    names.sort();
    assert_eq!(names, ["agree", "fullname"], "form fields are exported by default");

    let options = pdf_options(|p| p.export_form_fields = Some(false));
    let (_, flat) = convert_on_shared(with_options("form.html", "pdf", options), page).await;
    assert!(form_field_names(&flat).is_empty(), "form fields were exported");
    assert!(pdf_text(&flat, None).contains("Sign up"));
}

/// A flat ODF drawing: one rectangle with text in it.
fn drawing() -> Vec<u8> {
    let rectangle = "<draw:rect svg:x=\"2cm\" svg:y=\"2cm\" svg:width=\"8cm\" svg:height=\"3cm\"><text:p>Boxed words</text:p></draw:rect>";
    flat_odf("drawing", "", &format!("<draw:page draw:name=\"p1\">{rectangle}</draw:page>"))
}

#[tokio::test]
async fn every_listed_target_converts_and_documents_open_again() {
    let mut client = shared().client().await;
    let formats = client.list_formats(ListFormatsRequest {}).await.unwrap().into_inner();
    let listed = |extension: &str| formats.inputs.iter().find(|f| f.extension == extension).unwrap().targets.clone();
    // What every LibreOffice since 7.0 exports: the listing must offer at
    // least these (it comes from a probe, which could find too little).
    let samples: [(&str, Vec<u8>, &str, &[&str]); 4] = [
        (
            "pages_3.docx",
            std::fs::read(fixture("pages_3.docx")).unwrap(),
            "Page 2",
            &["pdf", "docx", "odt", "rtf", "txt", "html", "png"],
        ),
        (
            "sheet.csv",
            std::fs::read(fixture("sheet.csv")).unwrap(),
            "Alice",
            &["pdf", "xlsx", "ods", "csv", "html", "png"],
        ),
        ("slideshow.ppsx", std::fs::read(fixture("slideshow.ppsx")).unwrap(), "", &["pdf", "pptx", "odp", "png"]),
        ("drawing.fodg", drawing(), "Boxed words", &["pdf", "odg", "png"]),
    ];
    for (input, data, text, expected) in samples {
        let extension = input.rsplit_once('.').unwrap().1;
        let targets = listed(extension);
        for target in expected {
            assert!(targets.iter().any(|t| t == target), "{input} cannot become {target}: {targets:?}");
        }
        for target in &targets {
            let (job, converted) =
                convert_on_shared(with_options(input, target, ConversionOptions::default()), &data).await;
            let output = job.output.unwrap();
            let listed_type = &formats.outputs.iter().find(|o| &o.extension == target).unwrap().content_type;
            assert_eq!(&output.content_type, listed_type, "{input} → {target}");
            assert!(output.file_name.ends_with(&format!(".{target}")), "{output:?}");
            assert_eq!(output.size_bytes, converted.len() as u64);
            match target.as_str() {
                "pdf" => assert!(pdf_text(&converted, None).contains(text), "{input} → pdf"),
                "png" => assert!(converted.starts_with(b"\x89PNG\r\n\x1a\n"), "{input} → png"),
                // LibreOffice writes EPUB but does not read it back.
                "epub" => {
                    let files = unzip(&converted);
                    assert!(files.iter().any(|(name, body)| name == "mimetype" && body == b"application/epub+zip"));
                }
                _ => {
                    // An office result is a document LibreOffice reads again.
                    let again = format!("again.{target}");
                    let (_, pdf) =
                        convert_on_shared(with_options(&again, "pdf", ConversionOptions::default()), &converted).await;
                    assert!(pdf_text(&pdf, None).contains(text), "{input} → {target} lost {text:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn html_results_carry_their_images_inside() {
    let image = BASE64.encode(red_png());
    let sheet =
        spreadsheet_with_image(&format!("<draw:image><office:binary-data>{image}</office:binary-data></draw:image>"));
    let text = std::fs::read(fixture("libreoffice-embedded-image.fodt")).unwrap();
    for (name, document) in [("image.fodt", text), ("image.fods", sheet)] {
        let (_, html) = convert_on_shared(with_options(name, "html", ConversionOptions::default()), &document).await;
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("src=\"data:image/png;base64,"), "{name}: no inline image");
        assert!(!html.contains("_html_"), "{name}: still links a side file");
    }
}

#[tokio::test]
async fn png_is_an_image_of_the_first_page() {
    for input in ["page_1.docx", "singlepagesheets-scrolled.xlsx", "slideshow.ppsx"] {
        let (job, image) = run_fixture(input, "png", ConversionOptions::default()).await;
        assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "{input}");
        let width = u32::from_be_bytes(image[16..20].try_into().unwrap());
        assert!(width > 100, "{input}: {width} px wide");
        assert_eq!(job.output.unwrap().content_type, "image/png");
    }
}

fn viewer(edit: impl FnOnce(&mut docconv::proto::v1::PdfViewer)) -> ConversionOptions {
    let mut viewer = docconv::proto::v1::PdfViewer::default();
    edit(&mut viewer);
    pdf_options(|p| p.viewer = Some(viewer))
}

/// Options with one bookmark to `page`, and more from `edit`.
fn bookmarked(page: u32, edit: impl FnOnce(&mut docconv::proto::v1::PdfOptions)) -> ConversionOptions {
    pdf_options(|p| {
        p.bookmarks = vec![docconv::proto::v1::PdfBookmark { title: "Start".into(), page, ..Default::default() }];
        edit(p);
    })
}

#[tokio::test]
async fn every_malformed_option_is_refused_with_the_field_named() {
    let mut client = shared().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let cases: Vec<(SubmitHeader, &str)> = vec![
        (with_options("a.docx", "pptx", ConversionOptions::default()), "header.target_format"),
        (with_options("a.xlsx", "docx", ConversionOptions::default()), "header.target_format"),
        (with_options("a.docx", "docx", pdf_options(|_| {})), "options.pdf"),
        (with_options("a.docx", "pdf", pdf_options(|p| p.page_ranges = "3-1".into())), "options.pdf.page_ranges"),
        (with_options("a.docx", "pdf", pdf_options(|p| p.page_ranges = "one".into())), "options.pdf.page_ranges"),
        (with_options("a.docx", "pdf", pdf_options(|p| p.standard = 7)), "options.pdf.standard"),
        (with_options("a.pptx", "pdf", pdf_options(|p| p.landscape = true)), "options.pdf.landscape"),
        (with_options("a.docx", "pdf", pdf_options(|p| p.image_quality = 101)), "options.pdf.image_quality"),
        (
            with_options("a.docx", "pdf", pdf_options(|p| p.max_image_resolution = 72)),
            "options.pdf.max_image_resolution",
        ),
        (with_options("a.docx", "pdf", pdf_options(|p| p.watermark = "x".repeat(300))), "options.pdf.watermark"),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.split = Some(docconv::proto::v1::PdfSplit {
                        by: Some(docconv::proto::v1::pdf_split::By::EveryPages(0)),
                    })
                }),
            ),
            "options.pdf.split.every_pages",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.metadata = Some(docconv::proto::v1::PdfMetadata { title: "a\u{0}b".into(), ..Default::default() })
                }),
            ),
            "options.pdf.metadata.title",
        ),
        (
            with_options("a.docx", "pdf", pdf_options(|p| p.encryption = Some(PdfEncryption::default()))),
            "options.pdf.encryption",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.standard = PdfStandard::PdfA2b as i32;
                    p.encryption = Some(PdfEncryption { open_password: "x".into(), ..Default::default() });
                }),
            ),
            "options.pdf.encryption",
        ),
        (
            with_options("a.docx", "pdf", ConversionOptions { input_password: "\n".into(), ..Default::default() }),
            "options.input_password",
        ),
        (
            with_options("a.docx", "pdf", pdf_options(|p| p.export_hidden_slides = true)),
            "options.pdf.export_hidden_slides",
        ),
        (
            with_options("a.xlsx", "pdf", pdf_options(|p| p.skip_empty_pages = Some(false))),
            "options.pdf.skip_empty_pages",
        ),
        (
            with_options("a.pptx", "pdf", pdf_options(|p| p.export_only_notes_pages = true)),
            "options.pdf.export_only_notes_pages",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.lossless_images = true;
                    p.image_quality = 50;
                }),
            ),
            "options.pdf.lossless_images",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.embed_original = true;
                    p.standard = PdfStandard::PdfA2b as i32;
                }),
            ),
            "options.pdf.embed_original",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                pdf_options(|p| {
                    p.background = Some(docconv::proto::v1::PdfMark {
                        text: "DRAFT".into(),
                        color: "grey".into(),
                        ..Default::default()
                    })
                }),
            ),
            "options.pdf.background.color",
        ),
        (
            with_options("a.docx", "pdf", pdf_options(|p| p.stamp = Some(docconv::proto::v1::PdfMark::default()))),
            "options.pdf.stamp.text",
        ),
        (with_options("a.docx", "pdf", viewer(|v| v.zoom = 150)), "options.pdf.viewer.zoom"),
        (with_options("a.docx", "pdf", viewer(|v| v.magnification = 3_000)), "options.pdf.viewer.magnification"),
        (
            with_options("a.docx", "pdf", viewer(|v| v.first_page_on_left = true)),
            "options.pdf.viewer.first_page_on_left",
        ),
        (with_options("a.docx", "pdf", viewer(|v| v.initial_view = 9)), "options.pdf.viewer.initial_view"),
        (with_options("a.docx", "pdf", bookmarked(0, |_| {})), "options.pdf.bookmarks"),
        (with_options("a.docx", "pdf", bookmarked(1, |p| p.export_bookmarks = Some(false))), "options.pdf.bookmarks"),
        (with_options("a.docx", "pdf", bookmarked(1, |p| p.title_bookmarks = true)), "options.pdf.title_bookmarks"),
    ];
    // A Factur-X invoice is one PDF/A-3b that LibreOffice writes.
    let invoice = |edit: fn(&mut docconv::proto::v1::PdfOptions)| {
        pdf_options(|p| {
            p.factur_x = Some(docconv::proto::v1::PdfFacturX { conformance_level: 4, ..Default::default() });
            edit(p);
        })
    };
    let cases = cases.into_iter().chain([
        (with_options("a.docx", "pdf", invoice(|p| p.standard = PdfStandard::PdfA2b as i32)), "options.pdf.standard"),
        (
            with_options(
                "a.docx",
                "pdf",
                invoice(|p| p.encryption = Some(PdfEncryption { open_password: "x".into(), ..Default::default() })),
            ),
            "options.pdf.encryption",
        ),
        (
            with_options(
                "a.docx",
                "pdf",
                invoice(|p| {
                    p.split = Some(docconv::proto::v1::PdfSplit {
                        by: Some(docconv::proto::v1::pdf_split::By::EveryPages(1)),
                    })
                }),
            ),
            "options.pdf.split",
        ),
        (with_options("a.pdf", "pdf", invoice(|_| {})), "options.pdf.factur_x"),
        (
            with_options("a.docx", "pdf", invoice(|p| p.factur_x.as_mut().unwrap().conformance_level = 0)),
            "options.pdf.factur_x.conformance_level",
        ),
        (
            with_options("a.docx", "pdf", invoice(|p| p.factur_x.as_mut().unwrap().conformance_level = 99)),
            "options.pdf.factur_x.conformance_level",
        ),
        (
            with_options("a.docx", "pdf", invoice(|p| p.factur_x.as_mut().unwrap().document_type = 99)),
            "options.pdf.factur_x.document_type",
        ),
        (
            with_options("a.docx", "pdf", invoice(|p| p.factur_x.as_mut().unwrap().version = "one".into())),
            "options.pdf.factur_x.version",
        ),
        (with_options("a.docx", "docx", invoice(|_| {})), "options.pdf"),
    ]);
    for (header, field) in cases {
        let status = submit(&mut client, header.clone(), &data).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{header:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        assert!(bad_request.field_violations.iter().any(|v| v.field == field), "{field}: {bad_request:?}");
    }
}

/// Whether qpdf needs a password to open `pdf`.
fn requires_password(pdf: &[u8]) -> bool {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let status = std::process::Command::new("qpdf").arg("--requires-password").arg(file.path()).status().unwrap();
    // 0: a password is required; 2: none is.
    status.code() == Some(0)
}

#[tokio::test]
async fn every_part_of_a_split_keeps_encryption_standards_and_metadata() {
    use docconv::proto::v1::{PageRanges, PdfMetadata, PdfSplit, pdf_split::By};
    let metadata = PdfMetadata { title: "Split report".into(), author: "Zoë Example".into(), ..Default::default() };
    for by in [By::EveryPages(5), By::Ranges(PageRanges { ranges: vec!["1-2".into(), "12".into()] })] {
        let options = pdf_options(|p| {
            p.split = Some(PdfSplit { by: Some(by.clone()) });
            p.standard = PdfStandard::PdfA2b as i32;
            p.universal_access = true;
            p.metadata = Some(metadata.clone());
        });
        let (_, zip) = run_fixture("pages_12.docx", "pdf", options).await;
        for (name, part) in unzip(&zip) {
            let meta = poppler_with("pdfinfo", &["-meta"], &part).unwrap();
            assert!(meta.contains("<pdfaid:part>2</pdfaid:part>"), "{by:?} {name}: {meta}");
            assert!(meta.contains("<pdfuaid:part>1</pdfuaid:part>"), "{by:?} {name}: {meta}");
            let info = poppler_with("pdfinfo", &[], &part).unwrap();
            assert!(info.contains("Title:           Split report"), "{by:?} {name}: {info}");
            assert!(info.contains("Author:          Zoë Example"), "{by:?} {name}: {info}");
            assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{by:?} {name}: {info}");
        }

        // With an open password, every part asks for it.
        let encryption =
            PdfEncryption { open_password: "secret".into(), owner_password: "owner".into(), ..Default::default() };
        let options = pdf_options(|p| {
            p.split = Some(PdfSplit { by: Some(by.clone()) });
            p.encryption = Some(encryption);
        });
        let (_, zip) = run_fixture("pages_12.docx", "pdf", options).await;
        let parts = unzip(&zip);
        assert!(!parts.is_empty());
        for (name, part) in parts {
            assert!(requires_password(&part), "{by:?} {name} opens without the password");
        }
    }
}
