//! The closed intervals of both aggregators on disk, under `{data_dir}/metrics/`, one file
//! per interval (docs/formats/metrics.md), and the [`History`] the range queries read them
//! back through.
//!
//! ```text
//! {data_dir}/metrics/span_metrics/{start_unix_nanos:020}.sxmi
//! {data_dir}/metrics/service_graph/{start_unix_nanos:020}.sxmi
//! ```
//!
//! When: an interval is written once it leaves memory, which is when it can no longer
//! change (it ended more than a window ago, or a newer interval pushed it out of the full
//! window) and on shutdown (every interval still held). Writing earlier would miss the spans
//! that still arrive for it: spans ending up to a window ago are aggregated. A crash loses
//! the window held in memory, as before.
//!
//! Invariants:
//! - a write is atomic: the bytes go to `{name}.tmp`, which is fsynced, renamed over the
//!   file, and the directory is fsynced; a `.tmp` left by a crash is deleted on open;
//! - an interval is written while its aggregator's lock is held, the same lock readers
//!   hold, so a reader finds every interval in memory or on disk, never in neither;
//! - writing an interval that already has a file (one written at shutdown, before a
//!   restart, whose interval then got new spans) merges the two, so no span is lost or
//!   counted twice;
//! - a file that cannot be decoded (torn, corrupt, or written with another interval length,
//!   buckets or dimensions) is reported once, counted in
//!   `sextant_metrics_history_unreadable_intervals_total{aggregator,reason}`, and skipped
//!   from then on; it is never fatal;
//! - files whose interval ended more than `storage.retention` ago are deleted (readable or
//!   not), on the metrics thread's tick;
//! - one read visits at most [`MAX_INTERVALS_PER_READ`] intervals (the newest of its
//!   range), one decoded interval at a time, so a query's memory does not grow with its
//!   range; a read that would visit more is counted in
//!   `sextant_metrics_history_truncated_reads_total`;
//! - the intervals decoded last are kept for the next reads, up to [`CACHE_BUDGET_BYTES`] of
//!   files per aggregator (`interval_cache.rs`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use sextant_metrics::codec::{self, CodecError, Shape};
use sextant_metrics::{History, ServiceGraphConfig, ServiceGraphInterval, SpanMetricsConfig, SpanMetricsInterval};
use tracing::warn;

use super::interval_cache::IntervalCache;

/// The most intervals one read visits: one day of the default 15-second intervals and the
/// one a range not on an interval boundary starts in, so Jaeger's default dependencies
/// lookback (a day) is answered whole.
pub const MAX_INTERVALS_PER_READ: usize = 5_761;

/// Encoded bytes of the decoded intervals each aggregator keeps for the next reads: the
/// 40 intervals of a 10-minute window of about 400 series (decoded, about three times that).
pub const CACHE_BUDGET_BYTES: usize = 8 << 20;

const EXTENSION: &str = "sxmi";

/// An interval type that can be stored: its codec and how two of the same start merge.
pub(super) trait Persisted: Sized {
    fn start_unix_nanos(&self) -> u64;
    fn encode(&self, shape: &Shape) -> Vec<u8>;
    fn decode(bytes: &[u8], shape: &Shape) -> Result<Self, CodecError>;
    fn merge(&mut self, other: Self);
}

impl Persisted for SpanMetricsInterval {
    fn start_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
    }
    fn encode(&self, shape: &Shape) -> Vec<u8> {
        codec::encode_span_metrics(self, shape)
    }
    fn decode(bytes: &[u8], shape: &Shape) -> Result<Self, CodecError> {
        codec::decode_span_metrics(bytes, shape)
    }
    fn merge(&mut self, other: Self) {
        SpanMetricsInterval::merge(self, other);
    }
}

impl Persisted for ServiceGraphInterval {
    fn start_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
    }
    fn encode(&self, shape: &Shape) -> Vec<u8> {
        codec::encode_service_graph(self, shape)
    }
    fn decode(bytes: &[u8], shape: &Shape) -> Result<Self, CodecError> {
        codec::decode_service_graph(bytes, shape)
    }
    fn merge(&mut self, other: Self) {
        ServiceGraphInterval::merge(self, other);
    }
}

/// What happened to one aggregator's files.
#[derive(Debug, Default)]
pub(super) struct DirCounters {
    pub(super) written_intervals: AtomicU64,
    pub(super) written_bytes: AtomicU64,
    pub(super) write_errors: AtomicU64,
    pub(super) corrupt: AtomicU64,
    pub(super) incompatible: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) truncated_reads: AtomicU64,
}

