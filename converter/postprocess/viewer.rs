//! How readers open the PDF: the catalog's /PageMode, /PageLayout,
//! /OpenAction and /ViewerPreferences, set through qpdf's JSON on the
//! finished PDF, so PDF inputs and merges get them as converted
//! documents do. (LibreOffice could write them while exporting, but only
//! for what it exports.) A split's parts carry the catalog; `part` points
//! their opening page at one of their own.

use super::objects;
use super::outline::page_objects;
use super::tools::qpdf_json;
use crate::failure::Failure;
use docconv::proto::v1::{PdfInitialView, PdfMagnification, PdfPageLayout, PdfViewer};
use serde_json::{Map, Value, json};
use std::path::Path;

/// Sets what `viewer` asks in `pdf`, of `pages` pages.
pub async fn apply(viewer: &PdfViewer, pdf: &Path, pages: u32) -> Result<(), Failure> {
    // The bookmarks' levels are the outline's business (`bookmarks`).
    let catalog_wanted = PdfViewer { open_bookmark_levels: 0, ..*viewer };
    if catalog_wanted == PdfViewer::default() {
        return Ok(());
    }
    if viewer.initial_page > pages {
        return Err(Failure::PageBeyondEnd {
            field: "options.pdf.viewer.initial_page",
            page: viewer.initial_page,
            pages,
        });
    }
    let catalog = objects::catalog(pdf).await?;
    let mut root = catalog.value;
    let page = match opens_at(viewer) {
        Some(index) => {
            let refs = page_objects(&qpdf_json(pdf, &["--json-key=pages".into()]).await?);
            refs.get(index).cloned()
        }
        None => None,
    };
    // Preferences kept in an object of their own are copied into the
    // catalog, changed; the old object goes with the next rewrite.
    let preferences = match root.get("/ViewerPreferences") {
        Some(Value::String(reference)) => objects::object(pdf, reference).await?,
        Some(Value::Object(direct)) => direct.clone(),
        _ => Map::new(),
    };
    set(viewer, &mut root, preferences, page.as_deref());
    objects::update(pdf, vec![(catalog.reference, root)], catalog.max_object_id).await
}

/// The page (from 0) the document must open at, when the viewer says.
fn opens_at(viewer: &PdfViewer) -> Option<usize> {
    let asked = viewer.initial_page != 0 || viewer.magnification() != PdfMagnification::Unspecified;
    asked.then(|| viewer.initial_page.max(1) as usize - 1)
}

/// Changes the catalog `root` (with its viewer preferences `preferences`)
/// as `viewer` says; `page` is the object of the page to open at.
fn set(viewer: &PdfViewer, root: &mut Map<String, Value>, mut preferences: Map<String, Value>, page: Option<&str>) {
    let panel = match viewer.initial_view() {
        PdfInitialView::Unspecified => None,
        PdfInitialView::None => Some("/UseNone"),
        PdfInitialView::Outline => Some("/UseOutlines"),
        PdfInitialView::Thumbnails => Some("/UseThumbs"),
    };
    if viewer.full_screen {
        root.insert("/PageMode".into(), json!("/FullScreen"));
        // What shows on leaving full screen.
        if let Some(panel) = panel {
            preferences.insert("/NonFullScreenPageMode".into(), json!(panel));
        }
    } else if let Some(panel) = panel {
        root.insert("/PageMode".into(), json!(panel));
    }
    let layout = match viewer.page_layout() {
        PdfPageLayout::Unspecified => None,
        PdfPageLayout::SinglePage => Some("/SinglePage"),
        PdfPageLayout::OneColumn => Some("/OneColumn"),
        PdfPageLayout::TwoColumns if viewer.first_page_on_left => Some("/TwoColumnLeft"),
        PdfPageLayout::TwoColumns => Some("/TwoColumnRight"),
    };
    if let Some(layout) = layout {
        root.insert("/PageLayout".into(), json!(layout));
    }
    if let Some(page) = page {
        let view = match viewer.magnification() {
            // The document's own view of its first page, else the top of the
            // page at the reader's zoom.
            PdfMagnification::Unspecified => own_view(root).unwrap_or_else(|| json!(["/XYZ", null, null, 0])),
            PdfMagnification::FitPage => json!(["/Fit"]),
            PdfMagnification::FitWidth => json!(["/FitH", null]),
            PdfMagnification::FitVisible => json!(["/FitBH", null]),
            PdfMagnification::Zoom => json!(["/XYZ", null, null, f64::from(viewer.zoom) / 100.0]),
        };
        let mut dest = vec![json!(page)];
        dest.extend(view.as_array().cloned().unwrap_or_default());
        root.insert("/OpenAction".into(), Value::Array(dest));
    }
    for (key, wanted) in [
        ("/FitWindow", viewer.resize_window_to_page),
        ("/CenterWindow", viewer.center_window),
        ("/DisplayDocTitle", viewer.display_document_title),
        ("/HideMenubar", viewer.hide_menubar),
        ("/HideToolbar", viewer.hide_toolbar),
        ("/HideWindowUI", viewer.hide_window_controls),
    ] {
        if wanted {
            preferences.insert(key.into(), json!(true));
        }
    }
    if !preferences.is_empty() {
        root.insert("/ViewerPreferences".into(), Value::Object(preferences));
    }
}

