//! The compaction executor: a streaming k-way merge of blocks into blocks split by trace
//! start.
//!
//! First each trace is given its output: the inputs' trace-ID indexes and start columns give
//! every trace's earliest start and span count; traces ordered by start are cut into groups of
//! at most `max_output_spans` spans (a larger trace is a group of its own), one output block
//! each, so the outputs do not overlap in trace start (see `compaction::plan`).
//!
//! Then every input, already in block order, is read one row group at a time (one ranged
//! request each) and decoded in batches, and the merge repeatedly takes the smallest head by
//! (cluster name, sort key) and hands it to its trace's output: every span stays in the
//! cluster it was written in. A trace's spans in one cluster arrive contiguously across all
//! inputs, which is what lets [`SpanDedup`] drop repeated spans (same trace ID, span ID and
//! kind) with memory bounded by one trace, and keeps every output in block order. (A span
//! repeated in two clusters, which needs two flushes that saw different earliest spans of its
//! trace, is kept twice; trace reads drop such repeats.)
//! Outputs are encoded as they go and streamed to multipart uploads, so memory stays bounded
//! by a few row groups whatever the block sizes: inputs × (one fetched row group + one decoded
//! batch) + outputs × the row group in progress.
//!
//! The merge runs on one blocking-pool thread and drives the object store's futures with
//! `Handle::block_on` (allowed off the runtime's worker threads). If the merge fails, the
//! upload is aborted; if only the final `attrs.bin` or index put fails, an unlisted
//! `data.parquet` remains, which is garbage like any block no manifest lists. Each output's
//! attribute index (`attrs.bin`, with the store's indexed keys) is built by its writer from
//! the spans it writes, like its trace-ID index.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use sextant_model::{Span, TraceId};
use tokio::runtime::Handle;
use tracing::{debug, warn};

use super::clusters::Clusters;
use super::decode::{RowFilter, SpanDecoder};
use super::reader::{self, OpenedBlock, ReadPlan};
use super::schema::writer_properties;
use super::store::BlockStore;
use super::writer::{BlockWriter, SpanDedup, sort_key};
use super::{BlockError, BlockMeta, new_block_id, now_unix_nanos};

/// A trace's run of rows in an input, and the cluster it is in.
type Run = (TraceId, Range<u64>, Arc<str>);

/// Spans moved to their trace's cluster at most per compaction (held in memory meanwhile).
const MAX_MOVED_SPANS: u64 = 200_000;
/// Spans handed to the writer at a time.
const WRITE_CHUNK_SPANS: usize = 1_024;
/// Multipart parts uploading at once.
const UPLOAD_CONCURRENCY: usize = 2;

