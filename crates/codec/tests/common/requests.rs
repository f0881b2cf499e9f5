//! Generators of OTLP requests (prost structs), within the rules and the limits or breaking
//! them, for the property tests of the protobuf decoders.

use proptest::prelude::*;
use proptest::sample::Index;
use sextant_codec::Limits;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{self as pc, any_value::Value as PValue};
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;

use super::NOW;

pub const HOUR: u64 = 3600 * 1_000_000_000;

pub const MAX_ATTRIBUTES: usize = 3;
pub const MAX_VALUE_BYTES: usize = 6;
pub const MAX_EVENTS: usize = 2;
pub const MAX_LINKS: usize = 2;

/// Small limits, so generated requests are often just within them and often just over.
pub fn limits() -> Limits {
    Limits {
        max_attributes_per_span: MAX_ATTRIBUTES,
        max_attribute_value_bytes: MAX_VALUE_BYTES,
        max_events_per_span: MAX_EVENTS,
        max_links_per_span: MAX_LINKS,
        ..Limits::default()
    }
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

pub fn request(valid: bool) -> impl Strategy<Value = ExportTraceServiceRequest> {
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
pub fn any_request() -> impl Strategy<Value = (bool, ExportTraceServiceRequest)> {
    prop_oneof![
        (request(true), prop::collection::vec(defect(), 0..3)).prop_map(|(mut request, defects)| {
            defects.iter().for_each(|defect| apply(defect, &mut request));
            (defects.is_empty(), request)
        }),
        request(false).prop_map(|request| (false, request)),
    ]
}

pub fn string_value(s: &str) -> pc::AnyValue {
    pc::AnyValue { value: Some(PValue::StringValue(s.into())) }
}

pub fn kv(key: &str, value: Option<pc::AnyValue>) -> pc::KeyValue {
    pc::KeyValue { key: key.into(), value, key_strindex: 0 }
}

pub fn link_to(trace_id: Vec<u8>, span_id: Vec<u8>) -> pt::span::Link {
    pt::span::Link { trace_id, span_id, attributes: vec![kv("l", Some(string_value("x")))], ..Default::default() }
}
