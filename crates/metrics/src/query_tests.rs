//! Tests of the range queries: steps, rates, quantiles, grouping, exemplars, edges.

use sextant_model::SpanKind;

use super::*;
use crate::config::{ServiceGraphConfig, SpanMetricsConfig};
use crate::testing::*;

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value");
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}

/// cart `GET /cart`: 1, 3, 3 ms and 100 ms (error) in [T0, T0+15s); 10 and 20 ms in
/// [T0+15s, T0+30s); 5 ms in [T0+30s, T0+45s). cart `GET /health`: 1 ms in [T0, T0+15s).
/// shop `GET /cart`: 1 ms in [T0, T0+15s).
fn fixture() -> SpanMetrics {
    let mut m = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
    let at = |service: &str, name: &str, id: u8, end: u64, duration: u64| {
        span(service, name, SpanKind::Server, (id, id), end, duration)
    };
    m.observe(&[
        at("cart", "GET /cart", 1, T0 + SECOND, MS),
        at("cart", "GET /cart", 2, T0 + 2 * SECOND, 3 * MS),
        at("cart", "GET /cart", 3, T0 + 3 * SECOND, 3 * MS),
        with_error(at("cart", "GET /cart", 4, T0 + 4 * SECOND, 100 * MS)),
        at("cart", "GET /cart", 5, T0 + 16 * SECOND, 10 * MS),
        at("cart", "GET /cart", 6, T0 + 17 * SECOND, 20 * MS),
        at("cart", "GET /cart", 7, T0 + 31 * SECOND, 5 * MS),
        at("cart", "GET /health", 8, T0 + SECOND, MS),
        at("shop", "GET /cart", 9, T0 + SECOND, MS),
    ]);
    m
}

/// Groups cart's series by span name, merging the error series with the others.
fn cart_operations(labels: &SeriesLabels) -> Option<String> {
    (labels.service == "cart").then(|| labels.span_name.clone())
}

#[test]
fn steps_carry_calls_errors_rates_and_quantiles() {
    let m = fixture();
    let query =
        RangeQuery { from_unix_nanos: T0, to_unix_nanos: T0 + 60 * SECOND, step_nanos: 30 * SECOND, quantile: 0.5 };
    let series = m.query_range(&query, cart_operations).unwrap();
    assert_eq!(series.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["GET /cart", "GET /health"]);

    let cart = &series[0].points;
    assert_eq!(cart.len(), 2);
    assert_eq!((cart[0].start_unix_nanos, cart[0].calls, cart[0].errors), (T0, 6, 1));
    assert_close(Some(cart[0].rate_per_second), 6.0 / 30.0);
    assert_close(Some(cart[0].error_rate_per_second), 1.0 / 30.0);
    // 1 | 3 3 | - | 10 | 20 | - | 100 ms: rank 3 is the last of the two in (2, 4] ms.
    assert_close(cart[0].latency_quantile_seconds, 0.004);
    assert_eq!((cart[1].start_unix_nanos, cart[1].calls, cart[1].errors), (T0 + 30 * SECOND, 1, 0));
    // One span of 5 ms in (4, 8] ms: rank 0.5 is halfway.
    assert_close(cart[1].latency_quantile_seconds, 0.006);
    assert_eq!(series[1].points.len(), 1, "a step without calls has no point");

    let p90 = m.query_range(&RangeQuery { quantile: 0.9, ..query }, cart_operations).unwrap();
    // rank 5.4 of 6 lies in the last non-empty bucket (64, 128] ms, holding 1: 64 + 64 × 0.4.
    assert_close(p90[0].points[0].latency_quantile_seconds, 0.0896);
}

#[test]
fn the_range_selects_whole_intervals_and_the_last_step_may_be_shorter() {
    let m = fixture();
    let every_series = |labels: &SeriesLabels| Some((labels.service.clone(), labels.span_name.clone()));
    // From inside the first interval to inside the third: all three, the last step 15 s long.
    let query = RangeQuery {
        from_unix_nanos: T0 + 5 * SECOND,
        to_unix_nanos: T0 + 31 * SECOND,
        step_nanos: 30 * SECOND,
        quantile: 0.5,
    };
    let series = m.query_range(&query, every_series).unwrap();
    let cart = &series.iter().find(|s| s.key == ("cart".to_string(), "GET /cart".to_string())).unwrap().points;
    assert_eq!(cart.iter().map(|p| p.calls).collect::<Vec<_>>(), [6, 1]);
    assert_close(Some(cart[1].rate_per_second), 1.0 / 15.0);
    assert_eq!(series.len(), 3);

    let second_interval_only = RangeQuery {
        from_unix_nanos: T0 + 15 * SECOND,
        to_unix_nanos: T0 + 30 * SECOND,
        step_nanos: 15 * SECOND,
        ..query
    };
    let series = m.query_range(&second_interval_only, every_series).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].points[0].calls, 2);
}

