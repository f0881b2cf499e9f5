//! Consistency analysis: stale reads, replication lag, conflict explanations and
//! consistency-level usage, derived from database spans that follow DESIGN.md's
//! eventual-consistency conventions ([`span`] lists the attributes and aliases).
//!
//! ```text
//!   &[Span] ──observe──> writes ─────────> WriteIndex (per key, bounded)
//!                        reads, applies ──> pending (wait_seconds) ──expire──> judged:
//!                            read:  stale? ──> StaleRead ring, counters, risky patterns
//!                            apply: lag ─────> histograms per region pair and interval
//!                                   conflict ─> Conflict ring
//! ```
//!
//! Definitions (the demo's ground truth uses the same, `crates/server/src/demo/store.rs`):
//! - a read of key K that returned version v and started at t is **stale** when some write
//!   of K with a version above v was acknowledged (its span ended) at or before t. The
//!   finding names the highest such version and its write; its **staleness** runs from the
//!   acknowledgement of the *first* write the read missed (the earliest acknowledged among
//!   them) to t. It is classified from the levels and regions of the read and of that
//!   newest write ([`level`]).
//! - the **replication lag** of a `db.replication.apply` span is its start minus the
//!   acknowledgement of the write of the same key and version; a lag is counted per
//!   (`db.replication.source_region` — else the write's region —, replica region) pair, in
//!   the interval holding the apply's start.
//! - an apply span with `db.conflict.resolution` is a **conflict**: its winner and loser
//!   versions are joined to the writes that produced them when remembered.
//! - a read **follows** the write of its key acknowledged last at or before its start; it is
//!   a **risky pattern** when its level is weaker ([`Level::strength`]) than that write's.
//!
//! Reads and applies wait `wait_seconds` on the caller's clock before they are judged, so
//! writes that arrive after them within the wait (other traces, other batches) count: the
//! result does not depend on arrival order within the wait. A write arriving later still is
//! not held against reads already judged. An apply whose writes (its own, and its
//! conflict's versions) are already remembered is judged at once: only earlier writes
//! concern it, so waiting could change nothing, and a hot key's writes during the wait
//! could push its writes out of the per-key bound.
//!
//! Bounds (all counted when they bite, see [`ConsistencyCounters`]): `max_keys` keys of at
//! most `max_writes_per_key` writes; `max_pending` waiting reads and applies (the oldest is
//! judged early); `max_findings` stale reads and as many conflicts (the oldest forgotten);
//! `max_region_pairs` region pairs; `max_usage_series` usage series; `max_intervals` lag
//! intervals. Nothing is persisted: the findings and histograms live in memory only.

mod config;
pub mod level;
pub mod span;
mod writes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use ahash::AHashMap;
use sextant_model::{AnyValue, Span, SpanId, TraceId, find_attribute};

pub use config::{
    ConsistencyConfig, DEFAULT_CONSISTENCY_MAX_FINDINGS, DEFAULT_CONSISTENCY_MAX_KEYS, DEFAULT_CONSISTENCY_MAX_PENDING,
    DEFAULT_CONSISTENCY_MAX_REGION_PAIRS, DEFAULT_CONSISTENCY_MAX_USAGE_SERIES, DEFAULT_CONSISTENCY_MAX_WRITES_PER_KEY,
    DEFAULT_CONSISTENCY_WAIT_SECONDS, DEFAULT_LAG_BUCKETS_SECONDS,
};
pub use level::{Classification, Level, classify};
pub use writes::WriteRecord;

use crate::MetricsError;
use crate::histogram::{Buckets, Exemplar, Histogram};
use crate::intervals::IntervalStore;
use span::{Access, DbSpan, unsigned, unsigned_attribute};
use writes::WriteIndex;

/// A span, by its IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// A stale read and the write it missed.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleRead {
    pub key: String,
    pub system: String,
    pub collection: String,
    pub read: SpanRef,
    pub read_service: String,
    pub read_region: String,
    pub read_level: String,
    pub returned_version: u64,
    pub read_start_unix_nanos: u64,
    /// The newest write acknowledged before the read (its version is `write.version`).
    pub write: WriteRecord,
    /// From the acknowledgement of the first write the read missed to the read's start.
    pub staleness_nanos: u64,
    pub classification: Classification,
    pub reason: String,
}

