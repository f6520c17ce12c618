//! One structure tree for a merge of tagged documents (PDF/UA, and the
//! PDF/A that LibreOffice writes tagged), so the merged file's claim to be
//! tagged stays true for every page.
//!
//! qpdf's page selection keeps the primary input's catalog, and with it the
//! first document's structure tree; the pages of the other documents come
//! with their `/StructParents` numbers but without their trees. So, before
//! merging, `prepare` moves each further document's numbers past those of
//! the documents before it and makes its tree reachable from its last page
//! through a private key: qpdf copies the tree along with that page, every
//! page reference in it pointing at the copied pages (the last page,
//! because qpdf maps references only to pages it has copied already).
//! After merging, `join` makes the trees one: one parent tree holding every
//! document's entries; under the root one `Document` element, with a `Part`
//! for each document (its own `Document` element, retyped, or a new one
//! holding its top elements); one role map, class map and ID tree; and the
//! private keys gone.

mod trees;

use super::objects::Objects;
use super::tools::{RemovedOnDrop, tool_failed};
use crate::failure::Failure;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The key on a document's last page that leads qpdf to its tree.
const TREE_KEY: &str = "/DocconvStructTreeRoot";

/// What `join` needs to know of each document of a merge.
pub struct Part {
    /// Added to the document's parent tree numbers.
    offset: i64,
    /// The numbers it uses end before this one.
    end: i64,
    /// Its catalog's language, if any.
    lang: Option<Value>,
    pages: usize,
}

/// The documents to merge, as `prepare` leaves them.
pub struct Prepared {
    /// qpdf's inputs: copies of the further documents, made ready, and the
    /// first as it is (the documents themselves stay untouched).
    pub inputs: Vec<PathBuf>,
    /// For `join`; `None` when no document is tagged.
    pub trees: Option<Vec<Part>>,
    _copies: RemovedOnDrop,
}

/// Prepares `parts` for merging (see above). A merge of tagged and
/// untagged documents cannot make one tree, and fails.
pub async fn prepare(parts: &[PathBuf]) -> Result<Prepared, Failure> {
    let mut prepared = Vec::with_capacity(parts.len());
    let mut inputs = parts.to_vec();
    let mut copies = RemovedOnDrop(Vec::new());
    let mut tagged = Vec::with_capacity(parts.len());
    let mut offset = 0;
    for (index, path) in parts.iter().enumerate() {
        let mut objects = Objects::read(path).await?;
        let catalog = objects.dict(objects.root()).cloned().unwrap_or_default();
        let tree = catalog.get("/StructTreeRoot").cloned();
        tagged.push(tree.is_some());
        let end = offset + next_number(&objects, tree.as_ref())?;
        let pages = trees::pages(&objects);
        if let (Some(tree), Some(last), true) = (tree, pages.last(), index > 0) {
            renumber(&mut objects, offset);
            let mut page = objects.dict(last).cloned().unwrap_or_default();
            page.insert(TREE_KEY.into(), tree);
            objects.set(last, page);
            let copy = path.with_extension(format!("structure-{}.pdf", docconv::ids::new_id()));
            copies.0.push(copy.clone());
            std::fs::copy(path, &copy).map_err(|e| tool_failed("merge", &e.to_string()))?;
            objects.write(&copy).await?;
            inputs[index] = copy;
        }
        prepared.push(Part { offset, end, lang: catalog.get("/Lang").cloned(), pages: pages.len() });
        offset = end;
    }
    let trees = match (tagged.iter().all(|t| *t), tagged.iter().any(|t| *t)) {
        (true, _) => Some(prepared),
        (false, false) => None,
        (false, true) => {
            return Err(tool_failed("merge", "some documents are tagged and some are not: no one structure tree"));
        }
    };
    Ok(Prepared { inputs, trees, _copies: copies })
}

