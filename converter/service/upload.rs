//! Receiving a `Submit`'s files: each document and attachment streamed
//! into the job's blobs as it arrives, the size limit enforced per chunk,
//! and what the client declared (size, SHA-256) checked at its end.

use super::invoice::Invoice;
use super::{Checked, ConverterService, upload_broken};
use crate::error::{Error, Result};
use crate::files;
use crate::formats;
use crate::options;
use docconv::ids::hex;
use docconv::limits::MAX_CHUNK;
use docconv::proto::v1::{
    Attachment, ConversionOptions, DocumentHeader, PdfMarkLayer, SubmitHeader, SubmitRequest, submit_request,
};
use docconv_backend::{BlobWriter, Blobs, StoredInput};
use sha2::{Digest, Sha256};
use tonic::Streaming;

/// Longest accepted file name, in bytes (a common file system limit).
const MAX_FILE_NAME: usize = 255;

impl ConverterService {
    /// Streams each document's data into its input file, enforcing the size
    /// limit on the whole upload as bytes arrive. Returns the total size and
    /// the documents after the first, once every file is durable.
    pub(super) async fn receive(
        &self,
        stream: &mut Streaming<SubmitRequest>,
        id: &str,
        first: &Checked,
        header: &SubmitHeader,
        options: &ConversionOptions,
    ) -> Result<(u64, Vec<StoredInput>)> {
        let declared = Declared { field: "header", size_bytes: header.size_bytes, sha256: header.sha256.clone() };
        let mut current = Upload::create(self.jobs.blobs(), id, &files::input(&first.extension), declared).await?;
        let mut more_inputs: Vec<StoredInput> = Vec::new();
        let mut total = 0u64;
        let mut invoice = Invoice::expected(options);
        while let Some(message) = stream.message().await.map_err(upload_broken)? {
            match message.payload {
                Some(submit_request::Payload::Data(chunk)) => {
                    if chunk.len() > MAX_CHUNK {
                        return Err(Error::InvalidArgument(format!("data chunks must be at most {MAX_CHUNK} bytes")));
                    }
                    total += chunk.len() as u64;
                    if total > self.max_upload_bytes {
                        return Err(self.too_large());
                    }
                    current.write(&chunk).await?;
                }
                Some(submit_request::Payload::NextDocument(next)) => {
                    current.finish().await?;
                    invoice.check_stored(self.jobs.blobs(), id).await?;
                    if next.mark != PdfMarkLayer::Unspecified as i32 {
                        let (stored, upload) = self.mark_file(id, &more_inputs, first, options, next).await?;
                        current = upload;
                        more_inputs.push(stored);
                        continue;
                    }
                    if let Some(attachment) = &next.attachment {
                        let (mut stored, upload) =
                            self.attachment(id, &more_inputs, first, options, attachment, next.clone()).await?;
                        invoice.claim(&mut stored, &files::attachment(more_inputs.len() + 1))?;
                        current = upload;
                        more_inputs.push(stored);
                        continue;
                    }
                    let documents = more_inputs.iter().filter(|i| is_document(i)).count();
                    if documents + 1 >= MAX_DOCUMENTS {
                        return Err(Error::InvalidArgument(format!("a merge takes at most {MAX_DOCUMENTS} documents")));
                    }
                    let field = "next_document.file_name";
                    let (file_name, format) = check_file_name(field, &next.file_name)?;
                    let violations = options::check_merge(options, &first.target, format.kind);
                    if !violations.is_empty() {
                        return Err(Error::BadRequest(violations));
                    }
                    let index = more_inputs.len() + 1;
                    let name = files::more_input(index, format.extension);
                    let declared =
                        Declared { field: "next_document", size_bytes: next.size_bytes, sha256: next.sha256 };
                    current = Upload::create(self.jobs.blobs(), id, &name, declared).await?;
                    more_inputs.push(StoredInput {
                        file_name,
                        extension: format.extension.to_owned(),
                        ..StoredInput::default()
                    });
                }
                _ => {
                    return Err(Error::InvalidArgument("only the first message may be a header".into()));
                }
            }
        }
        current.finish().await?;
        invoice.check_stored(self.jobs.blobs(), id).await?;
        invoice.required()?;
        let sent: Vec<PdfMarkLayer> = more_inputs.iter().filter_map(|i| PdfMarkLayer::try_from(i.mark).ok()).collect();
        let violations = options::check_mark_files(options, &sent);
        if !violations.is_empty() {
            return Err(Error::BadRequest(violations));
        }
        Ok((total, more_inputs))
    }
}

/// Whether a further file is a document to merge (not an attachment nor a
/// mark's file).
pub(super) fn is_document(input: &StoredInput) -> bool {
    input.attachment.is_none() && input.mark == PdfMarkLayer::Unspecified as i32
}

impl ConverterService {
    /// Checks a file to embed (sent as `next`, the job's further file
    /// number `more.len() + 1`) and starts writing it.
    async fn attachment(
        &self,
        id: &str,
        more: &[StoredInput],
        first: &Checked,
        options: &ConversionOptions,
        attachment: &Attachment,
        next: DocumentHeader,
    ) -> Result<(StoredInput, Upload)> {
        let attached = more.iter().filter(|i| i.attachment.is_some());
        if attached.clone().count() >= MAX_ATTACHMENTS {
            return Err(Error::InvalidArgument(format!("a job takes at most {MAX_ATTACHMENTS} attachments")));
        }
        let field = "next_document.file_name";
        let file_name = shown_file_name(field, &next.file_name)?;
        if attached.clone().any(|i| i.file_name == file_name) {
            return Err(Error::InvalidArgument(format!(
                "{field}: another attachment is named {file_name:?}; a PDF's attachments need names of their own"
            )));
        }
        let violations = options::check_attachment(attachment, &next.content_type, options, &first.target);
        if !violations.is_empty() {
            return Err(Error::BadRequest(violations));
        }
        let content_type = match next.content_type.as_str() {
            "" => options::guess_mime_type(&file_name).to_owned(),
            given => given.to_owned(),
        };
        let name = files::attachment(more.len() + 1);
        let declared = Declared { field: "next_document", size_bytes: next.size_bytes, sha256: next.sha256 };
        let upload = Upload::create(self.jobs.blobs(), id, &name, declared).await?;
        let stored =
            StoredInput { file_name, attachment: Some(attachment.clone()), content_type, ..StoredInput::default() };
        Ok((stored, upload))
    }
}

