//! Queries over the kept intervals, for the APIs: per-step calls, errors, rates and latency
//! quantiles of span metrics series (grouped as the caller chooses), their exemplars, and
//! service graph edges with their latency quantiles over a time range.
//!
//! Time ranges are `[from, to)` in unix nanoseconds and select whole intervals: those whose
//! start lies in the range, `from` rounded down to an interval boundary (an interval holds
//! the spans that ended in it). A step is a positive multiple of the interval; point `k`
//! covers the intervals starting in `[from + k × step, from + (k + 1) × step)`, clipped to
//! the range, and its rate divides by that covered length. Only steps holding at least one
//! span give a point: a missing step had no calls. Exemplars are selected by their exact
//! timestamp in `[from, to)`.
//!
//! Each query reads the intervals of its range held in memory and those the aggregator's
//! [`History`](crate::History) visits (intervals that left memory), merging both per interval:
//! an answer does not depend on where an interval is kept.

use std::collections::BTreeMap;

use ahash::AHashMap;

use crate::histogram::{Exemplar, Histogram};
use crate::service_graph::{EdgeLabels, EdgeStats, ServiceGraph};
use crate::span_metrics::{SeriesLabels, SeriesStats, SpanMetrics};
use crate::{MetricsError, NANOS_PER_SECOND};

/// The most points a range query may ask for per series (Prometheus' limit).
pub const MAX_POINTS_PER_SERIES: u64 = 11_000;

/// A range query over span metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeQuery {
    pub from_unix_nanos: u64,
    /// Exclusive.
    pub to_unix_nanos: u64,
    /// A positive multiple of the interval.
    pub step_nanos: u64,
    /// The latency quantile each point carries, in `[0, 1]`.
    pub quantile: f64,
}

/// One step of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct RangePoint {
    pub start_unix_nanos: u64,
    pub calls: u64,
    pub errors: u64,
    /// Calls per second over the step.
    pub rate_per_second: f64,
    /// Errors per second over the step.
    pub error_rate_per_second: f64,
    /// The asked latency quantile over the step, in seconds.
    pub latency_quantile_seconds: Option<f64>,
}

/// The points of one group of series, oldest first, steps without calls left out.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries<K> {
    pub key: K,
    pub points: Vec<RangePoint>,
}

/// The exemplars of one group of series, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeExemplars<K> {
    pub key: K,
    pub exemplars: Vec<Exemplar>,
}

/// Latency quantiles in seconds; `None` without calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyQuantiles {
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

impl LatencyQuantiles {
    fn of(histogram: &Histogram, bounds_seconds: &[f64]) -> LatencyQuantiles {
        LatencyQuantiles {
            p50_seconds: histogram.quantile(0.5, bounds_seconds),
            p90_seconds: histogram.quantile(0.9, bounds_seconds),
            p99_seconds: histogram.quantile(0.99, bounds_seconds),
        }
    }
}

/// An edge over a time range.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSummary {
    pub labels: EdgeLabels,
    pub calls: u64,
    pub failed: u64,
    pub server_latency: LatencyQuantiles,
    pub client_latency: LatencyQuantiles,
}

/// A validated range cut into steps, on interval boundaries.
struct Grid {
    from_unix_nanos: u64,
    to_unix_nanos: u64,
    step_nanos: u64,
}

impl Grid {
    fn new(query: &RangeQuery, interval_nanos: u64) -> Result<Grid, MetricsError> {
        let RangeQuery { from_unix_nanos, to_unix_nanos, step_nanos, quantile } = *query;
        if from_unix_nanos >= to_unix_nanos {
            return Err(MetricsError::EmptyRange { from_unix_nanos, to_unix_nanos });
        }
        if step_nanos == 0 || !step_nanos.is_multiple_of(interval_nanos) {
            return Err(MetricsError::InvalidStep { step_nanos, interval_nanos });
        }
        if !(0.0..=1.0).contains(&quantile) {
            return Err(MetricsError::InvalidQuantile { quantile });
        }
        let from_unix_nanos = from_unix_nanos - from_unix_nanos % interval_nanos;
        // Interval starts below `to` are exactly those below `to` rounded up to a boundary.
        let to_unix_nanos = to_unix_nanos.div_ceil(interval_nanos).saturating_mul(interval_nanos);
        let num_points = (to_unix_nanos - from_unix_nanos).div_ceil(step_nanos);
        if num_points > MAX_POINTS_PER_SERIES {
            return Err(MetricsError::TooManyPoints { num_points, max_points: MAX_POINTS_PER_SERIES });
        }
        Ok(Grid { from_unix_nanos, to_unix_nanos, step_nanos })
    }

