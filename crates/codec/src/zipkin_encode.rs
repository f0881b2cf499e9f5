//! The model to Zipkin v2 JSON, for the Zipkin query API (`GET /api/v2/trace/{id}`, …).
//!
//! The inverse of [`decode_zipkin_json`](crate::decode_zipkin_json), written the way the
//! OpenTelemetry Collector's Zipkin exporter writes spans, so a span sent to Sextant over Zipkin
//! comes back as it was sent, and a span sent over OTLP reads as the Collector would have
//! forwarded it (`docs/formats/zipkin-mapping.md`):
//! - resource `service.name` → `localEndpoint.serviceName`; other resource attributes → tags;
//! - `net.host.ip`/`net.host.port` → `localEndpoint`; `peer.service`, `net.peer.ip`,
//!   `net.peer.port` → `remoteEndpoint`; `zipkin.shared = true` → `shared: true`;
//! - span attributes → tags, every value as text (Zipkin tags are strings);
//! - status → `otel.status_code` (`OK`, `ERROR`), `otel.status_description`, and `error: "true"`
//!   for an error; trace state → `w3c.tracestate`; scope → `otel.scope.name`/`version`; kind
//!   internal → tag `span.kind: internal`; links → `otlp.link.N`;
//! - events → annotations (`name`, or `name|{json attributes}|dropped` when the event has
//!   attributes or dropped some);
//! - times in microseconds (nanoseconds below a microsecond are lost); a 64-bit trace ID (high
//!   half zero) is written with 16 hex digits, as Zipkin writes it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sextant_model::{AnyValue, Event, KeyValue, Link, Span, SpanKind, StatusCode};

/// Span attributes that become endpoint fields rather than tags.
const ENDPOINT_ATTRIBUTES: [&str; 6] =
    ["net.host.ip", "net.host.port", "peer.service", "net.peer.ip", "net.peer.port", "zipkin.shared"];

