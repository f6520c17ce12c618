//! Files kept current as they are used: the tokens file, and the TLS
//! certificate and key.
//!
//! Nothing polls in the background. Each use asks `look`, which looks at
//! the files at most once per interval and says whether to read them
//! again: a file counts as changed when its modification time, size,
//! device or inode differ from the last look, so an edit in place and a
//! new file renamed (or a mounted secret's link swapped) over the old one
//! are both seen. One caller an interval does the looking; the others go
//! on at once with what was read before.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// What a file looked like: a change of any of these means read it again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    device: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    // `metadata` follows symbolic links, so a mounted secret whose link is
    // swapped to a new file counts as changed.
    let metadata = std::fs::metadata(path)?;
    Ok(Stamp { modified: metadata.modified().ok(), len: metadata.len(), device: metadata.dev(), inode: metadata.ino() })
}

/// What `look` found.
#[derive(Debug)]
pub(crate) enum Look<'a> {
    /// Not time to look yet, nothing changed, or a file is still unreadable
    /// (which was reported when it became so).
    Same,
    /// A file changed since the last look: read the files again.
    Changed,
    /// This file could be read at the last look and cannot now. Reported
    /// once; it counts as changed when it can be read again.
    Unreadable(&'a Path, std::io::Error),
}

struct State {
    checked: Instant,
    /// One per file; `None` while a file cannot be read.
    stamps: Option<Vec<Stamp>>,
}

/// One or more files read together (a certificate and its key change as a
/// pair), looked at again at most once per interval.
pub(crate) struct Watched {
    paths: Vec<PathBuf>,
    interval: Duration,
    state: Mutex<State>,
}

impl Watched {
    /// Takes the files' stamps. Call it before reading them: an edit in
    /// between is then seen as a change at the next look, never missed.
    pub(crate) fn new(paths: &[&Path], interval: Duration) -> Result<Watched, (PathBuf, std::io::Error)> {
        let stamps = stamps(paths.iter().copied()).map_err(|(path, e)| (path.to_path_buf(), e))?;
        Ok(Watched {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            interval,
            state: Mutex::new(State { checked: Instant::now(), stamps: Some(stamps) }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at the files if the interval has passed since the last look.
    /// `Changed` is answered once per change: the new stamps are recorded
    /// before the caller reads, so a file that fails to parse is read again
    /// only when it changes again.
    pub(crate) fn look(&self) -> Look<'_> {
        let previous = {
            let mut state = self.state();
            if state.checked.elapsed() < self.interval {
                return Look::Same;
            }
            // Claimed before the I/O, which then runs outside the lock.
            state.checked = Instant::now();
            state.stamps.clone()
        };
        match stamps(self.paths.iter().map(PathBuf::as_path)) {
            Err((path, error)) => {
                if previous.is_none() {
                    return Look::Same;
                }
                self.state().stamps = None;
                Look::Unreadable(path, error)
            }
            Ok(current) if previous.as_ref() == Some(&current) => Look::Same,
            Ok(current) => {
                self.state().stamps = Some(current);
                Look::Changed
            }
        }
    }
}

fn stamps<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<Vec<Stamp>, (&'a Path, std::io::Error)> {
    paths.map(|path| stamp(path).map_err(|e| (path, e))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(50);

    fn after_interval() {
        std::thread::sleep(INTERVAL + Duration::from_millis(20));
    }

    #[test]
    fn a_change_of_either_file_is_seen_once_and_only_after_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "one").unwrap();
        std::fs::write(&b, "one").unwrap();
        let watched = Watched::new(&[&a, &b], INTERVAL).unwrap();
        assert!(matches!(watched.look(), Look::Same));

        // Within the interval a change is not looked for yet.
        std::fs::write(&b, "two, longer").unwrap();
        assert!(matches!(watched.look(), Look::Same));
        after_interval();
        assert!(matches!(watched.look(), Look::Changed));
        after_interval();
        assert!(matches!(watched.look(), Look::Same), "a change is answered once");

        // A new file renamed over the old one, same size.
        let new = dir.path().join("a.new");
        std::fs::write(&new, "one").unwrap();
        std::fs::rename(&new, &a).unwrap();
        after_interval();
        assert!(matches!(watched.look(), Look::Changed));
    }

    #[test]
    fn a_file_gone_is_reported_once_and_counts_as_changed_when_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, "one").unwrap();
        let watched = Watched::new(&[&path], INTERVAL).unwrap();
        std::fs::remove_file(&path).unwrap();
        after_interval();
        match watched.look() {
            Look::Unreadable(reported, error) => {
                assert_eq!(reported, path);
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        after_interval();
        assert!(matches!(watched.look(), Look::Same), "reported once");
        std::fs::write(&path, "one").unwrap();
        after_interval();
        assert!(matches!(watched.look(), Look::Changed));
    }

    #[test]
    fn a_missing_file_at_the_start_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let (named, _) = Watched::new(&[&path], INTERVAL).err().unwrap();
        assert_eq!(named, path);
    }
}
