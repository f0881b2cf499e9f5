//! Trace search: the query, span and trace matching, trace summaries and paging.
//!
//! Semantics (the native API documents the same):
//! - span conditions (`service`, `operation`, attributes, `status=error`, the time range
//!   and, with `DurationScope::Span`, the duration bounds) must all hold on ONE span;
//! - with `DurationScope::Trace` the duration bounds apply to the whole trace (latest end
//!   minus earliest start);
//! - results are ordered newest first by trace start, ties broken by trace ID ascending, so
//!   the order is total and a cursor (`{start}-{trace id}`) resumes exactly after the last
//!   trace of the previous page.

use std::collections::BTreeSet;

use sextant_model::{AnyValue, Span, TraceId, find_attribute};

/// The default number of traces per page.
pub const DEFAULT_SEARCH_LIMIT: usize = 20;
/// The most traces one page may hold.
pub const MAX_SEARCH_LIMIT: usize = 1_000;

/// What the duration bounds apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DurationScope {
    #[default]
    Trace,
    Span,
}

/// `key=value` on span or resource attributes. The value is matched with the attribute's
/// own type: `200` matches the integer 200 and the string "200", `true` matches a boolean.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeFilter {
    pub key: String,
    pub value: String,
}

impl AttributeFilter {
    pub fn matches_value(&self, value: &AnyValue) -> bool {
        match value {
            AnyValue::String(s) => *s == self.value,
            AnyValue::Int(i) => self.value.parse::<i64>().is_ok_and(|v| v == *i),
            AnyValue::Double(d) => self.value.parse::<f64>().is_ok_and(|v| v == *d),
            AnyValue::Bool(b) => self.value.parse::<bool>().is_ok_and(|v| v == *b),
            other => other.to_string() == self.value,
        }
    }

    pub fn matches_span(&self, span: &Span) -> bool {
        find_attribute(&span.attributes, &self.key)
            .or_else(|| find_attribute(&span.resource.attributes, &self.key))
            .is_some_and(|value| self.matches_value(value))
    }
}

