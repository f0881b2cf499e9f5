//! The service graph: edges (client service, server service, connection type) with calls,
//! failed calls and client and server latency histograms, per interval and as cumulative
//! totals, built from pairs of spans.
//!
//! Pairs:
//! - a CLIENT span and the SERVER span whose parent it is (same trace): connection type
//!   `""` (a direct request);
//! - a PRODUCER span and a CONSUMER span that is its child (same trace) or links to it (any
//!   trace): `messaging_system`; a consumer that links to several producers (a batch) makes
//!   one call per producer.
//!
//! The halves of a pair may arrive in any order and in different batches: a half that finds
//! no partner waits in the `PendingStore` for `wait_seconds` on the clock the caller
//! passes. When it expires, an upstream (client or producer) half whose span names a peer
//! becomes a call to a virtual node: `peer.service` → `virtual_node`, else `db.system.name`
//! (or `db.system`) → `database`, else `messaging.system` → `messaging_system`; any other
//! expired half is dropped and counted. A server or consumer span with neither parent nor
//! link is a call from the `root_client_node` (`user`, connection type `virtual_node`), as
//! Tempo draws requests from outside the traced system.
//!
//! Invariants:
//! - every pair, virtual call and root call is counted once in the totals of one edge (its
//!   own or the overflow edge) and, unless its interval is older than the full window, once
//!   in the interval holding its end time: the later end of the two spans of a pair, else
//!   the end of the one span there is;
//! - every call records a client and a server latency (so `calls` equals both histogram
//!   counts); on a virtual node's side, the measured span's duration stands in;
//! - a call failed if either of its spans has status `Error`.

use std::sync::Arc;

use sextant_model::{AnyValue, Span, SpanKind, find_attribute};

use crate::MetricsError;
use crate::config::ServiceGraphConfig;
use crate::histogram::{Buckets, Exemplar, Histogram};
use crate::history::{ClosedInterval, History, ServiceGraphInterval};
use crate::intervals::IntervalStore;
use crate::pending::{Half, HalfView, PairKey, PendingStore, Side};
use crate::series::{SeriesKey, SeriesTable};

/// How the client reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ConnectionType {
    /// A client span and its server span.
    Direct,
    /// A producer span and its consumer span, or a producer calling a messaging system.
    MessagingSystem,
    /// A client span calling a database that sent no spans.
    Database,
    /// A call to or from something that sent no spans (`peer.service`, the root client).
    VirtualNode,
}

impl ConnectionType {
    /// The `connection_type` label value, as Tempo writes it.
    pub fn label_value(self) -> &'static str {
        match self {
            ConnectionType::Direct => "",
            ConnectionType::MessagingSystem => "messaging_system",
            ConnectionType::Database => "database",
            ConnectionType::VirtualNode => "virtual_node",
        }
    }
}

/// The labels of an edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EdgeLabels {
    pub client: String,
    pub server: String,
    pub connection_type: ConnectionType,
    /// The edge of calls beyond `max_edges`; its other fields are empty.
    pub overflow: bool,
}

impl SeriesKey for EdgeLabels {
    fn overflow() -> Self {
        EdgeLabels {
            client: String::new(),
            server: String::new(),
            connection_type: ConnectionType::Direct,
            overflow: true,
        }
    }
}

/// Edges are ordered by client, server and connection type, the overflow edge last: the
/// order they are listed and rendered in.
impl Ord for EdgeLabels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for EdgeLabels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl EdgeLabels {
    fn sort_key(&self) -> (bool, &str, &str, ConnectionType) {
        (self.overflow, &self.client, &self.server, self.connection_type)
    }
}

/// Calls, failures and latencies of one edge over some time.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeStats {
    calls: u64,
    failed: u64,
    client_latency: Histogram,
    server_latency: Histogram,
}

/// One side's measurement of a call: bucket, duration and exemplar.
#[derive(Clone, Copy)]
struct Measure {
    bucket: usize,
    exemplar: Exemplar,
}

