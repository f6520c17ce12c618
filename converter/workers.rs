//! What the pool needs of a worker, as traits: `Launcher` starts one,
//! `WorkerProcess` converts with it. `Processes` is the real thing (a
//! worker process with LibreOffice in it, forked from the zygote or a
//! fresh `docconv worker`); the pool's tests use
//! a fake that converts without LibreOffice, so supervision (deadlines,
//! retries, recycling, cancellation) is tested in milliseconds.

use async_trait::async_trait;
use docconv_worker::proto::{Convert, Sandbox};
use docconv_worker::{Outcome, Progress, StartMode, Worker, WorkerError, WorkerSpec, Zygote};
use std::path::PathBuf;
use std::sync::Arc;

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
pub struct Processes {
    spec: WorkerSpec,
    /// The zygote workers are forked from, started with the first worker
    /// and again after it dies.
    zygote: tokio::sync::Mutex<Option<Arc<Zygote>>>,
}

impl Processes {
    pub fn new(spec: WorkerSpec) -> Processes {
        Processes { spec, zygote: tokio::sync::Mutex::new(None) }
    }

    /// The running zygote, started if there is none; `None` if it cannot
    /// be started (workers are then exec'd).
    async fn zygote(&self) -> Option<Arc<Zygote>> {
        let mut zygote = self.zygote.lock().await;
        if let Some(running) = zygote.as_ref().filter(|z| z.is_running()) {
            return Some(running.clone());
        }
        *zygote = match Zygote::start(&self.spec).await {
            Ok(started) => Some(Arc::new(started)),
            Err(e) => {
                tracing::warn!("cannot start the worker zygote ({e}); starting workers by exec");
                None
            }
        };
        zygote.clone()
    }
}

#[async_trait]
impl Launcher for Processes {
    async fn start(&self) -> Result<Box<dyn WorkerProcess>, WorkerError> {
        if self.spec.start == StartMode::Fork
            && let Some(zygote) = self.zygote().await
        {
            match Worker::fork(&self.spec, &zygote).await {
                Ok(worker) => return Ok(Box::new(worker)),
                // The zygote is replaced when it is found dead; a worker
                // that failed to start is replaced as any other.
                Err(e) if zygote.is_running() => return Err(e),
                Err(e) => tracing::warn!("the worker zygote died ({e}); starting this worker by exec"),
            }
        }
        Ok(Box::new(Worker::start(&self.spec).await?))
    }

    fn samples_dir(&self) -> PathBuf {
        self.spec.scratch_dir.clone()
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
