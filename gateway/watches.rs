//! One upstream `WatchJob` per job, shared by every browser watching it.
//!
//! Each state is received and rendered once, then fanned out to the job's
//! WebSockets; a watcher costs the gateway a socket, a task and a broadcast
//! receiver, and the converter nothing more. The upstream ends with the job,
//! when it breaks off, or (at the next message or heartbeat) once nobody
//! watches any more.
//!
//! With tokens, sharing stays sound: a browser reaches `subscribe` only
//! after its own request's token was accepted (the stream route is behind
//! `auth::require`), so it joins nothing on another's credentials; and the
//! upstream `WatchJob` is opened with the token of the request that opened
//! it, which the converter checked then. A token revoked later stops its
//! holder's next request, not a stream already open: that runs until its
//! job ends or it breaks off, and every browser then reconnects with its
//! own token.

use super::Client;
use super::error::{AppError, deadline};
use super::view;
use axum::extract::ws::Utf8Bytes;
use docconv::proto::v1::{Job, WatchJobRequest, WatchJobResponse, watch_job_response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tonic::Streaming;

/// Frames a slow browser may fall behind by before it skips to newer
/// (complete) states.
const BACKLOG: usize = 16;

#[derive(Clone, Debug)]
pub enum Update {
    /// A rendered Turbo Stream message for one state.
    Frame { sequence: u64, html: Utf8Bytes, ended: bool },
    /// The converter's heartbeat: time to ping the browsers.
    Beat,
    /// The converter's stream broke off: browsers should reconnect.
    Broken,
}

/// What a new watcher gets: the job's current frame, then what follows.
pub struct Subscription {
    pub first: Update,
    pub rest: broadcast::Receiver<Update>,
}

#[derive(Default)]
pub struct Watches {
    jobs: Mutex<HashMap<String, Arc<Shared>>>,
}

struct Shared {
    /// The last frame and the sender, under one lock, so a joining watcher
    /// never misses or repeats a state.
    state: Mutex<(Update, broadcast::Sender<Update>)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, (Update, broadcast::Sender<Update>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn subscribe(&self) -> Subscription {
        let state = self.lock();
        Subscription { first: state.0.clone(), rest: state.1.subscribe() }
    }

    fn publish(&self, update: Update) -> usize {
        let mut state = self.lock();
        if matches!(update, Update::Frame { .. }) {
            state.0 = update.clone();
        }
        let _ = state.1.send(update);
        state.1.receiver_count()
    }
}

impl Watches {
    fn jobs(&self) -> MutexGuard<'_, HashMap<String, Arc<Shared>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches job `id`, joining the upstream watch if there is one.
    /// Unknown jobs fail here, before any WebSocket is opened.
    pub async fn subscribe(
        self: &Arc<Self>,
        client: &mut Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Subscription, AppError> {
        if let Some(shared) = self.jobs().get(id).cloned() {
            return Ok(shared.subscribe());
        }
        let request = || WatchJobRequest { id: id.to_owned() };
        // No second try here: a stream that fails closes with "reconnect",
        // and the page's next attempt may reach another converter.
        let mut upstream = deadline(timeout, client.watch_job(request())).await?.into_inner();
        let snapshot = match deadline(timeout, upstream.message()).await? {
            Some(WatchJobResponse { event: Some(watch_job_response::Event::Job(job)) }) => job,
            _ => {
                return Err(AppError::upstream(format!("the watch of {id} began without a state")));
            }
        };
        let first = frame(&snapshot);
        let ended = snapshot.state().is_terminal();
        let shared = {
            let mut jobs = self.jobs();
            // Another browser may have started the same watch meanwhile.
            if let Some(shared) = jobs.get(id) {
                return Ok(shared.subscribe());
            }
            let shared = Arc::new(Shared { state: Mutex::new((first, broadcast::channel(BACKLOG).0)) });
            if !ended {
                jobs.insert(id.to_owned(), shared.clone());
            }
            shared
        };
        let subscription = shared.subscribe();
        if !ended {
            tokio::spawn(self.clone().pump(id.to_owned(), shared, upstream));
        }
        Ok(subscription)
    }

    /// Receives the job's states and fans them out until the job ends, the
    /// stream breaks, or nobody is watching.
    async fn pump(self: Arc<Self>, id: String, shared: Arc<Shared>, mut upstream: Streaming<WatchJobResponse>) {
        loop {
            let (update, last) = match upstream.message().await {
                Ok(Some(WatchJobResponse { event: Some(watch_job_response::Event::Job(job)) })) => {
                    let ended = job.state().is_terminal();
                    (frame(&job), ended)
                }
                Ok(Some(_)) => (Update::Beat, false),
                Ok(None) | Err(_) => (Update::Broken, true),
            };
            let watchers = shared.publish(update);
            if last || watchers == 0 {
                break;
            }
        }
        let mut jobs = self.jobs();
        if jobs.get(&id).is_some_and(|current| Arc::ptr_eq(current, &shared)) {
            jobs.remove(&id);
        }
    }
}

fn frame(job: &Job) -> Update {
    Update::Frame {
        sequence: job.sequence,
        html: Utf8Bytes::from(view::render_stream_frame(job)),
        ended: job.state().is_terminal(),
    }
}
