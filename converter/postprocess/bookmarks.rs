//! The result's bookmarks as the options ask: given bookmarks replace its
//! own, title bookmarks give each document of a job one bookmark holding
//! its own, and `viewer.open_bookmark_levels` opens the top levels. Read
//! and written through `outline`.

use super::outline::{self, Bookmark};
use crate::failure::Failure;
use docconv::proto::v1::{PdfBookmark, PdfOptions};
use std::path::Path;

/// Gives the finished `pdf` of `pages` pages the bookmarks `options` ask
/// for, if they ask for any.
pub async fn apply(options: &PdfOptions, pdf: &Path, pages: u32) -> Result<(), Failure> {
    let levels = options.viewer.as_ref().map_or(0, |v| v.open_bookmark_levels);
    if !options.bookmarks.is_empty() {
        let mut given = given(&options.bookmarks);
        if let Some(page) = last_page(&given).filter(|&page| page > pages as usize) {
            return Err(Failure::PageBeyondEnd { field: "options.pdf.bookmarks", page: page as u32, pages });
        }
        if levels > 0 {
            outline::show_levels(&mut given, levels);
        }
        return outline::write(pdf, &given, true).await;
    }
    if levels > 0 {
        let mut own = outline::read(pdf).await?;
        if !own.is_empty() {
            outline::show_levels(&mut own, levels);
            return outline::write(pdf, &own, false).await;
        }
    }
    Ok(())
}

/// One bookmark for each document, titled `title`, opening its first
/// page, holding the document's own bookmarks.
pub fn titled(outline: Vec<Bookmark>, title: &str) -> Vec<Bookmark> {
    vec![Bookmark { title: title.to_owned(), page: Some(1), view: Vec::new(), open: true, kids: outline }]
}

/// Gives a single document (`pdf`, the job's only one) its title bookmark.
pub async fn entitle(pdf: &Path, title: &str) -> Result<(), Failure> {
    let own = outline::read(pdf).await?;
    outline::write(pdf, &titled(own, title), true).await
}

fn given(bookmarks: &[PdfBookmark]) -> Vec<Bookmark> {
    bookmarks
        .iter()
        .map(|b| Bookmark {
            title: b.title.clone(),
            page: Some(b.page as usize),
            view: Vec::new(),
            open: b.open.unwrap_or(true),
            kids: given(&b.children),
        })
        .collect()
}

/// The highest page any bookmark opens.
fn last_page(outline: &[Bookmark]) -> Option<usize> {
    outline.iter().flat_map(|b| b.page.into_iter().chain(last_page(&b.kids))).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_bookmarks_keep_their_tree_and_say_their_last_page() {
        let deep = PdfBookmark { title: "A.1".into(), page: 7, children: vec![], open: Some(false) };
        let top = PdfBookmark { title: "A".into(), page: 2, children: vec![deep], open: None };
        let outline = given(&[top]);
        assert_eq!((outline[0].page, outline[0].open), (Some(2), true));
        assert_eq!((outline[0].kids[0].page, outline[0].kids[0].open), (Some(7), false));
        assert_eq!(last_page(&outline), Some(7));
        let titled = titled(outline, "report");
        assert_eq!((titled[0].title.as_str(), titled[0].page, titled[0].kids.len()), ("report", Some(1), 1));
    }
}
