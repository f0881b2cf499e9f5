//! The wire-level protobuf decoders against their reference: for every body,
//! `decode_otlp_protobuf` and `decode_spans` must give exactly what decoding with prost into
//! the generated structs and converting those gives (`sextant_codec::reference`) — the same
//! spans, rejections, counts, `unchanged` flag and `Arc` sharing, or the same error message.
//!
//! Requests come from the generators of the `unchanged` test (valid, just over the limits, or
//! breaking any rule) and are encoded the unusual ways protobuf allows (`common::wire`); the
//! corruption tests then break the tree (invalid UTF-8, wrong wire types, stray group ends,
//! invalid keys, wrong lengths, deep nesting) and the bytes (truncation, flipped bits, ...).

mod common;

use std::sync::Arc;

use common::NOW;
use common::requests::{any_request, limits};
use common::wire::{self, Field, Kind, Rng, Role, Value};
use proptest::prelude::*;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::{DecodeError, Decoded, Limits, decode_otlp_protobuf, decode_spans, reference};
use sextant_model::Span;

/// Which span each span shares its resource and scope with: the index of the first span
/// holding the same `Arc`.
fn sharing(spans: &[Span]) -> Vec<(usize, usize)> {
    let first = |same: &dyn Fn(&Span) -> bool| spans.iter().position(same).expect("the span itself");
    spans
        .iter()
        .map(|span| {
            (first(&|s| Arc::ptr_eq(&s.resource, &span.resource)), first(&|s| Arc::ptr_eq(&s.scope, &span.scope)))
        })
        .collect()
}

/// Equal results; NaN doubles (which bit flips make) compare by their `Debug` text.
fn assert_same<T: PartialEq + std::fmt::Debug>(
    actual: &Result<T, DecodeError>,
    expected: &Result<T, DecodeError>,
    spans: impl Fn(&T) -> &[Span],
) -> Result<(), TestCaseError> {
    if actual != expected {
        prop_assert_eq!(format!("{actual:#?}"), format!("{expected:#?}"));
    }
    if let (Ok(actual), Ok(expected)) = (actual, expected) {
        prop_assert_eq!(sharing(spans(actual)), sharing(spans(expected)), "resources and scopes shared alike");
    }
    Ok(())
}

/// Both decoders, with the test limits and the defaults, against the reference.
fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
    for limits in [limits(), Limits::default()] {
        let decoded = decode_otlp_protobuf(body, &limits, NOW);
        assert_same(&decoded, &reference::decode_otlp_protobuf(body, &limits, NOW), |d: &Decoded| &d.spans)?;
    }
    assert_same(&decode_spans(body), &reference::decode_spans(body), |spans: &Vec<Span>| spans)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn unusual_encodings_decode_as_with_prost((_, request) in any_request(), seed in any::<u64>()) {
        let tree = wire::request(&request);
        let canonical = request.encode_to_vec();
        prop_assert_eq!(&wire::encode(&tree, None), &canonical, "the tree is the request");
        let mut rng = Rng::new(seed);
        let body = wire::encode(&wire::unusual(&tree, &mut rng), Some(&mut rng));
        // The generator's promise: the body means the request.
        prop_assert_eq!(
            reference::decode_otlp_protobuf(&body, &limits(), NOW),
            reference::decode_otlp_protobuf(&canonical, &limits(), NOW)
        );
        check_body(&body)?;
    }

    #[test]
    fn corrupted_bodies_are_refused_or_read_as_with_prost((_, request) in any_request(), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let mut tree = wire::unusual(&wire::request(&request), &mut rng);
        for _ in 0..rng.below(3) {
            wire::corrupt(&mut tree, &mut rng);
        }
        let mut body = wire::encode(&tree, Some(&mut rng));
        for _ in 0..rng.below(3) {
            wire::mutate(&mut body, &mut rng);
        }
        check_body(&body)?;
    }
}