/// Position after which the next page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub start_unix_nanos: u64,
    pub trace_id: TraceId,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.start_unix_nanos, self.trace_id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (start, trace) = text.split_once('-')?;
        Some(Cursor { start_unix_nanos: start.parse().ok()?, trace_id: TraceId::parse_hex(trace).ok()? })
    }

    /// Whether a trace starting at `start` with `trace_id` comes after this cursor.
    fn precedes(&self, start_unix_nanos: u64, trace_id: &TraceId) -> bool {
        start_unix_nanos < self.start_unix_nanos
            || (start_unix_nanos == self.start_unix_nanos && *trace_id > self.trace_id)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub attributes: Vec<AttributeFilter>,
    pub min_duration_nanos: Option<u64>,
    pub max_duration_nanos: Option<u64>,
    pub duration_scope: DurationScope,
    pub errors_only: bool,
    pub start_unix_nanos: Option<u64>,
    pub end_unix_nanos: Option<u64>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl SearchQuery {
    fn duration_in_bounds(&self, duration_nanos: u64) -> bool {
        self.min_duration_nanos.is_none_or(|min| duration_nanos >= min)
            && self.max_duration_nanos.is_none_or(|max| duration_nanos <= max)
    }

    /// Whether one span satisfies every span-level condition.
    pub fn span_matches(&self, span: &Span) -> bool {
        self.span_fields_match(
            span.service_name(),
            &span.name,
            span.is_error(),
            span.start_unix_nanos,
            span.end_unix_nanos,
        ) && self.attributes_match(span)
    }

    /// Whether every attribute filter holds on the span (or its resource).
    pub fn attributes_match(&self, span: &Span) -> bool {
        self.attributes.iter().all(|filter| filter.matches_span(span))
    }

    /// Whether the query has attribute conditions, which need a span's attribute lists;
    /// without them [`SearchQuery::span_fields_match`] decides a span alone.
    pub fn has_attribute_filters(&self) -> bool {
        !self.attributes.is_empty()
    }

    /// The span-level conditions other than attributes, over a span's plain values: its
    /// service name, name, whether its status is an error, and its start and end.
    /// [`SearchQuery::span_matches`] is this plus the attribute filters.
    pub fn span_fields_match(&self, service: &str, name: &str, is_error: bool, start: u64, end: u64) -> bool {
        self.service.as_deref().is_none_or(|s| service == s)
            && self.operation.as_deref().is_none_or(|o| name == o)
            && self.span_status_and_times_match(is_error, start, end)
    }

    /// [`SearchQuery::span_fields_match`] without the service and operation conditions.
    pub fn span_status_and_times_match(&self, is_error: bool, start: u64, end: u64) -> bool {
        (!self.errors_only || is_error)
            && self.start_unix_nanos.is_none_or(|from| start >= from)
            && self.end_unix_nanos.is_none_or(|to| start <= to)
            && (self.duration_scope != DurationScope::Span || self.duration_in_bounds(end.saturating_sub(start)))
    }

    /// Whether a trace with these bounds passes the trace-level conditions and the cursor.
    pub fn trace_matches(&self, start_unix_nanos: u64, end_unix_nanos: u64, trace_id: &TraceId) -> bool {
        let duration = end_unix_nanos.saturating_sub(start_unix_nanos);
        (self.duration_scope != DurationScope::Trace || self.duration_in_bounds(duration))
            && self.cursor.is_none_or(|cursor| cursor.precedes(start_unix_nanos, trace_id))
    }

    /// Whether a trace that fails [`SearchQuery::trace_matches`] with these bounds could pass
    /// once more of its spans are known. More spans only move the start earlier and the end
    /// later: a trace already longer than the maximum duration never comes back; one before
    /// the cursor or shorter than the minimum might.
    pub fn trace_may_match_later(&self, start_unix_nanos: u64, end_unix_nanos: u64) -> bool {
        let too_long = self.duration_scope == DurationScope::Trace
            && self.max_duration_nanos.is_some_and(|max| end_unix_nanos.saturating_sub(start_unix_nanos) > max);
        !too_long
    }

    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 { DEFAULT_SEARCH_LIMIT } else { self.limit.min(MAX_SEARCH_LIMIT) }
    }
}

/// One trace in a search answer.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_name: String,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub span_count: usize,
    pub error_count: usize,
    pub services: Vec<String>,
}

impl TraceSummary {
    /// Summarises a whole trace. The root is the earliest span without a parent, or the
    /// earliest span when the root has not arrived.
    pub fn of(trace_id: TraceId, spans: &[Span]) -> Option<TraceSummary> {
        let root = spans
            .iter()
            .filter(|s| s.is_root())
            .min_by_key(|s| s.start_unix_nanos)
            .or_else(|| spans.iter().min_by_key(|s| s.start_unix_nanos))?;
        let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0);
        let services: BTreeSet<&str> = spans.iter().map(Span::service_name).collect();
        Some(TraceSummary {
            trace_id,
            root_service: root.service_name().to_string(),
            root_name: root.name.to_string(),
            start_unix_nanos: start,
            duration_nanos: end.saturating_sub(start),
            span_count: spans.len(),
            error_count: spans.iter().filter(|s| s.is_error()).count(),
            services: services.into_iter().map(str::to_string).collect(),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResult {
    pub traces: Vec<TraceSummary>,
    pub next_cursor: Option<Cursor>,
}

/// Merges the spans of one trace gathered from several places: one copy of each span
/// ([`Span::identity`], the first seen), ordered by start time then span ID.
pub fn merge_trace_spans(spans: Vec<Span>) -> Vec<Span> {
    let mut seen = std::collections::HashSet::with_capacity(spans.len());
    let mut merged: Vec<Span> = spans.into_iter().filter(|s| seen.insert(s.identity())).collect();
    merged.sort_by(|a, b| a.start_unix_nanos.cmp(&b.start_unix_nanos).then(a.span_id.cmp(&b.span_id)));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::{KeyValue, Resource, SpanId, StatusCode};
    use std::sync::Arc;

    fn span(service: &str, name: &str, start: u64, end: u64) -> Span {
        let mut span = Span::new(TraceId([7; 16]), SpanId([1; 8]), name, start, end);
        span.resource =
            Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], ..Default::default() });
        span
    }

