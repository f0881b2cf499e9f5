//! The bounded table of series: label sets, their ids, and their cumulative totals.
//!
//! A series is found from labels borrowed from a span, without allocating: the caller
//! hashes the borrowed labels with the table's hasher and passes that hash with an equality
//! test; only a new series builds its owned key.
//!
//! Invariants:
//! - at most `max_series` series besides the overflow series; once full, lookups of new
//!   label sets resolve to the overflow series (created on first use, never indexed by
//!   hash) and are counted in `overflowed`;
//! - ids are indexes into `slots`; a removed series' id goes to `free_ids` and is reused,
//!   so callers remove a series only when nothing else (an interval) refers to its id;
//! - `index` maps the hash of every live non-overflow series' labels to its id(s); the hash
//!   is stored in the slot, so removal never rehashes.

use std::hash::Hash;

use ahash::AHashMap;

/// A series' key type: its labels, and the key of the overflow series.
pub(crate) trait SeriesKey {
    fn overflow() -> Self;
}

/// One live series.
#[derive(Debug)]
pub(crate) struct Slot<K, V> {
    pub(crate) key: K,
    hash: u64,
    /// Cumulative totals since the series was created.
    pub(crate) totals: V,
    /// The latest end time of anything recorded in the series.
    pub(crate) last_end_unix_nanos: u64,
}

/// Ids sharing one hash: almost always one.
#[derive(Debug)]
enum Ids {
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    fn as_slice(&self) -> &[u32] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SeriesTable<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    free_ids: Vec<u32>,
    index: AHashMap<u64, Ids>,
    hasher: ahash::RandomState,
    max_series: usize,
    /// Live series, the overflow series excluded.
    num_series: usize,
    overflow_id_opt: Option<u32>,
    /// Lookups that resolved to the overflow series.
    overflowed: u64,
}

impl<K: SeriesKey, V> SeriesTable<K, V> {
    pub(crate) fn new(max_series: usize) -> Self {
        SeriesTable {
            slots: Vec::new(),
            free_ids: Vec::new(),
            index: AHashMap::new(),
            hasher: ahash::RandomState::new(),
            max_series,
            num_series: 0,
            overflow_id_opt: None,
            overflowed: 0,
        }
    }

    /// The hash to pass to [`SeriesTable::resolve`] for borrowed labels.
    pub(crate) fn hash<T: Hash>(&self, labels: T) -> u64 {
        self.hasher.hash_one(labels)
    }

    /// The id of the series whose key `matches`, created with `make_key` if there is none
    /// and the table has room, else the overflow series'. New series start with `new_totals`.
    pub(crate) fn resolve(
        &mut self,
        hash: u64,
        matches: impl Fn(&K) -> bool,
        make_key: impl FnOnce() -> K,
        new_totals: impl Fn() -> V,
    ) -> u32 {
        if let Some(ids) = self.index.get(&hash) {
            for id in ids.as_slice() {
                if matches(&self.slot(*id).key) {
                    return *id;
                }
            }
        }
        if self.num_series >= self.max_series {
            self.overflowed += 1;
            if let Some(id) = self.overflow_id_opt {
                return id;
            }
            let id = self.allocate(Slot { key: K::overflow(), hash: 0, totals: new_totals(), last_end_unix_nanos: 0 });
            self.overflow_id_opt = Some(id);
            return id;
        }
        let id = self.allocate(Slot { key: make_key(), hash, totals: new_totals(), last_end_unix_nanos: 0 });
        self.num_series += 1;
        match self.index.get_mut(&hash) {
            None => {
                self.index.insert(hash, Ids::One(id));
            }
            Some(ids) => match ids {
                Ids::One(other) => *ids = Ids::Many(vec![*other, id]),
                Ids::Many(list) => list.push(id),
            },
        }
        id
    }