#[test]
fn invalid_queries_are_refused() {
    let m = fixture();
    let query =
        RangeQuery { from_unix_nanos: T0, to_unix_nanos: T0 + 60 * SECOND, step_nanos: 15 * SECOND, quantile: 0.5 };
    let run = |q: RangeQuery| m.query_range(&q, |l| Some(l.clone())).map(|_| ());
    assert!(run(query).is_ok());
    assert!(matches!(run(RangeQuery { step_nanos: 10 * SECOND, ..query }), Err(MetricsError::InvalidStep { .. })));
    assert!(matches!(run(RangeQuery { step_nanos: 0, ..query }), Err(MetricsError::InvalidStep { .. })));
    assert!(matches!(run(RangeQuery { to_unix_nanos: T0, ..query }), Err(MetricsError::EmptyRange { .. })));
    assert!(matches!(run(RangeQuery { quantile: 1.5, ..query }), Err(MetricsError::InvalidQuantile { .. })));
    assert!(matches!(run(RangeQuery { quantile: f64::NAN, ..query }), Err(MetricsError::InvalidQuantile { .. })));
    assert!(matches!(
        run(RangeQuery { from_unix_nanos: 0, ..query }),
        Err(MetricsError::TooManyPoints { max_points: MAX_POINTS_PER_SERIES, .. })
    ));
}

#[test]
fn exemplars_are_selected_by_timestamp() {
    let m = fixture();
    let exemplars = m.exemplars_in_range(T0 + 2 * SECOND, T0 + 17 * SECOND, cart_operations).unwrap();
    assert_eq!(exemplars.len(), 1, "GET /health's exemplar is at T0 + 1 s");
    let ids: Vec<_> = exemplars[0].exemplars.iter().map(|e| (e.trace_id, e.duration_nanos)).collect();
    // T0+2s (3 ms) and T0+3s (3 ms) share a bucket: only the later is kept; then 100 ms, 10 ms.
    assert_eq!(ids, [(trace_id(3), 3 * MS), (trace_id(4), 100 * MS), (trace_id(5), 10 * MS)]);
    assert!(m.exemplars_in_range(T0, T0, cart_operations).is_err());
}

#[test]
fn edges_over_a_range_carry_calls_failures_and_latency_quantiles() {
    let mut g = ServiceGraph::new(ServiceGraphConfig::default()).unwrap();
    let pair = |trace: u8, end: u64, server_nanos: u64, failed: bool| {
        let server = with_parent(span("cart", "Get", SpanKind::Server, (trace, 2), end, server_nanos), 1);
        [
            with_parent(span("frontend", "Get", SpanKind::Client, (trace, 1), end, 100 * MS), 9),
            if failed { with_error(server) } else { server },
        ]
    };
    for (trace, end, server_nanos, failed) in
        [(1, T0 + SECOND, 40 * MS, false), (2, T0 + 2 * SECOND, 40 * MS, true), (3, T0 + 3 * SECOND, 40 * MS, false)]
    {
        g.observe(&pair(trace, end, server_nanos, failed), 0);
    }
    g.observe(&pair(4, T0 + 20 * SECOND, 300 * MS, false), 0);

    let first = g.edges_in_range(T0, T0 + 15 * SECOND).unwrap();
    assert_eq!(first.len(), 1);
    let edge = &first[0];
    assert_eq!((edge.labels.client.as_str(), edge.labels.server.as_str()), ("frontend", "cart"));
    assert_eq!((edge.calls, edge.failed), (3, 1));
    // Three 40 ms servers in (32, 64] ms: p50 = 32 + 32 × 1.5/3, p90 = 32 + 32 × 2.7/3, …
    assert_close(edge.server_latency.p50_seconds, 0.048);
    assert_close(edge.server_latency.p90_seconds, 0.0608);
    assert_close(edge.server_latency.p99_seconds, 0.06368);
    // Three 100 ms clients in (64, 128] ms.
    assert_close(edge.client_latency.p50_seconds, 0.096);

    let both = g.edges_in_range(T0 + 10 * SECOND, T0 + 30 * SECOND).unwrap();
    assert_eq!(both[0].calls, 4, "from is rounded down to the interval start");
    // 300 ms joins in (256, 512] ms: p99's rank 3.96 is there, 256 + 256 × 0.96.
    assert_close(both[0].server_latency.p99_seconds, 0.50176);
    assert_close(both[0].server_latency.p50_seconds, 0.032 + 0.032 * 2.0 / 3.0);
    assert!(g.edges_in_range(T0 + 30 * SECOND, T0 + 45 * SECOND).unwrap().is_empty());
}

