//! Closed intervals outside the aggregators: what leaves the in-memory window (to be
//! persisted by the caller), and the [`History`] the range queries read back.
//!
//! The aggregators hand every interval they stop holding to their caller as a
//! [`ClosedInterval`]: its start and its entries with their labels resolved (ids are
//! private to one aggregator's series table and do not outlive it). The caller stores them
//! where it likes and gives the aggregators a [`History`] to read them back; the range
//! queries ([`crate::SpanMetrics::query_range`], [`crate::SpanMetrics::exemplars_in_range`],
//! [`crate::ServiceGraph::edges_in_range`]) then merge, for each interval of the range, what
//! the history visits with what memory holds, so a query answers the same whether an
//! interval is still held or was handed over.
//!
//! Invariants the caller keeps:
//! - an interval's observations are in memory or in the history, never in both: an
//!   interval is taken out of memory in the same step as it is handed over, and
//!   observations made in memory after a restart into an interval the history already holds
//!   are new ones (merged into it when that interval is handed over again);
//! - a history visits only intervals whose entries fit the aggregator's configuration (same
//!   interval length, latency buckets and, for span metrics, dimensions); the codec
//!   ([`crate::codec`]) checks this when decoding.
//!
//! This crate does no I/O: the history's implementation does, and is responsible for
//! bounding how much one visit reads.

use std::fmt;

use crate::service_graph::{EdgeLabels, EdgeStats};
use crate::span_metrics::{SeriesLabels, SeriesStats};

/// One interval no longer held in memory: its start and each series' (edge's) statistics in
/// it, sorted by labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedInterval<L, S> {
    pub start_unix_nanos: u64,
    pub entries: Vec<(L, S)>,
}

/// A span metrics interval out of memory.
pub type SpanMetricsInterval = ClosedInterval<SeriesLabels, SeriesStats>;
/// A service graph interval out of memory.
pub type ServiceGraphInterval = ClosedInterval<EdgeLabels, EdgeStats>;

/// Intervals kept outside memory, read by the range queries.
pub trait History: Send + Sync + fmt::Debug {
    /// Visits the span metrics intervals that start in `[from, to)`, oldest first.
    fn span_metrics(&self, from_unix_nanos: u64, to_unix_nanos: u64, visit: &mut dyn FnMut(&SpanMetricsInterval));

    /// Visits the service graph intervals that start in `[from, to)`, oldest first.
    fn service_graph(&self, from_unix_nanos: u64, to_unix_nanos: u64, visit: &mut dyn FnMut(&ServiceGraphInterval));

    /// The starts of the oldest and the newest span metrics intervals held, if any.
    fn span_metrics_bounds(&self) -> Option<(u64, u64)>;
}

impl<L: Clone + Ord, S> ClosedInterval<L, S> {
    /// The intervals an aggregator took out of its window (start and values by series id),
    /// with each id resolved to its labels and the entries sorted by them.
    pub(crate) fn resolve_all(taken: Vec<(u64, ahash::AHashMap<u32, S>)>, labels_of: impl Fn(u32) -> L) -> Vec<Self> {
        taken
            .into_iter()
            .map(|(start_unix_nanos, values)| {
                let mut entries: Vec<_> = values.into_iter().map(|(id, stats)| (labels_of(id), stats)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                ClosedInterval { start_unix_nanos, entries }
            })
            .collect()
    }
}

impl SpanMetricsInterval {
    /// Adds the observations of another interval with the same start (written before a
    /// restart) into this one; entries stay sorted by labels.
    pub fn merge(&mut self, other: SpanMetricsInterval) {
        merge_entries(&mut self.entries, other.entries, SeriesStats::merge);
    }
}

impl ServiceGraphInterval {
    /// Adds the calls of another interval with the same start into this one; entries stay
    /// sorted by labels.
    pub fn merge(&mut self, other: ServiceGraphInterval) {
        merge_entries(&mut self.entries, other.entries, EdgeStats::merge);
    }
}

fn merge_entries<L: Ord, S>(entries: &mut Vec<(L, S)>, other: Vec<(L, S)>, merge: impl Fn(&mut S, &S)) {
    for (labels, stats) in other {
        match entries.binary_search_by(|(l, _)| l.cmp(&labels)) {
            Ok(i) => merge(&mut entries[i].1, &stats),
            Err(i) => entries.insert(i, (labels, stats)),
        }
    }
}
