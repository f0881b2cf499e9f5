//! The engine: one owner for the WAL, the head, the blocks and the manifest.
//!
//! ```text
//! append(spans) ──encode──> WAL (group-committed fsync) ──> head.active ──> acknowledged
//!                                                               │ flush (size, age, shutdown)
//!                                                               v
//!                          head.frozen ──write_block──> blocks/{id}/ ──commit──> manifest
//!                                                                                (+ WAL checkpoint)
//! maintenance: flush when due · compaction (merge small blocks, drop duplicates) · retention
//! ```
//!
//! Invariants:
//! - a span is in the head only after its WAL record is committed, and its WAL segment is
//!   removed only after a manifest that lists a block holding it is committed
//!   (`wal_checkpoint_seq`), so a crash at any point loses nothing acknowledged;
//! - appends hold `append_gate` for reading from WAL append to head insert; a flush takes it
//!   for writing while it rotates the WAL and freezes the head, so the frozen part holds
//!   exactly the records below the checkpoint;
//! - `manifest_lock` serializes everything that changes the manifest (flush, compaction,
//!   retention); readers take an `Arc<Manifest>` snapshot and never wait;
//! - blocks removed from the manifest are deleted only a grace period later, so a reader
//!   holding an older snapshot can still read them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{Span, SpanKind, TraceId};
use tracing::{info, warn};

use crate::block::{BlockError, BlockMeta, BlockStore, Manifest, compaction, retention};
use crate::head::Head;
use crate::search::{Cursor, SearchQuery, SearchResult, TraceSummary, merge_trace_spans, sort_newest_first};
use crate::wal::{Wal, WalError, WalMetrics, WalOptions};

/// Defaults of [`EngineOptions`].
pub const DEFAULT_HEAD_MAX_SPANS: usize = 1_000_000;
pub const DEFAULT_HEAD_MAX_BYTES: usize = 512 * 1024 * 1024;
pub const DEFAULT_HEAD_MAX_AGE: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(60);
/// How long a block removed from the manifest stays readable for older snapshots.
pub const BLOCK_DELETE_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub data_dir: PathBuf,
    pub wal: WalOptions,
    /// Flush the head to a block when it holds this many spans…
    pub head_max_spans: usize,
    /// …or this many bytes…
    pub head_max_bytes: usize,
    /// …or when its oldest span arrived this long ago.
    pub head_max_age: Duration,
    /// Blocks whose newest span is older than this are deleted.
    pub retention: Duration,
    /// Oldest blocks are deleted while all blocks together exceed this size.
    pub max_total_bytes: Option<u64>,
    pub compaction: compaction::CompactionPolicy,
    pub compaction_interval: Duration,
}

