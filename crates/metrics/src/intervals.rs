//! The bounded window of per-interval aggregates: for each interval, the statistics of each
//! series (by id) that had something end in it.
//!
//! Invariants:
//! - an interval is keyed by its start, `end_unix_nanos - end_unix_nanos % interval_nanos`,
//!   and holds exactly the observations whose end time lies in `[start, start + interval)`;
//! - at most `max_intervals` intervals are kept: creating one more evicts the oldest, and
//!   an observation older than every kept interval while the window is full is not kept
//!   (counted in `late_observations`), since keeping it would evict it at once;
//! - an interval leaves the store only through [`IntervalStore::take_before`] or
//!   [`IntervalStore::take_all`], which hand it to the caller (to be persisted): one evicted
//!   by a new interval waits in `evicted` until the next take;
//! - the series table outlives the ids held here: a series is removed only when no kept or
//!   evicted interval holds its id (see [`IntervalStore::holds`]).

use std::collections::BTreeMap;

use ahash::AHashMap;

#[derive(Debug)]
pub(crate) struct IntervalStore<V> {
    interval_nanos: u64,
    max_intervals: usize,
    intervals: BTreeMap<u64, AHashMap<u32, V>>,
    /// Intervals pushed out of the window by a newer one, oldest first, until taken.
    evicted: Vec<(u64, AHashMap<u32, V>)>,
    late_observations: u64,
}

impl<V> IntervalStore<V> {
    pub(crate) fn new(interval_nanos: u64, max_intervals: usize) -> Self {
        IntervalStore {
            interval_nanos,
            max_intervals,
            intervals: BTreeMap::new(),
            evicted: Vec::new(),
            late_observations: 0,
        }
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// The start of the interval holding an end time.
    pub(crate) fn align(&self, end_unix_nanos: u64) -> u64 {
        end_unix_nanos - end_unix_nanos % self.interval_nanos
    }

    /// The statistics of series `id` in the interval holding `end_unix_nanos`, created with
    /// `new_value` if needed; `None` (and counted) if that interval is older than the window.
    pub(crate) fn value_mut(&mut self, end_unix_nanos: u64, id: u32, new_value: impl FnOnce() -> V) -> Option<&mut V> {
        let start = self.align(end_unix_nanos);
        if !self.intervals.contains_key(&start) && self.intervals.len() >= self.max_intervals {
            let oldest = *self.intervals.keys().next().expect("a full window is not empty");
            if start < oldest {
                self.late_observations += 1;
                return None;
            }
            let values = self.intervals.remove(&oldest).expect("just found");
            self.evicted.push((oldest, values));
        }
        Some(self.intervals.entry(start).or_default().entry(id).or_insert_with(new_value))
    }

    /// Takes every interval that ends at or before `cutoff_unix_nanos`, and those evicted
    /// since the last take, oldest first.
    pub(crate) fn take_before(&mut self, cutoff_unix_nanos: u64) -> Vec<(u64, AHashMap<u32, V>)> {
        let mut taken = std::mem::take(&mut self.evicted);
        // An interval [start, start + len) ends at or before the cutoff iff start <= cutoff - len.
        if let Some(last_start_taken) = cutoff_unix_nanos.checked_sub(self.interval_nanos) {
            let kept = self.intervals.split_off(&(last_start_taken + 1));
            taken.extend(std::mem::replace(&mut self.intervals, kept));
        }
        taken.sort_by_key(|(start, _)| *start);
        taken
    }

    /// Takes every interval, kept or evicted, oldest first (on shutdown).
    pub(crate) fn take_all(&mut self) -> Vec<(u64, AHashMap<u32, V>)> {
        self.take_before(u64::MAX)
    }

    /// Intervals whose start lies in `[from, to)`, oldest first.
    pub(crate) fn range(
        &self,
        from_unix_nanos: u64,
        to_unix_nanos: u64,
    ) -> impl Iterator<Item = (u64, &AHashMap<u32, V>)> {
        let range = if from_unix_nanos < to_unix_nanos { from_unix_nanos..to_unix_nanos } else { 0..0 };
        self.intervals.range(range).map(|(start, values)| (*start, values))
    }

    /// Every kept interval's start, oldest first.
    pub(crate) fn starts(&self) -> impl Iterator<Item = u64> + '_ {
        self.intervals.keys().copied()
    }

    /// Whether a kept or evicted interval holds series `id`.
    pub(crate) fn holds(&self, id: u32) -> bool {
        self.intervals
            .values()
            .chain(self.evicted.iter().map(|(_, values)| values))
            .any(|values| values.contains_key(&id))
    }

    /// Observations not kept because their interval was older than the full window.
    pub(crate) fn late_observations(&self) -> u64 {
        self.late_observations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_newest_intervals() {
        let mut store: IntervalStore<u64> = IntervalStore::new(10, 2);
        *store.value_mut(15, 1, || 0).unwrap() += 1; // interval 10
        *store.value_mut(19, 1, || 0).unwrap() += 1; // interval 10 again
        *store.value_mut(20, 1, || 0).unwrap() += 1; // interval 20
        assert_eq!(store.starts().collect::<Vec<_>>(), [10, 20]);
        assert_eq!(store.range(0, 100).map(|(s, v)| (s, v[&1])).collect::<Vec<_>>(), [(10, 2), (20, 1)]);

        *store.value_mut(35, 2, || 0).unwrap() += 1; // interval 30 evicts 10
        assert_eq!(store.starts().collect::<Vec<_>>(), [20, 30]);
        assert!(store.value_mut(5, 1, || 0).is_none(), "older than the full window");
        assert_eq!(store.late_observations(), 1);
        assert!(store.holds(2));
        assert!(store.holds(1), "the evicted interval still holds series 1 until it is taken");
        assert_eq!(store.range(20, 30).map(|(s, _)| s).collect::<Vec<_>>(), [20], "to is exclusive");
        let taken = store.take_before(0);
        assert_eq!(taken.iter().map(|(s, v)| (*s, v[&1])).collect::<Vec<_>>(), [(10, 2)], "the evicted interval");
        assert!(store.take_before(0).is_empty(), "an evicted interval is handed over once");
    }

    #[test]
    fn take_before_hands_over_intervals_that_ended() {
        let mut store: IntervalStore<u64> = IntervalStore::new(10, 10);
        for end in [0, 10, 20, 30] {
            store.value_mut(end, 1, || 0);
        }
        let starts = |taken: Vec<(u64, AHashMap<u32, u64>)>| taken.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(starts(store.take_before(25)), [0, 10], "[0,10) and [10,20) ended; [20,30) has not");
        assert_eq!(store.starts().collect::<Vec<_>>(), [20, 30]);
        assert_eq!(starts(store.take_before(30)), [20]);
        assert!(store.take_before(5).is_empty());
        assert_eq!(starts(store.take_all()), [30]);
        assert_eq!(store.starts().count(), 0);
    }
}