impl EdgeStats {
    pub(crate) fn new(buckets: &Buckets) -> EdgeStats {
        EdgeStats {
            calls: 0,
            failed: 0,
            client_latency: buckets.empty_histogram(),
            server_latency: buckets.empty_histogram(),
        }
    }

    /// Statistics read back from storage (the codec checks the counts agree).
    pub(crate) fn from_parts(failed: u64, client_latency: Histogram, server_latency: Histogram) -> EdgeStats {
        EdgeStats { calls: client_latency.count(), failed, client_latency, server_latency }
    }

    fn record(&mut self, failed: bool, client: Measure, server: Measure) {
        self.calls += 1;
        self.failed += u64::from(failed);
        self.client_latency.record(client.bucket, client.exemplar.duration_nanos, Some(client.exemplar));
        self.server_latency.record(server.bucket, server.exemplar.duration_nanos, Some(server.exemplar));
    }

    pub(crate) fn merge(&mut self, other: &EdgeStats) {
        self.calls += other.calls;
        self.failed += other.failed;
        self.client_latency.merge(&other.client_latency);
        self.server_latency.merge(&other.server_latency);
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Calls where either span has status `Error`.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Durations of the client (producer) spans.
    pub fn client_latency(&self) -> &Histogram {
        &self.client_latency
    }

    /// Durations of the server (consumer) spans.
    pub fn server_latency(&self) -> &Histogram {
        &self.server_latency
    }
}

/// What happened to the spans the service graph saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceGraphCounters {
    /// Pairs of spans counted as calls.
    pub paired: u64,
    /// Upstream halves that expired and became calls to a virtual node.
    pub virtual_node_calls: u64,
    /// Server and consumer spans without parent or link counted as calls from the root client.
    pub root_calls: u64,
    /// Halves that expired without a partner or a virtual node: dropped.
    pub expired_unpaired: u64,
    /// Halves expired before their deadline to make room under `max_pending_spans` (each
    /// is also in `virtual_node_calls` or `expired_unpaired`).
    pub evicted: u64,
    /// Halves replaced while waiting by another of the same side and key (a retried span,
    /// or a second server span for one client span): dropped.
    pub replaced: u64,
    /// Calls counted in the overflow edge because `max_edges` edges existed.
    pub overflowed_calls: u64,
    /// Calls counted in the totals but in no interval, their interval being older than
    /// every kept one.
    pub late_calls: u64,
}

/// One call to count on an edge.
struct Call<'a> {
    client: &'a str,
    server: &'a str,
    connection_type: ConnectionType,
    end_unix_nanos: u64,
    failed: bool,
    client_measure: Measure,
    server_measure: Measure,
}

/// The edges and their statistics: what calls are counted in.
#[derive(Debug)]
struct Aggregates {
    buckets: Buckets,
    edges: SeriesTable<EdgeLabels, EdgeStats>,
    intervals: IntervalStore<EdgeStats>,
}

impl Aggregates {
    fn measure(&self, half: HalfView<'_>) -> Measure {
        Measure {
            bucket: self.buckets.index(half.duration_nanos),
            exemplar: Exemplar {
                trace_id: half.trace_id,
                span_id: half.span_id,
                duration_nanos: half.duration_nanos,
                timestamp_unix_nanos: half.end_unix_nanos,
            },
        }
    }

    fn record(&mut self, call: Call<'_>) {
        let Call { client, server, connection_type, .. } = call;
        let hash = self.edges.hash((client, server, connection_type as u8));
        let buckets = &self.buckets;
        let id = self.edges.resolve(
            hash,
            |labels| {
                !labels.overflow
                    && labels.client == client
                    && labels.server == server
                    && labels.connection_type == connection_type
            },
            || EdgeLabels { client: client.to_string(), server: server.to_string(), connection_type, overflow: false },
            || EdgeStats::new(buckets),
        );
        let slot = self.edges.slot_mut(id);
        slot.totals.record(call.failed, call.client_measure, call.server_measure);
        slot.last_end_unix_nanos = slot.last_end_unix_nanos.max(call.end_unix_nanos);
        if let Some(stats) = self.intervals.value_mut(call.end_unix_nanos, id, || EdgeStats::new(buckets)) {
            stats.record(call.failed, call.client_measure, call.server_measure);
        }
    }
}