/// The first parent tree number the document does not use.
fn next_number(objects: &Objects, tree: Option<&Value>) -> Result<i64, Failure> {
    let root = tree.and_then(|t| objects.resolve(t)).cloned().unwrap_or_default();
    let mut next = root.get("/ParentTreeNextKey").and_then(Value::as_i64).unwrap_or(0);
    for (key, _) in trees::numbers(objects, root.get("/ParentTree"), 0) {
        next = next.max(key + 1);
    }
    let references: Vec<String> = objects.references().map(str::to_owned).collect();
    for reference in references {
        let mut value = Value::Object(objects.dict(&reference).cloned().unwrap_or_default());
        trees::each_parent_number(&mut value, &mut |number| next = next.max(*number + 1));
    }
    if next < 0 {
        return Err(tool_failed("merge", "negative structure parent numbers"));
    }
    Ok(next)
}

/// Adds `offset` to every `/StructParents` and `/StructParent` of the
/// document (its parent tree is renumbered by `join`).
fn renumber(objects: &mut Objects, offset: i64) {
    let references: Vec<String> = objects.references().map(str::to_owned).collect();
    for reference in references {
        let Some(dict) = objects.dict(&reference) else { continue };
        let mut value = Value::Object(dict.clone());
        let mut changed = false;
        trees::each_parent_number(&mut value, &mut |number| {
            *number += offset;
            changed = true;
        });
        if let (true, Value::Object(dict)) = (changed, value) {
            objects.set(&reference, dict);
        }
    }
}

/// Makes the trees of the merged file one (see above).
pub async fn join(merged: &Path, parts: &[Part]) -> Result<(), Failure> {
    let mut objects = Objects::read(merged).await?;
    let catalog_ref = objects.root().to_owned();
    let mut catalog = objects.dict(&catalog_ref).cloned().unwrap_or_default();
    let first_tree = catalog.get("/StructTreeRoot").cloned().unwrap_or(Value::Null);
    let first = objects.resolve(&first_tree).cloned().ok_or_else(|| lost(1))?;
    let pages = trees::pages(&objects);
    let mut roots = vec![first.clone()];
    let mut last_page = parts[0].pages;
    for (index, part) in parts.iter().enumerate().skip(1) {
        last_page += part.pages;
        let page_ref = pages.get(last_page.wrapping_sub(1)).ok_or_else(|| lost(index + 1))?;
        let mut page = objects.dict(page_ref).cloned().unwrap_or_default();
        let tree = page.remove(TREE_KEY).ok_or_else(|| lost(index + 1))?;
        objects.set(page_ref, page);
        roots.push(objects.resolve(&tree).cloned().ok_or_else(|| lost(index + 1))?);
    }

    let mut numbers: Vec<(i64, Value)> = Vec::new();
    for (root, part) in roots.iter().zip(parts) {
        numbers.extend(trees::numbers(&objects, root.get("/ParentTree"), part.offset));
    }
    numbers.sort_by_key(|(key, _)| *key);
    if numbers.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(tool_failed("merge", "two documents use the same structure parent number"));
    }
    let next_key = numbers.last().map_or(0, |(key, _)| key + 1).max(parts.last().map_or(0, |p| p.end));
    let parent_tree = objects.add(
        json!({ "/Nums": numbers.into_iter().flat_map(|(k, v)| [json!(k), v]).collect::<Vec<_>>() })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );

    let root_ref = objects.add(Map::new());
    let document_ref = objects.add(Map::new());
    let mut role_map = Map::new();
    let mut class_map = Map::new();
    let mut ids = Map::new();
    let mut top = Vec::new();
    let first_lang = parts[0].lang.clone();
    for (index, (root, part)) in roots.iter().zip(parts).enumerate() {
        let renames = trees::merge_role_map(&mut role_map, root.get("/RoleMap").and_then(Value::as_object));
        let mut kids = trees::kids(root.get("/K"));
        if !renames.is_empty() {
            // Kids given by reference change in `objects`, direct ones here.
            let mut renamed = Value::Array(kids);
            trees::rename_types(&mut objects, &mut renamed, &renames, &mut HashSet::new());
            kids = trees::kids(Some(&renamed));
        }
        let class_entries = root.get("/ClassMap").and_then(|c| objects.resolve(c)).cloned().unwrap_or_default();
        let id_entries: Vec<(String, Value)> = root
            .get("/IDTree")
            .map(|tree| trees::tree_entries(&objects, tree, "/Names"))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), value)))
            .collect();
        let merged =
            trees::merge_unique(&mut class_map, class_entries).and_then(|()| trees::merge_unique(&mut ids, id_entries));
        merged.map_err(|reason| tool_failed("merge", &format!("document {}: {reason}", index + 1)))?;
        if kids.is_empty() {
            continue;
        }
        // A document's text in another language than the merged file's
        // says so on its own elements.
        let lang = part.lang.clone().filter(|lang| index > 0 && Some(lang) != first_lang.as_ref());
        top.push(adopt(&mut objects, kids, &document_ref, lang, &role_map));
    }
    let document = json!({ "/Type": "/StructElem", "/S": "/Document", "/P": root_ref, "/K": top });
    objects.set(&document_ref, document.as_object().cloned().unwrap_or_default());

    let mut root = first;
    root.insert("/Type".into(), json!("/StructTreeRoot"));
    root.insert("/K".into(), json!([document_ref]));
    root.insert("/ParentTree".into(), json!(parent_tree));
    root.insert("/ParentTreeNextKey".into(), json!(next_key));
    for (key, map) in [("/RoleMap", role_map), ("/ClassMap", class_map)] {
        match map.is_empty() {
            true => root.remove(key),
            false => root.insert(key.into(), Value::Object(map)),
        };
    }
    match ids.is_empty() {
        true => root.remove("/IDTree"),
        false => {
            // A name tree's keys are in order (qpdf writes text strings as
            // "u:…", in which order is that of the text).
            let mut ids: Vec<(String, Value)> = ids.into_iter().collect();
            ids.sort_by(|a, b| a.0.cmp(&b.0));
            let names: Vec<Value> = ids.into_iter().flat_map(|(k, v)| [Value::String(k), v]).collect();
            root.insert("/IDTree".into(), json!({ "/Names": names }))
        }
    };
    objects.set(&root_ref, root);
    catalog.insert("/StructTreeRoot".into(), json!(root_ref));
    objects.set(&catalog_ref, catalog);
    objects.write(merged).await
}