impl EngineOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineOptions {
        EngineOptions {
            data_dir: data_dir.into(),
            wal: WalOptions::default(),
            head_max_spans: DEFAULT_HEAD_MAX_SPANS,
            head_max_bytes: DEFAULT_HEAD_MAX_BYTES,
            head_max_age: DEFAULT_HEAD_MAX_AGE,
            retention: DEFAULT_RETENTION,
            max_total_bytes: None,
            compaction: compaction::CompactionPolicy::default(),
            compaction_interval: DEFAULT_COMPACTION_INTERVAL,
        }
    }

    /// Above this the head refuses appends until a flush catches up: memory stays bounded.
    fn head_hard_limit_bytes(&self) -> usize {
        self.head_max_bytes.saturating_mul(2)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("write-ahead log: {0}")]
    Wal(#[from] WalError),
    #[error("block storage: {0}")]
    Block(#[from] BlockError),
    #[error("overloaded: the head holds {head_bytes} bytes waiting to be flushed")]
    Overloaded { head_bytes: usize },
    #[error("corrupt write-ahead log record {seq}: {message}")]
    CorruptRecord { seq: u64, message: String },
}

/// The engine's own metrics; the WAL's are in `wal`.
#[derive(Clone, Debug, Default)]
pub struct EngineMetrics {
    pub wal: WalMetrics,
    head_spans: Gauge,
    head_traces: Gauge,
    head_bytes: Gauge,
    blocks: Gauge,
    block_bytes: Gauge,
    flushes: Counter,
    flush_failures: Counter,
    compactions: Counter,
    compaction_failures: Counter,
    blocks_deleted_by_retention: Counter,
    replayed_spans: Counter,
}

impl EngineMetrics {
    pub fn register(&self, registry: &mut Registry) {
        self.wal.register(registry);
        let r = registry.sub_registry_with_prefix("sextant");
        r.register("head_spans", "Spans in the head (not yet in a block)", self.head_spans.clone());
        r.register("head_traces", "Traces in the head", self.head_traces.clone());
        r.register("head_bytes", "Approximate memory held by head spans", self.head_bytes.clone());
        r.register("blocks", "Blocks in the manifest", self.blocks.clone());
        r.register("block_bytes", "Bytes of all blocks in the manifest", self.block_bytes.clone());
        r.register("head_flushes", "Head flushes to blocks", self.flushes.clone());
        r.register("head_flush_failures", "Head flushes that failed and will be retried", self.flush_failures.clone());
        r.register("compactions", "Compactions completed", self.compactions.clone());
        r.register("compaction_failures", "Compactions that failed", self.compaction_failures.clone());
        r.register("retention_deleted_blocks", "Blocks deleted by retention", self.blocks_deleted_by_retention.clone());
        r.register("wal_replayed_spans", "Spans replayed from the WAL at start", self.replayed_spans.clone());
    }
}

/// Services and their operations (span name and kind), for the pickers of query APIs.
#[derive(Debug, Default)]
struct Catalog {
    operations: BTreeMap<String, BTreeSet<(String, SpanKind)>>,
}

impl Catalog {
    fn add_spans<'a>(&mut self, spans: impl IntoIterator<Item = &'a Span>) {
        for span in spans {
            let service = span.service_name();
            let key = (span.name.clone(), span.kind);
            match self.operations.get_mut(service) {
                Some(ops) => {
                    if !ops.contains(&key) {
                        ops.insert(key);
                    }
                }
                None => {
                    self.operations.insert(service.to_string(), BTreeSet::from([key]));
                }
            }
        }
    }
}

pub struct Engine {
    options: EngineOptions,
    wal: Wal,
    head: RwLock<Head>,
    blocks: BlockStore,
    manifest: RwLock<Arc<Manifest>>,
    manifest_lock: tokio::sync::Mutex<()>,
    append_gate: tokio::sync::RwLock<()>,
    catalog: RwLock<Catalog>,
    pending_deletes: Mutex<Vec<(Instant, BlockMeta)>>,
    last_compaction: Mutex<Instant>,
    metrics: EngineMetrics,
}

/// Deletes blocks that no manifest lists: written by a flush or compaction that stopped
/// before its manifest commit. Only safe while nothing else writes to the store, at open.
async fn remove_unlisted_blocks(blocks: &BlockStore, manifest: &Manifest) {
    let listed: BTreeSet<&str> = manifest.blocks.iter().map(|b| b.id.as_str()).collect();
    let ids = match blocks.list_block_ids().await {
        Ok(ids) => ids,
        Err(error) => return warn!(%error, "cannot list blocks to remove unfinished ones"),
    };
    for id in ids.iter().filter(|id| !listed.contains(id.as_str())) {
        match blocks.delete_block_id(id).await {
            Ok(()) => info!(block = %id, "removed a block no manifest lists (an interrupted flush or compaction)"),
            Err(error) => warn!(%error, block = %id, "cannot remove an unlisted block"),
        }
    }
}

