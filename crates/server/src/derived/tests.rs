//! Tests of the ingest side of the derived metrics: what a copy keeps, read-your-writes after
//! a sync, and batches counted as dropped when the queue is full.

use std::sync::Arc;

use sextant_model::{AnyValue, Event, KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

use super::*;

fn options(max_queued_spans: usize) -> MetricsOptions {
    MetricsOptions {
        max_queued_spans,
        span_metrics: sextant_metrics::SpanMetricsConfig {
            dimensions: vec!["http.route".to_string()],
            ..Default::default()
        },
        service_graph: sextant_metrics::ServiceGraphConfig::default(),
        consistency_opt: None,
    }
}

/// A span of cart ending a second ago.
fn span(id: u8) -> Span {
    let end_unix_nanos = sextant_model::now_unix_nanos() - 1_000_000_000;
    let mut span = Span::new(TraceId([1; 16]), SpanId([id; 8]), "GET /cart", end_unix_nanos - 1_000, end_unix_nanos);
    span.kind = SpanKind::Server;
    span.resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", "cart")], ..Default::default() });
    span
}

/// Starts the derived metrics over a fresh data directory, deleted when the second value drops.
fn start(options: &MetricsOptions, registry: &mut Registry) -> (Arc<DerivedMetrics>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let derived = DerivedMetrics::start(options, dir.path(), std::time::Duration::from_secs(3_600), registry).unwrap();
    (derived, dir)
}

fn registry_text(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[tokio::test]
async fn a_copy_keeps_what_the_aggregators_read() {
    let mut registry = Registry::default();
    let (derived, _dir) = start(&options(10), &mut registry);
    let mut original = span(1);
    original.attributes = vec![
        KeyValue::string("http.route", "/old"),
        KeyValue::string("user.id", "42"),
        KeyValue::string("db.system.name", "redis"),
        KeyValue::string("http.route", "/cart"),
    ];
    original.events.push(Event { time_unix_nanos: 1_500, name: "retry".into(), ..Default::default() });
    original.status_message = "fine".into();
    let copy = derived.copy(&original);
    let keys: Vec<(&str, &AnyValue)> = copy.attributes.iter().map(|kv| (kv.key.as_str(), &kv.value)).collect();
    assert_eq!(
        keys,
        [
            ("http.route", &AnyValue::String("/old".into())),
            ("db.system.name", &AnyValue::String("redis".into())),
            ("http.route", &AnyValue::String("/cart".into())),
        ],
        "configured dimensions and service graph peers, in order"
    );
    assert!(copy.events.is_empty());
    assert!(Arc::ptr_eq(&copy.resource, &original.resource), "the resource is shared, not copied");
    assert_eq!((copy.trace_id, copy.span_id, copy.name.as_str()), (original.trace_id, original.span_id, "GET /cart"));
}

#[test]
fn kept_keys_are_found_by_length_then_by_bytes() {
    let long = "k".repeat(70);
    let kept = KeptKeys::new(vec!["peer.service".into(), "db.system".into(), long.clone(), "db.system".into()]);
    for key in ["peer.service", "db.system", long.as_str()] {
        assert!(kept.contains(key), "{key}");
    }
    // Same lengths as kept keys (12, 9, 70 and 64 bytes, the last two sharing a length bit).
    for key in ["peer.servicf", "db.systen", &"k".repeat(69), &"k".repeat(64), "", "db.system.name"] {
        assert!(!kept.contains(key), "{key}");
    }
}

#[tokio::test]
async fn a_read_after_sync_sees_every_submitted_batch() {
    let mut registry = Registry::default();
    let (derived, _dir) = start(&options(10), &mut registry);
    for id in 1..=3 {
        let spans = vec![span(id)];
        let batch = derived.prepare(&spans);
        derived.submit(batch, spans.len());
    }
    let (observed, series) = derived.read(|metrics, _| (metrics.observed_spans(), metrics.num_series())).await;
    assert_eq!((observed, series), (3, 1));
    assert!(registry_text(&registry).contains("sextant_spanmetrics_spans_total 3\n"));
}

/// A full queue must never make ingest wait: the batch is acknowledged, not aggregated, and
/// counted.
#[tokio::test]
async fn a_batch_finding_the_queue_full_is_dropped_and_counted() {
    let mut registry = Registry::default();
    let (derived, _dir) = start(&options(2), &mut registry);
    let first = vec![span(1), span(2)];
    let held = derived.aggregators.span_metrics.lock(); // the thread cannot finish the first batch
    let batch = derived.prepare(&first);
    derived.submit(batch, first.len());
    let second = vec![span(3)];
    let batch = derived.prepare(&second);
    derived.submit(batch, second.len());
    drop(held);

    let observed = derived.read(|metrics, _| metrics.observed_spans()).await;
    assert_eq!(observed, 2, "the first batch is aggregated, the second is not");
    let text = registry_text(&registry);
    assert!(text.contains("sextant_metrics_dropped_batches_total 1\n"), "{text}");
    assert!(text.contains("sextant_metrics_dropped_spans_total 1\n"), "{text}");

    // The room is back once the first batch is aggregated.
    let third = vec![span(4), span(5)];
    let batch = derived.prepare(&third);
    derived.submit(batch, third.len());
    assert_eq!(derived.read(|metrics, _| metrics.observed_spans()).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_copied_on_the_blocking_pool_and_handed_back() {
    let mut registry = Registry::default();
    let (derived, _dir) = start(&options(10_000), &mut registry);
    let spans: Vec<Span> = (0..3_000u32)
        .map(|i| {
            let mut s = span(1);
            s.span_id = SpanId([(i % 256) as u8, (i / 256) as u8, 0, 0, 0, 0, 0, 1]);
            s
        })
        .collect();
    let (handed_back, batch) = derived.prepare_owned(spans.clone()).await;
    assert_eq!(handed_back, spans, "the engine gets the spans unchanged");
    derived.submit(batch, handed_back.len());
    assert_eq!(derived.read(|metrics, _| metrics.observed_spans()).await, 3_000);
}

/// A client whose clock runs ahead must not push the current intervals out of the window, and
/// spans older than the window only make series that retention removes.
#[tokio::test]
async fn spans_ending_outside_the_window_are_left_out_and_counted() {
    let mut registry = Registry::default();
    let (derived, _dir) = start(&options(10), &mut registry);
    let now = sextant_model::now_unix_nanos();
    let at = |id: u8, end_unix_nanos: u64| {
        let mut s = span(id);
        (s.start_unix_nanos, s.end_unix_nanos) = (end_unix_nanos - 1_000_000, end_unix_nanos);
        s
    };
    let second = 1_000_000_000;
    let spans =
        vec![at(1, now - second), at(2, now + 600 * second), at(3, now - 601 * second), at(4, now - 599 * second)];
    let batch = derived.prepare(&spans);
    assert_eq!(batch.spans.len(), 3, "a span that ended before the window is not even copied");
    derived.submit(batch, spans.len());
    let (observed, intervals) =
        derived.read(|metrics, _| (metrics.observed_spans(), metrics.interval_starts().len())).await;
    assert_eq!((observed, intervals), (2, 2), "now - 1 s and now - 599 s are within the 600 s window");
    let text = registry_text(&registry);
    assert!(text.contains("sextant_metrics_spans_outside_window_total{side=\"past\"} 1\n"), "{text}");
    assert!(text.contains("sextant_metrics_spans_outside_window_total{side=\"future\"} 1\n"), "{text}");
}

#[tokio::test]
async fn the_consistency_analyzer_sees_the_db_attributes_of_every_synced_batch() {
    let mut registry = Registry::default();
    let options = MetricsOptions {
        consistency_opt: Some(sextant_metrics::ConsistencyConfig { wait_seconds: 0, ..Default::default() }),
        ..options(10)
    };
    let (derived, _dir) = start(&options, &mut registry);
    let db = |id: u8, operation: &str, version: i64, end_unix_nanos: u64| {
        let mut s = span(id);
        s.start_unix_nanos = end_unix_nanos - 1_000;
        s.end_unix_nanos = end_unix_nanos;
        s.attributes = vec![
            KeyValue::string("db.operation.name", operation),
            KeyValue::string("db.record.key", "carts:1"),
            KeyValue::new("db.record.version", AnyValue::Int(version)),
            KeyValue::string("db.consistency_level", "ONE"),
            KeyValue::string("db.replica.region", "eu-west-1"),
            KeyValue::string("user.id", "42"),
        ];
        s
    };
    let now = sextant_model::now_unix_nanos();
    let write = db(1, "UPDATE", 7, now - 2_000_000_000);
    // Started 999 ms after the write's acknowledgement, returned the version before it.
    let read = db(2, "SELECT", 0, now - 1_000_000_000);
    let copy = derived.copy(&read);
    assert_eq!(copy.attributes.len(), 5, "the db attributes are kept, user.id is not");
    for spans in [vec![read], vec![write]] {
        let batch = derived.prepare(&spans);
        derived.submit(batch, spans.len());
    }
    let stale = derived
        .read_consistency(|analyzer| {
            analyzer.stale_reads().map(|s| (s.read.span_id, s.staleness_nanos)).collect::<Vec<_>>()
        })
        .await
        .expect("enabled");
    assert_eq!(stale, [(SpanId([2; 8]), 999_999_000)]);
}
