//! `POST /convert`: each uploaded file streams into its own `Submit` call as
//! it arrives, so no file is ever held whole in memory, and the size limit
//! is enforced while the bytes come in.

use super::AppState;
use super::error::{AppError, deadline};
use super::view::human_size;
use crate::converter::service::MAX_CHUNK;
use crate::proto::v1::{Job, ListFormatsRequest, SubmitHeader, SubmitRequest, submit_request};
use axum::extract::multipart::Field;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tokio::sync::mpsc;
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
}

pub async fn convert(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    match submit_all(&state, multipart).await {
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

fn links(job: &Job) -> JobLinks {
    JobLinks {
        id: job.id.clone(),
        file_name: job.file_name.clone(),
        state: job.state().as_str_name().trim_start_matches("JOB_STATE_").to_lowercase(),
        status_url: format!("/jobs/{}", job.id),
        stream_url: format!("/jobs/{}/stream", job.id),
        download_url: format!("/jobs/{}/download", job.id),
    }
}

async fn submit_all(state: &AppState, mut multipart: Multipart) -> Result<Vec<Job>, AppError> {
    let formats = deadline(state.timeout(), state.client().list_formats(ListFormatsRequest {})).await?;
    let max_bytes = formats.into_inner().max_upload_bytes;
    let mut jobs = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad_form)? {
        // Only file fields carry documents; a file input left empty sends a
        // part with an empty name.
        let Some(file_name) = field.file_name().map(str::to_owned).filter(|n| !n.is_empty()) else {
            continue;
        };
        if jobs.len() == state.config.max_files {
            return Err(AppError::TooLarge(format!(
                "At most {} documents can be converted at once.",
                state.config.max_files
            )));
        }
        jobs.push(submit_one(state, field, file_name, max_bytes).await?);
    }
    if jobs.is_empty() {
        return Err(AppError::BadRequest("Choose at least one document to convert.".into()));
    }
    Ok(jobs)
}

async fn submit_one(state: &AppState, mut field: Field<'_>, file_name: String, max_bytes: u64) -> Result<Job, AppError> {
    let content_type = field.content_type().unwrap_or_default().to_owned();
    let (tx, rx) = mpsc::channel::<SubmitRequest>(4);
    let header = SubmitHeader { file_name: file_name.clone(), content_type, ..SubmitHeader::default() };
    tx.send(SubmitRequest { payload: Some(submit_request::Payload::Header(header)) })
        .await
        .expect("the receiver is alive until the call starts");
    let mut client = state.client();
    let call = tokio::spawn(async move { client.submit(ReceiverStream::new(rx)).await });

    let mut size = 0u64;
    let mut pending = Vec::with_capacity(SEND_SIZE);
    let too_large = || AppError::TooLarge(format!("{file_name} is larger than the limit of {}.", human_size(max_bytes)));
    'read: loop {
        // A client that stops sending must not hold the upload open forever.
        let chunk = match tokio::time::timeout(state.timeout() * 4, field.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                call.abort();
                return Err(bad_form(e));
            }
            Err(_) => {
                call.abort();
                return Err(AppError::BadRequest("The upload stalled and was abandoned.".into()));
            }
        };
        size += chunk.len() as u64;
        if size > max_bytes {
            // Dropping the sender without finishing cancels the call.
            call.abort();
            return Err(too_large());
        }
        pending.extend_from_slice(&chunk);
        while pending.len() >= SEND_SIZE {
            let data: Vec<u8> = pending.drain(..SEND_SIZE.min(MAX_CHUNK)).collect();
            if tx.send(SubmitRequest { payload: Some(submit_request::Payload::Data(data)) }).await.is_err() {
                // The converter ended the call early; its answer says why.
                pending.clear();
                break 'read;
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(SubmitRequest { payload: Some(submit_request::Payload::Data(pending)) }).await;
    }
    drop(tx);
    match call.await {
        Ok(result) => Ok(result?.into_inner()),
        Err(e) => Err(AppError::Upstream(format!("submit task: {e}"))),
    }
}

fn bad_form(error: axum::extract::multipart::MultipartError) -> AppError {
    AppError::BadRequest(format!("The upload could not be read: {}", error.body_text()))
}
