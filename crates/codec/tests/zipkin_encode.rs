//! Zipkin v2 JSON out: what the Zipkin query API serves. Spans written with `zipkin_json` and
//! read back with `decode_zipkin_json` are the spans written, for every span Zipkin can carry
//! (microsecond times, text attributes, resource attributes Zipkin instrumentations put in
//! tags), and a Zipkin body read and written again is the body.

mod common;

use std::sync::Arc;

use common::{NOW, fixture};
use proptest::prelude::*;
use serde_json::{Value, json};
use sextant_codec::{Limits, decode_zipkin_json, zipkin_json};
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

fn read_back(spans: &[Span]) -> Vec<Span> {
    let body = serde_json::to_vec(&zipkin_json(spans)).unwrap();
    let decoded = decode_zipkin_json(&body, &Limits::default(), NOW).unwrap();
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    decoded.spans
}

fn text() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9 _/|-]{0,12}"
}

fn key() -> impl Strategy<Value = String> {
    "[a-z]{1,6}(\\.[a-z]{1,6})?".prop_filter("not a key Zipkin's mapping reserves", |k| {
        !k.starts_with("otel.")
            && !k.starts_with("otlp.")
            && !k.starts_with("span.")
            && !k.starts_with("w3c.")
            && !k.starts_with("net.")
            && !k.starts_with("peer.")
            && !k.starts_with("zipkin.")
            && k != "error"
            && !["service", "telemetry", "host", "os", "process", "container", "k8s", "cloud", "device"]
                .iter()
                .any(|prefix| k.starts_with(&format!("{prefix}.")))
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::btree_map(key(), text(), 0..4)
        .prop_map(|map| map.into_iter().map(|(k, v)| KeyValue::string(k, v)).collect())
}

fn event_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::btree_map(
        key(),
        prop_oneof![
            text().prop_map(|s| AnyValue::String(s.into())),
            any::<i32>().prop_map(|i| AnyValue::Int(i.into())),
            any::<bool>().prop_map(AnyValue::Bool)
        ],
        0..3,
    )
    .prop_map(|map| map.into_iter().map(|(key, value)| KeyValue::new(key, value)).collect())
}

prop_compose! {
    fn span()(
        trace in any::<[u8; 16]>().prop_filter("non-zero", |t| t.iter().any(|&b| b != 0)),
        id in any::<[u8; 8]>().prop_filter("non-zero", |t| t.iter().any(|&b| b != 0)),
        parent in prop::option::of(any::<[u8; 8]>().prop_filter("non-zero", |t| t.iter().any(|&b| b != 0))),
        name in text(),
        kind in prop::sample::select(vec![SpanKind::Unspecified, SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer]),
        start_micros in 1_544_712_000_000_000u64..1_544_712_650_000_000,
        duration_micros in 0u64..5_000_000,
        attributes in attributes(),
        status in prop::sample::select(vec![StatusCode::Unset, StatusCode::Ok, StatusCode::Error]),
        message in text(),
        events in prop::collection::vec((0u64..5_000_000, text(), event_attributes(), 0u32..2), 0..3),
        links in prop::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>(), event_attributes(), 0u32..3), 0..2),
        service in prop::option::of(text()),
        host in prop::option::of(text()),
        scope in prop::option::of((text(), text())),
        trace_state in prop::option::of("[a-z]{1,4}=[a-z0-9]{1,4}"),
    ) -> Span {
        let start = start_micros * 1000;
        let mut span = Span::new(TraceId(trace), SpanId(id), name, start, start + duration_micros * 1000);
        span.parent_span_id = parent.map(SpanId).filter(|p| p.0 != id);
        span.kind = kind;
        span.attributes = attributes;
        span.status_code = status;
        if status != StatusCode::Unset {
            span.status_message = message;
        }
        span.events = events
            .into_iter()
            .map(|(offset, name, attributes, dropped)| Event {
                time_unix_nanos: start + offset * 1000,
                // A plain annotation value holding `|` followed by JSON would read as structured.
                name: name.replace('|', "/"),
                attributes,
                dropped_attributes_count: dropped,
            })
            .collect();
        span.links = links
            .into_iter()
            .filter(|(t, s, _, _)| t.iter().any(|&b| b != 0) && s.iter().any(|&b| b != 0))
            .map(|(trace_id, span_id, attributes, dropped)| Link {
                trace_id: TraceId(trace_id),
                span_id: SpanId(span_id),
                trace_state: String::new(),
                attributes,
                dropped_attributes_count: dropped,
                flags: 0,
            })
            .collect();
        let mut resource = Vec::new();
        if let Some(service) = service {
            resource.push(KeyValue::string("service.name", service));
        }
        if let Some(host) = host {
            resource.push(KeyValue::string("host.name", host));
        }
        span.resource = Arc::new(Resource { attributes: resource, dropped_attributes_count: 0 });
        if let Some((name, version)) = scope {
            span.scope = Arc::new(Scope { name, version, ..Scope::default() });
        }
        span.trace_state = trace_state.unwrap_or_default();
        span
    }
}

