//! Preparing a job for its conversion: its files checked out into this
//! node's folder for it, each document checked, and what the worker will
//! be asked built; PDF inputs made ready without it (see `pdf_input`), and
//! attachments and the files of marks set aside for the end.

use super::{Claim, Failure};
use crate::csv;
use crate::files;
use crate::formats::{self, Kind};
use crate::options;
use crate::pdf_input;
use crate::postprocess::{Attached, MarkImage};
use docconv::proto::v1::{AttachmentRelationship, PdfMarkLayer};
use docconv_worker::proto::Convert;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One document of a job.
pub struct Document {
    pub name: String,
    /// Where its PDF (or, for a single document, the result) is written.
    pub output: PathBuf,
    /// What the worker is asked; `None` for a PDF input, whose PDF is
    /// there already.
    pub convert: Option<Convert>,
}

/// A job, ready for the worker.
pub struct Prepared {
    pub folder: PathBuf,
    pub documents: Vec<Document>,
    pub attached: Vec<Attached>,
    /// The images or PDFs of marks.
    pub marks: Vec<MarkImage>,
}

/// The names of the job's files its conversion needs, the first document
/// first and the others in the order they were given.
pub fn input_names(claim: &Claim) -> Vec<String> {
    let mut names = vec![files::input(&claim.input_extension)];
    for (index, more) in claim.more_inputs.iter().enumerate() {
        names.push(match (&more.attachment, PdfMarkLayer::try_from(more.mark)) {
            (Some(_), _) => files::attachment(index + 1),
            (None, Ok(PdfMarkLayer::Background | PdfMarkLayer::Stamp)) => files::mark(index + 1),
            (None, _) => files::more_input(index + 1, &more.extension),
        });
    }
    names
}

/// Prepares each document of the job, whose files (`input_names`) are
/// checked out into `folder`: a single one writes the result, each of a
/// merge a part of its own.
pub async fn prepare_all(folder: PathBuf, names: &[String], claim: &Claim) -> Result<Prepared, Failure> {
    let mut attached = Vec::new();
    let mut marks = Vec::new();
    let mut inputs = vec![(folder.join(&names[0]), claim.input_extension.as_str(), claim.file_name.as_str())];
    for (more, name) in claim.more_inputs.iter().zip(&names[1..]) {
        if let Ok(layer @ (PdfMarkLayer::Background | PdfMarkLayer::Stamp)) = PdfMarkLayer::try_from(more.mark) {
            marks.push(MarkImage { layer, path: folder.join(name) });
            continue;
        }
        match &more.attachment {
            Some(attachment) => attached.push(Attached {
                path: folder.join(name),
                name: more.file_name.clone(),
                content_type: more.content_type.clone(),
                description: attachment.description.clone(),
                relationship: AttachmentRelationship::try_from(attachment.relationship).unwrap_or_default(),
            }),
            None => inputs.push((folder.join(name), more.extension.as_str(), more.file_name.as_str())),
        }
    }
    if inputs.len() == 1 {
        let (input, extension, name) = inputs.pop().expect("one");
        let output = folder.join(files::output(&claim.target_format));
        let document = prepare(claim, input, extension, name, output).await?;
        return Ok(Prepared { folder, documents: vec![document], attached, marks });
    }
    let mut documents = Vec::with_capacity(inputs.len());
    for (index, (input, extension, name)) in inputs.into_iter().enumerate() {
        let part = folder.join(files::part(index + 1));
        let document = prepare(claim, input, extension, name, part).await.map_err(|failure| Failure::InDocument {
            position: index + 1,
            name: name.to_owned(),
            failure: Box::new(failure),
        })?;
        documents.push(document);
    }
    Ok(Prepared { folder, documents, attached, marks })
}

/// Checks one input and builds its request. CSV is turned into a
/// spreadsheet document first (see `csv`); a PDF is made ready at once.
async fn prepare(
    claim: &Claim,
    input: PathBuf,
    extension: &str,
    name: &str,
    output: PathBuf,
) -> Result<Document, Failure> {
    let sheet_name = formats::stem(name).to_owned();
    let unreadable = Failure::NotADocument { extension: extension.to_owned() };
    let extension = extension.to_owned();
    let written = output.clone();
    let id = claim.id.clone();
    let (prepared, kind) = tokio::task::spawn_blocking(move || -> Result<(PathBuf, Kind), Failure> {
        let format = formats::by_file_name(&format!("x.{extension}")).ok_or(Failure::Unreadable)?;
        let mut head = Vec::with_capacity(formats::HEAD_LEN);
        std::fs::File::open(&input)
            .and_then(|f| f.take(formats::HEAD_LEN as u64).read_to_end(&mut head))
            .map_err(|_| Failure::Unreadable)?;
        if !formats::looks_like(format, &head) {
            return Err(unreadable);
        }
        let _ = std::fs::remove_file(&written);
        if matches!(format.extension, "csv" | "tsv") {
            let fods = input.with_extension("fods");
            let tab_separated = format.extension == "tsv";
            csv::write_fods(&input, &fods, &sheet_name, tab_separated).map_err(|e| {
                tracing::warn!(job = %id, "cannot turn the CSV into a spreadsheet: {e}");
                Failure::Unreadable
            })?;
            return Ok((fods, format.kind));
        }
        Ok((input, format.kind))
    })
    .await
    .map_err(|_| Failure::Unreadable)??;
    let name = name.to_owned();
    if kind == Kind::Pdf {
        pdf_input::prepare(&prepared, &output, &claim.options).await?;
        return Ok(Document { name, output, convert: None });
    }
    let password = Some(claim.options.input_password.clone()).filter(|p| !p.is_empty());
    let convert = Convert {
        input_path: path_string(&prepared),
        output_path: path_string(&output),
        format: claim.target_format.clone(),
        filter_options: options::filter_data(&claim.options, &claim.target_format),
        password,
        landscape: claim.options.pdf.as_ref().is_some_and(|p| p.landscape),
        reset_views: claim.options.pdf.as_ref().is_some_and(|p| p.single_page_sheets),
    };
    Ok(Document { name, output, convert: Some(convert) })
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