    fn point_index(&self, interval_start_unix_nanos: u64) -> u64 {
        (interval_start_unix_nanos - self.from_unix_nanos) / self.step_nanos
    }

    fn point(&self, index: u64, stats: &SeriesStats, quantile: f64, bounds_seconds: &[f64]) -> RangePoint {
        let start_unix_nanos = self.from_unix_nanos + index * self.step_nanos;
        let covered_nanos = self.step_nanos.min(self.to_unix_nanos - start_unix_nanos);
        let covered_seconds = covered_nanos as f64 / NANOS_PER_SECOND as f64;
        RangePoint {
            start_unix_nanos,
            calls: stats.calls(),
            errors: stats.errors(),
            rate_per_second: stats.calls() as f64 / covered_seconds,
            error_rate_per_second: stats.errors() as f64 / covered_seconds,
            latency_quantile_seconds: stats.latency().quantile(quantile, bounds_seconds),
        }
    }
}

impl SpanMetrics {
    /// Per-step calls, errors, rates and a latency quantile over `query`'s range, for the
    /// series `group` maps to a key, merged per key (`group` returning `None` leaves a
    /// series out). Groups are ordered by key; groups without calls in the range are absent.
    ///
    /// `|labels| Some(labels.clone())` gives every series on its own;
    /// `|labels| (labels.service == "cart").then(|| labels.span_name.clone())` gives the
    /// operations of one service.
    pub fn query_range<K: Ord + Clone>(
        &self,
        query: &RangeQuery,
        group: impl Fn(&SeriesLabels) -> Option<K>,
    ) -> Result<Vec<RangeSeries<K>>, MetricsError> {
        let grid = Grid::new(query, self.interval_nanos())?;
        let mut keys: AHashMap<u32, Option<K>> = AHashMap::new();
        let mut groups: BTreeMap<K, BTreeMap<u64, SeriesStats>> = BTreeMap::new();
        let buckets = self.buckets();
        for (start, values) in self.intervals().range(grid.from_unix_nanos, grid.to_unix_nanos) {
            let index = grid.point_index(start);
            for (id, stats) in values {
                let Some(key) = &*keys.entry(*id).or_insert_with(|| group(self.labels_of(*id))) else { continue };
                merge_point(&mut groups, key, index, stats, buckets);
            }
        }
        if let Some(history) = self.history() {
            history.span_metrics(grid.from_unix_nanos, grid.to_unix_nanos, &mut |interval| {
                if !(grid.from_unix_nanos..grid.to_unix_nanos).contains(&interval.start_unix_nanos) {
                    return;
                }
                let index = grid.point_index(interval.start_unix_nanos);
                for (labels, stats) in &interval.entries {
                    if let Some(key) = group(labels) {
                        merge_point(&mut groups, &key, index, stats, buckets);
                    }
                }
            });
        }
        let bounds_seconds = self.latency_bounds_seconds();
        Ok(groups
            .into_iter()
            .map(|(key, points)| RangeSeries {
                key,
                points: points
                    .iter()
                    .map(|(index, stats)| grid.point(*index, stats, query.quantile, bounds_seconds))
                    .collect(),
            })
            .collect())
    }

