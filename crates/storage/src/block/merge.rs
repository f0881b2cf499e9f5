//! The compaction executor: a streaming k-way merge of blocks into one.
//!
//! Every input is already in block order, so the merge reads each input one row group at a
//! time (one ranged request each), decodes it in batches, and repeatedly takes the smallest
//! head. Each trace's spans arrive contiguously across all inputs, which is what lets
//! [`SpanDedup`] drop repeated spans (same trace ID, span ID and kind) with memory bounded by
//! one trace.
//! The output is encoded as it goes and streamed to a multipart upload, so memory stays
//! bounded by a few row groups whatever the block sizes:
//! inputs × (one fetched row group + one decoded batch) + the output row group in progress.
//!
//! The merge runs on one blocking-pool thread and drives the object store's futures with
//! `Handle::block_on` (allowed off the runtime's worker threads). If the merge fails, the
//! upload is aborted; if only the final index put fails, an unlisted `data.parquet` remains,
//! which is garbage like any block no manifest lists.

use std::collections::VecDeque;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use sextant_model::Span;
use tokio::runtime::Handle;
use tracing::{debug, warn};

use super::decode::{RowFilter, SpanDecoder};
use super::reader::{self, OpenedBlock, ReadPlan};
use super::schema::writer_properties;
use super::store::BlockStore;
use super::writer::{BlockWriter, SpanDedup, sort_key};
use super::{BlockError, BlockMeta, new_block_id, now_unix_nanos};

/// Spans handed to the writer at a time.
const WRITE_CHUNK_SPANS: usize = 4_096;
/// Multipart parts uploading at once.
const UPLOAD_CONCURRENCY: usize = 2;

pub(crate) async fn compact(store: &BlockStore, inputs: &[BlockMeta]) -> Result<BlockMeta, BlockError> {
    if inputs.is_empty() {
        return Err(BlockError::EmptyBlock);
    }
    let mut opened = Vec::with_capacity(inputs.len());
    for input in inputs {
        opened.push(store.open(input).await?);
    }
    let level = inputs.iter().map(|b| b.level).max().unwrap_or(0) + 1;
    let created_unix_nanos = now_unix_nanos();
    let id = new_block_id(created_unix_nanos / 1_000_000);
    let data_path = store.data_path(&id);
    let upload = store.store.put_multipart(&data_path).await?;
    let upload = WriteMultipart::new_with_chunk_size(upload, store.options.upload_part_bytes.max(1024));

    let cursors = inputs.iter().zip(opened).map(|(meta, opened)| Cursor::new(store.clone(), meta.clone(), opened));
    let cursors: Vec<Cursor> = cursors.collect();
    let handle = Handle::current();
    let task_store = store.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let _runtime = handle.enter();
        merge_blocking(&handle, &task_store, cursors, upload, id, level, created_unix_nanos)
    })
    .await??;
    let (mut meta, index) = merged;

    let index_bytes = index.encode();
    meta.size_bytes += index_bytes.len() as u64;
    store.store.put(&store.index_path(&meta.id), PutPayload::from(index_bytes)).await?;
    store.cache_index(&meta.id, std::sync::Arc::new(index));
    debug!(block_id = %meta.id, level, num_inputs = inputs.len(), num_spans = meta.num_spans, "compacted blocks");
    Ok(meta)
}

fn merge_blocking(
    handle: &Handle,
    store: &BlockStore,
    mut cursors: Vec<Cursor>,
    mut upload: WriteMultipart,
    id: String,
    level: u32,
    created_unix_nanos: u64,
) -> Result<(BlockMeta, super::index::BlockIndex), BlockError> {
    let options = &store.options;
    let properties = writer_properties(options.row_group_rows, options.page_rows, options.compaction_zstd_level);
    let result = (|| {
        let mut writer = BlockWriter::new(id, level, Vec::new(), properties)?;
        let mut dedup = SpanDedup::default();
        let mut pending = Vec::with_capacity(WRITE_CHUNK_SPANS);
        let mut data_bytes = 0u64;
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
            pending.push(span);
            if pending.len() == WRITE_CHUNK_SPANS {
                writer.write(&pending)?;
                pending.clear();
                data_bytes += drain(&mut writer, &mut upload);
                handle.block_on(upload.wait_for_capacity(UPLOAD_CONCURRENCY))?;
            }
        }
        writer.write(&pending)?;
        drop(pending);
        let finished = writer.finish(created_unix_nanos)?;
        data_bytes += finished.sink.len() as u64;
        upload.write(&finished.sink);
        let mut meta = finished.meta;
        meta.size_bytes = data_bytes;
        debug!(num_dropped, "dropped repeated spans while compacting");
        Ok((meta, finished.index))
    })();
    match result {
        Ok(done) => {
            handle.block_on(upload.finish())?;
            Ok(done)
        }
        Err(error) => {
            if let Err(abort_error) = handle.block_on(upload.abort()) {
                warn!(error = %abort_error, "could not abort a compaction upload");
            }
            Err(error)
        }
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
                            .decode(&batch?, RowFilter::All, &mut spans)
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
