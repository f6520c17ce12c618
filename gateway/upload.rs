//! `POST /convert`: each uploaded file streams into a `Submit` call as it
//! arrives, so no file is ever held whole in memory, and the size limit is
//! enforced while the bytes come in. Option fields come first; with `merge`
//! all files go into one call, one document after the other.

use super::AppState;
use super::auth::Caller;
use super::error::{AppError, deadline, wants_json};
use super::form::UploadForm;
use super::stream::origin_allowed;
use super::view::human_size;
use axum::Extension;
use axum::extract::multipart::Field;
use axum::extract::{ConnectInfo, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use docconv::limits::MAX_CHUNK;
use docconv::proto::v1::{DocumentHeader, Job, SubmitHeader, SubmitRequest, submit_request};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// Bytes gathered before they go to the converter as one message: fewer,
/// larger messages, while memory per upload stays small.
const SEND_SIZE: usize = 256 * 1024;

#[derive(Serialize)]
struct JobLinks {
    id: String,
    file_name: String,
    state: String,
    status_url: String,
    stream_url: String,
    download_url: String,
    preview_url: String,
}

pub async fn convert(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let wants_json = wants_json(&headers);
    // One client may not hold every upload slot (and converter stream).
    let _slot = match peer.map(|Extension(ConnectInfo(peer))| UploadSlot::take(&state, peer.ip())) {
        Some(Err(refused)) => return if wants_json { refused.into_json_response() } else { refused.into_response() },
        Some(Ok(slot)) => Some(slot),
        None => None,
    };
    // Browsers send remembered credentials with a form posted from any
    // site; a page elsewhere must not spend this site's users' conversions.
    if !origin_allowed(state.config.public_origin().as_deref(), &headers) {
        let refused = AppError::Forbidden("Uploads are accepted from this site's own page only.".into());
        return if wants_json { refused.into_json_response() } else { refused.into_response() };
    }
    let submitted = submit_all(&state, &caller, multipart).await;
    if let Ok(jobs) = &submitted {
        let ids: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
        tracing::info!(jobs = ?ids, "upload submitted");
    }
    match submitted {
        Ok(jobs) if wants_json => {
            let links: Vec<JobLinks> = jobs.iter().map(links).collect();
            (StatusCode::CREATED, axum::Json(serde_json::json!({ "jobs": links }))).into_response()
        }
        Ok(jobs) => match jobs.as_slice() {
            [job] => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
            jobs => {
                let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
                Redirect::to(&format!("/batch?ids={}", ids.join(","))).into_response()
            }
        },
        Err(error) if wants_json => error.into_json_response(),
        Err(error) => error.into_response(),
    }
}

/// One of a client's uploads in progress; its place is given back on drop.
struct UploadSlot {
    uploads: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl UploadSlot {
    fn take(state: &AppState, client: IpAddr) -> Result<UploadSlot, AppError> {
        let mut uploads = state.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let count = uploads.entry(client).or_default();
        if *count >= state.config.max_uploads_per_client {
            return Err(AppError::Overloaded {
                message: format!(
                    "At most {} uploads from one address at a time; wait for one to finish.",
                    state.config.max_uploads_per_client
                ),
                retry_after_secs: 5,
            });
        }
        *count += 1;
        Ok(UploadSlot { uploads: state.uploads.clone(), client })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = uploads.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                uploads.remove(&self.client);
            }
        }
    }
}

fn links(job: &Job) -> JobLinks {
    JobLinks {
        id: job.id.clone(),
        file_name: job.file_name.clone(),
        state: job.state().as_str_name().trim_start_matches("JOB_STATE_").to_lowercase(),
        status_url: format!("/jobs/{}", job.id),
        stream_url: format!("/jobs/{}/stream", job.id),
        download_url: format!("/jobs/{}/download", job.id),
        preview_url: format!("/jobs/{}/preview.png", job.id),
    }
}