/// One span as a Zipkin v2 JSON object.
pub fn zipkin_span_json(span: &Span) -> Value {
    let mut object = Map::new();
    object.insert("traceId".into(), Value::String(trace_id_hex(span)));
    object.insert("id".into(), Value::String(hex::encode(span.span_id.0)));
    if let Some(parent) = span.parent_span_id {
        object.insert("parentId".into(), Value::String(hex::encode(parent.0)));
    }
    object.insert("name".into(), Value::String(span.name.to_string()));
    let kind = match span.kind {
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Server => Some("SERVER"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal | SpanKind::Unspecified => None,
    };
    if let Some(kind) = kind {
        object.insert("kind".into(), Value::String(kind.into()));
    }
    object.insert("timestamp".into(), json!(span.start_unix_nanos / 1000));
    // Zipkin leaves out a duration below a microsecond (it reads an absent one as unknown).
    let duration_micros = span.end_unix_nanos.saturating_sub(span.start_unix_nanos) / 1000;
    if duration_micros > 0 {
        object.insert("duration".into(), json!(duration_micros));
    }

    let attribute = |key: &str| span.attributes.iter().find(|kv| kv.key == key).map(|kv| &kv.value);
    let local = endpoint(
        span.resource.attributes.iter().find(|kv| kv.key == "service.name").map(|kv| kv.value.to_string()),
        attribute("net.host.ip"),
        attribute("net.host.port"),
    );
    if let Some(local) = local {
        object.insert("localEndpoint".into(), local);
    }
    let remote = endpoint(
        attribute("peer.service").map(ToString::to_string),
        attribute("net.peer.ip"),
        attribute("net.peer.port"),
    );
    if let Some(remote) = remote {
        object.insert("remoteEndpoint".into(), remote);
    }
    if !span.events.is_empty() {
        object.insert("annotations".into(), Value::Array(span.events.iter().map(annotation).collect()));
    }
    let tags = tags(span);
    if !tags.is_empty() {
        object.insert("tags".into(), Value::Object(tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    }
    if matches!(attribute("zipkin.shared"), Some(AnyValue::Bool(true))) {
        object.insert("shared".into(), Value::Bool(true));
    }
    Value::Object(object)
}

/// The spans as a Zipkin v2 JSON array, in the order given.
pub fn zipkin_json(spans: &[Span]) -> Value {
    Value::Array(spans.iter().map(zipkin_span_json).collect())
}

/// 16 hex digits when the high half is zero (a 64-bit ID), else 32.
fn trace_id_hex(span: &Span) -> String {
    let bytes = span.trace_id.0;
    if bytes[..8].iter().all(|&b| b == 0) { hex::encode(&bytes[8..]) } else { hex::encode(bytes) }
}

fn endpoint(service: Option<String>, ip: Option<&AnyValue>, port: Option<&AnyValue>) -> Option<Value> {
    let mut object = Map::new();
    if let Some(service) = service.filter(|s| !s.is_empty()) {
        object.insert("serviceName".into(), Value::String(service));
    }
    if let Some(ip) = ip.map(ToString::to_string) {
        let field = if ip.contains(':') { "ipv6" } else { "ipv4" };
        object.insert(field.into(), Value::String(ip));
    }
    if let Some(AnyValue::Int(port)) = port
        && *port > 0
    {
        object.insert("port".into(), json!(port));
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// Zipkin tags: span attributes, resource attributes other than `service.name`, and the
/// fields Zipkin has no place for. Sorted by key, as Zipkin's JSON writers do.
fn tags(span: &Span) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for kv in &span.resource.attributes {
        if kv.key != "service.name" {
            tags.insert(kv.key.to_string(), kv.value.to_string());
        }
    }
    for kv in span.attributes.iter().filter(|kv| !ENDPOINT_ATTRIBUTES.contains(&kv.key.as_str())) {
        tags.insert(kv.key.to_string(), kv.value.to_string());
    }
    if !span.scope.name.is_empty() {
        tags.insert("otel.scope.name".into(), span.scope.name.clone());
    }
    if !span.scope.version.is_empty() {
        tags.insert("otel.scope.version".into(), span.scope.version.clone());
    }
    match span.status_code {
        StatusCode::Unset => {}
        StatusCode::Ok => {
            tags.insert("otel.status_code".into(), "OK".into());
        }
        StatusCode::Error => {
            tags.insert("otel.status_code".into(), "ERROR".into());
            // A Zipkin client's own `error` tag (its message) stays as it was sent.
            tags.entry("error".into()).or_insert_with(|| "true".into());
        }
    }
    if span.status_code != StatusCode::Unset && !span.status_message.is_empty() {
        tags.insert("otel.status_description".into(), span.status_message.clone());
    }
    if !span.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), span.trace_state.clone());
    }
    if span.kind == SpanKind::Internal {
        tags.insert("span.kind".into(), "internal".into());
    }
    for (index, link) in span.links.iter().enumerate() {
        tags.insert(format!("otlp.link.{index}"), link_text(link));
    }
    tags
}

/// `traceid|spanid|tracestate|{json attributes}|dropped`, as the Collector's exporter writes it.
fn link_text(link: &Link) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        hex::encode(link.trace_id.0),
        hex::encode(link.span_id.0),
        link.trace_state,
        attributes_json(&link.attributes),
        link.dropped_attributes_count
    )
}

fn annotation(event: &Event) -> Value {
    let value = if event.attributes.is_empty() && event.dropped_attributes_count == 0 {
        event.name.clone()
    } else {
        format!("{}|{}|{}", event.name, attributes_json(&event.attributes), event.dropped_attributes_count)
    };
    json!({ "timestamp": event.time_unix_nanos / 1000, "value": value })
}

/// A flat JSON object: strings, booleans and numbers as themselves, other values as text.
fn attributes_json(attributes: &[KeyValue]) -> String {
    let object: Map<String, Value> = attributes
        .iter()
        .map(|kv| {
            let value = match &kv.value {
                AnyValue::String(s) => Value::String(s.to_string()),
                AnyValue::Bool(b) => Value::Bool(*b),
                AnyValue::Int(i) => json!(i),
                AnyValue::Double(d) => json!(d),
                other => Value::String(other.to_string()),
            };
            (kv.key.to_string(), value)
        })
        .collect();
    Value::Object(object).to_string()
}
