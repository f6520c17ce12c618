//! Reading and writing a PDF's bookmarks (its outline). qpdf's page
//! selection keeps no outline of the files it joins, and keeps the whole
//! outline in a file it cuts, so docconv reads outlines as qpdf describes
//! them (title, page, view, kids) and writes new ones through qpdf's
//! `--update-from-json`: for a merge (each document's bookmarks at its
//! pages), for given bookmarks, and for each part of a split. The PDF
//! itself is never edited by hand.
//!
//! Rewriting keeps each bookmark's title, page, view (position and zoom)
//! and whether it is open; colours, styles and actions other than going
//! to a page are not kept.

use super::objects;
use super::tools::{page_count, qpdf_json};
use crate::failure::Failure;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// One bookmark: its title, the page it opens (from 1, within its own
/// document), how that page is shown, and the bookmarks under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bookmark {
    pub title: String,
    pub page: Option<usize>,
    /// The destination after its page, e.g. `["/XYZ", 56.7, 785.2, 0]`;
    /// empty: the top of the page.
    pub view: Vec<Value>,
    pub open: bool,
    pub kids: Vec<Bookmark>,
}

/// The outline of `pdf`, as qpdf reads it.
pub async fn read(pdf: &Path) -> Result<Vec<Bookmark>, Failure> {
    let json = qpdf_json(pdf, &["--json-key=outlines".into(), "--json-key=pages".into()]).await?;
    Ok(parse(json.get("outlines").unwrap_or(&Value::Null), &page_objects(&json)))
}