/// A version named by a conflict, with the write that produced it when remembered.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictVersion {
    pub version: u64,
    pub write_opt: Option<WriteRecord>,
}

/// A conflict resolved by a replica, explained.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub key: String,
    /// The replica region that resolved it.
    pub region: String,
    pub source_region: String,
    pub apply: SpanRef,
    pub apply_start_unix_nanos: u64,
    /// `db.conflict.resolution` (e.g. `lww`).
    pub resolution: String,
    pub winner: ConflictVersion,
    pub losers: Vec<ConflictVersion>,
    pub explanation: String,
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessKind {
    Read,
    Write,
}

impl AccessKind {
    pub fn name(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
        }
    }
}

/// A consistency-level usage series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub service: String,
    pub system: String,
    pub collection: String,
    pub operation: String,
    /// As written on the spans (empty when none).
    pub level: String,
    pub access: AccessKind,
}

/// Reads weaker than the writes they follow, per (reading service, collection, levels).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RiskyKey {
    pub service: String,
    pub collection: String,
    pub read_level: String,
    pub write_level: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RiskyStats {
    pub reads: u64,
    pub stale_reads: u64,
    /// The latest such read.
    pub example: SpanRef,
}

/// Replication lags of one region pair over some time.
#[derive(Clone, Debug, PartialEq)]
pub struct LagStats {
    pub histogram: Histogram,
    pub min_nanos: u64,
    pub max_nanos: u64,
}

impl LagStats {
    fn new(buckets: &Buckets) -> LagStats {
        LagStats { histogram: buckets.empty_histogram(), min_nanos: u64::MAX, max_nanos: 0 }
    }

    fn record(&mut self, buckets: &Buckets, lag_nanos: u64, exemplar: Exemplar) {
        self.histogram.record(buckets.index(lag_nanos), lag_nanos, Some(exemplar));
        self.min_nanos = self.min_nanos.min(lag_nanos);
        self.max_nanos = self.max_nanos.max(lag_nanos);
    }

    fn merge(&mut self, other: &LagStats) {
        self.histogram.merge(&other.histogram);
        self.min_nanos = self.min_nanos.min(other.min_nanos);
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    pub fn count(&self) -> u64 {
        self.histogram.count()
    }
}

/// The lags of one region pair over a range: totals and one entry per interval.
#[derive(Clone, Debug, PartialEq)]
pub struct LagSeries {
    pub source_region: String,
    pub replica_region: String,
    pub total: LagStats,
    /// (interval start, lags of the interval), oldest first, intervals with lags only.
    pub intervals: Vec<(u64, LagStats)>,
}

/// What happened to the spans the analyzer saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsistencyCounters {
    pub writes: u64,
    pub reads_judged: u64,
    pub stale_reads: u64,
    pub applies_judged: u64,
    /// Apply spans whose write (key and version) was not remembered: no lag counted.
    pub applies_without_write: u64,
    pub conflicts: u64,
    /// Reads and applies judged before their wait was over, to stay under `max_pending`.
    pub judged_early: u64,
    /// Keys forgotten to stay under `max_keys`.
    pub evicted_keys: u64,
    /// Writes forgotten (per-key cap or with their key).
    pub evicted_writes: u64,
    /// Stale reads and conflicts forgotten from the rings (`max_findings`).
    pub forgotten_findings: u64,
    /// Lags and stale reads of region pairs beyond `max_region_pairs`: counted nowhere else.
    pub overflowed_pairs: u64,
    /// Spans of usage series beyond `max_usage_series`.
    pub overflowed_usage: u64,
    /// Lags whose interval was older than every kept one (in the totals only).
    pub late_lags: u64,
}

#[derive(Debug)]
struct PendingRead {
    key: String,
    system: String,
    collection: String,
    read: SpanRef,
    service: String,
    region: String,
    level: String,
    level_opt: Option<Level>,
    returned_version: u64,
    start_unix_nanos: u64,
}

#[derive(Debug)]
struct PendingApply {
    key: String,
    version: u64,
    apply: SpanRef,
    start_unix_nanos: u64,
    source_region_opt: Option<String>,
    replica_region: String,
    /// (resolution, winner version, loser versions) when the apply resolved a conflict.
    conflict_opt: Option<(String, u64, Vec<u64>)>,
}

