//! OTLP protobuf bodies to the model: the gRPC and HTTP/protobuf ingest path
//! ([`decode_otlp_protobuf`]) and the WAL read path ([`decode_spans`]).
//!
//! Both read the protobuf wire format directly into the model, with no intermediate
//! generated structs:
//!
//! ```text
//! body ─ wire::Reader ─ messages::read ─┬─ IngestSink: validate IDs and times, limits ─> Decoded
//!        (keys, varints,  (OTLP messages, │
//!         skipping, errors) merging)      └─ WalSink: check ID lengths, keep all ─────> Vec<Span>
//! ```
//!
//! - [`wire`] holds the protobuf primitives; they refuse exactly the bodies prost refuses, with
//!   prost's error messages (the field path and the problem).
//! - [`messages`] reads the OTLP messages with prost's semantics (last value wins, singular
//!   messages merge, unknown fields skipped) and converts as it goes. Strings are copied once,
//!   from the body into the model; span IDs are borrowed until validated.
//! - Every span of one `ScopeSpans` shares one `Arc<Scope>`, and every span of one
//!   `ResourceSpans` one `Arc<Resource>`.
//!
//! Values OTLP can express but the model cannot:
//! - an `AnyValue` with no value set (OTLP's "empty" value) or a profiles-only
//!   `string_value_strindex`: an attribute holding one is dropped and counted in its item's
//!   `dropped_attributes_count`; inside an array or a key-value list the element is dropped;
//! - `ResourceSpans.schema_url`, `ScopeSpans.schema_url`, `Resource.entity_refs` and
//!   `KeyValue.key_strindex` are not kept (but must be well-formed).
//!
//! Ingest counts what the conversion drops (values without a model counterpart, links with
//! invalid IDs) so that [`Decoded::unchanged`] is cleared; the WAL read path converts in the
//! same way but ignores the count.
//!
//! The decoder's reference is prost: decoding into the generated `opentelemetry-proto` structs
//! and converting those (`reference`, compiled for tests and fuzzing only). The differential
//! tests (`tests/wire_decoder.rs`) and the `otlp_protobuf_differential` fuzz target hold the
//! two to the same results, errors included.

mod messages;
#[cfg(feature = "reference")]
pub mod reference;
mod wire;

use std::sync::Arc;

use sextant_model::{Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use self::messages::{EXPORT_TRACE_SERVICE_REQUEST, LinkIds, Sink, SpanParts, TRACES_DATA};
use self::wire::WireError;
use crate::limits::Limits;
use crate::validate::{self, BatchBuilder, check_parent_span_id, check_span_id, check_trace_id, id_text};
use crate::{DecodeError, Decoded};

/// Decodes an OTLP protobuf body (`ExportTraceServiceRequest`, from OTLP/HTTP or gRPC),
/// validating every span. When [`Decoded::unchanged`] is set, `decode_spans(body)` gives
/// exactly the accepted spans.
pub fn decode_otlp_protobuf(body: &[u8], limits: &Limits, now_unix_nanos: u64) -> Result<Decoded, DecodeError> {
    let mut sink = IngestSink { batch: BatchBuilder::new(limits, now_unix_nanos) };
    let dropped_any =
        messages::read(body, &EXPORT_TRACE_SERVICE_REQUEST, LinkIds::Checked, &mut sink).map_err(protobuf_error)?;
    if dropped_any {
        sink.batch.mark_changed();
    }
    Ok(sink.batch.finish_protobuf())
}

/// Decodes a WAL payload written by [`crate::encode_spans`]: no validation and no limits; spans
/// of one `ScopeSpans` share one `Arc<Scope>`, spans of one `ResourceSpans` one `Arc<Resource>`.
/// An ID of the wrong length (only possible in a corrupt payload) is an error.
pub fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let mut sink = WalSink { spans: Vec::new(), corrupt: None };
    // Ingest writes a body as the record only when its conversion dropped nothing, so there
    // is nothing to count here.
    messages::read(bytes, &TRACES_DATA, LinkIds::Stored, &mut sink).map_err(protobuf_error)?;
    match sink.corrupt {
        Some(message) => Err(DecodeError::Protobuf(message)),
        None => Ok(sink.spans),
    }
}

fn protobuf_error(error: WireError) -> DecodeError {
    DecodeError::Protobuf(error.to_string())
}

/// Ingest: validates each span, refusing invalid ones, and applies the limits.
struct IngestSink<'l> {
    batch: BatchBuilder<'l>,
}

impl<'a> Sink<'a> for IngestSink<'_> {
    fn resource(&mut self, resource: Resource) -> Arc<Resource> {
        self.batch.resource(resource)
    }

    fn scope(&mut self, scope: Scope) -> Arc<Scope> {
        self.batch.scope(scope)
    }

    fn span(&mut self, span: SpanParts<'a>, resource: &Arc<Resource>, scope: &Arc<Scope>) {
        let checked = check_trace_id(span.trace_id)
            .and_then(|_| check_span_id(span.span_id))
            .and_then(|_| check_parent_span_id(span.parent_span_id))
            .and_then(|_| self.batch.check_times(span.start_unix_nanos, span.end_unix_nanos));
        match checked {
            Ok(()) => self.batch.accept(into_span(span, resource, scope)),
            Err(problem) => self.batch.reject(validate::rejection(
                &id_text(span.trace_id),
                &id_text(span.span_id),
                &span.name,
                problem,
            )),
        }
    }
}

/// WAL replay: keeps every span as stored; the first span with an ID of the wrong length
/// makes the payload corrupt (reported only if the rest of it decodes).
struct WalSink {
    spans: Vec<Span>,
    corrupt: Option<String>,
}

impl<'a> Sink<'a> for WalSink {
    fn resource(&mut self, resource: Resource) -> Arc<Resource> {
        Arc::new(resource)
    }

    fn scope(&mut self, scope: Scope) -> Arc<Scope> {
        Arc::new(scope)
    }

    fn span(&mut self, span: SpanParts<'a>, resource: &Arc<Resource>, scope: &Arc<Scope>) {
        if self.corrupt.is_some() {
            return;
        }
        let wrong_length = if span.trace_id.len() != 16 {
            "trace id"
        } else if span.span_id.len() != 8 {
            "span id"
        } else if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
            "parent span id"
        } else if span.bad_link_id {
            "a link id"
        } else {
            self.spans.push(into_span(span, resource, scope));
            return;
        };
        self.corrupt = Some(format!("span {}: {wrong_length} has the wrong length", self.spans.len()));
    }
}

/// The model span. IDs of the wrong length (refused or reported by the caller) read as zero; an
/// all-zero parent is a root.
fn into_span(span: SpanParts<'_>, resource: &Arc<Resource>, scope: &Arc<Scope>) -> Span {
    Span {
        trace_id: TraceId(span.trace_id.try_into().unwrap_or_default()),
        span_id: SpanId(span.span_id.try_into().unwrap_or_default()),
        parent_span_id: check_parent_span_id(span.parent_span_id).ok().flatten(),
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: SpanKind::from_i32(span.kind),
        start_unix_nanos: span.start_unix_nanos,
        end_unix_nanos: span.end_unix_nanos,
        attributes: span.attributes,
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events,
        dropped_events_count: span.dropped_events_count,
        links: span.links,
        dropped_links_count: span.dropped_links_count,
        status_code: StatusCode::from_i32(span.status_code),
        status_message: span.status_message,
        resource: resource.clone(),
        scope: scope.clone(),
    }
}
