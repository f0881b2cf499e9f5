//! Self-metrics of the write-ahead log.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Metrics changed by the write-ahead log. Cloning shares the underlying values, so the clone
/// handed to [`Wal::open`](super::Wal::open) and the one registered are the same metrics.
#[derive(Debug, Clone)]
pub struct WalMetrics {
    /// Time from the start of a group commit's write to the end of its fsync.
    pub commit_duration_seconds: Histogram,
    /// Records made durable by each group commit.
    pub records_per_commit: Histogram,
    /// Records written and acknowledged.
    pub records_appended: Counter,
    /// Bytes written for acknowledged records, record headers included.
    pub appended_bytes: Counter,
    /// `fdatasync` calls on segment files.
    pub fsyncs: Counter,
    /// Segment files created.
    pub segments_created: Counter,
    /// Segment files deleted by [`Wal::remove_segments_before`](super::Wal::remove_segments_before).
    pub segments_removed: Counter,
    /// Torn or corrupt tails of the last segment cut off when opening the log.
    pub corrupt_tails_truncated: Counter,
    /// Older segments whose header or a record was damaged; the rest of each was skipped.
    pub corrupt_segments: Counter,
    /// Appends answered with an error (too large, I/O failure, closed log).
    pub append_errors: Counter,
}

impl Default for WalMetrics {
    fn default() -> Self {
        Self {
            // 50 µs, 100 µs, … ≈ 0.82 s.
            commit_duration_seconds: Histogram::new(exponential_buckets(50e-6, 2.0, 15)),
            // 1, 2, 4, … 4096 records.
            records_per_commit: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            records_appended: Counter::default(),
            appended_bytes: Counter::default(),
            fsyncs: Counter::default(),
            segments_created: Counter::default(),
            segments_removed: Counter::default(),
            corrupt_tails_truncated: Counter::default(),
            corrupt_segments: Counter::default(),
            append_errors: Counter::default(),
        }
    }
}

impl WalMetrics {
    /// Registers every metric under a `sextant_wal_` name. Counters get the `_total` suffix
    /// when encoded.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "sextant_wal_commit_duration",
            "Time to write and fsync one group commit of the write-ahead log",
            Unit::Seconds,
            self.commit_duration_seconds.clone(),
        );
        registry.register(
            "sextant_wal_records_per_commit",
            "Records made durable by one group commit of the write-ahead log",
            self.records_per_commit.clone(),
        );
        registry.register(
            "sextant_wal_records_appended",
            "Records written to the write-ahead log and acknowledged",
            self.records_appended.clone(),
        );
        registry.register(
            "sextant_wal_appended_bytes",
            "Bytes written to the write-ahead log for acknowledged records, headers included",
            self.appended_bytes.clone(),
        );
        registry.register("sextant_wal_fsyncs", "fdatasync calls on write-ahead log segments", self.fsyncs.clone());
        registry.register(
            "sextant_wal_segments_created",
            "Write-ahead log segment files created",
            self.segments_created.clone(),
        );
        registry.register(
            "sextant_wal_segments_removed",
            "Write-ahead log segment files deleted after a checkpoint",
            self.segments_removed.clone(),
        );
        registry.register(
            "sextant_wal_corrupt_tails_truncated",
            "Torn or corrupt tails of the last write-ahead log segment cut off on open",
            self.corrupt_tails_truncated.clone(),
        );
        registry.register(
            "sextant_wal_corrupt_segments",
            "Older write-ahead log segments found damaged on replay; their rest was skipped",
            self.corrupt_segments.clone(),
        );
        registry.register(
            "sextant_wal_append_errors",
            "Appends to the write-ahead log answered with an error",
            self.append_errors.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn wal_metrics_are_registered_with_prefix_and_help() {
        let metrics = WalMetrics::default();
        metrics.fsyncs.inc();
        metrics.commit_duration_seconds.observe(0.002);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();

        for name in [
            "sextant_wal_commit_duration_seconds_bucket",
            "sextant_wal_records_per_commit_bucket",
            "sextant_wal_records_appended_total",
            "sextant_wal_appended_bytes_total",
            "sextant_wal_segments_created_total",
            "sextant_wal_segments_removed_total",
            "sextant_wal_corrupt_tails_truncated_total",
            "sextant_wal_corrupt_segments_total",
            "sextant_wal_append_errors_total",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains("sextant_wal_fsyncs_total 1"), "{text}");
        assert!(text.contains("# HELP sextant_wal_fsyncs fdatasync calls"), "{text}");
    }
}