pub fn now_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl Engine {
    /// Opens the data directory: loads the manifest, replays the WAL records the manifest
    /// does not cover into the head.
    pub async fn open(options: EngineOptions, metrics: EngineMetrics) -> Result<Arc<Engine>, EngineError> {
        let blocks = BlockStore::local(&options.data_dir.join("store"))?;
        let manifest = blocks.load_manifest().await?;
        remove_unlisted_blocks(&blocks, &manifest).await;
        let started = Instant::now();
        let (wal, replay) = Wal::open(&options.data_dir.join("wal"), options.wal.clone(), metrics.wal.clone())?;
        let mut head = Head::default();
        let mut catalog = Catalog::default();
        let mut replayed = 0u64;
        for record in replay {
            let (seq, payload) = record?;
            if seq < manifest.wal_checkpoint_seq {
                continue;
            }
            let spans = sextant_codec::decode_spans(&payload)
                .map_err(|e| EngineError::CorruptRecord { seq, message: e.to_string() })?;
            replayed += spans.len() as u64;
            catalog.add_spans(&spans);
            head.insert(spans);
        }
        metrics.replayed_spans.inc_by(replayed);
        if replayed > 0 {
            info!(num_spans = replayed, elapsed_ms = started.elapsed().as_millis() as u64, "replayed write-ahead log");
        }
        for meta in &manifest.blocks {
            for (service, name, kind) in &meta.operations {
                catalog
                    .operations
                    .entry(service.clone())
                    .or_default()
                    .insert((name.clone(), SpanKind::from_i32(*kind)));
            }
        }
        let engine = Engine {
            options,
            wal,
            head: RwLock::new(head),
            blocks,
            manifest: RwLock::new(Arc::new(manifest)),
            manifest_lock: tokio::sync::Mutex::new(()),
            append_gate: tokio::sync::RwLock::new(()),
            catalog: RwLock::new(catalog),
            pending_deletes: Mutex::new(Vec::new()),
            last_compaction: Mutex::new(Instant::now()),
            metrics,
        };
        engine.update_gauges();
        Ok(Arc::new(engine))
    }

    /// Makes spans durable and queryable. Returns once they are committed to the WAL.
    pub async fn append(&self, spans: Vec<Span>) -> Result<(), EngineError> {
        if spans.is_empty() {
            return Ok(());
        }
        let head_bytes = self.head.read().size_bytes();
        if head_bytes > self.options.head_hard_limit_bytes() {
            return Err(EngineError::Overloaded { head_bytes });
        }
        let payload = Bytes::from(sextant_codec::encode_spans(&spans));
        let _gate = self.append_gate.read().await;
        self.wal.append(payload).await?;
        self.catalog.write().add_spans(&spans);
        let mut head = self.head.write();
        head.insert(spans);
        self.metrics.head_spans.set(head.num_spans() as i64);
        self.metrics.head_bytes.set(head.size_bytes() as i64);
        Ok(())
    }

    /// Every span of a trace, from the head and every block, one copy each, by start time.
    pub async fn trace(&self, trace_id: TraceId) -> Result<Vec<Span>, EngineError> {
        let mut spans: Vec<Span> = {
            let head = self.head.read();
            head.parts().filter_map(|part| part.trace(&trace_id)).flatten().cloned().collect()
        };
        let manifest = self.manifest_snapshot();
        for meta in &manifest.blocks {
            spans.extend(self.blocks.read_trace(meta, trace_id).await?);
        }
        Ok(merge_trace_spans(spans))
    }

    /// Finds traces matching `query`, newest first. See [`crate::search`] for semantics.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResult, EngineError> {
        #[derive(Clone, Copy)]
        struct Seen {
            min_start: u64,
            max_end: u64,
            matched: bool,
        }
        fn observe(seen: &mut HashMap<TraceId, Seen>, query: &SearchQuery, span: &Span) {
            let entry = seen.entry(span.trace_id).or_insert(Seen { min_start: u64::MAX, max_end: 0, matched: false });
            entry.min_start = entry.min_start.min(span.start_unix_nanos);
            entry.max_end = entry.max_end.max(span.end_unix_nanos);
            entry.matched |= query.span_matches(span);
        }

        let mut seen: HashMap<TraceId, Seen> = HashMap::new();
        {
            let head = self.head.read();
            for span in head.parts().flat_map(|part| part.spans()) {
                observe(&mut seen, query, span);
            }
        }
        let manifest = self.manifest_snapshot();
        let range_start = query.start_unix_nanos.unwrap_or(0);
        let range_end = query.end_unix_nanos.unwrap_or(u64::MAX);
        for meta in &manifest.blocks {
            let overlaps = meta.max_start_unix_nanos >= range_start && meta.min_start_unix_nanos <= range_end;
            let has_service = query.service.as_ref().is_none_or(|s| meta.services.iter().any(|m| m == s));
            if !overlaps || !has_service {
                continue;
            }
            let spans = if query.start_unix_nanos.is_some() || query.end_unix_nanos.is_some() {
                self.blocks.read_spans_in_range(meta, range_start, range_end).await?
            } else {
                self.blocks.read_spans(meta).await?
            };
            for span in &spans {
                observe(&mut seen, query, span);
            }
        }

        let mut candidates: Vec<(u64, TraceId)> = seen
            .into_iter()
            .filter(|(id, s)| s.matched && query.trace_matches(s.min_start, s.max_end, id))
            .map(|(id, s)| (s.min_start, id))
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

        let limit = query.effective_limit();
        let mut traces: Vec<TraceSummary> = Vec::with_capacity(limit.min(candidates.len()));
        let mut more = false;
        for (_, trace_id) in candidates {
            if traces.len() == limit {
                more = true;
                break;
            }
            let spans = self.trace(trace_id).await?;
            if let Some(summary) = TraceSummary::of(trace_id, &spans) {
                let end = summary.start_unix_nanos + summary.duration_nanos;
                if query.trace_matches(summary.start_unix_nanos, end, &trace_id) {
                    traces.push(summary);
                }
            }
        }
        sort_newest_first(&mut traces);
        let next_cursor = if more {
            traces.last().map(|t| Cursor { start_unix_nanos: t.start_unix_nanos, trace_id: t.trace_id })
        } else {
            None
        };
        Ok(SearchResult { traces, next_cursor })
    }

    /// Every service that sent spans, sorted.
    pub fn services(&self) -> Vec<String> {
        self.catalog.read().operations.keys().cloned().collect()
    }

    /// The operations (span name, kind) of a service, sorted; `None` for an unknown service.
    pub fn operations(&self, service: &str) -> Option<Vec<(String, SpanKind)>> {
        self.catalog.read().operations.get(service).map(|ops| ops.iter().cloned().collect())
    }

    pub fn manifest_snapshot(&self) -> Arc<Manifest> {
        self.manifest.read().clone()
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }

    /// Whether the head is due for a flush by size or age.
    fn flush_due(&self) -> bool {
        let head = self.head.read();
        let active = head.active();
        !active.is_empty()
            && (active.num_spans() >= self.options.head_max_spans
                || active.size_bytes() >= self.options.head_max_bytes
                || active.age().is_some_and(|age| age >= self.options.head_max_age))
    }

    /// Writes the head to a block, commits it to the manifest with the WAL checkpoint, then
    /// removes the WAL segments the block covers. A no-op on an empty head.
    pub async fn flush(&self) -> Result<(), EngineError> {
        let _manifest_guard = self.manifest_lock.lock().await;
        let (checkpoint_seq, frozen) = {
            let _gate = self.append_gate.write().await;
            if self.head.read().active().is_empty() {
                return Ok(());
            }
            let checkpoint_seq = self.wal.rotate().await?;
            let frozen = self.head.write().freeze().expect("flushes are serialized by the manifest lock");
            (checkpoint_seq, frozen)
        };
        let spans: Vec<Span> = frozen.spans().cloned().collect();
        let num_spans = spans.len();
        drop(frozen);
        let committed = async {
            let meta = self.blocks.write_block(spans, 0).await?;
            let manifest = self.manifest_snapshot();
            let mut next = manifest.apply(&[], vec![meta.clone()]);
            next.wal_checkpoint_seq = checkpoint_seq;
            let committed = self.blocks.commit_manifest(&next).await?;
            Ok::<_, EngineError>((meta, committed))
        }
        .await;
        match committed {
            Ok((meta, manifest)) => {
                *self.manifest.write() = Arc::new(manifest);
                self.head.write().release_frozen();
                self.wal.remove_segments_before(checkpoint_seq)?;
                self.metrics.flushes.inc();
                info!(block = %meta.id, num_spans, size_bytes = meta.size_bytes, "flushed head to block");
                self.update_gauges();
                Ok(())
            }
            Err(error) => {
                self.head.write().thaw();
                self.metrics.flush_failures.inc();
                warn!(%error, num_spans, "head flush failed; spans stay in the head and the log");
                Err(error)
            }
        }
    }

    /// Merges small blocks as the compaction policy says; duplicates are dropped.
    pub async fn compact(&self) -> Result<usize, EngineError> {
        let _manifest_guard = self.manifest_lock.lock().await;
        let jobs = compaction::plan(&self.manifest_snapshot().blocks, &self.options.compaction);
        let mut done = 0;
        for job in jobs {
            let manifest = self.manifest_snapshot();
            let inputs: Vec<BlockMeta> = manifest.blocks.iter().filter(|b| job.contains(&b.id)).cloned().collect();
            if inputs.len() < 2 {
                continue;
            }
            let result = async {
                let merged = self.blocks.compact(&inputs).await?;
                let next = manifest.apply(&job, vec![merged.clone()]);
                let committed = self.blocks.commit_manifest(&next).await?;
                Ok::<_, EngineError>((merged, committed))
            }
            .await;
            match result {
                Ok((merged, committed)) => {
                    *self.manifest.write() = Arc::new(committed);
                    self.schedule_deletes(inputs);
                    self.metrics.compactions.inc();
                    info!(block = %merged.id, num_inputs = job.len(), num_spans = merged.num_spans, "compacted blocks");
                    done += 1;
                }
                Err(error) => {
                    self.metrics.compaction_failures.inc();
                    warn!(%error, "compaction failed");
                    return Err(error);
                }
            }
        }
        self.update_gauges();
        Ok(done)
    }

    /// Removes blocks past the retention age or beyond the total size limit.
    pub async fn apply_retention(&self, now_unix_nanos: u64) -> Result<usize, EngineError> {
        let _manifest_guard = self.manifest_lock.lock().await;
        let manifest = self.manifest_snapshot();
        let expired = retention::plan(
            &manifest.blocks,
            now_unix_nanos,
            self.options.retention.as_nanos() as u64,
            self.options.max_total_bytes,
        );
        if expired.is_empty() {
            return Ok(0);
        }
        let removed: Vec<BlockMeta> = manifest.blocks.iter().filter(|b| expired.contains(&b.id)).cloned().collect();
        let committed = self.blocks.commit_manifest(&manifest.apply(&expired, Vec::new())).await?;
        *self.manifest.write() = Arc::new(committed);
        self.metrics.blocks_deleted_by_retention.inc_by(removed.len() as u64);
        info!(num_blocks = removed.len(), "retention removed blocks");
        self.schedule_deletes(removed);
        self.update_gauges();
        Ok(expired.len())
    }

    fn schedule_deletes(&self, blocks: Vec<BlockMeta>) {
        let now = Instant::now();
        self.pending_deletes.lock().extend(blocks.into_iter().map(|b| (now, b)));
    }

    async fn delete_expired_blocks(&self, grace: Duration) {
        let due: Vec<BlockMeta> = {
            let mut pending = self.pending_deletes.lock();
            let (due, keep): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(at, _)| at.elapsed() >= grace);
            *pending = keep;
            due.into_iter().map(|(_, b)| b).collect()
        };
        for block in due {
            if let Err(error) = self.blocks.delete_block(&block).await {
                warn!(%error, block = %block.id, "could not delete block; retrying later");
                self.pending_deletes.lock().push((Instant::now(), block));
            }
        }
    }

    /// One round of background work: flush when due, compaction and retention on their
    /// interval, deletion of blocks past their grace period. Errors are logged and retried
    /// on the next round.
    pub async fn maintain(&self) {
        if self.flush_due() {
            let _ = self.flush().await;
        }
        let compaction_due = self.last_compaction.lock().elapsed() >= self.options.compaction_interval;
        if compaction_due {
            *self.last_compaction.lock() = Instant::now();
            let _ = self.compact().await;
            if let Err(error) = self.apply_retention(now_unix_nanos()).await {
                warn!(%error, "retention failed");
            }
        }
        self.delete_expired_blocks(BLOCK_DELETE_GRACE).await;
    }

    /// Flushes the head and waits for pending block deletions; called on shutdown.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.flush().await?;
        self.delete_expired_blocks(Duration::ZERO).await;
        Ok(())
    }

    fn update_gauges(&self) {
        {
            let head = self.head.read();
            self.metrics.head_spans.set(head.num_spans() as i64);
            self.metrics.head_traces.set(head.num_traces() as i64);
            self.metrics.head_bytes.set(head.size_bytes() as i64);
        }
        let manifest = self.manifest_snapshot();
        self.metrics.blocks.set(manifest.blocks.len() as i64);
        self.metrics.block_bytes.set(manifest.blocks.iter().map(|b| b.size_bytes as i64).sum());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::SpanId;

    fn spans(trace: u8, count: u8) -> Vec<Span> {
        let now = now_unix_nanos();
        (1..=count).map(|i| Span::new(TraceId([trace; 16]), SpanId([i; 8]), "op", now - 1000, now)).collect()
    }

    async fn open(dir: &std::path::Path, adjust: impl FnOnce(&mut EngineOptions)) -> Arc<Engine> {
        let mut options = EngineOptions::new(dir);
        options.wal.fsync = false;
        adjust(&mut options);
        Engine::open(options, EngineMetrics::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_full_head_refuses_appends_until_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), |o| o.head_max_bytes = 1).await;
        engine.append(spans(1, 3)).await.unwrap();
        let refused = engine.append(spans(2, 1)).await;
        assert!(matches!(refused, Err(EngineError::Overloaded { .. })), "{refused:?}");
        engine.flush().await.unwrap();
        engine.append(spans(2, 1)).await.unwrap();
        assert_eq!(engine.trace(TraceId([1; 16])).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn retention_removes_expired_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), |o| o.retention = Duration::from_secs(3600)).await;
        engine.append(spans(1, 2)).await.unwrap();
        engine.flush().await.unwrap();
        assert_eq!(engine.apply_retention(now_unix_nanos()).await.unwrap(), 0, "young block kept");
        let two_hours_later = now_unix_nanos() + 2 * 3600 * 1_000_000_000;
        assert_eq!(engine.apply_retention(two_hours_later).await.unwrap(), 1);
        assert!(engine.manifest_snapshot().blocks.is_empty());
        assert!(engine.trace(TraceId([1; 16])).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn retention_by_size_removes_the_oldest_blocks_first() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), |o| o.max_total_bytes = Some(1)).await;
        engine.append(spans(1, 2)).await.unwrap();
        engine.flush().await.unwrap();
        assert_eq!(engine.apply_retention(now_unix_nanos()).await.unwrap(), 1);
        assert!(engine.manifest_snapshot().blocks.is_empty());
    }

    #[tokio::test]
    async fn reopening_replays_only_what_no_block_holds() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = open(dir.path(), |_| {}).await;
            engine.append(spans(1, 2)).await.unwrap();
            engine.flush().await.unwrap();
            engine.append(spans(2, 3)).await.unwrap();
        }
        let metrics = EngineMetrics::default();
        let mut options = EngineOptions::new(dir.path());
        options.wal.fsync = false;
        let engine = Engine::open(options, metrics.clone()).await.unwrap();
        assert_eq!(metrics.replayed_spans.get(), 3, "the flushed trace is not replayed");
        assert_eq!(engine.trace(TraceId([1; 16])).await.unwrap().len(), 2);
        assert_eq!(engine.trace(TraceId([2; 16])).await.unwrap().len(), 3);
        assert_eq!(engine.services(), vec![sextant_model::UNKNOWN_SERVICE.to_string()]);
    }

    #[tokio::test]
    async fn blocks_left_by_an_interrupted_flush_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::local(&dir.path().join("store")).unwrap();
        let orphan = store.write_block(spans(9, 2), 0).await.unwrap();
        assert_eq!(store.list_block_ids().await.unwrap(), vec![orphan.id.clone()]);
        let engine = open(dir.path(), |_| {}).await;
        assert!(engine.blocks.list_block_ids().await.unwrap().is_empty());
    }
}
