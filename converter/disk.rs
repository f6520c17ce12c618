//! Disk space where jobs are kept. A full disk must be a clear, temporary
//! refusal (RESOURCE_EXHAUSTED, and health saying NOT_SERVING), never a
//! job accepted with a truncated input.

use super::error::{Error, Result};
use std::io;
use std::path::Path;

/// Bytes free for this process on the file system holding `path`.
pub fn available(path: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Whether `free` bytes are room for new work: at least `min_free`, and
/// never nothing. `None` (free space unknown) is room: not knowing is no
/// reason to refuse, and a write that fails says so.
pub fn enough(free: Option<u64>, min_free: u64) -> bool {
    free.is_none_or(|free| free >= min_free.max(1))
}

/// Refuses new work while less than `min_free` bytes are free: an upload
/// would fail part-way, and running jobs need room for their results.
pub fn check(path: &Path, min_free: u64) -> Result<()> {
    if enough(available(path).ok(), min_free) { Ok(()) } else { Err(out_of_space()) }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

/// The refusal every out-of-space path gives.
pub fn out_of_space() -> Error {
    Error::Overloaded {
        message: "the service is out of disk space; try again later".into(),
        retry_after: std::time::Duration::from_secs(30),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_are_recognised_and_refused() {
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_out_of_space(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_out_of_space(&io::Error::from_raw_os_error(libc::EACCES)));
        let dir = tempfile::tempdir().unwrap();
        assert!(available(dir.path()).unwrap() > 0);
        assert!(check(dir.path(), 0).is_ok());
        let refused = check(dir.path(), u64::MAX).unwrap_err();
        assert!(
            matches!(refused, Error::Overloaded { ref message, .. } if message.contains("out of disk space")),
            "{refused:?}"
        );
    }
}
