//! The converter's one error type for RPC failures, and its mapping to
//! gRPC status codes, in one place.
//!
//! These are errors of a *call* (bad arguments, unknown job, full queue).
//! A conversion that fails is not an error here: it is a job state, see
//! `failure`.

use super::options::Violation;
use docconv_backend::BackendError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What went wrong with a call. Messages are for the caller, except
/// `Internal`'s, which (with its cause) is for the log alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed; the message says what to fix.
    #[error("{0}")]
    InvalidArgument(String),
    /// Fields of the request are wrong; each violation names one and why.
    /// Sent as INVALID_ARGUMENT with google.rpc.BadRequest details, and the
    /// same words in the message for people reading grpcurl's output.
    #[error("{}", described(.0))]
    BadRequest(Vec<Violation>),
    #[error("{0}")]
    NotFound(String),
    /// An upload exceeds its limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The service is full for now (queue, disk): RESOURCE_EXHAUSTED with
    /// a google.rpc.RetryInfo saying when to try again.
    #[error("{message}")]
    Overloaded { message: String, retry_after: std::time::Duration },
    /// The job is not in a state the call needs (e.g. reading a result of a
    /// job that has not succeeded).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    OutOfRange(String),
    /// The service is shutting down, or still starting.
    #[error("{0}")]
    Unavailable(String),
    /// The call carries no token, or one the tokens file does not list; the
    /// message says how to authenticate.
    #[error("{0}")]
    Unauthenticated(String),
    /// Our fault: what we were doing, and why it failed. Logged, never
    /// sent: it may name paths.
    #[error("{doing}")]
    Internal {
        doing: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// Our fault, with nothing underneath.
    pub fn internal(doing: impl Into<String>) -> Error {
        Error::Internal { doing: doing.into(), cause: None }
    }

    /// Our fault, caused by `cause`.
    fn caused(doing: &str, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Internal { doing: doing.to_owned(), cause: Some(Box::new(cause)) }
    }
}

fn described(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

/// An error and its causes, on one line for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        next = cause.source();
    }
    line
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let (code, message) = match error {
            Error::BadRequest(violations) => {
                let message = described(&violations);
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                return Status::with_error_details(Code::InvalidArgument, message, details);
            }
            Error::Overloaded { message, retry_after } => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                return Status::with_error_details(Code::ResourceExhausted, message, details);
            }
            Error::InvalidArgument(m) => (Code::InvalidArgument, m),
            Error::NotFound(m) => (Code::NotFound, m),
            Error::ResourceExhausted(m) => (Code::ResourceExhausted, m),
            Error::FailedPrecondition(m) => (Code::FailedPrecondition, m),
            Error::OutOfRange(m) => (Code::OutOfRange, m),
            Error::Unavailable(m) => (Code::Unavailable, m),
            Error::Unauthenticated(m) => (Code::Unauthenticated, m),
            Error::Internal { doing, cause } => {
                let cause = cause.map(|cause| format!(": {}", chain(&*cause))).unwrap_or_default();
                tracing::error!("internal error: {doing}{cause}");
                (Code::Internal, "internal error; the service log has details".to_owned())
            }
        };
        Status::new(code, message)
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Error {
        if e.is_out_of_space() {
            tracing::warn!("{e}");
            return super::disk::out_of_space();
        }
        if let BackendError::Unavailable(why) = &e {
            tracing::warn!("{why}");
            return Error::Unavailable("the job store is unavailable for now; try again shortly".into());
        }
        Error::caused("using the job backend", e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if super::disk::is_out_of_space(&e) {
            tracing::warn!("out of disk space: {e}");
            return super::disk::out_of_space();
        }
        Error::caused("reading or writing a file", e)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::caused("running a background task", e)
    }
}
