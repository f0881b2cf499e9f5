//! The bounded memory of recent acknowledged writes, per key.
//!
//! Invariants:
//! - at most `max_keys` keys: writing one more key forgets the key written least recently
//!   (its writes counted in `evicted_writes`, the key in `evicted_keys`);
//! - at most `max_writes_per_key` writes per key: one more forgets the earliest
//!   acknowledged (counted in `evicted_writes`), so what a key keeps is its newest writes;
//! - the same span (trace and span ID) is remembered once (a retried export).

use std::collections::{BTreeMap, VecDeque};

use ahash::AHashMap;
use sextant_model::{SpanId, TraceId};

use super::level::Level;

/// An acknowledged write of a key.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteRecord {
    pub version: u64,
    /// When the write span ended.
    pub acknowledged_unix_nanos: u64,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub service: String,
    /// The replica region that accepted it.
    pub region: String,
    /// The level as written on the span (empty when none).
    pub level: String,
    pub level_opt: Option<Level>,
}

#[derive(Debug)]
struct KeyWrites {
    writes: VecDeque<WriteRecord>,
    /// When the key was last written, in insertion order (its entry in `lru`).
    touch: u64,
}

#[derive(Debug)]
pub(crate) struct WriteIndex {
    max_keys: usize,
    max_writes_per_key: usize,
    keys: AHashMap<String, KeyWrites>,
    /// touch → key, the least recently written first.
    lru: BTreeMap<u64, String>,
    next_touch: u64,
    pub(crate) evicted_keys: u64,
    pub(crate) evicted_writes: u64,
}

impl WriteIndex {
    pub(crate) fn new(max_keys: usize, max_writes_per_key: usize) -> WriteIndex {
        WriteIndex {
            max_keys,
            max_writes_per_key,
            keys: AHashMap::new(),
            lru: BTreeMap::new(),
            next_touch: 0,
            evicted_keys: 0,
            evicted_writes: 0,
        }
    }

    pub(crate) fn insert(&mut self, key: &str, write: WriteRecord) {
        let touch = self.next_touch;
        self.next_touch += 1;
        if !self.keys.contains_key(key)
            && self.keys.len() >= self.max_keys
            && let Some((_, oldest)) = self.lru.pop_first()
        {
            if let Some(forgotten) = self.keys.remove(&oldest) {
                self.evicted_writes += forgotten.writes.len() as u64;
            }
            self.evicted_keys += 1;
        }
        let entry = self.keys.entry(key.to_string()).or_insert_with(|| KeyWrites { writes: VecDeque::new(), touch });
        if entry.writes.iter().any(|w| w.trace_id == write.trace_id && w.span_id == write.span_id) {
            return;
        }
        self.lru.remove(&entry.touch);
        entry.touch = touch;
        self.lru.insert(touch, key.to_string());
        // Kept in acknowledgement order, so the earliest is at the front.
        let at = entry.writes.partition_point(|w| w.acknowledged_unix_nanos <= write.acknowledged_unix_nanos);
        entry.writes.insert(at, write);
        if entry.writes.len() > self.max_writes_per_key {
            entry.writes.pop_front();
            self.evicted_writes += 1;
        }
    }

    /// The remembered writes of a key, earliest acknowledged first.
    pub(crate) fn writes(&self, key: &str) -> impl Iterator<Item = &WriteRecord> {
        self.keys.get(key).into_iter().flat_map(|k| k.writes.iter())
    }

    /// The write of `key` that wrote `version` (the last remembered if several did).
    pub(crate) fn find(&self, key: &str, version: u64) -> Option<&WriteRecord> {
        self.writes(key).filter(|w| w.version == version).last()
    }

    pub(crate) fn num_keys(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn num_writes(&self) -> usize {
        self.keys.values().map(|k| k.writes.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(version: u64, ack: u64) -> WriteRecord {
        WriteRecord {
            version,
            acknowledged_unix_nanos: ack,
            trace_id: TraceId([1; 16]),
            span_id: SpanId([version as u8; 8]),
            service: "cart".into(),
            region: "us-east-1".into(),
            level: "ONE".into(),
            level_opt: Some(Level::One),
        }
    }

    #[test]
    fn keys_and_writes_per_key_are_bounded() {
        let mut index = WriteIndex::new(2, 2);
        index.insert("a", write(1, 10));
        index.insert("a", write(3, 30));
        index.insert("a", write(2, 20));
        assert_eq!(index.writes("a").map(|w| w.version).collect::<Vec<_>>(), [2, 3], "the earliest ack is forgotten");
        index.insert("a", write(3, 30));
        assert_eq!(index.writes("a").count(), 2, "the same span is remembered once");
        index.insert("b", write(4, 40));
        index.insert("a", write(5, 50)); // a is now the most recently written
        index.insert("c", write(6, 60)); // forgets b
        assert_eq!((index.num_keys(), index.writes("b").count()), (2, 0));
        assert_eq!((index.evicted_keys, index.evicted_writes), (1, 3));
        assert_eq!(index.find("a", 5).map(|w| w.acknowledged_unix_nanos), Some(50));
        assert_eq!(index.find("a", 1), None);
    }
}
