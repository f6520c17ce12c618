//! Reading and changing PDF objects through qpdf's JSON (`--json` to read,
//! `--update-from-json` to write): the few structural edits docconv makes
//! (bookmarks of a merge, what an attachment is to the document) without
//! ever editing a PDF by hand.

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
    let update = json!({ "qpdf": [ { "jsonversion": 2, "maxobjectid": max_object_id }, objects ] });
    let update_file = pdf.with_extension(format!("update-{}.json", docconv::ids::new_id()));
    std::fs::write(&update_file, update.to_string()).map_err(|e| tool_failed("qpdf", &e.to_string()))?;
    let result = qpdf_in_place(pdf, &[format!("--update-from-json={}", update_file.display())]).await;
    let _ = std::fs::remove_file(&update_file);
    result
}
