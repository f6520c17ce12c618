//! The backend's one error type.

use crate::Revision;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The disk (or quota) is full: ENOSPC or EDQUOT anywhere in the cause chain.
    #[error("job store: {0}")]
    OutOfSpace(String),
    /// The store is damaged or not a job store; the message says which and what to do.
    #[error("job store: {0}")]
    Damaged(String),
    /// A compare-and-set lost: the job was written since it was read.
    #[error("job {id} changed meanwhile (it is at revision {current})")]
    Conflict { id: String, current: Revision },
    /// The lease ran out and the job went to another worker, or was never this one's.
    #[error("job {id} is no longer leased by this worker")]
    LeaseLost { id: String },
    /// A write for a job that does not exist.
    #[error("no job {id}")]
    Missing { id: String },
    /// A shared job store could not be reached or did not answer in time
    /// (a server lost, a leader being elected): trying again later may work.
    #[error("job store unavailable: {0}")]
    Unavailable(String),
    /// The settings for reaching a shared job store are wrong (a file
    /// missing or unreadable): trying again cannot help.
    #[error("job store settings: {0}")]
    Misconfigured(String),
    #[error("job store: {0}")]
    Other(String),
}

impl BackendError {
    /// A file error, with what was being done; a full disk is `OutOfSpace`.
    pub fn io(doing: &str, e: std::io::Error) -> BackendError {
        let full = matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
            || matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded);
        match full {
            true => BackendError::OutOfSpace(format!("out of disk space ({doing}: {e})")),
            false => BackendError::Other(format!("{doing}: {e}")),
        }
    }

    pub fn is_out_of_space(&self) -> bool {
        matches!(self, BackendError::OutOfSpace(_))
    }
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;
