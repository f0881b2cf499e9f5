//! Immutable Parquet blocks in an object store, the manifest that lists the live ones,
//! compaction and retention.
//!
//! A block is the durable, query-ready form of a batch of spans. It is written once, never
//! modified, and deleted only after a manifest version without it has been committed. All
//! I/O goes through [`object_store`], so a local directory and S3-compatible storage share
//! one code path.
//!
//! ```text
//! {prefix}/blocks/{id}/data.parquet   one row per span, in clusters by service, each sorted by
//!                                     (trace_id, start, span_id, kind) (see `writer`)
//! {prefix}/blocks/{id}/index.bin      sorted trace IDs → their runs of rows (see `index`)
//! {prefix}/blocks/{id}/attrs.bin      indexed attribute values → their traces (see `attrs`);
//!                                     only with indexed keys, absent in older blocks
//! {prefix}/manifest/{version:020}.json  the live blocks; the highest version wins
//! ```
//!
//! The byte-level format is documented in `docs/formats/block.md`; each submodule owns one
//! part of it:
//!
//! - [`schema`]: the Arrow/Parquet schema, writer settings and footer keys;
//! - `attributes`, `encode`, `decode`: spans ⇄ Arrow record batches, exact in both directions;
//! - [`index`]: the per-block trace-ID index (`index.bin`);
//! - [`attrs`]: the per-block attribute index of the indexed keys (`attrs.bin`);
//! - `writer`: spans in block order → `data.parquet` bytes, index and [`BlockMeta`];
//! - `clusters`: the clusters of a block, from its footer;
//! - `reader`: footer, row-group and page selection, ranged fetches;
//! - `search_scan`: the columns a search reads and its span conditions evaluated on them;
//! - `cache`: parsed footers, trace-ID and attribute indexes of immutable blocks, bounded in
//!   bytes;
//! - [`manifest`]: versioned manifest objects committed with a create-only put;
//! - [`compaction`]: which blocks to merge (pure); `merge`: the streaming merge itself;
//! - [`retention`]: which blocks to delete (pure);
//! - `store`: [`BlockStore`], the async API that ties these together.
//!
//! Invariants:
//! - a block ID is 24 lowercase hex digits: 16 of the creation time in unix milliseconds and 8
//!   of a per-process sequence that starts at a random value, so IDs sort by creation;
//! - a block's objects are complete before its ID appears in a manifest; objects of a block
//!   that no manifest lists are garbage (a writer crashed or lost a manifest race);
//! - Parquet encoding and decoding run on tokio's blocking pool, never on the async runtime.

mod attributes;
pub mod attrs;
mod cache;
mod clusters;
pub mod compaction;
mod decode;
mod encode;
pub mod index;
pub mod manifest;
mod merge;
mod reader;
pub mod retention;
pub mod schema;
mod search_scan;
mod store;
mod trace_filter;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

pub(crate) use encode::ServiceNames;
pub use manifest::Manifest;
pub(crate) use reader::merge_ranges;
pub use search_scan::SearchRow;
pub(crate) use store::encode_block;
pub use store::{BlockStore, BlockStoreOptions, SearchRows};

/// What can go wrong reading, writing or managing blocks.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("block {block_id} is corrupt: {reason}")]
    Corrupt { block_id: String, reason: String },
    #[error("manifest {path} is unreadable: {reason}")]
    CorruptManifest { path: String, reason: String },
    /// Another writer committed this manifest version first; reload, reapply, retry.
    #[error("manifest version {version} was committed by another writer")]
    ManifestConflict { version: u64 },
    #[error("a block needs at least one span")]
    EmptyBlock,
    #[error("a block holds at most {max} rows, got {actual}")]
    TooManyRows { max: u64, actual: u64 },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for BlockError {
    fn from(error: tokio::task::JoinError) -> Self {
        BlockError::Task(error.to_string())
    }
}

/// What the manifest records about one block: enough to plan queries, compaction and
/// retention without opening it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BlockMeta {
    /// Unique and sortable by creation; see [`new_block_id`].
    pub id: String,
    /// 0 for a block flushed from the head; a compaction output is one above its highest input.
    pub level: u32,
    pub min_start_unix_nanos: u64,
    pub max_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
    /// The latest trace start (a trace's earliest span) among the block's traces; absent
    /// in manifests written before it was recorded. Compaction keeps blocks apart by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trace_start_unix_nanos: Option<u64>,
    pub num_spans: u64,
    pub num_traces: u64,
    /// `data.parquet` plus `index.bin` (plus `attrs.bin` when written).
    pub size_bytes: u64,
    /// Sorted, distinct `service.name` values.
    pub services: Vec<String>,
    /// Sorted, distinct (service name, span name, span kind as its OTLP number); at most
    /// 10,000 per block. Feeds the services and operations pickers without reading blocks.
    #[serde(default)]
    pub operations: Vec<(String, String, i32)>,
    pub created_unix_nanos: u64,
}

impl BlockMeta {
    /// The range of trace starts in this block: from its earliest span to its latest trace
    /// start (the latest span start when that is not recorded).
    pub fn trace_start_range(&self) -> (u64, u64) {
        (self.min_start_unix_nanos, self.max_trace_start_unix_nanos.unwrap_or(self.max_start_unix_nanos))
    }

    /// Whether some span of this block starts in `[start, end]` as far as the metadata can tell.
    pub fn overlaps_start_range(&self, start_unix_nanos: u64, end_unix_nanos: u64) -> bool {
        self.min_start_unix_nanos <= end_unix_nanos && self.max_start_unix_nanos >= start_unix_nanos
    }
}

/// A new block ID: 16 hex digits of `now_unix_millis`, then 8 of a per-process sequence
/// that starts at a random value (so two processes creating blocks in the same millisecond
/// collide with probability 2⁻³²).
pub fn new_block_id(now_unix_millis: u64) -> String {
    static SEQUENCE: OnceLock<AtomicU32> = OnceLock::new();
    let sequence = SEQUENCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the operating system's random source.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        AtomicU32::new(hasher.finish() as u32)
    });
    format!("{now_unix_millis:016x}{:08x}", sequence.fetch_add(1, Ordering::Relaxed))
}

/// Whether `name` has the shape of a block ID (24 lowercase hex digits).
pub fn is_block_id(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The creation time, in unix milliseconds, encoded in a block ID.
pub fn block_id_created_unix_millis(id: &str) -> Option<u64> {
    if !is_block_id(id) {
        return None;
    }
    u64::from_str_radix(&id[..16], 16).ok()
}

pub(crate) use sextant_model::now_unix_nanos;

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn block_ids_sort_by_creation_and_are_unique() {
        let a = new_block_id(1_700_000_000_000);
        let b = new_block_id(1_700_000_000_000);
        let c = new_block_id(1_700_000_000_001);
        assert!(is_block_id(&a) && is_block_id(&b) && is_block_id(&c), "{a} {b} {c}");
        assert_ne!(a, b);
        assert!(a < c && b < c);
        assert_eq!(block_id_created_unix_millis(&c), Some(1_700_000_000_001));
    }

    #[test]
    fn hidden_and_temporary_names_are_not_block_ids() {
        assert!(!is_block_id(".DS_Store"));
        assert!(!is_block_id("0000018bcfe56800000000zz"));
        assert!(!is_block_id("0000018BCFE5680000000000"));
        assert_eq!(block_id_created_unix_millis("nope"), None);
    }
}
