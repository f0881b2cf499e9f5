//! The replicated key-value store that cart and catalog write to: a pure model, no I/O.
//!
//! Each region holds a replica of every key. A write is accepted by the replica of the region
//! it is sent to, with a version that is the coordinator's clock at the start of the write (a
//! last-write-wins timestamp), and acknowledged when the write span ends. The other replicas
//! apply it later, after a delay per (source, replica) pair chosen by the caller. A replica
//! holds the highest version it has applied (last write wins).
//!
//! Reads:
//! | level | returns |
//! |---|---|
//! | `ONE`, `LOCAL_QUORUM` | the version the replica of the reading region holds at the read |
//! | `QUORUM`, `ALL` | the highest acknowledged version (the coordinator waits for the others) |
//!
//! A read is *stale* when it returns version v of a key although a write of a higher version
//! was acknowledged before the read started. Applying a write whose writer had not seen the
//! version the replica holds is a *conflict*, resolved last-write-wins: the higher version
//! stays, the other is the loser.
//!
//! Time moves forward only: [`Store::advance_to`] applies the pending replications due, in
//! order, and hands them back so that the caller can emit their spans.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use sextant_model::{SpanId, TraceId};

use super::topology::Region;

/// A requested consistency level (`db.consistency_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    #[serde(rename = "ONE")]
    One,
    #[serde(rename = "LOCAL_QUORUM")]
    LocalQuorum,
    #[serde(rename = "QUORUM")]
    Quorum,
    #[serde(rename = "ALL")]
    All,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::One => "ONE",
            Level::LocalQuorum => "LOCAL_QUORUM",
            Level::Quorum => "QUORUM",
            Level::All => "ALL",
        }
    }

    /// Reads at this level see only what the local replica holds.
    pub fn is_local(self) -> bool {
        matches!(self, Level::One | Level::LocalQuorum)
    }
}

/// The span that performed a write, carried along so that its replication spans join its
/// trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `business_process.id` of the writing trace.
    pub process_id: String,
}

/// An acknowledged write.
#[derive(Clone, Debug)]
pub struct Write {
    pub version: u64,
    pub value: i64,
    pub region: Region,
    pub level: Level,
    pub acknowledged_unix_nanos: u64,
    pub origin: Origin,
}

/// A replication applied to a replica, as [`Store::advance_to`] hands it back.
#[derive(Clone, Debug)]
pub struct Applied {
    pub key: String,
    pub write: Write,
    pub replica: Region,
    pub applied_unix_nanos: u64,
    /// `(winner, losers)` when the replica held a version the writer had not seen.
    pub conflict: Option<(u64, Vec<u64>)>,
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadResult {
    /// 0 when the key was never written (an empty cart).
    pub version: u64,
    pub value: i64,
    pub stale: Option<Staleness>,
}

/// Why a read was stale.
#[derive(Clone, Debug, PartialEq)]
pub struct Staleness {
    /// The highest version acknowledged before the read.
    pub newer_version: u64,
    pub newer_write_region: Region,
    pub newer_write_level: Level,
    pub newer_write: Origin,
    /// From the acknowledgement of the first write the read missed to the read.
    pub staleness_nanos: u64,
}

#[derive(Default)]
struct KeyState {
    /// Per region: (version, value) held.
    replicas: [(u64, i64); 3],
    /// Acknowledged writes, in acknowledgement order, from the one every replica holds on.
    writes: Vec<Write>,
}

/// A replication in flight.
struct Pending {
    key: String,
    write: Write,
    /// The version the writer's replica held when the write started.
    base_version: u64,
    replica: Region,
}

#[derive(Default)]
pub struct Store {
    keys: HashMap<String, KeyState>,
    /// (due time, submission order) of the replications in flight, earliest first.
    pending: BinaryHeap<Reverse<(u64, u64)>>,
    pending_by_sequence: HashMap<u64, Pending>,
    next_sequence: u64,
}

impl Store {
    /// Applies every replication due at or before `now`, in time order.
    pub fn advance_to(&mut self, now_unix_nanos: u64) -> Vec<Applied> {
        let mut applied = Vec::new();
        while let Some(&Reverse((at, sequence))) = self.pending.peek() {
            if at > now_unix_nanos {
                break;
            }
            self.pending.pop();
            let p = self.pending_by_sequence.remove(&sequence).expect("pending entry of a heap entry");
            let state = self.keys.entry(p.key.clone()).or_default();
            let held = state.replicas[p.replica.0];
            let incoming = p.write.version;
            let conflict = (held.0 > p.base_version && held.0 != incoming)
                .then(|| (held.0.max(incoming), vec![held.0.min(incoming)]));
            if incoming > held.0 {
                state.replicas[p.replica.0] = (incoming, p.write.value);
            }
            // Writes below what every replica holds can no longer make a read stale.
            let oldest_held = state.replicas.iter().map(|r| r.0).min().unwrap_or(0);
            state.writes.retain(|w| w.version >= oldest_held);
            applied.push(Applied { key: p.key, write: p.write, replica: p.replica, applied_unix_nanos: at, conflict });
        }
        applied
    }

