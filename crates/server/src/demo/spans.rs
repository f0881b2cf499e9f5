//! Building the spans of one trace: open a span at the simulated clock, close it later.
//!
//! Every span of a trace carries `business_process.id` when the trace belongs to a cart
//! session or an order; the process can change inside a trace (a checkout is a step of the
//! cart session, and its order and payment spans already belong to the order).

use std::sync::Arc;

use sextant_model::{
    AnyValue, CompactString, Event, KeyValue, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId,
};

/// `business_process.id`, see DESIGN.md "Eventual-consistency conventions".
pub const PROCESS_ID: &str = "business_process.id";
/// The same ID as propagated in baggage, recorded as an attribute by the receiving service.
pub const BAGGAGE_PROCESS_ID: &str = "baggage.business_process.id";

pub fn int(key: &str, value: i64) -> KeyValue {
    KeyValue::new(key, AnyValue::Int(value))
}

pub fn string(key: &str, value: impl Into<CompactString>) -> KeyValue {
    KeyValue::string(key, value)
}

/// The spans of one trace under construction.
pub struct TraceBuilder {
    pub trace_id: TraceId,
    /// `business_process.id` given to the spans opened from now on.
    pub process_id: Option<String>,
    /// Also record the process ID as received in baggage.
    pub process_in_baggage: bool,
    scope: Arc<Scope>,
    spans: Vec<Span>,
}

/// A span opened in a [`TraceBuilder`]: its index there and its ID.
#[derive(Clone, Copy, Debug)]
pub struct Opened {
    index: usize,
    pub span_id: SpanId,
}

impl TraceBuilder {
    pub fn new(trace_id: TraceId, process_id: Option<String>, scope: Arc<Scope>) -> TraceBuilder {
        TraceBuilder { trace_id, process_id, process_in_baggage: false, scope, spans: Vec::new() }
    }

    /// Opens a span starting at `start_unix_nanos` with `attributes` (the process ID added);
    /// its end is set by [`TraceBuilder::close`].
    pub fn open(
        &mut self,
        (span_id, parent): (SpanId, Option<SpanId>),
        resource: Arc<Resource>,
        name: impl Into<CompactString>,
        kind: SpanKind,
        start_unix_nanos: u64,
        mut attributes: Vec<KeyValue>,
    ) -> Opened {
        if let Some(process_id) = &self.process_id {
            attributes.push(string(PROCESS_ID, process_id.clone()));
            if self.process_in_baggage {
                attributes.push(string(BAGGAGE_PROCESS_ID, process_id.clone()));
            }
        }
        let mut span = Span::new(self.trace_id, span_id, name, start_unix_nanos, start_unix_nanos);
        span.parent_span_id = parent;
        span.kind = kind;
        span.flags = 1; // sampled
        span.attributes = attributes;
        span.resource = resource;
        span.scope = self.scope.clone();
        self.spans.push(span);
        Opened { index: self.spans.len() - 1, span_id }
    }

    pub fn close(&mut self, opened: Opened, end_unix_nanos: u64) {
        self.spans[opened.index].end_unix_nanos = end_unix_nanos;
    }

    pub fn span(&mut self, opened: Opened) -> &mut Span {
        &mut self.spans[opened.index]
    }

    /// The span with ID `span_id`, opened in this trace.
    pub fn span_with_id(&mut self, span_id: SpanId) -> &mut Span {
        self.spans.iter_mut().rev().find(|s| s.span_id == span_id).expect("a span of this trace")
    }

    pub fn finish(self) -> Vec<Span> {
        self.spans
    }
}

/// Marks `span` failed with an exception event, as the OpenTelemetry SDKs record one.
pub fn record_exception(span: &mut Span, exception_type: &str, message: &str, at_unix_nanos: u64) {
    span.status_code = StatusCode::Error;
    span.status_message = message.to_string();
    span.events.push(Event {
        time_unix_nanos: at_unix_nanos,
        name: "exception".to_string(),
        attributes: vec![string("exception.type", exception_type), string("exception.message", message)],
        dropped_attributes_count: 0,
    });
}
