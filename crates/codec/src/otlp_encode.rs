//! The model to OTLP protobuf messages: query output for OTLP-speaking clients, and the WAL
//! record payload.
//!
//! The WAL payload is an OTLP `TracesData` message, so a WAL segment can be read with any OTLP
//! tooling. Every model value has an OTLP counterpart, so `decode_spans(&encode_spans(s)) == s`
//! for any spans whose parent IDs are not all zeros (an all-zero parent reads back as "root").

use prost::Message;
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, StatusCode};

use crate::group::{ResourceGroup, group_all, group_runs};
use crate::proto::tonic::common::v1 as pc;
use crate::proto::tonic::common::v1::any_value::Value as PValue;
use crate::proto::tonic::resource::v1 as pr;
use crate::proto::tonic::trace::v1 as pt;

/// Groups spans sharing the same resource and scope (same `Arc` first, then equal values) into
/// `ResourceSpans`, in first-seen order.
pub fn to_resource_spans(spans: &[Span]) -> Vec<pt::ResourceSpans> {
    groups_to_proto(group_all(spans))
}

/// Encodes spans as an OTLP `TracesData` protobuf message, keeping their order: the WAL record
/// payload. Inverse of [`crate::decode_spans`].
pub fn encode_spans(spans: &[Span]) -> Vec<u8> {
    pt::TracesData { resource_spans: groups_to_proto(group_runs(spans)) }.encode_to_vec()
}

fn groups_to_proto(groups: Vec<ResourceGroup<'_>>) -> Vec<pt::ResourceSpans> {
    groups
        .into_iter()
        .map(|group| pt::ResourceSpans {
            resource: Some(resource_to_proto(group.resource)),
            scope_spans: group
                .scopes
                .into_iter()
                .map(|scope| pt::ScopeSpans {
                    scope: Some(scope_to_proto(scope.scope)),
                    spans: scope.spans.into_iter().map(span_to_proto).collect(),
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: String::new(),
        })
        .collect()
}

fn resource_to_proto(resource: &Resource) -> pr::Resource {
    pr::Resource {
        attributes: attributes_to_proto(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        entity_refs: Vec::new(),
    }
}

fn scope_to_proto(scope: &Scope) -> pc::InstrumentationScope {
    pc::InstrumentationScope {
        name: scope.name.clone(),
        version: scope.version.clone(),
        attributes: attributes_to_proto(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
    }
}

fn span_to_proto(span: &Span) -> pt::Span {
    pt::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span.parent_span_id.map(|id| id.0.to_vec()).unwrap_or_default(),
        flags: span.flags,
        name: span.name.to_string(),
        kind: span.kind as i32,
        start_time_unix_nano: span.start_unix_nanos,
        end_time_unix_nano: span.end_unix_nanos,
        attributes: attributes_to_proto(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events.iter().map(event_to_proto).collect(),
        dropped_events_count: span.dropped_events_count,
        links: span.links.iter().map(link_to_proto).collect(),
        dropped_links_count: span.dropped_links_count,
        status: (span.status_code != StatusCode::Unset || !span.status_message.is_empty())
            .then(|| pt::Status { message: span.status_message.clone(), code: span.status_code as i32 }),
    }
}

fn event_to_proto(event: &Event) -> pt::span::Event {
    pt::span::Event {
        time_unix_nano: event.time_unix_nanos,
        name: event.name.clone(),
        attributes: attributes_to_proto(&event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

fn link_to_proto(link: &Link) -> pt::span::Link {
    pt::span::Link {
        trace_id: link.trace_id.0.to_vec(),
        span_id: link.span_id.0.to_vec(),
        trace_state: link.trace_state.clone(),
        attributes: attributes_to_proto(&link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
        flags: link.flags,
    }
}

fn attributes_to_proto(attributes: &[KeyValue]) -> Vec<pc::KeyValue> {
    attributes.iter().map(key_value_to_proto).collect()
}

fn key_value_to_proto(kv: &KeyValue) -> pc::KeyValue {
    pc::KeyValue { key: kv.key.to_string(), value: Some(value_to_proto(&kv.value)), key_strindex: 0 }
}

fn value_to_proto(value: &AnyValue) -> pc::AnyValue {
    let value = match value {
        AnyValue::String(s) => PValue::StringValue(s.to_string()),
        AnyValue::Bool(b) => PValue::BoolValue(*b),
        AnyValue::Int(i) => PValue::IntValue(*i),
        AnyValue::Double(d) => PValue::DoubleValue(*d),
        AnyValue::Bytes(b) => PValue::BytesValue(b.clone()),
        AnyValue::Array(values) => {
            PValue::ArrayValue(pc::ArrayValue { values: values.iter().map(value_to_proto).collect() })
        }
        AnyValue::KvList(kvs) => {
            PValue::KvlistValue(pc::KeyValueList { values: kvs.iter().map(key_value_to_proto).collect() })
        }
    };
    pc::AnyValue { value: Some(value) }
}
