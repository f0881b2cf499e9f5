//! OTLP/JSON ingest: fixtures in `tests/fixtures/otlp/`, validation, limits, and malformed bodies.

mod common;

use std::sync::Arc;

use common::{NOW, attr, fixture};
use sextant_codec::{DecodeError, Decoded, Limits, RejectReason, decode_otlp_json};
use sextant_model::{AnyValue, SpanId, SpanKind, StatusCode, TraceId};

fn decode(name: &str) -> Decoded {
    decode_otlp_json(&fixture(name), &Limits::default(), NOW).unwrap()
}

fn json_error(body: &str) -> String {
    match decode_otlp_json(body.as_bytes(), &Limits::default(), NOW) {
        Err(DecodeError::Json(message)) => message,
        other => panic!("expected a JSON error for {body}, got {other:?}"),
    }
}

#[test]
fn spec_example_with_uppercase_ids_decodes() {
    let decoded = decode("otlp/spec_example.json");
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let [span] = decoded.spans.as_slice() else { panic!("one span expected") };
    assert_eq!(span.trace_id, TraceId::parse_hex("5b8efff798038103d269b633813fc60c").unwrap());
    assert_eq!(span.span_id, SpanId::parse_hex("eee19b7ec3c1b174").unwrap());
    assert_eq!(span.parent_span_id, Some(SpanId::parse_hex("eee19b7ec3c1b173").unwrap()));
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!((span.start_unix_nanos, span.end_unix_nanos), (1_544_712_660_000_000_000, 1_544_712_661_000_000_000));
    assert_eq!(attr(&span.attributes, "my.span.attr"), Some(&AnyValue::String("some value".into())));
    assert_eq!(span.service_name(), "my.service");
    assert_eq!((span.scope.name.as_str(), span.scope.version.as_str()), ("my.library", "1.0.0"));
    assert_eq!(span.scope.attributes.len(), 1);
    assert_eq!(decoded.partial_success_message(), None);
}

#[test]
fn int64_as_number_and_string_and_every_value_kind() {
    let decoded = decode("otlp/int64_forms.json");
    let [span] = decoded.spans.as_slice() else { panic!("one span expected: {:?}", decoded.rejected) };
    assert_eq!(span.start_unix_nanos, 1_544_712_660_000_000_000);
    assert_eq!(span.end_unix_nanos, 1_544_712_660_500_000_000);
    assert_eq!(span.kind, SpanKind::Client, "enum names are accepted too");
    assert_eq!(attr(&span.attributes, "as.number"), Some(&AnyValue::Int(42)));
    assert_eq!(attr(&span.attributes, "as.string"), Some(&AnyValue::Int(i64::MIN)));
    assert_eq!(attr(&span.attributes, "max.as.string"), Some(&AnyValue::Int(i64::MAX)));
    assert_eq!(attr(&span.attributes, "double"), Some(&AnyValue::Double(2.5)));
    assert!(matches!(attr(&span.attributes, "double.nan"), Some(AnyValue::Double(d)) if d.is_nan()));
    assert_eq!(attr(&span.attributes, "bytes"), Some(&AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])));
    assert_eq!(attr(&span.attributes, "list"), Some(&AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Bool(true)])));
    let Some(AnyValue::KvList(map)) = attr(&span.attributes, "map") else { panic!("kvlist expected") };
    assert_eq!(map[0].key, "inner");
    assert_eq!(span.dropped_attributes_count, 3);
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].time_unix_nanos, 1_544_712_660_100_000_000);
    assert_eq!(span.events[0].dropped_attributes_count, 1);
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].trace_state, "k=v");
    assert_eq!(span.links[0].flags, 1);
    assert_eq!((span.status_code, span.status_message.as_str()), (StatusCode::Error, "boom"));
    assert_eq!(span.flags, 257);
}

#[test]
fn unknown_fields_are_ignored() {
    let decoded = decode("otlp/unknown_fields.json");
    let [span] = decoded.spans.as_slice() else { panic!("one span expected: {:?}", decoded.rejected) };
    assert_eq!(span.name, "known");
    assert_eq!(span.service_name(), "cart");
    assert_eq!(span.scope.name, "lib");
    assert_eq!(span.status_code, StatusCode::Ok);
}

