//! OTLP protobuf ingest (the body of an OTLP/HTTP or gRPC request): validation, limits, sharing
//! and malformed bodies.

mod common;

use std::sync::Arc;

use common::{NOW, attr};
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{
    AnyValue as PAnyValue, InstrumentationScope, KeyValue as PKeyValue, any_value,
};
use sextant_codec::proto::tonic::resource::v1::Resource as PResource;
use sextant_codec::proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan, span};
use sextant_codec::{DecodeError, Decoded, Limits, RejectReason, decode_otlp_protobuf};
use sextant_model::{AnyValue, SpanKind};

const START: u64 = 1_544_712_660_000_000_000;

fn proto_span(span_id: u8, name: &str) -> PSpan {
    PSpan {
        trace_id: vec![0xab; 16],
        span_id: vec![span_id; 8],
        name: name.into(),
        kind: 3,
        start_time_unix_nano: START,
        end_time_unix_nano: START + 1_000,
        ..PSpan::default()
    }
}

fn string_kv(key: &str, value: &str) -> PKeyValue {
    PKeyValue {
        key: key.into(),
        value: Some(PAnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

fn request(scopes: Vec<Vec<PSpan>>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PResource { attributes: vec![string_kv("service.name", "cart")], ..PResource::default() }),
            scope_spans: scopes
                .into_iter()
                .enumerate()
                .map(|(i, spans)| ScopeSpans {
                    scope: Some(InstrumentationScope { name: format!("scope{i}"), ..InstrumentationScope::default() }),
                    spans,
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: String::new(),
        }],
    }
}

fn decode(request: ExportTraceServiceRequest, limits: &Limits) -> Decoded {
    decode_otlp_protobuf(&request.encode_to_vec(), limits, NOW).unwrap()
}

#[test]
fn protobuf_body_decodes_and_shares_resource_and_scope() {
    let body = request(vec![vec![proto_span(1, "a"), proto_span(2, "b")], vec![proto_span(3, "c")]]).encode_to_vec();
    let decoded = decode_otlp_protobuf(&body, &Limits::default(), NOW).unwrap();
    assert!(decoded.rejected.is_empty());
    let spans = &decoded.spans;
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(spans[0].kind, SpanKind::Client);
    assert_eq!(spans[0].service_name(), "cart");
    assert!(Arc::ptr_eq(&spans[0].scope, &spans[1].scope));
    assert!(!Arc::ptr_eq(&spans[1].scope, &spans[2].scope));
    assert_eq!(spans[2].scope.name, "scope1");
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[2].resource), "one resource for the whole ResourceSpans");
}

#[test]
fn invalid_spans_are_rejected_and_siblings_kept() {
    let mut short_trace = proto_span(1, "short trace id");
    short_trace.trace_id = vec![1; 15];
    let mut no_span_id = proto_span(2, "no span id");
    no_span_id.span_id.clear();
    let mut bad_parent = proto_span(3, "bad parent");
    bad_parent.parent_span_id = vec![1; 9];
    let mut backwards = proto_span(4, "backwards");
    backwards.end_time_unix_nano = START - 1;
    let decoded = decode(
        request(vec![vec![short_trace, no_span_id, proto_span(9, "kept"), bad_parent, backwards]]),
        &Limits::default(),
    );
    assert_eq!(decoded.spans.len(), 1);
    assert_eq!(decoded.spans[0].name, "kept");
    let reasons: Vec<_> = decoded.rejected.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            RejectReason::InvalidTraceId,
            RejectReason::InvalidSpanId,
            RejectReason::InvalidParentSpanId,
            RejectReason::EndBeforeStart
        ]
    );
    assert_eq!(
        decoded.rejected[0].message,
        "span 010101010101010101010101010101/0101010101010101 \"short trace id\": trace id has 15 bytes, expected 16"
    );
    assert_eq!(
        decoded.rejected[1].message,
        "span abababababababababababababababab/? \"no span id\": span id is missing"
    );
    let summary = decoded.partial_success_message().unwrap();
    assert!(summary.starts_with("4 spans rejected: span 0101"), "{summary}");
    assert!(summary.ends_with("; and 1 more"), "{summary}");
    assert_eq!(RejectReason::EndBeforeStart.as_str(), "end_before_start");
}