#[derive(Debug)]
enum Pending {
    Read(PendingRead),
    Apply(PendingApply),
}

/// The consistency analyzer; see the module documentation.
#[derive(Debug)]
pub struct ConsistencyAnalyzer {
    config: ConsistencyConfig,
    buckets: Buckets,
    writes: WriteIndex,
    /// (deadline, item), in arrival order.
    pending: VecDeque<(u64, Pending)>,
    stale_reads: VecDeque<StaleRead>,
    conflicts: VecDeque<Conflict>,
    /// (source region, replica region) → pair id.
    pair_ids: AHashMap<(String, String), u32>,
    pairs: Vec<(String, String)>,
    lag_totals: Vec<LagStats>,
    lag_intervals: IntervalStore<LagStats>,
    /// (pair id, classification) → stale reads, the pair being (write region, read region).
    stale_by_pair: BTreeMap<(u32, Classification), u64>,
    usage: BTreeMap<UsageKey, u64>,
    risky: BTreeMap<RiskyKey, RiskyStats>,
    counters: ConsistencyCounters,
}

impl ConsistencyAnalyzer {
    pub fn new(config: ConsistencyConfig) -> Result<ConsistencyAnalyzer, MetricsError> {
        config.validate()?;
        Ok(ConsistencyAnalyzer {
            buckets: Buckets::new(&config.lag_buckets_seconds),
            writes: WriteIndex::new(config.max_keys, config.max_writes_per_key),
            pending: VecDeque::new(),
            stale_reads: VecDeque::new(),
            conflicts: VecDeque::new(),
            pair_ids: AHashMap::new(),
            pairs: Vec::new(),
            lag_totals: Vec::new(),
            lag_intervals: IntervalStore::new(config.interval_nanos(), config.max_intervals),
            stale_by_pair: BTreeMap::new(),
            usage: BTreeMap::new(),
            risky: BTreeMap::new(),
            counters: ConsistencyCounters::default(),
            config,
        })
    }

    pub fn config(&self) -> &ConsistencyConfig {
        &self.config
    }

    /// Takes a batch: writes are remembered at once, reads and applies wait until
    /// `now_unix_nanos + wait_seconds` (judged by [`ConsistencyAnalyzer::expire`]).
    pub fn observe(&mut self, spans: &[Span], now_unix_nanos: u64) {
        let deadline = now_unix_nanos.saturating_add(self.config.wait_nanos());
        // Writes first, so a read in the same batch is judged against them whatever the order.
        for span in spans {
            let Some(db) = DbSpan::of(span) else { continue };
            if db.access == Access::Write {
                self.count_usage(span, &db, AccessKind::Write);
                self.counters.writes += 1;
                let record = WriteRecord {
                    version: db.version,
                    acknowledged_unix_nanos: span.end_unix_nanos,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    service: span.service_name().to_string(),
                    region: db.region.to_string(),
                    level: db.level_text.to_string(),
                    level_opt: db.level_opt,
                };
                self.writes.insert(db.key, record);
            }
        }
        for span in spans {
            let Some(db) = DbSpan::of(span) else { continue };
            let item = match db.access {
                Access::Write => continue,
                Access::Read => {
                    self.count_usage(span, &db, AccessKind::Read);
                    Pending::Read(PendingRead {
                        key: db.key.to_string(),
                        system: db.system.to_string(),
                        collection: db.collection.to_string(),
                        read: SpanRef { trace_id: span.trace_id, span_id: span.span_id },
                        service: span.service_name().to_string(),
                        region: db.region.to_string(),
                        level: db.level_text.to_string(),
                        level_opt: db.level_opt,
                        returned_version: db.version,
                        start_unix_nanos: span.start_unix_nanos,
                    })
                }
                Access::Apply => {
                    let apply = pending_apply(span, &db);
                    // Everything an apply is judged against is a write acknowledged before it:
                    // when those writes are here already, waiting cannot change the verdict,
                    // and judging now keeps a hot key's later writes from pushing them out.
                    if self.writes_known(&apply) {
                        self.judge_apply(apply);
                        continue;
                    }
                    Pending::Apply(apply)
                }
            };
            if self.pending.len() >= self.config.max_pending
                && let Some((_, early)) = self.pending.pop_front()
            {
                self.counters.judged_early += 1;
                self.judge(early);
            }
            self.pending.push_back((deadline, item));
        }
        self.sync_write_counters();
    }