pub(crate) async fn compact(
    store: &BlockStore,
    inputs: &[BlockMeta],
    max_output_spans: u64,
) -> Result<Vec<BlockMeta>, BlockError> {
    if inputs.is_empty() {
        return Err(BlockError::EmptyBlock);
    }
    let mut opened = Vec::with_capacity(inputs.len());
    // Per trace: earliest start, spans, and the cluster of its earliest run.
    let mut traces: HashMap<TraceId, (u64, u64, Arc<str>)> = HashMap::new();
    // Per input: its runs.
    let mut runs: Vec<Vec<Run>> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let block = store.open(input).await?;
        let clusters = Clusters::of(&block).map_err(|reason| corrupt(input, reason))?;
        let mut names: Vec<Arc<str>> = clusters.iter().map(|c| Arc::from(c.name.as_str())).collect();
        names.dedup();
        let mut input_runs = Vec::new();
        for (trace_id, rows, start) in store.trace_starts(input, &block).await? {
            let name = clusters.name_at(rows.start).ok_or_else(|| corrupt(input, "a run is in no cluster".into()))?;
            let name = names.iter().find(|n| ***n == *name).expect("every cluster is named").clone();
            let entry = traces.entry(trace_id).or_insert((u64::MAX, 0, name.clone()));
            if start < entry.0 {
                (entry.0, entry.2) = (start, name.clone());
            }
            entry.1 += rows.end - rows.start;
            input_runs.push((trace_id, rows, name));
        }
        runs.push(input_runs);
        opened.push(block);
    }
    // Runs outside their trace's cluster (parts of a trace flushed apart, whose earliest spans
    // had different services) move to it, read up front, up to a bound.
    let mut moves: Vec<Vec<Range<u64>>> = vec![Vec::new(); inputs.len()];
    let mut moved: Vec<(Arc<str>, Span)> = Vec::new();
    let mut budget = MAX_MOVED_SPANS;
    for (i, input_runs) in runs.iter().enumerate() {
        for (trace_id, rows, name) in input_runs {
            let home = &traces[trace_id].2;
            if home != name && rows.end - rows.start <= budget {
                budget -= rows.end - rows.start;
                moves[i].push(rows.clone());
            }
        }
        if moves[i].is_empty() {
            continue;
        }
        moves[i].sort_unstable_by_key(|rows| rows.start);
        for span in store.read_rows(&inputs[i], &opened[i], &moves[i]).await? {
            moved.push((traces[&span.trace_id].2.clone(), span));
        }
    }
    // Stable: among equal keys the earlier input comes first, as in the merge.
    moved.sort_by(|(a, x), (b, y)| (a, sort_key(x)).cmp(&(b, sort_key(y))));
    let traces: HashMap<TraceId, (u64, u64)> =
        traces.into_iter().map(|(id, (start, spans, _))| (id, (start, spans))).collect();
    let (routes, num_outputs) = split_by_start(traces, max_output_spans);
    let level = inputs.iter().map(|b| b.level).max().unwrap_or(0) + 1;
    let created_unix_nanos = now_unix_nanos();
    let mut outputs = Vec::with_capacity(num_outputs);
    for _ in 0..num_outputs {
        let id = new_block_id(created_unix_nanos / 1_000_000);
        let upload = store.store.put_multipart(&store.data_path(&id)).await?;
        let upload = WriteMultipart::new_with_chunk_size(upload, store.options.upload_part_bytes.max(1024));
        outputs.push((id, upload));
    }

    let cursors = inputs
        .iter()
        .zip(opened)
        .zip(moves)
        .map(|((meta, opened), skip)| Cursor::new(store.clone(), meta.clone(), opened, skip));
    let mut cursors: Vec<Cursor> = cursors.collect::<Result<_, _>>()?;
    cursors.push(Cursor::of_spans(inputs[0].clone(), moved));
    let handle = Handle::current();
    let task_store = store.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let _runtime = handle.enter();
        merge_blocking(&handle, &task_store, cursors, &routes, outputs, level, created_unix_nanos)
    })
    .await??;

    let mut metas = Vec::with_capacity(merged.len());
    for (mut meta, index, attrs_opt) in merged {
        let index_bytes = index.encode();
        meta.size_bytes += index_bytes.len() as u64;
        if let Some(attrs) = &attrs_opt {
            let attrs_bytes = attrs.encode(&index).map_err(|e| corrupt(&meta, e.to_string()))?;
            meta.size_bytes += attrs_bytes.len() as u64;
            store.store.put(&store.attrs_path(&meta.id), PutPayload::from(attrs_bytes)).await?;
        }
        store.store.put(&store.index_path(&meta.id), PutPayload::from(index_bytes)).await?;
        store.cache_index(&meta.id, std::sync::Arc::new(index));
        store.cache_attrs(&meta.id, attrs_opt.map(std::sync::Arc::new));
        metas.push(meta);
    }
    let num_spans: u64 = metas.iter().map(|m| m.num_spans).sum();
    debug!(level, num_inputs = inputs.len(), num_outputs = metas.len(), num_spans, "compacted blocks");
    Ok(metas)
}

/// Each trace's output: traces ordered by (earliest start, ID) and cut into groups of at most
/// `max_spans` spans (a larger trace alone). Returns the routes and the number of groups.
fn split_by_start(traces: HashMap<TraceId, (u64, u64)>, max_spans: u64) -> (HashMap<TraceId, usize>, usize) {
    let mut ordered: Vec<(u64, TraceId, u64)> = traces.into_iter().map(|(id, (start, n))| (start, id, n)).collect();
    ordered.sort_unstable();
    let mut routes = HashMap::with_capacity(ordered.len());
    let (mut group, mut spans) = (0usize, 0u64);
    for (i, (_, trace_id, n)) in ordered.into_iter().enumerate() {
        if i > 0 && spans + n > max_spans.max(1) {
            group += 1;
            spans = 0;
        }
        spans += n;
        routes.insert(trace_id, group);
    }
    let groups = if routes.is_empty() { 0 } else { group + 1 };
    (routes, groups)
}

/// One output block being written.
struct Output {
    writer: BlockWriter<Vec<u8>>,
    upload: WriteMultipart,
    /// Spans of cluster `pending_cluster` not yet handed to the writer.
    pending: Vec<Span>,
    pending_cluster: Arc<str>,
    data_bytes: u64,
}