#[test]
fn events_and_links_over_the_limit_are_dropped_and_counted() {
    let mut big = proto_span(1, "big");
    big.events = (0..130)
        .map(|i| span::Event { time_unix_nano: START + i, name: format!("e{i}"), ..Default::default() })
        .collect();
    big.dropped_events_count = 1;
    big.links = (0..140)
        .map(|i| span::Link { trace_id: vec![7; 16], span_id: vec![i as u8 + 1; 8], ..Default::default() })
        .collect();
    big.links[0].span_id = vec![0; 8]; // invalid: dropped before the limit applies
    big.attributes = vec![string_kv("k", "v"), PKeyValue { key: "empty".into(), value: None, key_strindex: 0 }];
    let limits = Limits { max_events_per_span: 128, max_links_per_span: 100, ..Limits::default() };
    let decoded = decode(request(vec![vec![big]]), &limits);
    let span = &decoded.spans[0];
    assert_eq!((span.events.len(), span.dropped_events_count), (128, 1 + 2));
    assert_eq!((span.links.len(), span.dropped_links_count), (100, 1 + 39));
    assert_eq!(span.links[0].span_id.0, [2; 8]);
    assert_eq!(attr(&span.attributes, "k"), Some(&AnyValue::String("v".into())));
    assert_eq!(span.dropped_attributes_count, 1, "the attribute without a value");
}

#[test]
fn resource_attributes_have_their_own_limit() {
    let mut req = request(vec![vec![proto_span(1, "a")]]);
    let resource = req.resource_spans[0].resource.as_mut().unwrap();
    resource.attributes.extend((0..10).map(|i| string_kv(&format!("r{i}"), &"x".repeat(20))));
    let limits = Limits { max_attributes_per_span: 4, max_attribute_value_bytes: 10, ..Limits::default() };
    let decoded = decode(req, &limits);
    let resource = &decoded.spans[0].resource;
    assert_eq!(resource.attributes.len(), 4);
    assert_eq!(resource.dropped_attributes_count, 7 + 3, "7 over the count, 3 truncated");
    assert_eq!(decoded.truncated_values, 3);
}

#[test]
fn empty_request_is_valid() {
    let decoded = decode_otlp_protobuf(&[], &Limits::default(), NOW).unwrap();
    assert!(decoded.spans.is_empty() && decoded.rejected.is_empty());
    assert_eq!(decoded.partial_success_message(), None);
}

fn protobuf_error(body: &[u8]) -> String {
    match decode_otlp_protobuf(body, &Limits::default(), NOW) {
        Err(DecodeError::Protobuf(message)) => message,
        other => panic!("expected a protobuf error, got {other:?}"),
    }
}

#[test]
fn truncated_protobuf_names_the_field_path() {
    let body = request(vec![vec![proto_span(1, "a")]]).encode_to_vec();
    let message = protobuf_error(&body[..body.len() - 3]);
    assert!(message.contains("ExportTraceServiceRequest.resource_spans: buffer underflow"), "{message}");

    // A span whose trace_id claims 16 bytes but holds 3, inside well-formed outer messages.
    let span = [0x0a, 0x10, 1, 2, 3];
    let scope_spans = [&[0x12, span.len() as u8][..], &span].concat();
    let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
    let body = [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat();
    let message = protobuf_error(&body);
    assert_eq!(
        message,
        "failed to decode Protobuf message: Span.trace_id: ScopeSpans.spans: ResourceSpans.scope_spans: \
         ExportTraceServiceRequest.resource_spans: buffer underflow"
    );
    let error = decode_otlp_protobuf(&body[..body.len() - 3], &Limits::default(), NOW).unwrap_err();
    assert!(error.to_string().starts_with("invalid OTLP protobuf: failed to decode Protobuf message"), "{error}");
}

#[test]
fn garbage_is_an_error() {
    let message = protobuf_error(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    assert!(message.contains("varint"), "{message}");
    let message = protobuf_error(b"{\"resourceSpans\": []}");
    assert!(message.contains("failed to decode Protobuf message"), "{message}");
}
