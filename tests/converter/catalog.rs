//! What the finished PDF's catalog says: how readers open it (viewer
//! preferences), its bookmarks (given, or one per merged document) and
//! its permissions, on every output of a job (converted documents, PDF
//! inputs, merges, each part of a split), read back with qpdf and pdfinfo.

use crate::finishing::parts;
use crate::support::*;
use docconv::proto::v1::{
    ConversionOptions, JobState, PdfBookmark, PdfEncryption, PdfInitialView, PdfMagnification, PdfOptions,
    PdfPageLayout, PdfSplit, PdfViewer, SubmitHeader, pdf_split,
};
use serde_json::{Value, json};

fn with_options(name: &str, options: ConversionOptions) -> SubmitHeader {
    SubmitHeader { options: Some(options), ..header(name) }
}

/// qpdf's JSON of `pdf`, opened with `password` if given.
fn json_of(pdf: &[u8], password: Option<&str>, keys: &[&str]) -> Value {
    let password = password.map(|p| format!("--password={p}"));
    let mut args: Vec<&str> = password.iter().map(String::as_str).collect();
    args.extend(keys);
    qpdf_json(pdf, &args)
}

/// The document catalog, and each page's object.
fn catalog(pdf: &[u8], password: Option<&str>) -> (Value, Vec<String>) {
    let trailer = json_of(pdf, password, &["--json-key=qpdf", "--json-object=trailer"]);
    let root = trailer["qpdf"][1]["trailer"]["value"]["/Root"].as_str().unwrap().to_owned();
    let id = format!("--json-object={}", root.split_whitespace().next().unwrap());
    let object = json_of(pdf, password, &["--json-key=qpdf", &id, "--json-key=pages"]);
    let pages = object["pages"].as_array().unwrap().iter().map(|p| p["object"].as_str().unwrap().to_owned()).collect();
    (object["qpdf"][1][format!("obj:{root}")]["value"].clone(), pages)
}

/// The page (from 1) the PDF opens at, and the view after it.
fn opens_at(pdf: &[u8], password: Option<&str>) -> (usize, Vec<Value>) {
    let (root, pages) = catalog(pdf, password);
    let action = root["/OpenAction"].as_array().unwrap_or_else(|| panic!("no /OpenAction: {root}")).clone();
    let page = pages.iter().position(|p| Some(p.as_str()) == action[0].as_str()).expect("a page of the PDF") + 1;
    (page, action[1..].to_vec())
}

/// Bookmarks as (depth, title, page, open), depth first.
fn outline(pdf: &[u8], password: Option<&str>) -> Vec<(usize, String, u64, bool)> {
    fn walk(items: &Value, depth: usize, into: &mut Vec<(usize, String, u64, bool)>) {
        for item in items.as_array().into_iter().flatten() {
            let page = item["destpageposfrom1"].as_u64().unwrap_or(0);
            let open = item["open"].as_bool().unwrap_or(false);
            into.push((depth, item["title"].as_str().unwrap_or_default().to_owned(), page, open));
            walk(&item["kids"], depth + 1, into);
        }
    }
    let mut found = Vec::new();
    walk(&json_of(pdf, password, &["--json-key=outlines"])["outlines"], 1, &mut found);
    found
}

fn marks(expected: &[(usize, &str, u64, bool)]) -> Vec<(usize, String, u64, bool)> {
    expected.iter().map(|(d, t, p, o)| (*d, t.to_string(), *p, *o)).collect()
}

/// A text document of chapters, each starting a page; the second has a
/// section.
fn chapters(titles: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for (index, title) in titles.iter().enumerate() {
        let style = if index == 0 { "" } else { " text:style-name=\"Break\"" };
        body.push_str(&format!("<text:h{style} text:outline-level=\"1\">{title}</text:h><text:p>Text.</text:p>"));
        if index == 1 {
            body.push_str(&format!("<text:h text:outline-level=\"2\">{title} section</text:h><text:p>More.</text:p>"));
        }
    }
    flat_odf(
        "text",
        "<office:automatic-styles><style:style style:name=\"Break\" style:family=\"paragraph\">\
         <style:paragraph-properties fo:break-before=\"page\"/></style:style></office:automatic-styles>",
        &body,
    )
}

