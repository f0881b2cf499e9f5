//! Tests of the interval files: round trip through disk, merge on rewrite, corrupt files
//! skipped and counted, retention, leftovers of interrupted writes.

use std::sync::Arc;
use std::time::Duration;

use sextant_metrics::{RangeQuery, ServiceGraph, SpanMetrics};
use sextant_model::{KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

use super::*;

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// A multiple of 15 s.
const T0: u64 = 1_700_000_010 * SECOND;

fn span(service: &str, id: u8, end_unix_nanos: u64, duration_nanos: u64) -> Span {
    let mut span =
        Span::new(TraceId([id; 16]), SpanId([id; 8]), "GET /", end_unix_nanos - duration_nanos, end_unix_nanos);
    span.kind = SpanKind::Server;
    span.resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], ..Default::default() });
    span
}

fn open(dir: &Path, retention: Duration) -> Arc<IntervalFiles> {
    Arc::new(
        IntervalFiles::open(dir, &SpanMetricsConfig::default(), &ServiceGraphConfig::default(), retention).unwrap(),
    )
}

/// Span metrics over `files`, holding the given spans' intervals in memory.
fn metrics(files: &Arc<IntervalFiles>, spans: &[Span]) -> SpanMetrics {
    let mut metrics = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
    metrics.set_history(files.clone());
    metrics.observe(spans);
    metrics
}

/// (start, calls) of every span metrics interval on disk in `[from, to)`.
fn on_disk(files: &IntervalFiles, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut found = Vec::new();
    files.span_metrics(from, to, &mut |interval| {
        found.push((interval.start_unix_nanos, interval.entries.iter().map(|(_, s)| s.calls()).sum()));
    });
    found
}

fn calls_per_interval(metrics: &SpanMetrics) -> Vec<(u64, u64)> {
    let query =
        RangeQuery { from_unix_nanos: T0, to_unix_nanos: T0 + 60 * SECOND, step_nanos: 15 * SECOND, quantile: 0.5 };
    let series = metrics.query_range(&query, |_| Some(())).unwrap();
    series.iter().flat_map(|s| s.points.iter().map(|p| (p.start_unix_nanos, p.calls))).collect()
}

#[test]
fn intervals_written_are_read_back_by_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let spans = [
        span("cart", 1, T0 + SECOND, 3 * MS),
        span("cart", 2, T0 + 16 * SECOND, 5 * MS),
        span("cart", 3, T0 + 17 * SECOND, 5 * MS),
    ];
    let files = open(dir.path(), Duration::from_secs(3_600));
    let mut before = metrics(&files, &spans);
    let expected = calls_per_interval(&before);
    assert_eq!(expected, [(T0, 1), (T0 + 15 * SECOND, 2)]);
    files.write_span_metrics(before.take_all_intervals());
    assert_eq!(files.span_metrics.counters.written_intervals.load(Ordering::Relaxed), 2);
    drop((before, files));

    let files = open(dir.path(), Duration::from_secs(3_600));
    let after = metrics(&files, &[]);
    assert_eq!(calls_per_interval(&after), expected, "the same numbers after a restart");
    assert_eq!(after.held_range(), Some((T0, T0 + 30 * SECOND)));
}

#[test]
fn writing_an_interval_again_merges_it_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path(), Duration::from_secs(3_600));
    files.write_span_metrics(metrics(&files, &[span("cart", 1, T0 + SECOND, MS)]).take_all_intervals());
    // After a restart, more spans end in the same interval; it leaves memory again.
    let mut after = metrics(&files, &[span("cart", 2, T0 + 2 * SECOND, MS), span("shop", 3, T0 + 3 * SECOND, MS)]);
    assert_eq!(calls_per_interval(&after), [(T0, 3)], "memory and disk are both read");
    files.write_span_metrics(after.take_all_intervals());
    assert_eq!(on_disk(&files, T0, T0 + SECOND), [(T0, 3)]);
    assert_eq!(calls_per_interval(&after), [(T0, 3)], "counted once, from disk only");
}

