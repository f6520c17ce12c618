//! The HTML pages, rendered from the converter's current answers; the
//! gateway itself keeps no job state.

use super::AppState;
use super::auth::Caller;
use super::error::{AppError, read};
use super::view;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use docconv::ids;
use docconv::proto::v1::{GetJobRequest, Job, ListFormatsRequest};
use serde::Deserialize;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

pub async fn index(State(state): State<AppState>, caller: Caller) -> Result<Html<String>, AppError> {
    let formats = read(state.timeout(), state.others, || {
        let mut client = state.client(&caller);
        async move { client.list_formats(ListFormatsRequest {}).await }
    })
    .await?
    .into_inner();
    Ok(Html(view::render_index(&formats, state.config.max_files)))
}

pub async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let job = get_job(&state, &caller, &id).await?;
    Ok(Html(view::render_job_page(&job)))
}

#[derive(Deserialize)]
pub struct BatchQuery {
    /// Job ids, comma-separated.
    ids: String,
}

/// The status of several jobs, as after an upload of several files.
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<BatchQuery>,
) -> Result<Html<String>, AppError> {
    let ids: Vec<&str> = query.ids.split(',').filter(|s| !s.is_empty()).collect();
    if ids.is_empty() || ids.len() > state.config.max_files {
        return Err(AppError::BadRequest("name between one and the upload limit of jobs".into()));
    }
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        jobs.push(get_job(&state, &caller, id).await?);
    }
    Ok(Html(view::render_batch(&jobs)))
}

/// A job by id; malformed ids are not found without asking the converter.
pub async fn get_job(state: &AppState, caller: &Caller, id: &str) -> Result<Job, AppError> {
    if !ids::is_valid(id) {
        return Err(AppError::NotFound);
    }
    Ok(read(state.timeout(), state.others, || {
        let (mut client, request) = (state.client(caller), GetJobRequest { id: id.into() });
        async move { client.get_job(request).await }
    })
    .await?
    .into_inner())
}

/// Alive: the gateway answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the converter answers its health check with SERVING.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut health = HealthClient::new(state.channel.clone());
    let check = health.check(HealthCheckRequest { service: String::new() });
    match tokio::time::timeout(state.timeout(), check).await {
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving => "ready\n".into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the converter is not ready\n").into_response(),
    }
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
