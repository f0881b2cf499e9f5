//! The model to OTLP/JSON: what the query API returns for OTLP-shaped trace requests.
//!
//! Output rules (OTLP/JSON encoding): `{"resourceSpans": [...]}`, spans grouped by resource and
//! scope in first-seen order; trace and span IDs in lowercase hex; 64-bit integers
//! (`startTimeUnixNano`, `intValue`, …) as decimal strings; enums (`kind`, `status.code`) as
//! numbers; bytes in base64; doubles as numbers, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! Fields holding their default value are left out, except `traceId`, `spanId`, `name`,
//! `kind`, both times, `attributes` and `status`, which are always written so readers need no
//! defaults for the common fields. [`crate::decode_otlp_json`] reads this output back to the
//! same spans.

use serde_json::{Map, Value, json};
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span};

use crate::group::group_all;
use crate::json_fields::encode_base64;

/// Renders spans as an OTLP/JSON `TracesData` object.
pub fn otlp_json(spans: &[Span]) -> Value {
    let resource_spans: Vec<Value> = group_all(spans)
        .into_iter()
        .map(|group| {
            let scope_spans: Vec<Value> = group
                .scopes
                .into_iter()
                .map(|scope| {
                    json!({
                        "scope": scope_json(scope.scope),
                        "spans": scope.spans.into_iter().map(span_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "resource": resource_json(group.resource), "scopeSpans": scope_spans })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

fn resource_json(resource: &Resource) -> Value {
    let mut object = Map::new();
    object.insert("attributes".into(), attributes_json(&resource.attributes));
    put_count(&mut object, "droppedAttributesCount", resource.dropped_attributes_count);
    Value::Object(object)
}

fn scope_json(scope: &Scope) -> Value {
    let mut object = Map::new();
    put_str(&mut object, "name", &scope.name);
    put_str(&mut object, "version", &scope.version);
    if !scope.attributes.is_empty() {
        object.insert("attributes".into(), attributes_json(&scope.attributes));
    }
    put_count(&mut object, "droppedAttributesCount", scope.dropped_attributes_count);
    Value::Object(object)
}

fn span_json(span: &Span) -> Value {
    let mut object = Map::new();
    object.insert("traceId".into(), Value::String(span.trace_id.to_hex()));
    object.insert("spanId".into(), Value::String(span.span_id.to_hex()));
    if let Some(parent) = span.parent_span_id {
        object.insert("parentSpanId".into(), Value::String(parent.to_hex()));
    }
    put_str(&mut object, "traceState", &span.trace_state);
    put_count(&mut object, "flags", span.flags);
    object.insert("name".into(), Value::String(span.name.to_string()));
    object.insert("kind".into(), Value::from(span.kind as i32));
    object.insert("startTimeUnixNano".into(), Value::String(span.start_unix_nanos.to_string()));
    object.insert("endTimeUnixNano".into(), Value::String(span.end_unix_nanos.to_string()));
    object.insert("attributes".into(), attributes_json(&span.attributes));
    put_count(&mut object, "droppedAttributesCount", span.dropped_attributes_count);
    if !span.events.is_empty() {
        object.insert("events".into(), Value::Array(span.events.iter().map(event_json).collect()));
    }
    put_count(&mut object, "droppedEventsCount", span.dropped_events_count);
    if !span.links.is_empty() {
        object.insert("links".into(), Value::Array(span.links.iter().map(link_json).collect()));
    }
    put_count(&mut object, "droppedLinksCount", span.dropped_links_count);
    let mut status = Map::new();
    put_str(&mut status, "message", &span.status_message);
    status.insert("code".into(), Value::from(span.status_code as i32));
    object.insert("status".into(), Value::Object(status));
    Value::Object(object)
}

fn event_json(event: &Event) -> Value {
    let mut object = Map::new();
    object.insert("timeUnixNano".into(), Value::String(event.time_unix_nanos.to_string()));
    object.insert("name".into(), Value::String(event.name.clone()));
    if !event.attributes.is_empty() {
        object.insert("attributes".into(), attributes_json(&event.attributes));
    }
    put_count(&mut object, "droppedAttributesCount", event.dropped_attributes_count);
    Value::Object(object)
}

fn link_json(link: &Link) -> Value {
    let mut object = Map::new();
    object.insert("traceId".into(), Value::String(link.trace_id.to_hex()));
    object.insert("spanId".into(), Value::String(link.span_id.to_hex()));
    put_str(&mut object, "traceState", &link.trace_state);
    if !link.attributes.is_empty() {
        object.insert("attributes".into(), attributes_json(&link.attributes));
    }
    put_count(&mut object, "droppedAttributesCount", link.dropped_attributes_count);
    put_count(&mut object, "flags", link.flags);
    Value::Object(object)
}

fn attributes_json(attributes: &[KeyValue]) -> Value {
    Value::Array(attributes.iter().map(key_value_json).collect())
}

fn key_value_json(kv: &KeyValue) -> Value {
    json!({ "key": kv.key, "value": value_json(&kv.value) })
}

fn value_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::String(s) => json!({ "stringValue": s }),
        AnyValue::Bool(b) => json!({ "boolValue": b }),
        AnyValue::Int(i) => json!({ "intValue": i.to_string() }),
        AnyValue::Double(d) => json!({ "doubleValue": double_json(*d) }),
        AnyValue::Bytes(b) => json!({ "bytesValue": encode_base64(b) }),
        AnyValue::Array(values) => {
            json!({ "arrayValue": { "values": values.iter().map(value_json).collect::<Vec<_>>() } })
        }
        AnyValue::KvList(kvs) => {
            json!({ "kvlistValue": { "values": kvs.iter().map(key_value_json).collect::<Vec<_>>() } })
        }
    }
}

fn double_json(d: f64) -> Value {
    if d.is_nan() {
        Value::String("NaN".into())
    } else if d.is_infinite() {
        Value::String(if d > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Value::from(d)
    }
}

fn put_str(object: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        object.insert(key.into(), Value::String(value.to_string()));
    }
}

fn put_count(object: &mut Map<String, Value>, key: &str, value: u32) {
    if value != 0 {
        object.insert(key.into(), Value::from(value));
    }
}