/// The service graph aggregator. See the module documentation for how pairs are made.
#[derive(Debug)]
pub struct ServiceGraph {
    config: ServiceGraphConfig,
    aggregates: Aggregates,
    pending: PendingStore,
    /// The counters changed here; the overflow and late counts come from `aggregates`.
    counters: ServiceGraphCounters,
    /// The intervals handed over by [`ServiceGraph::take_intervals_before`], read back by
    /// [`ServiceGraph::edges_in_range`].
    history_opt: Option<Arc<dyn History>>,
}

impl ServiceGraph {
    pub fn new(config: ServiceGraphConfig) -> Result<ServiceGraph, MetricsError> {
        config.validate()?;
        Ok(ServiceGraph {
            aggregates: Aggregates {
                buckets: Buckets::new(&config.latency_buckets_seconds),
                edges: SeriesTable::new(config.max_edges),
                intervals: IntervalStore::new(config.interval_nanos(), config.max_intervals),
            },
            pending: PendingStore::new(config.max_pending_spans),
            counters: ServiceGraphCounters::default(),
            history_opt: None,
            config,
        })
    }

    /// Pairs a batch of spans with each other and with the waiting halves, after expiring
    /// the halves whose deadline is at or before `now_unix_nanos`. Halves left unpaired
    /// wait until `now_unix_nanos + wait_seconds`.
    pub fn observe(&mut self, spans: &[Span], now_unix_nanos: u64) {
        self.expire(now_unix_nanos);
        let deadline_unix_nanos = now_unix_nanos.saturating_add(self.config.wait_nanos());
        for span in spans {
            match span.kind {
                SpanKind::Client | SpanKind::Producer => {
                    let wanted = if span.kind == SpanKind::Client { SpanKind::Server } else { SpanKind::Consumer };
                    let key = PairKey { trace_id: span.trace_id, span_id: span.span_id };
                    let upstream = HalfView::of(span);
                    match self.pending.take(Side::Downstream, key, |half| half.kind == wanted) {
                        Some(downstream) => self.record_pair(upstream, downstream.view()),
                        None => {
                            let half = Half::owned(upstream, virtual_node(span));
                            self.wait(Side::Upstream, key, half, deadline_unix_nanos);
                        }
                    }
                }
                SpanKind::Server | SpanKind::Consumer => {
                    let links = if span.kind == SpanKind::Consumer { &span.links[..] } else { &[] };
                    let parent_key_opt =
                        span.parent_span_id.map(|span_id| PairKey { trace_id: span.trace_id, span_id });
                    if parent_key_opt.is_none() && links.is_empty() {
                        self.record_root(HalfView::of(span));
                        continue;
                    }
                    if let Some(key) = parent_key_opt {
                        self.pair_downstream(span, key, deadline_unix_nanos);
                    }
                    for (i, link) in links.iter().enumerate() {
                        let key = PairKey { trace_id: link.trace_id, span_id: link.span_id };
                        let seen = Some(key) == parent_key_opt
                            || links[..i].iter().any(|l| l.trace_id == key.trace_id && l.span_id == key.span_id);
                        if !seen {
                            self.pair_downstream(span, key, deadline_unix_nanos);
                        }
                    }
                }
                SpanKind::Internal | SpanKind::Unspecified => {}
            }
        }
    }

    /// Expires the halves whose deadline is at or before `now_unix_nanos`: upstream halves
    /// naming a peer become virtual node calls, the others are dropped and counted.
    pub fn expire(&mut self, now_unix_nanos: u64) {
        while let Some((side, half)) = self.pending.pop_expired(now_unix_nanos) {
            self.unpaired(side, half);
        }
    }

