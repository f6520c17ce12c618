//! Why a job failed, in words a person can act on, with the google.rpc
//! code that travels in the job's state.

use docconv::proto::v1::JobError;
use docconv_worker::proto::Reason;
use std::time::Duration;
use tonic::Code;

#[derive(Debug, Clone)]
pub enum Failure {
    /// The file does not look like its format at all.
    NotADocument {
        extension: String,
    },
    /// LibreOffice could not load it.
    Unreadable,
    PasswordRequired,
    WrongPassword,
    /// A password was given for a document that has none.
    PasswordNotNeeded,
    ExportFailed,
    TimedOut(Duration),
    /// The worker died on this document on every attempt.
    Crashed {
        attempts: u32,
    },
    /// The job was cancelled by request.
    Cancelled,
    /// The converter itself failed on the job (a bug); the log has details.
    Internal,
    /// The worker passed its memory limit (in bytes) on this document.
    OutOfMemory {
        limit: u64,
    },
    /// A page range (the option `field`) names none of the `pages` pages
    /// of the document it applies to.
    NoPagesSelected {
        field: &'static str,
        pages: u32,
    },
    /// The file of a mark (the option `field`) cannot be drawn, and why.
    MarkUnusable {
        field: &'static str,
        reason: String,
    },
    /// The option `field` names `page`, past the end of the result of
    /// `pages` pages (known only once it is made).
    PageBeyondEnd {
        field: &'static str,
        page: u32,
        pages: u32,
    },
    /// One document of a merge failed (position counts from 1).
    InDocument {
        position: usize,
        name: String,
        failure: Box<Failure>,
    },
}

impl Failure {
    pub fn from_worker(reason: Reason) -> Failure {
        match reason {
            Reason::PasswordRequired => Failure::PasswordRequired,
            Reason::WrongPassword => Failure::WrongPassword,
            Reason::PasswordNotNeeded => Failure::PasswordNotNeeded,
            Reason::ExportFailed => Failure::ExportFailed,
            Reason::Unreadable | Reason::Unspecified => Failure::Unreadable,
        }
    }

    pub fn to_job_error(&self) -> JobError {
        let (code, message) = match self {
            Failure::NotADocument { extension } => (
                Code::InvalidArgument,
                format!("the file is not a valid .{extension} document: it is damaged or in another format"),
            ),
            Failure::Unreadable => (
                Code::InvalidArgument,
                "not a document LibreOffice can read: the file is damaged or in an unsupported format".into(),
            ),
            Failure::PasswordRequired => (
                Code::FailedPrecondition,
                "the document is password-protected: give its password in input_password \
                 (\"Password of the document\" on the web page)"
                    .into(),
            ),
            Failure::WrongPassword => {
                (Code::InvalidArgument, "input_password does not open the document: check it and submit again".into())
            }
            Failure::PasswordNotNeeded => (
                Code::InvalidArgument,
                "input_password was given, but the document is not password-protected: submit it without one".into(),
            ),
            Failure::ExportFailed => {
                (Code::Internal, "LibreOffice read the document but could not write the result".into())
            }
            Failure::TimedOut(limit) => {
                (Code::DeadlineExceeded, format!("conversion took longer than {} s and was stopped", limit.as_secs()))
            }
            Failure::Crashed { attempts } => (
                Code::Internal,
                format!("LibreOffice crashed on this document ({attempts} attempts); it may be damaged"),
            ),
            Failure::Cancelled => (Code::Cancelled, "cancelled on request".into()),
            Failure::Internal => {
                (Code::Internal, "the converter failed on this job; the service log has details".into())
            }
            Failure::OutOfMemory { limit } => (
                Code::ResourceExhausted,
                format!(
                    "converting this document needed more than the {} MiB of memory a conversion may use, and was stopped; \
                     it may be a decompression bomb",
                    limit >> 20
                ),
            ),
            Failure::NoPagesSelected { field, pages } => (
                Code::InvalidArgument,
                format!("{field} names none of the document's {pages} pages: check the ranges and submit again"),
            ),
            Failure::MarkUnusable { field, reason } => (Code::InvalidArgument, format!("{field}: {reason}")),
            Failure::PageBeyondEnd { field, page, pages } => (
                Code::InvalidArgument,
                format!(
                    "{field} names page {page}, but the result has {pages} pages: check the pages and submit again"
                ),
            ),
            Failure::InDocument { position, name, failure } => {
                let inner = failure.to_job_error();
                return JobError {
                    code: inner.code,
                    message: format!("document {position} ({name}): {}", inner.message),
                };
            }
        };
        JobError { code: code as i32, message }
    }
}