/// The starts of the files of one directory.
#[derive(Debug, Default)]
struct Index {
    /// Files believed readable.
    readable: BTreeSet<u64>,
    /// Files found unreadable: skipped by reads, still deleted by retention.
    unreadable: BTreeSet<u64>,
}

/// One aggregator's directory.
#[derive(Debug)]
pub(super) struct Dir<T> {
    /// `span_metrics` or `service_graph`: the directory name and the `aggregator` label.
    pub(super) name: &'static str,
    path: PathBuf,
    shape: Shape,
    index: Mutex<Index>,
    cache: Mutex<IntervalCache<T>>,
    pub(super) counters: DirCounters,
}

impl<T: Persisted> Dir<T> {
    fn open(root: &Path, name: &'static str, shape: Shape) -> std::io::Result<Dir<T>> {
        let path = root.join(name);
        std::fs::create_dir_all(&path)?;
        let mut index = Index::default();
        for entry in std::fs::read_dir(&path)? {
            let file_name = entry?.file_name();
            let Some(file_name) = file_name.to_str() else { continue };
            if file_name.ends_with(".tmp") {
                // A write a crash interrupted: the interval it held was lost with the window.
                let _ = std::fs::remove_file(path.join(file_name));
            } else if let Some(start) = file_name.strip_suffix(&format!(".{EXTENSION}")).and_then(|s| s.parse().ok()) {
                index.readable.insert(start);
            }
        }
        Ok(Dir {
            name,
            path,
            shape,
            index: Mutex::new(index),
            cache: Mutex::new(IntervalCache::new(CACHE_BUDGET_BYTES)),
            counters: DirCounters::default(),
        })
    }

    fn file(&self, start_unix_nanos: u64) -> PathBuf {
        self.path.join(format!("{start_unix_nanos:020}.{EXTENSION}"))
    }

    /// Counts and reports a file that cannot be decoded, and skips it from now on.
    fn unreadable(&self, start_unix_nanos: u64, error: &CodecError) {
        let counter = match error {
            CodecError::Incompatible(_) => &self.counters.incompatible,
            _ => &self.counters.corrupt,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut index = self.index.lock();
        index.readable.remove(&start_unix_nanos);
        index.unreadable.insert(start_unix_nanos);
        warn!(%error, path = %self.file(start_unix_nanos).display(), "skipping an unreadable metrics interval file");
    }

    /// One interval, from the cache or its file (then cached); `None` if it is gone
    /// (retention) or unreadable.
    fn get(&self, start_unix_nanos: u64) -> Option<Arc<T>> {
        if let Some(interval) = self.cache.lock().get(start_unix_nanos) {
            return Some(interval);
        }
        let (interval, encoded_bytes) = self.read(start_unix_nanos)?;
        let interval = Arc::new(interval);
        self.cache.lock().insert(start_unix_nanos, interval.clone(), encoded_bytes);
        Some(interval)
    }

    /// Reads and decodes one interval, with its file's size; `None` if it is gone
    /// (retention) or unreadable.
    fn read(&self, start_unix_nanos: u64) -> Option<(T, usize)> {
        let bytes = match std::fs::read(self.file(start_unix_nanos)) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                warn!(%error, path = %self.file(start_unix_nanos).display(), "cannot read a metrics interval file");
                return None;
            }
        };
        match T::decode(&bytes, &self.shape) {
            Ok(interval) => Some((interval, bytes.len())),
            Err(error) => {
                self.unreadable(start_unix_nanos, &error);
                None
            }
        }
    }

    /// Writes one interval, merged with the file already holding its start if there is one.
    fn write(&self, mut interval: T) {
        let start = interval.start_unix_nanos();
        self.cache.lock().remove(start);
        let exists = self.index.lock().readable.contains(&start);
        if exists && let Some((earlier, _)) = self.read(start) {
            interval.merge(earlier);
        }
        let bytes = interval.encode(&self.shape);
        match self.replace(start, &bytes) {
            Ok(()) => {
                let mut index = self.index.lock();
                index.unreadable.remove(&start);
                index.readable.insert(start);
                self.counters.written_intervals.fetch_add(1, Ordering::Relaxed);
                self.counters.written_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                warn!(%error, aggregator = self.name, start_unix_nanos = start, "cannot persist a metrics interval");
            }
        }
    }

    /// Replaces the file of `start` with `bytes`, atomically and durably.
    fn replace(&self, start_unix_nanos: u64, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.file(start_unix_nanos);
        let temp = path.with_extension(format!("{EXTENSION}.tmp"));
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(&self.path)?.sync_all()
    }

    /// Visits the readable intervals starting in `[from, to)`, oldest first, at most
    /// [`MAX_INTERVALS_PER_READ`] (the newest).
    fn visit(&self, from_unix_nanos: u64, to_unix_nanos: u64, visit: &mut dyn FnMut(&T)) {
        if from_unix_nanos >= to_unix_nanos {
            return;
        }
        let mut starts: Vec<u64> = self.index.lock().readable.range(from_unix_nanos..to_unix_nanos).copied().collect();
        if starts.len() > MAX_INTERVALS_PER_READ {
            self.counters.truncated_reads.fetch_add(1, Ordering::Relaxed);
            starts.drain(..starts.len() - MAX_INTERVALS_PER_READ);
        }
        for start in starts {
            if let Some(interval) = self.get(start) {
                visit(&interval);
            }
        }
    }

    /// Deletes the files of intervals that ended at or before `cutoff_unix_nanos`.
    fn expire(&self, cutoff_unix_nanos: u64) {
        let Some(last_start) = cutoff_unix_nanos.checked_sub(self.shape.interval_nanos) else { return };
        let expired: Vec<u64> = {
            let mut index = self.index.lock();
            let Index { readable, unreadable } = &mut *index;
            let mut expired = Vec::new();
            for set in [readable, unreadable] {
                let kept = set.split_off(&(last_start + 1));
                expired.extend(std::mem::replace(set, kept));
            }
            expired
        };
        for start in expired {
            self.cache.lock().remove(start);
            match std::fs::remove_file(self.file(start)) {
                Ok(()) => {
                    self.counters.expired.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    warn!(%error, path = %self.file(start).display(), "cannot delete an expired metrics file")
                }
            }
        }
    }

    fn bounds(&self) -> Option<(u64, u64)> {
        let index = self.index.lock();
        Some((*index.readable.first()?, *index.readable.last()?))
    }
}