impl ConverterService {
    /// Checks the file of a mark (sent as `next`, the job's further file
    /// number `more.len() + 1`) and starts writing it.
    async fn mark_file(
        &self,
        id: &str,
        more: &[StoredInput],
        first: &Checked,
        options: &ConversionOptions,
        next: DocumentHeader,
    ) -> Result<(StoredInput, Upload)> {
        let file_name = shown_file_name("next_document.file_name", &next.file_name)?;
        if next.attachment.is_some() {
            return Err(Error::InvalidArgument(
                "next_document: a file is an attachment or the file of a mark, not both".into(),
            ));
        }
        let sent: Vec<PdfMarkLayer> = more.iter().filter_map(|i| PdfMarkLayer::try_from(i.mark).ok()).collect();
        let mut violations = options::check_mark_file(next.mark, &file_name, &next.content_type, options, &sent);
        if first.target != "pdf" {
            violations.push(options::Violation {
                field: "header.target_format".into(),
                description: "marks are drawn on PDFs only: use \"pdf\"".into(),
            });
        }
        if !violations.is_empty() {
            return Err(Error::BadRequest(violations));
        }
        let name = files::mark(more.len() + 1);
        let declared = Declared { field: "next_document", size_bytes: next.size_bytes, sha256: next.sha256 };
        let upload = Upload::create(self.jobs.blobs(), id, &name, declared).await?;
        let stored =
            StoredInput { file_name, mark: next.mark, content_type: next.content_type, ..StoredInput::default() };
        Ok((stored, upload))
    }
}

/// Most documents in one merge.
const MAX_DOCUMENTS: usize = 20;
/// Most files embedded in one result.
const MAX_ATTACHMENTS: usize = 20;

/// Checks a document's file name; returns the name to show (the last path
/// component: browsers and scripts sometimes send a full path, and the name
/// is only ever shown, never opened) and its format.
pub(super) fn check_file_name(field: &str, name: &str) -> Result<(String, &'static formats::Format)> {
    let file_name = shown_file_name(field, name)?;
    let format = formats::by_file_name(&file_name).ok_or_else(|| {
        let known: Vec<_> = formats::INPUTS.iter().map(|f| f.extension).collect();
        Error::InvalidArgument(format!(
            "{field} {file_name:?} has no extension docconv reads; use one of: {}",
            known.join(", ")
        ))
    })?;
    Ok((file_name, format))
}

/// The name of a file as it may be shown and stored in a PDF: its last
/// path component, without bidirectional controls, checked for length and
/// control characters.
fn shown_file_name(field: &str, name: &str) -> Result<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    // Bidirectional controls would let a name show as something else in a
    // download dialog ("report\u{202E}fdp.exe" reads "reportexe.pdf").
    let file_name: String = last.chars().filter(|c| !is_bidi_control(*c)).collect();
    let file_name = file_name.trim();
    if file_name.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required, e.g. \"report.docx\"")));
    }
    if file_name.len() > MAX_FILE_NAME || file_name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{field} must be at most {MAX_FILE_NAME} bytes without control characters"
        )));
    }
    Ok(file_name.to_owned())
}

/// Unicode's explicit bidirectional formatting characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What the client said about a document's bytes, to check on arrival.
struct Declared {
    field: &'static str,
    size_bytes: Option<u64>,
    sha256: String,
}

/// One document being written to the job's blobs.
struct Upload {
    writer: Box<dyn BlobWriter>,
    hasher: Sha256,
    size: u64,
    declared: Declared,
}

impl Upload {
    async fn create(blobs: &dyn Blobs, id: &str, name: &str, declared: Declared) -> Result<Upload> {
        let hex_digest = declared.sha256.len() == 64 && declared.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !declared.sha256.is_empty() && !hex_digest {
            return Err(Error::InvalidArgument(format!("{}.sha256 must be 64 hex digits", declared.field)));
        }
        Ok(Upload { writer: blobs.create(id, name).await?, hasher: Sha256::new(), size: 0, declared })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        self.hasher.update(chunk);
        Ok(self.writer.write(chunk).await?)
    }

    /// Checks what arrived against what was declared, then makes it durable.
    async fn finish(mut self) -> Result<()> {
        let field = self.declared.field;
        if self.size == 0 {
            return Err(Error::InvalidArgument("the upload is empty: send the document in data messages".into()));
        }
        if let Some(declared) = self.declared.size_bytes.filter(|&d| d != self.size) {
            return Err(Error::InvalidArgument(format!(
                "{field}.size_bytes says {declared} bytes but {} arrived",
                self.size
            )));
        }
        let digest = hex(&std::mem::take(&mut self.hasher).finalize());
        if !self.declared.sha256.is_empty() && !self.declared.sha256.eq_ignore_ascii_case(&digest) {
            return Err(Error::InvalidArgument(format!(
                "{field}.sha256 does not match the data received (sha256 {digest})"
            )));
        }
        Ok(self.writer.finish().await?)
    }
}
