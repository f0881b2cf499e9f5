//! Span builders for this crate's tests.

use std::sync::Arc;

use sextant_model::{KeyValue, Link, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

pub(crate) const MS: u64 = 1_000_000;
pub(crate) const SECOND: u64 = 1_000_000_000;
/// A unix time in nanoseconds that is a multiple of 15 s (1,700,000,010 s = 15 × 113,333,334).
pub(crate) const T0: u64 = 1_700_000_010 * SECOND;

pub(crate) fn trace_id(n: u8) -> TraceId {
    TraceId([n; 16])
}

pub(crate) fn span_id(n: u8) -> SpanId {
    SpanId([n; 8])
}

/// A span of `service` ending at `end_unix_nanos` after `duration_nanos`, with trace ID
/// `[trace; 16]` and span ID `[span; 8]`.
pub(crate) fn span(
    service: &str,
    name: &str,
    kind: SpanKind,
    (trace, span): (u8, u8),
    end_unix_nanos: u64,
    duration_nanos: u64,
) -> Span {
    let mut s = Span::new(trace_id(trace), span_id(span), name, end_unix_nanos - duration_nanos, end_unix_nanos);
    s.kind = kind;
    s.resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], dropped_attributes_count: 0 });
    s
}

pub(crate) fn with_parent(mut s: Span, parent: u8) -> Span {
    s.parent_span_id = Some(span_id(parent));
    s
}

pub(crate) fn with_link(mut s: Span, (trace, span): (u8, u8)) -> Span {
    s.links.push(Link {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        trace_state: String::new(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        flags: 0,
    });
    s
}

pub(crate) fn with_attribute(mut s: Span, key: &str, value: &str) -> Span {
    s.attributes.push(KeyValue::string(key, value));
    s
}

pub(crate) fn with_resource_attribute(mut s: Span, key: &str, value: &str) -> Span {
    Arc::make_mut(&mut s.resource).attributes.push(KeyValue::string(key, value));
    s
}

pub(crate) fn with_error(mut s: Span) -> Span {
    s.status_code = StatusCode::Error;
    s
}
