//! `Decoded::unchanged`: when decoding an OTLP protobuf body refused, dropped, truncated and
//! normalized nothing, the body doubles as the WAL record, so `decode_spans(body)` must give
//! exactly the accepted spans.
//!
//! The property test generates requests both within the rules and breaking them (zero, empty
//! and wrong-length IDs, end before start, missing and future times, too many attributes,
//! events and links, long values, links with bad IDs, values without a value); the unit tests
//! show that each kind of change clears the flag and that harmless differences do not.

mod common;

use common::NOW;
use common::requests::{
    HOUR, MAX_ATTRIBUTES, MAX_EVENTS, MAX_LINKS, MAX_VALUE_BYTES, any_request, kv, limits, link_to, string_value,
};
use proptest::prelude::*;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{self as pc, any_value::Value as PValue};
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;
use sextant_codec::{
    Decoded, Limits, decode_otlp_json, decode_otlp_protobuf, decode_spans, decode_zipkin_json, otlp_json,
};

fn decode(request: &ExportTraceServiceRequest) -> Decoded {
    decode_otlp_protobuf(&request.encode_to_vec(), &limits(), NOW).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn an_unchanged_batch_is_exactly_what_decode_spans_reads_from_the_body((valid, request) in any_request()) {
        let body = request.encode_to_vec();
        let decoded = decode_otlp_protobuf(&body, &limits(), NOW).unwrap();
        if valid {
            prop_assert!(decoded.unchanged, "a valid request within the limits keeps the flag");
        }
        if decoded.unchanged {
            prop_assert!(decoded.rejected.is_empty());
            prop_assert_eq!(decoded.truncated_values, 0);
            prop_assert_eq!(decode_spans(&body), Ok(decoded.spans));
        }
    }
}

// One valid request, and each kind of change made to it.

const START: u64 = NOW - 1_000_000_000;

/// A string one byte over the value limit.
fn long() -> Option<pc::AnyValue> {
    Some(string_value(&"v".repeat(MAX_VALUE_BYTES + 1)))
}

