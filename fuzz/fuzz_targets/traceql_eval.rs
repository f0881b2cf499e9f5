//! Runs every TraceQL query the parser accepts on a small trace (a root, children, a
//! grandchild, an orphan, events and links): compiling and evaluating must not panic, every
//! span set must hold valid, ascending, distinct span indices, and the storage push-down must
//! never reject the trace when the query matches it. A metrics query runs through the metrics
//! evaluator instead: its samples must fall in the range, at most one per step.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

fn trace() -> &'static [Span] {
    static TRACE: OnceLock<Vec<Span>> = OnceLock::new();
    TRACE.get_or_init(|| {
        let resource = |service: &str| {
            Arc::new(Resource {
                attributes: vec![
                    KeyValue::string("service.name", service),
                    KeyValue::new("replicas", AnyValue::Int(3)),
                ],
                dropped_attributes_count: 0,
            })
        };
        let span = |id: u8, parent: Option<u8>, name: &str, service: &str, start: u64, end: u64| {
            let mut span = Span::new(TraceId([7; 16]), SpanId([id; 8]), name, start, end);
            span.parent_span_id = parent.map(|p| SpanId([p; 8]));
            span.resource = resource(service);
            span
        };
        let mut root = span(1, None, "GET /cart", "gateway", 1_000, 9_000);
        root.kind = SpanKind::Server;
        root.attributes = vec![
            KeyValue::string("http.method", "GET"),
            KeyValue::new("http.status_code", AnyValue::Int(200)),
            KeyValue::new("tags", AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::Int(2)])),
        ];
        let mut child = span(2, Some(1), "load cart", "cart", 2_000, 6_000);
        child.kind = SpanKind::Client;
        child.status_code = StatusCode::Error;
        child.status_message = "timeout".into();
        child.events = vec![Event {
            time_unix_nanos: 3_000,
            name: "retry".into(),
            attributes: vec![KeyValue::new("attempt", AnyValue::Double(2.5))],
            dropped_attributes_count: 0,
        }];
        child.links = vec![Link {
            trace_id: TraceId([8; 16]),
            span_id: SpanId([9; 8]),
            trace_state: String::new(),
            attributes: vec![KeyValue::new("follows", AnyValue::Bool(true))],
            dropped_attributes_count: 0,
            flags: 0,
        }];
        let grandchild = span(3, Some(2), "SELECT", "db", 2_500, 5_000);
        let sibling = span(4, Some(1), "price", "pricing", 6_000, 8_000);
        let orphan = span(5, Some(42), "late", "cart", 9_500, 9_600);
        vec![root, child, grandchild, sibling, orphan]
    })
}

fuzz_target!(|query: &str| {
    let Ok(parsed) = sextant_traceql::parse(query) else { return };
    if parsed.metrics.is_some() {
        check_metrics(query, &parsed);
        return;
    }
    let Ok(compiled) = sextant_traceql::Compiled::new(&parsed) else { return };
    let trace = trace();
    let Ok(sets) = compiled.evaluate(trace) else { return };
    for set in &sets {
        assert!(!set.spans.is_empty(), "{query:?}: an empty span set");
        assert!(set.spans.windows(2).all(|w| w[0] < w[1]), "{query:?}: indices not ascending: {:?}", set.spans);
        assert!(set.spans.iter().all(|&i| i < trace.len()), "{query:?}: index out of range: {:?}", set.spans);
    }
    if !sets.is_empty() {
        assert!(sextant_traceql::conditions(&parsed).may_match(trace), "{query:?}: push-down rejects a match");
    }
});

/// Runs a metrics query on the trace over 10 steps of 1 ms.
fn check_metrics(query: &str, parsed: &sextant_traceql::Query) {
    let request = sextant_traceql::MetricsRequest {
        start_unix_nanos: 0,
        end_unix_nanos: 10_000_000,
        step_nanos: 1_000_000,
        instant: false,
        max_exemplars: 3,
    };
    let Ok(mut evaluator) = sextant_traceql::MetricsEvaluator::new(parsed, &request) else { return };
    if evaluator.observe(trace()).is_err() {
        return;
    }
    for series in evaluator.finish() {
        assert!(series.samples.len() <= 10, "{query:?}: more samples than steps");
        assert!(
            series.samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
            "{query:?}: samples out of order"
        );
        assert!(series.exemplars.len() <= 3, "{query:?}: more exemplars than asked");
    }
}