impl Output {
    /// Queues `span` of cluster `cluster`, writing what is queued when the cluster changes or
    /// a chunk is full.
    fn push(&mut self, handle: &Handle, cluster: &Arc<str>, span: Span) -> Result<(), BlockError> {
        if *self.pending_cluster != **cluster {
            self.flush_pending(handle)?;
            self.pending_cluster = cluster.clone();
        }
        self.pending.push(span);
        if self.pending.len() == WRITE_CHUNK_SPANS {
            self.flush_pending(handle)?;
        }
        Ok(())
    }

    fn flush_pending(&mut self, handle: &Handle) -> Result<(), BlockError> {
        self.writer.write(&self.pending_cluster, &self.pending)?;
        self.pending.clear();
        self.data_bytes += drain(&mut self.writer, &mut self.upload);
        handle.block_on(self.upload.wait_for_capacity(UPLOAD_CONCURRENCY))?;
        Ok(())
    }
}

fn merge_blocking(
    handle: &Handle,
    store: &BlockStore,
    mut cursors: Vec<Cursor>,
    routes: &HashMap<TraceId, usize>,
    uploads: Vec<(String, WriteMultipart)>,
    level: u32,
    created_unix_nanos: u64,
) -> Result<Vec<(BlockMeta, super::index::BlockIndex, Option<super::attrs::AttrIndex>)>, BlockError> {
    let options = &store.options;
    let properties = writer_properties(options.row_group_rows, options.page_rows, options.compaction_zstd_level);
    let mut outputs: Vec<Output> = Vec::with_capacity(uploads.len());
    let mut failed: Option<BlockError> = None;
    for (id, upload) in uploads {
        match BlockWriter::new(id, level, Vec::new(), properties.clone(), &options.indexed_attribute_keys) {
            Ok(writer) => outputs.push(Output {
                writer,
                upload,
                pending: Vec::new(),
                pending_cluster: Arc::from(""),
                data_bytes: 0,
            }),
            Err(error) => {
                failed.get_or_insert(error);
                abort(handle, upload);
            }
        }
    }
    if let Some(error) = failed {
        outputs.into_iter().for_each(|output| abort(handle, output.upload));
        return Err(error);
    }
    let merged = (|| {
        let mut dedup = SpanDedup::default();
        let mut last_cluster: Option<Arc<str>> = None;
        let mut num_dropped = 0u64;
        loop {
            // The input whose next span sorts first; ties go to the earlier input.
            for cursor in cursors.iter_mut() {
                cursor.fill(handle)?;
            }
            let best = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, cursor)| cursor.peek().map(|(cluster, span)| ((cluster, sort_key(span)), i)))
                .min()
                .map(|(_, i)| i);
            let Some(best) = best else { break };
            let (cluster, span) = cursors[best].pop().expect("peeked");
            if last_cluster.as_deref() != Some(&*cluster) {
                // A trace continues across clusters only as separate runs.
                dedup = SpanDedup::default();
                last_cluster = Some(cluster.clone());
            }
            if !dedup.first_time(&span) {
                num_dropped += 1;
                continue;
            }
            let Some(&route) = routes.get(&span.trace_id) else {
                return Err(corrupt(
                    &cursors[best].meta,
                    format!("trace {} is not in the block's index", span.trace_id),
                ));
            };
            outputs[route].push(handle, &cluster, span)?;
        }
        debug!(num_dropped, "dropped repeated spans while compacting");
        for output in outputs.iter_mut() {
            output.flush_pending(handle)?;
        }
        Ok(())
    })();
    if let Err(error) = merged {
        outputs.into_iter().for_each(|output| abort(handle, output.upload));
        return Err(error);
    }
    let mut finished_outputs = Vec::with_capacity(outputs.len());
    let mut outputs = outputs.into_iter();
    while let Some(Output { writer, mut upload, data_bytes, .. }) = outputs.next() {
        let finished = match writer.finish(created_unix_nanos) {
            Ok(finished) => {
                upload.write(&finished.sink);
                handle.block_on(upload.finish()).map(|_| finished).map_err(BlockError::from)
            }
            Err(error) => {
                abort(handle, upload);
                Err(error)
            }
        };
        match finished {
            Ok(finished) => {
                let mut meta = finished.meta;
                meta.size_bytes = data_bytes + finished.sink.len() as u64;
                finished_outputs.push((meta, finished.index, finished.attrs_opt));
            }
            Err(error) => {
                outputs.for_each(|output| abort(handle, output.upload));
                return Err(error);
            }
        }
    }
    Ok(finished_outputs)
}

fn abort(handle: &Handle, upload: WriteMultipart) {
    if let Err(error) = handle.block_on(upload.abort()) {
        warn!(%error, "could not abort a compaction upload");
    }
}

