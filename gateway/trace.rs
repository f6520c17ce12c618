//! Each request's place in a trace: the caller's `traceparent` when it
//! sent a valid one, else a new trace. Its id is on the request's log
//! lines and goes to the converter with every call made for the request
//! (see `auth::Caller`), and from there onto the job's.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use docconv::trace::{HEADER, TraceParent};
use tracing::Instrument;

/// This request's hop of the trace.
#[derive(Clone, Copy)]
pub struct Trace(pub TraceParent);

pub async fn follow(mut request: Request, next: Next) -> Response {
    let from_caller = request.headers().get(HEADER).and_then(|value| value.to_str().ok()).and_then(TraceParent::parse);
    let span = tracing::info_span!(
        "request",
        trace_id = tracing::field::Empty,
        method = %request.method(),
        path = %request.uri().path()
    );
    let trace = TraceParent::adopt(&span, from_caller);
    request.extensions_mut().insert(Trace(trace));
    next.run(request).instrument(span).await
}
