//! [`BlockStore`]: the async API over blocks and the manifest in one object store.
//!
//! It owns the object layout (`blocks/{id}/data.parquet`, `blocks/{id}/index.bin`,
//! `blocks/{id}/attrs.bin`, `manifest/`) under a prefix, and three caches of immutable
//! per-block data: parsed footers, trace-ID indexes and attribute indexes (including the
//! absence of one: a block never gains an `attrs.bin` after it is written). Encoding and
//! decoding run on tokio's blocking pool; this module only moves bytes and hands them over.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use sextant_model::{Span, TraceId};

use super::attrs::AttrIndex;
use super::cache::BlockCache;
use super::clusters::Clusters;
use super::decode::{RowFilter, SpanDecoder};
use super::index::BlockIndex;
use super::manifest::{self, Manifest};
use super::reader::{self, OpenedBlock, ReadPlan, SparseFile};
use super::schema::{
    DEFAULT_COMPACTION_ZSTD_LEVEL, DEFAULT_PAGE_ROWS, DEFAULT_ROW_GROUP_ROWS, DEFAULT_ZSTD_LEVEL, META_OPERATIONS,
    START_UNIX_NANOS, writer_properties,
};
use super::search_scan::{self, ScanError, SearchRow};
use super::writer::{BlockWriter, cluster_order};
use super::{BlockError, BlockMeta, is_block_id, new_block_id, now_unix_nanos};
use crate::search::SearchQuery;

/// Tunables of a [`BlockStore`]; the defaults suit production.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockStoreOptions {
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows per data page (approximate).
    pub page_rows: usize,
    /// zstd level of blocks written by [`BlockStore::write_block`].
    pub zstd_level: i32,
    /// zstd level of blocks written by [`BlockStore::compact`].
    pub compaction_zstd_level: i32,
    /// Rows decoded per Arrow batch when reading.
    pub read_batch_rows: usize,
    /// Budget of the parsed-footer cache.
    pub footer_cache_bytes: usize,
    /// Budget of the trace-ID index cache (20 bytes per trace).
    pub index_cache_bytes: usize,
    /// Budget of the attribute-index cache.
    pub attrs_cache_bytes: usize,
    /// Attribute keys whose values → traces each new block records in `attrs.bin` (see
    /// `attrs`); none by default. Blocks written before a change keep the keys they were
    /// written with.
    pub indexed_attribute_keys: Vec<String>,
    /// Manifest versions kept when pruning (at least 1).
    pub manifest_versions_kept: usize,
    /// Size of each part of a multipart upload (compaction output). S3 requires at least
    /// 5 MiB for every part but the last.
    pub upload_part_bytes: usize,
}

impl Default for BlockStoreOptions {
    fn default() -> Self {
        BlockStoreOptions {
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            page_rows: DEFAULT_PAGE_ROWS,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            compaction_zstd_level: DEFAULT_COMPACTION_ZSTD_LEVEL,
            read_batch_rows: 4_096,
            footer_cache_bytes: 64 << 20,
            index_cache_bytes: 128 << 20,
            attrs_cache_bytes: 64 << 20,
            indexed_attribute_keys: Vec::new(),
            manifest_versions_kept: 10,
            upload_part_bytes: 16 << 20,
        }
    }
}

/// Blocks and manifest in an object store under a prefix. Cheap to clone; clones share the
/// caches.
#[derive(Clone)]
pub struct BlockStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: Path,
    pub(crate) options: Arc<BlockStoreOptions>,
    footers: Arc<BlockCache<OpenedBlock>>,
    indexes: Arc<BlockCache<Arc<BlockIndex>>>,
    /// `None`: the block has no `attrs.bin`.
    attrs: Arc<BlockCache<Option<Arc<AttrIndex>>>>,
}

/// Which rows of a block a search reads.
#[derive(Clone, Debug)]
pub enum SearchRows {
    /// The clusters that can hold a span of the query's service (every row without one).
    OfQuery,
    /// These rows (sorted, disjoint), whatever the query.
    Listed(Vec<Range<u64>>),
}