    /// Judges every read and apply whose wait is over at `now_unix_nanos`.
    pub fn expire(&mut self, now_unix_nanos: u64) {
        while self.pending.front().is_some_and(|(deadline, _)| *deadline <= now_unix_nanos) {
            let (_, item) = self.pending.pop_front().expect("just peeked");
            self.judge(item);
        }
    }

    /// Forgets the lag intervals that ended at or before `cutoff_unix_nanos` (and those
    /// pushed out of the full window); the totals keep them.
    pub fn remove_intervals_before(&mut self, cutoff_unix_nanos: u64) {
        self.lag_intervals.take_before(cutoff_unix_nanos);
    }

    fn sync_write_counters(&mut self) {
        self.counters.evicted_keys = self.writes.evicted_keys;
        self.counters.evicted_writes = self.writes.evicted_writes;
    }

    fn count_usage(&mut self, span: &Span, db: &DbSpan, access: AccessKind) {
        let key = UsageKey {
            service: span.service_name().to_string(),
            system: db.system.to_string(),
            collection: db.collection.to_string(),
            operation: db.operation.clone(),
            level: db.level_text.to_string(),
            access,
        };
        if let Some(count) = self.usage.get_mut(&key) {
            *count += 1;
        } else if self.usage.len() < self.config.max_usage_series {
            self.usage.insert(key, 1);
        } else {
            self.counters.overflowed_usage += 1;
        }
    }

    fn pair_id(&mut self, source: &str, replica: &str) -> Option<u32> {
        let key = (source.to_string(), replica.to_string());
        if let Some(id) = self.pair_ids.get(&key) {
            return Some(*id);
        }
        if self.pairs.len() >= self.config.max_region_pairs {
            self.counters.overflowed_pairs += 1;
            return None;
        }
        let id = self.pairs.len() as u32;
        self.pairs.push(key.clone());
        self.pair_ids.insert(key, id);
        self.lag_totals.push(LagStats::new(&self.buckets));
        Some(id)
    }

    /// Whether the write an apply replicated, and those of its conflict's versions, are
    /// remembered.
    fn writes_known(&self, apply: &PendingApply) -> bool {
        let known = |version: u64| self.writes.find(&apply.key, version).is_some();
        known(apply.version)
            && apply
                .conflict_opt
                .as_ref()
                .is_none_or(|(_, winner, losers)| known(*winner) && losers.iter().all(|loser| known(*loser)))
    }

    fn judge(&mut self, item: Pending) {
        match item {
            Pending::Read(read) => self.judge_read(read),
            Pending::Apply(apply) => self.judge_apply(apply),
        }
    }

    fn judge_read(&mut self, read: PendingRead) {
        self.counters.reads_judged += 1;
        let mut newest_opt: Option<&WriteRecord> = None;
        let mut first_missed_ack = u64::MAX;
        let mut followed_opt: Option<&WriteRecord> = None;
        for write in self.writes.writes(&read.key) {
            if write.acknowledged_unix_nanos > read.start_unix_nanos {
                continue;
            }
            // Writes are in acknowledgement order: the last seen is the one the read follows.
            followed_opt = Some(write);
            if write.version > read.returned_version {
                first_missed_ack = first_missed_ack.min(write.acknowledged_unix_nanos);
                if newest_opt.is_none_or(|newest| write.version >= newest.version) {
                    newest_opt = Some(write);
                }
            }
        }
        let stale_opt = newest_opt.map(|newest| (newest.clone(), read.start_unix_nanos - first_missed_ack));
        let followed_opt = followed_opt.map(|w| (w.level.clone(), w.level_opt));
        if let Some((write_level, Some(write_level_parsed))) = followed_opt
            && read.level_opt.is_some_and(|r| r.strength() < write_level_parsed.strength())
        {
            let key = RiskyKey {
                service: read.service.clone(),
                collection: read.collection.clone(),
                read_level: read.level.clone(),
                write_level,
            };
            let stats = self.risky.entry(key).or_insert(RiskyStats { reads: 0, stale_reads: 0, example: read.read });
            stats.reads += 1;
            stats.stale_reads += u64::from(stale_opt.is_some());
            stats.example = read.read;
        }
        let Some((write, staleness_nanos)) = stale_opt else { return };
        self.counters.stale_reads += 1;
        let (classification, reason) = classify(read.level_opt, write.level_opt, read.region == write.region);
        if let Some(pair) = self.pair_id(&write.region, &read.region) {
            *self.stale_by_pair.entry((pair, classification)).or_default() += 1;
        }
        if self.stale_reads.len() >= self.config.max_findings {
            self.stale_reads.pop_front();
            self.counters.forgotten_findings += 1;
        }
        self.stale_reads.push_back(StaleRead {
            key: read.key,
            system: read.system,
            collection: read.collection,
            read: read.read,
            read_service: read.service,
            read_region: read.region,
            read_level: read.level,
            returned_version: read.returned_version,
            read_start_unix_nanos: read.start_unix_nanos,
            write,
            staleness_nanos,
            classification,
            reason,
        });
    }

