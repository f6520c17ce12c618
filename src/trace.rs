//! W3C Trace Context (`traceparent`): one trace id from the browser or
//! client through the gateway and the converter to the job's stages, so
//! that every log line about a request or a job can be found by it.
//!
//! The header is one fixed-width line (`00-<trace>-<parent>-<flags>`); a
//! tracing SDK is not needed to read, make or pass it on. With the `otel`
//! feature, `adopt` also makes a `tracing` span part of the trace for
//! OpenTelemetry, when a process exports spans.

use std::fmt;

/// The metadata key and HTTP header name.
pub const HEADER: &str = "traceparent";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A new trace, started here.
    pub fn new_root() -> TraceParent {
        let mut trace_id = [0u8; 16];
        getrandom::fill(&mut trace_id).expect("the OS random source failed");
        TraceParent { trace_id, parent_id: span_id(), flags: 0 }
    }

    /// Reads a header value; `None` for anything the specification says to
    /// ignore (then a new trace starts). Only version 00 is understood;
    /// later versions are read as 00, as the specification asks.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let (trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace)?;
        let parent_id: [u8; 8] = hex_bytes(parent)?;
        let [flags] = hex_bytes::<1>(flags)?;
        let valid = trace_id != [0; 16] && parent_id != [0; 8];
        valid.then_some(TraceParent { trace_id, parent_id, flags })
    }

    /// The same trace, with this hop as the parent of the next.
    pub fn child(&self) -> TraceParent {
        TraceParent { parent_id: span_id(), ..*self }
    }

    /// The hop of this trace that `span` is, as the next hop's parent.
    /// When spans are exported (OpenTelemetry), `span` becomes the child
    /// of `parent` (or the root of a new trace) and the result names it, so
    /// that the next hop links to a span that exists; otherwise a child of
    /// `parent`, or a new trace. Its trace id is recorded as the span's
    /// `trace_id` field.
    #[cfg(feature = "otel")]
    pub fn adopt(span: &tracing::Span, parent: Option<TraceParent>) -> TraceParent {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if let Some(parent) = parent {
            let remote = SpanContext::new(
                TraceId::from_bytes(parent.trace_id),
                SpanId::from_bytes(parent.parent_id),
                TraceFlags::new(parent.flags),
                true,
                TraceState::default(),
            );
            // Fails only when spans are not exported, which the check below sees.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        let context = span.context();
        let exported = context.span().span_context().clone();
        let hop = match exported.is_valid() {
            true => TraceParent {
                trace_id: exported.trace_id().to_bytes(),
                parent_id: exported.span_id().to_bytes(),
                flags: exported.trace_flags().to_u8(),
            },
            false => parent.map_or_else(TraceParent::new_root, |parent| parent.child()),
        };
        // Log lines show the id through the span's field (a no-op for a
        // span declared without one).
        span.record("trace_id", hop.trace_id());
        hop
    }

    /// The trace id in hex, as logs show it.
    pub fn trace_id(&self) -> String {
        crate::ids::hex(&self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (trace, parent) = (crate::ids::hex(&self.trace_id), crate::ids::hex(&self.parent_id));
        write!(f, "00-{trace}-{parent}-{:02x}", self.flags)
    }
}

fn span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).expect("the OS random source failed");
    id
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_read_and_passed_on_with_a_new_parent() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(header).unwrap();
        assert_eq!(parent.to_string(), header);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.to_string(), header);
        assert!(child.to_string().ends_with("-01"), "flags are kept");
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(TraceParent::parse(future).is_some(), "a later version is read as far as 00 goes");
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
    }
}
