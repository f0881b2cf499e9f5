//! Encodes spans in block order into `data.parquet` bytes, and gathers the trace-ID index,
//! the attribute index of the indexed keys (see `attrs`) and the block's metadata on the way.
//! Flushes and compaction both write through [`BlockWriter`], so every block written with
//! indexed keys has its `attrs.bin`.
//!
//! [`BlockWriter`] is synchronous and CPU-bound: callers run it on the blocking pool. It
//! writes to any `Write` sink; the compactor passes a `Vec<u8>` that it drains after every
//! call (see [`BlockWriter::sink_mut`]), so a large block streams out in row-group-sized
//! pieces instead of accumulating in memory.
//!
//! Block order: rows are grouped in **clusters**, named by a service and sorted by name; within
//! a cluster, rows are sorted by (`trace_id`, `start_unix_nanos`, `span_id`, `kind`). A block
//! flushed from the head puts each trace in the cluster of its earliest span's service (its
//! root, usually), so a trace's rows are contiguous and a search for a service reads only the
//! clusters whose traces have spans of that service (the footer lists, per cluster, its rows
//! and the services in it: see [`Cluster`]). Compaction (see `merge`) moves the parts of a
//! trace that were flushed apart into the cluster of its earliest part, up to a bound; a trace
//! left with parts in several clusters has one run of rows in each, and the trace-ID index
//! lists every run.
//!
//! Invariant checked on every row: clusters arrive in increasing name order and, within one,
//! spans in strictly increasing (`trace_id`, `start_unix_nanos`, `span_id`, `kind`) order.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::ops::Range;

use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sextant_model::{Span, SpanId, SpanKind, TraceId};

use super::attrs::{AttrIndex, AttrIndexBuilder};
use super::clusters::Cluster;
use super::encode::{ServiceNames, encode_batch};
use super::index::{BlockIndex, IndexBuilder};
use super::schema::*;
use super::{BlockError, BlockMeta};

/// Rows encoded into one Arrow batch (bounds the batch's memory and its 32-bit offsets).
const ENCODE_BATCH_ROWS: usize = 8_192;
/// Distinct (service, span name) pairs recorded in the footer; more are left out.
const MAX_OPERATIONS: usize = 10_000;

/// The sort key of a span within a cluster. The kind breaks the tie between the two halves of
/// a Zipkin shared span (same trace and span ID, client and server).
pub(crate) fn sort_key(span: &Span) -> (TraceId, u64, SpanId, SpanKind) {
    (span.trace_id, span.start_unix_nanos, span.span_id, span.kind)
}

/// The cluster being written: its name, first row and services.
#[derive(Debug, Default)]
struct OpenCluster {
    name: String,
    first_row: u32,
    services: BTreeSet<String>,
}

/// Metadata gathered while writing.
#[derive(Debug, Default)]
struct Stats {
    num_spans: u64,
    min_start_unix_nanos: u64,
    max_start_unix_nanos: u64,
    max_end_unix_nanos: u64,
    /// The latest first-row start among traces (rows are sorted by trace, then start).
    max_trace_start_unix_nanos: u64,
    services: BTreeSet<String>,
    /// Service → span name → kinds, looked up by borrowed text so a span seen before costs no
    /// allocation.
    operations: BTreeMap<String, BTreeMap<String, BTreeSet<i32>>>,
    num_operations: usize,
}

/// What a finished block writer hands back.
pub(crate) struct FinishedBlock<W> {
    pub(crate) sink: W,
    pub(crate) index: BlockIndex,
    /// The attribute index, when some attribute key is indexed.
    pub(crate) attrs_opt: Option<AttrIndex>,
    /// Complete except `size_bytes`, which the caller knows once the objects are stored.
    pub(crate) meta: BlockMeta,
}

pub(crate) struct BlockWriter<W: Write + Send> {
    id: String,
    level: u32,
    writer: ArrowWriter<W>,
    index: IndexBuilder,
    attrs: AttrIndexBuilder,
    stats: Stats,
    /// The cluster being written and the finished ones (with service names, numbered at the end).
    cluster: Option<OpenCluster>,
    clusters: Vec<OpenCluster>,
    /// Sort key of the last row within the current cluster.
    last_key: Option<(TraceId, u64, SpanId, SpanKind)>,
}

impl<W: Write + Send> BlockWriter<W> {
    /// A writer of block `id`; the values of `indexed_keys` go to its attribute index
    /// (none is made without keys).
    pub(crate) fn new(
        id: String,
        level: u32,
        sink: W,
        properties: WriterProperties,
        indexed_keys: &[String],
    ) -> Result<Self, BlockError> {
        let writer = ArrowWriter::try_new(sink, block_schema(), Some(properties))?;
        Ok(BlockWriter {
            id,
            level,
            writer,
            index: IndexBuilder::default(),
            attrs: AttrIndexBuilder::new(indexed_keys),
            stats: Stats::default(),
            cluster: None,
            clusters: Vec::new(),
            last_key: None,
        })
    }

