//! Small sample documents, and what they teach the converter at start.
//!
//! Every new worker converts the warm-up samples to PDF before it takes
//! jobs: LibreOffice loads each module on first use (100–350 ms), and a job
//! should not pay for that. The first workers also export one sample of
//! each kind to every candidate target (`Kind::candidates`): what succeeds
//! is what this LibreOffice can produce, and all the converter offers. An
//! export filter missing from the installation (or a build that names
//! formats differently) then shows as a target not offered, not as jobs
//! that fail. `cache.rs` keeps the answer for the next start.

mod cache;

pub use cache::ProbeCache;

use super::formats::{Kind, Targets};
use super::workers::WorkerProcess;
use docconv_worker::Outcome;
use docconv_worker::proto::Convert;
use std::future::Future;
use std::path::Path;

pub struct Sample {
    pub file_name: &'static str,
    pub kind: Kind,
    pub bytes: &'static [u8],
    /// Converted by every new worker, not only by the probe.
    pub warms_up: bool,
}

pub const SAMPLES: &[Sample] = &[
    Sample { file_name: "warm.docx", kind: Kind::Text, bytes: include_bytes!("warmup/warm.docx"), warms_up: true },
    Sample {
        file_name: "warm.xlsx",
        kind: Kind::Spreadsheet,
        bytes: include_bytes!("warmup/warm.xlsx"),
        warms_up: true,
    },
    Sample {
        file_name: "warm.pptx",
        kind: Kind::Presentation,
        bytes: include_bytes!("warmup/warm.pptx"),
        warms_up: true,
    },
    // Drawings are rare; the probe needs one, a new worker does not.
    Sample { file_name: "warm.fodg", kind: Kind::Drawing, bytes: include_bytes!("warmup/warm.fodg"), warms_up: false },
];

/// Writes the samples into `dir`, where workers read them.
pub fn write_samples(dir: &Path) -> std::io::Result<()> {
    SAMPLES.iter().try_for_each(|sample| std::fs::write(dir.join(sample.file_name), sample.bytes))
}

/// Converts the warm-up samples to PDF. The worker's job count starts
/// after them.
pub async fn warm_up(worker: &mut Box<dyn WorkerProcess>, samples_dir: &Path) -> Result<(), String> {
    for sample in SAMPLES.iter().filter(|s| s.warms_up) {
        match export(worker, samples_dir, sample, "pdf").await {
            Ok(Outcome::Done) => {}
            Ok(Outcome::Failed(failed)) => {
                return Err(format!("{}: {}", sample.file_name, failed.detail));
            }
            Err(e) => return Err(format!("{}: {e}", sample.file_name)),
        }
    }
    worker.reset_jobs_done();
    Ok(())
}

/// Exports a sample of each of `kinds` to every candidate target on `worker`.
/// A worker that dies on an export is replaced by `replace()` (a warmed-up
/// one) and the probe goes on; `None` from it (shutting down) ends the probe
/// with what it has found.
pub async fn find_targets<F, Fut>(
    worker: &mut Box<dyn WorkerProcess>,
    samples_dir: &Path,
    kinds: &[Kind],
    mut replace: F,
) -> Targets
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Box<dyn WorkerProcess>>>,
{
    let mut targets = Targets::default();
    for &kind in kinds {
        let Some(sample) = SAMPLES.iter().find(|s| s.kind == kind) else {
            continue;
        };
        for &target in kind.candidates() {
            match export(worker, samples_dir, sample, target).await {
                Ok(Outcome::Done) => targets.add(kind, target),
                Ok(Outcome::Failed(failed)) => {
                    tracing::info!(kind = kind.name(), target, detail = %failed.detail, "LibreOffice cannot export this; not offered");
                }
                Err(e) => {
                    tracing::warn!(kind = kind.name(), target, "the worker died exporting a sample ({e}); not offered");
                    match replace().await {
                        Some(fresh) => *worker = fresh,
                        None => return targets,
                    }
                }
            }
        }
    }
    worker.reset_jobs_done();
    targets
}

async fn export(
    worker: &mut Box<dyn WorkerProcess>,
    samples_dir: &Path,
    sample: &Sample,
    target: &str,
) -> Result<Outcome, docconv_worker::WorkerError> {
    let output = worker.scratch_dir().join(format!("{}.{target}", sample.file_name));
    let request = Convert {
        input_path: samples_dir.join(sample.file_name).to_string_lossy().into_owned(),
        output_path: output.to_string_lossy().into_owned(),
        format: target.into(),
        ..Convert::default()
    };
    let outcome = worker.convert(request, &mut |_| {}).await;
    let _ = tokio::fs::remove_file(&output).await;
    outcome
}
