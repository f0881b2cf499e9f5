//! Metrics derived from the accepted spans: the span metrics and service graph aggregators of
//! `sextant-metrics`, and its consistency analyzer (stale reads, replication lag, conflicts,
//! consistency-level usage; unless `metrics.consistency.enabled` is false), fed from ingest,
//! read by `/metrics` and the query APIs.
//!
//! ```text
//! Pipeline::ingest
//!   1. prepare_owned: reserve room in the queue, copy what the aggregators read of the spans
//!      that end within the window held (the engine takes the spans themselves; a large
//!      batch is copied on the blocking pool)
//!   2. Engine::append{,_encoded}: WAL commit; the request is acknowledged after it
//!   3. submit: queue the copy, or count it as dropped when step 1 found no room
//!        │  unbounded channel; the spans waiting in it are bounded by a semaphore
//!        v
//! thread "sextant-metrics", one message at a time:
//!   Batch: SpanMetrics::observe, then ServiceGraph::observe, then ConsistencyAnalyzer::observe
//!          (each lock held for the batch);
//!          intervals that left the window are written to {data_dir}/metrics/ (history.rs;
//!          the intervals read last are kept decoded, interval_cache.rs)
//!   Tick (every second): ServiceGraph::expire, ConsistencyAnalyzer::expire (reads and applies
//!          whose wait is over are judged; its lag intervals older than its window dropped,
//!          not persisted), intervals that ended a window ago written,
//!          stale series removal, files older than storage.retention deleted
//!   Sync: ServiceGraph::expire, ConsistencyAnalyzer::expire, then reply: everything queued
//!         before it is aggregated
//!   Persist (on shutdown): every interval still in memory written
//!        │
//!        v
//! /metrics, /api/metrics/*, /api/v1/{span-metrics,service-graph,consistency/*},
//! /api/dependencies, alerting:
//!   sync, then read under the locks on the blocking pool; range queries merge the intervals
//!   in memory with those on disk (sextant_metrics::History)
//! ```
//!
//! Invariants:
//! - only acknowledged spans are counted: a batch is submitted after its WAL commit succeeded;
//! - ingest never waits for aggregation: room in the queue is reserved with `try_acquire`
//!   before the commit, and a batch that finds none is not aggregated and is counted in
//!   `sextant_metrics_dropped_batches_total` / `…_spans_total` (once it is accepted);
//! - at most `metrics.max_queued_spans` spans wait in the queue (a larger batch waits alone);
//! - a reader that called [`DerivedMetrics::sync`] sees every batch submitted before the call
//!   (read-your-writes for anything acknowledged before the query was sent);
//! - the aggregators hold no clock: the thread passes the wall clock to the service graph
//!   (pairing deadlines) and to retention, and aggregates only spans that end within the
//!   window held (10 minutes by default) or up to [`FUTURE_SLACK_NANOS`] after its clock;
//!   the others are counted in `sextant_metrics_spans_outside_window_total{side}`.
//!
//! Closed intervals are persisted and read back by the range queries, so their history
//! survives restarts for as long as traces are kept; the cumulative totals `/metrics`
//! exposes live in memory only and start from zero after a restart (docs/adr/0007).

mod history;
mod interval_cache;
mod self_metrics;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sextant_metrics::exposition::{self, Format};
use sextant_metrics::{ConsistencyAnalyzer, MetricsError, ServiceGraph, SpanMetrics};
use sextant_model::{KeyValue, Link, Span};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use sextant_metrics::consistency::span::CONSISTENCY_KEYS;

use crate::blocking::on_blocking_pool;
use crate::config::MetricsOptions;
use history::IntervalFiles;
use worker::Message;

/// Batches larger than this are copied for the aggregators on the blocking pool, so the copy
/// never holds the async runtime for long.
const COPY_INLINE_MAX_SPANS: usize = 1_024;

/// How often pending service graph halves are expired and retention runs.
pub const TICK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Span attributes the service graph reads besides the configured dimensions: the peer of
/// a client or producer span that no server or consumer span answers.
const SERVICE_GRAPH_KEYS: [&str; 4] = ["peer.service", "db.system.name", "db.system", "messaging.system"];

