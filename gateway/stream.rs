//! `GET /jobs/{id}/stream`: a WebSocket carrying the job's states as Turbo
//! Stream messages, each re-rendering the job card from the same partial as
//! the page.
//!
//! Close codes tell the page what to do: 1000 after the final state (done,
//! do not reconnect); 1013 when the converter's stream broke off (reconnect;
//! the new stream starts with the current state, so nothing is lost).

use super::AppState;
use super::error::{AppError, deadline};
use super::view;
use crate::converter::ids;
use crate::converter::store::is_terminal;
use crate::proto::v1::{WatchJobRequest, WatchJobResponse, watch_job_response};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use std::sync::Arc;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use tonic::Streaming;

pub const CLOSE_DONE: u16 = 1000;
pub const CLOSE_RECONNECT: u16 = 1013;

pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !origin_allowed(state.config.public_origin().as_deref(), &headers) {
        return Err(AppError::Forbidden("This page may not be watched from another site.".into()));
    }
    if !ids::is_valid(&id) {
        return Err(AppError::NotFound);
    }
    // Open the watch before upgrading: an unknown job is a plain 404, not a
    // socket that closes at once.
    let request = WatchJobRequest { id };
    let watch = deadline(state.timeout(), state.client().watch_job(request)).await?.into_inner();
    // Frames go out one by one and nothing large comes in: small buffers
    // keep a watching browser cheap (tungstenite's defaults are 128 KiB).
    let upgrade = upgrade.read_buffer_size(4096).write_buffer_size(0).max_message_size(64 * 1024);
    let frames = state.frames.clone();
    Ok(upgrade.on_upgrade(move |socket| forward(socket, watch, frames)))
}

/// The last rendered frame of each watched job, shared by all its
/// watchers: a state change reaching a thousand browsers is rendered once.
#[derive(Default)]
pub struct FrameCache {
    frames: std::sync::Mutex<std::collections::HashMap<String, (u64, Utf8Bytes)>>,
}

/// Jobs watched at once above which the cache starts afresh; a bound, not
/// a tuning knob (a miss only costs a render).
const CACHED_JOBS: usize = 4096;

impl FrameCache {
    fn frame(&self, job: &crate::proto::v1::Job) -> Utf8Bytes {
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((sequence, frame)) = frames.get(&job.id) {
            if *sequence == job.sequence {
                return frame.clone();
            }
        }
        let frame = Utf8Bytes::from(view::render_stream_frame(job));
        if frames.len() >= CACHED_JOBS {
            frames.clear();
        }
        frames.insert(job.id.clone(), (job.sequence, frame.clone()));
        frame
    }
}

/// Browsers always send `Origin` on WebSocket requests; a page on another
/// site must not be able to read job states. Clients that are not browsers
/// send none and are let through (they could call the converter anyway).
fn origin_allowed(public_origin: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.to_ascii_lowercase();
    match public_origin {
        Some(expected) => origin == expected,
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_ascii_lowercase();
            !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        }
    }
}

async fn forward(mut socket: WebSocket, mut watch: Streaming<WatchJobResponse>, frames: Arc<FrameCache>) {
    loop {
        tokio::select! {
            message = watch.message() => match message {
                Ok(Some(WatchJobResponse { event: Some(watch_job_response::Event::Job(job)) })) => {
                    let ended = is_terminal(job.state());
                    let frame = Message::Text(frames.frame(&job));
                    if socket.send(frame).await.is_err() {
                        return;
                    }
                    if ended {
                        close(socket, CLOSE_DONE, "the job has ended").await;
                        return;
                    }
                }
                // The converter's heartbeat: keep proxies between us and the
                // browser from closing a quiet socket.
                Ok(Some(_)) => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    close(socket, CLOSE_RECONNECT, "updates were interrupted; reconnect").await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                // The browser went away: returning drops the gRPC stream.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pongs, and anything a page might send, need no answer.
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn same_origin_only() {
        assert!(origin_allowed(None, &headers(Some("http://localhost:8080"), "localhost:8080")));
        assert!(!origin_allowed(None, &headers(Some("http://evil.example"), "localhost:8080")));
        assert!(origin_allowed(None, &headers(None, "localhost:8080")));
        let public = Some("https://convert.example.com");
        assert!(origin_allowed(public, &headers(Some("https://convert.example.com"), "10.0.0.5:8080")));
        assert!(!origin_allowed(public, &headers(Some("http://localhost:8080"), "localhost:8080")));
    }
}