async fn failure_of(header: SubmitHeader, data: &[u8]) -> String {
    let mut client = shared().client().await;
    let job = submit(&mut client, header, data).await.unwrap();
    wait_failed(&mut client, &job.id).await.message
}

async fn merged(header: SubmitHeader, documents: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut client = shared().client().await;
    let job = submit_merge(&mut client, header, documents).await.unwrap();
    let job = wait_end(&mut client, &job.id).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}");
    read_result(&mut client, &job.id, 0).await
}

fn viewer_options(viewer: PdfViewer, edit: impl FnOnce(&mut PdfOptions)) -> ConversionOptions {
    pdf_options(|p| {
        p.viewer = Some(viewer);
        edit(p);
    })
}

#[tokio::test]
async fn viewer_preferences_reach_every_output() {
    let viewer = PdfViewer {
        initial_view: PdfInitialView::Thumbnails as i32,
        initial_page: 2,
        magnification: PdfMagnification::Zoom as i32,
        zoom: 150,
        page_layout: PdfPageLayout::TwoColumns as i32,
        first_page_on_left: true,
        center_window: true,
        display_document_title: true,
        hide_toolbar: true,
        ..Default::default()
    };
    let three = std::fs::read(fixture("pages_3.docx")).unwrap();
    let (_, pdf) = convert_on_shared(with_options("pages_3.docx", viewer_options(viewer, |_| {})), &three).await;
    let (root, _) = catalog(&pdf, None);
    assert_eq!(root["/PageMode"], "/UseThumbs", "{root}");
    assert_eq!(root["/PageLayout"], "/TwoColumnLeft", "{root}");
    let preferences = json!({ "/CenterWindow": true, "/DisplayDocTitle": true, "/HideToolbar": true });
    assert_eq!(root["/ViewerPreferences"], preferences);
    assert_eq!(opens_at(&pdf, None), (2, vec![json!("/XYZ"), Value::Null, Value::Null, json!(1.5)]));
    assert!(qpdf_check(&pdf));

    // A PDF input: full screen, leaving it for the bare pages, fitted.
    let full = PdfViewer {
        full_screen: true,
        initial_view: PdfInitialView::None as i32,
        magnification: PdfMagnification::FitPage as i32,
        page_layout: PdfPageLayout::SinglePage as i32,
        ..Default::default()
    };
    let (_, again) = convert_on_shared(with_options("again.pdf", viewer_options(full, |_| {})), &pdf).await;
    let (root, _) = catalog(&again, None);
    assert_eq!((&root["/PageMode"], &root["/PageLayout"]), (&json!("/FullScreen"), &json!("/SinglePage")));
    assert_eq!(root["/ViewerPreferences"]["/NonFullScreenPageMode"], "/UseNone");
    // What the input said and this job did not change stays.
    assert_eq!(root["/ViewerPreferences"]["/HideToolbar"], true);
    assert_eq!(opens_at(&again, None), (1, vec![json!("/Fit")]));

    // A merge asks for its bookmarks panel; the viewer's choice wins.
    let bare = PdfViewer { initial_view: PdfInitialView::None as i32, ..Default::default() };
    let documents = [("a.fodt", chapters(&["Alpha", "Beta"])), ("b.pdf", pdf.clone())];
    let joined = merged(with_options("a.fodt", viewer_options(bare, |_| {})), &documents).await;
    assert_eq!(catalog(&joined, None).0["/PageMode"], "/UseNone");
    assert_eq!(outline(&joined, None).len(), 3, "the merge keeps its bookmarks");

    // Each part of a split, encrypted, has them, and opens at the page
    // asked if it holds it, else at its first page.
    let split = viewer_options(viewer, |p| {
        p.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(2)) });
        p.encryption = Some(PdfEncryption { open_password: "pw".into(), ..Default::default() });
    });
    let (_, zip) = convert_on_shared(with_options("pages_3.docx", split), &three).await;
    let parts = parts(&zip);
    assert_eq!(parts.len(), 2);
    for (part, opens) in parts.iter().zip([2, 1]) {
        let (root, _) = catalog(part, Some("pw"));
        assert_eq!((&root["/PageMode"], &root["/PageLayout"]), (&json!("/UseThumbs"), &json!("/TwoColumnLeft")));
        assert_eq!(root["/ViewerPreferences"], preferences);
        assert_eq!(opens_at(part, Some("pw")).0, opens);
    }

    // A page past the end fails the job, saying so.
    let far = PdfViewer { initial_page: 4, ..Default::default() };
    let message = failure_of(with_options("three.pdf", viewer_options(far, |_| {})), &pdf).await;
    assert!(message.contains("options.pdf.viewer.initial_page names page 4, but the result has 3 pages"), "{message}");
}

