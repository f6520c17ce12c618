//! The embedded files of jobs: a directory per job under one root, which
//! is also the folder workers convert in (checking out and keeping move
//! nothing).
//!
//! A file being written has a `.partial` name and is renamed once every
//! byte is on disk: a crash mid-upload leaves no file that could be taken
//! for a whole one, and readers never see half a file.

use crate::error::{BackendError, Result};
use crate::{BlobWriter, Blobs};
use async_trait::async_trait;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt};

/// Suffix of a file still being written.
const PARTIAL: &str = ".partial";

#[derive(Clone, Debug)]
pub struct Files {
    root: PathBuf,
}

impl Files {
    pub fn new(root: PathBuf) -> Files {
        Files { root }
    }

    /// The job's directory. Ids are checked by the caller (`ids::is_valid`)
    /// before they reach a path.
    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

struct Writer {
    file: tokio::fs::File,
    partial: PathBuf,
    path: PathBuf,
    finished: bool,
}

#[async_trait]
impl BlobWriter for Writer {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(data).await.map_err(|e| BackendError::io("writing a job file", e))
    }

    /// The flush comes first: tokio's file writes in the background, and a
    /// failed write (a full disk) is only reported by the next write or
    /// flush; `sync_all` alone would drop it and a cut file would pass for
    /// a whole one.
    async fn finish(mut self: Box<Self>) -> Result<()> {
        let syncing = |e| BackendError::io("saving a job file", e);
        self.file.flush().await.map_err(syncing)?;
        self.file.sync_all().await.map_err(syncing)?;
        tokio::fs::rename(&self.partial, &self.path).await.map_err(syncing)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[async_trait]
impl Blobs for Files {
    async fn create(&self, id: &str, name: &str) -> Result<Box<dyn BlobWriter>> {
        let dir = self.dir(id);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| BackendError::io("creating a job directory", e))?;
        let partial = dir.join(format!("{name}{PARTIAL}"));
        let file = tokio::fs::File::create(&partial).await.map_err(|e| BackendError::io("creating a job file", e))?;
        Ok(Box::new(Writer { file, partial, path: dir.join(name), finished: false }))
    }

    async fn open(&self, id: &str, name: &str, offset: u64) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>> {
        let mut file = match tokio::fs::File::open(self.dir(id).join(name)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackendError::io("opening a job file", e)),
        };
        file.seek(SeekFrom::Start(offset)).await.map_err(|e| BackendError::io("reading a job file", e))?;
        Ok(Some(Box::new(file)))
    }

    async fn checkout(&self, id: &str, _names: &[String]) -> Result<PathBuf> {
        Ok(self.dir(id))
    }

    async fn keep(&self, id: &str, names: &[String]) -> Result<()> {
        let dir = self.dir(id);
        let names = names.to_vec();
        tokio::task::spawn_blocking(move || sync_files(&dir, &names))
            .await
            .map_err(|e| BackendError::Other(format!("keeping job files: {e}")))?
            .map_err(|e| BackendError::io("saving a job file", e))
    }

    /// The local folder is where files are kept: nothing to do.
    async fn forget_local(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<()> {
        match tokio::fs::remove_dir_all(self.dir(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BackendError::io("deleting a job's files", e)),
            _ => Ok(()),
        }
    }

    async fn ids(&self, older_than: Duration) -> Result<Vec<String>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || dir_names(&root, older_than))
            .await
            .map_err(|e| BackendError::Other(format!("listing job directories: {e}")))?
            .map_err(|e| BackendError::io("listing job directories", e))
    }
}

fn sync_files(dir: &Path, names: &[String]) -> std::io::Result<()> {
    for name in names {
        std::fs::File::open(dir.join(name))?.sync_all()?;
    }
    Ok(())
}

/// The job directories last changed more than `older_than` ago.
fn dir_names(root: &Path, older_than: Duration) -> std::io::Result<Vec<String>> {
    let now = SystemTime::now();
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        let age = metadata.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        if metadata.is_dir() && age >= older_than {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}
