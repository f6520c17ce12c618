//! Checks of PDF/A and PDF/UA results with tools of their own: qpdf's JSON
//! for the structure tree's ties to the pages, and `page`, a PDF/A and
//! PDF/UA validator (installed by scripts/test).

use crate::support::qpdf_json;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Command;

/// Every object of `pdf` (by "obj:N 0 R"; a stream by its dictionary), the
/// trailer, and the pages in order.
pub struct Objects {
    objects: serde_json::Map<String, Value>,
    pub pages: Vec<String>,
}

impl Objects {
    pub fn of(pdf: &[u8]) -> Objects {
        let json = qpdf_json(pdf, &["--json-key=qpdf", "--json-key=pages"]);
        let objects = json["qpdf"][1].as_object().unwrap().clone();
        let pages =
            json["pages"].as_array().unwrap().iter().map(|p| p["object"].as_str().unwrap().to_owned()).collect();
        Objects { objects, pages }
    }

    pub fn trailer(&self) -> &Value {
        &self.objects["trailer"]["value"]
    }

    /// A dictionary, given directly or by reference.
    pub fn get<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.as_str() {
            Some(reference) if reference.ends_with(" R") => {
                let entry = &self.objects[&format!("obj:{reference}")];
                entry.get("value").unwrap_or(&entry["stream"]["dict"])
            }
            _ => value,
        }
    }

    pub fn catalog(&self) -> &Value {
        self.get(&self.trailer()["/Root"])
    }

    /// The (number, value) entries of a number tree.
    fn numbers(&self, node: &Value, into: &mut Vec<(i64, Value)>) {
        let node = self.get(node);
        for pair in node["/Nums"].as_array().into_iter().flatten().collect::<Vec<_>>().chunks(2) {
            into.push((pair[0].as_i64().unwrap(), pair[1].clone()));
        }
        for kid in node["/Kids"].as_array().into_iter().flatten() {
            self.numbers(kid, into);
        }
    }
}

/// What is wrong with the ties between the pages and the structure tree:
/// every page's /StructParents and every annotation's /StructParent is
/// distinct and has a parent tree entry; a page's entry lists elements of
/// that page (their /Pg, or that of their marked-content reference); an
/// annotation's entry is the element that holds it; the root's elements
/// name it as their parent. Empty when all is well.
pub fn structure_faults(pdf: &[u8]) -> Vec<String> {
    let objects = Objects::of(pdf);
    let mut faults = Vec::new();
    let root_ref = &objects.catalog()["/StructTreeRoot"];
    let root = objects.get(root_ref);
    if root.is_null() {
        return vec!["no structure tree".into()];
    }
    let mut entries = Vec::new();
    objects.numbers(&root["/ParentTree"], &mut entries);
    let tree: std::collections::HashMap<i64, Value> = entries.into_iter().collect();
    let mut used = HashSet::new();
    for (index, page_ref) in objects.pages.iter().enumerate() {
        let page_value = Value::String(page_ref.clone());
        let page = objects.get(&page_value);
        let Some(number) = page["/StructParents"].as_i64() else {
            faults.push(format!("page {} has no /StructParents", index + 1));
            continue;
        };
        if !used.insert(number) {
            faults.push(format!("page {}: /StructParents {number} is used twice", index + 1));
        }
        let elements = tree.get(&number).and_then(|entry| objects.get(entry).as_array().cloned());
        let Some(elements) = elements else {
            faults.push(format!("page {}: no parent tree entry {number}", index + 1));
            continue;
        };
        for element in elements.iter().filter(|e| !e.is_null()) {
            let element = objects.get(element);
            let kids = element["/K"].as_array().cloned().unwrap_or_else(|| vec![element["/K"].clone()]);
            let on_page = element["/Pg"].as_str() == Some(page_ref)
                || kids.iter().any(|kid| objects.get(kid)["/Pg"].as_str() == Some(page_ref));
            if !on_page {
                faults.push(format!("page {}: element {element} is not on the page", index + 1));
            }
        }
        for annotation_ref in objects.get(&page["/Annots"]).as_array().into_iter().flatten() {
            let Some(number) = objects.get(annotation_ref)["/StructParent"].as_i64() else { continue };
            if !used.insert(number) {
                faults.push(format!("page {}: annotation /StructParent {number} is used twice", index + 1));
            }
            let holder = tree.get(&number).map(|e| objects.get(e)).cloned().unwrap_or_default();
            let kids = holder["/K"].as_array().cloned().unwrap_or_else(|| vec![holder["/K"].clone()]);
            if !kids.iter().any(|kid| objects.get(kid)["/Obj"] == *annotation_ref) {
                faults.push(format!("page {}: annotation {annotation_ref} is not held by its element", index + 1));
            }
        }
    }
    for kid in root["/K"].as_array().cloned().unwrap_or_else(|| vec![root["/K"].clone()]) {
        if objects.get(&kid)["/P"] != *root_ref {
            faults.push(format!("top element {kid} does not name the root as its parent"));
        }
    }
    faults
}

/// The rules of `profile` ("1a", "1b", "2b", "3b", "ua1") that `pdf`
/// fails, by the `page` validator.
pub fn failed_rules(pdf: &[u8], profile: &str) -> BTreeSet<String> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/pdf-validator-venv/bin/python");
    assert!(python.exists(), "{} is missing; scripts/test installs the validator", python.display());
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let script = "import sys, page\n\
                  report = page.validate_pdf(sys.argv[1], profile=sys.argv[2])\n\
                  print('\\n'.join(sorted({f.rule_id for f in report.failures})))";
    let output = Command::new(python).args(["-c", script]).arg(file.path()).arg(profile).output().unwrap();
    assert!(output.status.success(), "page: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}
