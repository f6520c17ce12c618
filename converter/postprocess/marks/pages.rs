//! The size of each chosen page's trimmed area as a reader shows it, read
//! through qpdf's JSON: the box qpdf fits an overlay into (TrimBox, else
//! CropBox, else MediaBox; CropBox and MediaBox may be inherited from the
//! page tree), its sides swapped when /Rotate turns the page a quarter.

use super::super::tools::{qpdf_json, tool_failed};
use crate::failure::Failure;
use serde_json::{Map, Value};
use std::path::Path;

/// Width and height in points of pages `chosen` (from 1), in their order.
pub async fn trimmed_sizes(pdf: &Path, chosen: &[u32]) -> Result<Vec<(f32, f32)>, Failure> {
    let json = qpdf_json(pdf, &["--json-key=pages".into(), "--json-key=qpdf".into()]).await?;
    let objects = json["qpdf"][1].as_object().ok_or_else(|| tool_failed("qpdf", "no objects in its JSON"))?;
    let pages = json["pages"].as_array().ok_or_else(|| tool_failed("qpdf", "no pages in its JSON"))?;
    chosen
        .iter()
        .map(|&number| {
            let reference = pages
                .get(number as usize - 1)
                .and_then(|p| p["object"].as_str())
                .ok_or_else(|| tool_failed("qpdf", &format!("no page {number}")))?;
            size_of(objects, reference).ok_or_else(|| tool_failed("qpdf", &format!("page {number} has no usable box")))
        })
        .collect()
}

fn size_of(objects: &Map<String, Value>, page: &str) -> Option<(f32, f32)> {
    let own = dictionary(objects, page)?;
    let box_of = |name: &str| inherited(objects, own, name).and_then(|v| rectangle(objects, v));
    let trimmed = own.get("/TrimBox").and_then(|v| rectangle(objects, v));
    let [x0, y0, x1, y1] = trimmed.or_else(|| box_of("/CropBox")).or_else(|| box_of("/MediaBox"))?;
    let (width, height) = ((x1 - x0).abs(), (y1 - y0).abs());
    let rotate = inherited(objects, own, "/Rotate").map(|v| resolve(objects, v)).and_then(Value::as_i64).unwrap_or(0);
    let quarter = rotate.rem_euclid(180) == 90;
    (width > 0.0 && height > 0.0).then_some(if quarter { (height, width) } else { (width, height) })
}

/// The dictionary of object `reference` ("3 0 R").
fn dictionary<'a>(objects: &'a Map<String, Value>, reference: &str) -> Option<&'a Map<String, Value>> {
    objects.get(&format!("obj:{reference}"))?["value"].as_object()
}

/// `name` of a page, or of the nearest page tree node above it that has it.
fn inherited<'a>(objects: &'a Map<String, Value>, page: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut node = page;
    // A damaged tree may loop: a tree deeper than this is not followed.
    for _ in 0..64 {
        if let Some(value) = node.get(name) {
            return Some(value);
        }
        node = dictionary(objects, node.get("/Parent")?.as_str()?)?;
    }
    None
}

/// A direct value, or the value an indirect reference ("5 0 R") names.
fn resolve<'a>(objects: &'a Map<String, Value>, value: &'a Value) -> &'a Value {
    match value.as_str().filter(|s| s.ends_with(" R")) {
        Some(reference) => objects.get(&format!("obj:{reference}")).map_or(value, |o| &o["value"]),
        None => value,
    }
}

fn rectangle(objects: &Map<String, Value>, value: &Value) -> Option<[f32; 4]> {
    let numbers: Vec<f32> = resolve(objects, value)
        .as_array()?
        .iter()
        .map(|n| resolve(objects, n).as_f64().map(|n| n as f32))
        .collect::<Option<_>>()?;
    <[f32; 4]>::try_from(numbers).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn boxes_are_inherited_and_rotation_swaps_sides() {
        let objects = json!({
            "obj:2 0 R": {"value": {"/Type": "/Pages", "/MediaBox": [0, 0, 600, 800], "/Rotate": 90}},
            "obj:3 0 R": {"value": {"/Type": "/Page", "/Parent": "2 0 R"}},
            "obj:4 0 R": {"value": {"/Type": "/Page", "/Parent": "2 0 R", "/Rotate": 180, "/CropBox": "5 0 R"}},
            "obj:5 0 R": {"value": [10, 20, 110, 220.5]},
            "obj:6 0 R": {"value": {"/Type": "/Page", "/Parent": "2 0 R", "/Rotate": 0, "/TrimBox": [0, 0, 50, 60], "/CropBox": [0, 0, 1, 1]}},
        });
        let objects = objects.as_object().unwrap();
        assert_eq!(size_of(objects, "3 0 R"), Some((800.0, 600.0)));
        assert_eq!(size_of(objects, "4 0 R"), Some((100.0, 200.5)));
        assert_eq!(size_of(objects, "6 0 R"), Some((50.0, 60.0)));
        assert_eq!(size_of(objects, "9 0 R"), None);
    }
}
