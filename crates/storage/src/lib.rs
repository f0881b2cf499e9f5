//! Sextant's storage engine.
//!
//! - [`wal`]: the write-ahead log; a span is acknowledged only after its record is fsynced.
//! - [`head`]: the newest spans in memory, grouped by trace, searchable at once.
//! - [`block`]: immutable Parquet blocks in an `object_store`, their manifest, compaction and
//!   retention.
//! - [`engine`]: ties them together: append → WAL → head → flush to blocks → compaction.

pub mod block;
pub mod engine;
pub mod head;
pub mod search;
pub mod wal;
