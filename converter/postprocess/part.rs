//! What a part of a split keeps of the whole's catalog. A part is the
//! whole document with the other pages left out (see `split`), so its
//! catalog is the whole's: its viewer preferences hold as they are, but
//! its bookmarks and its opening page still point at every page of the
//! whole, most of them no longer in the part. Each part is given the
//! bookmarks of its own pages, and opens at the whole's opening page if
//! it holds it, else at its first page, in the same view.

use super::objects;
use super::outline::{self, Bookmark};
use super::tools::qpdf_json;
use crate::failure::Failure;
use serde_json::Value;
use std::path::Path;

/// What of the whole's catalog points at its pages.
pub struct Whole {
    outline: Vec<Bookmark>,
    /// The page (from 1) and view it opens at, when it opens at a page.
    opens: Option<(u32, Vec<Value>)>,
}

impl Whole {
    pub async fn read(pdf: &Path) -> Result<Whole, Failure> {
        let outline = outline::read(pdf).await?;
        let catalog = objects::catalog(pdf).await?;
        let opens = match catalog.value.get("/OpenAction") {
            Some(action) => {
                let pages = outline::page_objects(&qpdf_json(pdf, &["--json-key=pages".into()]).await?);
                let (target, view) = outline::destination(action);
                let index = target.and_then(|target| pages.iter().position(|p| p == target));
                index.map(|index| (index as u32 + 1, view))
            }
            None => None,
        };
        Ok(Whole { outline, opens })
    }

    /// Points `part`, made of the whole's `pages` (ascending, from 1), at
    /// its own pages.
    pub async fn fit(&self, part: &Path, pages: &[u32]) -> Result<(), Failure> {
        if !self.outline.is_empty() {
            outline::write(part, &outline::within(&self.outline, pages), false).await?;
        }
        let Some((page, view)) = &self.opens else { return Ok(()) };
        let index = pages.iter().position(|p| p == page).unwrap_or(0);
        let refs = outline::page_objects(&qpdf_json(part, &["--json-key=pages".into()]).await?);
        let catalog = objects::catalog(part).await?;
        let mut root = catalog.value;
        let mut dest = vec![Value::String(refs.get(index).cloned().unwrap_or_default())];
        dest.extend(view.iter().cloned());
        root.insert("/OpenAction".into(), Value::Array(dest));
        objects::update(part, vec![(catalog.reference, root)], catalog.max_object_id).await
    }
}
