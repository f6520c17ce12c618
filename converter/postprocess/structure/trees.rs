//! The pieces of structure trees that a merge reads and combines, as
//! qpdf's JSON writes them: the page tree's order, number and name trees
//! (the parent tree, the ID tree), kids, role maps, and the numbers that
//! tie page content to a tree (`/StructParents` of pages and forms,
//! `/StructParent` of annotations).

use crate::postprocess::objects::Objects;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The pages of the document, in order.
pub fn pages(objects: &Objects) -> Vec<String> {
    fn walk(objects: &Objects, node: &str, seen: &mut HashSet<String>, into: &mut Vec<String>) {
        if !seen.insert(node.to_owned()) {
            return;
        }
        let Some(dict) = objects.dict(node) else { return };
        match dict.get("/Kids") {
            Some(Value::Array(kids)) => {
                for kid in kids.iter().filter_map(Value::as_str) {
                    walk(objects, kid, seen, into);
                }
            }
            _ => into.push(node.to_owned()),
        }
    }
    let mut found = Vec::new();
    if let Some(Value::String(pages)) = objects.dict(objects.root()).and_then(|catalog| catalog.get("/Pages")) {
        walk(objects, pages, &mut HashSet::new(), &mut found);
    }
    found
}

/// The (key, value) pairs of the number tree (`leaves` "/Nums") or name
/// tree ("/Names") at `node`, in the order the tree holds them.
pub fn tree_entries(objects: &Objects, node: &Value, leaves: &str) -> Vec<(Value, Value)> {
    fn walk(objects: &Objects, node: &Value, leaves: &str, seen: &mut HashSet<String>, into: &mut Vec<(Value, Value)>) {
        if let Value::String(reference) = node
            && !seen.insert(reference.clone())
        {
            return;
        }
        let Some(dict) = objects.resolve(node) else { return };
        if let Some(Value::Array(pairs)) = dict.get(leaves) {
            into.extend(pairs.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())));
        }
        if let Some(Value::Array(kids)) = dict.get("/Kids") {
            for kid in kids {
                walk(objects, kid, leaves, seen, into);
            }
        }
    }
    let mut found = Vec::new();
    walk(objects, node, leaves, &mut HashSet::new(), &mut found);
    found
}

/// The entries of the number tree at `node`, keys moved by `offset`.
pub fn numbers(objects: &Objects, node: Option<&Value>, offset: i64) -> Vec<(i64, Value)> {
    let Some(node) = node else { return Vec::new() };
    tree_entries(objects, node, "/Nums")
        .into_iter()
        .filter_map(|(key, value)| Some((key.as_i64()? + offset, value)))
        .collect()
}

/// A `/K` entry as a list: absent, one kid, or an array of them.
pub fn kids(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
    }
}

const PARENT_KEYS: [&str; 2] = ["/StructParents", "/StructParent"];

