//! LibreOffice worker processes: the only place docconv touches LibreOffice.
//!
//! `child`, `landscape` and `lok` run inside the `docconv worker` process;
//! `handle` is what the converter holds for each; `protocol` is the pipe
//! between them. Containment has two parts: `profile` is the engine's own
//! safety settings, `sandbox` what the kernel enforces around the process.

pub mod child;
pub mod handle;
mod landscape;
mod lok;
mod profile;
mod protocol;
mod sandbox;

pub use handle::{Outcome, Progress, Worker, WorkerError, WorkerSpec, rss_of};
pub use sandbox::kernel_landlock_abi;
