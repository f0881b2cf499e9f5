//! The engine: one owner for the WAL, the head, the blocks and the manifest.
//!
//! ```text
//! append(spans) ──encode_spans─────┐
//! append_encoded(spans, payload) ──┴─> WAL (group-committed fsync) ──> head.active ──> acknowledged
//!                                                                        │ flush (size, age, shutdown)
//!                                                                        v
//!                          head.frozen ──write_block──> blocks/{id}/ ──commit──> manifest
//!                                                                                (+ WAL checkpoint)
//! maintenance: flush when due · compaction (merge small blocks, drop duplicates) · retention
//! ```
//!
//! Invariants:
//! - every WAL record decodes (`sextant_codec::decode_spans`) to exactly the spans put in the
//!   head with it: `append` encodes them; `append_encoded` takes a payload its caller
//!   guarantees to (a request body that validation left unchanged), checked in debug builds;
//! - a span is in the head only after its WAL record is committed, and its WAL segment is
//!   removed only after a manifest that lists a block holding it is committed
//!   (`wal_checkpoint_seq`), so a crash at any point loses nothing acknowledged;
//! - appends hold `append_gate` for reading from WAL append to head insert; a flush takes it
//!   for writing while it rotates the WAL and freezes the head, so the frozen part holds
//!   exactly the records below the checkpoint;
//! - `manifest_lock` serializes manifest commits (flush, compaction, retention) and the
//!   update of the in-memory snapshot that follows each; readers take an `Arc<Manifest>`
//!   snapshot and never wait. Compaction merges blocks without the lock and takes it only to
//!   commit, so flushes are never held up by a long merge;
//! - blocks removed from the manifest are deleted only a grace period later, so a reader
//!   holding an older snapshot can still read them;
//! - the WAL directory lock is taken before anything in the store is touched, so a second
//!   process on the same data directory fails without deleting anything.

mod attribute_lookup;
mod catalog;
mod maintenance;
mod query;
mod replay;
mod tags;
pub use attribute_lookup::AttributeTraces;
pub use tags::{TagQuery, TagScope, TagValues};
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sextant_model::{Span, SpanKind, SpanMemory, TraceId};
use tracing::{info, warn};

use crate::block::{BlockError, BlockMeta, BlockStore, BlockStoreOptions, Manifest, compaction};
use crate::head::Head;
use crate::search::merge_trace_spans;
use crate::wal::{Wal, WalError, WalMetrics, WalOptions};
use catalog::Catalog;

/// Defaults of [`EngineOptions`].
pub const DEFAULT_HEAD_MAX_SPANS: usize = 1_000_000;
pub const DEFAULT_HEAD_MAX_BYTES: usize = 192 * 1024 * 1024;
pub const DEFAULT_HEAD_MAX_AGE: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(60);
/// How long an append waits for a flush to make room in a full head before it is refused.
pub const DEFAULT_HEAD_ROOM_WAIT: Duration = Duration::from_secs(5);
/// How long a block removed from the manifest stays readable for older snapshots.
pub const BLOCK_DELETE_GRACE: Duration = Duration::from_secs(30);
/// How many times a manifest change is retried after a conflict or an unclear failure.
const MANIFEST_ATTEMPTS: usize = 5;
/// Searches running at once; more wait their turn, so memory stays bounded.
const MAX_CONCURRENT_SEARCHES: usize = 4;

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
    /// A flush writes blocks of at most this many spans (a larger trace gets a block of its
    /// own).
    pub block_max_spans: usize,
    /// Blocks whose newest span is older than this are deleted.
    pub retention: Duration,
    /// Oldest blocks are deleted while all blocks together exceed this size.
    pub max_total_bytes: Option<u64>,
    pub compaction: compaction::CompactionPolicy,
    pub compaction_interval: Duration,
    /// An append that finds the head over its hard limit waits this long for a flush to make
    /// room before it is refused (zero: refused at once). Waiting rather than refusing keeps
    /// the cores busy under a steady overload: a refused client backs off and sends nothing
    /// for a while, even after the flush is done.
    pub head_room_wait: Duration,
    /// Attribute keys indexed at ingest: every block written from now on (flush and
    /// compaction) records, per key, its distinct values → traces in `attrs.bin`, which
    /// [`Engine::trace_ids_with_attribute`] reads instead of scanning the block. None by
    /// default; blocks written with other keys are scanned for the keys they lack.
    pub indexed_attribute_keys: Vec<String>,
}

