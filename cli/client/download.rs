//! Results into place: streamed with `ReadResult` into a temporary file
//! beside the destination, checked against the job's size and SHA-256,
//! fsynced and renamed, so a file under the final name is always whole.
//! An interrupted download leaves its temporary file, named after the
//! destination and the job, and the next download of that job to that
//! place goes on from its end (`ReadResult`'s offset).

use super::Client;
use super::error::ClientError;
use docconv::proto::v1::{Job, JobState, Output, ReadResultRequest};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where a job's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub path: PathBuf,
    /// Hidden, and named for the job, so that only a download of the same
    /// result ever resumes from it.
    pub partial: PathBuf,
}

impl Destination {
    /// `place` is a directory to put the result in under its own name, or
    /// the file to write; none means the current directory.
    pub fn new(place: Option<&Path>, job: &Job) -> Destination {
        let path = match place {
            Some(place) if !place.is_dir() && !place.as_os_str().to_string_lossy().ends_with('/') => place.to_owned(),
            place => place.unwrap_or(Path::new(".")).join(result_name(job)),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = path.with_file_name(format!(".{name}.{}.partial", job.id));
        Destination { path, partial }
    }
}

/// The name the service suggests, used only as a plain file name: a path
/// in it (it comes from the uploaded name) must not lead elsewhere.
pub fn result_name(job: &Job) -> String {
    let suggested = job.output.as_ref().map(|o| o.file_name.as_str()).unwrap_or_default();
    match Path::new(suggested).file_name().and_then(|n| n.to_str()) {
        Some(name) if !name.starts_with('.') => name.to_owned(),
        _ => {
            let extension = if job.target_format.is_empty() { "pdf" } else { &job.target_format };
            format!("{}.{extension}", job.id)
        }
    }
}

/// Downloads the result of a succeeded `job` to `to`, calling
/// `progress(done, total)` as bytes arrive.
pub async fn download(
    client: &mut Client,
    job: &Job,
    to: &Destination,
    progress: impl Fn(u64, u64),
) -> Result<(), ClientError> {
    let output = match (&job.output, job.state()) {
        (Some(output), JobState::Succeeded) => output,
        _ => return Err(ClientError::Protocol(format!("job {} has no result to download", job.id))),
    };
    let shown = to.partial.display();
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&to.partial)
        .await
        .map_err(|e| ClientError::io(format!("creating {shown}"), e))?;
    let mut done = file.metadata().await.map_err(|e| ClientError::io(format!("reading {shown}"), e))?.len();
    let mut hash = Sha256::new();
    if done > output.size_bytes {
        // Not a beginning of this result, whatever it is.
        file.set_len(0).await.map_err(|e| ClientError::io(format!("emptying {shown}"), e))?;
        done = 0;
    }
    if done > 0 {
        hash_prefix(&mut file, &mut hash).await.map_err(|e| ClientError::io(format!("reading {shown}"), e))?;
    }
    progress(done, output.size_bytes);
    let received = receive(client, job, output, (&mut file, &to.partial), &mut hash, done, &progress).await;
    // What arrived is kept for the next attempt, whatever happened.
    let flushed = file.flush().await;
    let resume = || format!("`docconv job download {} -o {}` goes on from there", job.id, to.path.display());
    let done = received.map_err(|e| ClientError::Interrupted { resume: resume(), cause: Box::new(e) })?;
    flushed.map_err(|e| ClientError::io(format!("writing {shown}"), e))?;
    if done != output.size_bytes {
        return Err(ClientError::Protocol(format!(
            "the download stopped at {done} of {} bytes; {}",
            output.size_bytes,
            resume()
        )));
    }
    let digest = docconv::ids::hex(&hash.finalize());
    if !output.sha256.is_empty() && digest != output.sha256 {
        // A resumed download whose first part was not this result's:
        // nothing of it can be trusted.
        let _ = tokio::fs::remove_file(&to.partial).await;
        return Err(ClientError::Protocol(format!(
            "the downloaded result does not match its SHA-256 ({digest}, expected {}); it was deleted, download it again",
            output.sha256
        )));
    }
    file.sync_all().await.map_err(|e| ClientError::io(format!("writing {shown}"), e))?;
    drop(file);
    tokio::fs::rename(&to.partial, &to.path)
        .await
        .map_err(|e| ClientError::io(format!("renaming {shown} to {}", to.path.display()), e))?;
    // The rename itself lasts only once its directory is on disk.
    let dir = to.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(dir) = tokio::fs::File::open(dir).await {
        dir.sync_all().await.map_err(|e| ClientError::io(format!("syncing {}", dir_name(to)), e))?;
    }
    Ok(())
}

fn dir_name(to: &Destination) -> String {
    to.path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into())
}

async fn hash_prefix(file: &mut tokio::fs::File, hash: &mut Sha256) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        hash.update(&buffer[..read]);
    }
}

/// Appends the result from `offset` on; returns how many bytes the file
/// then holds.
async fn receive(
    client: &mut Client,
    job: &Job,
    output: &Output,
    (file, path): (&mut tokio::fs::File, &Path),
    hash: &mut Sha256,
    offset: u64,
    progress: &impl Fn(u64, u64),
) -> Result<u64, ClientError> {
    let mut done = offset;
    // ReadResult refuses an offset at the end (there is nothing to read).
    if done == output.size_bytes {
        return Ok(done);
    }
    let request = ReadResultRequest { id: job.id.clone(), offset, limit: 0 };
    let mut stream =
        client.read_result(request).await.map_err(ClientError::rpc("downloading the result"))?.into_inner();
    while let Some(chunk) = stream.message().await.map_err(ClientError::rpc("downloading the result"))? {
        if chunk.offset != done {
            return Err(ClientError::Protocol(format!(
                "a chunk at offset {} arrived where {done} was due",
                chunk.offset
            )));
        }
        file.write_all(&chunk.data).await.map_err(|e| ClientError::io(format!("writing {}", path.display()), e))?;
        hash.update(&chunk.data);
        done += chunk.data.len() as u64;
        progress(done, output.size_bytes);
    }
    Ok(done)
}