#[test]
fn zero_trace_id_rejects_only_that_span() {
    let decoded = decode("otlp/zero_trace_id.json");
    assert_eq!(decoded.spans.len(), 1);
    assert_eq!(decoded.spans[0].name, "good");
    assert_eq!(decoded.rejected.len(), 1);
    assert_eq!(decoded.rejected[0].reason, RejectReason::InvalidTraceId);
    assert_eq!(
        decoded.partial_success_message().unwrap(),
        "1 span rejected: span 00000000000000000000000000000000/b7ad6b7169203331 \"bad\": trace id is all zeros"
    );
}

#[test]
fn invalid_times_are_rejected_with_precise_messages() {
    let decoded = decode("otlp/invalid_times.json");
    assert_eq!(decoded.spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["fine"]);
    let reasons: Vec<_> = decoded.rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, [RejectReason::EndBeforeStart, RejectReason::ClockSkew, RejectReason::MissingTimestamp]);
    let messages: Vec<_> = decoded.rejected.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages[0],
        "span 0af7651916cd43dd8448eb211c80319c/0000000000000001 \"end before start\": \
         end time 1544712660000000000 is before start time 1544712661000000000"
    );
    assert!(
        messages[1].contains("\"two hours ahead\": start time 1544719900000000000 is 7200 s ahead"),
        "{}",
        messages[1]
    );
    assert!(messages[1].ends_with("more than the 3600 s allowed"), "{}", messages[1]);
    assert!(messages[2].ends_with("\"missing timestamp\": start time is missing (0)"), "{}", messages[2]);
    let summary = decoded.partial_success_message().unwrap();
    assert!(
        summary.starts_with("3 spans rejected: span 0af7651916cd43dd8448eb211c80319c/0000000000000001"),
        "{summary}"
    );
}

#[test]
fn clock_skew_limit_is_configurable() {
    let limits = Limits { max_clock_skew_nanos: 3 * 3600 * 1_000_000_000, ..Limits::default() };
    let decoded = decode_otlp_json(&fixture("otlp/invalid_times.json"), &limits, NOW).unwrap();
    assert!(decoded.spans.iter().any(|s| s.name == "two hours ahead"));
}

#[test]
fn invalid_ids_reject_their_span_and_invalid_links_are_counted() {
    let decoded = decode("otlp/invalid_ids.json");
    let rejected: Vec<_> = decoded.rejected.iter().map(|r| (r.reason, r.message.as_str())).collect();
    assert_eq!(rejected.len(), 4, "{rejected:#?}");
    assert_eq!(rejected[0].0, RejectReason::InvalidTraceId);
    assert!(
        rejected[0].1.ends_with(
            "trace id \"0af7651916cd43dd8448eb211c80319z\" is not hexadecimal: invalid character 'z' at position 31"
        ),
        "{}",
        rejected[0].1
    );
    assert!(rejected[1].1.ends_with("trace id has 8 bytes, expected 16"), "{}", rejected[1].1);
    assert_eq!(rejected[2].0, RejectReason::InvalidSpanId);
    assert!(rejected[2].1.ends_with("span id is all zeros"));
    assert_eq!(rejected[3].0, RejectReason::InvalidParentSpanId);
    assert!(rejected[3].1.contains("parent span id has 2 bytes, expected 8"), "{}", rejected[3].1);

    let [span] = decoded.spans.as_slice() else { panic!("one span expected") };
    assert_eq!(span.parent_span_id, None, "an all-zero parent means root");
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.dropped_links_count, 3, "1 sent as dropped + 2 invalid links");
}

fn span_with_attributes(attributes: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{
            "traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"big",
            "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
            "droppedAttributesCount":5,"attributes":[{attributes}]}}]}}]}}]}}"#
    )
}

