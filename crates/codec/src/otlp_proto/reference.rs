//! The reference for the wire-level decoder: the prost path it replaced, which decodes into the
//! generated `opentelemetry-proto` structs and converts those into the model. Kept, unchanged,
//! only so that tests and fuzz targets can check that [`super::decode_otlp_protobuf`] and
//! [`super::decode_spans`] give the same results (errors included) for every input.
//!
//! Compiled in debug builds (so the crate's integration tests, which cannot turn on one of its
//! features without a dev-dependency on itself, reach it) and with the `reference` feature (the
//! fuzz targets); not part of the API.

use std::sync::Arc;

use prost::Message;
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use crate::limits::{Limits, add_dropped};
use crate::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::tonic::common::v1 as pc;
use crate::proto::tonic::common::v1::any_value::Value as PValue;
use crate::proto::tonic::resource::v1 as pr;
use crate::proto::tonic::trace::v1 as pt;
use crate::validate::{self, BatchBuilder, check_parent_span_id, check_span_id, check_trace_id, id_text};
use crate::{DecodeError, Decoded};

/// [`super::decode_otlp_protobuf`] through prost's generated structs.
pub fn decode_otlp_protobuf(body: &[u8], limits: &Limits, now_unix_nanos: u64) -> Result<Decoded, DecodeError> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    Ok(from_otlp_request(request, limits, now_unix_nanos))
}

/// Converts a decoded request, validating every span.
fn from_otlp_request(request: ExportTraceServiceRequest, limits: &Limits, now_unix_nanos: u64) -> Decoded {
    let mut batch = BatchBuilder::new(limits, now_unix_nanos);
    // Items the conversion dropped (values without a model counterpart, invalid links).
    let mut num_dropped = 0u64;
    for resource_spans in request.resource_spans {
        let resource = batch.resource(resource_from_proto(resource_spans.resource, &mut num_dropped));
        for scope_spans in resource_spans.scope_spans {
            let scope = batch.scope(scope_from_proto(scope_spans.scope, &mut num_dropped));
            for span in scope_spans.spans {
                match checked_span(span, &batch, &resource, &scope, &mut num_dropped) {
                    Ok(span) => batch.accept(span),
                    Err(rejection) => batch.reject(rejection),
                }
            }
        }
    }
    if num_dropped > 0 {
        batch.mark_changed();
    }
    batch.finish_protobuf()
}

/// Validates one span and converts it, adding what the conversion dropped to `num_dropped`.
fn checked_span(
    span: pt::Span,
    batch: &BatchBuilder<'_>,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    num_dropped: &mut u64,
) -> Result<Span, validate::Rejection> {
    let checked = check_trace_id(&span.trace_id)
        .and_then(|_| check_span_id(&span.span_id))
        .and_then(|_| check_parent_span_id(&span.parent_span_id))
        .and_then(|_| batch.check_times(span.start_time_unix_nano, span.end_time_unix_nano));
    match checked {
        Ok(_) => Ok(span_from_proto(span, resource, scope, true, num_dropped)),
        Err(problem) => {
            Err(validate::rejection(&id_text(&span.trace_id), &id_text(&span.span_id), &span.name, problem))
        }
    }
}

/// Converts a span's fields. IDs are copied when they have the right length and left zero
/// otherwise (callers check them). With `check_links`, links with invalid IDs are dropped and
/// counted; without (the WAL path) every link is kept as stored. Every dropped link,
/// attribute, array element or map entry is also added to `num_dropped`.
fn span_from_proto(
    span: pt::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    check_links: bool,
    num_dropped: &mut u64,
) -> Span {
    let mut dropped_attributes_count = span.dropped_attributes_count;
    let attributes = attributes_from_proto(span.attributes, &mut dropped_attributes_count, num_dropped);
    let mut dropped_links_count = span.dropped_links_count;
    let mut links = Vec::with_capacity(span.links.len());
    for link in span.links {
        match link_from_proto(link, check_links, num_dropped) {
            Some(link) => links.push(link),
            None => {
                add_dropped(&mut dropped_links_count, 1);
                *num_dropped += 1;
            }
        }
    }
    let status = span.status.unwrap_or_default();
    Span {
        trace_id: TraceId(span.trace_id.as_slice().try_into().unwrap_or_default()),
        span_id: SpanId(span.span_id.as_slice().try_into().unwrap_or_default()),
        parent_span_id: check_parent_span_id(&span.parent_span_id).ok().flatten(),
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name.into(),
        kind: SpanKind::from_i32(span.kind),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        attributes,
        dropped_attributes_count,
        events: span.events.into_iter().map(|event| event_from_proto(event, num_dropped)).collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count,
        status_code: StatusCode::from_i32(status.code),
        status_message: status.message,
        resource: resource.clone(),
        scope: scope.clone(),
    }
}

fn event_from_proto(event: pt::span::Event, num_dropped: &mut u64) -> Event {
    let mut dropped_attributes_count = event.dropped_attributes_count;
    Event {
        time_unix_nanos: event.time_unix_nano,
        name: event.name,
        attributes: attributes_from_proto(event.attributes, &mut dropped_attributes_count, num_dropped),
        dropped_attributes_count,
    }
}

