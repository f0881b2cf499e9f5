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
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{self as pc, any_value::Value as PValue};
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;
use sextant_codec::{
    Decoded, Limits, decode_otlp_json, decode_otlp_protobuf, decode_spans, decode_zipkin_json, from_otlp_request,
    otlp_json,
};

const MAX_ATTRIBUTES: usize = 3;
const MAX_VALUE_BYTES: usize = 6;
const MAX_EVENTS: usize = 2;
const MAX_LINKS: usize = 2;

/// Small limits, so generated requests are often just within them and often just over.
fn limits() -> Limits {
    Limits {
        max_attributes_per_span: MAX_ATTRIBUTES,
        max_attribute_value_bytes: MAX_VALUE_BYTES,
        max_events_per_span: MAX_EVENTS,
        max_links_per_span: MAX_LINKS,
        ..Limits::default()
    }
}

fn decode(request: &ExportTraceServiceRequest) -> Decoded {
    decode_otlp_protobuf(&request.encode_to_vec(), &limits(), NOW).unwrap()
}

// Generators. With `valid`, everything stays within the rules and the limits; otherwise any
// rule may be broken, though most values are still valid so that unchanged batches remain
// common.

fn id(len: usize, valid: bool) -> BoxedStrategy<Vec<u8>> {
    let good = prop::collection::vec(any::<u8>(), len).prop_filter("not all zeros", |id| id.iter().any(|b| *b != 0));
    if valid {
        return good.boxed();
    }
    prop_oneof![
        12 => good,
        1 => Just(vec![0; len]),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 1..20).prop_filter("wrong length", move |id| id.len() != len),
    ]
    .boxed()
}

/// Empty and all zeros both mean a root span.
fn parent_id(valid: bool) -> BoxedStrategy<Vec<u8>> {
    let good = prop_oneof![Just(Vec::new()), Just(vec![0; 8]), prop::collection::vec(any::<u8>(), 8)];
    if valid {
        return good.boxed();
    }
    prop_oneof![12 => good, 1 => prop::collection::vec(any::<u8>(), 1..7)].boxed()
}

/// Text of at most `max_bytes` bytes, often with multibyte characters near the end.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    "[a-z0-9é€]{0,10}".prop_map(move |mut s| {
        while s.len() > max_bytes {
            s.pop();
        }
        s
    })
}

fn value_bytes(valid: bool) -> usize {
    if valid { MAX_VALUE_BYTES } else { MAX_VALUE_BYTES + 4 }
}

fn any_value(valid: bool) -> BoxedStrategy<pc::AnyValue> {
    let max_bytes = value_bytes(valid);
    let leaf = prop_oneof![
        text(max_bytes).prop_map(PValue::StringValue),
        any::<bool>().prop_map(PValue::BoolValue),
        any::<i64>().prop_map(PValue::IntValue),
        // NaN is not equal to itself; it takes the same path as any other double.
        any::<f64>().prop_filter("not NaN", |d| !d.is_nan()).prop_map(PValue::DoubleValue),
        prop::collection::vec(any::<u8>(), 0..=max_bytes).prop_map(PValue::BytesValue),
    ]
    .prop_map(|value| pc::AnyValue { value: Some(value) });
    let leaf = if valid {
        leaf.boxed()
    } else {
        prop_oneof![
            12 => leaf,
            1 => Just(pc::AnyValue { value: None }),
            1 => any::<i32>().prop_map(|i| pc::AnyValue { value: Some(PValue::StringValueStrindex(i)) }),
        ]
        .boxed()
    };
    leaf.prop_recursive(2, 12, 3, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|values| pc::AnyValue { value: Some(PValue::ArrayValue(pc::ArrayValue { values })) }),
            prop::collection::vec(key_value_with(inner, valid), 0..3)
                .prop_map(|values| pc::AnyValue { value: Some(PValue::KvlistValue(pc::KeyValueList { values })) }),
        ]
    })
    .boxed()
}

/// A key and a value drawn from `value`; without `valid`, sometimes no value at all.
fn key_value_with(value: BoxedStrategy<pc::AnyValue>, valid: bool) -> BoxedStrategy<pc::KeyValue> {
    let value = if valid { value.prop_map(Some).boxed() } else { prop::option::weighted(0.95, value).boxed() };
    // `key_strindex` is a profiles-only field the model ignores whatever its value.
    ("[a-z.]{0,6}", value, prop_oneof![4 => Just(0), 1 => 1..5i32])
        .prop_map(|(key, value, key_strindex)| pc::KeyValue { key, value, key_strindex })
        .boxed()
}