    /// Appends spans of cluster `cluster` that continue the block order.
    pub(crate) fn write<S: Borrow<Span>>(&mut self, cluster: &str, spans: &[S]) -> Result<(), BlockError> {
        if spans.is_empty() {
            return Ok(());
        }
        self.enter_cluster(cluster)?;
        let mut service_names = ServiceNames::default();
        for span in spans {
            let span = span.borrow();
            self.observe(span, service_names.of(span))?;
        }
        for chunk in spans.chunks(ENCODE_BATCH_ROWS) {
            let batch = encode_batch(chunk, &mut service_names)?;
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    /// The sink, to take the bytes written so far. Taking bytes out of it is safe: the
    /// Parquet writer counts offsets itself and only ever appends.
    pub(crate) fn sink_mut(&mut self) -> &mut W {
        self.writer.inner_mut()
    }

    /// Continues the current cluster, or closes it and opens `name`, which must sort after it.
    fn enter_cluster(&mut self, name: &str) -> Result<(), BlockError> {
        match &self.cluster {
            Some(open) if open.name == name => return Ok(()),
            Some(open) if open.name.as_str() > name => {
                return Err(BlockError::Corrupt {
                    block_id: self.id.clone(),
                    reason: format!("cluster {name:?} comes after cluster {:?}", open.name),
                });
            }
            _ => {}
        }
        let first_row = self.index.num_rows();
        self.clusters.extend(self.cluster.take());
        self.cluster = Some(OpenCluster { name: name.to_owned(), first_row, services: BTreeSet::new() });
        self.index.break_run();
        self.last_key = None;
        Ok(())
    }

    fn observe(&mut self, span: &Span, service: &str) -> Result<(), BlockError> {
        let key = sort_key(span);
        if self.last_key.is_some_and(|last| last >= key) {
            return Err(BlockError::Corrupt {
                block_id: self.id.clone(),
                reason: format!("span {} of trace {} is out of block order or repeated", span.span_id, span.trace_id),
            });
        }
        if self.index.num_rows() == u32::MAX {
            return Err(BlockError::TooManyRows { max: u32::MAX as u64, actual: u32::MAX as u64 + 1 });
        }
        let new_trace = self.last_key.is_none_or(|last| last.0 != span.trace_id);
        self.last_key = Some(key);
        self.index.push_row(span.trace_id);
        self.attrs.observe(span);
        let cluster = self.cluster.as_mut().expect("write opens a cluster first");
        if !cluster.services.contains(service) {
            cluster.services.insert(service.to_owned());
        }
        let stats = &mut self.stats;
        if new_trace {
            stats.max_trace_start_unix_nanos = stats.max_trace_start_unix_nanos.max(span.start_unix_nanos);
        }
        if stats.num_spans == 0 {
            stats.min_start_unix_nanos = span.start_unix_nanos;
        }
        stats.num_spans += 1;
        stats.min_start_unix_nanos = stats.min_start_unix_nanos.min(span.start_unix_nanos);
        stats.max_start_unix_nanos = stats.max_start_unix_nanos.max(span.start_unix_nanos);
        stats.max_end_unix_nanos = stats.max_end_unix_nanos.max(span.end_unix_nanos);
        if !stats.services.contains(service) {
            stats.services.insert(service.to_owned());
        }
        if stats.num_operations < MAX_OPERATIONS {
            let known = stats.operations.get(service).and_then(|names| names.get(span.name.as_str()));
            if !known.is_some_and(|kinds| kinds.contains(&(span.kind as i32))) {
                let names = stats.operations.entry(service.to_owned()).or_default();
                names.entry(span.name.to_string()).or_default().insert(span.kind as i32);
                stats.num_operations += 1;
            }
        }
        Ok(())
    }

    /// Writes the footer (with the block's metadata as key-value pairs) and returns the sink,
    /// the index and the metadata.
    pub(crate) fn finish(mut self, created_unix_nanos: u64) -> Result<FinishedBlock<W>, BlockError> {
        if self.stats.num_spans == 0 {
            return Err(BlockError::EmptyBlock);
        }
        let stats = std::mem::take(&mut self.stats);
        let services: Vec<String> = stats.services.into_iter().collect();
        let operations: Vec<(String, String, i32)> = stats
            .operations
            .into_iter()
            .flat_map(|(service, names)| {
                names.into_iter().flat_map(move |(name, kinds)| {
                    let service = service.clone();
                    kinds.into_iter().map(move |kind| (service.clone(), name.clone(), kind))
                })
            })
            .collect();
        let clusters = self.clusters.drain(..).chain(self.cluster.take());
        let mut finished: Vec<Cluster> = Vec::new();
        let mut end = self.index.num_rows();
        for open in clusters.collect::<Vec<_>>().into_iter().rev() {
            let positions = open.services.iter().filter_map(|s| services.binary_search(s).ok().map(|i| i as u32));
            finished.push(Cluster { name: open.name, rows: [open.first_row, end], services: positions.collect() });
            end = open.first_row;
        }
        finished.reverse();
        let index = std::mem::take(&mut self.index).finish();
        let attrs = std::mem::take(&mut self.attrs);
        let attrs_opt = attrs.is_enabled().then(|| attrs.finish());
        let num_traces = index.num_traces() as u64;
        let pairs = [
            (META_FORMAT_VERSION, FORMAT_VERSION.to_string()),
            (META_BLOCK_ID, self.id.clone()),
            (META_LEVEL, self.level.to_string()),
            (META_SORT_ORDER, SORT_ORDER.to_owned()),
            (META_NUM_SPANS, stats.num_spans.to_string()),
            (META_NUM_TRACES, num_traces.to_string()),
            (META_MIN_START_UNIX_NANOS, stats.min_start_unix_nanos.to_string()),
            (META_MAX_START_UNIX_NANOS, stats.max_start_unix_nanos.to_string()),
            (META_MAX_END_UNIX_NANOS, stats.max_end_unix_nanos.to_string()),
            (META_MAX_TRACE_START_UNIX_NANOS, stats.max_trace_start_unix_nanos.to_string()),
            (META_SERVICES, serde_json::to_string(&services).expect("strings serialize")),
            (META_OPERATIONS, serde_json::to_string(&operations).expect("strings serialize")),
            (META_CLUSTERS, serde_json::to_string(&finished).expect("clusters serialize")),
        ];
        for (key, value) in pairs {
            self.writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
        }
        let sink = self.writer.into_inner()?;
        let meta = BlockMeta {
            id: self.id,
            level: self.level,
            min_start_unix_nanos: stats.min_start_unix_nanos,
            max_start_unix_nanos: stats.max_start_unix_nanos,
            max_end_unix_nanos: stats.max_end_unix_nanos,
            max_trace_start_unix_nanos: Some(stats.max_trace_start_unix_nanos),
            num_spans: stats.num_spans,
            num_traces,
            size_bytes: 0,
            services,
            operations,
            created_unix_nanos,
        };
        Ok(FinishedBlock { sink, index, attrs_opt, meta })
    }
}

/// Spans in block order, with the clusters they fall in.
pub(crate) struct Clustered<S> {
    pub(crate) spans: Vec<S>,
    /// Each cluster's name and its spans in `spans`, in order.
    pub(crate) clusters: Vec<(String, Range<usize>)>,
}

/// Sorts spans into block order, each trace in the cluster of its earliest span's service, and
/// drops repeated spans (same [`Span::identity`]: trace ID, span ID and kind), keeping the
/// first received: clients retry, and a span must be stored once.
pub(crate) fn cluster_order<S: Borrow<Span>>(mut spans: Vec<S>) -> Clustered<S> {
    // Stable, so that among equal keys the earliest received comes first and is kept.
    spans.sort_by_key(|span| sort_key(span.borrow()));
    let mut dedup = SpanDedup::default();
    spans.retain(|span| dedup.first_time(span.borrow()));
    // Each trace's spans go to the bucket of its first span's service, in trace order.
    let total = spans.len();
    let mut service_names = ServiceNames::default();
    let mut buckets: BTreeMap<String, Vec<S>> = BTreeMap::new();
    let mut current: Option<(TraceId, String)> = None;
    for span in spans {
        let trace_id = span.borrow().trace_id;
        if current.as_ref().is_none_or(|(id, _)| *id != trace_id) {
            current = Some((trace_id, service_names.of(span.borrow()).to_owned()));
        }
        let (_, service) = current.as_ref().expect("set above");
        match buckets.get_mut(service) {
            Some(bucket) => bucket.push(span),
            None => _ = buckets.insert(service.clone(), vec![span]),
        }
    }
    let mut clustered = Clustered { spans: Vec::with_capacity(total), clusters: Vec::with_capacity(buckets.len()) };
    for (name, bucket) in buckets {
        let start = clustered.spans.len();
        clustered.spans.extend(bucket);
        clustered.clusters.push((name, start..clustered.spans.len()));
    }
    clustered
}

/// Recognises repeated spans (same [`Span::identity`]) in a stream where each trace's spans
/// are contiguous; memory is bounded by one trace.
#[derive(Debug, Default)]
pub(crate) struct SpanDedup {
    trace_id: Option<TraceId>,
    /// IDs come from clients, so the set keeps a keyed hash, a fast one (`ahash`).
    seen: HashSet<(TraceId, SpanId, SpanKind), ahash::RandomState>,
}

impl SpanDedup {
    /// Whether this is the first span with this identity in the stream.
    pub(crate) fn first_time(&mut self, span: &Span) -> bool {
        if self.trace_id != Some(span.trace_id) {
            self.trace_id = Some(span.trace_id);
            self.seen.clear();
        }
        self.seen.insert(span.identity())
    }
}