    fn judge_apply(&mut self, apply: PendingApply) {
        self.counters.applies_judged += 1;
        let write_opt = self.writes.find(&apply.key, apply.version).cloned();
        let source_region = apply
            .source_region_opt
            .clone()
            .or_else(|| write_opt.as_ref().map(|w| w.region.clone()))
            .unwrap_or_default();
        match &write_opt {
            Some(write) => {
                let lag_nanos = apply.start_unix_nanos.saturating_sub(write.acknowledged_unix_nanos);
                if let Some(pair) = self.pair_id(&source_region, &apply.replica_region) {
                    let exemplar = Exemplar {
                        trace_id: apply.apply.trace_id,
                        span_id: apply.apply.span_id,
                        duration_nanos: lag_nanos,
                        timestamp_unix_nanos: apply.start_unix_nanos,
                    };
                    let buckets = &self.buckets;
                    self.lag_totals[pair as usize].record(buckets, lag_nanos, exemplar);
                    match self.lag_intervals.value_mut(apply.start_unix_nanos, pair, || LagStats::new(buckets)) {
                        Some(stats) => stats.record(buckets, lag_nanos, exemplar),
                        None => self.counters.late_lags += 1,
                    }
                }
            }
            None => self.counters.applies_without_write += 1,
        }
        let Some((resolution, winner_version, loser_versions)) = apply.conflict_opt else { return };
        self.counters.conflicts += 1;
        let version =
            |version: u64| ConflictVersion { version, write_opt: self.writes.find(&apply.key, version).cloned() };
        let winner = version(winner_version);
        let losers: Vec<ConflictVersion> = loser_versions.iter().map(|v| version(*v)).collect();
        let explanation = explain(&resolution, &winner, &losers);
        if self.conflicts.len() >= self.config.max_findings {
            self.conflicts.pop_front();
            self.counters.forgotten_findings += 1;
        }
        self.conflicts.push_back(Conflict {
            key: apply.key,
            region: apply.replica_region,
            source_region,
            apply: apply.apply,
            apply_start_unix_nanos: apply.start_unix_nanos,
            resolution,
            winner,
            losers,
            explanation,
        });
    }

    /// The stale reads kept, oldest judged first.
    pub fn stale_reads(&self) -> impl DoubleEndedIterator<Item = &StaleRead> {
        self.stale_reads.iter()
    }

    /// The conflicts kept, oldest judged first.
    pub fn conflicts(&self) -> impl DoubleEndedIterator<Item = &Conflict> {
        self.conflicts.iter()
    }

    /// Usage counts per series, sorted.
    pub fn usage(&self) -> impl Iterator<Item = (&UsageKey, u64)> {
        self.usage.iter().map(|(k, v)| (k, *v))
    }

    /// Risky patterns, sorted.
    pub fn risky_patterns(&self) -> impl Iterator<Item = (&RiskyKey, &RiskyStats)> {
        self.risky.iter()
    }

    /// Stale reads per (write region, read region, classification), totals since start.
    pub fn stale_reads_by_pair(&self) -> Vec<(&str, &str, Classification, u64)> {
        self.stale_by_pair
            .iter()
            .map(|((pair, class), count)| {
                let (source, replica) = &self.pairs[*pair as usize];
                (source.as_str(), replica.as_str(), *class, *count)
            })
            .collect()
    }