fn attributes(valid: bool) -> BoxedStrategy<Vec<pc::KeyValue>> {
    let max = if valid { MAX_ATTRIBUTES } else { MAX_ATTRIBUTES + 2 };
    prop::collection::vec(key_value_with(any_value(valid), valid), 0..=max).boxed()
}

/// Dropped counts, sometimes saturated already.
fn dropped_count() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..3u32, 1 => Just(u32::MAX)]
}

fn event(valid: bool) -> impl Strategy<Value = pt::span::Event> {
    (any::<u64>(), text(12), attributes(valid), dropped_count()).prop_map(
        |(time_unix_nano, name, attributes, dropped_attributes_count)| pt::span::Event {
            time_unix_nano,
            name,
            attributes,
            dropped_attributes_count,
        },
    )
}

fn link(valid: bool) -> impl Strategy<Value = pt::span::Link> {
    (id(16, valid), id(8, valid), "[a-z=,]{0,6}", attributes(valid), dropped_count(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| pt::span::Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count,
            flags,
        },
    )
}

/// Start and end times; without `valid`, also missing, backwards or too far in the future.
fn times(valid: bool) -> BoxedStrategy<(u64, u64)> {
    let good = (1..=NOW, 0..1_000_000_000_000u64).prop_map(|(start, duration)| (start, start + duration));
    if valid {
        return good.boxed();
    }
    prop_oneof![
        12 => good,
        1 => (0..10u64).prop_map(|end| (0, end)),
        1 => (2..=NOW).prop_map(|start| (start, start - 1)),
        1 => (0..3 * HOUR).prop_map(|ahead| (NOW, NOW + ahead)),
    ]
    .boxed()
}

fn span(valid: bool) -> impl Strategy<Value = pt::Span> {
    let max_events = if valid { MAX_EVENTS } else { MAX_EVENTS + 2 };
    let max_links = if valid { MAX_LINKS } else { MAX_LINKS + 2 };
    let identity = (id(16, valid), id(8, valid), parent_id(valid), "[a-z=,]{0,6}", any::<u32>());
    // Kinds and status codes beyond the enums read as unspecified/unset on both paths.
    let basics = (text(16), -1..8i32, times(valid), prop::option::of((-1..4i32, text(8))));
    let content = (
        attributes(valid),
        prop::collection::vec(event(valid), 0..=max_events),
        prop::collection::vec(link(valid), 0..=max_links),
        (dropped_count(), dropped_count(), dropped_count()),
    );
    (identity, basics, content).prop_map(
        |(
            (trace_id, span_id, parent_span_id, trace_state, flags),
            (name, kind, (start, end), status),
            (attributes, events, links, (dropped_attributes_count, dropped_events_count, dropped_links_count)),
        )| pt::Span {
            trace_id,
            span_id,
            trace_state,
            parent_span_id,
            flags,
            name,
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            dropped_attributes_count,
            events,
            dropped_events_count,
            links,
            dropped_links_count,
            status: status.map(|(code, message)| pt::Status { message, code }),
        },
    )
}

fn resource(valid: bool) -> impl Strategy<Value = Option<pr::Resource>> {
    let entity = ("[a-z]{0,4}", "[a-z]{0,4}").prop_map(|(schema_url, r#type)| pc::EntityRef {
        schema_url,
        r#type,
        id_keys: vec!["service.name".into()],
        description_keys: Vec::new(),
    });
    prop::option::weighted(0.9, (attributes(valid), dropped_count(), prop::collection::vec(entity, 0..2))).prop_map(
        |resource| {
            resource.map(|(attributes, dropped_attributes_count, entity_refs)| pr::Resource {
                attributes,
                dropped_attributes_count,
                entity_refs,
            })
        },
    )
}

fn scope(valid: bool) -> impl Strategy<Value = Option<pc::InstrumentationScope>> {
    prop::option::weighted(0.9, (text(8), text(8), attributes(valid), dropped_count())).prop_map(|scope| {
        scope.map(|(name, version, attributes, dropped_attributes_count)| pc::InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count,
        })
    })
}

