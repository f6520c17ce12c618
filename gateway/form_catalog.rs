//! Form fields for how readers open the PDF (`viewer`), its bookmarks and
//! the permissions beyond the first three, named as their gRPC fields.

use super::error::AppError;
use super::form::{bad, flag, number};
use docconv::proto::v1::{PdfEncryption, PdfInitialView, PdfMagnification, PdfOptions, PdfPageLayout, PdfViewer};

/// Sets field `name` if it is one of these; `None` for other names.
pub fn set(pdf: &mut PdfOptions, name: &str, value: &str) -> Option<Result<(), AppError>> {
    match apply(pdf, name, value) {
        Ok(false) => None,
        Ok(true) => Some(Ok(())),
        Err(e) => Some(Err(e)),
    }
}

fn viewer(pdf: &mut PdfOptions) -> &mut PdfViewer {
    pdf.viewer.get_or_insert_with(Default::default)
}

fn encryption(pdf: &mut PdfOptions) -> &mut PdfEncryption {
    pdf.encryption.get_or_insert_with(Default::default)
}

/// Whether `name` is one of these fields (then set).
fn apply(pdf: &mut PdfOptions, name: &str, value: &str) -> Result<bool, AppError> {
    match name {
        "initial_view" => {
            viewer(pdf).initial_view = match value {
                "none" => PdfInitialView::None,
                "outline" => PdfInitialView::Outline,
                "thumbnails" => PdfInitialView::Thumbnails,
                _ => return Err(bad(name, "use none, outline or thumbnails")),
            } as i32
        }
        "initial_page" => viewer(pdf).initial_page = number(name, value)?,
        "magnification" => {
            viewer(pdf).magnification = match value {
                "fit_page" => PdfMagnification::FitPage,
                "fit_width" => PdfMagnification::FitWidth,
                "fit_visible" => PdfMagnification::FitVisible,
                "zoom" => PdfMagnification::Zoom,
                _ => return Err(bad(name, "use fit_page, fit_width, fit_visible or zoom")),
            } as i32
        }
        "zoom" => viewer(pdf).zoom = number(name, value)?,
        "page_layout" => {
            viewer(pdf).page_layout = match value {
                "single_page" => PdfPageLayout::SinglePage,
                "one_column" => PdfPageLayout::OneColumn,
                "two_columns" => PdfPageLayout::TwoColumns,
                _ => return Err(bad(name, "use single_page, one_column or two_columns")),
            } as i32
        }
        "first_page_on_left" => viewer(pdf).first_page_on_left = flag(name, value)?,
        "resize_window_to_page" => viewer(pdf).resize_window_to_page = flag(name, value)?,
        "center_window" => viewer(pdf).center_window = flag(name, value)?,
        "full_screen" => viewer(pdf).full_screen = flag(name, value)?,
        "display_document_title" => viewer(pdf).display_document_title = flag(name, value)?,
        "hide_menubar" => viewer(pdf).hide_menubar = flag(name, value)?,
        "hide_toolbar" => viewer(pdf).hide_toolbar = flag(name, value)?,
        "hide_window_controls" => viewer(pdf).hide_window_controls = flag(name, value)?,
        "open_bookmark_levels" => viewer(pdf).open_bookmark_levels = number(name, value)?,
        "bookmarks" => pdf.bookmarks = crate::bookmarks::parse(value).map_err(|e| bad(name, &e))?,
        "title_bookmarks" => pdf.title_bookmarks = flag(name, value)?,
        "allow_annotating" => encryption(pdf).allow_annotating = flag(name, value)?,
        "allow_filling_forms" => encryption(pdf).allow_filling_forms = flag(name, value)?,
        "allow_assembling" => encryption(pdf).allow_assembling = flag(name, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_bookmark_and_permission_fields_become_options() {
        let mut pdf = PdfOptions::default();
        for (name, value) in [
            ("initial_view", "thumbnails"),
            ("initial_page", "2"),
            ("magnification", "zoom"),
            ("zoom", "150"),
            ("page_layout", "two_columns"),
            ("first_page_on_left", "on"),
            ("hide_toolbar", "true"),
            ("open_bookmark_levels", "1"),
            ("bookmarks", r#"[{"title": "Start", "page": 1}]"#),
            ("title_bookmarks", "on"),
            ("allow_assembling", "on"),
        ] {
            assert!(matches!(set(&mut pdf, name, value), Some(Ok(()))), "{name}");
        }
        let viewer = pdf.viewer.unwrap();
        assert_eq!(viewer.initial_view(), PdfInitialView::Thumbnails);
        assert_eq!((viewer.initial_page, viewer.zoom, viewer.open_bookmark_levels), (2, 150, 1));
        assert_eq!(viewer.page_layout(), PdfPageLayout::TwoColumns);
        assert!(viewer.first_page_on_left && viewer.hide_toolbar);
        assert_eq!(pdf.bookmarks[0].title, "Start");
        assert!(pdf.title_bookmarks && pdf.encryption.unwrap().allow_assembling);
        let mut pdf = PdfOptions::default();
        assert!(set(&mut pdf, "watermark", "x").is_none());
        assert!(matches!(set(&mut pdf, "magnification", "huge"), Some(Err(_))));
        assert!(matches!(set(&mut pdf, "bookmarks", "[{}]"), Some(Err(_))));
    }
}