/// The view of the document's own opening destination (`[page /XYZ …]`).
fn own_view(root: &Map<String, Value>) -> Option<Value> {
    let (_, view) = super::outline::destination(root.get("/OpenAction")?);
    (!view.is_empty()).then_some(Value::Array(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(viewer: &PdfViewer, root: Value) -> Value {
        let mut root = root.as_object().cloned().unwrap();
        let page = opens_at(viewer).map(|index| format!("{} 0 R", 10 + index));
        set(viewer, &mut root, Map::new(), page.as_deref());
        Value::Object(root)
    }

    #[test]
    fn each_setting_has_its_catalog_entry() {
        let viewer = PdfViewer {
            initial_view: PdfInitialView::Thumbnails as i32,
            initial_page: 3,
            magnification: PdfMagnification::Zoom as i32,
            zoom: 150,
            page_layout: PdfPageLayout::TwoColumns as i32,
            first_page_on_left: true,
            resize_window_to_page: true,
            hide_window_controls: true,
            ..Default::default()
        };
        let root = catalog(&viewer, json!({ "/Type": "/Catalog", "/PageMode": "/UseOutlines" }));
        assert_eq!(root["/PageMode"], "/UseThumbs");
        assert_eq!(root["/PageLayout"], "/TwoColumnLeft");
        assert_eq!(root["/OpenAction"], json!(["12 0 R", "/XYZ", null, null, 1.5]));
        assert_eq!(root["/ViewerPreferences"], json!({ "/FitWindow": true, "/HideWindowUI": true }));
    }

    #[test]
    fn full_screen_keeps_the_panel_for_later_and_pages_keep_their_view() {
        let viewer = PdfViewer {
            full_screen: true,
            initial_view: PdfInitialView::None as i32,
            initial_page: 2,
            ..Default::default()
        };
        let root = catalog(&viewer, json!({ "/OpenAction": ["10 0 R", "/XYZ", 56.7, 785.2, 0] }));
        assert_eq!(root["/PageMode"], "/FullScreen");
        assert_eq!(root["/ViewerPreferences"]["/NonFullScreenPageMode"], "/UseNone");
        assert_eq!(root["/OpenAction"], json!(["11 0 R", "/XYZ", 56.7, 785.2, 0]));
        let fit = PdfViewer { magnification: PdfMagnification::FitWidth as i32, ..Default::default() };
        assert_eq!(catalog(&fit, json!({}))["/OpenAction"], json!(["10 0 R", "/FitH", null]));
        assert_eq!(catalog(&PdfViewer::default(), json!({})), json!({}));
    }
}
