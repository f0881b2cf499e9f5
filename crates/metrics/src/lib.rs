//! Metrics derived from spans: RED metrics per service and operation (span metrics) and the
//! map of who calls whom (service graph), as Tempo's metrics-generator and Jaeger's SPM
//! derive them.
//!
//! This crate is the pure core: aggregators fed with span batches, queries over what they
//! hold (and over the closed intervals a caller-supplied [`History`] reads back), the
//! encoding of closed intervals for storage, and the OpenMetrics / Prometheus text
//! exposition of their cumulative totals. It does no I/O, keeps no clock of its own (time comes from span timestamps and, for the
//! service graph's pairing deadlines, from the caller) and has no async runtime, so every
//! result is deterministic and tested without a server.
//!
//! ```text
//!   &[Span] ──observe──> SpanMetrics ──┬── series(), query_range(), exemplars_in_range()
//!                        ServiceGraph ─┤── edges(), edges_in_range()
//!                                      └── exposition::render() (OpenMetrics / Prometheus text)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`SpanMetricsConfig`], [`ServiceGraphConfig`], their defaults and validation |
//! | `histogram` | bucket bounds, [`Histogram`] (counts, sum, exemplars), quantiles |
//! | `series` | the bounded table of series (labels → id, cumulative totals, overflow) |
//! | `intervals` | the bounded window of per-interval aggregates |
//! | `span_metrics` | [`SpanMetrics`]: RED metrics per series |
//! | `service_graph`, `pending` | [`ServiceGraph`]: edges from paired spans, the store of unpaired halves |
//! | `query` | range queries over both aggregators, merging memory and [`History`] |
//! | `history` | [`ClosedInterval`]s handed out of memory, the [`History`] that reads them back |
//! | `codec` | the persisted form of a closed interval (docs/formats/metrics.md) |
//! | `exposition` | OpenMetrics and Prometheus text rendering |
//! | `consistency` | [`ConsistencyAnalyzer`]: stale reads, replication lag, conflicts, consistency-level usage (in memory only) |
//!
//! Invariants shared by both aggregators:
//! - memory is bounded by configuration: at most `max_series` (`max_edges`) series plus one
//!   overflow series, at most `max_intervals` intervals, at most one exemplar per bucket, and
//!   (service graph) at most `max_pending_spans` unpaired halves;
//! - nothing observed is silently lost: what exceeds a bound is counted (overflow series and
//!   counters, late spans, evicted and dropped halves);
//! - an interval is identified by its start, a multiple of `interval_seconds` in unix
//!   nanoseconds, and holds the spans (edges) whose end time falls in it.
//!
//! The aggregators are plain values (`Send + Sync`); callers share them behind a lock or
//! give them one owning task.

pub mod codec;
mod config;
pub mod consistency;
pub mod exposition;
mod histogram;
mod history;
mod intervals;
mod pending;
mod query;
mod series;
mod service_graph;
mod span_metrics;

pub use config::{
    DEFAULT_INTERVAL_SECONDS, DEFAULT_LATENCY_BUCKETS_SECONDS, DEFAULT_MAX_EDGES, DEFAULT_MAX_INTERVALS,
    DEFAULT_MAX_PENDING_SPANS, DEFAULT_MAX_SERIES, DEFAULT_ROOT_CLIENT_NODE, DEFAULT_WAIT_SECONDS, ServiceGraphConfig,
    SpanMetricsConfig,
};
pub use consistency::{ConsistencyAnalyzer, ConsistencyConfig};
pub use histogram::{Exemplar, Histogram};
pub use history::{ClosedInterval, History, ServiceGraphInterval, SpanMetricsInterval};
pub use query::{
    EdgeSummary, LatencyQuantiles, MAX_POINTS_PER_SERIES, RangeExemplars, RangePoint, RangeQuery, RangeSeries,
};
pub use service_graph::{ConnectionType, EdgeLabels, EdgeStats, ServiceGraph, ServiceGraphCounters};
pub use span_metrics::{SeriesLabels, SeriesStats, SpanMetrics};

/// Nanoseconds in a second.
pub(crate) const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Why a configuration or a query was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("config key {key}: {message}")]
    InvalidConfig { key: &'static str, message: String },
    #[error("time range is empty: from {from_unix_nanos} is not before to {to_unix_nanos}")]
    EmptyRange { from_unix_nanos: u64, to_unix_nanos: u64 },
    #[error("step of {step_nanos} ns is not a positive multiple of the {interval_nanos} ns interval")]
    InvalidStep { step_nanos: u64, interval_nanos: u64 },
    #[error("the query asks for {num_points} points per series, more than the {max_points} allowed")]
    TooManyPoints { num_points: u64, max_points: u64 },
    #[error("quantile {quantile} is not between 0 and 1")]
    InvalidQuantile { quantile: f64 },
}

#[cfg(test)]
pub(crate) mod testing;