/// A request with one span whose attribute `value` (an `AnyValue`'s fields) may be nested deep.
fn request_with_value(value: Vec<Field>) -> Vec<u8> {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![sextant_codec::proto::tonic::trace::v1::ResourceSpans {
            scope_spans: vec![sextant_codec::proto::tonic::trace::v1::ScopeSpans {
                spans: vec![sextant_codec::proto::tonic::trace::v1::Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    start_time_unix_nano: NOW - 10,
                    end_time_unix_nano: NOW,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut tree = wire::request(&request);
    // Request > ResourceSpans > ScopeSpans > Span: add the attribute.
    let Value::Message(resource_spans) = &mut tree[0].value else { unreachable!() };
    let scope_spans = resource_spans.iter_mut().find(|f| f.tag == 2).unwrap();
    let Value::Message(scope_spans) = &mut scope_spans.value else { unreachable!() };
    let span = scope_spans.iter_mut().find(|f| f.tag == 2).unwrap();
    let Value::Message(span) = &mut span.value else { unreachable!() };
    let key = Field {
        tag: 1,
        value: Value::Bytes(b"deep".to_vec()),
        role: Role::Singular { default: false },
        kind: Kind::Text,
    };
    let value = Field { tag: 2, value: Value::Message(value), role: Role::Embedded, kind: Kind::Other };
    span.push(Field { tag: 9, value: Value::Message(vec![key, value]), role: Role::Element, kind: Kind::Other });
    wire::encode(&tree, None)
}

fn outcome(body: &[u8]) -> Result<(), String> {
    decode_otlp_protobuf(body, &Limits::default(), NOW).map(|_| ()).map_err(|e| e.to_string())
}

// Regression guard for prost's recursion limit: values nested just within it decode, one level
// more is refused, at the same depth as prost refuses it.
#[test]
fn nesting_is_refused_exactly_where_prost_refuses_it() {
    for (what, nested) in [("arrays", wire::nested_arrays as fn(usize) -> Vec<Field>), ("maps", wire::nested_maps)] {
        let outcomes: Vec<_> = (0..60).map(|depth| outcome(&request_with_value(nested(depth)))).collect();
        for (depth, outcome) in outcomes.iter().enumerate() {
            let body = request_with_value(nested(depth));
            check_body(&body).unwrap_or_else(|e| panic!("{what} nested {depth} deep: {e}"));
            if let Err(message) = outcome {
                assert!(message.ends_with("recursion limit reached"), "{what} nested {depth} deep: {message}");
            }
        }
        let deepest = outcomes.iter().position(Result::is_err).expect("some depth is refused");
        assert!(deepest > 20 && outcomes[deepest..].iter().all(Result::is_err), "{what}: {outcomes:?}");
    }
}

// Unknown fields spend recursion budget too: skipping one needs budget left, and each nested
// group spends one more.
#[test]
fn skipped_groups_spend_the_recursion_budget_as_in_prost() {
    let group = |depth: usize| {
        let mut group = Value::Varint(1);
        for _ in 0..depth {
            let inner = Field { tag: 17, value: group, role: Role::Unknown, kind: Kind::Other };
            group = Value::Group { fields: vec![inner], end_tag: 17 };
        }
        Field { tag: 17, value: group, role: Role::Unknown, kind: Kind::Other }
    };
    let mut seen = Vec::new();
    for array_depth in [40, 44, 46, 47] {
        for group_depth in 0..12 {
            let innermost = vec![
                Field { tag: 3, value: Value::Varint(7), role: Role::Variant, kind: Kind::Other },
                group(group_depth),
            ];
            let body = request_with_value(wire::nest_in_arrays(array_depth, innermost));
            check_body(&body).unwrap_or_else(|e| panic!("arrays {array_depth}, groups {group_depth}: {e}"));
            seen.push(outcome(&body).is_ok());
        }
    }
    assert!(seen.contains(&true) && seen.contains(&false), "the limit was crossed: {seen:?}");
}

/// A body of raw bytes: `ResourceSpans` (field 1) holding `inner`.
fn in_resource_spans(inner: &[u8]) -> Vec<u8> {
    [&[0x0a, inner.len() as u8][..], inner].concat()
}

#[test]
fn every_kind_of_error_reads_as_prosts() {
    // A body whose one span holds `span`.
    let span = |span: &[u8]| {
        let scope_spans = [&[0x12, span.len() as u8][..], span].concat();
        in_resource_spans(&[&[0x12, scope_spans.len() as u8][..], &scope_spans].concat())
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid varint", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ("invalid varint", vec![0x0a, 0x80]),
        ("invalid varint", vec![0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]),
        ("invalid wire type value: 6", vec![0x0e]),
        ("invalid wire type value: 7", in_resource_spans(&[0x1f])),
        ("invalid key value: 34359738368", vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        ("invalid tag value: 0", in_resource_spans(&[0x00])),
        ("invalid wire type: Varint (expected LengthDelimited)", vec![0x08, 0x01]),
        ("invalid wire type: LengthDelimited (expected SixtyFourBit)", span(&[0x3a, 0x00])),
        ("invalid wire type: StartGroup (expected Varint)", span(&[0x53, 0x54])),
        ("buffer underflow", span(&[0x0a, 0x10, 1, 2, 3])),
        ("buffer underflow", span(&[0x39, 1, 2, 3])),
        ("buffer underflow", vec![0x0a, 0x05, 0x12]),
        // A string longer than its message but not than the body.
        ("delimited length exceeded", [in_resource_spans(&[0x1a, 0x03]), b"abc".to_vec()].concat()),
        ("unexpected end group tag", vec![0x14]),
        ("unexpected end group tag", vec![0x13, 0x1c]),
        ("unexpected end group tag", span(&[0x8c, 0x01])),
        ("invalid string value: data is not UTF-8 encoded", span(&[0x2a, 0x01, 0xff])),
        ("recursion limit reached", request_with_value(wire::nested_arrays(60))),
    ];
    for (kind, body) in cases {
        check_body(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let message = outcome(&body).expect_err(kind);
        assert!(message.ends_with(kind), "expected {kind:?}, got {message:?}");
    }
}

// A WAL payload with a wrong-length ID is reported only once the whole payload decodes, as the
// first such span; a malformed payload is reported as malformed.
#[test]
fn wal_payload_errors_keep_prosts_precedence() {
    let span = |trace_id_len: usize| sextant_codec::proto::tonic::trace::v1::Span {
        trace_id: vec![1; trace_id_len],
        span_id: vec![2; 8],
        ..Default::default()
    };
    let request = |spans| ExportTraceServiceRequest {
        resource_spans: vec![sextant_codec::proto::tonic::trace::v1::ResourceSpans {
            scope_spans: vec![sextant_codec::proto::tonic::trace::v1::ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    };
    let corrupt_twice = request(vec![span(16), span(15), span(3)]).encode_to_vec();
    let malformed_later = [corrupt_twice.clone(), vec![0x0a, 0x01]].concat();
    for body in [corrupt_twice, malformed_later] {
        check_body(&body).unwrap();
    }
    assert_eq!(
        decode_spans(&request(vec![span(16), span(15), span(3)]).encode_to_vec()).unwrap_err().to_string(),
        "invalid OTLP protobuf: span 1: trace id has the wrong length"
    );
}