/// Every list at its limit, every value at its longest: one more of anything is a change.
fn base_request() -> ExportTraceServiceRequest {
    let full_attributes = || {
        (0..MAX_ATTRIBUTES).map(|i| kv(&format!("k{i}"), Some(string_value(&"v".repeat(MAX_VALUE_BYTES))))).collect()
    };
    let span = pt::Span {
        trace_id: vec![0xab; 16],
        span_id: vec![1; 8],
        parent_span_id: vec![2; 8],
        name: "GET /cart".into(),
        kind: 2,
        start_time_unix_nano: START,
        end_time_unix_nano: START + 1000,
        attributes: full_attributes(),
        events: (0..MAX_EVENTS as u64)
            .map(|i| pt::span::Event { time_unix_nano: START + i, attributes: full_attributes(), ..Default::default() })
            .collect(),
        links: (1..=MAX_LINKS as u8).map(|i| link_to(vec![i; 16], vec![i; 8])).collect(),
        ..Default::default()
    };
    let mut second = span.clone();
    second.span_id = vec![3; 8];
    ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(pr::Resource { attributes: full_attributes(), ..Default::default() }),
            scope_spans: vec![pt::ScopeSpans {
                scope: Some(pc::InstrumentationScope {
                    name: "lib".into(),
                    attributes: full_attributes(),
                    ..Default::default()
                }),
                spans: vec![span, second],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn first_span(request: &mut ExportTraceServiceRequest) -> &mut pt::Span {
    &mut request.resource_spans[0].scope_spans[0].spans[0]
}

fn resource_attributes(request: &mut ExportTraceServiceRequest) -> &mut Vec<pc::KeyValue> {
    &mut request.resource_spans[0].resource.as_mut().unwrap().attributes
}

fn scope_attributes(request: &mut ExportTraceServiceRequest) -> &mut Vec<pc::KeyValue> {
    &mut request.resource_spans[0].scope_spans[0].scope.as_mut().unwrap().attributes
}

#[test]
fn the_base_request_is_unchanged_and_reads_back_from_its_body() {
    let request = base_request();
    let decoded = decode(&request);
    assert!(decoded.unchanged);
    assert_eq!(decoded.spans.len(), 2);
    assert_eq!(decode_spans(&request.encode_to_vec()), Ok(decoded.spans));
}

#[test]
fn every_kind_of_change_clears_the_flag() {
    type Change = fn(&mut ExportTraceServiceRequest);
    let changes: Vec<(&str, Change)> = vec![
        // Refused spans.
        ("all-zero trace id", |r| first_span(r).trace_id = vec![0; 16]),
        ("short trace id", |r| first_span(r).trace_id = vec![1; 15]),
        ("missing span id", |r| first_span(r).span_id.clear()),
        ("all-zero span id", |r| first_span(r).span_id = vec![0; 8]),
        ("long parent span id", |r| first_span(r).parent_span_id = vec![1; 9]),
        ("missing start time", |r| first_span(r).start_time_unix_nano = 0),
        ("end before start", |r| first_span(r).end_time_unix_nano = START - 1),
        ("end too far ahead", |r| first_span(r).end_time_unix_nano = NOW + 2 * HOUR),
        // Limits on spans, events, links, resources and scopes.
        ("one span attribute too many", |r| first_span(r).attributes.push(kv("more", Some(string_value("x"))))),
        ("long span attribute value", |r| first_span(r).attributes[0].value = long()),
        ("long bytes value", |r| {
            let bytes = vec![7; MAX_VALUE_BYTES + 1];
            first_span(r).attributes[0].value = Some(pc::AnyValue { value: Some(PValue::BytesValue(bytes)) });
        }),
        ("long value inside an array", |r| {
            let values = vec![string_value("a"), long().unwrap()];
            first_span(r).attributes[0].value =
                Some(pc::AnyValue { value: Some(PValue::ArrayValue(pc::ArrayValue { values })) });
        }),
        ("long value inside a map", |r| {
            let values = vec![kv("inner", long())];
            first_span(r).attributes[0].value =
                Some(pc::AnyValue { value: Some(PValue::KvlistValue(pc::KeyValueList { values })) });
        }),
        ("one event too many", |r| first_span(r).events.push(pt::span::Event::default())),
        ("one event attribute too many", |r| first_span(r).events[0].attributes.push(kv("x", Some(string_value("x"))))),
        ("long event attribute value", |r| first_span(r).events[1].attributes[2].value = long()),
        ("one link too many", |r| first_span(r).links.push(link_to(vec![9; 16], vec![9; 8]))),
        ("long link attribute value", |r| first_span(r).links[0].attributes[0].value = long()),
        ("one link attribute too many", |r| {
            let more = (0..MAX_ATTRIBUTES).map(|i| kv(&i.to_string(), Some(string_value("x"))));
            first_span(r).links[1].attributes.extend(more);
        }),
        ("one resource attribute too many", |r| resource_attributes(r).push(kv("more", Some(string_value("x"))))),
        ("long resource attribute value", |r| resource_attributes(r)[1].value = long()),
        ("one scope attribute too many", |r| scope_attributes(r).push(kv("more", Some(string_value("x"))))),
        ("long scope attribute value", |r| scope_attributes(r)[2].value = long()),
        // Links with invalid IDs.
        ("link with an all-zero trace id", |r| first_span(r).links[0].trace_id = vec![0; 16]),
        ("link with an all-zero span id", |r| first_span(r).links[1].span_id = vec![0; 8]),
        ("link with a short span id", |r| first_span(r).links[1].span_id = vec![1; 7]),
        ("link without a trace id", |r| first_span(r).links[0].trace_id.clear()),
        // A change whose dropped count cannot show it: the count is already saturated.
        ("dropped attribute on a saturated count", |r| {
            let span = first_span(r);
            span.dropped_attributes_count = u32::MAX;
            span.attributes.push(kv("more", Some(string_value("x"))));
        }),
    ];
    assert!(decode(&base_request()).unchanged);
    for (what, change) in changes {
        let mut request = base_request();
        change(&mut request);
        let decoded = decode(&request);
        assert!(!decoded.unchanged, "{what}: the flag is still set");
        // The change did happen: the body no longer reads back as the accepted spans.
        assert_ne!(decode_spans(&request.encode_to_vec()).ok(), Some(decoded.spans), "{what}");
    }
}

/// `decode_spans` drops values without a model counterpart in the same way, but the body then
/// holds something the stored spans do not, so it is not written as the record either.
#[test]
fn dropped_values_clear_the_flag() {
    type Change = fn(&mut ExportTraceServiceRequest);
    let changes: Vec<(&str, Change)> = vec![
        ("span attribute without a value", |r| first_span(r).attributes[0].value = None),
        ("span attribute with an empty value", |r| {
            first_span(r).attributes[0].value = Some(pc::AnyValue { value: None });
        }),
        ("span attribute with a string index", |r| {
            first_span(r).attributes[0].value = Some(pc::AnyValue { value: Some(PValue::StringValueStrindex(3)) });
        }),
        ("event attribute without a value", |r| first_span(r).events[0].attributes[1].value = None),
        ("link attribute without a value", |r| first_span(r).links[0].attributes[0].value = None),
        ("resource attribute without a value", |r| resource_attributes(r)[0].value = None),
        ("scope attribute without a value", |r| scope_attributes(r)[0].value = None),
        ("array element without a value", |r| {
            let values = vec![string_value("a"), pc::AnyValue { value: None }];
            first_span(r).attributes[0].value =
                Some(pc::AnyValue { value: Some(PValue::ArrayValue(pc::ArrayValue { values })) });
        }),
        ("map entry without a value", |r| {
            let values = vec![kv("a", Some(string_value("a"))), kv("b", None)];
            first_span(r).attributes[0].value =
                Some(pc::AnyValue { value: Some(PValue::KvlistValue(pc::KeyValueList { values })) });
        }),
        ("nested map entry with a string index", |r| {
            let inner = vec![kv("deep", Some(pc::AnyValue { value: Some(PValue::StringValueStrindex(1)) }))];
            let outer = vec![
                string_value("a"),
                pc::AnyValue { value: Some(PValue::KvlistValue(pc::KeyValueList { values: inner })) },
            ];
            first_span(r).attributes[0].value =
                Some(pc::AnyValue { value: Some(PValue::ArrayValue(pc::ArrayValue { values: outer })) });
        }),
    ];
    for (what, change) in changes {
        let mut request = base_request();
        change(&mut request);
        let decoded = decode(&request);
        assert!(!decoded.unchanged, "{what}: the flag is still set");
        assert!(decoded.rejected.is_empty() && decoded.truncated_values == 0, "{what}: only the value was dropped");
    }
}

#[test]
fn harmless_differences_keep_the_flag() {
    type Change = fn(&mut ExportTraceServiceRequest);
    let changes: Vec<(&str, Change)> = vec![
        ("all-zero parent span id", |r| first_span(r).parent_span_id = vec![0; 8]),
        ("no parent span id", |r| first_span(r).parent_span_id.clear()),
        ("unknown span kind", |r| first_span(r).kind = 42),
        ("unknown status code", |r| first_span(r).status = Some(pt::Status { message: "m".into(), code: 9 })),
        ("schema urls", |r| {
            r.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
            r.resource_spans[0].scope_spans[0].schema_url = "x".into();
        }),
        ("key string index", |r| first_span(r).attributes[0].key_strindex = 4),
        ("no resource and no scope", |r| {
            r.resource_spans[0].resource = None;
            r.resource_spans[0].scope_spans[0].scope = None;
        }),
        ("empty resource and scope groups", |r| {
            r.resource_spans[0].scope_spans.push(pt::ScopeSpans::default());
            r.resource_spans.push(pt::ResourceSpans::default());
        }),
        ("empty string, bytes, array and map values", |r| {
            let empty = [
                PValue::StringValue(String::new()),
                PValue::BytesValue(Vec::new()),
                PValue::ArrayValue(pc::ArrayValue::default()),
                PValue::KvlistValue(pc::KeyValueList::default()),
            ];
            for (kv, value) in first_span(r).attributes.iter_mut().zip(empty) {
                kv.value = Some(pc::AnyValue { value: Some(value) });
            }
        }),
        ("end time at the clock skew limit", |r| {
            first_span(r).end_time_unix_nano = NOW + Limits::DEFAULT_MAX_CLOCK_SKEW_NANOS;
        }),
    ];
    for (what, change) in changes {
        let mut request = base_request();
        change(&mut request);
        let decoded = decode(&request);
        assert!(decoded.unchanged, "{what}: the flag was cleared");
        assert_eq!(decode_spans(&request.encode_to_vec()), Ok(decoded.spans), "{what}");
    }
}

#[test]
fn an_empty_body_is_unchanged() {
    let decoded = decode_otlp_protobuf(&[], &limits(), NOW).unwrap();
    assert!(decoded.unchanged && decoded.spans.is_empty());
}

#[test]
fn json_and_zipkin_bodies_never_set_the_flag() {
    let spans = decode(&base_request()).spans;
    let json = serde_json::to_vec(&otlp_json(&spans)).unwrap();
    let decoded = decode_otlp_json(&json, &limits(), NOW).unwrap();
    assert_eq!(decoded.spans.len(), 2);
    assert!(decoded.rejected.is_empty() && decoded.truncated_values == 0);
    assert!(!decoded.unchanged, "OTLP/JSON is not the WAL format");

    let zipkin = br#"[{"traceId":"0af7651916cd43dd8448eb211c80319c","id":"b7ad6b7169203331","name":"get",
        "timestamp":1544712660000000,"duration":1000,"localEndpoint":{"serviceName":"cart"}}]"#;
    let decoded = decode_zipkin_json(zipkin, &limits(), NOW).unwrap();
    assert_eq!(decoded.spans.len(), 1);
    assert!(!decoded.unchanged, "Zipkin JSON is not the WAL format");
}
