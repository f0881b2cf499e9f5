//! The decoded intervals read last, so queries over overlapping ranges (Jaeger's SPM reads its
//! `ratePer` window again for every step; alert rules re-read their window every evaluation)
//! decode each file once.
//!
//! Invariants:
//! - at most `budget_bytes` of encoded file size are held (decoded intervals take about three
//!   times that); inserting beyond it evicts the least recently used first, and an interval
//!   larger than the budget is not held at all;
//! - an entry is removed whenever its file is rewritten or deleted, so a hit is always the
//!   file's current content.

use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct IntervalCache<T> {
    /// `(start, interval, encoded size)`, least recently used first.
    entries: VecDeque<(u64, Arc<T>, usize)>,
    held_bytes: usize,
    budget_bytes: usize,
}

impl<T> IntervalCache<T> {
    pub(super) fn new(budget_bytes: usize) -> IntervalCache<T> {
        IntervalCache { entries: VecDeque::new(), held_bytes: 0, budget_bytes }
    }

    /// The interval starting at `start`, marked as just used.
    pub(super) fn get(&mut self, start_unix_nanos: u64) -> Option<Arc<T>> {
        let position = self.entries.iter().position(|(start, _, _)| *start == start_unix_nanos)?;
        let entry = self.entries.remove(position).expect("just found");
        let interval = entry.1.clone();
        self.entries.push_back(entry);
        Some(interval)
    }

    pub(super) fn insert(&mut self, start_unix_nanos: u64, interval: Arc<T>, encoded_bytes: usize) {
        self.remove(start_unix_nanos);
        if encoded_bytes > self.budget_bytes {
            return;
        }
        while self.held_bytes + encoded_bytes > self.budget_bytes {
            let (_, _, bytes) = self.entries.pop_front().expect("held bytes come from entries");
            self.held_bytes -= bytes;
        }
        self.held_bytes += encoded_bytes;
        self.entries.push_back((start_unix_nanos, interval, encoded_bytes));
    }

    pub(super) fn remove(&mut self, start_unix_nanos: u64) {
        if let Some(position) = self.entries.iter().position(|(start, _, _)| *start == start_unix_nanos) {
            let (_, _, bytes) = self.entries.remove(position).expect("just found");
            self.held_bytes -= bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let mut cache = IntervalCache::new(10);
        cache.insert(1, Arc::new("a"), 4);
        cache.insert(2, Arc::new("b"), 4);
        assert_eq!(cache.get(1).as_deref(), Some(&"a")); // 2 is now the least recently used
        cache.insert(3, Arc::new("c"), 4);
        assert!(cache.get(2).is_none(), "evicted to stay within 10 bytes");
        assert_eq!((cache.get(1).as_deref(), cache.get(3).as_deref()), (Some(&"a"), Some(&"c")));
        cache.insert(4, Arc::new("too large"), 11);
        assert!(cache.get(4).is_none());
        cache.insert(1, Arc::new("a2"), 2);
        assert_eq!(cache.get(1).as_deref(), Some(&"a2"), "a rewrite replaces");
        cache.remove(3);
        assert!(cache.get(3).is_none());
        assert_eq!(cache.held_bytes, 2);
    }
}
