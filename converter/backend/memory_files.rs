//! Files of jobs in memory, for the in-memory backend. Like a store on
//! another machine, it keeps files apart from the folder workers convert
//! in: `checkout` copies them into a temporary folder of this process and
//! `keep` copies results back, so tests go through the same motions a
//! shared store needs.

use crate::error::{BackendError, Result};
use crate::{BlobWriter, Blobs};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;

/// Job id → file name → bytes.
type ByJob = HashMap<String, HashMap<String, (Arc<Vec<u8>>, Instant)>>;
type Kept = Arc<Mutex<ByJob>>;

pub struct MemoryFiles {
    kept: Kept,
    /// Where checkouts go; removed with this store.
    scratch: PathBuf,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl MemoryFiles {
    pub fn new() -> MemoryFiles {
        let scratch = std::env::temp_dir().join(format!(
            "docconv-memory-files-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        MemoryFiles { kept: Kept::default(), scratch }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, ByJob> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryFiles {
    fn default() -> Self {
        MemoryFiles::new()
    }
}

impl Drop for MemoryFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

struct Writer {
    kept: Kept,
    id: String,
    name: String,
    data: Vec<u8>,
}

#[async_trait]
impl BlobWriter for Writer {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        let Writer { kept, id, name, data } = *self;
        let file = (Arc::new(data), Instant::now());
        kept.lock().unwrap_or_else(PoisonError::into_inner).entry(id).or_default().insert(name, file);
        Ok(())
    }
}

#[async_trait]
impl Blobs for MemoryFiles {
    async fn create(&self, id: &str, name: &str) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(Writer { kept: self.kept.clone(), id: id.to_owned(), name: name.to_owned(), data: Vec::new() }))
    }

    async fn open(&self, id: &str, name: &str, offset: u64) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>> {
        let Some((data, _)) = self.kept().get(id).and_then(|files| files.get(name)).cloned() else {
            return Ok(None);
        };
        let mut reader = std::io::Cursor::new(data.to_vec());
        reader.set_position(offset);
        Ok(Some(Box::new(reader)))
    }

    async fn checkout(&self, id: &str, names: &[String]) -> Result<PathBuf> {
        let dir = self.scratch.join(id);
        std::fs::create_dir_all(&dir).map_err(|e| BackendError::io("creating a checkout folder", e))?;
        let files: Vec<(String, Arc<Vec<u8>>)> = {
            let kept = self.kept();
            let job = kept.get(id);
            names.iter().filter_map(|n| Some((n.clone(), job?.get(n)?.0.clone()))).collect()
        };
        for (name, data) in files {
            std::fs::write(dir.join(name), &*data).map_err(|e| BackendError::io("checking out a job file", e))?;
        }
        Ok(dir)
    }

    async fn keep(&self, id: &str, names: &[String]) -> Result<()> {
        let dir = self.scratch.join(id);
        for name in names {
            let data = std::fs::read(dir.join(name)).map_err(|e| BackendError::io("keeping a job file", e))?;
            self.kept().entry(id.to_owned()).or_default().insert(name.clone(), (Arc::new(data), Instant::now()));
        }
        Ok(())
    }

    async fn forget_local(&self, id: &str) -> Result<()> {
        match std::fs::remove_dir_all(self.scratch.join(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BackendError::io("deleting a checkout", e)),
            _ => Ok(()),
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.kept().remove(id);
        self.forget_local(id).await
    }

    async fn ids(&self, older_than: Duration) -> Result<Vec<String>> {
        let old =
            |files: &HashMap<String, (Arc<Vec<u8>>, Instant)>| files.values().all(|(_, at)| at.elapsed() >= older_than);
        Ok(self.kept().iter().filter(|(_, files)| old(files)).map(|(id, _)| id.clone()).collect())
    }
}