    fn pair_downstream(&mut self, span: &Span, key: PairKey, deadline_unix_nanos: u64) {
        let wanted = if span.kind == SpanKind::Server { SpanKind::Client } else { SpanKind::Producer };
        let downstream = HalfView::of(span);
        match self.pending.take(Side::Upstream, key, |half| half.kind == wanted) {
            Some(upstream) => self.record_pair(upstream.view(), downstream),
            None => self.wait(Side::Downstream, key, Half::owned(downstream, None), deadline_unix_nanos),
        }
    }

    fn wait(&mut self, side: Side, key: PairKey, half: Half, deadline_unix_nanos: u64) {
        let displaced = self.pending.insert(side, key, half, deadline_unix_nanos);
        if displaced.replaced_opt.is_some() {
            self.counters.replaced += 1;
        }
        if let Some((side, evicted)) = displaced.evicted_opt {
            self.counters.evicted += 1;
            self.unpaired(side, evicted);
        }
    }

    fn unpaired(&mut self, side: Side, half: Half) {
        match (side, &half.virtual_node_opt) {
            (Side::Upstream, Some((node, connection_type))) => {
                self.counters.virtual_node_calls += 1;
                let measure = self.aggregates.measure(half.view());
                self.aggregates.record(Call {
                    client: &half.service,
                    server: node,
                    connection_type: *connection_type,
                    end_unix_nanos: half.end_unix_nanos,
                    failed: half.is_error,
                    client_measure: measure,
                    server_measure: measure,
                });
            }
            _ => self.counters.expired_unpaired += 1,
        }
    }

    fn record_pair(&mut self, upstream: HalfView<'_>, downstream: HalfView<'_>) {
        self.counters.paired += 1;
        let connection_type =
            if upstream.kind == SpanKind::Producer { ConnectionType::MessagingSystem } else { ConnectionType::Direct };
        self.aggregates.record(Call {
            client: upstream.service,
            server: downstream.service,
            connection_type,
            end_unix_nanos: upstream.end_unix_nanos.max(downstream.end_unix_nanos),
            failed: upstream.is_error || downstream.is_error,
            client_measure: self.aggregates.measure(upstream),
            server_measure: self.aggregates.measure(downstream),
        });
    }

    fn record_root(&mut self, downstream: HalfView<'_>) {
        if self.config.root_client_node.is_empty() {
            return;
        }
        self.counters.root_calls += 1;
        let measure = self.aggregates.measure(downstream);
        self.aggregates.record(Call {
            client: &self.config.root_client_node,
            server: downstream.service,
            connection_type: ConnectionType::VirtualNode,
            end_unix_nanos: downstream.end_unix_nanos,
            failed: downstream.is_error,
            client_measure: measure,
            server_measure: measure,
        });
    }

    pub fn config(&self) -> &ServiceGraphConfig {
        &self.config
    }

    pub fn interval_nanos(&self) -> u64 {
        self.aggregates.intervals.interval_nanos()
    }

    /// The finite latency bucket bounds in seconds (`+Inf` implied).
    pub fn latency_bounds_seconds(&self) -> &[f64] {
        self.aggregates.buckets.bounds_seconds()
    }

    /// Every edge with its cumulative totals, sorted by labels, the overflow edge last.
    pub fn edges(&self) -> Vec<(&EdgeLabels, &EdgeStats)> {
        let mut edges: Vec<_> = self.aggregates.edges.iter().map(|(_, slot)| (&slot.key, &slot.totals)).collect();
        edges.sort_by(|a, b| a.0.cmp(b.0));
        edges
    }

    /// Edges, the overflow edge excluded.
    pub fn num_edges(&self) -> usize {
        self.aggregates.edges.len()
    }

    /// Halves waiting for their partner.
    pub fn pending_spans(&self) -> usize {
        self.pending.len()
    }