/// Submits every file of the form, within the upload deadline. A request
/// refused part-way (a file too many or too large, a bad field, too slow)
/// cancels the jobs it had already submitted: the client is never told
/// their ids, so nobody would ever watch, read or cancel them.
async fn submit_all(state: &AppState, caller: &Caller, multipart: Multipart) -> Result<Vec<Job>, AppError> {
    let limit = state.config.upload_timeout();
    let mut jobs = Vec::new();
    let submitted = match tokio::time::timeout(limit, submit_into(state, caller, multipart, &mut jobs)).await {
        Ok(submitted) => submitted,
        Err(_) => Err(AppError::TooSlow(format!("The upload took longer than {} s and was cut off.", limit.as_secs()))),
    };
    if let Err(error) = submitted {
        for job in &jobs {
            let request = docconv::proto::v1::CancelJobRequest { id: job.id.clone() };
            if let Err(e) = deadline(state.timeout(), state.client(caller).cancel_job(request)).await {
                tracing::warn!(job = %job.id, "could not cancel a job of a refused upload: {e}");
            }
        }
        return Err(error);
    }
    Ok(jobs)
}

async fn submit_into(
    state: &AppState,
    caller: &Caller,
    mut multipart: Multipart,
    jobs: &mut Vec<Job>,
) -> Result<(), AppError> {
    let max_bytes = state.upload_limit(caller).await?;
    let mut form = UploadForm::default();
    // Every field that is not understood, so one answer names them all.
    let mut problems: Vec<String> = Vec::new();
    let mut files = 0;
    // With merge, the one call all files go into.
    let mut merging: Option<Submission> = None;
    while let Some(field) = multipart.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        // A file input left empty sends a part with an empty file name.
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            if files > 0 {
                return Err(AppError::BadRequest(format!("The field {name} must come before the files.")));
            }
            let value = field.text().await.map_err(bad_form)?;
            if let Err(problem) = form.set(&name, &value) {
                problems.push(problem.message());
            }
            continue;
        };
        if file_name.is_empty() {
            continue;
        }
        if !problems.is_empty() {
            return Err(AppError::BadRequest(problems.join(" ")));
        }
        files += 1;
        if files > state.config.max_files {
            return Err(AppError::TooLarge(format!(
                "At most {} documents can be converted at once.",
                state.config.max_files
            )));
        }
        let content_type = field.content_type().unwrap_or_default().to_owned();
        match merging.as_mut() {
            Some(submission) => {
                submission
                    .next_document(DocumentHeader { file_name: file_name.clone(), content_type, ..Default::default() })
                    .await;
                submission.stream(state, field, &file_name, max_bytes).await?;
            }
            None => {
                let header = SubmitHeader {
                    file_name: file_name.clone(),
                    content_type,
                    target_format: form.target_format.clone(),
                    options: Some(form.options.clone()),
                    ..Default::default()
                };
                let mut submission = Submission::open(state, caller, header).await;
                submission.stream(state, field, &file_name, max_bytes).await?;
                if form.merge {
                    merging = Some(submission);
                } else {
                    jobs.push(submission.close().await?);
                }
            }
        }
    }
    if let Some(submission) = merging {
        jobs.push(submission.close().await?);
    }
    if !problems.is_empty() {
        return Err(AppError::BadRequest(problems.join(" ")));
    }
    if jobs.is_empty() {
        return Err(AppError::BadRequest("Choose at least one document to convert.".into()));
    }
    Ok(())
}

/// One `Submit` call in flight, fed message by message.
///
/// The converter takes a closed stream for a complete upload, so an upload
/// that does not complete (an error, a slow client cut off, the browser
/// gone) must end by cancelling the call, never by dropping the sender
/// first: see `Drop`.
struct Submission {
    tx: Option<mpsc::Sender<SubmitRequest>>,
    call: Option<JoinHandle<Result<tonic::Response<Job>, tonic::Status>>>,
    /// Bytes sent in this call, for the limit (which covers a whole merge).
    size: u64,
    /// The converter ended the call early; its answer says why.
    ended: bool,
    /// When the upload began, for its minimum rate.
    started: Instant,
}