proptest! {
    #[test]
    fn spans_read_back_as_written(spans in prop::collection::vec(span(), 1..5)) {
        let back = read_back(&spans);
        prop_assert_eq!(back.len(), spans.len());
        for (written, read) in spans.iter().zip(&back) {
            // Zipkin tags are sorted by key; the decoder keeps that order.
            let mut expected = written.clone();
            expected.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            prop_assert_eq!(read, &expected);
        }
    }
}

#[test]
fn endpoints_shared_spans_and_typed_attributes() {
    let mut span =
        Span::new(TraceId([0; 16]), SpanId([2; 8]), "get /cart", 1_544_712_660_000_000_000, 1_544_712_660_250_000_000);
    span.trace_id.0[15] = 7;
    span.kind = SpanKind::Server;
    span.attributes = vec![
        KeyValue::string("net.host.ip", "10.0.0.1"),
        KeyValue::new("net.host.port", AnyValue::Int(8080)),
        KeyValue::string("peer.service", "cart-db"),
        KeyValue::string("net.peer.ip", "2001:db8::1"),
        KeyValue::new("net.peer.port", AnyValue::Int(5432)),
        KeyValue::new("zipkin.shared", AnyValue::Bool(true)),
        KeyValue::new("http.response.status_code", AnyValue::Int(200)),
        KeyValue::new("retry", AnyValue::Bool(false)),
    ];
    span.resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "cart")], dropped_attributes_count: 0 });
    let json = zipkin_json(std::slice::from_ref(&span));
    assert_eq!(
        json,
        json!([{
            "traceId": "0000000000000007",
            "id": "0202020202020202",
            "name": "get /cart",
            "kind": "SERVER",
            "timestamp": 1_544_712_660_000_000u64,
            "duration": 250_000,
            "localEndpoint": { "serviceName": "cart", "ipv4": "10.0.0.1", "port": 8080 },
            "remoteEndpoint": { "serviceName": "cart-db", "ipv6": "2001:db8::1", "port": 5432 },
            "tags": { "http.response.status_code": "200", "retry": "false" },
            "shared": true
        }])
    );
    // Typed attributes come back as text, as any Zipkin tag.
    let back = read_back(&[span]);
    let find = |key: &str| back[0].attributes.iter().find(|kv| kv.key == key).map(|kv| kv.value.clone());
    assert_eq!(find("http.response.status_code"), Some(AnyValue::String("200".into())));
    assert_eq!(find("net.host.port"), Some(AnyValue::Int(8080)));
    assert_eq!(find("zipkin.shared"), Some(AnyValue::Bool(true)));
}

/// A Zipkin body (a client, the shared server half and the root) read and written again is the
/// same JSON.
#[test]
fn a_zipkin_body_read_and_written_is_unchanged() {
    let body = fixture("zipkin/client_server_shared.json");
    let decoded = decode_zipkin_json(&body, &Limits::default(), NOW).unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(zipkin_json(&decoded.spans), sent);
}