    fn allocate(&mut self, slot: Slot<K, V>) -> u32 {
        match self.free_ids.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).expect("series are bounded by the config")
            }
        }
    }

    pub(crate) fn slot(&self, id: u32) -> &Slot<K, V> {
        self.slots[id as usize].as_ref().expect("ids in use refer to live series")
    }

    pub(crate) fn slot_mut(&mut self, id: u32) -> &mut Slot<K, V> {
        self.slots[id as usize].as_mut().expect("ids in use refer to live series")
    }

    /// Every live series, the overflow series included, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Slot<K, V>)> {
        self.slots.iter().enumerate().filter_map(|(id, slot)| slot.as_ref().map(|slot| (id as u32, slot)))
    }

    /// Live series, the overflow series excluded.
    pub(crate) fn len(&self) -> usize {
        self.num_series
    }

    /// Lookups that went to the overflow series because the table was full.
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Removes every series for which `remove` holds; returns how many went. The caller
    /// guarantees no interval refers to them.
    pub(crate) fn remove_where(&mut self, mut remove: impl FnMut(u32, &Slot<K, V>) -> bool) -> usize {
        let mut removed = 0;
        for id in 0..self.slots.len() as u32 {
            let Some(slot) = &self.slots[id as usize] else { continue };
            if !remove(id, slot) {
                continue;
            }
            let hash = slot.hash;
            self.slots[id as usize] = None;
            self.free_ids.push(id);
            removed += 1;
            if self.overflow_id_opt == Some(id) {
                self.overflow_id_opt = None;
                continue;
            }
            self.num_series -= 1;
            let now_empty = match self.index.get_mut(&hash) {
                Some(Ids::One(_)) | None => true,
                Some(Ids::Many(list)) => {
                    list.retain(|other| *other != id);
                    list.is_empty()
                }
            };
            if now_empty {
                self.index.remove(&hash);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Name(String);

    impl SeriesKey for Name {
        fn overflow() -> Self {
            Name("overflow".to_string())
        }
    }

    fn resolve(table: &mut SeriesTable<Name, u64>, name: &str) -> u32 {
        let hash = table.hash(name);
        let id = table.resolve(hash, |key| key.0 == name, || Name(name.to_string()), || 0);
        table.slot_mut(id).totals += 1;
        id
    }

    #[test]
    fn series_beyond_the_limit_share_the_overflow_series() {
        let mut table = SeriesTable::new(2);
        let a = resolve(&mut table, "a");
        let b = resolve(&mut table, "b");
        assert_ne!(a, b);
        assert_eq!(resolve(&mut table, "a"), a, "an existing series is found again");
        let c = resolve(&mut table, "c");
        let d = resolve(&mut table, "d");
        assert_eq!(c, d);
        assert_eq!(table.slot(c).key, Name("overflow".to_string()));
        assert_eq!(table.slot(c).totals, 2);
        assert_eq!(table.slot(a).totals, 2);
        assert_eq!(table.len(), 2);
        assert_eq!(table.overflowed(), 2);
        assert_eq!(table.iter().count(), 3);
    }

    #[test]
    fn removed_series_free_their_room_and_ids() {
        let mut table = SeriesTable::new(2);
        let a = resolve(&mut table, "a");
        resolve(&mut table, "b");
        let overflow = resolve(&mut table, "c");
        assert_eq!(table.remove_where(|id, _| id == a || id == overflow), 2);
        assert_eq!(table.len(), 1);
        let c = resolve(&mut table, "c");
        assert_ne!(table.slot(c).key, Name("overflow".to_string()), "room was made for a real series");
        assert_eq!(table.slot(c).totals, 1);
        assert!(c == a || c == overflow, "ids are reused");
        let a_again = resolve(&mut table, "a");
        assert_eq!(table.slot(a_again).key, Name("overflow".to_string()));
        assert_eq!(table.slot(a_again).totals, 1, "a new overflow series starts from zero");
    }

    #[test]
    fn labels_with_the_same_hash_are_told_apart() {
        let mut table: SeriesTable<Name, u64> = SeriesTable::new(10);
        // Force a collision by passing the same hash for different names.
        let first = table.resolve(7, |key| key.0 == "x", || Name("x".to_string()), || 0);
        let second = table.resolve(7, |key| key.0 == "y", || Name("y".to_string()), || 0);
        assert_ne!(first, second);
        assert_eq!(table.resolve(7, |key| key.0 == "y", || unreachable!(), || 0), second);
        assert_eq!(table.remove_where(|id, _| id == first), 1);
        assert_eq!(table.resolve(7, |key| key.0 == "y", || unreachable!(), || 0), second);
    }
}
