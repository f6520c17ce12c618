//! Reading and changing PDF objects through qpdf's JSON (`--json` to read,
//! `--update-from-json` to write): the few structural edits docconv makes
//! (bookmarks of a merge, what an attachment is to the document, the
//! structure trees of a merge) without ever editing a PDF by hand.

use super::tools::{qpdf_in_place, qpdf_json, tool_failed};
use crate::failure::Failure;
use serde_json::{Map, Value, json};
use std::path::Path;

/// The document catalog (`/Root`), and the highest object number in use.
pub struct Catalog {
    /// E.g. "1 0 R".
    pub reference: String,
    pub value: Map<String, Value>,
    pub max_object_id: u64,
}

pub async fn catalog(pdf: &Path) -> Result<Catalog, Failure> {
    let trailer = qpdf_json(pdf, &["--json-key=qpdf".into(), "--json-object=trailer".into()]).await?;
    let header = &trailer["qpdf"][0];
    let max_object_id = header["maxobjectid"].as_u64().ok_or_else(|| tool_failed("qpdf", "no object count"))?;
    let reference = trailer["qpdf"][1]["trailer"]["value"]["/Root"].as_str().unwrap_or_default().to_owned();
    let value = object(pdf, &reference).await?;
    Ok(Catalog { reference, value, max_object_id })
}

/// The dictionary of object `reference` ("12 0 R"), as qpdf's JSON writes it.
pub async fn object(pdf: &Path, reference: &str) -> Result<Map<String, Value>, Failure> {
    let id = reference.split_whitespace().next().unwrap_or_default();
    let json = qpdf_json(pdf, &["--json-key=qpdf".into(), format!("--json-object={id}")]).await?;
    json["qpdf"][1][format!("obj:{reference}")]["value"]
        .as_object()
        .cloned()
        .ok_or_else(|| tool_failed("qpdf", &format!("object {reference} is not a dictionary")))
}

/// Replaces or adds `objects` (reference → dictionary) in `pdf`; new
/// objects are numbered up to `max_object_id`.
pub async fn update(pdf: &Path, objects: Vec<(String, Map<String, Value>)>, max_object_id: u64) -> Result<(), Failure> {
    let objects: Map<String, Value> =
        objects.into_iter().map(|(reference, value)| (format!("obj:{reference}"), json!({ "value": value }))).collect();
    write_entries(pdf, objects, max_object_id, &[]).await
}

/// Hands qpdf `objects` as its JSON entries ("obj:12 0 R" → `{"value": …}`
/// or `{"stream": …}`), with `options` for the file it writes.
pub(super) async fn write_entries(
    pdf: &Path,
    objects: Map<String, Value>,
    max_object_id: u64,
    options: &[String],
) -> Result<(), Failure> {
    let update = json!({ "qpdf": [ { "jsonversion": 2, "maxobjectid": max_object_id }, objects ] });
    let update_file = pdf.with_extension(format!("update-{}.json", docconv::ids::new_id()));
    std::fs::write(&update_file, update.to_string()).map_err(|e| tool_failed("qpdf", &e.to_string()))?;
    let mut args = vec![format!("--update-from-json={}", update_file.display())];
    args.extend(options.iter().cloned());
    let result = qpdf_in_place(pdf, &args).await;
    let _ = std::fs::remove_file(&update_file);
    result
}

/// Every object of a PDF at once, for edits that follow references from
/// object to object (a structure tree); changes are kept until `write`.
pub struct Objects {
    /// qpdf's entries by reference: `{"value": …}` or `{"stream": {"dict": …}}`.
    entries: Map<String, Value>,
    root: String,
    max_object_id: u64,
    changed: std::collections::BTreeMap<String, Map<String, Value>>,
}

impl Objects {
    pub async fn read(pdf: &Path) -> Result<Objects, Failure> {
        let json = qpdf_json(pdf, &["--json-key=qpdf".into()]).await?;
        let max_object_id =
            json["qpdf"][0]["maxobjectid"].as_u64().ok_or_else(|| tool_failed("qpdf", "no object count"))?;
        let Some(Value::Object(entries)) = json["qpdf"].get(1).cloned() else {
            return Err(tool_failed("qpdf", "no objects"));
        };
        let root = entries["trailer"]["value"]["/Root"].as_str().unwrap_or_default().to_owned();
        Ok(Objects { entries, root, max_object_id, changed: Default::default() })
    }

    /// The catalog's reference.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The dictionary of object `reference` (a stream's dictionary for a
    /// stream), as changed so far.
    pub fn dict(&self, reference: &str) -> Option<&Map<String, Value>> {
        if let Some(changed) = self.changed.get(reference) {
            return Some(changed);
        }
        let entry = self.entries.get(&format!("obj:{reference}"))?;
        entry.get("value").or_else(|| entry["stream"].get("dict"))?.as_object()
    }

    /// `value` itself if it is a dictionary, the one it refers to if it is
    /// a reference.
    pub fn resolve<'a>(&'a self, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(dict) => Some(dict),
            Value::String(reference) => self.dict(reference),
            _ => None,
        }
    }

    /// References of every object, in qpdf's order.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().filter_map(|key| key.strip_prefix("obj:"))
    }

    /// Replaces the dictionary of object `reference`.
    pub fn set(&mut self, reference: &str, dict: Map<String, Value>) {
        self.changed.insert(reference.to_owned(), dict);
    }

    /// Adds a new object; returns its reference.
    pub fn add(&mut self, dict: Map<String, Value>) -> String {
        self.max_object_id += 1;
        let reference = format!("{} 0 R", self.max_object_id);
        self.changed.insert(reference.clone(), dict);
        reference
    }

    /// Writes the changes into `pdf` (a stream keeps its data: only its
    /// dictionary is given).
    pub async fn write(self, pdf: &Path) -> Result<(), Failure> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let mut objects = Map::new();
        for (reference, dict) in self.changed {
            let key = format!("obj:{reference}");
            let is_stream = self.entries.get(&key).is_some_and(|entry| entry.get("stream").is_some());
            let entry = if is_stream { json!({ "stream": { "dict": dict } }) } else { json!({ "value": dict }) };
            objects.insert(key, entry);
        }
        write_entries(pdf, objects, self.max_object_id, &[]).await
    }
}

#[cfg(test)]
impl Objects {
    /// Objects given as qpdf's entries, with the catalog at `root`.
    pub fn from_entries(entries: Map<String, Value>, root: &str) -> Objects {
        Objects { entries, root: root.to_owned(), max_object_id: 100, changed: Default::default() }
    }
}
