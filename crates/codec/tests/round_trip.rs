//! Round trips through every encoding, over generated spans with every kind of value:
//! WAL payload (`encode_spans` / `decode_spans`), OTLP protobuf requests
//! (`to_resource_spans` / `decode_otlp_protobuf`) and OTLP/JSON (`otlp_json` / `decode_otlp_json`).

mod common;

use std::sync::Arc;

use common::NOW;
use proptest::prelude::*;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::{
    Limits, decode_otlp_json, decode_otlp_protobuf, decode_spans, encode_spans, otlp_json, to_resource_spans,
};
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(|s: String| AnyValue::String(s.into())),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        // Every double but NaN, which is not equal to itself (NaN has its own test).
        any::<f64>().prop_filter("not NaN", |d| !d.is_nan()).prop_map(AnyValue::Double),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
            prop::collection::vec(("[a-z.]{1,8}", inner).prop_map(|(k, v)| KeyValue::new(k, v)), 0..4)
                .prop_map(AnyValue::KvList),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec((".{0,10}", any_value()).prop_map(|(k, v)| KeyValue::new(k, v)), 0..5)
}

fn trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>().prop_filter("non-zero", |id| *id != [0; 16]).prop_map(TraceId)
}

fn span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>().prop_filter("non-zero", |id| *id != [0; 8]).prop_map(SpanId)
}

fn resource() -> impl Strategy<Value = Arc<Resource>> {
    (attributes(), 0..3u32)
        .prop_map(|(attributes, dropped_attributes_count)| Arc::new(Resource { attributes, dropped_attributes_count }))
}

fn scope() -> impl Strategy<Value = Arc<Scope>> {
    ("[a-z.]{0,8}", "[0-9.]{0,5}", attributes(), 0..3u32).prop_map(|(name, version, attributes, dropped)| {
        Arc::new(Scope { name, version, attributes, dropped_attributes_count: dropped })
    })
}

fn event() -> impl Strategy<Value = Event> {
    (any::<u64>(), ".{0,10}", attributes(), 0..3u32).prop_map(|(time_unix_nanos, name, attributes, dropped)| Event {
        time_unix_nanos,
        name,
        attributes,
        dropped_attributes_count: dropped,
    })
}

fn link() -> impl Strategy<Value = Link> {
    (trace_id(), span_id(), "[a-z=,]{0,10}", attributes(), 0..3u32, any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count,
            flags,
        },
    )
}

/// A span that passes ingest validation with default limits at `NOW`, without its resource and
/// scope.
fn span() -> impl Strategy<Value = Span> {
    let identity = (trace_id(), span_id(), prop::option::of(span_id()), "[a-z=,]{0,10}", any::<u32>());
    let timing = (".{0,16}", 0..=5i32, 1..=NOW, 0..1_000_000_000_000u64);
    let content = (
        attributes(),
        prop::collection::vec(event(), 0..3),
        prop::collection::vec(link(), 0..3),
        (0..=2i32, ".{0,10}"),
        (0..5u32, 0..5u32, 0..5u32),
    );
    (identity, timing, content).prop_map(
        |(
            (trace_id, span_id, parent, trace_state, flags),
            (name, kind, start, duration),
            (attributes, events, links, (code, message), (dropped_attributes, dropped_events, dropped_links)),
        )| {
            let mut span = Span::new(trace_id, span_id, name, start, start + duration);
            span.parent_span_id = parent;
            span.trace_state = trace_state;
            span.flags = flags;
            span.kind = SpanKind::from_i32(kind);
            span.attributes = attributes;
            span.dropped_attributes_count = dropped_attributes;
            span.events = events;
            span.dropped_events_count = dropped_events;
            span.links = links;
            span.dropped_links_count = dropped_links;
            span.status_code = StatusCode::from_i32(code);
            span.status_message = message;
            span
        },
    )
}

