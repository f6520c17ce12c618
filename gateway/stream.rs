//! `GET /jobs/{id}/stream`: a WebSocket carrying the job's states as Turbo
//! Stream messages, each re-rendering the job card from the same partial as
//! the page. The states come from the job's shared watch (`watches`).
//!
//! Close codes tell the page what to do: 1000 after the final state (done,
//! do not reconnect); 1013 when the converter's stream broke off (reconnect;
//! the new stream starts with the current state, so nothing is lost).

use super::AppState;
use super::auth::Caller;
use super::error::AppError;
use super::watches::{Subscription, Update};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use docconv::ids;
use tokio::sync::broadcast;

pub const CLOSE_DONE: u16 = 1000;
pub const CLOSE_RECONNECT: u16 = 1013;

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
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
    // Join or open the watch before upgrading: an unknown job is a plain
    // 404, not a socket that closes at once. This runs only once the
    // request's own token was accepted (`auth::require`), so no browser
    // joins a shared watch on the strength of another's; a watch opened
    // here carries this request's token upstream.
    let subscription = state.watches.subscribe(&mut state.client(&caller), &id, state.timeout()).await?;
    // Frames go out one by one and nothing large comes in: small buffers
    // keep a watching browser cheap (tungstenite's defaults are 128 KiB).
    let upgrade = upgrade.read_buffer_size(4096).write_buffer_size(0).max_message_size(64 * 1024);
    let open = docconv::metrics::Active::of(&state.config.metrics.websockets);
    Ok(upgrade.on_upgrade(move |socket| async move {
        forward(socket, subscription).await;
        drop(open);
    }))
}

/// Browsers always send `Origin` on WebSocket requests (and on form
/// posts); a page on another site must not be able to read job states or
/// post uploads. Clients that are not browsers send none and are let
/// through (they could call the converter anyway).
pub(super) fn origin_allowed(public_origin: Option<&str>, headers: &HeaderMap) -> bool {
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

async fn forward(mut socket: WebSocket, subscription: Subscription) {
    let Subscription { first, mut rest } = subscription;
    let mut last_sequence = 0;
    let mut next = Some(first);
    loop {
        let update = match next.take() {
            Some(update) => update,
            None => tokio::select! {
                update = rest.recv() => match update {
                    Ok(update) => update,
                    // Too far behind: the next frame is a complete state.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => Update::Broken,
                },
                incoming = socket.recv() => match incoming {
                    // The browser went away; the shared watch notices when
                    // nobody is left.
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    // Pongs, and anything a page might send, need no answer.
                    Some(Ok(_)) => continue,
                },
            },
        };
        match update {
            // Already sent (a joiner's first frame may repeat the last one).
            Update::Frame { sequence, .. } if sequence <= last_sequence => {}
            Update::Frame { sequence, html, ended } => {
                last_sequence = sequence;
                if socket.send(Message::Text(html)).await.is_err() {
                    return;
                }
                if ended {
                    return close(socket, CLOSE_DONE, "the job has ended").await;
                }
            }
            // Keep proxies between us and the browser from closing a quiet socket.
            Update::Beat => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            Update::Broken => {
                return close(socket, CLOSE_RECONNECT, "updates were interrupted; reconnect").await;
            }
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
