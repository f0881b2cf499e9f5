//! Zipkin v2 JSON (`POST /api/v2/spans`) to the model.
//!
//! The mapping follows the OpenTelemetry Collector's Zipkin receiver (the `zipkinv2`
//! translator) so that spans look the same whether they reach Sextant directly or through a
//! Collector. The full table, and where and why Sextant differs, is in
//! `docs/formats/zipkin-mapping.md`; in short:
//! - `localEndpoint.serviceName` → resource `service.name` (absent: no `service.name`, so the
//!   service reads as `unknown_service`); tags named like resource attributes (`host.*`,
//!   `service.*`, `cloud.*`, …) move to the resource; spans with the same service and resource
//!   tags share one `Arc<Resource>`;
//! - `otel.scope.name`/`otel.scope.version` (or the older `otel.library.*`) tags → scope;
//! - tags → span attributes (strings stay strings); `otel.status_code`,
//!   `otel.status_description` and `error` → status; `w3c.tracestate` → trace state;
//!   `otlp.link.N` → links; `span.kind=internal` → kind internal when `kind` is absent;
//! - endpoints → `net.host.ip`, `net.host.port`, `peer.service`, `net.peer.ip`, `net.peer.port`;
//! - annotations → events (µs → ns); `timestamp`/`duration` (µs) → start/end (ns);
//! - `shared: true` (the server half of a span shared with its client) is kept as its own
//!   span with the same IDs and the attribute `zipkin.shared = true`.
//!
//! IDs are hexadecimal, either case; shorter IDs are left-padded with zeros (a 64-bit trace ID
//! becomes the low half of a 128-bit one). Invalid IDs and times refuse the span, not the batch.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use crate::error::parse_json;
use crate::json_fields::{integer, nullable};
use crate::limits::{Limits, add_dropped};
use crate::validate::{
    BatchBuilder, Problem, RejectReason, Rejection, check_parent_span_id, check_span_id, check_trace_id, rejection,
};
use crate::{DecodeError, Decoded};

/// Decodes a Zipkin v2 JSON body (an array of spans), validating every span.
pub fn decode_zipkin_json(body: &[u8], limits: &Limits, now_unix_nanos: u64) -> Result<Decoded, DecodeError> {
    let spans: Vec<ZipkinSpan> = parse_json(body).map_err(DecodeError::Zipkin)?;
    let mut batch = BatchBuilder::new(limits, now_unix_nanos);
    // Distinct resources and scopes of this batch, before limits, with their shared copy.
    let mut resources: Vec<(Resource, Arc<Resource>)> = Vec::new();
    let mut scopes: Vec<(Scope, Arc<Scope>)> = Vec::new();
    for zipkin_span in spans {
        match convert(zipkin_span, &batch) {
            Ok((mut span, resource, scope)) => {
                span.resource = match resources.iter().rev().find(|(r, _)| *r == resource) {
                    Some((_, shared)) => shared.clone(),
                    None => {
                        let shared = batch.resource(resource.clone());
                        resources.push((resource, shared.clone()));
                        shared
                    }
                };
                span.scope = match scopes.iter().rev().find(|(s, _)| *s == scope) {
                    Some((_, shared)) => shared.clone(),
                    None => {
                        let shared = batch.scope(scope.clone());
                        scopes.push((scope, shared.clone()));
                        shared
                    }
                };
                batch.accept(span);
            }
            Err(rejection) => batch.reject(rejection),
        }
    }
    Ok(batch.finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    #[serde(default, deserialize_with = "nullable")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    parent_id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    /// Microseconds since the Unix epoch.
    #[serde(default, deserialize_with = "integer")]
    timestamp: u64,
    /// Microseconds.
    #[serde(default, deserialize_with = "integer")]
    duration: u64,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default, deserialize_with = "nullable")]
    annotations: Vec<Annotation>,
    #[serde(default, deserialize_with = "nullable")]
    tags: BTreeMap<String, TagValue>,
    #[serde(default, deserialize_with = "nullable")]
    shared: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default, deserialize_with = "nullable")]
    service_name: String,
    #[serde(default, deserialize_with = "nullable")]
    ipv4: String,
    #[serde(default, deserialize_with = "nullable")]
    ipv6: String,
    #[serde(default, deserialize_with = "integer")]
    port: i32,
}

#[derive(Deserialize)]
struct Annotation {
    /// Microseconds since the Unix epoch.
    #[serde(default, deserialize_with = "integer")]
    timestamp: u64,
    #[serde(default, deserialize_with = "nullable")]
    value: String,
}

/// A tag value: Zipkin sends strings; numbers and booleans are accepted and kept typed; `null`
/// is no tag.
#[derive(Default)]
struct TagValue(Option<AnyValue>);

