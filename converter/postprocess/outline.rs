//! Bookmarks for a merged PDF. qpdf's page selection keeps no outline of
//! its inputs, so each document's outline is read before the merge and
//! written into the merged file afterwards, pointing at that document's
//! pages there: qpdf's JSON describes outlines and pages, and its
//! `--update-from-json` adds the objects. The PDF itself is never edited
//! by hand.

use super::objects;
use super::tools::{page_count, qpdf_json};
use crate::failure::Failure;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// One bookmark: its title, the page it opens (from 1, within its own
/// document), and the bookmarks under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bookmark {
    pub title: String,
    pub page: Option<usize>,
    pub open: bool,
    pub kids: Vec<Bookmark>,
}

/// The outline of `pdf`, as qpdf reads it.
pub async fn read(pdf: &Path) -> Result<Vec<Bookmark>, Failure> {
    let json = qpdf_json(pdf, &["--json-key=outlines".into()]).await?;
    Ok(parse(json.get("outlines").unwrap_or(&Value::Null)))
}

fn parse(items: &Value) -> Vec<Bookmark> {
    let Some(items) = items.as_array() else { return Vec::new() };
    items
        .iter()
        .map(|item| Bookmark {
            title: item.get("title").and_then(Value::as_str).unwrap_or_default().to_owned(),
            page: item.get("destpageposfrom1").and_then(Value::as_u64).map(|p| p as usize),
            open: item.get("open").and_then(Value::as_bool).unwrap_or(false),
            kids: parse(item.get("kids").unwrap_or(&Value::Null)),
        })
        .collect()
}