/// `None` when `check_ids` and an ID is invalid; without `check_ids`, only a wrong length gives
/// `None`. (The caller counts a dropped link.)
fn link_from_proto(link: pt::span::Link, check_ids: bool, num_dropped: &mut u64) -> Option<Link> {
    let (trace_id, span_id) = if check_ids {
        (check_trace_id(&link.trace_id).ok()?, check_span_id(&link.span_id).ok()?)
    } else {
        (
            sextant_model::TraceId(link.trace_id.as_slice().try_into().ok()?),
            sextant_model::SpanId(link.span_id.as_slice().try_into().ok()?),
        )
    };
    let mut dropped_attributes_count = link.dropped_attributes_count;
    Some(Link {
        trace_id,
        span_id,
        trace_state: link.trace_state,
        attributes: attributes_from_proto(link.attributes, &mut dropped_attributes_count, num_dropped),
        dropped_attributes_count,
        flags: link.flags,
    })
}

fn resource_from_proto(resource: Option<pr::Resource>, num_dropped: &mut u64) -> Resource {
    let resource = resource.unwrap_or_default();
    let mut dropped_attributes_count = resource.dropped_attributes_count;
    Resource {
        attributes: attributes_from_proto(resource.attributes, &mut dropped_attributes_count, num_dropped),
        dropped_attributes_count,
    }
}

fn scope_from_proto(scope: Option<pc::InstrumentationScope>, num_dropped: &mut u64) -> Scope {
    let scope = scope.unwrap_or_default();
    let mut dropped_attributes_count = scope.dropped_attributes_count;
    Scope {
        name: scope.name,
        version: scope.version,
        attributes: attributes_from_proto(scope.attributes, &mut dropped_attributes_count, num_dropped),
        dropped_attributes_count,
    }
}

/// Converts attributes; those without a value are dropped and counted in `dropped` (the
/// item's count) and in `num_dropped`.
fn attributes_from_proto(attributes: Vec<pc::KeyValue>, dropped: &mut u32, num_dropped: &mut u64) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(attributes.len());
    for kv in attributes {
        match kv.value.and_then(|value| value_from_proto(value, num_dropped)) {
            Some(value) => out.push(KeyValue { key: kv.key.into(), value }),
            None => {
                add_dropped(dropped, 1);
                *num_dropped += 1;
            }
        }
    }
    out
}

/// `None` for a value the model cannot hold. Array elements and map entries without a value
/// are left out and counted in `num_dropped`.
fn value_from_proto(value: pc::AnyValue, num_dropped: &mut u64) -> Option<AnyValue> {
    Some(match value.value? {
        PValue::StringValue(s) => AnyValue::String(s.into()),
        PValue::BoolValue(b) => AnyValue::Bool(b),
        PValue::IntValue(i) => AnyValue::Int(i),
        PValue::DoubleValue(d) => AnyValue::Double(d),
        PValue::BytesValue(b) => AnyValue::Bytes(b),
        PValue::ArrayValue(array) => {
            let mut values = Vec::with_capacity(array.values.len());
            for element in array.values {
                match value_from_proto(element, num_dropped) {
                    Some(value) => values.push(value),
                    None => *num_dropped += 1,
                }
            }
            AnyValue::Array(values)
        }
        PValue::KvlistValue(list) => {
            let mut kvs = Vec::with_capacity(list.values.len());
            for kv in list.values {
                match kv.value.and_then(|value| value_from_proto(value, num_dropped)) {
                    Some(value) => kvs.push(KeyValue { key: kv.key.into(), value }),
                    None => *num_dropped += 1,
                }
            }
            AnyValue::KvList(kvs)
        }
        PValue::StringValueStrindex(_) => return None,
    })
}

/// [`super::decode_spans`] through prost's generated structs.
pub fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let data = pt::TracesData::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let mut spans = Vec::with_capacity(
        data.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>(),
    );
    // Ingest writes a body as the record only when its conversion dropped nothing, so there
    // is nothing to count here.
    let mut num_dropped = 0u64;
    for resource_spans in data.resource_spans {
        let resource = Arc::new(resource_from_proto(resource_spans.resource, &mut num_dropped));
        for scope_spans in resource_spans.scope_spans {
            let scope = Arc::new(scope_from_proto(scope_spans.scope, &mut num_dropped));
            for span in scope_spans.spans {
                let index = spans.len();
                let corrupt = |what: &str| DecodeError::Protobuf(format!("span {index}: {what} has the wrong length"));
                if span.trace_id.len() != 16 {
                    return Err(corrupt("trace id"));
                }
                if span.span_id.len() != 8 {
                    return Err(corrupt("span id"));
                }
                if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
                    return Err(corrupt("parent span id"));
                }
                if span.links.iter().any(|l| l.trace_id.len() != 16 || l.span_id.len() != 8) {
                    return Err(corrupt("a link id"));
                }
                spans.push(span_from_proto(span, &resource, &scope, false, &mut num_dropped));
            }
        }
    }
    Ok(spans)
}
