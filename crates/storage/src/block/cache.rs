//! A small byte-bounded cache of immutable per-block data (parsed footers, trace-ID
//! indexes), keyed by block ID.
//!
//! Blocks never change, so entries never go stale; they leave when the cache is over its
//! byte budget (least recently used first) or when the block is deleted. Entries are cheap
//! to clone (`Arc`s or types holding them).

use std::collections::HashMap;

use parking_lot::Mutex;

pub(crate) struct BlockCache<V> {
    capacity_bytes: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    total_bytes: usize,
    clock: u64,
}

struct Entry<V> {
    value: V,
    size_bytes: usize,
    last_used: u64,
}

impl<V: Clone> BlockCache<V> {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        BlockCache { capacity_bytes, inner: Mutex::new(Inner { entries: HashMap::new(), total_bytes: 0, clock: 0 }) }
    }

    pub(crate) fn get(&self, block_id: &str) -> Option<V> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let entry = inner.entries.get_mut(block_id)?;
        entry.last_used = clock;
        Some(entry.value.clone())
    }

    /// Caches `value` unless it alone exceeds the budget, evicting the least recently used
    /// entries to make room.
    pub(crate) fn insert(&self, block_id: &str, value: V, size_bytes: usize) {
        if size_bytes > self.capacity_bytes {
            return;
        }
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let clock = inner.clock;
        if let Some(old) = inner.entries.insert(block_id.to_owned(), Entry { value, size_bytes, last_used: clock }) {
            inner.total_bytes -= old.size_bytes;
        }
        inner.total_bytes += size_bytes;
        while inner.total_bytes > self.capacity_bytes {
            let Some(oldest) = inner.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some(evicted) = inner.entries.remove(&oldest) {
                inner.total_bytes -= evicted.size_bytes;
            }
        }
    }

    pub(crate) fn remove(&self, block_id: &str) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.entries.remove(block_id) {
            inner.total_bytes -= old.size_bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_to_stay_within_budget() {
        let cache = BlockCache::new(10);
        cache.insert("a", 1, 4);
        cache.insert("b", 2, 4);
        assert_eq!(cache.get("a"), Some(1)); // b is now the least recently used
        cache.insert("c", 3, 4);
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
        cache.insert("huge", 4, 11);
        assert_eq!(cache.get("huge"), None, "larger than the whole budget");
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
    }
}