    /// The exemplars with a timestamp in `[from, to)` of the series `group` maps to a key,
    /// per key, oldest first: at most one per series, interval and bucket.
    pub fn exemplars_in_range<K: Ord + Clone>(
        &self,
        from_unix_nanos: u64,
        to_unix_nanos: u64,
        group: impl Fn(&SeriesLabels) -> Option<K>,
    ) -> Result<Vec<RangeExemplars<K>>, MetricsError> {
        if from_unix_nanos >= to_unix_nanos {
            return Err(MetricsError::EmptyRange { from_unix_nanos, to_unix_nanos });
        }
        let first_start = from_unix_nanos - from_unix_nanos % self.interval_nanos();
        let mut groups: BTreeMap<K, Vec<Exemplar>> = BTreeMap::new();
        let add = |groups: &mut BTreeMap<K, Vec<Exemplar>>, labels: &SeriesLabels, stats: &SeriesStats| {
            let Some(key) = group(labels) else { return };
            let in_range = stats
                .latency()
                .exemplars()
                .map(|(_, exemplar)| *exemplar)
                .filter(|e| (from_unix_nanos..to_unix_nanos).contains(&e.timestamp_unix_nanos));
            groups.entry(key).or_default().extend(in_range);
        };
        for (_, values) in self.intervals().range(first_start, to_unix_nanos) {
            for (id, stats) in values {
                add(&mut groups, self.labels_of(*id), stats);
            }
        }
        if let Some(history) = self.history() {
            history.span_metrics(first_start, to_unix_nanos, &mut |interval| {
                for (labels, stats) in &interval.entries {
                    add(&mut groups, labels, stats);
                }
            });
        }
        Ok(groups
            .into_iter()
            .filter(|(_, exemplars)| !exemplars.is_empty())
            .map(|(key, mut exemplars)| {
                exemplars.sort_by_key(|e| (e.timestamp_unix_nanos, e.trace_id, e.span_id));
                RangeExemplars { key, exemplars }
            })
            .collect())
    }
}

impl ServiceGraph {
    /// Every edge with calls in the intervals starting in `[from, to)` (`from` rounded down
    /// to an interval boundary): calls, failed calls, and p50/p90/p99 of the server and
    /// client latencies, sorted by labels, the overflow edge last.
    pub fn edges_in_range(&self, from_unix_nanos: u64, to_unix_nanos: u64) -> Result<Vec<EdgeSummary>, MetricsError> {
        if from_unix_nanos >= to_unix_nanos {
            return Err(MetricsError::EmptyRange { from_unix_nanos, to_unix_nanos });
        }
        let first_start = from_unix_nanos - from_unix_nanos % self.interval_nanos();
        let mut merged: BTreeMap<EdgeLabels, EdgeStats> = BTreeMap::new();
        let buckets = self.buckets();
        let add = |merged: &mut BTreeMap<EdgeLabels, EdgeStats>, labels: &EdgeLabels, stats: &EdgeStats| match merged
            .get_mut(labels)
        {
            Some(sum) => sum.merge(stats),
            None => merged.entry(labels.clone()).or_insert_with(|| EdgeStats::new(buckets)).merge(stats),
        };
        for (_, values) in self.intervals().range(first_start, to_unix_nanos) {
            for (id, stats) in values {
                add(&mut merged, self.labels_of(*id), stats);
            }
        }
        if let Some(history) = self.history() {
            history.service_graph(first_start, to_unix_nanos, &mut |interval| {
                for (labels, stats) in &interval.entries {
                    add(&mut merged, labels, stats);
                }
            });
        }
        let bounds_seconds = self.latency_bounds_seconds();
        // A BTreeMap iterates in label order: the overflow edge last.
        let edges: Vec<EdgeSummary> = merged
            .into_iter()
            .map(|(labels, stats)| EdgeSummary {
                labels,
                calls: stats.calls(),
                failed: stats.failed(),
                server_latency: LatencyQuantiles::of(stats.server_latency(), bounds_seconds),
                client_latency: LatencyQuantiles::of(stats.client_latency(), bounds_seconds),
            })
            .collect();
        Ok(edges)
    }
}

/// Adds one interval's statistics of a series to its group's point.
fn merge_point<K: Ord + Clone>(
    groups: &mut BTreeMap<K, BTreeMap<u64, SeriesStats>>,
    key: &K,
    index: u64,
    stats: &SeriesStats,
    buckets: &crate::histogram::Buckets,
) {
    let points = match groups.get_mut(key) {
        Some(points) => points,
        None => groups.entry(key.clone()).or_default(),
    };
    points.entry(index).or_insert_with(|| SeriesStats::new(buckets)).merge(stats);
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
