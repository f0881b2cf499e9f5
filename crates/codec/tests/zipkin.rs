//! Zipkin v2 JSON ingest: the mapping documented in `docs/formats/zipkin-mapping.md`.

mod common;

use std::sync::Arc;

use common::{NOW, attr, fixture};
use sextant_codec::{DecodeError, Decoded, Limits, RejectReason, decode_zipkin_json};
use sextant_model::{AnyValue, SpanId, SpanKind, StatusCode, TraceId, UNKNOWN_SERVICE};

fn decode(name: &str) -> Decoded {
    decode_zipkin_json(&fixture(name), &Limits::default(), NOW).unwrap()
}

#[test]
fn client_and_shared_server_halves_are_both_kept() {
    let decoded = decode("zipkin/client_server_shared.json");
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let [client, server, root] = decoded.spans.as_slice() else { panic!("three spans expected") };

    // 64-bit trace IDs are the low half of a 128-bit ID.
    let trace_id = TraceId::parse_hex("000000000000000086154a4ba6e91385").unwrap();
    assert!(decoded.spans.iter().all(|s| s.trace_id == trace_id));

    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(client.span_id, server.span_id, "a shared span keeps the client's span id");
    assert_eq!(client.parent_span_id, Some(SpanId::parse_hex("86154a4ba6e91385").unwrap()));
    assert_eq!(server.parent_span_id, client.parent_span_id);
    assert_eq!(attr(&server.attributes, "zipkin.shared"), Some(&AnyValue::Bool(true)));
    assert_eq!(attr(&client.attributes, "zipkin.shared"), None);

    assert_eq!(client.start_unix_nanos, 1_544_712_660_000_000_000);
    assert_eq!(client.end_unix_nanos, 1_544_712_660_000_000_000 + 1_431_000);
    assert_eq!(server.start_unix_nanos, 1_544_712_660_000_200_000);

    assert_eq!(client.service_name(), "frontend");
    assert_eq!(server.service_name(), "backend");
    assert!(Arc::ptr_eq(&client.resource, &root.resource), "same local endpoint, same resource");
    assert!(!Arc::ptr_eq(&client.resource, &server.resource));
    assert!(Arc::ptr_eq(&client.scope, &server.scope));

    assert_eq!(attr(&client.attributes, "http.method").and_then(AnyValue::as_str), Some("GET"));
    assert_eq!(attr(&client.attributes, "peer.service").and_then(AnyValue::as_str), Some("backend"));
    assert_eq!(attr(&client.attributes, "net.peer.ip").and_then(AnyValue::as_str), Some("172.17.0.9"));
    assert_eq!(attr(&client.attributes, "net.peer.port"), Some(&AnyValue::Int(9000)));
    assert_eq!(attr(&client.attributes, "net.host.ip").and_then(AnyValue::as_str), Some("172.17.0.13"));
    assert_eq!(attr(&client.attributes, "net.host.port"), Some(&AnyValue::Int(8081)));
    assert_eq!(attr(&server.attributes, "peer.service"), None);
    assert_eq!(attr(&server.attributes, "net.peer.port"), Some(&AnyValue::Int(60149)));

    assert_eq!(root.parent_span_id, None);
}

#[test]
fn annotations_tags_and_error_status() {
    let decoded = decode("zipkin/annotations_tags_error.json");
    let [charge, produce] = decoded.spans.as_slice() else { panic!("two spans expected: {:?}", decoded.rejected) };

    assert_eq!(charge.events.len(), 2);
    assert_eq!(charge.events[0].name, "retrying");
    assert_eq!(charge.events[0].time_unix_nanos, 1_544_712_660_100_000_000);
    assert_eq!(charge.events[1].name, "exception");
    assert_eq!(attr(&charge.events[1].attributes, "exception.type").and_then(AnyValue::as_str), Some("Timeout"));
    assert_eq!(attr(&charge.events[1].attributes, "exception.count"), Some(&AnyValue::Int(2)));

    assert_eq!(charge.status_code, StatusCode::Error);
    assert_eq!(charge.status_message, "card declined");
    assert_eq!(
        attr(&charge.attributes, "error").and_then(AnyValue::as_str),
        Some("card declined"),
        "a descriptive error tag is kept"
    );
    assert_eq!(attr(&charge.attributes, "retries").and_then(AnyValue::as_str), Some("2"), "string tags stay strings");
    assert_eq!(attr(&charge.attributes, "numeric"), Some(&AnyValue::Int(7)));
    assert_eq!(attr(&charge.attributes, "card.brand").and_then(AnyValue::as_str), Some("visa"));
    assert_eq!(
        attr(&charge.attributes, "net.host.ip").and_then(AnyValue::as_str),
        Some("2001:db8::1"),
        "IPv6 wins over IPv4"
    );
    assert_eq!(charge.trace_state, "vendor=opaque");
    assert_eq!(attr(&charge.attributes, "w3c.tracestate"), None);
    assert_eq!(charge.kind, SpanKind::Unspecified);

    assert_eq!(attr(&charge.resource.attributes, "host.name").and_then(AnyValue::as_str), Some("pay-1"));
    assert_eq!(attr(&charge.attributes, "host.name"), None, "resource tags move to the resource");
    assert_eq!(charge.service_name(), "payments");
    assert_eq!((charge.scope.name.as_str(), charge.scope.version.as_str()), ("payments.instrumentation", "1.2.3"));
    assert_eq!(attr(&charge.attributes, "otel.scope.name"), None);

    assert_eq!(produce.kind, SpanKind::Producer);
    assert_eq!(produce.status_code, StatusCode::Error);
    assert_eq!(produce.status_message, "queue full");
    assert_eq!(attr(&produce.attributes, "error"), None, "error=true is consumed");
    assert_eq!(attr(&produce.attributes, "otel.status_code"), None);
    assert!(produce.attributes.is_empty(), "{:?}", produce.attributes);
    assert!(Arc::ptr_eq(&charge.resource, &produce.resource));
    assert!(Arc::ptr_eq(&charge.scope, &produce.scope));
}

