//! What the pool needs of a worker, as traits: `Launcher` starts one,
//! `WorkerProcess` converts with it. `Processes` is the real thing (a
//! `docconv worker` process with LibreOffice in it); the pool's tests use
//! a fake that converts without LibreOffice, so supervision (deadlines,
//! retries, recycling, cancellation) is tested in milliseconds.

use async_trait::async_trait;
use docconv_worker::proto::{Convert, Sandbox};
use docconv_worker::{Outcome, Progress, Worker, WorkerError, WorkerSpec};
use std::path::PathBuf;

/// One worker, able to convert a document at a time.
#[async_trait]
pub trait WorkerProcess: Send {
    /// Converts one document; `on_progress` sees each progress event. If
    /// the future is dropped mid-way the worker must be killed.
    async fn convert(
        &mut self,
        request: Convert,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Outcome, WorkerError>;
    /// Stops the worker at once; it is dropped next.
    fn kill(&mut self);
    /// The process, for its memory; `None` once it is gone (or for a fake).
    fn pid(&self) -> Option<u32>;
    fn rss_bytes(&self) -> Option<u64>;
    /// Conversions since the count was last reset.
    fn jobs_done(&self) -> u32;
    fn reset_jobs_done(&mut self);
    /// How the worker confined itself.
    fn sandbox(&self) -> &Sandbox;
    /// A directory private to this worker, removed with it.
    fn scratch_dir(&self) -> PathBuf;
}

/// Starts workers.
#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    async fn start(&self) -> Result<Box<dyn WorkerProcess>, WorkerError>;
    /// Where samples for warming up and probing are written.
    fn samples_dir(&self) -> PathBuf;
}

/// Real worker processes, as `spec` says to start them.
pub struct Processes(pub WorkerSpec);

#[async_trait]
impl Launcher for Processes {
    async fn start(&self) -> Result<Box<dyn WorkerProcess>, WorkerError> {
        Ok(Box::new(Worker::start(&self.0).await?))
    }

    fn samples_dir(&self) -> PathBuf {
        self.0.scratch_dir.clone()
    }
}

#[async_trait]
impl WorkerProcess for Worker {
    async fn convert(
        &mut self,
        request: Convert,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Outcome, WorkerError> {
        Worker::convert(self, request, on_progress).await
    }

    fn kill(&mut self) {
        Worker::kill(self);
    }

    fn pid(&self) -> Option<u32> {
        Worker::pid(self)
    }

    fn rss_bytes(&self) -> Option<u64> {
        Worker::rss_bytes(self)
    }

    fn jobs_done(&self) -> u32 {
        self.jobs_done
    }

    fn reset_jobs_done(&mut self) {
        self.jobs_done = 0;
    }

    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn scratch_dir(&self) -> PathBuf {
        Worker::scratch_dir(self)
    }
}