/// The rows of `0..num_rows` outside `ranges` (sorted, disjoint).
fn complement(ranges: &[Range<u64>], num_rows: u64) -> Vec<Range<u64>> {
    let mut outside = Vec::new();
    let mut next = 0;
    for range in ranges {
        if range.start > next {
            outside.push(next..range.start);
        }
        next = range.end;
    }
    if next < num_rows {
        outside.push(next..num_rows);
    }
    outside
}

/// A block's objects, encoded but not yet stored.
pub(crate) struct EncodedBlock {
    data: Bytes,
    index_bytes: Vec<u8>,
    index: BlockIndex,
    /// The attribute index and its bytes, when keys are indexed.
    attrs_opt: Option<(AttrIndex, Vec<u8>)>,
    meta: BlockMeta,
}

/// Sorts `spans` into block order, drops repeated ones (same [`Span::identity`]) and encodes
/// them as a new block with a fresh ID. CPU-bound: call it on the blocking pool.
pub(crate) fn encode_block<S: Borrow<Span>>(
    options: &BlockStoreOptions,
    spans: Vec<S>,
    level: u32,
) -> Result<EncodedBlock, BlockError> {
    if spans.is_empty() {
        return Err(BlockError::EmptyBlock);
    }
    let created_unix_nanos = now_unix_nanos();
    let id = new_block_id(created_unix_nanos / 1_000_000);
    let clustered = cluster_order(spans);
    let properties = writer_properties(options.row_group_rows, options.page_rows, options.zstd_level);
    let mut writer = BlockWriter::new(id, level, Vec::new(), properties, &options.indexed_attribute_keys)?;
    for (name, range) in &clustered.clusters {
        writer.write(name, &clustered.spans[range.clone()])?;
    }
    drop(clustered);
    let finished = writer.finish(created_unix_nanos)?;
    let index_bytes = finished.index.encode();
    let attrs_opt = match finished.attrs_opt {
        Some(attrs) => {
            let corrupt = |e: super::attrs::AttrsError| BlockError::Corrupt {
                block_id: finished.meta.id.clone(),
                reason: e.to_string(),
            };
            let bytes = attrs.encode(&finished.index).map_err(corrupt)?;
            Some((attrs, bytes))
        }
        None => None,
    };
    Ok(EncodedBlock {
        data: Bytes::from(finished.sink),
        index_bytes,
        index: finished.index,
        attrs_opt,
        meta: finished.meta,
    })
}

impl fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockStore").field("store", &self.store.to_string()).field("prefix", &self.prefix).finish()
    }
}