/// Calls `visit` with every `/StructParents` and `/StructParent` number in
/// `value`, direct objects inside it included.
pub fn each_parent_number(value: &mut Value, visit: &mut dyn FnMut(&mut i64)) {
    match value {
        Value::Object(dict) => {
            for (key, item) in dict.iter_mut() {
                match item.as_i64() {
                    Some(mut number) if PARENT_KEYS.contains(&key.as_str()) => {
                        visit(&mut number);
                        *item = Value::from(number);
                    }
                    _ => each_parent_number(item, visit),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| each_parent_number(item, visit)),
        _ => {}
    }
}

/// Adds `part`'s role map to `merged`. A name `merged` maps to another
/// type is renamed for the part, so each part's elements keep their
/// meaning: the renames are returned (old name → new). Names mapped to
/// themselves are left out: a standard type is never to be remapped, and
/// PDF/A-1a validators take such an entry for a cycle.
pub fn merge_role_map(merged: &mut Map<String, Value>, part: Option<&Map<String, Value>>) -> HashMap<String, String> {
    let mut renames = HashMap::new();
    for (name, target) in part.into_iter().flatten() {
        // A part's own standard type, which `merged` maps elsewhere, is
        // renamed like any other.
        if target.as_str() == Some(name) && !merged.contains_key(name) {
            continue;
        }
        let mut own = name.clone();
        let mut number = 2;
        while merged.get(&own).is_some_and(|mapped| mapped != target) || (own != *name && part_has(part, &own)) {
            own = format!("{name}{number}");
            number += 1;
        }
        if own != *name {
            renames.insert(name.clone(), own.clone());
        }
        merged.insert(own, target.clone());
    }
    renames
}

fn part_has(part: Option<&Map<String, Value>>, name: &str) -> bool {
    part.is_some_and(|map| map.contains_key(name))
}

/// Adds `part`'s entries to `merged` (a class map, or an ID tree's
/// entries); a key both hold with different values cannot be merged.
pub fn merge_unique(
    merged: &mut Map<String, Value>,
    part: impl IntoIterator<Item = (String, Value)>,
) -> Result<(), String> {
    for (key, value) in part {
        match merged.get(&key) {
            Some(existing) if *existing != value => return Err(format!("two documents define {key} differently")),
            _ => {
                merged.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Renames the structure types of the elements under `kid` (`/S`) as
/// `renames` says; elements given by reference are changed in `objects`,
/// direct ones in place. Returns whether `kid` itself changed.
pub fn rename_types(
    objects: &mut Objects,
    kid: &mut Value,
    renames: &HashMap<String, String>,
    seen: &mut HashSet<String>,
) -> bool {
    match kid {
        Value::String(reference) => {
            if !seen.insert(reference.clone()) {
                return false;
            }
            let Some(mut dict) = objects.dict(reference).cloned() else { return false };
            if rename_in(objects, &mut dict, renames, seen) {
                objects.set(reference, dict);
            }
            false
        }
        Value::Object(dict) => rename_in(objects, dict, renames, seen),
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= rename_types(objects, item, renames, seen);
            }
            changed
        }
        _ => false,
    }
}

fn rename_in(
    objects: &mut Objects,
    dict: &mut Map<String, Value>,
    renames: &HashMap<String, String>,
    seen: &mut HashSet<String>,
) -> bool {
    let mut changed = false;
    if let Some(Value::String(kind)) = dict.get_mut("/S")
        && let Some(renamed) = renames.get(kind.as_str())
    {
        *kind = renamed.clone();
        changed = true;
    }
    if let Some(kids) = dict.get_mut("/K") {
        changed |= rename_types(objects, kids, renames, seen);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(entries: Value) -> Objects {
        Objects::from_entries(entries.as_object().unwrap().clone(), "1 0 R")
    }

    #[test]
    fn pages_are_listed_in_tree_order() {
        let objects = objects(json!({
            "obj:1 0 R": { "value": { "/Type": "/Catalog", "/Pages": "2 0 R" } },
            "obj:2 0 R": { "value": { "/Type": "/Pages", "/Kids": ["3 0 R", "5 0 R"] } },
            "obj:3 0 R": { "value": { "/Type": "/Pages", "/Kids": ["6 0 R", "4 0 R"] } },
            "obj:4 0 R": { "value": { "/Type": "/Page" } },
            "obj:5 0 R": { "value": { "/Type": "/Page" } },
            "obj:6 0 R": { "value": { "/Type": "/Page" } },
        }));
        assert_eq!(pages(&objects), ["6 0 R", "4 0 R", "5 0 R"]);
    }

    #[test]
    fn number_trees_are_read_through_their_kids() {
        let objects = objects(json!({
            "obj:1 0 R": { "value": { "/Type": "/Catalog" } },
            "obj:7 0 R": { "value": { "/Kids": ["8 0 R", { "/Nums": [4, "12 0 R"] }] } },
            "obj:8 0 R": { "value": { "/Limits": [0, 1], "/Nums": [0, ["10 0 R"], 1, ["11 0 R"]] } },
        }));
        let found = numbers(&objects, Some(&json!("7 0 R")), 10);
        assert_eq!(found, [(10, json!(["10 0 R"])), (11, json!(["11 0 R"])), (14, json!("12 0 R"))]);
        assert!(numbers(&objects, None, 0).is_empty());
    }

    #[test]
    fn parent_numbers_are_found_in_direct_objects_too() {
        let mut page = json!({ "/StructParents": 2, "/Annots": [{ "/StructParent": 5 }, "9 0 R"], "/Rotate": 90 });
        each_parent_number(&mut page, &mut |n| *n += 100);
        assert_eq!(
            page,
            json!({ "/StructParents": 102, "/Annots": [{ "/StructParent": 105 }, "9 0 R"], "/Rotate": 90 })
        );
    }

    #[test]
    fn role_maps_merge_renaming_what_the_other_maps_elsewhere() {
        let mut merged = Map::new();
        let first = json!({ "/Standard": "/P", "/H1": "/H1", "/Quote": "/P" });
        assert!(merge_role_map(&mut merged, first.as_object()).is_empty());
        assert_eq!(Value::Object(merged.clone()), json!({ "/Standard": "/P", "/Quote": "/P" }));
        let second = json!({ "/Standard": "/P", "/Quote": "/BlockQuote", "/Quote2": "/Span" });
        let renames = merge_role_map(&mut merged, second.as_object());
        assert_eq!(renames, HashMap::from([("/Quote".to_owned(), "/Quote3".to_owned())]));
        assert_eq!(merged["/Quote3"], "/BlockQuote");
        assert_eq!(merged["/Quote2"], "/Span");
        assert_eq!(merged["/Quote"], "/P");
    }

    #[test]
    fn types_are_renamed_down_the_tree() {
        let mut objects = objects(json!({
            "obj:1 0 R": { "value": { "/Type": "/Catalog" } },
            "obj:5 0 R": { "value": { "/S": "/Document", "/K": ["6 0 R", { "/S": "/Quote", "/K": [0] }] } },
            "obj:6 0 R": { "value": { "/S": "/Quote", "/K": [{ "/Type": "/MCR", "/MCID": 1 }] } },
        }));
        let renames = HashMap::from([("/Quote".to_owned(), "/Quote2".to_owned())]);
        let mut kid = json!("5 0 R");
        assert!(!rename_types(&mut objects, &mut kid, &renames, &mut HashSet::new()));
        assert_eq!(objects.dict("6 0 R").unwrap()["/S"], "/Quote2");
        assert_eq!(objects.dict("5 0 R").unwrap()["/K"][1]["/S"], "/Quote2");
        assert_eq!(objects.dict("5 0 R").unwrap()["/S"], "/Document");
    }

    #[test]
    fn differing_definitions_cannot_merge() {
        let mut merged = Map::new();
        assert!(merge_unique(&mut merged, [("/A".to_owned(), json!(1))]).is_ok());
        assert!(merge_unique(&mut merged, [("/A".to_owned(), json!(1)), ("/B".to_owned(), json!(2))]).is_ok());
        assert!(merge_unique(&mut merged, [("/B".to_owned(), json!(3))]).is_err());
    }
}
