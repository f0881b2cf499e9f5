//! Sextant spans rendered in Jaeger's JSON trace model, the one the Jaeger UI reads.
//!
//! The mapping follows the OTLP → Jaeger translator Jaeger itself uses to answer its query API:
//!
//! ```text
//! trace    {"traceID", "spans": [span], "processes": {"p1": process, …}, "warnings": null}
//! process  {"serviceName", "tags": [tag]}    resource attributes except service.name
//! span     {"traceID", "spanID", "operationName", "references": [ref], "startTime", "duration",
//!           "tags": [tag], "logs": [log], "processID", "warnings": null}
//! ref      {"refType": "CHILD_OF" | "FOLLOWS_FROM", "traceID", "spanID"}
//! log      {"timestamp", "fields": [tag]}   one per event: "event" = its name, then its attributes
//! tag      {"key", "type": "string" | "bool" | "int64" | "float64" | "binary", "value"}
//! ```
//!
//! - Times and durations are unix microseconds, truncated (`duration` is `(end - start) / 1000`).
//! - Trace IDs print as Jaeger prints them: 16 hex digits when the high 64 bits are zero,
//!   32 otherwise. Span IDs always print as 16.
//! - Span tags, in order: `otel.scope.name`, `otel.scope.version`, the span's attributes,
//!   `span.kind` (`server`, `client`, …; none when unspecified), `otel.status_code` (`OK` or
//!   `ERROR`; none when unset), `error` = true for error status, `otel.status_description`,
//!   `w3c.tracestate`.
//! - The parent is the first reference, `CHILD_OF`; each link follows as `FOLLOWS_FROM`, or
//!   `CHILD_OF` when its `opentracing.ref_type` attribute says `child_of`. A link to the parent
//!   itself only sets the parent reference's type.
//! - Integers beyond JavaScript's safe range (±2^53 − 1) are written as strings (type still
//!   `int64`), bytes as base64, arrays and maps as their JSON text with type `string`.
//! - Processes are deduplicated by service name and tags, numbered `p1`, `p2`, … in order of
//!   first appearance among the spans.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sextant_model::{AnyValue, Event, KeyValue, Resource, Span, SpanKind, StatusCode, TraceId, find_attribute};

/// The largest integer a JavaScript number holds exactly; larger ones are sent as strings.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A trace ID as Jaeger prints it: 16 hex digits when the high half is zero, else 32.
pub fn trace_id_string(trace_id: &TraceId) -> String {
    let bytes = trace_id.as_bytes();
    match bytes[..8].iter().all(|b| *b == 0) {
        true => hex::encode(&bytes[8..]),
        false => hex::encode(bytes),
    }
}

/// One trace in Jaeger's model. `spans` are one trace's spans, as [`sextant_storage`] returns them.
pub fn trace_json(spans: &[Span]) -> Value {
    let mut processes: Vec<&Arc<Resource>> = Vec::new();
    let mut span_values = Vec::with_capacity(spans.len());
    for span in spans {
        let index = match processes.iter().position(|known| same_process(known, &span.resource)) {
            Some(index) => index,
            None => {
                processes.push(&span.resource);
                processes.len() - 1
            }
        };
        span_values.push(span_json(span, &process_id(index)));
    }
    let processes: Map<String, Value> =
        processes.iter().enumerate().map(|(index, resource)| (process_id(index), process_json(resource))).collect();
    json!({
        "traceID": spans.first().map(|s| trace_id_string(&s.trace_id)).unwrap_or_default(),
        "spans": span_values,
        "processes": processes,
        "warnings": null,
    })
}

fn process_id(index: usize) -> String {
    format!("p{}", index + 1)
}

/// Resource attributes that become process tags: all but `service.name`.
fn process_tags(resource: &Resource) -> impl Iterator<Item = &KeyValue> {
    resource.attributes.iter().filter(|kv| kv.key != "service.name")
}

fn same_process(a: &Arc<Resource>, b: &Arc<Resource>) -> bool {
    Arc::ptr_eq(a, b) || (a.service_name() == b.service_name() && process_tags(a).eq(process_tags(b)))
}

fn process_json(resource: &Resource) -> Value {
    let tags: Vec<Value> = process_tags(resource).map(|kv| tag(&kv.key, &kv.value)).collect();
    json!({ "serviceName": resource.service_name(), "tags": tags })
}

fn span_json(span: &Span, process_id: &str) -> Value {
    json!({
        "traceID": trace_id_string(&span.trace_id),
        "spanID": span.span_id.to_hex(),
        "operationName": span.name,
        "references": references(span),
        "startTime": span.start_unix_nanos / 1_000,
        "duration": span.duration_nanos() / 1_000,
        "tags": span_tags(span),
        "logs": span.events.iter().map(log_json).collect::<Vec<_>>(),
        "processID": process_id,
        "warnings": null,
    })
}