fn mark(title: &str, page: u32, open: Option<bool>, children: Vec<PdfBookmark>) -> PdfBookmark {
    PdfBookmark { title: title.into(), page, children, open }
}

#[tokio::test]
async fn given_bookmarks_replace_the_documents_own_in_every_output() {
    let document = chapters(&["Alpha", "Beta", "Gamma"]);
    let (_, own) = convert_on_shared(header("c.fodt"), &document).await;
    let expected = [(1, "Alpha", 1, true), (1, "Beta", 2, true), (2, "Beta section", 2, true), (1, "Gamma", 3, true)];
    assert_eq!(outline(&own, None), marks(&expected));

    let given = vec![
        mark("Start", 1, None, vec![mark("Middle", 2, Some(false), vec![mark("Detail", 2, None, vec![])])]),
        mark("End", 3, None, vec![]),
    ];
    let options = || pdf_options(|p| p.bookmarks = given.clone());
    // Middle is closed: its /Count is negative. (A bookmark without
    // children has no /Count, and reads as open.)
    let expected = [(1, "Start", 1, true), (2, "Middle", 2, false), (3, "Detail", 2, true), (1, "End", 3, true)];
    // A converted document and a PDF input alike.
    for (name, data) in [("c.fodt", &document), ("own.pdf", &own)] {
        let (_, pdf) = convert_on_shared(with_options(name, options()), data).await;
        assert_eq!(outline(&pdf, None), marks(&expected), "{name}");
        assert_eq!(catalog(&pdf, None).0["/PageMode"], "/UseOutlines", "{name}");
        assert!(qpdf_check(&pdf), "{name}");
    }

    // Each part of a split has the bookmarks of its pages; one whose page
    // is elsewhere leaves, and those under it take its place.
    let split = pdf_options(|p| {
        p.bookmarks = given.clone();
        p.split = Some(PdfSplit {
            by: Some(pdf_split::By::Ranges(docconv::proto::v1::PageRanges { ranges: vec!["1".into(), "2-3".into()] })),
        });
    });
    let (_, zip) = convert_on_shared(with_options("c.fodt", split), &document).await;
    let split: Vec<_> = parts(&zip).iter().map(|part| outline(part, None)).collect();
    let expected_parts = [
        marks(&[(1, "Start", 1, true)]),
        marks(&[(1, "Middle", 1, false), (2, "Detail", 1, true), (1, "End", 2, true)]),
    ];
    assert_eq!(split, expected_parts);
    // So do a document's own bookmarks: before, every part kept all of
    // them, most pointing at pages it does not have.
    let every_page = pdf_options(|p| p.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(1)) }));
    let (_, zip) = convert_on_shared(with_options("own.pdf", every_page), &own).await;
    let split: Vec<_> = parts(&zip).iter().map(|part| outline(part, None)).collect();
    let expected_parts = [
        marks(&[(1, "Alpha", 1, true)]),
        marks(&[(1, "Beta", 1, true), (2, "Beta section", 1, true)]),
        marks(&[(1, "Gamma", 1, true)]),
    ];
    assert_eq!(split, expected_parts);

    // A bookmark past the result's end fails the job.
    let far = pdf_options(|p| p.bookmarks = vec![mark("Far", 9, None, vec![])]);
    let message = failure_of(with_options("own.pdf", far), &own).await;
    assert!(message.contains("options.pdf.bookmarks names page 9, but the result has 3 pages"), "{message}");
}