/// Gives `merged` (the documents of `outlines` joined in order, the i-th
/// having `pages[i]` pages) one outline: each document's bookmarks, in
/// order, each pointing at its page in the merged file.
pub async fn write(merged: &Path, outlines: &[Vec<Bookmark>], pages: &[usize]) -> Result<(), Failure> {
    if outlines.iter().all(Vec::is_empty) {
        return Ok(());
    }
    let catalog = objects::catalog(merged).await?;
    let mut root = catalog.value;
    let page_refs: Vec<String> = qpdf_json(merged, &["--json-key=pages".into()]).await?["pages"]
        .as_array()
        .map(|pages| pages.iter().filter_map(|p| p["object"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();

    // Every document's bookmarks, with pages moved to where its pages are.
    let mut offset = 0;
    let mut all = Vec::new();
    for (outline, count) in outlines.iter().zip(pages) {
        all.extend(outline.iter().map(|b| shifted(b, offset)));
        offset += count;
    }
    let mut items = Map::new();
    let mut next_id = catalog.max_object_id + 1;
    let outlines_ref = reference(next_id);
    next_id += 1;
    let (first, last, count) = add_level(&all, &outlines_ref, &page_refs, &mut next_id, &mut items);
    items.insert(
        format!("obj:{outlines_ref}"),
        json!({ "value": { "/Type": "/Outlines", "/First": first, "/Last": last, "/Count": count } }),
    );
    root.insert("/Outlines".into(), Value::String(outlines_ref));
    root.insert("/PageMode".into(), Value::String("/UseOutlines".into()));
    let mut changed: Vec<(String, Map<String, Value>)> = items
        .into_iter()
        .map(|(key, object)| {
            let reference = key.trim_start_matches("obj:").to_owned();
            (reference, object["value"].as_object().cloned().unwrap_or_default())
        })
        .collect();
    changed.push((catalog.reference, root));
    objects::update(merged, changed, next_id - 1).await
}

/// Takes the bookmarks out of `pdf` (a PDF input whose bookmarks were not
/// wanted); the items themselves go with the next rewrite, unreferenced.
pub async fn remove(pdf: &Path) -> Result<(), Failure> {
    let catalog = objects::catalog(pdf).await?;
    if !catalog.value.contains_key("/Outlines") {
        return Ok(());
    }
    let mut root = catalog.value;
    root.remove("/Outlines");
    if root.get("/PageMode").and_then(Value::as_str) == Some("/UseOutlines") {
        root.remove("/PageMode");
    }
    objects::update(pdf, vec![(catalog.reference, root)], catalog.max_object_id).await
}

fn shifted(bookmark: &Bookmark, offset: usize) -> Bookmark {
    Bookmark {
        title: bookmark.title.clone(),
        page: bookmark.page.map(|p| p + offset),
        open: bookmark.open,
        kids: bookmark.kids.iter().map(|k| shifted(k, offset)).collect(),
    }
}

fn reference(id: u64) -> String {
    format!("{id} 0 R")
}

/// Adds the outline items for `level` under `parent`; returns the first
/// and last item and the count of visible descendants (PDF's `/Count`).
fn add_level(
    level: &[Bookmark],
    parent: &str,
    pages: &[String],
    next_id: &mut u64,
    objects: &mut Map<String, Value>,
) -> (Value, Value, i64) {
    let refs: Vec<String> = level
        .iter()
        .map(|_| {
            *next_id += 1;
            reference(*next_id - 1)
        })
        .collect();
    let mut visible = 0;
    for (index, (bookmark, own)) in level.iter().zip(&refs).enumerate() {
        let mut item = Map::new();
        item.insert("/Title".into(), Value::String(format!("u:{}", bookmark.title)));
        item.insert("/Parent".into(), Value::String(parent.to_owned()));
        if index > 0 {
            item.insert("/Prev".into(), Value::String(refs[index - 1].clone()));
        }
        if let Some(next) = refs.get(index + 1) {
            item.insert("/Next".into(), Value::String(next.clone()));
        }
        if let Some(page) = bookmark.page.and_then(|p| pages.get(p.wrapping_sub(1))) {
            item.insert("/Dest".into(), json!([page, "/XYZ", null, null, 0]));
        }
        visible += 1;
        if !bookmark.kids.is_empty() {
            let (first, last, count) = add_level(&bookmark.kids, own, pages, next_id, objects);
            item.insert("/First".into(), first);
            item.insert("/Last".into(), last);
            // Open items count their visible descendants; closed ones say
            // how many are hidden, as a negative number.
            item.insert("/Count".into(), json!(if bookmark.open { count } else { -count }));
            if bookmark.open {
                visible += count;
            }
        }
        objects.insert(format!("obj:{own}"), json!({ "value": item }));
    }
    let first = refs.first().cloned().map_or(Value::Null, Value::String);
    let last = refs.last().cloned().map_or(Value::Null, Value::String);
    (first, last, visible)
}

/// Pages of each of `parts`.
pub async fn page_counts(parts: &[PathBuf]) -> Result<Vec<usize>, Failure> {
    let mut counts = Vec::with_capacity(parts.len());
    for part in parts {
        counts.push(page_count(part, &[]).await? as usize);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(title: &str, page: usize, kids: Vec<Bookmark>) -> Bookmark {
        Bookmark { title: title.into(), page: Some(page), open: true, kids }
    }

    #[test]
    fn items_link_to_their_neighbours_parent_and_page() {
        let pages: Vec<String> = (10..14).map(reference).collect();
        let level = vec![mark("A", 1, vec![mark("A.1", 2, vec![])]), mark("B", 3, vec![])];
        let (mut objects, mut next_id) = (Map::new(), 100);
        let (first, last, count) = add_level(&level, "99 0 R", &pages, &mut next_id, &mut objects);
        assert_eq!((first, last, count), (json!("100 0 R"), json!("101 0 R"), 3));
        let a = &objects["obj:100 0 R"]["value"];
        assert_eq!(a["/Title"], "u:A");
        assert_eq!(a["/Next"], "101 0 R");
        assert_eq!(a["/Dest"][0], "10 0 R");
        assert_eq!(a["/First"], "102 0 R");
        assert_eq!(objects["obj:102 0 R"]["value"]["/Parent"], "100 0 R");
        assert_eq!(objects["obj:102 0 R"]["value"]["/Dest"][0], "11 0 R");
        assert_eq!(objects["obj:101 0 R"]["value"]["/Prev"], "100 0 R");
        assert_eq!(shifted(&level[1], 5).page, Some(8));
    }

    #[test]
    fn qpdf_outlines_are_read_with_their_kids() {
        let json = json!([{ "title": "A", "destpageposfrom1": 2, "open": true,
                            "kids": [{ "title": "B", "destpageposfrom1": null, "kids": [] }] }]);
        let parsed = parse(&json);
        assert_eq!(parsed[0].title, "A");
        assert_eq!(parsed[0].page, Some(2));
        assert_eq!(parsed[0].kids[0].page, None);
    }
}