impl EngineOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineOptions {
        EngineOptions {
            data_dir: data_dir.into(),
            wal: WalOptions::default(),
            head_max_spans: DEFAULT_HEAD_MAX_SPANS,
            head_max_bytes: DEFAULT_HEAD_MAX_BYTES,
            head_max_age: DEFAULT_HEAD_MAX_AGE,
            block_max_spans: compaction::DEFAULT_TARGET_SPANS as usize,
            retention: DEFAULT_RETENTION,
            max_total_bytes: None,
            compaction: compaction::CompactionPolicy::default(),
            compaction_interval: DEFAULT_COMPACTION_INTERVAL,
            head_room_wait: DEFAULT_HEAD_ROOM_WAIT,
            indexed_attribute_keys: Vec::new(),
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
}

/// The engine's own metrics; the WAL's are in `wal`.
#[derive(Clone, Debug, Default)]
pub struct EngineMetrics {
    pub wal: WalMetrics,
    head_spans: Gauge,
    head_traces: Gauge,
    head_bytes: Gauge,
    /// Seconds appends spent waiting for a flush to make room in the head (summed over
    /// appends): ingest held back by flushing.
    head_room_wait_seconds: Counter<f64, AtomicU64>,
    blocks: Gauge,
    block_bytes: Gauge,
    flushes: Counter,
    flush_failures: Counter,
    compactions: Counter,
    compaction_failures: Counter,
    compaction_pending_jobs: Gauge,
    blocks_cold: Gauge,
    blocks_deleted_by_retention: Counter,
    replayed_spans: Counter,
    undecodable_records: Counter,
}

impl EngineMetrics {
    pub fn register(&self, registry: &mut Registry) {
        self.wal.register(registry);
        let r = registry.sub_registry_with_prefix("sextant");
        r.register("head_spans", "Spans in the head (not yet in a block)", self.head_spans.clone());
        r.register("head_traces", "Traces in the head", self.head_traces.clone());
        r.register("head_bytes", "Approximate memory held by head spans", self.head_bytes.clone());
        r.register(
            "head_room_wait_seconds",
            "Time appends spent waiting for a flush to make room in the head, summed over appends",
            self.head_room_wait_seconds.clone(),
        );
        r.register("blocks", "Blocks in the manifest", self.blocks.clone());
        r.register("block_bytes", "Bytes of all blocks in the manifest", self.block_bytes.clone());
        r.register("head_flushes", "Head flushes to blocks", self.flushes.clone());
        r.register("head_flush_failures", "Head flushes that failed and will be retried", self.flush_failures.clone());
        r.register("compactions", "Compactions completed", self.compactions.clone());
        r.register("compaction_failures", "Compactions that failed", self.compaction_failures.clone());
        r.register(
            "compaction_pending_jobs",
            "Compaction jobs the planner finds after the latest round (0: blocks are fully compacted)",
            self.compaction_pending_jobs.clone(),
        );
        r.register(
            "blocks_cold",
            "Blocks whose footer and trace-ID index are not loaded yet (after a start, they load in the background)",
            self.blocks_cold.clone(),
        );
        r.register("retention_deleted_blocks", "Blocks deleted by retention", self.blocks_deleted_by_retention.clone());
        r.register("wal_replayed_spans", "Spans replayed from the WAL at start", self.replayed_spans.clone());
        r.register(
            "wal_undecodable_records",
            "WAL records with a valid checksum that could not be decoded, set aside at start",
            self.undecodable_records.clone(),
        );
    }
}

pub struct Engine {
    options: EngineOptions,
    wal: Wal,
    head: RwLock<Head>,
    blocks: BlockStore,
    manifest: RwLock<Arc<Manifest>>,
    manifest_lock: tokio::sync::Mutex<()>,
    /// One compaction at a time (it runs without `manifest_lock`).
    compaction_lock: tokio::sync::Mutex<()>,
    append_gate: tokio::sync::RwLock<()>,
    search_permits: tokio::sync::Semaphore,
    /// Blocks one search reads, or one flush encodes, at once: the number of cores.
    search_parallelism: usize,
    catalog: RwLock<Catalog>,
    pending_deletes: Mutex<Vec<(Instant, BlockMeta)>>,
    /// Signalled when the active head part becomes due for a flush by size: the flush starts
    /// then, not at the next periodic check.
    flush_wanted: tokio::sync::Notify,
    /// Signalled when a flush releases a frozen head part: appends waiting for room retry.
    head_room: tokio::sync::Notify,
    metrics: EngineMetrics,
}

pub use sextant_model::now_unix_nanos;

impl Engine {
    /// Opens the data directory: locks the WAL, loads the manifest, removes blocks an
    /// interrupted flush or compaction left behind, and replays the WAL records the manifest
    /// does not cover into the head.
    pub async fn open(options: EngineOptions, metrics: EngineMetrics) -> Result<Arc<Engine>, EngineError> {
        let started = Instant::now();
        let (wal, wal_records) = Wal::open(&options.data_dir.join("wal"), options.wal.clone(), metrics.wal.clone())?;
        let block_options =
            BlockStoreOptions { indexed_attribute_keys: options.indexed_attribute_keys.clone(), ..Default::default() };
        let blocks = BlockStore::local_with_options(&options.data_dir.join("store"), block_options)?;
        let mut manifest = blocks.load_manifest().await?;
        remove_unlisted_blocks(&blocks, &manifest).await;

        let mut head = Head::default();
        let mut catalog = Catalog::default();
        let mut replayed = 0u64;
        // Records are decoded on every core while the head takes them in log order.
        let decoders = std::thread::available_parallelism().map_or(1, |n| n.get());
        let checkpoint = manifest.wal_checkpoint_seq;
        let records = wal_records.filter(|record| !matches!(record, Ok((seq, _)) if *seq < checkpoint));
        replay::decode_in_order(
            records,
            decoders,
            |(_, payload)| {
                let spans = sextant_codec::decode_spans(payload)?;
                let memory: Vec<SpanMemory> = spans.iter().map(Span::memory).collect();
                Ok((spans, memory))
            },
            |(seq, payload), decoded: Result<_, sextant_codec::DecodeError>| match decoded {
                Ok((spans, memory)) => {
                    replayed += spans.len() as u64;
                    catalog.add_spans(&spans);
                    head.insert_measured(spans, &memory);
                }
                Err(error) => {
                    metrics.undecodable_records.inc();
                    set_aside(&options.data_dir, seq, &payload, &error.to_string());
                }
            },
        )?;
        metrics.replayed_spans.inc_by(replayed);
        if replayed > 0 {
            info!(num_spans = replayed, elapsed_ms = started.elapsed().as_millis() as u64, "replayed write-ahead log");
        }

        // A WAL whose next record would fall below the checkpoint (its directory was lost
        // while the store was kept) would have its new records skipped at the next replay.
        let next_seq = wal.rotate().await?;
        if next_seq < manifest.wal_checkpoint_seq {
            warn!(next_seq, checkpoint = manifest.wal_checkpoint_seq, "write-ahead log restarted below its checkpoint");
            manifest = blocks
                .update_manifest(MANIFEST_ATTEMPTS, |current| Some(current.with_wal_checkpoint(next_seq)))
                .await?;
        }
        for meta in &manifest.blocks {
            catalog.add_operations(&meta.operations);
        }
        let engine = Engine {
            options,
            wal,
            head: RwLock::new(head),
            blocks,
            manifest: RwLock::new(Arc::new(manifest)),
            manifest_lock: tokio::sync::Mutex::new(()),
            compaction_lock: tokio::sync::Mutex::new(()),
            append_gate: tokio::sync::RwLock::new(()),
            search_permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_SEARCHES),
            search_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            catalog: RwLock::new(catalog),
            pending_deletes: Mutex::new(Vec::new()),
            flush_wanted: tokio::sync::Notify::new(),
            head_room: tokio::sync::Notify::new(),
            metrics,
        };
        engine.update_gauges();
        let engine = Arc::new(engine);
        // Footers and indexes are loaded in the background, so the first queries after a
        // start do not each pay for opening the blocks they touch.
        // The task holds the block store (its caches), not the engine: the engine, and with it
        // the WAL's directory lock, goes away when its owner drops it.
        let blocks: Vec<BlockMeta> = engine.manifest_snapshot().blocks.clone();
        let store = engine.blocks.clone();
        let cold = engine.metrics.blocks_cold.clone();
        tokio::spawn(async move { warm(&store, &blocks, &cold).await });
        Ok(engine)
    }