/// Why the derived metrics could not start.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    #[error("{0}")]
    Config(#[from] MetricsError),
    #[error("cannot start the metrics thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot open the metrics directory: {0}")]
    Files(std::io::Error),
}

/// The two aggregators, each behind its own lock.
#[derive(Debug)]
struct Aggregators {
    span_metrics: Mutex<SpanMetrics>,
    service_graph: Mutex<ServiceGraph>,
    /// `None` when `metrics.consistency.enabled` is false. In memory only.
    consistency_opt: Option<Mutex<ConsistencyAnalyzer>>,
    /// Intervals that left memory; both aggregators read them back as their history.
    files: Arc<IntervalFiles>,
    /// The longer of the two windows held (`interval_seconds × max_intervals`).
    window_nanos: u64,
    /// Spans not aggregated because they ended before the window held.
    past_spans: AtomicU64,
    /// Spans not aggregated because they end more than [`FUTURE_SLACK_NANOS`] after the
    /// server's clock.
    future_spans: AtomicU64,
}

/// How far in the future a span may end and still be aggregated. Each interval a span opens
/// takes one of the `max_intervals` slots; spans from a client whose clock runs ahead (ingest
/// accepts up to `limits.max_clock_skew`) would otherwise push the current intervals out of
/// the window. Spans that ended before the window are left out too: they would only make
/// series that retention removes a second later. Tempo's metrics-generator bounds span end
/// times the same way (its ingestion time range slack).
pub const FUTURE_SLACK_NANOS: u64 = 60 * 1_000_000_000;

/// Counters of batches that were accepted but not aggregated.
#[derive(Clone, Debug, Default)]
struct DropCounters {
    batches: Counter,
    spans: Counter,
}

/// The handle ingest and the APIs share.
#[derive(Debug)]
pub struct DerivedMetrics {
    aggregators: Arc<Aggregators>,
    queue: mpsc::UnboundedSender<Message>,
    queue_room: Arc<Semaphore>,
    max_queued_spans: usize,
    /// Span attribute keys the aggregators read; the copies keep only these.
    kept_keys: KeptKeys,
    dropped: DropCounters,
}

/// The attribute keys the aggregators read, sorted, with the lengths they come in: most of
/// a span's keys are told apart from all of them by their length alone, and the others by a
/// binary search, where a scan compared each of a span's keys with each of some twenty.
#[derive(Debug)]
struct KeptKeys {
    keys: Vec<String>,
    /// Bit `n` set when a key is `n` bytes long (bit 63: 63 bytes or longer).
    lengths: u64,
}

impl KeptKeys {
    fn new(mut keys: Vec<String>) -> KeptKeys {
        keys.sort_unstable();
        keys.dedup();
        let lengths = keys.iter().fold(0, |bits, key| bits | Self::length_bit(key));
        KeptKeys { keys, lengths }
    }

    fn length_bit(key: &str) -> u64 {
        1 << key.len().min(63)
    }

    fn contains(&self, key: &str) -> bool {
        self.lengths & Self::length_bit(key) != 0 && self.keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }
}

/// A batch ready to be submitted once its spans are committed: the spans as the aggregators
/// need them and its room in the queue (`None` when the queue was full).
#[derive(Debug)]
pub struct PreparedBatch {
    spans: Vec<Span>,
    permit_opt: Option<OwnedSemaphorePermit>,
    /// Spans left out of the copy because they ended before the window held: the thread
    /// would leave them out too (its clock only moves on), so they are only counted.
    num_past: u64,
}

