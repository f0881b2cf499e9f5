//! Configuration of the consistency analyzer (`[metrics.consistency]`): every field
//! defaulted, unknown keys refused, [`ConsistencyConfig::validate`] checks the bounds.

use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::config::{check_buckets_of, check_positive, whole_seconds_nanos, window_nanos};

/// How long a read or a replication apply waits for the writes it is judged against.
pub const DEFAULT_CONSISTENCY_WAIT_SECONDS: u64 = 10;
/// Keys whose recent writes are remembered; beyond it the least recently written is forgotten.
pub const DEFAULT_CONSISTENCY_MAX_KEYS: usize = 100_000;
/// Writes remembered per key; beyond it the earliest acknowledged is forgotten.
pub const DEFAULT_CONSISTENCY_MAX_WRITES_PER_KEY: usize = 16;
/// Reads and applies waiting to be judged; beyond it the oldest is judged early.
pub const DEFAULT_CONSISTENCY_MAX_PENDING: usize = 100_000;
/// Stale reads (and, separately, conflicts) kept for the API; older ones are forgotten.
pub const DEFAULT_CONSISTENCY_MAX_FINDINGS: usize = 10_000;
/// (source region, replica region) pairs with lag histograms and stale-read counters.
pub const DEFAULT_CONSISTENCY_MAX_REGION_PAIRS: usize = 100;
/// (service, system, collection, operation, level, access) usage series.
pub const DEFAULT_CONSISTENCY_MAX_USAGE_SERIES: usize = 1_000;
/// Upper bounds of the replication lag buckets in seconds, `+Inf` implied.
pub const DEFAULT_LAG_BUCKETS_SECONDS: [f64; 15] =
    [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The consistency analyzer: stale reads, replication lag, conflicts, level usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsistencyConfig {
    pub enabled: bool,
    /// How long a read or a `db.replication.apply` span waits, on the clock the caller
    /// passes, before it is judged against the writes received by then: writes may arrive
    /// after the reads they make stale (other traces, other batches).
    pub wait_seconds: u64,
    pub max_keys: usize,
    pub max_writes_per_key: usize,
    pub max_pending: usize,
    pub max_findings: usize,
    pub max_region_pairs: usize,
    pub max_usage_series: usize,
    /// Length of one replication lag interval.
    pub interval_seconds: u64,
    /// Replication lag intervals kept in memory.
    pub max_intervals: usize,
    pub lag_buckets_seconds: Vec<f64>,
}

impl Default for ConsistencyConfig {
    fn default() -> Self {
        ConsistencyConfig {
            enabled: true,
            wait_seconds: DEFAULT_CONSISTENCY_WAIT_SECONDS,
            max_keys: DEFAULT_CONSISTENCY_MAX_KEYS,
            max_writes_per_key: DEFAULT_CONSISTENCY_MAX_WRITES_PER_KEY,
            max_pending: DEFAULT_CONSISTENCY_MAX_PENDING,
            max_findings: DEFAULT_CONSISTENCY_MAX_FINDINGS,
            max_region_pairs: DEFAULT_CONSISTENCY_MAX_REGION_PAIRS,
            max_usage_series: DEFAULT_CONSISTENCY_MAX_USAGE_SERIES,
            interval_seconds: crate::DEFAULT_INTERVAL_SECONDS,
            max_intervals: crate::DEFAULT_MAX_INTERVALS,
            lag_buckets_seconds: DEFAULT_LAG_BUCKETS_SECONDS.to_vec(),
        }
    }
}

impl ConsistencyConfig {
    pub fn validate(&self) -> Result<(), MetricsError> {
        check_positive("max_keys", self.max_keys as u64)?;
        check_positive("max_writes_per_key", self.max_writes_per_key as u64)?;
        check_positive("max_pending", self.max_pending as u64)?;
        check_positive("max_findings", self.max_findings as u64)?;
        check_positive("max_region_pairs", self.max_region_pairs as u64)?;
        check_positive("max_usage_series", self.max_usage_series as u64)?;
        check_positive("interval_seconds", self.interval_seconds)?;
        check_positive("max_intervals", self.max_intervals as u64)?;
        check_buckets_of("lag_buckets_seconds", &self.lag_buckets_seconds)
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        whole_seconds_nanos(self.interval_seconds)
    }

    /// The time the kept lag intervals cover: `interval_seconds × max_intervals`.
    pub fn window_nanos(&self) -> u64 {
        window_nanos(self.interval_seconds, self.max_intervals)
    }

    pub(crate) fn wait_nanos(&self) -> u64 {
        whole_seconds_nanos(self.wait_seconds)
    }
}
