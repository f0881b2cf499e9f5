//! Span metrics: calls, errors and a latency histogram per series, where a series is a
//! (service, span name, span kind, status code, configured dimensions) combination, both
//! per interval and as cumulative totals.
//!
//! Invariants:
//! - every observed span is counted exactly once in the cumulative totals of one series
//!   (its own or the overflow series) and, unless its interval is older than the full
//!   window, once in that series' statistics for the interval holding its end time;
//! - `calls == latency.count()` and `errors <= calls` in every [`SeriesStats`];
//! - a dimension's value is the span attribute of that key, else the resource attribute,
//!   rendered as text (strings as they are, other values as [`AnyValue`]'s `Display`), else
//!   the empty string;
//! - a series is removed only by [`SpanMetrics::remove_stale_series`], and only once no kept
//!   interval holds it.

use std::borrow::Cow;
use std::sync::Arc;

use sextant_model::{AnyValue, Span, SpanKind, StatusCode, find_attribute};

use crate::MetricsError;
use crate::config::{SpanMetricsConfig, dimension_label_name};
use crate::histogram::{Buckets, Exemplar, Histogram};
use crate::history::{ClosedInterval, History, SpanMetricsInterval};
use crate::intervals::IntervalStore;
use crate::series::{SeriesKey, SeriesTable};

/// The labels of a span metrics series.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesLabels {
    pub service: String,
    pub span_name: String,
    pub span_kind: SpanKind,
    pub status_code: StatusCode,
    /// The configured dimensions' values, in configuration order (`""` when absent).
    pub dimensions: Vec<String>,
    /// The series of spans beyond `max_series`; its other fields are empty.
    pub overflow: bool,
}

impl SeriesKey for SeriesLabels {
    fn overflow() -> Self {
        SeriesLabels {
            service: String::new(),
            span_name: String::new(),
            span_kind: SpanKind::Unspecified,
            status_code: StatusCode::Unset,
            dimensions: Vec::new(),
            overflow: true,
        }
    }
}

/// Series are ordered by labels (service, span name, kind, status, dimensions), the
/// overflow series last: the order they are listed and rendered in.
impl Ord for SeriesLabels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for SeriesLabels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl SeriesLabels {
    fn sort_key(&self) -> (bool, &str, &str, u8, u8, &[String]) {
        (self.overflow, &self.service, &self.span_name, self.span_kind as u8, self.status_code as u8, &self.dimensions)
    }

    fn matches(&self, service: &str, span: &Span, dimension_values: &[Cow<'_, str>]) -> bool {
        !self.overflow
            && self.service == service
            && self.span_name == span.name
            && self.span_kind == span.kind
            && self.status_code == span.status_code
            && self.dimensions.iter().map(String::as_str).eq(dimension_values.iter().map(|v| v.as_ref()))
    }
}

/// Calls, errors and latencies of one series over some time.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesStats {
    errors: u64,
    latency: Histogram,
}

impl SeriesStats {
    pub(crate) fn new(buckets: &Buckets) -> SeriesStats {
        SeriesStats { errors: 0, latency: buckets.empty_histogram() }
    }

    /// Statistics read back from storage (the codec checks `errors <= calls`).
    pub(crate) fn from_parts(errors: u64, latency: Histogram) -> SeriesStats {
        SeriesStats { errors, latency }
    }

    fn record(&mut self, bucket: usize, duration_nanos: u64, is_error: bool, exemplar: Exemplar) {
        self.latency.record(bucket, duration_nanos, Some(exemplar));
        self.errors += u64::from(is_error);
    }

    pub(crate) fn merge(&mut self, other: &SeriesStats) {
        self.errors += other.errors;
        self.latency.merge(&other.latency);
    }

    /// Spans counted.
    pub fn calls(&self) -> u64 {
        self.latency.count()
    }