fn request(valid: bool) -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope_spans = (scope(valid), prop::collection::vec(span(valid), 0..4), "[a-z:/]{0,4}")
        .prop_map(|(scope, spans, schema_url)| pt::ScopeSpans { scope, spans, schema_url });
    let resource_spans = (resource(valid), prop::collection::vec(scope_spans, 0..3), "[a-z:/]{0,4}")
        .prop_map(|(resource, scope_spans, schema_url)| pt::ResourceSpans { resource, scope_spans, schema_url });
    prop::collection::vec(resource_spans, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// One rule broken in an otherwise valid request: in the span, or in the attribute list (of a
/// resource, scope, span, event or link) the index picks. A defect whose target does not
/// exist changes nothing.
#[derive(Clone, Debug)]
enum Defect {
    Span(Index, SpanDefect),
    Attributes(Index, AttributeDefect),
}

#[derive(Clone, Debug)]
enum SpanDefect {
    TraceId(Vec<u8>),
    SpanId(Vec<u8>),
    ParentSpanId(Vec<u8>),
    Times(u64, u64),
    TooManyEvents(usize),
    TooManyLinks(usize),
    LinkTraceId(Index, Vec<u8>),
    LinkSpanId(Index, Vec<u8>),
}

#[derive(Clone, Debug)]
enum AttributeDefect {
    /// This many attributes over the limit.
    TooMany(usize),
    /// A value too long, or without a model counterpart.
    Value(Index, Option<pc::AnyValue>),
}

fn bad_id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0; len]),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..20).prop_filter("wrong length", move |id| id.len() != len),
    ]
}

fn bad_value() -> impl Strategy<Value = Option<pc::AnyValue>> {
    let long = MAX_VALUE_BYTES + 1..MAX_VALUE_BYTES + 4;
    let wrap = |value| Some(pc::AnyValue { value: Some(value) });
    prop_oneof![
        Just(None),
        Just(Some(pc::AnyValue { value: None })),
        Just(wrap(PValue::StringValueStrindex(1))),
        long.clone().prop_map(move |n| wrap(PValue::StringValue("é".repeat(n / 2 + 1)))),
        long.clone().prop_map(move |n| wrap(PValue::BytesValue(vec![1; n]))),
        long.prop_map(move |n| {
            let inner = pc::AnyValue { value: Some(PValue::StringValue("x".repeat(n))) };
            wrap(PValue::ArrayValue(pc::ArrayValue { values: vec![string_value("a"), inner] }))
        }),
        Just(wrap(PValue::ArrayValue(pc::ArrayValue { values: vec![pc::AnyValue { value: None }] }))),
        Just(wrap(PValue::KvlistValue(pc::KeyValueList { values: vec![kv("a", None)] }))),
    ]
}

fn defect() -> impl Strategy<Value = Defect> {
    let times = prop_oneof![
        (0..10u64).prop_map(|end| (0, end)),
        (2..=NOW).prop_map(|start| (start, start - 1)),
        (1..HOUR).prop_map(|ahead| (NOW, NOW + Limits::DEFAULT_MAX_CLOCK_SKEW_NANOS + ahead)),
    ];
    let span = prop_oneof![
        bad_id(16).prop_map(SpanDefect::TraceId),
        bad_id(8).prop_map(SpanDefect::SpanId),
        prop::collection::vec(any::<u8>(), 1..7).prop_map(SpanDefect::ParentSpanId),
        times.prop_map(|(start, end)| SpanDefect::Times(start, end)),
        (1..3usize).prop_map(SpanDefect::TooManyEvents),
        (1..3usize).prop_map(SpanDefect::TooManyLinks),
        (any::<Index>(), bad_id(16)).prop_map(|(l, id)| SpanDefect::LinkTraceId(l, id)),
        (any::<Index>(), bad_id(8)).prop_map(|(l, id)| SpanDefect::LinkSpanId(l, id)),
    ];
    let attributes = prop_oneof![
        (1..3usize).prop_map(AttributeDefect::TooMany),
        (any::<Index>(), bad_value()).prop_map(|(a, value)| AttributeDefect::Value(a, value)),
    ];
    prop_oneof![
        (any::<Index>(), span).prop_map(|(s, defect)| Defect::Span(s, defect)),
        (any::<Index>(), attributes).prop_map(|(l, defect)| Defect::Attributes(l, defect)),
    ]
}

fn pick<'a, T>(items: &'a mut [T], index: &Index) -> Option<&'a mut T> {
    if items.is_empty() { None } else { Some(index.get_mut(items)) }
}

