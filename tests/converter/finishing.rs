//! The steps on finished PDFs, for converted documents and PDF inputs
//! alike: rotation, flattening, document information and attachments,
//! each checked with qpdf, poppler and exiftool, and on every output of a
//! job (merges, split parts).

use crate::support::*;
use docconv::proto::v1::{
    Attachment, AttachmentRelationship, ConversionOptions, DocumentHeader, Job, PdfEncryption, PdfMetadata, PdfRotate,
    PdfSplit, PdfStandard, PdfTrapped, SubmitHeader, pdf_split,
};
use prost_types::Timestamp;
use tonic::Code;
use tonic_types::StatusExt;

fn with_options(name: &str, options: ConversionOptions) -> SubmitHeader {
    SubmitHeader { options: Some(options), ..header(name) }
}

async fn run(header: SubmitHeader, data: &[u8]) -> (Job, Vec<u8>) {
    let mut client = shared().client().await;
    succeeded(submit(&mut client, header, data).await.unwrap()).await
}

async fn run_fixture(name: &str, options: ConversionOptions) -> (Job, Vec<u8>) {
    run(with_options(name, options), &std::fs::read(fixture(name)).unwrap()).await
}

/// Each page's rotation, as pdfinfo reports it.
fn rotations(pdf: &[u8], password: Option<&str>) -> Vec<u32> {
    let pages = pdf_pages_with(pdf, password);
    let mut args = vec!["-f".to_owned(), "1".into(), "-l".into(), pages.to_string()];
    if let Some(password) = password {
        args.extend(["-upw".into(), password.into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let info = poppler_with("pdfinfo", &args, pdf).unwrap();
    info.lines()
        .filter(|l| l.contains(" rot:"))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect()
}

fn pdf_pages_with(pdf: &[u8], password: Option<&str>) -> u32 {
    let args: Vec<&str> = password.map(|p| vec!["-upw", p]).unwrap_or_default();
    let info = poppler_with("pdfinfo", &args, pdf).unwrap();
    info.lines().find(|l| l.starts_with("Pages:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The PDFs of a split result, in order.
pub(crate) fn parts(zip: &[u8]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.zip"), zip).unwrap();
    let script = "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2]); print('\\n'.join(z.namelist()))";
    let listing = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("r.zip"))
        .arg(dir.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&listing.stdout).lines().map(|name| std::fs::read(dir.path().join(name)).unwrap()).collect()
}

#[tokio::test]
async fn rotation_turns_the_chosen_pages_of_every_output() {
    let turn = |degrees, pages: &str| {
        let pages = pages.to_owned();
        pdf_options(move |p| p.rotate = Some(PdfRotate { degrees, pages }))
    };
    let (_, pdf) = run_fixture("pages_3.docx", turn(90, "2-")).await;
    assert_eq!(rotations(&pdf, None), [0, 90, 90]);
    assert!(qpdf_check(&pdf));
    // Added to each page's own rotation: a PDF input turned already turns further.
    let (_, turned) = run(with_options("turned.pdf", turn(180, "")), &pdf).await;
    assert_eq!(rotations(&turned, None), [180, 270, 270]);
    // Every part of a split, encrypted, carries it.
    let mut options = turn(270, "1,3");
    let pdf_options = options.pdf.as_mut().unwrap();
    pdf_options.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(2)) });
    pdf_options.encryption = Some(PdfEncryption { open_password: "pw".into(), ..Default::default() });
    let (_, zip) = run_fixture("pages_3.docx", options).await;
    let split: Vec<Vec<u32>> = parts(&zip).iter().map(|part| rotations(part, Some("pw"))).collect();
    assert_eq!(split, [vec![270, 0], vec![270]]);
    // A merge turns the pages of the merged result.
    let mut client = shared().client().await;
    let documents = [("page_1.docx", std::fs::read(fixture("page_1.docx")).unwrap()), ("turned.pdf", pdf)];
    let job = submit_merge(&mut client, with_options("page_1.docx", turn(90, "1-2")), &documents).await.unwrap();
    let (_, merged) = succeeded(job).await;
    assert_eq!(rotations(&merged, None), [90, 90, 90, 90]);
    // Ranges past the end name no page: the job says so.
    let job = submit(&mut client, with_options("three.pdf", turn(90, "4-")), &turned).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(
        error.message.contains("options.pdf.rotate.pages names none of the document's 3 pages"),
        "{}",
        error.message
    );
}

/// Form fields (by qpdf) and widget annotations in the PDF.
fn form_fields(pdf: &[u8]) -> usize {
    qpdf_json(pdf, &["--json-key=acroform"])["acroform"]["fields"].as_array().map_or(0, Vec::len)
}

fn widgets(pdf: &[u8]) -> usize {
    let objects = qpdf_json(pdf, &["--json-key=qpdf"]).to_string();
    objects.matches("\"/Subtype\":\"/Widget\"").count()
}

#[tokio::test]
async fn flattening_draws_fields_into_the_pages() {
    let page = b"<!DOCTYPE html><html><body><p>Sign up</p><form action=\"x\">\
        <input type=\"text\" name=\"fullname\" value=\"Ada Lovelace\"></form></body></html>";
    let (_, form) = run(header("form.html"), page).await;
    assert_eq!((form_fields(&form), widgets(&form)), (1, 1));
    let flat = pdf_options(|p| p.flatten = true);
    for (name, data) in [("form.html", page.to_vec()), ("form.pdf", form.clone())] {
        let (_, pdf) = run(with_options(name, flat.clone()), &data).await;
        assert_eq!((form_fields(&pdf), widgets(&pdf)), (0, 0), "{name}: still a form");
        assert!(pdf_text(&pdf, None).contains("Ada Lovelace"), "{name}: the value is gone");
        assert!(qpdf_check(&pdf), "{name}");
    }
    // Comments go too: LibreOffice gives its notes no appearance of their
    // own, so there is nothing to draw, and flattening removes them.
    let noted = text_document(
        "<text:p>Text.<office:annotation><dc:creator>Ann</dc:creator><text:p>A note.</text:p></office:annotation></text:p>",
    );
    let (_, unflattened) = run(header("notes.fodt"), &noted).await;
    let annotations = |pdf: &[u8]| {
        let objects = qpdf_json(pdf, &["--json-key=qpdf"]).to_string();
        objects.matches("\"/Subtype\":\"/Popup\"").count() + objects.matches("\"/Subtype\":\"/Text\"").count()
    };
    assert_eq!(annotations(&unflattened), 2, "a note and its popup");
    let (_, pdf) = run(with_options("notes.fodt", flat.clone()), &noted).await;
    assert_eq!(annotations(&pdf), 0);
    assert!(pdf_text(&pdf, None).contains("Text."));
    // Not with PDF/UA, whose content must all be tagged.
    let mut client = shared().client().await;
    let both = pdf_options(|p| {
        p.flatten = true;
        p.universal_access = true;
    });
    let status = submit(&mut client, with_options("form.html", both), page).await.unwrap_err();
    let bad_request = status.get_details_bad_request().unwrap();
    assert_eq!(bad_request.field_violations[0].field, "options.pdf.flatten");
}

/// The document information dictionary as qpdf shows it.
fn info_dictionary(pdf: &[u8]) -> String {
    let trailer = qpdf_json(pdf, &["--json-key=qpdf", "--json-object=trailer"]);
    let info = trailer["qpdf"][1]["trailer"]["value"]["/Info"].as_str().unwrap().to_owned();
    let id = info.split_whitespace().next().unwrap();
    let object = qpdf_json(pdf, &["--json-key=qpdf", &format!("--json-object={id}")]);
    object["qpdf"][1][format!("obj:{info}")]["value"].to_string()
}

#[tokio::test]
async fn document_information_goes_into_the_dictionary_and_xmp() {
    let metadata = PdfMetadata {
        title: "Annual report".into(),
        creator: "Writer 7".into(),
        producer: "docconv tests".into(),
        creation_time: Some(Timestamp { seconds: 1_777_888_800, nanos: 0 }), // 2026-05-04T10:00:00Z
        modification_time: Some(Timestamp { seconds: 1_777_975_200, nanos: 0 }), // 2026-05-05T10:00:00Z
        trapped: PdfTrapped::True as i32,
        custom: [("Department".to_owned(), "Finance — Zoë".to_owned()), ("Cycle".into(), "Q3".into())].into(),
        ..Default::default()
    };
    let options = pdf_options(|p| p.metadata = Some(metadata.clone()));
    let (_, pdf) = run_fixture("page_1.docx", options).await;
    let info = poppler_with("pdfinfo", &["-custom"], &pdf).unwrap();
    for line in [
        "Creator:         Writer 7",
        "Producer:        docconv tests",
        "CreationDate:    Mon May  4 10:00:00 2026 UTC",
        "ModDate:         Tue May  5 10:00:00 2026 UTC",
        "Department:      Finance — Zoë",
        "Cycle:           Q3",
    ] {
        assert!(info.contains(line), "{line}: {info}");
    }
    // Trapped is a name, as PDF wants it, and the XMP says the same.
    let dictionary = info_dictionary(&pdf);
    assert!(dictionary.contains("\"/Trapped\":\"/True\""), "{dictionary}");
    let xmp = poppler_with("pdfinfo", &["-meta"], &pdf).unwrap();
    for expected in [
        "<pdf:Trapped>True</pdf:Trapped>",
        "<pdf:Producer>docconv tests</pdf:Producer>",
        "<xmp:CreatorTool>Writer 7</xmp:CreatorTool>",
        "<xmp:CreateDate>2026-05-04T10:00:00+00:00</xmp:CreateDate>",
        "<xmp:ModifyDate>2026-05-05T10:00:00+00:00</xmp:ModifyDate>",
    ] {
        assert!(xmp.contains(expected), "{expected}: {xmp}");
    }
    // The values replaced are gone from the file, not kept in an earlier
    // revision: one revision, one end of file.
    assert_eq!(pdf.windows(5).filter(|w| w == b"%%EOF").count(), 1);
    assert!(!xmp.contains("LibreOffice"), "{xmp}");
    assert!(qpdf_check(&pdf));

    // PDF/A stays declared, the XMP agrees with the dictionary, and a PDF
    // input takes the same.
    let archival = pdf_options(|p| {
        p.metadata = Some(metadata.clone());
        p.standard = PdfStandard::PdfA2b as i32;
    });
    let (_, pdf_a) = run_fixture("page_1.docx", archival).await;
    let xmp = poppler_with("pdfinfo", &["-meta"], &pdf_a).unwrap();
    for expected in [
        "<pdfaid:part>2</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<pdf:Trapped>True</pdf:Trapped>",
    ] {
        assert!(xmp.contains(expected), "{expected}: {xmp}");
    }
    let tags =
        exiftool(&["-a", "-G1", "-s", "-Producer", "-CreatorTool", "-Creator", "-CreateDate", "-ModifyDate"], &pdf_a);
    for expected in [
        "[PDF]           Producer                        : docconv tests",
        "[XMP-pdf]       Producer                        : docconv tests",
        "[PDF]           Creator                         : Writer 7",
        "[XMP-xmp]       CreatorTool                     : Writer 7",
        "[PDF]           CreateDate                      : 2026:05:04 10:00:00+00:00",
        "[XMP-xmp]       CreateDate                      : 2026:05:04 10:00:00+00:00",
    ] {
        assert!(tags.contains(expected), "{expected}: {tags}");
    }
    let (_, again) = run(with_options("again.pdf", pdf_options(|p| p.metadata = Some(metadata))), &pdf).await;
    assert!(poppler_with("pdfinfo", &["-custom"], &again).unwrap().contains("Department:      Finance — Zoë"));

    // Names that are not plain, or standard entries, are refused.
    let mut client = shared().client().await;
    let bad = PdfMetadata { custom: [("Title".to_owned(), "x".to_owned())].into(), ..Default::default() };
    let status = submit(&mut client, with_options("a.pdf", pdf_options(|p| p.metadata = Some(bad))), b"%PDF-1.4")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("options.pdf.metadata.custom"), "{}", status.message());
}

/// Submits `data` with `attachments` (name, MIME type, bytes, description, relationship) after it.
async fn submit_with_attachments(
    header: SubmitHeader,
    data: &[u8],
    attachments: &[(&str, &str, &[u8], &str, AttachmentRelationship)],
) -> Result<Job, tonic::Status> {
    let further: Vec<(DocumentHeader, &[u8])> = attachments
        .iter()
        .map(|(name, content_type, bytes, description, relationship)| {
            let attachment = Attachment { description: description.to_string(), relationship: *relationship as i32 };
            let next = DocumentHeader {
                file_name: name.to_string(),
                content_type: content_type.to_string(),
                attachment: Some(attachment),
                ..Default::default()
            };
            (next, *bytes)
        })
        .collect();
    submit_with_files(&mut shared().client().await, header, data, &further).await
}

/// (name, MIME type, description) of each attachment, and its bytes, by qpdf.
fn attachments_of(pdf: &[u8], password: Option<&str>) -> Vec<(String, String, String, Vec<u8>)> {
    let password = password.map(|p| format!("--password={p}"));
    let mut args: Vec<&str> = password.iter().map(String::as_str).collect();
    args.extend(["--json", "--json-key=attachments"]);
    let output = qpdf_on(&args, pdf);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found = Vec::new();
    for (key, attachment) in json["attachments"].as_object().cloned().unwrap_or_default() {
        let show = format!("--show-attachment={key}");
        let mut args: Vec<&str> = password.iter().map(String::as_str).collect();
        args.push(&show);
        let content = qpdf_on(&args, pdf).stdout;
        found.push((
            key,
            attachment["streams"]["/F"]["mimetype"].as_str().unwrap_or_default().to_owned(),
            attachment["description"].as_str().unwrap_or_default().to_owned(),
            content,
        ));
    }
    found.sort();
    found
}

#[tokio::test]
async fn attachments_are_embedded_in_every_output() {
    let invoice = b"<?xml version=\"1.0\"?><invoice total=\"42\"/>";
    let notes = b"plain notes";
    let files: [(&str, &str, &[u8], &str, AttachmentRelationship); 2] = [
        ("invoice.xml", "", invoice, "The invoice's data", AttachmentRelationship::Data),
        ("notes.txt", "text/plain", notes, "", AttachmentRelationship::Unspecified),
    ];
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit_with_attachments(header("page_1.docx"), &word, &files).await.unwrap();
    assert_eq!(job.attachment_file_names, ["invoice.xml", "notes.txt"]);
    assert!(job.merged_file_names.is_empty(), "attachments make no merge");
    let (job, pdf) = succeeded(job).await;
    assert_eq!(job.output.unwrap().page_count, 1);
    let expected = vec![
        ("invoice.xml".to_owned(), "text/xml".to_owned(), "The invoice's data".to_owned(), invoice.to_vec()),
        ("notes.txt".to_owned(), "text/plain".to_owned(), String::new(), notes.to_vec()),
    ];
    assert_eq!(attachments_of(&pdf, None), expected);
    assert!(qpdf_check(&pdf));
    // Each file says what it is to the document, and the catalog lists them
    // (PDF/A-3's associated files).
    let objects = qpdf_json(&pdf, &["--json-key=qpdf"]).to_string();
    assert!(objects.contains("\"/AFRelationship\":\"/Data\""), "no relationship");
    assert!(objects.contains("\"/AFRelationship\":\"/Unspecified\""), "no relationship");
    assert!(objects.contains("\"/AF\":["), "no associated files");

    // PDF/A-3 keeps its declaration with them; a split PDF input, encrypted,
    // has them in every part.
    let archival = with_options("page_1.docx", pdf_options(|p| p.standard = PdfStandard::PdfA3b as i32));
    let (_, pdf_a) = succeeded(submit_with_attachments(archival, &word, &files).await.unwrap()).await;
    assert!(poppler_with("pdfinfo", &["-meta"], &pdf_a).unwrap().contains("<pdfaid:part>3</pdfaid:part>"));
    assert_eq!(attachments_of(&pdf_a, None), expected);
    let three = std::fs::read(fixture("pages_3.docx")).unwrap();
    let (_, three) = run(header("pages_3.docx"), &three).await;
    let split = pdf_options(|p| {
        p.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(2)) });
        p.encryption = Some(PdfEncryption { open_password: "pw".into(), ..Default::default() });
    });
    let job = submit_with_attachments(with_options("three.pdf", split), &three, &files).await.unwrap();
    let (_, zip) = succeeded(job).await;
    let split = parts(&zip);
    assert_eq!(split.len(), 2);
    for part in split {
        assert_eq!(attachments_of(&part, Some("pw")), expected);
    }

    // What cannot hold them, or twins, are refused before the job is queued.
    let refused = [
        (with_options("page_1.docx", pdf_options(|p| p.standard = PdfStandard::PdfA2b as i32)), "options.pdf.standard"),
        (SubmitHeader { target_format: "docx".into(), ..header("page_1.docx") }, "header.target_format"),
    ];
    for (header, field) in refused {
        let status = submit_with_attachments(header, &word, &files[..1]).await.unwrap_err();
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    let twins = [files[0], files[0]];
    let status = submit_with_attachments(header("page_1.docx"), &word, &twins).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("another attachment is named \"invoice.xml\""), "{}", status.message());
}