    /// Spans with status code `Error`.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Span durations, with an exemplar per bucket.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}

/// The span metrics aggregator. See the module documentation for its invariants.
#[derive(Debug)]
pub struct SpanMetrics {
    config: SpanMetricsConfig,
    /// The label name of each configured dimension, in configuration order.
    dimension_label_names: Vec<String>,
    buckets: Buckets,
    series: SeriesTable<SeriesLabels, SeriesStats>,
    intervals: IntervalStore<SeriesStats>,
    observed_spans: u64,
    /// The intervals handed over by [`SpanMetrics::take_intervals_before`], read back by
    /// the range queries.
    history_opt: Option<Arc<dyn History>>,
}

impl SpanMetrics {
    pub fn new(config: SpanMetricsConfig) -> Result<SpanMetrics, MetricsError> {
        config.validate()?;
        Ok(SpanMetrics {
            dimension_label_names: config.dimensions.iter().map(|key| dimension_label_name(key)).collect(),
            buckets: Buckets::new(&config.latency_buckets_seconds),
            series: SeriesTable::new(config.max_series),
            intervals: IntervalStore::new(config.interval_nanos(), config.max_intervals),
            observed_spans: 0,
            history_opt: None,
            config,
        })
    }

    /// Counts a batch of spans. Allocates only when a series, an interval or a series'
    /// entry in an interval is new, and for dimension values that are not strings.
    pub fn observe(&mut self, spans: &[Span]) {
        let mut dimension_values: Vec<Cow<'_, str>> = Vec::with_capacity(self.config.dimensions.len());
        for span in spans {
            dimension_values.clear();
            dimension_values.extend(self.config.dimensions.iter().map(|key| dimension_value(span, key)));
            let service = span.service_name();
            let hash = self.series.hash((
                service,
                span.name.as_str(),
                span.kind as u8,
                span.status_code as u8,
                dimension_values.as_slice(),
            ));
            let buckets = &self.buckets;
            let id = self.series.resolve(
                hash,
                |labels| labels.matches(service, span, &dimension_values),
                || SeriesLabels {
                    service: service.to_string(),
                    span_name: span.name.to_string(),
                    span_kind: span.kind,
                    status_code: span.status_code,
                    dimensions: dimension_values.iter().map(|v| v.to_string()).collect(),
                    overflow: false,
                },
                || SeriesStats::new(buckets),
            );

            let duration_nanos = span.duration_nanos();
            let bucket = buckets.index(duration_nanos);
            let exemplar = Exemplar {
                trace_id: span.trace_id,
                span_id: span.span_id,
                duration_nanos,
                timestamp_unix_nanos: span.end_unix_nanos,
            };
            let is_error = span.is_error();
            let slot = self.series.slot_mut(id);
            slot.totals.record(bucket, duration_nanos, is_error, exemplar);
            slot.last_end_unix_nanos = slot.last_end_unix_nanos.max(span.end_unix_nanos);
            if let Some(stats) = self.intervals.value_mut(span.end_unix_nanos, id, || SeriesStats::new(buckets)) {
                stats.record(bucket, duration_nanos, is_error, exemplar);
            }
            self.observed_spans += 1;
        }
    }

    pub fn config(&self) -> &SpanMetricsConfig {
        &self.config
    }

    pub fn interval_nanos(&self) -> u64 {
        self.intervals.interval_nanos()
    }

    /// The finite latency bucket bounds in seconds (`+Inf` implied).
    pub fn latency_bounds_seconds(&self) -> &[f64] {
        self.buckets.bounds_seconds()
    }

    /// The label name of each configured dimension (`http.route` → `http_route`), in the
    /// order of [`SeriesLabels::dimensions`].
    pub fn dimension_label_names(&self) -> &[String] {
        &self.dimension_label_names
    }

    /// Every series with its cumulative totals, sorted by labels, the overflow series last.
    pub fn series(&self) -> Vec<(&SeriesLabels, &SeriesStats)> {
        let mut series: Vec<_> = self.series.iter().map(|(_, slot)| (&slot.key, &slot.totals)).collect();
        series.sort_by(|a, b| a.0.cmp(b.0));
        series
    }

    /// Series, the overflow series excluded.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Spans counted in the overflow series because `max_series` was reached.
    pub fn overflowed_spans(&self) -> u64 {
        self.series.overflowed()
    }

    /// Spans counted in the totals but in no interval, because their interval was older
    /// than every kept one while `max_intervals` were kept.
    pub fn late_spans(&self) -> u64 {
        self.intervals.late_observations()
    }

    /// Spans observed since creation.
    pub fn observed_spans(&self) -> u64 {
        self.observed_spans
    }

    /// The start of every kept interval, oldest first.
    pub fn interval_starts(&self) -> Vec<u64> {
        self.intervals.starts().collect()
    }