fn reference(ref_type: &str, trace_id: &TraceId, span_id: &sextant_model::SpanId) -> Value {
    json!({ "refType": ref_type, "traceID": trace_id_string(trace_id), "spanID": span_id.to_hex() })
}

fn references(span: &Span) -> Vec<Value> {
    let mut refs = Vec::with_capacity(span.links.len() + 1);
    if let Some(parent) = &span.parent_span_id {
        refs.push(reference("CHILD_OF", &span.trace_id, parent));
    }
    for link in &span.links {
        let ref_type = match find_attribute(&link.attributes, "opentracing.ref_type").and_then(AnyValue::as_str) {
            Some("child_of") => "CHILD_OF",
            _ => "FOLLOWS_FROM",
        };
        if span.parent_span_id == Some(link.span_id) && link.trace_id == span.trace_id {
            refs[0]["refType"] = json!(ref_type);
            continue;
        }
        refs.push(reference(ref_type, &link.trace_id, &link.span_id));
    }
    refs
}

fn string_tag(key: &str, value: &str) -> Value {
    json!({ "key": key, "type": "string", "value": value })
}

fn span_tags(span: &Span) -> Vec<Value> {
    let mut tags = Vec::with_capacity(span.attributes.len() + 6);
    if !span.scope.name.is_empty() {
        tags.push(string_tag("otel.scope.name", &span.scope.name));
    }
    if !span.scope.version.is_empty() {
        tags.push(string_tag("otel.scope.version", &span.scope.version));
    }
    tags.extend(span.attributes.iter().map(|kv| tag(&kv.key, &kv.value)));
    if span.kind != SpanKind::Unspecified {
        tags.push(string_tag("span.kind", span.kind.short_name()));
    }
    match span.status_code {
        StatusCode::Ok => tags.push(string_tag("otel.status_code", "OK")),
        StatusCode::Error => {
            tags.push(string_tag("otel.status_code", "ERROR"));
            tags.push(json!({ "key": "error", "type": "bool", "value": true }));
        }
        StatusCode::Unset => {}
    }
    if !span.status_message.is_empty() {
        tags.push(string_tag("otel.status_description", &span.status_message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string_tag("w3c.tracestate", &span.trace_state));
    }
    tags
}

fn log_json(event: &Event) -> Value {
    let mut fields = Vec::with_capacity(event.attributes.len() + 1);
    if !event.name.is_empty() && find_attribute(&event.attributes, "event").is_none() {
        fields.push(string_tag("event", &event.name));
    }
    fields.extend(event.attributes.iter().map(|kv| tag(&kv.key, &kv.value)));
    json!({ "timestamp": event.time_unix_nanos / 1_000, "fields": fields })
}

/// A typed Jaeger tag.
pub fn tag(key: &str, value: &AnyValue) -> Value {
    let (value_type, value) = match value {
        AnyValue::String(s) => ("string", json!(s)),
        AnyValue::Bool(b) => ("bool", json!(b)),
        AnyValue::Int(i) if (-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) => ("int64", json!(i)),
        AnyValue::Int(i) => ("int64", json!(i.to_string())),
        AnyValue::Double(d) => ("float64", json!(d)),
        AnyValue::Bytes(b) => ("binary", json!(base64::engine::general_purpose::STANDARD.encode(b))),
        AnyValue::Array(_) | AnyValue::KvList(_) => ("string", json!(raw_json(value).to_string())),
    };
    json!({ "key": key, "type": value_type, "value": value })
}

/// A value as plain JSON, the text arrays and maps become.
fn raw_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::String(s) => json!(s),
        AnyValue::Bool(b) => json!(b),
        AnyValue::Int(i) => json!(i),
        AnyValue::Double(d) => json!(d),
        AnyValue::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        AnyValue::Array(values) => Value::Array(values.iter().map(raw_json).collect()),
        AnyValue::KvList(kvs) => {
            Value::Object(kvs.iter().map(|kv| (kv.key.to_string(), raw_json(&kv.value))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::{Link, Scope, SpanId};

    fn resource(service: &str, region: &str) -> Arc<Resource> {
        Arc::new(Resource {
            attributes: vec![KeyValue::string("service.name", service), KeyValue::string("cloud.region", region)],
            ..Default::default()
        })
    }

    #[test]
    fn trace_ids_print_short_when_the_high_half_is_zero() {
        let short = TraceId::parse_hex("00000000000000008448eb211c80319c").unwrap();
        assert_eq!(trace_id_string(&short), "8448eb211c80319c");
        let long = TraceId::parse_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(trace_id_string(&long), "0af7651916cd43dd8448eb211c80319c");
        let leading_zero = TraceId::parse_hex("000000000000000a8448eb211c80319c").unwrap();
        assert_eq!(trace_id_string(&leading_zero), "000000000000000a8448eb211c80319c", "each half keeps 16 digits");
    }

    #[test]
    fn tags_are_typed() {
        assert_eq!(tag("k", &AnyValue::Int(7)), json!({"key": "k", "type": "int64", "value": 7}));
        assert_eq!(
            tag("k", &AnyValue::Int(1 << 60)),
            json!({"key": "k", "type": "int64", "value": "1152921504606846976"})
        );
        assert_eq!(tag("k", &AnyValue::Double(2.5)), json!({"key": "k", "type": "float64", "value": 2.5}));
        assert_eq!(tag("k", &AnyValue::Bool(false)), json!({"key": "k", "type": "bool", "value": false}));
        assert_eq!(tag("k", &AnyValue::Bytes(vec![1, 2, 255])), json!({"key": "k", "type": "binary", "value": "AQL/"}));
        let array = AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::Int(1)]);
        assert_eq!(tag("k", &array), json!({"key": "k", "type": "string", "value": "[\"a\",1]"}));
        let map = AnyValue::KvList(vec![KeyValue::new("z", AnyValue::Bool(true)), KeyValue::string("a", "b")]);
        assert_eq!(tag("k", &map), json!({"key": "k", "type": "string", "value": "{\"a\":\"b\",\"z\":true}"}));
    }

    #[test]
    fn processes_are_deduplicated_in_order_of_appearance() {
        let trace_id = TraceId([3; 16]);
        let mut a = Span::new(trace_id, SpanId([1; 8]), "a", 1_000, 2_000);
        a.resource = resource("cart", "eu");
        let mut b = Span::new(trace_id, SpanId([2; 8]), "b", 1_000, 2_000);
        b.resource = resource("cart", "us");
        let mut c = Span::new(trace_id, SpanId([3; 8]), "c", 1_000, 2_000);
        c.resource = resource("cart", "eu"); // equal, not the same Arc
        let trace = trace_json(&[a, b, c]);
        let ids: Vec<&str> =
            trace["spans"].as_array().unwrap().iter().map(|s| s["processID"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["p1", "p2", "p1"]);
        assert_eq!(trace["processes"]["p2"]["tags"], json!([{"key": "cloud.region", "type": "string", "value": "us"}]));
        assert_eq!(trace["processes"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn a_link_to_the_parent_sets_its_reference_type() {
        let trace_id = TraceId([3; 16]);
        let mut span = Span::new(trace_id, SpanId([2; 8]), "child", 1_000, 2_000);
        span.parent_span_id = Some(SpanId([1; 8]));
        let link = |span_id, ref_type: Option<&str>| Link {
            trace_id,
            span_id,
            trace_state: String::new(),
            attributes: ref_type.map(|t| KeyValue::string("opentracing.ref_type", t)).into_iter().collect(),
            dropped_attributes_count: 0,
            flags: 0,
        };
        span.links = vec![link(SpanId([1; 8]), Some("follows_from")), link(SpanId([9; 8]), Some("child_of"))];
        let refs = references(&span);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0]["refType"], "FOLLOWS_FROM");
        assert_eq!(refs[0]["spanID"], "0101010101010101");
        assert_eq!(refs[1]["refType"], "CHILD_OF");
    }

    #[test]
    fn status_kind_and_scope_become_tags_in_translator_order() {
        let mut span = Span::new(TraceId([3; 16]), SpanId([2; 8]), "x", 1_999, 5_000);
        span.kind = SpanKind::Client;
        span.status_code = StatusCode::Error;
        span.status_message = "boom".into();
        span.attributes = vec![KeyValue::new("n", AnyValue::Int(1))];
        span.scope = Arc::new(Scope { name: "lib".into(), version: "2".into(), ..Default::default() });
        let value = span_json(&span, "p1");
        let keys: Vec<&str> = value["tags"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            vec![
                "otel.scope.name",
                "otel.scope.version",
                "n",
                "span.kind",
                "otel.status_code",
                "error",
                "otel.status_description"
            ]
        );
        assert_eq!(value["startTime"], 1, "microseconds, truncated");
        assert_eq!(value["duration"], 3, "(5000 - 1999) ns is 3 µs");
    }
}
