//! The compaction executor: a streaming k-way merge of blocks into blocks split by trace
//! start.
//!
//! First each trace is given its output: the inputs' trace-ID indexes and start columns give
//! every trace's earliest start and span count; traces ordered by start are cut into groups of
//! at most `max_output_spans` spans (a larger trace is a group of its own), one output block
//! each, so the outputs do not overlap in trace start (see `compaction::plan`).
//!
//! Then every input, already in block order, is read one row group at a time (one ranged
//! request each) and decoded in batches, and the merge repeatedly takes the smallest head and
//! hands it to its trace's output. Each trace's spans arrive contiguously across all inputs,
//! which is what lets [`SpanDedup`] drop repeated spans (same trace ID, span ID and kind) with
//! memory bounded by one trace, and keeps every output in block order.
//! Outputs are encoded as they go and streamed to multipart uploads, so memory stays bounded
//! by a few row groups whatever the block sizes: inputs × (one fetched row group + one decoded
//! batch) + outputs × the row group in progress.
//!
//! The merge runs on one blocking-pool thread and drives the object store's futures with
//! `Handle::block_on` (allowed off the runtime's worker threads). If the merge fails, the
//! upload is aborted; if only the final index put fails, an unlisted `data.parquet` remains,
//! which is garbage like any block no manifest lists.

use std::collections::{HashMap, VecDeque};

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use sextant_model::{Span, TraceId};
use tokio::runtime::Handle;
use tracing::{debug, warn};

use super::decode::{RowFilter, SpanDecoder};
use super::reader::{self, OpenedBlock, ReadPlan};
use super::schema::writer_properties;
use super::store::BlockStore;
use super::writer::{BlockWriter, SpanDedup, sort_key};
use super::{BlockError, BlockMeta, new_block_id, now_unix_nanos};

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
    let mut traces: HashMap<TraceId, (u64, u64)> = HashMap::new();
    for input in inputs {
        let block = store.open(input).await?;
        for (trace_id, start, spans) in store.trace_starts(input, &block).await? {
            let entry = traces.entry(trace_id).or_insert((u64::MAX, 0));
            *entry = (entry.0.min(start), entry.1 + spans);
        }
        opened.push(block);
    }
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

    let cursors = inputs.iter().zip(opened).map(|(meta, opened)| Cursor::new(store.clone(), meta.clone(), opened));
    let cursors: Vec<Cursor> = cursors.collect();
    let handle = Handle::current();
    let task_store = store.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let _runtime = handle.enter();
        merge_blocking(&handle, &task_store, cursors, &routes, outputs, level, created_unix_nanos)
    })
    .await??;

    let mut metas = Vec::with_capacity(merged.len());
    for (mut meta, index) in merged {
        let index_bytes = index.encode();
        meta.size_bytes += index_bytes.len() as u64;
        store.store.put(&store.index_path(&meta.id), PutPayload::from(index_bytes)).await?;
        store.cache_index(&meta.id, std::sync::Arc::new(index));
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
    pending: Vec<Span>,
    data_bytes: u64,
}

impl Output {
    fn flush_pending(&mut self, handle: &Handle) -> Result<(), BlockError> {
        self.writer.write(&self.pending)?;
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
) -> Result<Vec<(BlockMeta, super::index::BlockIndex)>, BlockError> {
    let options = &store.options;
    let properties = writer_properties(options.row_group_rows, options.page_rows, options.compaction_zstd_level);
    let mut outputs: Vec<Output> = Vec::with_capacity(uploads.len());
    let mut failed: Option<BlockError> = None;
    for (id, upload) in uploads {
        match BlockWriter::new(id, level, Vec::new(), properties.clone()) {
            Ok(writer) => outputs.push(Output { writer, upload, pending: Vec::new(), data_bytes: 0 }),
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
        let mut num_dropped = 0u64;
        loop {
            // The input whose next span sorts first; ties go to the earlier input.
            for cursor in cursors.iter_mut() {
                cursor.fill(handle)?;
            }
            let best = cursors
                .iter()
                .enumerate()
                .filter_map(|(i, cursor)| cursor.buffer.front().map(|span| (sort_key(span), i)))
                .min()
                .map(|(_, i)| i);
            let Some(best) = best else { break };
            let span = cursors[best].pop().expect("peeked");
            if !dedup.first_time(&span) {
                num_dropped += 1;
                continue;
            }
            let Some(&route) = routes.get(&span.trace_id) else {
                return Err(BlockError::Corrupt {
                    block_id: cursors[best].meta.id.clone(),
                    reason: format!("trace {} is not in the block's index", span.trace_id),
                });
            };
            let output = &mut outputs[route];
            output.pending.push(span);
            if output.pending.len() == WRITE_CHUNK_SPANS {
                output.flush_pending(handle)?;
            }
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
                finished_outputs.push((meta, finished.index));
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

/// One input of the merge: its spans in block order, one row group fetched at a time.
struct Cursor {
    store: BlockStore,
    meta: BlockMeta,
    opened: OpenedBlock,
    next_row_group: usize,
    batches: Option<ParquetRecordBatchReader>,
    decoder: SpanDecoder,
    buffer: VecDeque<Span>,
}

impl Cursor {
    fn new(store: BlockStore, meta: BlockMeta, opened: OpenedBlock) -> Self {
        Cursor {
            store,
            meta,
            opened,
            next_row_group: 0,
            batches: None,
            decoder: SpanDecoder::default(),
            buffer: VecDeque::new(),
        }
    }

    /// Fetches and decodes more of the input if the buffer is empty; leaves it empty only
    /// when the input is exhausted.
    fn fill(&mut self, handle: &Handle) -> Result<(), BlockError> {
        while self.buffer.is_empty() {
            if let Some(batches) = &mut self.batches {
                match batches.next() {
                    Some(batch) => {
                        let mut spans = Vec::new();
                        self.decoder
                            .decode(&batch?, &RowFilter::All, &mut spans)
                            .map_err(|reason| BlockError::Corrupt { block_id: self.meta.id.clone(), reason })?;
                        self.buffer.extend(spans);
                        continue;
                    }
                    None => self.batches = None,
                }
            }
            if self.next_row_group >= self.opened.metadata().num_row_groups() {
                return Ok(());
            }
            let plan = ReadPlan::row_groups(vec![self.next_row_group]);
            self.next_row_group += 1;
            let path = self.store.data_path(&self.meta.id);
            let file = handle.block_on(reader::fetch(self.store.store.as_ref(), &path, &self.opened, &plan))?;
            let batch_rows = self.store.options.read_batch_rows;
            self.batches = Some(reader::batch_reader(file, &self.opened, &plan, batch_rows)?);
        }
        Ok(())
    }

    fn pop(&mut self) -> Option<Span> {
        self.buffer.pop_front()
    }
}