    /// Records a write of `value` accepted in `write.region` at `version` (its start), then
    /// acknowledged at `write.acknowledged_unix_nanos`, to be applied on every other replica
    /// after `delays_nanos[replica]`. The caller has advanced the store to the acknowledgement.
    pub fn write(&mut self, key: &str, write: Write, delays_nanos: [u64; 3]) {
        let state = self.keys.entry(key.to_string()).or_default();
        let local = &mut state.replicas[write.region.0];
        let base_version = local.0;
        if write.version > local.0 {
            *local = (write.version, write.value);
        }
        state.writes.push(write.clone());
        for replica in Region::all().filter(|r| *r != write.region) {
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            let at_unix_nanos = write.acknowledged_unix_nanos + delays_nanos[replica.0];
            self.pending.push(Reverse((at_unix_nanos, sequence)));
            self.pending_by_sequence
                .insert(sequence, Pending { key: key.to_string(), write: write.clone(), base_version, replica });
        }
    }

    /// The version held by `region`'s replica (what a write there would overwrite).
    pub fn held(&self, key: &str, region: Region) -> u64 {
        self.keys.get(key).map_or(0, |s| s.replicas[region.0].0)
    }

    /// A read of `key` in `region` at `level`, started at `at_unix_nanos` (the store has been
    /// advanced to it).
    pub fn read(&self, key: &str, region: Region, level: Level, at_unix_nanos: u64) -> ReadResult {
        let Some(state) = self.keys.get(key) else { return ReadResult { version: 0, value: 0, stale: None } };
        let acknowledged = state.writes.iter().filter(|w| w.acknowledged_unix_nanos <= at_unix_nanos);
        let newest = acknowledged.clone().max_by_key(|w| w.version);
        let (version, value) =
            if level.is_local() { state.replicas[region.0] } else { newest.map_or((0, 0), |w| (w.version, w.value)) };
        let stale = newest.filter(|w| w.version > version).map(|newest| {
            let first_missed = acknowledged
                .filter(|w| w.version > version)
                .map(|w| w.acknowledged_unix_nanos)
                .min()
                .expect("the newest write is missed");
            Staleness {
                newer_version: newest.version,
                newer_write_region: newest.region,
                newer_write_level: newest.level,
                newer_write: newest.origin.clone(),
                staleness_nanos: at_unix_nanos - first_missed,
            }
        });
        ReadResult { version, value, stale }
    }

    /// Replications still in flight.
    pub fn num_pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(version: u64, region: usize, acknowledged: u64) -> Write {
        Write {
            version,
            value: version as i64,
            region: Region(region),
            level: Level::LocalQuorum,
            acknowledged_unix_nanos: acknowledged,
            origin: Origin {
                trace_id: TraceId([1; 16]),
                span_id: SpanId([version as u8; 8]),
                process_id: String::new(),
            },
        }
    }

    #[test]
    fn a_weak_read_before_the_replication_is_stale_a_quorum_read_is_not() {
        let mut store = Store::default();
        store.write("cart:1", write(100, 0, 110), [0, 5_000, 50]);
        assert_eq!(store.advance_to(120).len(), 0);
        let read = store.read("cart:1", Region(1), Level::One, 120);
        assert_eq!(
            (read.version, read.stale.as_ref().map(|s| (s.newer_version, s.staleness_nanos))),
            (0, Some((100, 10)))
        );
        let quorum = store.read("cart:1", Region(1), Level::Quorum, 120);
        assert_eq!((quorum.version, quorum.stale), (100, None));
        let applied = store.advance_to(5_110);
        let regions: Vec<_> = applied.iter().map(|a| (a.replica, a.applied_unix_nanos)).collect();
        assert_eq!(regions, vec![(Region(2), 160), (Region(1), 5_110)]);
        assert_eq!(store.read("cart:1", Region(1), Level::One, 5_110).stale, None);
        assert_eq!(store.num_pending(), 0);
    }

    #[test]
    fn a_read_before_the_acknowledgement_is_not_stale() {
        let mut store = Store::default();
        store.write("k", write(100, 0, 110), [0, 50, 50]);
        assert_eq!(store.read("k", Region(1), Level::One, 105).stale, None);
    }

    #[test]
    fn concurrent_writes_conflict_on_every_replica_and_the_highest_version_wins() {
        let mut store = Store::default();
        store.write("price:1", write(100, 0, 101), [0, 40, 40]);
        store.write("price:1", write(120, 1, 121), [40, 0, 40]);
        let applied = store.advance_to(1_000);
        let conflicts: Vec<_> = applied.iter().map(|a| (a.replica, a.write.version, a.conflict.clone())).collect();
        assert_eq!(
            conflicts,
            vec![
                (Region(1), 100, Some((120, vec![100]))),
                (Region(2), 100, None),
                (Region(0), 120, Some((120, vec![100]))),
                (Region(2), 120, Some((120, vec![100]))),
            ]
        );
        for region in Region::all() {
            assert_eq!(store.read("price:1", region, Level::One, 1_000).version, 120);
        }
    }

    #[test]
    fn a_write_that_saw_the_previous_one_does_not_conflict() {
        let mut store = Store::default();
        store.write("k", write(100, 0, 101), [0, 10, 10]);
        store.advance_to(200);
        store.write("k", write(300, 1, 301), [10, 0, 10]);
        assert!(store.advance_to(1_000).iter().all(|a| a.conflict.is_none()));
        // Once every replica holds version 300, only that write is kept, and still read.
        assert_eq!(store.keys["k"].writes.iter().map(|w| w.version).collect::<Vec<_>>(), vec![300]);
        assert_eq!(store.read("k", Region(2), Level::All, 1_000).version, 300);
    }
}