    /// Makes spans durable and queryable. Returns once they are committed to the WAL.
    pub async fn append(&self, spans: Vec<Span>) -> Result<(), EngineError> {
        if spans.is_empty() {
            return Ok(());
        }
        self.wait_for_head_room().await?;
        let payload = Bytes::from(sextant_codec::encode_spans(&spans));
        self.commit(spans, payload).await
    }

    /// Like [`Engine::append`], but writes `payload` as the WAL record instead of encoding
    /// `spans`: for a request body that already is one (an OTLP protobuf request that
    /// validation left [`unchanged`](sextant_codec::Decoded::unchanged)).
    ///
    /// Contract: `sextant_codec::decode_spans(&payload)` gives exactly `spans`, in order. The
    /// engine does not check it in release builds; a payload that breaks it makes the head and
    /// a restart (which replays the payload) disagree.
    pub async fn append_encoded(&self, spans: Vec<Span>, payload: Bytes) -> Result<(), EngineError> {
        if spans.is_empty() {
            return Ok(());
        }
        debug_assert!(decodes_to(&payload, &spans), "a WAL payload that does not decode to its spans");
        self.wait_for_head_room().await?;
        self.commit(spans, payload).await
    }

    /// Returns at once while the head is under its hard limit; above it, waits up to
    /// `head_room_wait` for a flush to release its frozen part, then refuses the append.
    /// Waiting appends hold the requests' in-flight budget, so their memory stays bounded.
    async fn wait_for_head_room(&self) -> Result<(), EngineError> {
        let started = tokio::time::Instant::now();
        let deadline = started + self.options.head_room_wait;
        let waited = || self.metrics.head_room_wait_seconds.inc_by(started.elapsed().as_secs_f64());
        let mut waiting = false;
        loop {
            let released = self.head_room.notified();
            tokio::pin!(released);
            // Registered before the check: a release between the check and the wait is seen.
            released.as_mut().enable();
            let head_bytes = self.head.read().size_bytes();
            if head_bytes <= self.options.head_hard_limit_bytes() {
                if waiting {
                    waited();
                }
                return Ok(());
            }
            waiting = true;
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                waited();
                return Err(EngineError::Overloaded { head_bytes });
            }
        }
    }

    /// Waits until an append makes the active head part due for a flush by its size.
    pub async fn flush_requested(&self) {
        self.flush_wanted.notified().await
    }

    /// Writes `payload` (the WAL record of `spans`) and, once it is committed, inserts the
    /// spans in the head.
    async fn commit(&self, spans: Vec<Span>, payload: Bytes) -> Result<(), EngineError> {
        let _gate = self.append_gate.read().await;
        self.wal.append(payload).await?;
        self.catalog.write().add_spans(&spans);
        let mut head = self.head.write();
        head.insert(spans);
        self.metrics.head_spans.set(head.num_spans() as i64);
        self.metrics.head_bytes.set(head.size_bytes() as i64);
        let active = head.active();
        if active.num_spans() >= self.options.head_max_spans || active.size_bytes() >= self.options.head_max_bytes {
            self.flush_wanted.notify_one();
        }
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

    /// [`Engine::trace`] of each of `ids`, in the order given (empty for an unknown trace),
    /// reading each block once for all of them: what answers built from a search's page of
    /// traces use.
    pub async fn traces(&self, ids: &[TraceId]) -> Result<Vec<Vec<Span>>, EngineError> {
        let position: HashMap<TraceId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut found: Vec<Vec<Span>> = vec![Vec::new(); ids.len()];
        {
            let head = self.head.read();
            for part in head.parts() {
                for (i, id) in ids.iter().enumerate() {
                    found[i].extend(part.trace(id).into_iter().flatten().cloned());
                }
            }
        }
        let manifest = self.manifest_snapshot();
        for meta in &manifest.blocks {
            for span in self.blocks.read_traces(meta, ids).await? {
                if let Some(&i) = position.get(&span.trace_id) {
                    found[i].push(span);
                }
            }
        }
        // A trace asked twice is gathered at one position and copied to the others.
        for (i, id) in ids.iter().enumerate() {
            if position[id] != i {
                found[i] = found[position[id]].clone();
            }
        }
        Ok(found.into_iter().map(merge_trace_spans).collect())
    }

    /// Every service that sent spans, sorted.
    pub fn services(&self) -> Vec<String> {
        self.catalog.read().services()
    }

    /// The operations (span name, kind) of a service, sorted; `None` for an unknown service.
    pub fn operations(&self, service: &str) -> Option<Vec<(String, SpanKind)>> {
        self.catalog.read().operations(service)
    }

    pub fn manifest_snapshot(&self) -> Arc<Manifest> {
        self.manifest.read().clone()
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
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
        let pending = compaction::plan(&manifest.blocks, &self.options.compaction).len();
        self.metrics.compaction_pending_jobs.set(pending as i64);
        self.metrics.block_bytes.set(manifest.blocks.iter().map(|b| b.size_bytes as i64).sum());
    }
}