/// Both aggregators' directories and the retention they share with the traces.
#[derive(Debug)]
pub struct IntervalFiles {
    pub(super) span_metrics: Dir<SpanMetricsInterval>,
    pub(super) service_graph: Dir<ServiceGraphInterval>,
    retention_nanos: u64,
}

impl IntervalFiles {
    /// Opens (creating) `{data_dir}/metrics/`, indexing the files there.
    pub fn open(
        data_dir: &Path,
        span_metrics: &SpanMetricsConfig,
        service_graph: &ServiceGraphConfig,
        retention: std::time::Duration,
    ) -> std::io::Result<IntervalFiles> {
        let root = data_dir.join("metrics");
        Ok(IntervalFiles {
            span_metrics: Dir::open(&root, "span_metrics", Shape::of_span_metrics(span_metrics))?,
            service_graph: Dir::open(&root, "service_graph", Shape::of_service_graph(service_graph))?,
            retention_nanos: u64::try_from(retention.as_nanos()).unwrap_or(u64::MAX),
        })
    }

    pub fn write_span_metrics(&self, intervals: Vec<SpanMetricsInterval>) {
        intervals.into_iter().for_each(|interval| self.span_metrics.write(interval));
    }

    pub fn write_service_graph(&self, intervals: Vec<ServiceGraphInterval>) {
        intervals.into_iter().for_each(|interval| self.service_graph.write(interval));
    }

    /// Deletes the files of intervals that ended more than `storage.retention` before now.
    pub fn expire(&self, now_unix_nanos: u64) {
        let cutoff = now_unix_nanos.saturating_sub(self.retention_nanos);
        self.span_metrics.expire(cutoff);
        self.service_graph.expire(cutoff);
    }
}

impl History for IntervalFiles {
    fn span_metrics(&self, from_unix_nanos: u64, to_unix_nanos: u64, visit: &mut dyn FnMut(&SpanMetricsInterval)) {
        self.span_metrics.visit(from_unix_nanos, to_unix_nanos, visit);
    }

    fn service_graph(&self, from_unix_nanos: u64, to_unix_nanos: u64, visit: &mut dyn FnMut(&ServiceGraphInterval)) {
        self.service_graph.visit(from_unix_nanos, to_unix_nanos, visit);
    }

    fn span_metrics_bounds(&self) -> Option<(u64, u64)> {
        self.span_metrics.bounds()
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