#[test]
fn attributes_over_the_limit_are_dropped_and_counted() {
    let attributes: Vec<String> =
        (0..200).map(|i| format!(r#"{{"key":"k{i}","value":{{"intValue":"{i}"}}}}"#)).collect();
    let body = span_with_attributes(&attributes.join(","));
    let decoded = decode_otlp_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    let span = &decoded.spans[0];
    assert_eq!(span.attributes.len(), 128);
    assert_eq!(span.attributes[127].key, "k127", "the first attributes are kept");
    assert_eq!(span.dropped_attributes_count, 72 + 5);
    assert_eq!(decoded.truncated_values, 0);
}

#[test]
fn long_strings_are_truncated_at_a_char_boundary_and_counted() {
    // "é" is 2 bytes and "€" 3: 100 KiB of them puts the 16 KiB limit inside a character.
    let long: String = "é€".repeat(100 * 1024 / 5);
    let body = span_with_attributes(&format!(
        r#"{{"key":"long","value":{{"stringValue":"{long}"}}}},{{"key":"short","value":{{"stringValue":"ok"}}}}"#
    ));
    let decoded = decode_otlp_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    let span = &decoded.spans[0];
    let Some(AnyValue::String(kept)) = attr(&span.attributes, "long") else { panic!("string expected") };
    assert!(kept.len() <= Limits::DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES);
    assert!(kept.len() > Limits::DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES - 3, "only the split character is lost");
    assert!(long.starts_with(kept.as_str()));
    assert_eq!(attr(&span.attributes, "short"), Some(&AnyValue::String("ok".into())));
    assert_eq!(span.dropped_attributes_count, 5 + 1, "a truncated value counts as dropped");
    assert_eq!(decoded.truncated_values, 1);
}

#[test]
fn empty_values_are_dropped_and_counted() {
    let body = span_with_attributes(
        r#"{"key":"empty","value":{}},{"key":"null","value":null},{"key":"kept","value":{"boolValue":false}}"#,
    );
    let decoded = decode_otlp_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    let span = &decoded.spans[0];
    assert_eq!(span.attributes.len(), 1);
    assert_eq!(span.dropped_attributes_count, 5 + 2);
}

#[test]
fn spans_of_one_scope_share_resource_and_scope() {
    let decoded = decode("otlp/invalid_times.json");
    let body = String::from_utf8(fixture("otlp/zero_trace_id.json"))
        .unwrap()
        .replace("00000000000000000000000000000000", "0af7651916cd43dd8448eb211c80319c");
    let both = decode_otlp_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
    assert_eq!(both.spans.len(), 2, "{:?}", both.rejected);
    assert!(Arc::ptr_eq(&both.spans[0].resource, &both.spans[1].resource));
    assert!(Arc::ptr_eq(&both.spans[0].scope, &both.spans[1].scope));
    assert_eq!(decoded.spans[0].service_name(), "unknown_service");
}

#[test]
fn empty_requests_decode_to_nothing() {
    for body in
        ["{}", r#"{"resourceSpans":[]}"#, r#"{"resourceSpans":null}"#, r#"{"resourceSpans":[{"scopeSpans":[{}]}]}"#]
    {
        let decoded = decode_otlp_json(body.as_bytes(), &Limits::default(), NOW).unwrap();
        assert_eq!(decoded, Decoded::default(), "{body}");
    }
}

#[test]
fn wrong_types_name_the_field_and_position() {
    let message = json_error(r#"{"resourceSpans":[{"scopeSpans":[{"spans":5}]}]}"#);
    assert!(
        message.starts_with("resourceSpans[0].scopeSpans[0].spans: invalid type: integer `5`, expected a sequence"),
        "{message}"
    );
    assert!(message.contains("line 1 column"), "{message}");

    let message = json_error("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\n\"startTimeUnixNano\": true}]}]}]}");
    assert!(
        message.starts_with("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: invalid type: boolean `true`"),
        "{message}"
    );
    assert!(message.contains("at line 2 column"), "{message}");

    let message = json_error(
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"intValue":"x1"}}]}]}]}]}"#,
    );
    assert!(message.contains("attributes[0].value"), "{message}");
    assert!(message.contains("\"x1\" is not a signed 64-bit integer"), "{message}");
}

#[test]
fn malformed_bodies_are_errors_with_a_position() {
    let message = json_error(r#"{"resourceSpans":[{"scopeSpans":["#);
    assert!(message.contains("EOF while parsing"), "{message}");
    assert!(message.contains("line 1 column 33"), "{message}");

    let message = json_error("\u{1}garbage");
    assert!(message.contains("line 1 column 1"), "{message}");

    let message = json_error(r#"{"resourceSpans":[]} trailing"#);
    assert!(message.contains("trailing characters"), "{message}");

    let message = json_error("[]");
    assert!(message.contains("invalid type: sequence, expected a JSON object"), "{message}");

    let error = decode_otlp_json(b"{", &Limits::default(), NOW).unwrap_err();
    assert!(error.to_string().starts_with("invalid OTLP/JSON: "), "{error}");
}