    #[test]
    fn attribute_filter_matches_by_type() {
        let filter = AttributeFilter { key: "http.status_code".into(), value: "200".into() };
        assert!(filter.matches_value(&AnyValue::Int(200)));
        assert!(filter.matches_value(&AnyValue::String("200".into())));
        assert!(!filter.matches_value(&AnyValue::Int(404)));
        assert!(!filter.matches_value(&AnyValue::Bool(true)));
        let flag = AttributeFilter { key: "k".into(), value: "true".into() };
        assert!(flag.matches_value(&AnyValue::Bool(true)));
    }

    #[test]
    fn attribute_filter_looks_at_resource_attributes_too() {
        let span = span("cart", "get", 1, 2);
        let filter = AttributeFilter { key: "service.name".into(), value: "cart".into() };
        assert!(filter.matches_span(&span));
    }

    #[test]
    fn span_conditions_must_hold_on_the_same_span() {
        let mut error_span = span("cart", "get", 100, 200);
        error_span.status_code = StatusCode::Error;
        let query = SearchQuery {
            service: Some("cart".into()),
            operation: Some("put".into()),
            errors_only: true,
            ..Default::default()
        };
        assert!(!query.span_matches(&error_span), "operation differs");
        let query = SearchQuery { operation: Some("get".into()), ..query };
        assert!(query.span_matches(&error_span));
    }

    #[test]
    fn span_duration_scope_checks_the_span() {
        let query =
            SearchQuery { min_duration_nanos: Some(50), duration_scope: DurationScope::Span, ..Default::default() };
        assert!(query.span_matches(&span("a", "x", 0, 60)));
        assert!(!query.span_matches(&span("a", "x", 0, 40)));
        let trace_scoped = SearchQuery { duration_scope: DurationScope::Trace, ..query };
        assert!(trace_scoped.span_matches(&span("a", "x", 0, 40)));
        assert!(!trace_scoped.trace_matches(0, 40, &TraceId([1; 16])));
    }

    #[test]
    fn cursor_round_trips_and_resumes_after_the_last_trace() {
        let cursor = Cursor { start_unix_nanos: 500, trace_id: TraceId([2; 16]) };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        let query = SearchQuery { cursor: Some(cursor), ..Default::default() };
        assert!(query.trace_matches(400, 450, &TraceId([1; 16])), "older trace comes after");
        assert!(query.trace_matches(500, 600, &TraceId([3; 16])), "same start, larger id comes after");
        assert!(!query.trace_matches(500, 600, &TraceId([2; 16])), "the cursor trace itself is not repeated");
        assert!(!query.trace_matches(600, 700, &TraceId([9; 16])), "newer trace came before");
    }

    #[test]
    fn summary_uses_root_span_and_counts_errors() {
        let mut root = span("gateway", "GET /", 100, 400);
        root.span_id = SpanId([1; 8]);
        let mut child = span("cart", "get", 150, 300);
        child.span_id = SpanId([2; 8]);
        child.parent_span_id = Some(SpanId([1; 8]));
        child.status_code = StatusCode::Error;
        let summary = TraceSummary::of(TraceId([7; 16]), &[child, root]).unwrap();
        assert_eq!(summary.root_service, "gateway");
        assert_eq!(summary.root_name, "GET /");
        assert_eq!(summary.duration_nanos, 300);
        assert_eq!(summary.error_count, 1);
        assert_eq!(summary.services, vec!["cart".to_string(), "gateway".to_string()]);
    }

    #[test]
    fn merge_drops_duplicate_span_ids() {
        let a = span("a", "x", 5, 6);
        let merged = merge_trace_spans(vec![a.clone(), a.clone()]);
        assert_eq!(merged.len(), 1);
    }

    #[test]
    fn merge_keeps_both_halves_of_a_zipkin_shared_span() {
        let mut client = span("a", "x", 5, 6);
        client.kind = sextant_model::SpanKind::Client;
        let mut server = client.clone();
        server.kind = sextant_model::SpanKind::Server;
        assert_eq!(merge_trace_spans(vec![client, server]).len(), 2);
    }
}