fn apply(defect: &Defect, request: &mut ExportTraceServiceRequest) {
    match defect {
        Defect::Span(s, defect) => {
            let mut spans: Vec<&mut pt::Span> =
                request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans).collect();
            if let Some(span) = pick(&mut spans, s) {
                apply_to_span(defect, span);
            }
        }
        Defect::Attributes(l, defect) => {
            let mut lists = attribute_lists(request);
            let Some(list) = pick(&mut lists, l) else { return };
            match defect {
                AttributeDefect::TooMany(n) => list.resize(MAX_ATTRIBUTES + n, kv("more", Some(string_value("x")))),
                AttributeDefect::Value(a, value) => {
                    if let Some(attribute) = pick(list, a) {
                        attribute.value = value.clone();
                    }
                }
            }
        }
    }
}

fn apply_to_span(defect: &SpanDefect, span: &mut pt::Span) {
    match defect {
        SpanDefect::TraceId(id) => span.trace_id = id.clone(),
        SpanDefect::SpanId(id) => span.span_id = id.clone(),
        SpanDefect::ParentSpanId(id) => span.parent_span_id = id.clone(),
        SpanDefect::Times(start, end) => (span.start_time_unix_nano, span.end_time_unix_nano) = (*start, *end),
        SpanDefect::TooManyEvents(n) => span.events.resize(MAX_EVENTS + n, pt::span::Event::default()),
        SpanDefect::TooManyLinks(n) => span.links.resize(MAX_LINKS + n, link_to(vec![5; 16], vec![5; 8])),
        SpanDefect::LinkTraceId(l, id) => {
            if let Some(link) = pick(&mut span.links, l) {
                link.trace_id = id.clone();
            }
        }
        SpanDefect::LinkSpanId(l, id) => {
            if let Some(link) = pick(&mut span.links, l) {
                link.span_id = id.clone();
            }
        }
    }
}

/// Every attribute list of a request: of its resources, scopes, spans, events and links.
fn attribute_lists(request: &mut ExportTraceServiceRequest) -> Vec<&mut Vec<pc::KeyValue>> {
    let mut lists = Vec::new();
    for resource_spans in &mut request.resource_spans {
        if let Some(resource) = &mut resource_spans.resource {
            lists.push(&mut resource.attributes);
        }
        for scope_spans in &mut resource_spans.scope_spans {
            if let Some(scope) = &mut scope_spans.scope {
                lists.push(&mut scope.attributes);
            }
            for span in &mut scope_spans.spans {
                lists.push(&mut span.attributes);
                lists.extend(span.events.iter_mut().map(|e| &mut e.attributes));
                lists.extend(span.links.iter_mut().map(|l| &mut l.attributes));
            }
        }
    }
    lists
}

/// A request and whether it is known to be valid and within the limits: either generated
/// valid, possibly with a few defects added, or generated with any rule broken anywhere.
fn any_request() -> impl Strategy<Value = (bool, ExportTraceServiceRequest)> {
    prop_oneof![
        (request(true), prop::collection::vec(defect(), 0..3)).prop_map(|(mut request, defects)| {
            defects.iter().for_each(|defect| apply(defect, &mut request));
            (defects.is_empty(), request)
        }),
        request(false).prop_map(|request| (false, request)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn an_unchanged_batch_is_exactly_what_decode_spans_reads_from_the_body((valid, request) in any_request()) {
        let body = request.encode_to_vec();
        let decoded = decode_otlp_protobuf(&body, &limits(), NOW).unwrap();
        prop_assert_eq!(&from_otlp_request(request, &limits(), NOW), &decoded, "both protobuf paths agree");
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
const HOUR: u64 = 3600 * 1_000_000_000;

/// A string one byte over the value limit.
fn long() -> Option<pc::AnyValue> {
    Some(string_value(&"v".repeat(MAX_VALUE_BYTES + 1)))
}

fn string_value(s: &str) -> pc::AnyValue {
    pc::AnyValue { value: Some(PValue::StringValue(s.into())) }
}

fn kv(key: &str, value: Option<pc::AnyValue>) -> pc::KeyValue {
    pc::KeyValue { key: key.into(), value, key_strindex: 0 }
}

fn link_to(trace_id: Vec<u8>, span_id: Vec<u8>) -> pt::span::Link {
    pt::span::Link { trace_id, span_id, attributes: vec![kv("l", Some(string_value("x")))], ..Default::default() }
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
