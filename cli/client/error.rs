//! What can stop a client command (as opposed to a job that fails, which
//! is the job's state), and how it reads for a person.

use tonic::{Code, Status};
use tonic_types::StatusExt;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command line is wrong; the message says how.
    #[error("{0}")]
    Usage(String),
    /// The service could not be reached at all.
    #[error("cannot reach the docconv service at {server}")]
    Connect {
        server: String,
        #[source]
        cause: tonic::transport::Error,
    },
    /// The service refused or failed a call.
    #[error("{doing}: {}", described(.status))]
    Rpc { doing: String, status: Status },
    /// A local file could not be read or written.
    #[error("{doing}")]
    Io {
        doing: String,
        #[source]
        cause: std::io::Error,
    },
    /// A download stopped midway; what arrived is kept, and `resume` says
    /// how to go on.
    #[error("{cause}; {resume}")]
    Interrupted { resume: String, cause: Box<ClientError> },
    /// The service answered in a way it never should, or a download came
    /// out wrong.
    #[error("{0}")]
    Protocol(String),
}

impl ClientError {
    pub fn connect(server: &str, cause: tonic::transport::Error) -> ClientError {
        ClientError::Connect { server: server.to_owned(), cause }
    }

    pub fn io(doing: impl Into<String>, cause: std::io::Error) -> ClientError {
        ClientError::Io { doing: doing.into(), cause }
    }

    /// A call's error, with what we were doing.
    pub fn rpc(doing: impl Into<String>) -> impl FnOnce(Status) -> ClientError {
        let doing = doing.into();
        move |status| ClientError::Rpc { doing, status }
    }

    /// The field violations of a google.rpc.BadRequest, as (field, why).
    pub fn violations(&self) -> Vec<(String, String)> {
        match self {
            ClientError::Rpc { status, .. } => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The gRPC code, for the JSON output; None for local errors.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Rpc { status, .. } => Some(status.code()),
            ClientError::Connect { .. } => Some(Code::Unavailable),
            ClientError::Interrupted { cause, .. } => cause.code(),
            _ => None,
        }
    }

    /// The error and its causes on one line (transport errors keep the
    /// useful part, e.g. "Connection refused", a few sources down).
    pub fn chain(&self) -> String {
        let mut line = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            // tonic repeats a cause in its own words one level up.
            if !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = cause.source();
        }
        line
    }
}

/// A status as a person reads it: the message, each field violation on a
/// line of its own, and when to try again if the service said so.
fn described(status: &Status) -> String {
    let details = status.get_error_details();
    let violations = details.bad_request().map(|b| b.field_violations.as_slice()).unwrap_or_default();
    let mut text = match status.code() {
        Code::Unauthenticated => format!("{} (give a token with --token or DOCCONV_TOKEN)", status.message()),
        // The message joins the violations on one line; one a line reads better.
        _ if !violations.is_empty() => "the request was refused".to_owned(),
        _ => status.message().to_owned(),
    };
    for violation in violations {
        text.push_str(&format!("\n  {}: {}", violation.field, violation.description));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        text.push_str(&format!(" (try again in {} s)", delay.as_secs().max(1)));
    }
    text
}