    pub fn counters(&self) -> ServiceGraphCounters {
        ServiceGraphCounters {
            overflowed_calls: self.aggregates.edges.overflowed(),
            late_calls: self.aggregates.intervals.late_observations(),
            ..self.counters
        }
    }

    /// The start of every kept interval, oldest first.
    pub fn interval_starts(&self) -> Vec<u64> {
        self.aggregates.intervals.starts().collect()
    }

    /// The edges of one interval with their statistics in it, sorted like
    /// [`ServiceGraph::edges`]; empty if the interval is not kept.
    pub fn interval_edges(&self, start_unix_nanos: u64) -> Vec<(&EdgeLabels, &EdgeStats)> {
        let mut edges: Vec<_> = self
            .aggregates
            .intervals
            .range(start_unix_nanos, start_unix_nanos.saturating_add(1))
            .flat_map(|(_, values)| values.iter().map(|(id, stats)| (&self.aggregates.edges.slot(*id).key, stats)))
            .collect();
        edges.sort_by(|a, b| a.0.cmp(b.0));
        edges
    }

    /// Takes out the intervals that end at or before `cutoff_unix_nanos` (retention) and
    /// those a newer interval pushed out of the full window, oldest first, with their
    /// labels, for the caller to persist; the cumulative totals are kept.
    pub fn take_intervals_before(&mut self, cutoff_unix_nanos: u64) -> Vec<ServiceGraphInterval> {
        let taken = self.aggregates.intervals.take_before(cutoff_unix_nanos);
        self.closed(taken)
    }

    /// Takes out every interval (on shutdown), oldest first.
    pub fn take_all_intervals(&mut self) -> Vec<ServiceGraphInterval> {
        let taken = self.aggregates.intervals.take_all();
        self.closed(taken)
    }

    fn closed(&self, taken: Vec<(u64, ahash::AHashMap<u32, EdgeStats>)>) -> Vec<ServiceGraphInterval> {
        ClosedInterval::resolve_all(taken, |id| self.labels_of(id).clone())
    }

    /// Makes [`ServiceGraph::edges_in_range`] also read the intervals `history` holds.
    pub fn set_history(&mut self, history: Arc<dyn History>) {
        self.history_opt = Some(history);
    }

    pub(crate) fn history(&self) -> Option<&dyn History> {
        self.history_opt.as_deref()
    }

    /// Removes the edges whose last call ended before `cutoff_unix_nanos` and that no kept
    /// interval holds, making room under `max_edges`. Returns how many went.
    pub fn remove_stale_edges(&mut self, cutoff_unix_nanos: u64) -> usize {
        let Aggregates { edges, intervals, .. } = &mut self.aggregates;
        edges.remove_where(|id, slot| slot.last_end_unix_nanos < cutoff_unix_nanos && !intervals.holds(id))
    }

    pub(crate) fn intervals(&self) -> &IntervalStore<EdgeStats> {
        &self.aggregates.intervals
    }

    pub(crate) fn labels_of(&self, id: u32) -> &EdgeLabels {
        &self.aggregates.edges.slot(id).key
    }

    pub(crate) fn buckets(&self) -> &Buckets {
        &self.aggregates.buckets
    }
}

/// The node an upstream span calls when no downstream span answers: its `peer.service`,
/// else its database system, else its messaging system.
fn virtual_node(span: &Span) -> Option<(String, ConnectionType)> {
    const PEERS: [(&str, ConnectionType); 4] = [
        ("peer.service", ConnectionType::VirtualNode),
        ("db.system.name", ConnectionType::Database),
        ("db.system", ConnectionType::Database),
        ("messaging.system", ConnectionType::MessagingSystem),
    ];
    PEERS.iter().find_map(|(key, connection_type)| {
        let name = match find_attribute(&span.attributes, key)? {
            AnyValue::String(name) => name.to_string(),
            other => other.to_string(),
        };
        (!name.is_empty()).then_some((name, *connection_type))
    })
}

#[cfg(test)]
#[path = "service_graph_tests.rs"]
mod tests;