impl<'de> Deserialize<'de> for TagValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = TagValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string tag value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TagValue, E> {
                Ok(TagValue(Some(AnyValue::String(v.into()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<TagValue, E> {
                Ok(TagValue(Some(AnyValue::String(v.into()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TagValue, E> {
                Ok(TagValue(Some(AnyValue::Bool(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TagValue, E> {
                Ok(TagValue(Some(AnyValue::Int(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TagValue, E> {
                Ok(TagValue(Some(i64::try_from(v).map_or(AnyValue::Double(v as f64), AnyValue::Int))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TagValue, E> {
                Ok(TagValue(Some(AnyValue::Double(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TagValue, E> {
                Ok(TagValue(None))
            }
        }
        deserializer.deserialize_any(TagVisitor)
    }
}

/// Tags still to be mapped, by key (sorted, so attribute order is deterministic).
type Tags = BTreeMap<String, AnyValue>;

/// Removes a tag and returns it as text.
fn take_text(tags: &mut Tags, key: &str) -> Option<String> {
    tags.remove(key).map(|value| match value {
        AnyValue::String(s) => s.into(),
        other => other.to_string(),
    })
}

/// Converts one Zipkin span into a span and the resource and scope it belongs to.
fn convert(zipkin: ZipkinSpan, batch: &BatchBuilder<'_>) -> Result<(Span, Resource, Scope), Rejection> {
    let start = zipkin.timestamp.saturating_mul(1000);
    let end = start.saturating_add(zipkin.duration.saturating_mul(1000));
    let checked = (|| {
        let trace_id = check_trace_id(&zipkin_id::<16>(&zipkin.trace_id, RejectReason::InvalidTraceId, "trace id")?)?;
        let span_id = check_span_id(&zipkin_id::<8>(&zipkin.id, RejectReason::InvalidSpanId, "span id")?)?;
        let parent_span_id = match zipkin.parent_id.as_str() {
            "" => None,
            text => check_parent_span_id(&zipkin_id::<8>(text, RejectReason::InvalidParentSpanId, "parent span id")?)?,
        };
        batch.check_times(start, end)?;
        Ok::<_, Problem>((trace_id, span_id, parent_span_id))
    })();
    let (trace_id, span_id, parent_span_id) = match checked {
        Ok(ids) => ids,
        Err(problem) => return Err(rejection(&zipkin.trace_id, &zipkin.id, &zipkin.name, problem)),
    };

    let mut tags: Tags = zipkin.tags.into_iter().filter_map(|(key, value)| Some((key, value.0?))).collect();
    let mut span = Span::new(trace_id, span_id, zipkin.name, start, end);
    // A span naming itself as its parent is a root (as the Collector reads it).
    span.parent_span_id = parent_span_id.filter(|parent| *parent != span_id);
    if let Some(trace_state) = take_text(&mut tags, "w3c.tracestate") {
        span.trace_state = trace_state;
    }
    span.kind = match zipkin.kind.to_ascii_uppercase().as_str() {
        "CLIENT" => SpanKind::Client,
        "SERVER" => SpanKind::Server,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ => match take_text(&mut tags, "span.kind").as_deref() {
            Some("internal") => SpanKind::Internal,
            _ => SpanKind::Unspecified,
        },
    };
    set_status(&mut span, &mut tags);
    take_links(&mut span, &mut tags);
    let scope = take_scope(&mut tags);
    let resource = take_resource(&mut tags, zipkin.local_endpoint.as_ref());

    span.attributes = tags.into_iter().map(|(key, value)| KeyValue { key: key.into(), value }).collect();
    if let Some(local) = &zipkin.local_endpoint {
        if let Some(ip) = endpoint_ip(local) {
            upsert(&mut span.attributes, "net.host.ip", AnyValue::String(ip.into()));
        }
        if local.port > 0 {
            upsert(&mut span.attributes, "net.host.port", AnyValue::Int(i64::from(local.port)));
        }
    }
    if let Some(remote) = &zipkin.remote_endpoint {
        if !remote.service_name.is_empty() {
            upsert(&mut span.attributes, "peer.service", AnyValue::String(remote.service_name.as_str().into()));
        }
        if let Some(ip) = endpoint_ip(remote) {
            upsert(&mut span.attributes, "net.peer.ip", AnyValue::String(ip.into()));
        }
        if remote.port > 0 {
            upsert(&mut span.attributes, "net.peer.port", AnyValue::Int(i64::from(remote.port)));
        }
    }
    if zipkin.shared {
        upsert(&mut span.attributes, "zipkin.shared", AnyValue::Bool(true));
    }
    span.events = zipkin.annotations.into_iter().map(annotation_to_event).collect();
    Ok((span, resource, scope))
}

/// Parses a Zipkin hex ID of at most `N` bytes, left-padding shorter ones with zeros. Zero and
/// empty IDs are left to the common checks.
fn zipkin_id<const N: usize>(text: &str, reason: RejectReason, what: &str) -> Result<Vec<u8>, Problem> {
    if text.len() > 2 * N {
        return Err(Problem::new(reason, format!("{what} has {} hex digits, expected at most {}", text.len(), 2 * N)));
    }
    if let Some((index, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(Problem::new(
            reason,
            format!("{what} {text:?} is not hexadecimal: invalid character {c:?} at position {index}"),
        ));
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let padded = format!("{text:0>width$}", width = 2 * N);
    Ok(hex::decode(padded).expect("checked hex digits"))
}

/// The endpoint's address: IPv6 when both are given, as the Collector does.
fn endpoint_ip(endpoint: &Endpoint) -> Option<&str> {
    [endpoint.ipv6.as_str(), endpoint.ipv4.as_str()].into_iter().find(|ip| !ip.is_empty())
}

/// Sets `key`, replacing an attribute of the same key (a tag of that name).
fn upsert(attributes: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => attributes.push(KeyValue::new(key, value)),
    }
}

/// `otel.status_code` (with `otel.status_description`), then the `error` tag, which always
/// means an error; the `error` tag is kept as an attribute unless its value is `true`, and a
/// value other than `true` becomes the status message when none was given.
fn set_status(span: &mut Span, tags: &mut Tags) {
    if let Some(code) = take_text(tags, "otel.status_code") {
        span.status_code = match code.to_ascii_uppercase().trim_start_matches("STATUS_CODE_") {
            "OK" => StatusCode::Ok,
            "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        };
        if let Some(description) = take_text(tags, "otel.status_description") {
            span.status_message = description;
        }
    }
    if let Some(error) = tags.get("error") {
        span.status_code = StatusCode::Error;
        let text = match error {
            AnyValue::String(s) => s.to_string(),
            other => other.to_string(),
        };
        if text == "true" {
            tags.remove("error");
        } else if span.status_message.is_empty() {
            span.status_message = text;
        }
    }
}

/// `otlp.link.0`, `otlp.link.1`, … (`traceid|spanid|tracestate|{json attributes}|dropped`, as the
/// Collector's Zipkin exporter writes them) become links; malformed ones are dropped and
/// counted.
fn take_links(span: &mut Span, tags: &mut Tags) {
    for index in 0.. {
        let Some(text) = take_text(tags, &format!("otlp.link.{index}")) else { break };
        match parse_link(&text) {
            Some(link) => span.links.push(link),
            None => add_dropped(&mut span.dropped_links_count, 1),
        }
    }
}

fn parse_link(text: &str) -> Option<Link> {
    let parts: Vec<&str> = text.split('|').collect();
    if parts.len() < 5 {
        return None;
    }
    let trace_id = TraceId(hex::decode(parts[0]).ok()?.try_into().ok()?);
    let span_id = SpanId(hex::decode(parts[1]).ok()?.try_into().ok()?);
    if trace_id.is_zero() || span_id.is_zero() {
        return None;
    }
    let attributes = json_attributes(&parts[3..parts.len() - 1].join("|"))?;
    let dropped_attributes_count = parts[parts.len() - 1].parse().ok()?;
    Some(Link { trace_id, span_id, trace_state: parts[2].to_string(), attributes, dropped_attributes_count, flags: 0 })
}

/// An annotation becomes an event; a value written as `name|{json attributes}|dropped` (by the
/// Collector's Zipkin exporter) is split back into name, attributes and dropped count, any other
/// value is the event name as a whole.
fn annotation_to_event(annotation: Annotation) -> Event {
    let time_unix_nanos = annotation.timestamp.saturating_mul(1000);
    let parts: Vec<&str> = annotation.value.split('|').collect();
    if parts.len() >= 3
        && let Some(attributes) = json_attributes(&parts[1..parts.len() - 1].join("|"))
        && let Ok(dropped_attributes_count) = parts[parts.len() - 1].parse()
    {
        return Event { time_unix_nanos, name: parts[0].to_string(), attributes, dropped_attributes_count };
    }
    Event { time_unix_nanos, name: annotation.value, attributes: Vec::new(), dropped_attributes_count: 0 }
}

/// A flat JSON object of attributes: strings, booleans, whole numbers as ints, other numbers
/// as doubles; other values are skipped. `None` when not a JSON object.
fn json_attributes(text: &str) -> Option<Vec<KeyValue>> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    Some(
        object
            .into_iter()
            .filter_map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(s) => AnyValue::String(s.into()),
                    serde_json::Value::Bool(b) => AnyValue::Bool(b),
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => AnyValue::Int(i),
                        None => AnyValue::Double(n.as_f64()?),
                    },
                    _ => return None,
                };
                Some(KeyValue { key: key.into(), value })
            })
            .collect(),
    )
}

fn take_scope(tags: &mut Tags) -> Scope {
    let name = take_text(tags, "otel.scope.name");
    let version = take_text(tags, "otel.scope.version");
    let library_name = take_text(tags, "otel.library.name");
    let library_version = take_text(tags, "otel.library.version");
    Scope {
        name: name.or(library_name).unwrap_or_default(),
        version: version.or(library_version).unwrap_or_default(),
        ..Scope::default()
    }
}

/// Resource attributes that Zipkin instrumentations put in tags, by prefix or exact key (the
/// resource attributes of the OpenTelemetry semantic conventions).
const RESOURCE_TAG_PREFIXES: &[&str] = &[
    "service.",
    "telemetry.",
    "host.",
    "os.",
    "process.",
    "container.",
    "k8s.",
    "cloud.",
    "device.",
    "deployment.",
    "webengine.",
    "aws.ecs.",
    "aws.eks.",
    "aws.log.",
];
const RESOURCE_TAG_KEYS: &[&str] = &["faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory"];

fn is_resource_tag(key: &str) -> bool {
    RESOURCE_TAG_KEYS.contains(&key) || RESOURCE_TAG_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// Moves resource tags out of `tags`. `service.name` comes from a tag of that name if any (as
/// in the Collector), else from the local endpoint.
fn take_resource(tags: &mut Tags, local_endpoint: Option<&Endpoint>) -> Resource {
    let keys: Vec<String> = tags.keys().filter(|key| is_resource_tag(key)).cloned().collect();
    let mut attributes = Vec::with_capacity(keys.len() + 1);
    if let Some(endpoint) = local_endpoint.filter(|e| !e.service_name.is_empty())
        && !tags.contains_key("service.name")
    {
        attributes.push(KeyValue::string("service.name", endpoint.service_name.clone()));
    }
    for key in keys {
        if let Some(value) = tags.remove(&key) {
            attributes.push(KeyValue { key: key.into(), value });
        }
    }
    Resource { attributes, dropped_attributes_count: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_left_padded() {
        let id = zipkin_id::<16>("8448eb211c80319c", RejectReason::InvalidTraceId, "trace id").unwrap();
        assert_eq!(hex::encode(id), "00000000000000008448eb211c80319c");
        let id = zipkin_id::<8>("ABC", RejectReason::InvalidSpanId, "span id").unwrap();
        assert_eq!(hex::encode(id), "0000000000000abc");
        let too_long = zipkin_id::<8>(&"1".repeat(17), RejectReason::InvalidSpanId, "span id").unwrap_err();
        assert_eq!(too_long.detail, "span id has 17 hex digits, expected at most 16");
        let not_hex = zipkin_id::<8>("12g4", RejectReason::InvalidSpanId, "span id").unwrap_err();
        assert!(not_hex.detail.contains("invalid character 'g' at position 2"), "{}", not_hex.detail);
    }

    #[test]
    fn structured_annotations_are_split_and_others_kept_whole() {
        let event =
            annotation_to_event(Annotation { timestamp: 2, value: "retry|{\"attempt\":2,\"why\":\"a|b\"}|1".into() });
        assert_eq!(event.name, "retry");
        assert_eq!(event.time_unix_nanos, 2000);
        assert_eq!(event.dropped_attributes_count, 1);
        assert_eq!(event.attributes, vec![KeyValue::new("attempt", AnyValue::Int(2)), KeyValue::string("why", "a|b")]);
        let event = annotation_to_event(Annotation { timestamp: 2, value: "GET|/api".into() });
        assert_eq!(event.name, "GET|/api");
    }

    #[test]
    fn link_tags_become_links() {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), "x", 1, 2);
        let mut tags = Tags::new();
        tags.insert(
            "otlp.link.0".into(),
            AnyValue::String(format!("{}|{}|k=v|{{\"a\":true}}|3", "ab".repeat(16), "cd".repeat(8)).into()),
        );
        tags.insert("otlp.link.1".into(), AnyValue::String("garbage".into()));
        take_links(&mut span, &mut tags);
        assert!(tags.is_empty());
        assert_eq!(span.links.len(), 1);
        assert_eq!(span.links[0].trace_state, "k=v");
        assert_eq!(span.links[0].attributes, vec![KeyValue::new("a", AnyValue::Bool(true))]);
        assert_eq!(span.links[0].dropped_attributes_count, 3);
        assert_eq!(span.dropped_links_count, 1);
    }
}
