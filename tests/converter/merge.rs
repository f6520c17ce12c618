//! Several documents, one PDF.

use crate::conformance::{Objects, failed_rules, structure_faults};
use crate::support::*;
use docconv::proto::v1::{ConversionOptions, JobState, PdfMetadata, PdfOptions, PdfStandard, SubmitHeader};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tonic::Code;
use tonic_types::StatusExt;

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

    // PDF/A and PDF/UA cannot be promised for a PDF taken as it is, first
    // or further in the merge.
    let made = std::fs::read(fixture("page_1.docx")).unwrap();
    let (_, pdf) = convert_on_shared(header("page_1.docx"), &made).await;
    for (options, field) in [
        (pdf_options(|p| p.standard = PdfStandard::PdfA2b as i32), "options.pdf.standard"),
        (pdf_options(|p| p.universal_access = true), "options.pdf.universal_access"),
    ] {
        let with_pdf = [("page_1.docx", made.clone()), ("made.pdf", pdf.clone())];
        let first = SubmitHeader { options: Some(options.clone()), ..header("page_1.docx") };
        let status = submit_merge(&mut client, first, &with_pdf).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{field}: {}", status.message());
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        assert_eq!(bad_request.field_violations.iter().filter(|v| v.field == field).count(), 1, "{bad_request:?}");
        let pdf_first: Vec<_> = with_pdf.iter().rev().cloned().collect();
        let status =
            submit_merge(&mut client, SubmitHeader { options: Some(options), ..header("made.pdf") }, &pdf_first)
                .await
                .unwrap_err();
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
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
/// a section and a link (an annotation, which a tagged PDF ties to its
/// structure element).
fn chapters(first: &str, second: &str) -> Vec<u8> {
    chapters_in("", first, second)
}

/// `chapters`, written in `language` ("de-DE"; empty: LibreOffice's
/// default).
fn chapters_in(language: &str, first: &str, second: &str) -> Vec<u8> {
    let default_style = match language.split_once('-') {
        Some((language, country)) => format!(
            "<office:styles><style:default-style style:family=\"paragraph\"><style:text-properties \
             fo:language=\"{language}\" fo:country=\"{country}\"/></style:default-style></office:styles>"
        ),
        None => String::new(),
    };
    flat_odf(
        "text",
        &format!(
            "{default_style}<office:automatic-styles><style:style style:name=\"Break\" style:family=\"paragraph\">\
             <style:paragraph-properties fo:break-before=\"page\"/></style:style></office:automatic-styles>"
        ),
        &format!(
            "<text:h text:outline-level=\"1\">{first}</text:h><text:p>Text.</text:p>\
             <text:h text:style-name=\"Break\" text:outline-level=\"1\">{second}</text:h>\
             <text:h text:outline-level=\"2\">{second} section</text:h><text:p>More.</text:p>\
             <text:p><text:a xlink:type=\"simple\" xlink:href=\"https://example.com/{first}\">Example {first}</text:a></text:p>"
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

/// The texts of `pdf`'s logical structure, in its order, and what poppler
/// found wrong with the structure.
fn structure_text(pdf: &[u8]) -> (Vec<String>, Vec<String>) {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let output = std::process::Command::new("pdfinfo").arg("-struct-text").arg(file.path()).output().unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    let texts = listing.lines().filter_map(|l| Some(l.trim().strip_prefix('"')?.strip_suffix('"')?.to_owned()));
    let warnings = String::from_utf8_lossy(&output.stderr).lines().map(str::to_owned).collect();
    (texts.collect(), warnings)
}

/// The union of the rules each of `documents` fails under `profile` when
/// converted alone with `options`: LibreOffice's own shortcomings, which a
/// merge may keep but must not add to.
async fn failed_alone(documents: &[(&str, Vec<u8>)], options: &ConversionOptions, profile: &str) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    for (name, data) in documents {
        let (_, pdf) = convert_on_shared(SubmitHeader { options: Some(options.clone()), ..header(name) }, data).await;
        failed.extend(failed_rules(&pdf, profile));
    }
    failed
}

#[tokio::test]
async fn merges_keep_each_pdf_a_level_and_pdf_ua() {
    let mut client = shared().client().await;
    let sheet = std::fs::read(fixture("sheet.csv")).unwrap();
    // The second document is German, the others in LibreOffice's default
    // language.
    let documents = [
        ("a.fodt", chapters("Alpha", "Beta")),
        ("b.fodt", chapters_in("de-DE", "Gamma", "Delta")),
        ("sheet.csv", sheet),
    ];
    let metadata = PdfMetadata { title: "Merged report".into(), ..Default::default() };
    // (options, validator profile, what the XMP declares); LibreOffice
    // tags PDF/A-1, making it level A, which the merge keeps.
    let cases = [
        (
            PdfStandard::PdfA2b,
            false,
            "2b",
            "<pdfaid:part>2</pdfaid:part>",
            "<pdfaid:conformance>B</pdfaid:conformance>",
        ),
        (
            PdfStandard::PdfA1b,
            false,
            "1a",
            "<pdfaid:part>1</pdfaid:part>",
            "<pdfaid:conformance>A</pdfaid:conformance>",
        ),
        (
            PdfStandard::PdfA3b,
            false,
            "3b",
            "<pdfaid:part>3</pdfaid:part>",
            "<pdfaid:conformance>B</pdfaid:conformance>",
        ),
        (PdfStandard::Unspecified, true, "ua1", "<pdfuaid:part>1</pdfuaid:part>", "pdfuaid"),
    ];
    for (standard, universal_access, profile, part, level) in cases {
        let options = pdf_options(|p| {
            p.standard = standard as i32;
            p.universal_access = universal_access;
            p.metadata = Some(metadata.clone());
        });
        let case = format!("{standard:?}{}", if universal_access { " UA" } else { "" });
        let first = SubmitHeader { options: Some(options.clone()), ..header("a.fodt") };
        let job = submit_merge(&mut client, first, &documents).await.unwrap();
        let job = wait_end(&mut client, &job.id).await;
        assert_eq!(job.state(), JobState::Succeeded, "{case}: {job:?}");
        let pdf = read_result(&mut client, &job.id, 0).await;
        assert_eq!(pdf_pages(&pdf), 5, "{case}");

        // One logical structure, every document's text in order, tied to
        // the pages it is on.
        // (LibreOffice tags a sheet's header and footer, not its cells.)
        let (texts, warnings) = structure_text(&pdf);
        assert!(warnings.is_empty(), "{case}: {warnings:?}");
        let order: Vec<Option<usize>> =
            ["Alpha", "Beta section", "Example Alpha", "Gamma", "Delta section", "Example Gamma", "sheet", "Page 1"]
                .iter()
                .map(|text| texts.iter().position(|t| t == text))
                .collect();
        assert!(order.iter().all(Option::is_some) && order.is_sorted(), "{case}: {order:?} in {texts:?}");
        assert_eq!(structure_faults(&pdf), Vec::<String>::new(), "{case}");
        let info = poppler_with("pdfinfo", &[], &pdf).unwrap();
        assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{case}: {info}");
        assert!(qpdf_check(&pdf), "{case}: qpdf --check");
        // Under one Document, a Part for each document; the German one
        // says so, the others speak the file's language.
        let objects = Objects::of(&pdf);
        let root = objects.get(&objects.catalog()["/StructTreeRoot"]);
        let document = objects.get(&root["/K"][0]);
        assert_eq!((root["/K"].as_array().map(Vec::len), &document["/S"]), (Some(1), &json!("/Document")), "{case}");
        let parts: Vec<(&Value, &Value)> = document["/K"]
            .as_array()
            .unwrap()
            .iter()
            .map(|part| (&objects.get(part)["/S"], &objects.get(part)["/Lang"]))
            .collect();
        let (kind, german, none) = (json!("/Part"), json!("u:de-DE"), Value::Null);
        assert_eq!(parts, [(&kind, &none), (&kind, &german), (&kind, &none)], "{case}");
        assert_eq!(objects.catalog()["/Lang"], "u:en-US", "{case}");

        // The standard declared; one output intent for PDF/A; an ID; the
        // document information and the XMP agree.
        let meta = poppler_with("pdfinfo", &["-meta"], &pdf).unwrap();
        assert!(meta.contains(part) && meta.contains(level), "{case}: {meta}");
        let intents = objects.get(&objects.catalog()["/OutputIntents"]).as_array().map_or(0, Vec::len);
        assert_eq!(intents, if standard == PdfStandard::Unspecified { 0 } else { 1 }, "{case}");
        assert_eq!(objects.trailer()["/ID"].as_array().map(Vec::len), Some(2), "{case}");
        let tags = exiftool_tags(&pdf);
        assert_eq!(tags["PDF:Title"], "Merged report", "{case}: {tags}");
        assert_eq!(tags["XMP-dc:Title"], "Merged report", "{case}: {tags}");
        assert_eq!(tags["PDF:Producer"], tags["XMP-pdf:Producer"], "{case}: {tags}");
        assert_eq!(tags["PDF:Creator"], tags["XMP-xmp:CreatorTool"], "{case}: {tags}");

        // Each document's bookmarks at its pages (a sheet's is its name).
        let expected = [
            ("Alpha", 1),
            ("Beta", 2),
            ("Beta section", 2),
            ("Gamma", 3),
            ("Delta", 4),
            ("Delta section", 4),
            ("sheet", 5),
        ];
        let expected: Vec<(String, u64)> = expected.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        assert_eq!(bookmarks(&pdf), expected, "{case}");

        // A validator finds the PDF/A sound, and nothing in the PDF/UA
        // that LibreOffice's documents alone do not have.
        let merged = failed_rules(&pdf, profile);
        if universal_access {
            let alone = failed_alone(&documents, &options, profile).await;
            assert!(merged.is_subset(&alone), "{case}: the merge fails {merged:?}; the documents alone {alone:?}");
        } else {
            assert!(merged.is_empty(), "{case}: {merged:?}");
        }
    }
}

/// exiftool's tags of `pdf` by group ("PDF:Title", "XMP-dc:Title").
fn exiftool_tags(pdf: &[u8]) -> serde_json::Value {
    exiftool_json(&["-G1", "-a"], pdf)
}

#[tokio::test]
async fn a_merged_pdf_a_takes_attachments_and_metadata_and_every_split_part_stays_pdf_a() {
    use docconv::proto::v1::{Attachment, DocumentHeader, PdfSplit, pdf_split};
    let mut client = shared().client().await;
    let options = pdf_options(|p| {
        p.standard = PdfStandard::PdfA3b as i32;
        p.metadata = Some(PdfMetadata { title: "Merged report".into(), ..Default::default() });
        p.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(2)) });
    });
    let documents = [("a.fodt", chapters("Alpha", "Beta")), ("b.fodt", chapters("Gamma", "Delta"))];
    let invoice = b"<?xml version=\"1.0\"?><invoice total=\"42\"/>".to_vec();
    let header = SubmitHeader { options: Some(options), ..header("a.fodt") };
    let further = [
        (DocumentHeader { file_name: "b.fodt".into(), ..Default::default() }, &documents[1].1[..]),
        (
            DocumentHeader {
                file_name: "invoice.xml".into(),
                attachment: Some(Attachment::default()),
                ..Default::default()
            },
            &invoice[..],
        ),
    ];
    let job = submit_with_files(&mut client, header, &documents[0].1, &further).await.unwrap();
    assert_eq!(job.merged_file_names, ["a.fodt", "b.fodt"]);
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    let zip = read_result(&mut client, &job.id, 0).await;
    let parts = unzip(&zip);
    assert_eq!(parts.len(), 2);
    let first_pages = ["Alpha", "Gamma"];
    for ((name, part), first) in parts.iter().zip(first_pages) {
        assert!(pdf_text(part, Some(1)).contains(first), "{name}");
        let meta = poppler_with("pdfinfo", &["-meta"], part).unwrap();
        assert!(meta.contains("<pdfaid:part>3</pdfaid:part>") && meta.contains("Merged report"), "{name}: {meta}");
        let listed = qpdf_json(part, &["--json-key=attachments"]);
        assert!(listed["attachments"].get("invoice.xml").is_some(), "{name}: {listed}");
        let info = poppler_with("pdfinfo", &[], part).unwrap();
        assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{name}: {info}");
        assert_eq!(structure_faults(part), Vec::<String>::new(), "{name}");
        let failed = failed_rules(part, "3b");
        assert!(failed.is_empty(), "{name}: {failed:?}");
    }
}