/// Spans drawing their resource and scope from small shared pools, so batches mix shared and
/// distinct ones.
fn spans() -> impl Strategy<Value = Vec<Span>> {
    (
        prop::collection::vec(resource(), 1..3),
        prop::collection::vec(scope(), 1..3),
        prop::collection::vec((span(), any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..8),
    )
        .prop_map(|(resources, scopes, spans)| {
            spans
                .into_iter()
                .map(|(mut span, r, s)| {
                    span.resource = r.get(&resources).clone();
                    span.scope = s.get(&scopes).clone();
                    span
                })
                .collect()
        })
}

/// The order in which grouped output lists spans: by first-seen resource, then first-seen scope
/// within it, then input order.
fn grouped(spans: &[Span]) -> Vec<Span> {
    let mut resources: Vec<(&Resource, Vec<&Scope>)> = Vec::new();
    let mut keyed: Vec<(usize, usize, usize, Span)> = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let r = match resources.iter().position(|(r, _)| **r == *span.resource) {
            Some(r) => r,
            None => {
                resources.push((&span.resource, Vec::new()));
                resources.len() - 1
            }
        };
        let scopes = &mut resources[r].1;
        let s = match scopes.iter().position(|s| **s == *span.scope) {
            Some(s) => s,
            None => {
                scopes.push(&span.scope);
                scopes.len() - 1
            }
        };
        keyed.push((r, s, index, span.clone()));
    }
    keyed.sort_by_key(|(r, s, index, _)| (*r, *s, *index));
    keyed.into_iter().map(|(_, _, _, span)| span).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn wal_payload_round_trips_in_order(spans in spans()) {
        let decoded = decode_spans(&encode_spans(&spans)).unwrap();
        prop_assert_eq!(decoded, spans);
    }

    #[test]
    fn otlp_messages_round_trip_through_ingest(spans in spans()) {
        let request = ExportTraceServiceRequest { resource_spans: to_resource_spans(&spans) };
        let decoded = decode_otlp_protobuf(&request.encode_to_vec(), &Limits::default(), NOW).unwrap();
        prop_assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        prop_assert_eq!(decoded.truncated_values, 0);
        prop_assert!(decoded.unchanged, "valid spans within the limits are taken as they are");
        prop_assert_eq!(decoded.spans, grouped(&spans));
    }

    #[test]
    fn otlp_json_round_trips_through_ingest(spans in spans()) {
        let body = serde_json::to_vec(&otlp_json(&spans)).unwrap();
        let decoded = decode_otlp_json(&body, &Limits::default(), NOW).unwrap();
        prop_assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        prop_assert_eq!(decoded.spans, grouped(&spans));
    }
}

fn sample_span() -> Span {
    let mut span = Span::new(
        TraceId::parse_hex("0AF7651916CD43DD8448EB211C80319C").unwrap(),
        SpanId::parse_hex("B7AD6B7169203331").unwrap(),
        "GET /cart",
        1_544_712_660_000_000_000,
        1_544_712_661_000_000_000,
    );
    span.kind = SpanKind::Server;
    span.attributes = vec![
        KeyValue::new("http.status_code", AnyValue::Int(200)),
        KeyValue::new("ratio", AnyValue::Double(f64::NAN)),
        KeyValue::new("raw", AnyValue::Bytes(vec![0xfb, 0xff])),
    ];
    span
}

#[test]
fn otlp_json_uses_the_otlp_json_encoding() {
    let value = otlp_json(&[sample_span()]);
    let span = &value["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span["spanId"], "b7ad6b7169203331");
    assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
    assert_eq!(span["endTimeUnixNano"], "1544712661000000000");
    assert_eq!(span["kind"], 2);
    assert_eq!(span["status"]["code"], 0);
    assert!(span.get("parentSpanId").is_none(), "roots have no parent field");
    assert_eq!(span["attributes"][0]["value"]["intValue"], "200");
    assert_eq!(span["attributes"][1]["value"]["doubleValue"], "NaN");
    assert_eq!(span["attributes"][2]["value"]["bytesValue"], "+/8=");

    let body = serde_json::to_vec(&value).unwrap();
    let decoded = decode_otlp_json(&body, &Limits::default(), NOW).unwrap();
    assert!(matches!(decoded.spans[0].attributes[1].value, AnyValue::Double(d) if d.is_nan()));
}

#[test]
fn decoded_wal_spans_of_one_scope_share_resource_and_scope() {
    let mut second = sample_span();
    second.span_id = SpanId([2; 8]);
    second.resource = Arc::new((*second.resource).clone()); // equal value, another Arc
    let decoded = decode_spans(&encode_spans(&[sample_span(), second])).unwrap();
    assert!(Arc::ptr_eq(&decoded[0].resource, &decoded[1].resource));
    assert!(Arc::ptr_eq(&decoded[0].scope, &decoded[1].scope));
}

#[test]
fn to_resource_spans_groups_in_first_seen_order() {
    let cart = Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "cart")], ..Resource::default() });
    let shop = Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "shop")], ..Resource::default() });
    let mut spans = Vec::new();
    for (i, resource) in [&cart, &shop, &cart].into_iter().enumerate() {
        let mut span = sample_span();
        span.span_id = SpanId([i as u8 + 1; 8]);
        span.resource = resource.clone();
        spans.push(span);
    }
    let grouped = to_resource_spans(&spans);
    assert_eq!(grouped.len(), 2);
    assert_eq!(grouped[0].scope_spans[0].spans.len(), 2);
    assert_eq!(grouped[0].scope_spans[0].spans[1].span_id, vec![3; 8]);
    assert_eq!(grouped[1].scope_spans[0].spans[0].span_id, vec![2; 8]);
}

#[test]
fn wal_payload_with_a_wrong_length_id_is_an_error() {
    let mut data =
        sextant_codec::proto::tonic::trace::v1::TracesData { resource_spans: to_resource_spans(&[sample_span()]) };
    data.resource_spans[0].scope_spans[0].spans[0].span_id.pop();
    let error = decode_spans(&data.encode_to_vec()).unwrap_err();
    assert_eq!(error.to_string(), "invalid OTLP protobuf: span 0: span id has the wrong length");
}
