//! Ingest limits and how they are applied to decoded spans.
//!
//! Limits keep one client from making the server store unbounded data. They never reject a
//! span; they drop or shorten what is over the limit and count it, the way the OpenTelemetry
//! SDKs do:
//!
//! | what is over the limit | what happens | counted in |
//! |---|---|---|
//! | more than `max_attributes_per_span` attributes on a span, event, link, resource or scope | the first `max` are kept, the rest dropped | that item's `dropped_attributes_count` |
//! | more than `max_events_per_span` events | the first `max` are kept | `Span::dropped_events_count` |
//! | more than `max_links_per_span` links | the first `max` are kept | `Span::dropped_links_count` |
//! | a string or bytes value longer than `max_attribute_value_bytes` (also inside arrays and maps) | truncated to the limit, strings at a UTF-8 character boundary | `dropped_attributes_count` of the item holding the attribute (+1 per truncated attribute), and [`crate::Decoded::truncated_values`] |
//!
//! Counting a truncated attribute as "dropped" is deliberate: the count tells a reader that
//! the span is not exactly what the client recorded, which is what OTLP's dropped counts are
//! for. Dropped counts saturate at `u32::MAX`.
//!
//! Time validation (`max_clock_skew_nanos`) rejects spans instead; see [`crate::validate`].
//!
//! Whatever a limit drops or shortens, the batch is no longer exactly what the request
//! encodes ([`crate::Decoded::unchanged`] is false): `Applied` reports both kinds of change.

use std::ops::AddAssign;

use sextant_model::{AnyValue, CompactString, Event, KeyValue, Link, Span};

/// Limits applied to every span at ingest. Cheap to clone; `Default` gives the documented
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Attributes kept per span, and separately per event, link, resource and scope.
    pub max_attributes_per_span: usize,
    /// Longest string or bytes value kept, in bytes; longer values are truncated.
    pub max_attribute_value_bytes: usize,
    /// Events kept per span.
    pub max_events_per_span: usize,
    /// Links kept per span.
    pub max_links_per_span: usize,
    /// A span whose start or end is further than this in the future of the receiver's clock is
    /// rejected.
    pub max_clock_skew_nanos: u64,
}

impl Limits {
    pub const DEFAULT_MAX_ATTRIBUTES_PER_SPAN: usize = 128;
    pub const DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;
    pub const DEFAULT_MAX_EVENTS_PER_SPAN: usize = 128;
    pub const DEFAULT_MAX_LINKS_PER_SPAN: usize = 128;
    pub const DEFAULT_MAX_CLOCK_SKEW_NANOS: u64 = 3600 * 1_000_000_000;

    /// No limit on counts or sizes and any amount of clock skew: for tools that must see
    /// exactly what was sent.
    pub fn unlimited() -> Limits {
        Limits {
            max_attributes_per_span: usize::MAX,
            max_attribute_value_bytes: usize::MAX,
            max_events_per_span: usize::MAX,
            max_links_per_span: usize::MAX,
            max_clock_skew_nanos: u64::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_attributes_per_span: Limits::DEFAULT_MAX_ATTRIBUTES_PER_SPAN,
            max_attribute_value_bytes: Limits::DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES,
            max_events_per_span: Limits::DEFAULT_MAX_EVENTS_PER_SPAN,
            max_links_per_span: Limits::DEFAULT_MAX_LINKS_PER_SPAN,
            max_clock_skew_nanos: Limits::DEFAULT_MAX_CLOCK_SKEW_NANOS,
        }
    }
}

/// What applying the limits changed in one item (span, resource or scope).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Attributes, events and links dropped for being over a count limit.
    pub num_dropped: u64,
    /// Attributes whose value was shortened (the figure reported as `truncated_values`).
    pub num_truncated: u64,
}

impl Applied {
    /// Whether anything was dropped or shortened.
    pub fn changed(&self) -> bool {
        self.num_dropped > 0 || self.num_truncated > 0
    }
}

impl AddAssign for Applied {
    fn add_assign(&mut self, other: Applied) {
        self.num_dropped += other.num_dropped;
        self.num_truncated += other.num_truncated;
    }
}

