//! What every fuzz target checks after a decoder returns: the decoder did not panic (libFuzzer
//! catches that), and everything it accepted holds the model's invariants and the limits; and,
//! for the differential target, that two decoders agree.

use std::fmt::Debug;
use std::sync::Arc;

use sextant_codec::{DecodeError, Decoded, Limits, decode_spans, encode_spans};
use sextant_model::{AnyValue, KeyValue, Span};

/// The receiver clock used by the targets: a fixed instant, so runs are reproducible.
pub const NOW_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;

/// Panics if an accepted span breaks an invariant or a limit, or a rejection is unexplained.
pub fn check_decoded(decoded: &Decoded, limits: &Limits) {
    for span in &decoded.spans {
        check_span(span, limits);
    }
    for rejection in &decoded.rejected {
        assert!(rejection.message.starts_with("span "), "unexplained rejection: {rejection:?}");
        assert!(!rejection.reason.as_str().is_empty());
    }
    if let Some(message) = decoded.partial_success_message() {
        assert!(message.len() <= 1024, "partial success message too long: {} bytes", message.len());
    } else {
        assert!(decoded.rejected.is_empty());
    }
    // Accepted spans must survive the WAL encoding.
    let reread = decode_spans(&encode_spans(&decoded.spans)).expect("accepted spans re-encode");
    assert_eq!(reread.len(), decoded.spans.len());
}

/// Panics if a batch said to be unchanged is not exactly what the body reads back as through
/// the WAL decoder: the body would then be stored as a WAL record that replays differently.
/// Compares encodings, so that NaN values compare equal to themselves.
pub fn check_body_as_wal_record(body: &[u8], decoded: &Decoded) {
    if !decoded.unchanged {
        return;
    }
    assert!(decoded.rejected.is_empty() && decoded.truncated_values == 0, "changes behind an unchanged batch");
    let replayed = decode_spans(body).expect("an unchanged body is a valid WAL payload");
    assert_eq!(encode_spans(&replayed), encode_spans(&decoded.spans), "an unchanged body replays differently");
}

fn check_span(span: &Span, limits: &Limits) {
    assert!(!span.trace_id.is_zero(), "zero trace id accepted");
    assert!(!span.span_id.is_zero(), "zero span id accepted");
    assert!(span.parent_span_id.is_none_or(|p| !p.is_zero()), "zero parent kept");
    assert!(span.start_unix_nanos > 0, "missing start accepted");
    assert!(span.end_unix_nanos >= span.start_unix_nanos, "end before start accepted");
    assert!(span.end_unix_nanos <= NOW_UNIX_NANOS.saturating_add(limits.max_clock_skew_nanos), "future span accepted");
    check_attributes(&span.attributes, limits);
    check_attributes(&span.resource.attributes, limits);
    check_attributes(&span.scope.attributes, limits);
    assert!(span.events.len() <= limits.max_events_per_span);
    for event in &span.events {
        check_attributes(&event.attributes, limits);
    }
    assert!(span.links.len() <= limits.max_links_per_span);
    for link in &span.links {
        assert!(!link.trace_id.is_zero() && !link.span_id.is_zero(), "invalid link kept");
        check_attributes(&link.attributes, limits);
    }
}

fn check_attributes(attributes: &[KeyValue], limits: &Limits) {
    assert!(attributes.len() <= limits.max_attributes_per_span);
    for kv in attributes {
        check_value(&kv.value, limits);
    }
}

fn check_value(value: &AnyValue, limits: &Limits) {
    match value {
        AnyValue::String(s) => assert!(s.len() <= limits.max_attribute_value_bytes),
        AnyValue::Bytes(b) => assert!(b.len() <= limits.max_attribute_value_bytes),
        AnyValue::Array(values) => values.iter().for_each(|v| check_value(v, limits)),
        AnyValue::KvList(kvs) => kvs.iter().for_each(|kv| check_value(&kv.value, limits)),
        AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => {}
    }
}

/// Panics unless two decoders gave the same result: equal values (NaN doubles compare by their
/// `Debug` text) with resources and scopes shared by the same spans, or the same error.
pub fn assert_same_result<T: PartialEq + Debug>(
    actual: &Result<T, DecodeError>,
    expected: &Result<T, DecodeError>,
    spans: impl Fn(&T) -> &[Span],
) {
    if actual != expected {
        assert_eq!(format!("{actual:?}"), format!("{expected:?}"), "the decoders disagree");
    }
    if let (Ok(actual), Ok(expected)) = (actual, expected) {
        assert_eq!(sharing(spans(actual)), sharing(spans(expected)), "resources or scopes shared differently");
    }
}

/// For each span, the first span holding the same resource `Arc`, and the same scope `Arc`.
fn sharing(spans: &[Span]) -> Vec<(usize, usize)> {
    let first = |same: &dyn Fn(&Span) -> bool| spans.iter().position(same).unwrap_or(usize::MAX);
    spans
        .iter()
        .map(|span| {
            (first(&|s| Arc::ptr_eq(&s.resource, &span.resource)), first(&|s| Arc::ptr_eq(&s.scope, &span.scope)))
        })
        .collect()
}
