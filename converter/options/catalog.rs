//! How readers open the PDF (`viewer`) and its bookmarks (`bookmarks`,
//! `title_bookmarks`): written into the finished PDF's catalog by
//! `postprocess::viewer` and `postprocess::bookmarks`. Pages past the
//! result's end are only known after conversion; the job fails then.

use super::{Violation, check_text, violation};
use docconv::proto::v1::{PdfBookmark, PdfInitialView, PdfMagnification, PdfOptions, PdfPageLayout, PdfViewer};

/// Deepest nesting and most bookmarks in all: far beyond any real outline,
/// and bounding the work (and the objects written) per job.
pub const MAX_BOOKMARK_DEPTH: usize = 8;
pub const MAX_BOOKMARKS: usize = 1000;
const MAX_ZOOM: u32 = 6400;

pub fn check(violations: &mut Vec<Violation>, pdf: &PdfOptions) {
    if let Some(viewer) = &pdf.viewer {
        check_viewer(violations, viewer);
    }
    if pdf.bookmarks.is_empty() {
        return;
    }
    let mut count = 0;
    check_bookmarks(violations, &pdf.bookmarks, 1, &mut count);
    if count > MAX_BOOKMARKS {
        violations.push(violation("options.pdf.bookmarks", format!("at most {MAX_BOOKMARKS} bookmarks in all")));
    }
    if pdf.export_bookmarks == Some(false) {
        violations.push(violation(
            "options.pdf.bookmarks",
            "not with export_bookmarks false: given bookmarks are the result's bookmarks; leave export_bookmarks unset",
        ));
    }
    if pdf.title_bookmarks {
        violations.push(violation(
            "options.pdf.title_bookmarks",
            "not with bookmarks, which replace every other bookmark: give the documents' bookmarks among them",
        ));
    }
}

fn check_viewer(violations: &mut Vec<Violation>, viewer: &PdfViewer) {
    let field = |name: &str| format!("options.pdf.viewer.{name}");
    if PdfInitialView::try_from(viewer.initial_view).is_err() {
        violations.push(violation(&field("initial_view"), "unknown value; use NONE, OUTLINE or THUMBNAILS"));
    }
    match PdfMagnification::try_from(viewer.magnification) {
        Err(_) => violations
            .push(violation(&field("magnification"), "unknown value; use FIT_PAGE, FIT_WIDTH, FIT_VISIBLE or ZOOM")),
        Ok(PdfMagnification::Zoom) if !(1..=MAX_ZOOM).contains(&viewer.zoom) => {
            violations.push(violation(&field("zoom"), format!("give a zoom of 1 to {MAX_ZOOM} percent")))
        }
        Ok(PdfMagnification::Zoom) => {}
        Ok(_) if viewer.zoom != 0 => {
            violations.push(violation(&field("zoom"), "only with magnification ZOOM, which it is the percent of"))
        }
        Ok(_) => {}
    }
    match PdfPageLayout::try_from(viewer.page_layout) {
        Err(_) => violations
            .push(violation(&field("page_layout"), "unknown value; use SINGLE_PAGE, ONE_COLUMN or TWO_COLUMNS")),
        Ok(layout) if viewer.first_page_on_left && layout != PdfPageLayout::TwoColumns => violations.push(violation(
            &field("first_page_on_left"),
            "only with page_layout TWO_COLUMNS, where pages stand side by side",
        )),
        Ok(_) => {}
    }
}

/// Checks each bookmark at `depth` (from 1) and under it, counting them.
fn check_bookmarks(violations: &mut Vec<Violation>, level: &[PdfBookmark], depth: usize, count: &mut usize) {
    let field = "options.pdf.bookmarks";
    if depth > MAX_BOOKMARK_DEPTH {
        violations.push(violation(field, format!("at most {MAX_BOOKMARK_DEPTH} levels of bookmarks")));
        return;
    }
    for bookmark in level {
        *count += 1;
        if bookmark.title.trim().is_empty() {
            violations.push(violation(field, "every bookmark needs a title"));
        }
        check_text(violations, field, &bookmark.title);
        if bookmark.page == 0 {
            violations.push(violation(field, format!("{:?}: pages count from 1", bookmark.title)));
        }
        check_bookmarks(violations, &bookmark.children, depth + 1, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pdf: PdfOptions) -> Vec<String> {
        let mut violations = Vec::new();
        check(&mut violations, &pdf);
        let mut fields: Vec<String> = violations.into_iter().map(|v| v.field).collect();
        fields.dedup();
        fields
    }

    fn mark(title: &str, page: u32, children: Vec<PdfBookmark>) -> PdfBookmark {
        PdfBookmark { title: title.into(), page, children, open: None }
    }

    fn viewer(edit: impl FnOnce(&mut PdfViewer)) -> PdfOptions {
        let mut viewer = PdfViewer::default();
        edit(&mut viewer);
        PdfOptions { viewer: Some(viewer), ..Default::default() }
    }

    #[test]
    fn viewer_values_go_together() {
        let good = viewer(|v| {
            v.initial_view = PdfInitialView::Thumbnails as i32;
            v.magnification = PdfMagnification::Zoom as i32;
            v.zoom = 150;
            v.page_layout = PdfPageLayout::TwoColumns as i32;
            v.first_page_on_left = true;
        });
        assert!(fields(good).is_empty());
        assert_eq!(fields(viewer(|v| v.initial_view = 9)), ["options.pdf.viewer.initial_view"]);
        assert_eq!(fields(viewer(|v| v.magnification = PdfMagnification::Zoom as i32)), ["options.pdf.viewer.zoom"]);
        assert_eq!(fields(viewer(|v| v.zoom = 120)), ["options.pdf.viewer.zoom"]);
        let fit_zoomed = viewer(|v| {
            v.magnification = PdfMagnification::FitPage as i32;
            v.zoom = 120;
        });
        assert_eq!(fields(fit_zoomed), ["options.pdf.viewer.zoom"]);
        assert_eq!(fields(viewer(|v| v.first_page_on_left = true)), ["options.pdf.viewer.first_page_on_left"]);
        assert_eq!(fields(viewer(|v| v.page_layout = 7)), ["options.pdf.viewer.page_layout"]);
    }

    #[test]
    fn bookmarks_are_checked_and_not_contradicted() {
        let good = PdfOptions { bookmarks: vec![mark("A", 1, vec![mark("A.1", 2, vec![])])], ..Default::default() };
        assert!(fields(good.clone()).is_empty());
        for bad in [
            mark("", 1, vec![]),
            mark("a\u{0}", 1, vec![]),
            mark("A", 0, vec![]),
            mark("A", 1, vec![mark("B", 0, vec![])]),
        ] {
            let options = PdfOptions { bookmarks: vec![bad.clone()], ..Default::default() };
            assert_eq!(fields(options), ["options.pdf.bookmarks"], "{bad:?}");
        }
        let deep = (0..9).fold(Vec::new(), |children, _| vec![mark("x", 1, children)]);
        assert_eq!(fields(PdfOptions { bookmarks: deep, ..Default::default() }), ["options.pdf.bookmarks"]);
        let many = vec![mark("x", 1, vec![]); MAX_BOOKMARKS + 1];
        assert_eq!(fields(PdfOptions { bookmarks: many, ..Default::default() }), ["options.pdf.bookmarks"]);
        let unexported = PdfOptions { export_bookmarks: Some(false), ..good.clone() };
        assert_eq!(fields(unexported), ["options.pdf.bookmarks"]);
        let titled = PdfOptions { title_bookmarks: true, ..good };
        assert_eq!(fields(titled), ["options.pdf.title_bookmarks"]);
    }
}