impl BlockStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        BlockStore::with_options(store, prefix, BlockStoreOptions::default())
    }

    pub fn with_options(store: Arc<dyn ObjectStore>, prefix: Path, options: BlockStoreOptions) -> Self {
        BlockStore {
            store,
            prefix,
            footers: Arc::new(BlockCache::new(options.footer_cache_bytes)),
            indexes: Arc::new(BlockCache::new(options.index_cache_bytes)),
            attrs: Arc::new(BlockCache::new(options.attrs_cache_bytes)),
            options: Arc::new(options),
        }
    }

    /// A store in a local directory (created if missing), with fsync on every write so a
    /// committed manifest and its blocks survive a power loss.
    pub fn local(dir: &std::path::Path) -> Result<Self, BlockError> {
        BlockStore::local_with_options(dir, BlockStoreOptions::default())
    }

    pub fn local_with_options(dir: &std::path::Path, options: BlockStoreOptions) -> Result<Self, BlockError> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true).with_automatic_cleanup(true);
        Ok(BlockStore::with_options(Arc::new(store), Path::default(), options))
    }

    pub fn options(&self) -> &BlockStoreOptions {
        &self.options
    }

    fn block_dir(&self, id: &str) -> Path {
        self.prefix.clone().join("blocks").join(id)
    }

    pub(crate) fn data_path(&self, id: &str) -> Path {
        self.block_dir(id).join("data.parquet")
    }

    pub(crate) fn index_path(&self, id: &str) -> Path {
        self.block_dir(id).join("index.bin")
    }

    pub(crate) fn attrs_path(&self, id: &str) -> Path {
        self.block_dir(id).join("attrs.bin")
    }

    /// Sorts `spans`, drops repeated ones (same [`Span::identity`]), and stores them as a new
    /// block. The block is not live until a manifest listing it is committed.
    pub async fn write_block(&self, spans: Vec<Span>, level: u32) -> Result<BlockMeta, BlockError> {
        let options = self.options.clone();
        let encoded = tokio::task::spawn_blocking(move || encode_block(&options, spans, level)).await??;
        self.put_block(encoded).await
    }

    /// Stores a block made by [`encode_block`] and returns its metadata.
    pub(crate) async fn put_block(&self, encoded: EncodedBlock) -> Result<BlockMeta, BlockError> {
        let EncodedBlock { data, index_bytes, index, attrs_opt, mut meta } = encoded;
        let (attrs_opt, attrs_bytes) = match attrs_opt {
            Some((attrs, bytes)) => (Some(attrs), Some(bytes)),
            None => (None, None),
        };
        let attrs_len = attrs_bytes.as_ref().map_or(0, Vec::len);
        meta.size_bytes = (data.len() + index_bytes.len() + attrs_len) as u64;
        let data_path = self.data_path(&meta.id);
        let index_path = self.index_path(&meta.id);
        let attrs_path = self.attrs_path(&meta.id);
        let put_attrs = async {
            match attrs_bytes {
                Some(bytes) => self.store.put(&attrs_path, PutPayload::from(bytes)).await.map(|_| ()),
                None => Ok(()),
            }
        };
        futures::try_join!(
            self.store.put(&data_path, PutPayload::from(data)),
            self.store.put(&index_path, PutPayload::from(index_bytes)),
            put_attrs,
        )?;
        self.cache_index(&meta.id, Arc::new(index));
        self.cache_attrs(&meta.id, attrs_opt.map(Arc::new));
        Ok(meta)
    }

    pub(crate) fn cache_attrs(&self, id: &str, attrs_opt: Option<Arc<AttrIndex>>) {
        let size = attrs_opt.as_ref().map_or(0, |attrs| attrs.memory_size()) + std::mem::size_of::<usize>();
        self.attrs.insert(id, attrs_opt, size);
    }

    /// The block's attribute index (see `attrs`), from the cache or the object store;
    /// `None` when the block has none (written before attribute indexes existed, or with no
    /// key indexed).
    pub async fn attr_index(&self, meta: &BlockMeta) -> Result<Option<Arc<AttrIndex>>, BlockError> {
        if let Some(attrs_opt) = self.attrs.get(&meta.id) {
            return Ok(attrs_opt);
        }
        let bytes = match self.store.get(&self.attrs_path(&meta.id)).await {
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                self.cache_attrs(&meta.id, None);
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        // Its traces are named by their place in the trace-ID index.
        let index = self.index(meta).await?;
        let block_id = meta.id.clone();
        let attrs = tokio::task::spawn_blocking(move || AttrIndex::decode(&bytes, &index))
            .await?
            .map_err(|e| BlockError::Corrupt { block_id, reason: e.to_string() })?;
        let attrs = Arc::new(attrs);
        self.cache_attrs(&meta.id, Some(attrs.clone()));
        Ok(Some(attrs))
    }

    pub(crate) fn cache_index(&self, id: &str, index: Arc<BlockIndex>) {
        let size = index.memory_size();
        self.indexes.insert(id, index, size);
    }

    /// The block's trace-ID index, from the cache or the object store.
    pub async fn index(&self, meta: &BlockMeta) -> Result<Arc<BlockIndex>, BlockError> {
        if let Some(index) = self.indexes.get(&meta.id) {
            return Ok(index);
        }
        let bytes = self.store.get(&self.index_path(&meta.id)).await?.bytes().await?;
        let block_id = meta.id.clone();
        let index = tokio::task::spawn_blocking(move || BlockIndex::decode(&bytes))
            .await?
            .map_err(|e| BlockError::Corrupt { block_id, reason: e.to_string() })?;
        let index = Arc::new(index);
        self.cache_index(&meta.id, index.clone());
        Ok(index)
    }

    /// Loads the block's trace-ID index, attribute index (when the store indexes attribute
    /// keys) and parsed footer into the caches.
    pub async fn warm(&self, meta: &BlockMeta) -> Result<(), BlockError> {
        self.index(meta).await?;
        if !self.options.indexed_attribute_keys.is_empty() {
            self.attr_index(meta).await?;
        }
        self.open(meta).await?;
        Ok(())
    }

    /// Whether the block's parsed footer is cached.
    #[cfg(test)]
    pub(crate) fn footer_cached(&self, meta: &BlockMeta) -> bool {
        self.footers.get(&meta.id).is_some()
    }

    /// The block's parsed footer, from the cache or the object store.
    pub(crate) async fn open(&self, meta: &BlockMeta) -> Result<OpenedBlock, BlockError> {
        if let Some(opened) = self.footers.get(&meta.id) {
            return Ok(opened);
        }
        let opened = reader::open(self.store.as_ref(), &self.data_path(&meta.id)).await?;
        self.footers.insert(&meta.id, opened.clone(), opened.memory_size());
        Ok(opened)
    }

    /// The spans of one trace in this block, in block order; empty if the block has none.
    /// Reads only the pages holding the trace's rows.
    pub async fn read_trace(&self, meta: &BlockMeta, trace_id: TraceId) -> Result<Vec<Span>, BlockError> {
        self.read_traces(meta, &[trace_id]).await
    }

    /// The spans of the traces `ids` held in this block, in block order: one read of the pages
    /// holding any of their rows. Empty when the block holds none of them.
    pub async fn read_traces(&self, meta: &BlockMeta, ids: &[TraceId]) -> Result<Vec<Span>, BlockError> {
        let index = self.index(meta).await?;
        let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
        let mut wanted: Vec<TraceId> = Vec::new();
        for id in ids {
            let before = ranges.len();
            ranges.extend(index.lookup(id));
            if ranges.len() > before {
                wanted.push(*id);
            }
        }
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        ranges.sort_unstable_by_key(|range| range.start);
        ranges.dedup();
        wanted.sort_unstable();
        wanted.dedup();
        let opened = self.open(meta).await?;
        let plan = ReadPlan::rows_in(opened.metadata(), &ranges);
        let file = reader::fetch(self.store.as_ref(), &self.data_path(&meta.id), &opened, &plan).await?;
        let filter = match wanted.as_slice() {
            [one] => RowFilter::Trace(*one),
            _ => RowFilter::Traces(wanted.into()),
        };
        self.decode(meta, file, opened, plan, filter).await
    }

    /// The spans in rows `rows` (sorted, disjoint) of the block, in block order.
    pub(crate) async fn read_rows(
        &self,
        meta: &BlockMeta,
        opened: &OpenedBlock,
        rows: &[Range<u64>],
    ) -> Result<Vec<Span>, BlockError> {
        let plan = ReadPlan::rows_in(opened.metadata(), rows);
        let file = reader::fetch(self.store.as_ref(), &self.data_path(&meta.id), opened, &plan).await?;
        self.decode(meta, file, opened.clone(), plan, RowFilter::All).await
    }

    /// Every span of the block, in block order (one request for the whole file).
    pub async fn read_spans(&self, meta: &BlockMeta) -> Result<Vec<Span>, BlockError> {
        let (file, opened, plan) = self.whole_file(meta).await?;
        self.decode(meta, file, opened, plan, RowFilter::All).await
    }

    /// Calls `f` on the spans of the block `rows` chooses as [`SearchRow`]s, in block order,
    /// with `matched` telling whether the span satisfies `query`'s span conditions. Only the
    /// columns the query needs are fetched and decoded (no events, links or scopes; the
    /// attribute columns only with attribute filters), one batch at a time. Returns the final
    /// `state` and the rows not read, which hold no span of the query's service.
    pub async fn fold_search_rows<S, F>(
        &self,
        meta: &BlockMeta,
        query: Arc<SearchQuery>,
        rows: SearchRows,
        state: S,
        mut f: F,
    ) -> Result<(S, Vec<Range<u64>>), BlockError>
    where
        S: Send + 'static,
        F: FnMut(&mut S, SearchRow<'_>) + Send + 'static,
    {
        let opened = self.open(meta).await?;
        let corrupt = |reason: String| BlockError::Corrupt { block_id: meta.id.clone(), reason };
        let num_rows = opened.metadata().file_metadata().num_rows() as u64;
        let (plan, skipped) = match (rows, query.service.as_deref()) {
            (SearchRows::Listed(ranges), _) => (ReadPlan::rows_in(opened.metadata(), &ranges), Vec::new()),
            (SearchRows::OfQuery, Some(service)) => {
                let read = Clusters::of(&opened).map_err(corrupt)?.rows_with_service(service);
                let skipped = complement(&read, num_rows);
                match skipped.is_empty() {
                    true => (ReadPlan::row_groups((0..opened.metadata().num_row_groups()).collect()), skipped),
                    false => (ReadPlan::rows_in(opened.metadata(), &read), skipped),
                }
            }
            (SearchRows::OfQuery, None) => {
                (ReadPlan::row_groups((0..opened.metadata().num_row_groups()).collect()), Vec::new())
            }
        };
        if plan.is_empty() {
            return Ok((state, skipped));
        }
        let search = search_scan::plan(&opened, &query)?;
        let path = self.data_path(&meta.id);
        let file = reader::fetch_projected(self.store.as_ref(), &path, &search.opened, &plan, &search.fetch).await?;
        let batch_rows = self.options.read_batch_rows;
        let block_id = meta.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = state;
            match search_scan::scan(file, search, &plan, batch_rows, &query, |row| f(&mut state, row)) {
                Ok(()) => Ok((state, skipped)),
                Err(ScanError::Read(error)) => Err(error),
                Err(ScanError::Corrupt(reason)) => Err(BlockError::Corrupt { block_id, reason }),
            }
        })
        .await?
    }

    /// The whole data file in one request, its parsed footer and a plan to read every row.
    async fn whole_file(&self, meta: &BlockMeta) -> Result<(SparseFile, OpenedBlock, ReadPlan), BlockError> {
        let bytes = self.store.get(&self.data_path(&meta.id)).await?.bytes().await?;
        let opened = match self.footers.get(&meta.id) {
            Some(opened) => opened,
            None => {
                let for_parse = bytes.clone();
                let opened = tokio::task::spawn_blocking(move || {
                    let metadata = ParquetMetaDataReader::new()
                        .with_page_index_policy(PageIndexPolicy::Optional)
                        .parse_and_finish(&for_parse)?;
                    let arrow = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())?;
                    Ok::<_, BlockError>(OpenedBlock { arrow, file_size: for_parse.len() as u64 })
                })
                .await??;
                self.footers.insert(&meta.id, opened.clone(), opened.memory_size());
                opened
            }
        };
        let plan = ReadPlan::row_groups((0..opened.metadata().num_row_groups()).collect());
        Ok((SparseFile::whole(bytes), opened, plan))
    }

    /// The spans of the block that start in `[start_unix_nanos, end_unix_nanos]`, in block
    /// order. Row groups whose `start_unix_nanos` statistics miss the range are not read.
    pub async fn read_spans_in_range(
        &self,
        meta: &BlockMeta,
        start_unix_nanos: u64,
        end_unix_nanos: u64,
    ) -> Result<Vec<Span>, BlockError> {
        if start_unix_nanos > end_unix_nanos || !meta.overlaps_start_range(start_unix_nanos, end_unix_nanos) {
            return Ok(Vec::new());
        }
        let opened = self.open(meta).await?;
        let row_groups = reader::row_groups_overlapping_start(&opened, start_unix_nanos, end_unix_nanos)?;
        let plan = ReadPlan::row_groups(row_groups);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let file = reader::fetch(self.store.as_ref(), &self.data_path(&meta.id), &opened, &plan).await?;
        self.decode(meta, file, opened, plan, RowFilter::StartRange(start_unix_nanos, end_unix_nanos)).await
    }

    async fn decode(
        &self,
        meta: &BlockMeta,
        file: SparseFile,
        opened: OpenedBlock,
        plan: ReadPlan,
        filter: RowFilter,
    ) -> Result<Vec<Span>, BlockError> {
        let batch_rows = self.options.read_batch_rows;
        let block_id = meta.id.clone();
        tokio::task::spawn_blocking(move || {
            let batches = reader::batch_reader(file, &opened, &plan, batch_rows)?;
            let mut decoder = SpanDecoder::default();
            let mut spans = Vec::new();
            for batch in batches {
                decoder
                    .decode(&batch?, &filter, &mut spans)
                    .map_err(|reason| BlockError::Corrupt { block_id: block_id.clone(), reason })?;
            }
            Ok(spans)
        })
        .await?
    }

    /// Sorted distinct (service name, span name, span kind) of this block, from the footer (a
    /// block with very many records only the first 10,000).
    pub async fn operations(&self, meta: &BlockMeta) -> Result<Vec<(String, String, i32)>, BlockError> {
        let opened = self.open(meta).await?;
        let text = opened
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|pairs| pairs.iter().find(|kv| kv.key == META_OPERATIONS))
            .and_then(|kv| kv.value.clone())
            .unwrap_or_else(|| "{}".to_owned());
        serde_json::from_str(&text)
            .map_err(|e| BlockError::Corrupt { block_id: meta.id.clone(), reason: e.to_string() })
    }

    /// Deletes the block's objects (missing ones are fine). Call only after a committed
    /// manifest no longer lists it.
    pub async fn delete_block(&self, meta: &BlockMeta) -> Result<(), BlockError> {
        self.delete_block_id(&meta.id).await
    }

    /// Like [`BlockStore::delete_block`], by ID (for garbage found by [`BlockStore::list_block_ids`]).
    pub async fn delete_block_id(&self, id: &str) -> Result<(), BlockError> {
        self.footers.remove(id);
        self.indexes.remove(id);
        self.attrs.remove(id);
        for path in [self.attrs_path(id), self.index_path(id), self.data_path(id)] {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// IDs of every block with objects in the store, live or not, sorted. Names that are not
    /// block IDs (hidden files, other tools' leftovers) are ignored. A block that was just
    /// written and is not committed yet is unlisted too: collect garbage only among IDs older
    /// than a grace period (see [`block_id_created_unix_millis`](super::block_id_created_unix_millis)).
    pub async fn list_block_ids(&self) -> Result<Vec<String>, BlockError> {
        let dir = self.prefix.clone().join("blocks");
        let objects: Vec<_> = self.store.list(Some(&dir)).try_collect().await?;
        let mut ids: Vec<String> = objects
            .iter()
            .filter_map(|object| object.location.prefix_match(&dir)?.next().map(|part| part.as_ref().to_owned()))
            .filter(|name| is_block_id(name))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The latest manifest, or an empty one (version 0) when none was committed.
    pub async fn load_manifest(&self) -> Result<Manifest, BlockError> {
        manifest::load_latest(self.store.as_ref(), &self.prefix).await
    }

    /// Commits `manifest` as version `manifest.version + 1`; [`BlockError::ManifestConflict`]
    /// if another writer committed that version first. Returns the committed manifest.
    pub async fn commit_manifest(&self, manifest: &Manifest) -> Result<Manifest, BlockError> {
        manifest::commit(self.store.as_ref(), &self.prefix, manifest, self.options.manifest_versions_kept).await
    }

    /// Loads the latest manifest, lets `change` derive the next one (`None`: nothing to do)
    /// and commits it, reloading and retrying on conflicts up to `max_attempts` times.
    pub async fn update_manifest<F>(&self, max_attempts: usize, mut change: F) -> Result<Manifest, BlockError>
    where
        F: FnMut(&Manifest) -> Option<Manifest>,
    {
        let mut last_conflict = BlockError::ManifestConflict { version: 0 };
        for _ in 0..max_attempts.max(1) {
            let current = self.load_manifest().await?;
            let Some(next) = change(&current) else {
                return Ok(current);
            };
            let next = Manifest { version: current.version, ..next };
            match self.commit_manifest(&next).await {
                Err(conflict @ BlockError::ManifestConflict { .. }) => last_conflict = conflict,
                other => return other,
            }
        }
        Err(last_conflict)
    }

    /// Merges `inputs` into new blocks at level `max(input levels) + 1`, keeping each span
    /// identity (trace ID, span ID, kind) once, split by trace start into blocks of at most
    /// `max_output_spans` spans that do not overlap in trace start. Does not touch the
    /// manifest: commit `manifest.apply(input ids, outputs)`, then delete the inputs.
    pub async fn compact(&self, inputs: &[BlockMeta], max_output_spans: u64) -> Result<Vec<BlockMeta>, BlockError> {
        super::merge::compact(self, inputs, max_output_spans).await
    }

    /// Every run of the block (see `index`) with its rows and earliest start, read from the
    /// trace-ID index and the start column (a run's first row is its earliest span).
    pub(crate) async fn trace_starts(
        &self,
        meta: &BlockMeta,
        opened: &OpenedBlock,
    ) -> Result<Vec<(TraceId, Range<u64>, u64)>, BlockError> {
        let index = self.index(meta).await?;
        let schema = opened.arrow.parquet_schema();
        let leaves = schema.columns().iter().position(|c| c.path().parts() == [START_UNIX_NANOS]);
        let Some(leaf) = leaves else {
            return Err(BlockError::Corrupt { block_id: meta.id.clone(), reason: "no start column".into() });
        };
        let projection = ProjectionMask::leaves(schema, [leaf]);
        let plan = ReadPlan::row_groups((0..opened.metadata().num_row_groups()).collect());
        let path = self.data_path(&meta.id);
        let file = reader::fetch_projected(self.store.as_ref(), &path, opened, &plan, &projection).await?;
        let (opened, batch_rows, block_id) = (opened.clone(), self.options.read_batch_rows, meta.id.clone());
        let starts = tokio::task::spawn_blocking(move || {
            let mut starts: Vec<u64> = Vec::with_capacity(opened.metadata().file_metadata().num_rows() as usize);
            for batch in reader::projected_batch_reader(file, &opened, &plan, batch_rows, Some(projection))? {
                let batch = batch?;
                let column = batch.column(0).as_primitive_opt::<UInt64Type>();
                let column = column.ok_or_else(|| BlockError::Corrupt {
                    block_id: block_id.clone(),
                    reason: "start column is not UInt64".into(),
                })?;
                starts.extend_from_slice(column.values());
            }
            Ok::<_, BlockError>(starts)
        })
        .await??;
        index
            .runs()
            .map(|(trace_id, rows)| match starts.get(rows.start as usize) {
                Some(&start) => Ok((*trace_id, rows, start)),
                None => Err(BlockError::Corrupt {
                    block_id: meta.id.clone(),
                    reason: format!("index rows beyond the data ({} rows)", starts.len()),
                }),
            })
            .collect()
    }
}