/// Each page's object ("12 0 R"), in order, from qpdf's `pages` JSON.
pub fn page_objects(json: &Value) -> Vec<String> {
    json["pages"]
        .as_array()
        .map(|pages| pages.iter().filter_map(|p| p["object"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn parse(items: &Value, pages: &[String]) -> Vec<Bookmark> {
    let Some(items) = items.as_array() else { return Vec::new() };
    items
        .iter()
        .map(|item| {
            let (target, view) = destination(item.get("dest").unwrap_or(&Value::Null));
            // qpdf finds the page of plain destinations; one given as a
            // dictionary (a named destination's /D) is looked up here.
            let page =
                item.get("destpageposfrom1").and_then(Value::as_u64).map(|p| p as usize).or_else(|| {
                    target.and_then(|target| pages.iter().position(|p| p == target)).map(|index| index + 1)
                });
            Bookmark {
                title: item.get("title").and_then(Value::as_str).unwrap_or_default().to_owned(),
                page,
                view,
                open: item.get("open").and_then(Value::as_bool).unwrap_or(false),
                kids: parse(item.get("kids").unwrap_or(&Value::Null), pages),
            }
        })
        .collect()
}

/// The page object and the view of a destination (`[page /XYZ …]`, or a
/// dictionary holding one under /D), as qpdf's JSON writes it.
pub fn destination(dest: &Value) -> (Option<&str>, Vec<Value>) {
    let array = match dest {
        Value::Array(array) => array,
        Value::Object(dict) => match dict.get("/D") {
            Some(Value::Array(array)) => array,
            _ => return (None, Vec::new()),
        },
        _ => return (None, Vec::new()),
    };
    match array.split_first() {
        Some((Value::String(page), view)) if page.ends_with(" R") => (Some(page), view.to_vec()),
        _ => (None, Vec::new()),
    }
}

/// The bookmarks of documents joined in order (the i-th with `pages[i]`
/// pages), each pointing at its page in the joined file.
pub fn joined(outlines: &[Vec<Bookmark>], pages: &[usize]) -> Vec<Bookmark> {
    let mut offset = 0;
    let mut all = Vec::new();
    for (outline, count) in outlines.iter().zip(pages) {
        all.extend(outline.iter().map(|b| shifted(b, offset)));
        offset += count;
    }
    all
}

/// The bookmarks of `outline` that open one of `pages` (ascending, from
/// 1), pointing at their place among them: what a part of a split made of
/// those pages keeps. A bookmark of another page leaves, and the ones
/// under it that stay take its place; one without a page stays only to
/// hold some that stay.
pub fn within(outline: &[Bookmark], pages: &[u32]) -> Vec<Bookmark> {
    let mut kept = Vec::new();
    for bookmark in outline {
        let kids = within(&bookmark.kids, pages);
        let position = bookmark.page.and_then(|page| pages.iter().position(|&p| p as usize == page));
        match position {
            Some(index) => kept.push(Bookmark { page: Some(index + 1), kids, ..bookmark.clone() }),
            None if bookmark.page.is_none() && !kids.is_empty() => kept.push(Bookmark { kids, ..bookmark.clone() }),
            None => kept.extend(kids),
        }
    }
    kept
}

/// Opens the bookmarks of the first `levels - 1` levels and closes the
/// rest, so `levels` levels show.
pub fn show_levels(outline: &mut [Bookmark], levels: u32) {
    for bookmark in outline {
        bookmark.open = levels > 1;
        show_levels(&mut bookmark.kids, levels.saturating_sub(1));
    }
}

/// Replaces the outline of `pdf` (whose pages the bookmarks' pages count)
/// by `outline`, or takes it out when empty. With `show`, readers are
/// asked to open their bookmarks panel (/PageMode /UseOutlines), as for
/// bookmarks docconv put together.
pub async fn write(pdf: &Path, outline: &[Bookmark], show: bool) -> Result<(), Failure> {
    if outline.is_empty() {
        // The panel a viewer option asked for stays, even with nothing in it.
        return take_out(pdf, false).await;
    }
    let catalog = objects::catalog(pdf).await?;
    let mut root = catalog.value;
    let page_refs = page_objects(&qpdf_json(pdf, &["--json-key=pages".into()]).await?);
    let mut items = Map::new();
    let mut next_id = catalog.max_object_id + 1;
    let outlines_ref = reference(next_id);
    next_id += 1;
    let (first, last, count) = add_level(outline, &outlines_ref, &page_refs, &mut next_id, &mut items);
    items.insert(
        format!("obj:{outlines_ref}"),
        json!({ "value": { "/Type": "/Outlines", "/First": first, "/Last": last, "/Count": count } }),
    );
    root.insert("/Outlines".into(), Value::String(outlines_ref));
    if show {
        root.insert("/PageMode".into(), Value::String("/UseOutlines".into()));
    }
    let mut changed: Vec<(String, Map<String, Value>)> = items
        .into_iter()
        .map(|(key, object)| {
            let reference = key.trim_start_matches("obj:").to_owned();
            (reference, object["value"].as_object().cloned().unwrap_or_default())
        })
        .collect();
    changed.push((catalog.reference, root));
    objects::update(pdf, changed, next_id - 1).await
}

/// Takes the bookmarks out of `pdf` (a PDF input whose bookmarks were not
/// wanted); the items themselves go with the next rewrite, unreferenced.
pub async fn remove(pdf: &Path) -> Result<(), Failure> {
    take_out(pdf, true).await
}

/// Takes the outline out of `pdf`, and with `unshow` the request to show
/// it.
async fn take_out(pdf: &Path, unshow: bool) -> Result<(), Failure> {
    let catalog = objects::catalog(pdf).await?;
    if !catalog.value.contains_key("/Outlines") {
        return Ok(());
    }
    let mut root = catalog.value;
    root.remove("/Outlines");
    if unshow && root.get("/PageMode").and_then(Value::as_str) == Some("/UseOutlines") {
        root.remove("/PageMode");
    }
    objects::update(pdf, vec![(catalog.reference, root)], catalog.max_object_id).await
}

fn shifted(bookmark: &Bookmark, offset: usize) -> Bookmark {
    Bookmark {
        page: bookmark.page.map(|p| p + offset),
        kids: bookmark.kids.iter().map(|k| shifted(k, offset)).collect(),
        ..bookmark.clone()
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
            let mut dest = vec![Value::String(page.clone())];
            match bookmark.view.is_empty() {
                true => dest.extend([json!("/XYZ"), Value::Null, Value::Null, json!(0)]),
                false => dest.extend(bookmark.view.iter().cloned()),
            }
            item.insert("/Dest".into(), Value::Array(dest));
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
        Bookmark { title: title.into(), page: Some(page), view: Vec::new(), open: true, kids }
    }

    fn titles(outline: &[Bookmark]) -> Vec<(String, Option<usize>, usize)> {
        let mut all = Vec::new();
        for b in outline {
            all.push((b.title.clone(), b.page, b.kids.len()));
            all.extend(titles(&b.kids));
        }
        all
    }

    #[test]
    fn items_link_to_their_neighbours_parent_and_page() {
        let pages: Vec<String> = (10..14).map(reference).collect();
        let mut level = vec![mark("A", 1, vec![mark("A.1", 2, vec![])]), mark("B", 3, vec![])];
        level[1].view = vec![json!("/FitH"), json!(700)];
        let (mut objects, mut next_id) = (Map::new(), 100);
        let (first, last, count) = add_level(&level, "99 0 R", &pages, &mut next_id, &mut objects);
        assert_eq!((first, last, count), (json!("100 0 R"), json!("101 0 R"), 3));
        let a = &objects["obj:100 0 R"]["value"];
        assert_eq!(a["/Title"], "u:A");
        assert_eq!(a["/Next"], "101 0 R");
        assert_eq!(a["/Dest"], json!(["10 0 R", "/XYZ", null, null, 0]));
        assert_eq!(a["/First"], "102 0 R");
        assert_eq!(objects["obj:102 0 R"]["value"]["/Parent"], "100 0 R");
        assert_eq!(objects["obj:102 0 R"]["value"]["/Dest"][0], "11 0 R");
        assert_eq!(objects["obj:101 0 R"]["value"]["/Prev"], "100 0 R");
        assert_eq!(objects["obj:101 0 R"]["value"]["/Dest"], json!(["12 0 R", "/FitH", 700]));
        assert_eq!(shifted(&level[1], 5).page, Some(8));
    }

    #[test]
    fn qpdf_outlines_are_read_with_their_kids_pages_and_views() {
        let pages = vec!["3 0 R".to_owned(), "7 0 R".to_owned()];
        let json = json!([{ "title": "A", "destpageposfrom1": 2, "open": true, "dest": ["7 0 R", "/XYZ", 1, 2, 0],
                            "kids": [{ "title": "B", "destpageposfrom1": null, "kids": [] },
                                     { "title": "C", "destpageposfrom1": null, "dest": {"/D": ["3 0 R", "/Fit"]},
                                       "kids": [] }] }]);
        let parsed = parse(&json, &pages);
        assert_eq!(parsed[0].title, "A");
        assert_eq!(parsed[0].page, Some(2));
        assert_eq!(parsed[0].view, [json!("/XYZ"), json!(1), json!(2), json!(0)]);
        assert_eq!(parsed[0].kids[0].page, None);
        assert_eq!((parsed[0].kids[1].page, &parsed[0].kids[1].view[..]), (Some(1), &[json!("/Fit")][..]));
    }

    #[test]
    fn a_part_keeps_the_bookmarks_of_its_pages() {
        let mut heading = mark("Heading", 0, vec![mark("H.1", 4, vec![])]);
        heading.page = None;
        let outline = vec![
            mark("A", 1, vec![mark("A.1", 2, vec![]), mark("A.2", 3, vec![mark("A.2.1", 3, vec![])])]),
            mark("B", 4, vec![]),
            heading,
            mark("Empty", 9, vec![]),
        ];
        let part = within(&outline, &[2, 3]);
        assert_eq!(
            titles(&part),
            [("A.1".into(), Some(1), 0), ("A.2".into(), Some(2), 1), ("A.2.1".into(), Some(2), 0)]
        );
        let part = within(&outline, &[4]);
        assert_eq!(titles(&part), [("B".into(), Some(1), 0), ("Heading".into(), None, 1), ("H.1".into(), Some(1), 0)]);
    }

    #[test]
    fn levels_open_from_the_top() {
        let mut outline = vec![mark("A", 1, vec![mark("A.1", 1, vec![mark("A.1.1", 1, vec![])])])];
        show_levels(&mut outline, 2);
        assert!(outline[0].open && !outline[0].kids[0].open && !outline[0].kids[0].kids[0].open);
        show_levels(&mut outline, 1);
        assert!(!outline[0].open);
        let joined = joined(&[outline.clone(), outline], &[3, 2]);
        assert_eq!(joined[1].kids[0].kids[0].page, Some(4));
    }
}