#[tokio::test]
async fn title_bookmarks_hold_each_merged_documents_own() {
    let one = std::fs::read(fixture("page_1.docx")).unwrap();
    let (_, chapters_pdf) = convert_on_shared(header("c.fodt"), &chapters(&["Alpha", "Beta"])).await;
    let documents = [("Chapters.pdf", chapters_pdf), ("page_1.docx", one.clone()), ("b.fodt", chapters(&["Gamma"]))];
    let titled = pdf_options(|p| p.title_bookmarks = true);
    let pdf = merged(with_options("Chapters.pdf", titled), &documents).await;
    let expected = [
        (1, "Chapters", 1, true),
        (2, "Alpha", 1, true),
        (2, "Beta", 2, true),
        (3, "Beta section", 2, true),
        (1, "page_1", 3, true),
        (1, "b", 4, true),
        (2, "Gamma", 4, true),
    ];
    assert_eq!(outline(&pdf, None), marks(&expected));
    assert!(qpdf_check(&pdf));

    // Only the top level shows with open_bookmark_levels 1; 2 opens it.
    for (levels, open) in [(1, false), (2, true)] {
        let options = pdf_options(|p| {
            p.title_bookmarks = true;
            p.viewer = Some(PdfViewer { open_bookmark_levels: levels, ..Default::default() });
        });
        let pdf = merged(with_options("Chapters.pdf", options), &documents).await;
        let found = outline(&pdf, None);
        assert_eq!((found[0].1.as_str(), found[0].3), ("Chapters", open), "{levels}: {found:?}");
        assert!(!found[2].3, "{levels}: Beta stays closed: {found:?}");
    }

    // A single document gets its one bookmark too; without its own.
    let single = pdf_options(|p| {
        p.title_bookmarks = true;
        p.export_bookmarks = Some(false);
    });
    let (_, pdf) = convert_on_shared(with_options("c.fodt", single), &chapters(&["Alpha", "Beta"])).await;
    assert_eq!(outline(&pdf, None), marks(&[(1, "c", 1, true)]));
}

/// The permissions qpdf reads from an encrypted PDF, as "name: allowed".
fn permissions(pdf: &[u8], password: &str) -> String {
    let password = format!("--password={password}");
    String::from_utf8_lossy(&qpdf_on(&[&password, "--show-encryption"], pdf).stdout).into_owned()
}

#[tokio::test]
async fn permissions_are_set_on_every_output() {
    let encrypted = |edit: fn(&mut PdfEncryption)| {
        let mut encryption = PdfEncryption { owner_password: "owner".into(), ..Default::default() };
        edit(&mut encryption);
        pdf_options(move |p| p.encryption = Some(encryption))
    };
    let three = std::fs::read(fixture("pages_3.docx")).unwrap();
    let (_, annotating) =
        convert_on_shared(with_options("pages_3.docx", encrypted(|e| e.allow_annotating = true)), &three).await;
    let info = poppler_with("pdfinfo", &[], &annotating).unwrap();
    assert!(info.contains("print:no copy:no change:no addNotes:yes"), "{info}");
    let shown = permissions(&annotating, "");
    for line in ["modify annotations: allowed", "modify forms: allowed", "modify document assembly: not allowed"] {
        assert!(shown.contains(line), "{line}: {shown}");
    }

    // A PDF input, filling in forms alone.
    let (_, plain) = convert_on_shared(header("pages_3.docx"), &three).await;
    let (_, forms) =
        convert_on_shared(with_options("p.pdf", encrypted(|e| e.allow_filling_forms = true)), &plain).await;
    assert!(poppler_with("pdfinfo", &[], &forms).unwrap().contains("change:no addNotes:no"));
    let shown = permissions(&forms, "");
    for line in ["modify forms: allowed", "modify annotations: not allowed", "modify document assembly: not allowed"] {
        assert!(shown.contains(line), "{line}: {shown}");
    }

    // Every part of a split, assembling alone; editing still allows all.
    let mut split = encrypted(|e| {
        e.allow_assembling = true;
        e.open_password = "pw".into();
    });
    split.pdf.as_mut().unwrap().split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(2)) });
    let (_, zip) = convert_on_shared(with_options("p.pdf", split), &plain).await;
    for part in parts(&zip) {
        let shown = permissions(&part, "pw");
        for line in ["modify document assembly: allowed", "modify forms: not allowed", "modify other: not allowed"] {
            assert!(shown.contains(line), "{line}: {shown}");
        }
    }
    let (_, editing) = convert_on_shared(with_options("p.pdf", encrypted(|e| e.allow_editing = true)), &plain).await;
    let shown = permissions(&editing, "");
    for line in ["modify document assembly: allowed", "modify forms: allowed", "modify annotations: allowed"] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
}