/// One `Part` element for a document's top elements `kids`, under the
/// merged file's `Document` element `parent`: the document's own
/// `Document` element, retyped, or a new `Part` holding them all.
fn adopt(
    objects: &mut Objects,
    kids: Vec<Value>,
    parent: &str,
    lang: Option<Value>,
    role_map: &Map<String, Value>,
) -> Value {
    if let [only] = kids.as_slice() {
        let kind = objects.resolve(only).and_then(|e| e.get("/S")).and_then(Value::as_str).unwrap_or_default();
        if kind == "/Document" || role_map.get(kind).and_then(Value::as_str) == Some("/Document") {
            return set_parent(objects, only.clone(), parent, lang, Some("/Part"));
        }
    }
    let element = objects.add(Map::new());
    let kids: Vec<Value> = kids.into_iter().map(|kid| set_parent(objects, kid, &element, None, None)).collect();
    let mut dict = Map::new();
    dict.insert("/Type".into(), json!("/StructElem"));
    dict.insert("/S".into(), json!("/Part"));
    dict.insert("/P".into(), json!(parent));
    dict.insert("/K".into(), Value::Array(kids));
    if let Some(lang) = lang {
        dict.insert("/Lang".into(), lang);
    }
    objects.set(&element, dict);
    Value::String(element)
}

/// `kid` with its parent set to `parent`, its language to `lang` unless it
/// has one, and its type to `kind` if given; changed in `objects` when it
/// is a reference.
fn set_parent(objects: &mut Objects, kid: Value, parent: &str, lang: Option<Value>, kind: Option<&str>) -> Value {
    let update = |dict: &mut Map<String, Value>| {
        dict.insert("/P".into(), json!(parent));
        if let Some(lang) = &lang {
            dict.entry("/Lang").or_insert_with(|| lang.clone());
        }
        if let Some(kind) = kind {
            dict.insert("/S".into(), json!(kind));
        }
    };
    match kid {
        Value::String(reference) => {
            if let Some(mut dict) = objects.dict(&reference).cloned() {
                update(&mut dict);
                objects.set(&reference, dict);
            }
            Value::String(reference)
        }
        Value::Object(mut dict) => {
            update(&mut dict);
            Value::Object(dict)
        }
        other => other,
    }
}

fn lost(document: usize) -> Failure {
    tool_failed("merge", &format!("the structure tree of document {document} was not carried into the merged file"))
}