/// A history holding the intervals handed to it, in memory.
#[derive(Debug, Default)]
struct KeptHistory {
    span_metrics: std::sync::Mutex<Vec<crate::SpanMetricsInterval>>,
    service_graph: std::sync::Mutex<Vec<crate::ServiceGraphInterval>>,
}

impl crate::History for KeptHistory {
    fn span_metrics(&self, from: u64, to: u64, visit: &mut dyn FnMut(&crate::SpanMetricsInterval)) {
        let kept = self.span_metrics.lock().unwrap();
        kept.iter().filter(|i| (from..to).contains(&i.start_unix_nanos)).for_each(visit);
    }

    fn service_graph(&self, from: u64, to: u64, visit: &mut dyn FnMut(&crate::ServiceGraphInterval)) {
        let kept = self.service_graph.lock().unwrap();
        kept.iter().filter(|i| (from..to).contains(&i.start_unix_nanos)).for_each(visit);
    }

    fn span_metrics_bounds(&self) -> Option<(u64, u64)> {
        let kept = self.span_metrics.lock().unwrap();
        Some((kept.first()?.start_unix_nanos, kept.last()?.start_unix_nanos))
    }
}

#[test]
fn answers_do_not_depend_on_whether_intervals_are_in_memory_or_handed_over() {
    let query =
        RangeQuery { from_unix_nanos: T0, to_unix_nanos: T0 + 60 * SECOND, step_nanos: 30 * SECOND, quantile: 0.9 };
    let every_series = |labels: &SeriesLabels| Some(labels.clone());
    let expected = fixture().query_range(&query, every_series).unwrap();
    let expected_exemplars = fixture().exemplars_in_range(T0, T0 + 60 * SECOND, every_series).unwrap();

    // The first two intervals leave memory, then all of them.
    for cutoff in [T0 + 30 * SECOND, u64::MAX] {
        let mut m = fixture();
        let history = std::sync::Arc::new(KeptHistory::default());
        let taken = m.take_intervals_before(cutoff);
        assert!(!taken.is_empty());
        *history.span_metrics.lock().unwrap() = taken;
        m.set_history(history.clone());
        assert_eq!(m.query_range(&query, every_series).unwrap(), expected, "cutoff {cutoff}");
        assert_eq!(m.held_range(), Some((T0, T0 + 45 * SECOND)));
        assert_eq!(m.exemplars_in_range(T0, T0 + 60 * SECOND, every_series).unwrap(), expected_exemplars);
    }
}

/// After a restart, spans of an interval that was persisted at shutdown are added to it.
#[test]
fn an_interval_in_both_places_counts_both_halves() {
    let at = |id: u8, end: u64| span("cart", "GET", SpanKind::Server, (id, id), end, MS);
    let mut before = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
    before.observe(&[at(1, T0 + SECOND), at(2, T0 + 2 * SECOND)]);
    let history = std::sync::Arc::new(KeptHistory::default());
    *history.span_metrics.lock().unwrap() = before.take_all_intervals();

    let mut after = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
    after.set_history(history.clone());
    after.observe(&[at(3, T0 + 3 * SECOND)]);
    let query =
        RangeQuery { from_unix_nanos: T0, to_unix_nanos: T0 + 15 * SECOND, step_nanos: 15 * SECOND, quantile: 0.5 };
    let series = after.query_range(&query, |_| Some(())).unwrap();
    assert_eq!(series[0].points[0].calls, 3);

    let mut merged = after.take_all_intervals().remove(0);
    merged.merge(history.span_metrics.lock().unwrap().remove(0));
    assert_eq!(merged.entries.len(), 1);
    assert_eq!(merged.entries[0].1.calls(), 3, "merging the two halves before writing keeps every span");
}

#[test]
fn edges_merge_memory_and_history() {
    let pair = |trace: u8, end: u64| {
        [
            with_parent(span("frontend", "Get", SpanKind::Client, (trace, 1), end, 100 * MS), 9),
            with_error(with_parent(span("cart", "Get", SpanKind::Server, (trace, 2), end, 40 * MS), 1)),
        ]
    };
    let mut g = ServiceGraph::new(ServiceGraphConfig::default()).unwrap();
    g.observe(&pair(1, T0 + SECOND), 0);
    g.observe(&pair(2, T0 + 20 * SECOND), 0);
    let expected = g.edges_in_range(T0, T0 + 30 * SECOND).unwrap();
    let history = std::sync::Arc::new(KeptHistory::default());
    *history.service_graph.lock().unwrap() = g.take_intervals_before(T0 + 15 * SECOND);
    g.set_history(history);
    let edges = g.edges_in_range(T0, T0 + 30 * SECOND).unwrap();
    assert_eq!(edges, expected);
    assert_eq!((edges[0].calls, edges[0].failed), (2, 2));
}