/// Whether a WAL payload decodes to exactly `spans`. Compares encodings, not values, so that
/// a NaN attribute (not equal to itself) compares equal to itself.
fn decodes_to(payload: &[u8], spans: &[Span]) -> bool {
    sextant_codec::decode_spans(payload)
        .is_ok_and(|decoded| sextant_codec::encode_spans(&decoded) == sextant_codec::encode_spans(spans))
}

/// Deletes blocks that no manifest lists: written by a flush or compaction that stopped
/// before its manifest commit. Safe only while this process holds the data directory (the
/// WAL lock) and writes no block: at open, and at shutdown with flushes and compaction held off.
pub(super) async fn remove_unlisted_blocks(blocks: &BlockStore, manifest: &Manifest) {
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

/// Loads the footers, trace-ID and attribute indexes of `blocks` into `store`'s caches; `cold` counts
/// the blocks not loaded yet.
pub(super) async fn warm(store: &BlockStore, blocks: &[BlockMeta], cold: &Gauge) {
    cold.inc_by(blocks.len() as i64);
    for meta in blocks {
        if let Err(error) = store.warm(meta).await {
            warn!(%error, block = %meta.id, "cannot load a block's footer and index");
        }
        cold.dec();
    }
}

/// Keeps a WAL record that passed its checksum but could not be decoded (a format bug) in
/// `<data_dir>/wal-undecodable/{seq}.otlp` for inspection; replay goes on without it.
fn set_aside(data_dir: &Path, seq: u64, payload: &[u8], error: &str) {
    let dir = data_dir.join("wal-undecodable");
    let path = dir.join(format!("{seq:020}.otlp"));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, payload));
    match saved {
        Ok(()) => warn!(seq, %error, path = %path.display(), "undecodable WAL record set aside"),
        Err(io) => warn!(seq, %error, %io, "undecodable WAL record could not be set aside; skipped"),
    }
}