    /// Cumulative lag per region pair (source, replica), sorted by the pair.
    pub fn lag_totals(&self) -> Vec<(&str, &str, &LagStats)> {
        let mut totals: Vec<_> = self
            .pairs
            .iter()
            .zip(&self.lag_totals)
            .filter(|(_, stats)| stats.count() > 0)
            .map(|((source, replica), stats)| (source.as_str(), replica.as_str(), stats))
            .collect();
        totals.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        totals
    }

    /// Lags per region pair over the kept intervals that start in `[from, to)` (the first one
    /// aligned down to its interval), sorted by the pair; pairs without lags left out.
    pub fn lag_in_range(&self, from_unix_nanos: u64, to_unix_nanos: u64) -> Vec<LagSeries> {
        let from = self.lag_intervals.align(from_unix_nanos);
        let mut series: BTreeMap<u32, LagSeries> = BTreeMap::new();
        for (start, values) in self.lag_intervals.range(from, to_unix_nanos) {
            for (pair, stats) in values {
                let entry = series.entry(*pair).or_insert_with(|| {
                    let (source, replica) = &self.pairs[*pair as usize];
                    LagSeries {
                        source_region: source.clone(),
                        replica_region: replica.clone(),
                        total: LagStats::new(&self.buckets),
                        intervals: Vec::new(),
                    }
                });
                entry.total.merge(stats);
                entry.intervals.push((start, stats.clone()));
            }
        }
        let mut series: Vec<LagSeries> = series.into_values().collect();
        series.sort_by(|a, b| (&a.source_region, &a.replica_region).cmp(&(&b.source_region, &b.replica_region)));
        series
    }

    /// Starts of the kept lag intervals, oldest first.
    pub fn lag_interval_starts(&self) -> Vec<u64> {
        self.lag_intervals.starts().collect()
    }

    pub fn interval_nanos(&self) -> u64 {
        self.lag_intervals.interval_nanos()
    }

    pub fn lag_bounds_seconds(&self) -> &[f64] {
        self.buckets.bounds_seconds()
    }

    pub fn counters(&self) -> ConsistencyCounters {
        self.counters
    }

    /// Reads and applies waiting to be judged.
    pub fn num_pending(&self) -> usize {
        self.pending.len()
    }

    /// Keys and writes remembered.
    pub fn num_keys(&self) -> usize {
        self.writes.num_keys()
    }

    pub fn num_writes(&self) -> usize {
        self.writes.num_writes()
    }
}

fn pending_apply(span: &Span, db: &DbSpan) -> PendingApply {
    let source_region_opt =
        find_attribute(&span.attributes, "db.replication.source_region").and_then(AnyValue::as_str).map(str::to_string);
    let conflict_opt =
        find_attribute(&span.attributes, "db.conflict.resolution").and_then(AnyValue::as_str).map(|resolution| {
            let winner = unsigned_attribute(span, "db.conflict.winner_version").unwrap_or(db.version);
            let losers = match find_attribute(&span.attributes, "db.conflict.loser_versions") {
                Some(AnyValue::Array(values)) => values.iter().filter_map(unsigned).collect(),
                Some(AnyValue::String(text)) => text.split(',').filter_map(|v| v.trim().parse().ok()).collect(),
                Some(other) => unsigned(other).into_iter().collect(),
                None => Vec::new(),
            };
            (resolution.to_string(), winner, losers)
        });
    PendingApply {
        key: db.key.to_string(),
        version: db.version,
        apply: SpanRef { trace_id: span.trace_id, span_id: span.span_id },
        start_unix_nanos: span.start_unix_nanos,
        source_region_opt,
        replica_region: db.region.to_string(),
        conflict_opt,
    }
}

/// Why the winner won, in a sentence.
fn explain(resolution: &str, winner: &ConflictVersion, losers: &[ConflictVersion]) -> String {
    let describe = |v: &ConflictVersion| match &v.write_opt {
        Some(w) => format!("{} (written by {} in {})", v.version, w.service, w.region),
        None => v.version.to_string(),
    };
    let losers_text = losers.iter().map(describe).collect::<Vec<_>>().join(", ");
    if resolution.eq_ignore_ascii_case("lww") {
        format!(
            "last write wins: version {} is the newest timestamp; {} discarded",
            describe(winner),
            if losers_text.is_empty() { "older versions".to_string() } else { losers_text }
        )
    } else {
        format!("resolved by {resolution}: version {} kept over {losers_text}", describe(winner))
    }
}