impl Drop for Submission {
    fn drop(&mut self) {
        let (Some(call), Some(tx)) = (self.call.take(), self.tx.take()) else { return };
        call.abort();
        // The sender goes only once the call is gone, so the converter
        // never sees the stream end as if the upload were complete.
        tokio::spawn(async move {
            let _ = call.await;
            drop(tx);
        });
    }
}

/// Uploads slower than this on average, once `RATE_GRACE` has passed, are
/// cut off: a client trickling bytes must not hold a connection, a
/// converter upload and memory indefinitely.
const MIN_RATE: u64 = 4 * 1024;
const RATE_GRACE: Duration = Duration::from_secs(10);

impl Submission {
    async fn open(state: &AppState, caller: &Caller, header: SubmitHeader) -> Submission {
        let (tx, rx) = mpsc::channel::<SubmitRequest>(4);
        let mut client = state.client(caller);
        let call = tokio::spawn(async move { client.submit(ReceiverStream::new(rx)).await });
        let mut submission =
            Submission { tx: Some(tx), call: Some(call), size: 0, ended: false, started: Instant::now() };
        submission.send(submit_request::Payload::Header(header)).await;
        submission
    }

    async fn send(&mut self, payload: submit_request::Payload) {
        let Some(tx) = self.tx.as_ref().filter(|_| !self.ended) else { return };
        if tx.send(SubmitRequest { payload: Some(payload) }).await.is_err() {
            self.ended = true;
        }
    }

    async fn next_document(&mut self, header: DocumentHeader) {
        self.send(submit_request::Payload::NextDocument(header)).await;
    }

    /// Sends one file's bytes as they arrive.
    async fn stream(
        &mut self,
        state: &AppState,
        mut field: Field<'_>,
        file_name: &str,
        max_bytes: u64,
    ) -> Result<(), AppError> {
        let mut pending = Vec::with_capacity(SEND_SIZE);
        loop {
            // A client that stops sending must not hold the upload open forever.
            let chunk = match tokio::time::timeout(state.timeout() * 4, field.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(self.abandon(bad_form(e))),
                Err(_) => {
                    return Err(self.abandon(AppError::BadRequest("The upload stalled and was abandoned.".into())));
                }
            };
            self.size += chunk.len() as u64;
            let elapsed = self.started.elapsed();
            if elapsed > RATE_GRACE && self.size < MIN_RATE * elapsed.as_secs() {
                let rate = human_size(MIN_RATE);
                return Err(self.abandon(AppError::TooSlow(format!(
                    "The upload of {file_name} was slower than {rate} per second and was cut off."
                ))));
            }
            if self.size > max_bytes {
                let limit = human_size(max_bytes);
                return Err(
                    self.abandon(AppError::TooLarge(format!("{file_name} is larger than the limit of {limit}.")))
                );
            }
            state.config.metrics.received.inc_by(chunk.len() as u64);
            pending.extend_from_slice(&chunk);
            while pending.len() >= SEND_SIZE {
                let data: Vec<u8> = pending.drain(..SEND_SIZE.min(MAX_CHUNK)).collect();
                self.send(submit_request::Payload::Data(data)).await;
            }
            if self.ended {
                break;
            }
        }
        if !pending.is_empty() {
            self.send(submit_request::Payload::Data(pending)).await;
        }
        Ok(())
    }

    /// Cancels the call (dropping the sender unfinished would look like a
    /// complete upload) and returns `error`.
    fn abandon(&self, error: AppError) -> AppError {
        if let Some(call) = &self.call {
            call.abort();
        }
        error
    }

    /// Ends the upload and returns the converter's answer.
    async fn close(mut self) -> Result<Job, AppError> {
        drop(self.tx.take());
        let call = self.call.take().expect("a submission is closed once");
        match call.await {
            Ok(result) => Ok(result?.into_inner()),
            Err(e) => Err(AppError::Upstream { doing: "running the submit task".into(), cause: Some(Box::new(e)) }),
        }
    }
}

fn bad_form(error: axum::extract::multipart::MultipartError) -> AppError {
    AppError::BadRequest(format!("The upload could not be read: {}", error.body_text()))
}
