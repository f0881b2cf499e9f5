//! Business processes and asynchronous flows: the traces that carry one process ID
//! (`business_process.id` by default) assembled into one timeline, and the producer →
//! consumer hops that stitch traces together across a message queue.
//!
//! - [`hops`]: pure: finds producer → consumer hops among spans, by span link and by
//!   `messaging.message.id`, with the queue wait of each;
//! - [`timeline`]: pure: a process's traces as steps ordered by start, the gaps between
//!   consecutive steps and the hops between them;
//! - [`find`]: the engine-facing part: which traces carry a process ID (the engine's
//!   indexed attribute lookup, bounded by [`Limits`]), process search, and the links and
//!   backlinks of one trace.
//!
//! A span belongs to a process when one of the process keys holds the ID as a span or a
//! resource attribute (a string, or any value whose text is the ID). Baggage entries count
//! when the instrumentation records them as span attributes under one of the keys (the
//! OpenTelemetry baggage span processor copies them under their own key).
//!
//! Definitions used throughout:
//! - a **step** is one trace of the process; its start and end are the earliest start and
//!   latest end of all its spans (not only the spans that carry the ID);
//! - the **gap** between consecutive steps (ordered by start, then trace ID) is the next
//!   step's start minus the previous step's end; negative when they overlap;
//! - the **queue wait** of a hop is the consumer span's start minus the producer span's
//!   END: the producer span covers the send until the broker accepted the message, so its
//!   end is when the message entered the queue. Negative when clocks disagree.

pub mod find;
pub mod hops;
pub mod timeline;

use sextant_model::{AnyValue, Span, find_attribute};

/// The attribute key that holds a business process ID unless configured otherwise.
pub const DEFAULT_PROCESS_KEY: &str = "business_process.id";

/// The default list of process keys: [`DEFAULT_PROCESS_KEY`] alone.
pub fn default_process_keys() -> Vec<String> {
    vec![DEFAULT_PROCESS_KEY.to_string()]
}

/// The attribute keys the engine indexes at ingest for processes: the process keys, for the
/// process lookup, and [`hops::MESSAGE_ID_KEY`], for the backlink search by message ID.
pub fn indexed_attribute_keys(process_keys: &[String]) -> Vec<String> {
    let mut keys = process_keys.to_vec();
    if !keys.iter().any(|k| k == hops::MESSAGE_ID_KEY) {
        keys.push(hops::MESSAGE_ID_KEY.to_string());
    }
    keys
}

/// How much one answer may read; beyond, the answer says `partial: true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Traces assembled into one process (the newest are kept).
    pub max_traces: usize,
    /// Spans of those traces, all together.
    pub max_spans: usize,
    /// Traces a process search or a backlink search reads.
    pub max_scanned_traces: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_traces: 1_000, max_spans: 100_000, max_scanned_traces: 2_000 }
    }
}

/// The text of a process ID attribute value: strings as they are, other scalars as their
/// text (an integer order number is a process ID too).
fn value_text(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::String(s) if !s.is_empty() => Some(s.to_string()),
        AnyValue::String(_) => None,
        AnyValue::Int(i) => Some(i.to_string()),
        AnyValue::Bool(_) | AnyValue::Double(_) => Some(value.to_string()),
        _ => None,
    }
}

/// The process IDs a span carries under any of `keys`, on the span or its resource, each
/// once, in the order of the keys.
pub fn process_ids(span: &Span, keys: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for key in keys {
        for value in [find_attribute(&span.attributes, key), find_attribute(&span.resource.attributes, key)]
            .into_iter()
            .flatten()
        {
            if let Some(id) = value_text(value)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
    }
    ids
}

/// Whether a span carries process ID `id` under any of `keys`.
pub fn carries(span: &Span, keys: &[String], id: &str) -> bool {
    keys.iter().any(|key| {
        [find_attribute(&span.attributes, key), find_attribute(&span.resource.attributes, key)]
            .into_iter()
            .flatten()
            .any(|value| value_text(value).as_deref() == Some(id))
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use sextant_model::{KeyValue, Link, Resource, Span, SpanId, SpanKind, TraceId};

    pub fn trace_id(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    pub fn span(trace: u8, id: u8, service: &str, start: u64, end: u64) -> Span {
        let mut span = Span::new(trace_id(trace), SpanId([id; 8]), format!("op{id}"), start, end);
        span.resource =
            Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], ..Default::default() });
        span
    }

    pub fn with_process(mut span: Span, id: &str) -> Span {
        span.attributes.push(KeyValue::string(super::DEFAULT_PROCESS_KEY, id));
        span
    }

    pub fn producer(mut span: Span, message_id: &str) -> Span {
        span.kind = SpanKind::Producer;
        span.attributes.push(KeyValue::string("messaging.message.id", message_id));
        span.attributes.push(KeyValue::string("messaging.system", "kafka"));
        span.attributes.push(KeyValue::string("messaging.destination.name", "orders"));
        span
    }

    pub fn consumer(mut span: Span, message_id: &str, link_to: Option<&Span>) -> Span {
        span.kind = SpanKind::Consumer;
        span.attributes.push(KeyValue::string("messaging.message.id", message_id));
        if let Some(target) = link_to {
            span.links.push(Link {
                trace_id: target.trace_id,
                span_id: target.span_id,
                trace_state: String::new(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0,
            });
        }
        span
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use sextant_model::KeyValue;

    #[test]
    fn ids_come_from_span_or_resource_under_any_key() {
        let keys = vec!["business_process.id".to_string(), "order.id".to_string()];
        let mut s = with_process(span(1, 1, "cart", 0, 1), "cart-1");
        s.attributes.push(KeyValue::new("order.id", AnyValue::Int(5)));
        assert_eq!(process_ids(&s, &keys), vec!["cart-1".to_string(), "5".to_string()]);
        assert!(carries(&s, &keys, "5"));
        assert!(!carries(&s, &keys, "cart-2"));
        let plain = span(1, 2, "cart", 0, 1);
        assert!(process_ids(&plain, &keys).is_empty());
    }
}
