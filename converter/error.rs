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

#[derive(Debug)]
pub enum Error {
    /// The caller sent something malformed; the message says what to fix.
    InvalidArgument(String),
    /// Fields of the request are wrong; each violation names one and why.
    /// Sent as INVALID_ARGUMENT with google.rpc.BadRequest details, and the
    /// same words in the message for people reading grpcurl's output.
    BadRequest(Vec<Violation>),
    NotFound(String),
    /// An upload exceeds its limit.
    ResourceExhausted(String),
    /// The service is full for now (queue, disk): RESOURCE_EXHAUSTED with
    /// a google.rpc.RetryInfo saying when to try again.
    Overloaded {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The job is not in a state the call needs (e.g. reading a result of a
    /// job that has not succeeded).
    FailedPrecondition(String),
    OutOfRange(String),
    /// The service is shutting down, or still starting.
    Unavailable(String),
    /// The call carries no token, or one the tokens file does not list; the
    /// message says how to authenticate.
    Unauthenticated(String),
    /// Our fault. The detail is logged, never sent: it may name paths.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let (code, message) = match error {
            Error::BadRequest(violations) => {
                let message =
                    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
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
            Error::Internal(detail) => {
                tracing::error!("internal error: {detail}");
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
        Error::Internal(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if super::disk::is_out_of_space(&e) {
            tracing::warn!("out of disk space: {e}");
            return super::disk::out_of_space();
        }
        Error::Internal(format!("i/o: {e}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::Internal(format!("background task: {e}"))
    }
}