#[test]
fn a_corrupt_file_is_skipped_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path(), Duration::from_secs(3_600));
    files.write_span_metrics(
        metrics(&files, &[span("cart", 1, T0 + SECOND, MS), span("cart", 2, T0 + 16 * SECOND, MS)])
            .take_all_intervals(),
    );
    let path = files.span_metrics.file(T0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap(); // a torn write
    assert_eq!(on_disk(&files, T0, T0 + 60 * SECOND), [(T0 + 15 * SECOND, 1)], "the torn interval is skipped");
    assert_eq!(on_disk(&files, T0, T0 + 60 * SECOND), [(T0 + 15 * SECOND, 1)]);
    assert_eq!(files.span_metrics.counters.corrupt.load(Ordering::Relaxed), 1, "reported once, then skipped");

    // Another configuration's files are skipped too, and told apart.
    let other = SpanMetricsConfig { dimensions: vec!["http.route".to_string()], ..Default::default() };
    let reopened =
        IntervalFiles::open(dir.path(), &other, &ServiceGraphConfig::default(), Duration::from_secs(3_600)).unwrap();
    assert!(on_disk(&reopened, T0, T0 + 60 * SECOND).is_empty());
    assert_eq!(reopened.span_metrics.counters.incompatible.load(Ordering::Relaxed), 1);
    assert_eq!(reopened.span_metrics.counters.corrupt.load(Ordering::Relaxed), 1);
}

#[test]
fn retention_deletes_files_of_intervals_older_than_the_traces_kept() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path(), Duration::from_secs(60));
    files.write_span_metrics(
        metrics(&files, &[span("cart", 1, T0 + SECOND, MS), span("cart", 2, T0 + 46 * SECOND, MS)])
            .take_all_intervals(),
    );
    let mut graph = ServiceGraph::new(ServiceGraphConfig::default()).unwrap();
    graph.observe(&[span("cart", 3, T0 + SECOND, MS)], T0);
    files.write_service_graph(graph.take_all_intervals());
    std::fs::write(files.span_metrics.file(T0 + 15 * SECOND), b"garbage").unwrap();
    files.span_metrics.index.lock().readable.insert(T0 + 15 * SECOND);
    assert_eq!(on_disk(&files, T0, T0 + 60 * SECOND).len(), 2, "the garbage file is unreadable");

    // Now is 60 s after T0 + 30 s: [T0, T0+15) and [T0+15, T0+30) ended more than 60 s ago.
    files.expire(T0 + 90 * SECOND);
    assert!(!files.span_metrics.file(T0).exists());
    assert!(!files.span_metrics.file(T0 + 15 * SECOND).exists(), "unreadable files expire too");
    assert!(files.span_metrics.file(T0 + 45 * SECOND).exists());
    assert!(!files.service_graph.file(T0).exists());
    assert_eq!(on_disk(&files, 0, u64::MAX), [(T0 + 45 * SECOND, 1)]);
    assert_eq!(files.span_metrics.counters.expired.load(Ordering::Relaxed), 2);
    assert_eq!(files.service_graph.counters.expired.load(Ordering::Relaxed), 1);
}

#[test]
fn a_write_interrupted_before_its_rename_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path(), Duration::from_secs(3_600));
    files.write_span_metrics(metrics(&files, &[span("cart", 1, T0 + SECOND, MS)]).take_all_intervals());
    let temp = files.span_metrics.file(T0 + 15 * SECOND).with_extension("sxmi.tmp");
    std::fs::write(&temp, b"half an interval").unwrap();
    drop(files);
    let files = open(dir.path(), Duration::from_secs(3_600));
    assert!(!temp.exists());
    assert_eq!(on_disk(&files, 0, u64::MAX), [(T0, 1)]);
}

#[test]
fn a_file_read_again_is_served_decoded_until_it_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path(), Duration::from_secs(3_600));
    files.write_span_metrics(metrics(&files, &[span("cart", 1, T0 + SECOND, MS)]).take_all_intervals());
    assert_eq!(on_disk(&files, T0, T0 + SECOND), [(T0, 1)]);
    // Damage the file behind the server's back: the decoded copy still answers, unread.
    std::fs::write(files.span_metrics.file(T0), b"garbage").unwrap();
    assert_eq!(on_disk(&files, T0, T0 + SECOND), [(T0, 1)]);
    assert_eq!(files.span_metrics.counters.corrupt.load(Ordering::Relaxed), 0);
    // A rewrite drops the decoded copy: the damaged file is found (and replaced).
    files.write_span_metrics(metrics(&files, &[span("cart", 2, T0 + 2 * SECOND, MS)]).take_all_intervals());
    assert_eq!(files.span_metrics.counters.corrupt.load(Ordering::Relaxed), 1);
    assert_eq!(on_disk(&files, T0, T0 + SECOND), [(T0, 1)], "only the new span: the damaged file was lost");
}