#[test]
fn missing_endpoint_kind_and_timestamp() {
    let decoded = decode("zipkin/no_endpoint_no_kind.json");
    let [internal, no_kind] = decoded.spans.as_slice() else { panic!("two spans expected: {:?}", decoded.rejected) };
    assert_eq!(internal.service_name(), UNKNOWN_SERVICE);
    assert!(internal.resource.attributes.is_empty(), "no service.name is invented");
    assert_eq!(internal.kind, SpanKind::Internal, "span.kind=internal tag");
    assert_eq!(attr(&internal.attributes, "span.kind"), None);
    assert_eq!(no_kind.kind, SpanKind::Unspecified, "absent kind stays unspecified");
    assert_eq!(no_kind.end_unix_nanos, no_kind.start_unix_nanos, "absent duration");
    assert_eq!(attr(&no_kind.attributes, "net.host.ip").and_then(AnyValue::as_str), Some("10.0.0.2"));
    assert!(Arc::ptr_eq(&internal.resource, &no_kind.resource));

    let reasons: Vec<_> = decoded.rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, [RejectReason::InvalidTraceId, RejectReason::MissingTimestamp]);
    assert_eq!(
        decoded.rejected[0].message,
        "span 0000000000000000/a2fb4a1d1a96d314 \"zero trace id\": trace id is all zeros"
    );
}

#[test]
fn invalid_ids_reject_only_their_span() {
    let body = r#"[
        {"traceId": "xyz", "id": "1", "timestamp": 1544712660000000},
        {"traceId": "1", "id": "12345678901234567", "timestamp": 1544712660000000},
        {"traceId": "1", "id": "2", "parentId": "not-hex", "timestamp": 1544712660000000},
        {"traceId": "1", "id": "3", "parentId": "0000000000000000", "timestamp": 1544712660000000}
    ]"#;
    let decoded = decode_zipkin_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    let reasons: Vec<_> = decoded.rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, [RejectReason::InvalidTraceId, RejectReason::InvalidSpanId, RejectReason::InvalidParentSpanId]);
    assert!(decoded.rejected[0].message.contains("invalid character 'x' at position 0"));
    assert!(decoded.rejected[1].message.ends_with("span id has 17 hex digits, expected at most 16"));
    let [kept] = decoded.spans.as_slice() else { panic!("one span expected") };
    assert_eq!(kept.span_id.to_hex(), "0000000000000003");
    assert_eq!(kept.parent_span_id, None);
}

#[test]
fn tag_limits_apply() {
    let tags: Vec<String> = (0..200).map(|i| format!("\"t{i:03}\": \"v\"")).collect();
    let body =
        format!(r#"[{{"traceId": "1", "id": "2", "timestamp": 1544712660000000, "tags": {{{}}}}}]"#, tags.join(","));
    let decoded = decode_zipkin_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    assert_eq!(decoded.spans[0].attributes.len(), 128);
    assert_eq!(decoded.spans[0].dropped_attributes_count, 72);
}

#[test]
fn malformed_bodies_are_errors() {
    let error = |body: &str| match decode_zipkin_json(body.as_bytes(), &Limits::default(), NOW) {
        Err(DecodeError::Zipkin(message)) => message,
        other => panic!("expected an error for {body}, got {other:?}"),
    };
    assert!(error(r#"{"traceId": "1"}"#).contains("expected a sequence"));
    let message = error(r#"[{"traceId": "1", "id": "2", "timestamp": "soon"}]"#);
    assert!(message.starts_with("[0].timestamp: \"soon\" is not an unsigned 64-bit integer"), "{message}");
    let message = error(r#"[{"traceId": "1", "tags": {"a": [1]}}]"#);
    assert!(message.starts_with("[0].tags.a: invalid type: sequence, expected a string tag value"), "{message}");
    assert!(error(r#"[{"traceId": "1""#).contains("EOF while parsing"));
    assert_eq!(decode_zipkin_json(b"[]", &Limits::default(), NOW).unwrap(), Decoded::default());
}