/// Moves the bytes the writer has produced so far into the upload.
fn drain(writer: &mut BlockWriter<Vec<u8>>, upload: &mut WriteMultipart) -> u64 {
    let bytes = std::mem::take(writer.sink_mut());
    upload.write(&bytes);
    bytes.len() as u64
}

fn corrupt(meta: &BlockMeta, reason: String) -> BlockError {
    BlockError::Corrupt { block_id: meta.id.clone(), reason }
}

/// One input of the merge: its spans in block order, each with the name of its cluster; or
/// the moved spans, already in memory and in order.
struct Cursor {
    meta: BlockMeta,
    buffer: VecDeque<(Arc<str>, Span)>,
    /// `None` once exhausted (or for the moved spans).
    input: Option<Input>,
}

/// What a cursor reads from an input block.
struct Input {
    store: BlockStore,
    opened: OpenedBlock,
    next_row_group: usize,
    batches: Option<ParquetRecordBatchReader>,
    decoder: SpanDecoder,
    /// Each cluster's name and end row, in row order.
    clusters: Vec<(Arc<str>, u64)>,
    /// The cluster of the next row decoded, and that row.
    cluster: usize,
    next_row: u64,
    /// Rows moved to another cluster (sorted), which this cursor skips; those before
    /// `skip[skipped]` are behind it.
    skip: Vec<Range<u64>>,
    skipped: usize,
}

impl Cursor {
    fn new(store: BlockStore, meta: BlockMeta, opened: OpenedBlock, skip: Vec<Range<u64>>) -> Result<Self, BlockError> {
        let clusters = Clusters::of(&opened).map_err(|reason| corrupt(&meta, reason))?;
        let clusters = clusters.iter().map(|c| (Arc::from(c.name.as_str()), c.rows[1] as u64)).collect();
        let input = Input {
            store,
            opened,
            next_row_group: 0,
            batches: None,
            decoder: SpanDecoder::default(),
            clusters,
            cluster: 0,
            next_row: 0,
            skip,
            skipped: 0,
        };
        Ok(Cursor { meta, buffer: VecDeque::new(), input: Some(input) })
    }

    /// A cursor over spans already read and sorted; `meta` names them in errors.
    fn of_spans(meta: BlockMeta, spans: Vec<(Arc<str>, Span)>) -> Self {
        Cursor { meta, buffer: spans.into(), input: None }
    }

    /// Fetches and decodes more of the input if the buffer is empty; leaves it empty only
    /// when the input is exhausted.
    fn fill(&mut self, handle: &Handle) -> Result<(), BlockError> {
        while self.buffer.is_empty() {
            let Some(input) = &mut self.input else { return Ok(()) };
            if let Some(batches) = &mut input.batches {
                match batches.next() {
                    Some(batch) => {
                        let mut spans = Vec::new();
                        input
                            .decoder
                            .decode(&batch?, &RowFilter::All, &mut spans)
                            .map_err(|r| corrupt(&self.meta, r))?;
                        for span in spans {
                            let row = input.next_row;
                            input.next_row += 1;
                            while input.skip.get(input.skipped).is_some_and(|rows| rows.end <= row) {
                                input.skipped += 1;
                            }
                            if input.skip.get(input.skipped).is_some_and(|rows| rows.contains(&row)) {
                                continue;
                            }
                            while input.clusters.get(input.cluster).is_some_and(|(_, end)| *end <= row) {
                                input.cluster += 1;
                            }
                            let Some((name, _)) = input.clusters.get(input.cluster) else {
                                return Err(corrupt(&self.meta, format!("row {row} is in no cluster")));
                            };
                            self.buffer.push_back((name.clone(), span));
                        }
                        continue;
                    }
                    None => input.batches = None,
                }
            }
            if input.next_row_group >= input.opened.metadata().num_row_groups() {
                self.input = None;
                return Ok(());
            }
            let plan = ReadPlan::row_groups(vec![input.next_row_group]);
            input.next_row_group += 1;
            let path = input.store.data_path(&self.meta.id);
            let file = handle.block_on(reader::fetch(input.store.store.as_ref(), &path, &input.opened, &plan))?;
            let batch_rows = input.store.options.read_batch_rows;
            input.batches = Some(reader::batch_reader(file, &input.opened, &plan, batch_rows)?);
        }
        Ok(())
    }

    fn peek(&self) -> Option<(&str, &Span)> {
        self.buffer.front().map(|(cluster, span)| (&**cluster, span))
    }

    fn pop(&mut self) -> Option<(Arc<str>, Span)> {
        self.buffer.pop_front()
    }
}