/// Adds `n` to a dropped count, saturating.
pub(crate) fn add_dropped(count: &mut u32, n: usize) {
    *count = count.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

/// Applies the attribute limits to one attribute list and its dropped count.
pub(crate) fn limit_attributes(attributes: &mut Vec<KeyValue>, dropped: &mut u32, limits: &Limits) -> Applied {
    let mut applied = Applied::default();
    if attributes.len() > limits.max_attributes_per_span {
        let excess = attributes.len() - limits.max_attributes_per_span;
        add_dropped(dropped, excess);
        attributes.truncate(limits.max_attributes_per_span);
        applied.num_dropped = excess as u64;
    }
    let mut truncated = 0;
    for kv in attributes.iter_mut() {
        if truncate_value(&mut kv.value, limits.max_attribute_value_bytes) {
            truncated += 1;
        }
    }
    add_dropped(dropped, truncated);
    applied.num_truncated = truncated as u64;
    applied
}

/// Applies every limit to a span, its events and its links.
pub(crate) fn limit_span(span: &mut Span, limits: &Limits) -> Applied {
    let mut applied = limit_attributes(&mut span.attributes, &mut span.dropped_attributes_count, limits);
    if span.events.len() > limits.max_events_per_span {
        let excess = span.events.len() - limits.max_events_per_span;
        add_dropped(&mut span.dropped_events_count, excess);
        span.events.truncate(limits.max_events_per_span);
        applied.num_dropped += excess as u64;
    }
    for Event { attributes, dropped_attributes_count, .. } in span.events.iter_mut() {
        applied += limit_attributes(attributes, dropped_attributes_count, limits);
    }
    if span.links.len() > limits.max_links_per_span {
        let excess = span.links.len() - limits.max_links_per_span;
        add_dropped(&mut span.dropped_links_count, excess);
        span.links.truncate(limits.max_links_per_span);
        applied.num_dropped += excess as u64;
    }
    for Link { attributes, dropped_attributes_count, .. } in span.links.iter_mut() {
        applied += limit_attributes(attributes, dropped_attributes_count, limits);
    }
    applied
}

/// Shortens every string and bytes value in `value` (recursively) to `max_bytes`. Returns whether
/// anything was shortened.
pub(crate) fn truncate_value(value: &mut AnyValue, max_bytes: usize) -> bool {
    match value {
        AnyValue::String(s) => truncate_compact(s, max_bytes),
        AnyValue::Bytes(b) if b.len() > max_bytes => {
            b.truncate(max_bytes);
            true
        }
        // Every element is visited: no short-circuit.
        AnyValue::Array(values) => values.iter_mut().map(|v| truncate_value(v, max_bytes)).filter(|t| *t).count() > 0,
        AnyValue::KvList(kvs) => {
            kvs.iter_mut().map(|kv| truncate_value(&mut kv.value, max_bytes)).filter(|t| *t).count() > 0
        }
        AnyValue::Bytes(_) | AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => false,
    }
}

/// Truncates `s` to at most `max_bytes` bytes, backing off to the previous character boundary.
pub(crate) fn truncate_str(s: &mut String, max_bytes: usize) -> bool {
    cut_at(s, max_bytes).map(|end| s.truncate(end)).is_some()
}

/// [`truncate_str`] for a compact string.
fn truncate_compact(s: &mut CompactString, max_bytes: usize) -> bool {
    cut_at(s, max_bytes).map(|end| s.truncate(end)).is_some()
}

/// Where a string longer than `max_bytes` is cut: the last character boundary at or before it.
fn cut_at(s: &str, max_bytes: usize) -> Option<usize> {
    if s.len() <= max_bytes {
        return None;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_backs_off_to_a_char_boundary() {
        let mut s = "aé€".to_string(); // 1 + 2 + 3 bytes
        assert!(truncate_str(&mut s, 5));
        assert_eq!(s, "aé");
        let mut s = "aé€".to_string();
        assert!(truncate_str(&mut s, 2));
        assert_eq!(s, "a");
        let mut s = "abc".to_string();
        assert!(!truncate_str(&mut s, 3));
    }

    #[test]
    fn nested_values_are_truncated_and_counted_once_per_attribute() {
        let limits = Limits { max_attribute_value_bytes: 2, ..Limits::default() };
        let mut attributes = vec![
            KeyValue::new(
                "nested",
                AnyValue::Array(vec![AnyValue::String("abcd".into()), AnyValue::Bytes(vec![1, 2, 3])]),
            ),
            KeyValue::new("short", AnyValue::String("ab".into())),
        ];
        let mut dropped = 5;
        let applied = limit_attributes(&mut attributes, &mut dropped, &limits);
        assert_eq!(applied, Applied { num_dropped: 0, num_truncated: 1 });
        assert_eq!(dropped, 6);
        assert_eq!(
            attributes[0].value,
            AnyValue::Array(vec![AnyValue::String("ab".into()), AnyValue::Bytes(vec![1, 2])])
        );
    }

    #[test]
    fn every_limit_reports_what_it_changed() {
        let limits = Limits {
            max_attributes_per_span: 1,
            max_attribute_value_bytes: 3,
            max_events_per_span: 1,
            max_links_per_span: 1,
            ..Limits::default()
        };
        let apply = |mut span: Span| limit_span(&mut span, &limits);
        let base = Span::new(sextant_model::TraceId([1; 16]), sextant_model::SpanId([1; 8]), "op", 1, 2);
        assert!(!apply(base.clone()).changed());

        let mut span = base.clone();
        span.attributes = vec![KeyValue::string("a", "x"), KeyValue::string("b", "y")];
        assert_eq!(apply(span), Applied { num_dropped: 1, num_truncated: 0 });

        let mut span = base.clone();
        span.attributes = vec![KeyValue::string("a", "abcd")];
        assert_eq!(apply(span), Applied { num_dropped: 0, num_truncated: 1 });

        let mut span = base.clone();
        span.events = vec![Event::default(), Event::default()];
        assert_eq!(apply(span), Applied { num_dropped: 1, num_truncated: 0 });

        let link = Link {
            trace_id: sextant_model::TraceId([2; 16]),
            span_id: sextant_model::SpanId([2; 8]),
            trace_state: String::new(),
            attributes: vec![KeyValue::string("a", "abcd")],
            dropped_attributes_count: 0,
            flags: 0,
        };
        let mut span = base.clone();
        span.links = vec![link.clone(), link];
        assert_eq!(apply(span), Applied { num_dropped: 1, num_truncated: 1 });

        // A value exactly at the limit is kept as it is.
        let mut span = base;
        span.attributes = vec![KeyValue::string("a", "abc")];
        assert!(!apply(span).changed());
    }

    #[test]
    fn dropped_counts_saturate() {
        let mut count = u32::MAX - 1;
        add_dropped(&mut count, usize::MAX);
        assert_eq!(count, u32::MAX);
    }
}