    /// The time the intervals held in memory and in the history cover, `[first start, last
    /// end)`; `None` when neither holds any.
    pub fn held_range(&self) -> Option<(u64, u64)> {
        let memory_opt = self.intervals.starts().next().zip(self.intervals.starts().last());
        let history_opt = self.history().and_then(|history| history.span_metrics_bounds());
        let (first, last) = match (memory_opt, history_opt) {
            (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
            (one_opt, other_opt) => one_opt.or(other_opt)?,
        };
        Some((first, last.saturating_add(self.interval_nanos())))
    }

    /// The series of one interval with their statistics in it, sorted like
    /// [`SpanMetrics::series`]; empty if the interval is not kept.
    pub fn interval_series(&self, start_unix_nanos: u64) -> Vec<(&SeriesLabels, &SeriesStats)> {
        let mut series: Vec<_> = self
            .intervals
            .range(start_unix_nanos, start_unix_nanos.saturating_add(1))
            .flat_map(|(_, values)| values.iter().map(|(id, stats)| (&self.series.slot(*id).key, stats)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(b.0));
        series
    }

    /// Takes out the intervals that end at or before `cutoff_unix_nanos` (retention) and
    /// those a newer interval pushed out of the full window, oldest first, with their
    /// labels, for the caller to persist; the cumulative totals are kept.
    pub fn take_intervals_before(&mut self, cutoff_unix_nanos: u64) -> Vec<SpanMetricsInterval> {
        let taken = self.intervals.take_before(cutoff_unix_nanos);
        self.closed(taken)
    }

    /// Takes out every interval (on shutdown), oldest first.
    pub fn take_all_intervals(&mut self) -> Vec<SpanMetricsInterval> {
        let taken = self.intervals.take_all();
        self.closed(taken)
    }

    fn closed(&self, taken: Vec<(u64, ahash::AHashMap<u32, SeriesStats>)>) -> Vec<SpanMetricsInterval> {
        ClosedInterval::resolve_all(taken, |id| self.labels_of(id).clone())
    }

    /// Makes the range queries also read the intervals `history` holds.
    pub fn set_history(&mut self, history: Arc<dyn History>) {
        self.history_opt = Some(history);
    }

    pub(crate) fn history(&self) -> Option<&dyn History> {
        self.history_opt.as_deref()
    }

    /// Removes the series (and their cumulative totals) whose last span ended before
    /// `cutoff_unix_nanos` and that no kept interval holds, making room under `max_series`
    /// (as Prometheus drops stale series). Returns how many went.
    pub fn remove_stale_series(&mut self, cutoff_unix_nanos: u64) -> usize {
        let intervals = &self.intervals;
        self.series.remove_where(|id, slot| slot.last_end_unix_nanos < cutoff_unix_nanos && !intervals.holds(id))
    }

    pub(crate) fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    pub(crate) fn intervals(&self) -> &IntervalStore<SeriesStats> {
        &self.intervals
    }

    pub(crate) fn labels_of(&self, id: u32) -> &SeriesLabels {
        &self.series.slot(id).key
    }
}

/// The value of a dimension for a span: its attribute, else its resource's, else empty.
fn dimension_value<'a>(span: &'a Span, key: &str) -> Cow<'a, str> {
    match find_attribute(&span.attributes, key).or_else(|| find_attribute(&span.resource.attributes, key)) {
        None => Cow::Borrowed(""),
        Some(AnyValue::String(value)) => Cow::Borrowed(value),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use sextant_model::{KeyValue, SpanKind};

    use super::*;
    use crate::testing::*;

    fn metrics(config: SpanMetricsConfig) -> SpanMetrics {
        SpanMetrics::new(config).unwrap()
    }

    fn find<'a>(list: &[(&'a SeriesLabels, &'a SeriesStats)], span_name: &str) -> &'a SeriesStats {
        list.iter().find(|(labels, _)| labels.span_name == span_name).unwrap().1
    }

    #[test]
    fn counts_calls_errors_buckets_and_sums_per_series() {
        let mut m = metrics(SpanMetricsConfig::default());
        let server = SpanKind::Server;
        m.observe(&[
            span("cart", "GET /cart", server, (1, 1), T0 + SECOND, MS),
            span("cart", "GET /cart", server, (2, 2), T0 + 2 * SECOND, 3 * MS),
            span("cart", "GET /cart", server, (3, 3), T0 + 3 * SECOND, 3 * MS),
            span("cart", "GET /cart", server, (4, 4), T0 + 4 * SECOND, 100 * MS),
            with_error(span("cart", "GET /cart", server, (5, 5), T0 + 5 * SECOND, 20 * SECOND)),
            span("cart", "redis GET", SpanKind::Client, (1, 6), T0 + SECOND, 2 * MS),
        ]);
        let series = m.series();
        assert_eq!(series.len(), 3, "an error span is a series of its own (status code)");
        assert_eq!(m.num_series(), 3);
        let ok =
            series.iter().find(|(l, _)| l.span_name == "GET /cart" && l.status_code == StatusCode::Unset).unwrap().1;
        assert_eq!((ok.calls(), ok.errors()), (4, 0));
        // 1 ms and the 2 ms bound in the first bucket; 3 ms in (2, 4] ms; 100 ms in (64, 128] ms.
        assert_eq!(ok.latency().bucket_counts(), &[1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ok.latency().sum_nanos(), u128::from(107 * MS));
        let failed = series.iter().find(|(l, _)| l.status_code == StatusCode::Error).unwrap().1;
        assert_eq!((failed.calls(), failed.errors()), (1, 1));
        assert_eq!(failed.latency().bucket_counts()[14], 1, "20 s is beyond 16.384 s: +Inf");
        let client = find(&series, "redis GET");
        assert_eq!(client.latency().bucket_counts()[0], 1);

        // The same spans are in the interval starting at T0, with the same values.
        assert_eq!(m.interval_starts(), [T0]);
        let interval = m.interval_series(T0);
        assert_eq!(interval.len(), 3);
        assert_eq!(interval.iter().map(|(_, s)| s.calls()).sum::<u64>(), 6);
        assert_eq!(m.observed_spans(), 6);
        assert!(m.interval_series(T0 + 15 * SECOND).is_empty());
    }

    #[test]
    fn dimensions_come_from_the_span_then_the_resource() {
        let config = SpanMetricsConfig {
            dimensions: vec!["http.route".into(), "cloud.region".into(), "http.response.status_code".into()],
            ..Default::default()
        };
        let mut m = metrics(config);
        assert_eq!(m.dimension_label_names(), ["http_route", "cloud_region", "http_response_status_code"]);
        let base = |span_id: u8| span("cart", "GET", SpanKind::Server, (1, span_id), T0, MS);
        let mut with_status =
            with_attribute(with_resource_attribute(base(1), "cloud.region", "eu-west-1"), "http.route", "/a");
        with_status.attributes.push(KeyValue::new("http.response.status_code", AnyValue::Int(200)));
        m.observe(&[
            with_status,
            // The span's own attribute wins over the resource's.
            with_attribute(with_resource_attribute(base(2), "cloud.region", "eu-west-1"), "cloud.region", "us-east-1"),
            base(3),
        ]);
        let mut dimensions: Vec<_> = m.series().iter().map(|(l, _)| l.dimensions.clone()).collect();
        dimensions.sort();
        assert_eq!(
            dimensions,
            vec![
                vec!["".to_string(), "".to_string(), "".to_string()],
                vec!["".to_string(), "us-east-1".to_string(), "".to_string()],
                vec!["/a".to_string(), "eu-west-1".to_string(), "200".to_string()],
            ]
        );
    }

    #[test]
    fn series_beyond_max_series_go_to_the_overflow_series() {
        let mut m = metrics(SpanMetricsConfig { max_series: 2, ..Default::default() });
        let spans: Vec<Span> = (1..=5u8)
            .map(|i| span("cart", &format!("op{i}"), SpanKind::Server, (i, i), T0 + u64::from(i), MS))
            .collect();
        m.observe(&spans);
        m.observe(&spans[..1]);
        let series = m.series();
        assert_eq!(m.num_series(), 2);
        assert_eq!(series.len(), 3);
        assert_eq!(find(&series, "op1").calls(), 2, "existing series keep counting when full");
        let (overflow_labels, overflow) = series.last().unwrap();
        assert!(overflow_labels.overflow);
        assert_eq!(overflow_labels.service, "");
        assert_eq!(overflow.calls(), 3);
        assert_eq!(m.overflowed_spans(), 3);
        assert_eq!(m.interval_series(T0).iter().map(|(_, s)| s.calls()).sum::<u64>(), 6);
    }

    #[test]
    fn only_max_intervals_are_kept_and_totals_keep_everything() {
        let mut m = metrics(SpanMetricsConfig { max_intervals: 2, ..Default::default() });
        let at = |end: u64, id: u8| span("cart", "GET", SpanKind::Server, (id, id), end, MS);
        m.observe(&[at(T0, 1), at(T0 + 15 * SECOND, 2), at(T0 + 29 * SECOND, 3)]);
        assert_eq!(m.interval_starts(), [T0, T0 + 15 * SECOND]);
        m.observe(&[at(T0 + 30 * SECOND, 4)]);
        assert_eq!(m.interval_starts(), [T0 + 15 * SECOND, T0 + 30 * SECOND], "the oldest interval was evicted");
        m.observe(&[at(T0 + SECOND, 5)]);
        assert_eq!(m.late_spans(), 1, "a span older than the full window is kept only in the totals");
        assert_eq!(m.interval_starts(), [T0 + 15 * SECOND, T0 + 30 * SECOND]);
        assert_eq!(m.series()[0].1.calls(), 5);
        assert_eq!(m.interval_series(T0 + 15 * SECOND)[0].1.calls(), 2);

        let taken = m.take_intervals_before(T0 + 30 * SECOND);
        assert_eq!(taken.iter().map(|i| i.start_unix_nanos).collect::<Vec<_>>(), [T0, T0 + 15 * SECOND]);
        assert_eq!(taken[1].entries[0].1.calls(), 2, "the evicted interval comes first, then the one that ended");
        assert_eq!(m.interval_starts(), [T0 + 30 * SECOND]);
        assert_eq!(m.series()[0].1.calls(), 5, "retention keeps the totals");
    }

    #[test]
    fn stale_series_are_removed_once_no_interval_holds_them() {
        let mut m = metrics(SpanMetricsConfig { max_series: 1, ..Default::default() });
        m.observe(&[span("cart", "old", SpanKind::Server, (1, 1), T0, MS)]);
        m.observe(&[span("cart", "new", SpanKind::Server, (2, 2), T0 + 60 * SECOND, MS)]);
        assert_eq!(m.overflowed_spans(), 1);
        assert_eq!(m.remove_stale_series(T0 + SECOND), 0, "intervals still hold the old series");
        m.take_intervals_before(T0 + 60 * SECOND);
        assert_eq!(m.remove_stale_series(T0 + SECOND), 1);
        assert_eq!(m.num_series(), 0);
        m.observe(&[span("cart", "new", SpanKind::Server, (3, 3), T0 + 61 * SECOND, MS)]);
        let series = m.series();
        assert_eq!(
            series.iter().map(|(l, s)| (l.span_name.as_str(), s.calls())).collect::<Vec<_>>(),
            [("new", 1), ("", 1)]
        );
    }

    #[test]
    fn exemplars_carry_the_span_that_fell_in_each_bucket() {
        let mut m = metrics(SpanMetricsConfig::default());
        m.observe(&[
            span("cart", "GET", SpanKind::Server, (0x11, 1), T0 + SECOND, MS),
            span("cart", "GET", SpanKind::Server, (0x22, 2), T0 + 2 * SECOND, 50 * MS),
            span("cart", "GET", SpanKind::Server, (0x33, 3), T0 + 3 * SECOND, 60 * MS),
            span("cart", "GET", SpanKind::Server, (0x44, 4), T0 + 20 * SECOND, 55 * MS),
        ]);
        let interval = m.interval_series(T0);
        let latency = interval[0].1.latency();
        let exemplars: Vec<_> = latency.exemplars().map(|(bucket, e)| (bucket, e.trace_id, e.duration_nanos)).collect();
        // 1 ms → bucket 0 (≤ 2 ms); 50 and 60 ms → bucket 5 (32, 64] ms, the later span kept.
        assert_eq!(exemplars, [(0, trace_id(0x11), MS), (5, trace_id(0x33), 60 * MS)]);
        assert_eq!(latency.exemplar(5).unwrap().span_id, span_id(3));
        assert_eq!(latency.exemplar(5).unwrap().timestamp_unix_nanos, T0 + 3 * SECOND);

        let totals = m.series()[0].1.latency();
        assert_eq!(totals.exemplar(5).unwrap().trace_id, trace_id(0x44), "totals keep the latest of all intervals");
        assert_eq!(totals.exemplar(0).unwrap().trace_id, trace_id(0x11));
    }
}
