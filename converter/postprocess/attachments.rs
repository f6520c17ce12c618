//! Files embedded in the result (PDF attachments): added by qpdf, then
//! described to the document as PDF/A-3 (and PDF 2.0) want it: each file
//! specification says how the file relates to the document
//! (/AFRelationship) and the catalog lists them all as its associated
//! files (/AF). qpdf adds neither, so they are set through its JSON.

use super::objects;
use super::tools::{qpdf_in_place, qpdf_json, tool_failed};
use crate::failure::Failure;
use docconv::proto::v1::AttachmentRelationship;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A file to embed, as the job received it.
pub struct Attached {
    pub path: PathBuf,
    pub name: String,
    pub content_type: String,
    pub description: String,
    pub relationship: AttachmentRelationship,
}

pub async fn attach(files: &[Attached], pdf: &Path) -> Result<(), Failure> {
    let mut options = Vec::new();
    for file in files {
        options.extend([
            "--add-attachment".to_owned(),
            file.path.to_string_lossy().into_owned(),
            // The key in the document's list of files; names are unique
            // within a job (the service refuses twins).
            format!("--key={}", file.name),
            format!("--filename={}", file.name),
            format!("--mimetype={}", file.content_type),
            // A PDF input may hold a file of that name already: the one
            // sent with the job wins.
            "--replace".into(),
        ]);
        if !file.description.is_empty() {
            options.push(format!("--description={}", file.description));
        }
        options.push("--".into());
    }
    qpdf_in_place(pdf, &options).await?;
    describe(files, pdf).await
}

/// Sets each file specification's /AFRelationship and the catalog's /AF.
async fn describe(files: &[Attached], pdf: &Path) -> Result<(), Failure> {
    let listed = qpdf_json(pdf, &["--json-key=attachments".into()]).await?;
    let mut changed = Vec::with_capacity(files.len() + 1);
    let mut associated = Vec::with_capacity(files.len());
    for file in files {
        let filespec = listed["attachments"][&file.name]["filespec"]
            .as_str()
            .ok_or_else(|| tool_failed("qpdf", &format!("attachment {:?} was not added", file.name)))?
            .to_owned();
        let mut value = objects::object(pdf, &filespec).await?;
        value.insert("/AFRelationship".into(), Value::String(pdf_name(file.relationship).into()));
        associated.push(Value::String(filespec.clone()));
        changed.push((filespec, value));
    }
    let catalog = objects::catalog(pdf).await?;
    let mut root = catalog.value;
    // A PDF input's own associated files stay listed.
    if let Some(Value::Array(own)) = root.get("/AF") {
        let mut all = own.clone();
        all.retain(|reference| !associated.contains(reference));
        associated.splice(0..0, all);
    }
    root.insert("/AF".into(), Value::Array(associated));
    changed.push((catalog.reference, root));
    objects::update(pdf, changed, catalog.max_object_id).await
}

fn pdf_name(relationship: AttachmentRelationship) -> &'static str {
    match relationship {
        AttachmentRelationship::Unspecified => "/Unspecified",
        AttachmentRelationship::Source => "/Source",
        AttachmentRelationship::Data => "/Data",
        AttachmentRelationship::Alternative => "/Alternative",
        AttachmentRelationship::Supplement => "/Supplement",
    }
}
