//! LibreOffice worker processes: the only place docconv touches LibreOffice.
//!
//! `child`, `landscape` and `lok` run inside the `docconv worker` process; `handle` is
//! what the converter holds for each; `protocol` is the pipe between them;
//! `profile` is the engine's safety settings.

pub mod child;
pub mod handle;
mod landscape;
mod lok;
mod profile;
mod protocol;

pub use handle::{Outcome, Progress, Worker, WorkerError, WorkerSpec};