impl DerivedMetrics {
    /// Builds the aggregators over the intervals persisted under `{data_dir}/metrics/`
    /// (kept for `retention`, as traces are), registers the self-metrics and starts the
    /// aggregating thread, which runs until every handle is dropped.
    pub fn start(
        options: &MetricsOptions,
        data_dir: &Path,
        retention: std::time::Duration,
        registry: &mut Registry,
    ) -> Result<Arc<DerivedMetrics>, DerivedError> {
        let files = Arc::new(
            IntervalFiles::open(data_dir, &options.span_metrics, &options.service_graph, retention)
                .map_err(DerivedError::Files)?,
        );
        let mut span_metrics = SpanMetrics::new(options.span_metrics.clone())?;
        span_metrics.set_history(files.clone());
        let mut service_graph = ServiceGraph::new(options.service_graph.clone())?;
        service_graph.set_history(files.clone());
        let consistency_opt = match &options.consistency_opt {
            Some(config) => Some(Mutex::new(ConsistencyAnalyzer::new(config.clone())?)),
            None => None,
        };
        let consistency_window_nanos = options.consistency_opt.as_ref().map_or(0, |c| c.window_nanos());
        let aggregators = Arc::new(Aggregators {
            span_metrics: Mutex::new(span_metrics),
            service_graph: Mutex::new(service_graph),
            consistency_opt,
            files,
            window_nanos: options
                .span_metrics
                .window_nanos()
                .max(options.service_graph.window_nanos())
                .max(consistency_window_nanos),
            past_spans: AtomicU64::new(0),
            future_spans: AtomicU64::new(0),
        });
        let (queue, receiver) = mpsc::unbounded_channel();
        let max_queued_spans = options.max_queued_spans.clamp(1, Semaphore::MAX_PERMITS);
        let mut kept_keys: Vec<String> = options.span_metrics.dimensions.clone();
        kept_keys.extend(SERVICE_GRAPH_KEYS.iter().map(|k| k.to_string()));
        if options.consistency_opt.is_some() {
            kept_keys.extend(CONSISTENCY_KEYS.iter().map(|k| k.to_string()));
        }
        let kept_keys = KeptKeys::new(kept_keys);
        let derived = Arc::new(DerivedMetrics {
            aggregators: aggregators.clone(),
            queue,
            queue_room: Arc::new(Semaphore::new(max_queued_spans)),
            max_queued_spans,
            kept_keys,
            dropped: DropCounters::default(),
        });
        worker::spawn(aggregators, receiver).map_err(DerivedError::Thread)?;
        derived.register(registry);
        Ok(derived)
    }

    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sextant");
        r.register(
            "metrics_dropped_batches",
            "Accepted batches not aggregated into span metrics and the service graph because the queue was full",
            self.dropped.batches.clone(),
        );
        r.register("metrics_dropped_spans", "Spans of those batches", self.dropped.spans.clone());
        registry.register_collector(Box::new(self_metrics::AggregatorMetrics::new(self.aggregators.clone())));
    }

    /// Reserves queue room for `spans` and copies what the aggregators read of them. Never
    /// waits. Call before committing; pass the result to [`DerivedMetrics::submit`] once
    /// the commit succeeded.
    pub fn prepare(&self, spans: &[Span]) -> PreparedBatch {
        let earliest_end_unix_nanos = sextant_model::now_unix_nanos().saturating_sub(self.aggregators.window_nanos);
        let in_window = |span: &&Span| span.end_unix_nanos >= earliest_end_unix_nanos;
        let num_in_window = spans.iter().filter(in_window).count();
        let num_past = (spans.len() - num_in_window) as u64;
        let units = num_in_window.clamp(1, self.max_queued_spans) as u32;
        match self.queue_room.clone().try_acquire_many_owned(units) {
            Ok(permit) => PreparedBatch {
                spans: spans.iter().filter(in_window).map(|s| self.copy(s)).collect(),
                permit_opt: Some(permit),
                num_past,
            },
            Err(_) => PreparedBatch { spans: Vec::new(), permit_opt: None, num_past },
        }
    }

    /// [`DerivedMetrics::prepare`] for spans the caller owns: a large batch is copied on the
    /// blocking pool, so the async runtime is never held for long. Hands the spans back.
    pub async fn prepare_owned(self: &Arc<Self>, spans: Vec<Span>) -> (Vec<Span>, PreparedBatch) {
        if spans.len() <= COPY_INLINE_MAX_SPANS {
            let batch = self.prepare(&spans);
            return (spans, batch);
        }
        let derived = self.clone();
        on_blocking_pool("copying spans for the metrics aggregators", move || {
            let batch = derived.prepare(&spans);
            (spans, batch)
        })
        .await
    }

    /// Queues a committed batch for aggregation, or counts it as dropped.
    pub fn submit(&self, batch: PreparedBatch, num_spans: usize) {
        if num_spans == 0 {
            return;
        }
        let Some(permit) = batch.permit_opt else {
            self.count_dropped(num_spans);
            return;
        };
        if batch.num_past > 0 {
            self.aggregators.past_spans.fetch_add(batch.num_past, std::sync::atomic::Ordering::Relaxed);
        }
        if self.queue.send(Message::Batch { spans: batch.spans, _permit: permit }).is_err() {
            self.count_dropped(num_spans);
        }
    }

    fn count_dropped(&self, num_spans: usize) {
        self.dropped.batches.inc();
        self.dropped.spans.inc_by(num_spans as u64);
    }

    /// The span as the aggregators read it: identity, name, kind, times, status, the shared
    /// resource and scope, link identities, and only the attributes of `kept_keys` (in their
    /// order, so the last of a repeated key still wins).
    fn copy(&self, span: &Span) -> Span {
        let attributes: Vec<KeyValue> =
            span.attributes.iter().filter(|kv| self.kept_keys.contains(&kv.key)).cloned().collect();
        Span {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            trace_state: String::new(),
            flags: span.flags,
            name: span.name.clone(),
            kind: span.kind,
            start_unix_nanos: span.start_unix_nanos,
            end_unix_nanos: span.end_unix_nanos,
            attributes,
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: span
                .links
                .iter()
                .map(|link| Link {
                    trace_id: link.trace_id,
                    span_id: link.span_id,
                    trace_state: String::new(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    flags: link.flags,
                })
                .collect(),
            dropped_links_count: 0,
            status_code: span.status_code,
            status_message: String::new(),
            resource: span.resource.clone(),
            scope: span.scope.clone(),
        }
    }

    /// Asks the thread to expire waiting service graph halves and apply retention.
    pub fn tick(&self) {
        let _ = self.queue.send(Message::Tick);
    }

    /// Writes every interval still in memory to disk, after every batch submitted before
    /// the call (on shutdown: the next start reads them back).
    pub async fn persist_all(&self) {
        let (reply, done) = oneshot::channel();
        if self.queue.send(Message::Persist(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// Returns once every batch submitted before the call is aggregated and the service
    /// graph halves due by now are expired.
    pub async fn sync(&self) {
        let (reply, done) = oneshot::channel();
        if self.queue.send(Message::Sync(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// Appends the span metrics and service graph families to an exposition. Locks both
    /// aggregators: call it on the blocking pool, after [`DerivedMetrics::sync`], and not
    /// while holding either lock.
    pub fn write_families(&self, out: &mut String, format: Format) {
        let span_metrics = self.aggregators.span_metrics.lock();
        let service_graph = self.aggregators.service_graph.lock();
        exposition::write_families(out, format, Some(&span_metrics), Some(&service_graph));
        drop((span_metrics, service_graph));
        if let Some(consistency) = &self.aggregators.consistency_opt {
            exposition::write_consistency(out, format, &consistency.lock());
        }
    }

    /// Whether the consistency analyzer runs (`metrics.consistency.enabled`).
    pub fn consistency_enabled(&self) -> bool {
        self.aggregators.consistency_opt.is_some()
    }

    /// Runs `read` on the consistency analyzer after [`DerivedMetrics::sync`], on the
    /// blocking pool; `None` when it is disabled.
    pub async fn read_consistency<R, F>(&self, read: F) -> Option<R>
    where
        F: FnOnce(&ConsistencyAnalyzer) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.aggregators.consistency_opt.as_ref()?;
        self.sync().await;
        let aggregators = self.aggregators.clone();
        on_blocking_pool("reading the consistency analyzer", move || {
            aggregators.consistency_opt.as_ref().map(|consistency| read(&consistency.lock()))
        })
        .await
    }

    /// Runs `read` on both aggregators after [`DerivedMetrics::sync`], on the blocking pool
    /// (a large exposition or query takes milliseconds).
    pub async fn read<R, F>(&self, read: F) -> R
    where
        F: FnOnce(&SpanMetrics, &ServiceGraph) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.sync().await;
        let aggregators = self.aggregators.clone();
        on_blocking_pool("reading the metrics aggregators", move || {
            let span_metrics = aggregators.span_metrics.lock();
            let service_graph = aggregators.service_graph.lock();
            read(&span_metrics, &service_graph)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
