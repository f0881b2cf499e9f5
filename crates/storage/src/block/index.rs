//! The per-block trace-ID index, `blocks/{id}/index.bin`.
//!
//! It maps each trace in a block to the runs of contiguous rows that hold its spans, so a
//! trace lookup reads only the row groups and pages that contain them. A block's rows are
//! grouped in clusters (see `writer`) and a trace's rows are contiguous within a cluster, so
//! a trace has one run per cluster it appears in: nearly always one. All integers are little
//! endian:
//!
//! ```text
//! struct IndexFile {
//!     magic:      [u8; 4],         // b"SXTI"
//!     version:    u32,             // 2 (1 is read too: one run per trace, runs in trace order)
//!     num_runs:   u32,
//!     num_rows:   u32,             // rows in data.parquet
//!     entries:    [Entry; num_runs],  // sorted by (trace_id, first_row), strictly increasing
//!     crc32c:     u32,             // CRC-32C (Castagnoli) of every byte before it
//! }
//! struct Entry {
//!     trace_id:  [u8; 16],
//!     first_row: u32,              // the run is first_row .. the next larger first_row of any
//! }                                // entry (or num_rows for the largest)
//! ```
//!
//! The runs partition the rows: their first rows are distinct and the smallest is 0, so a
//! run's end is the next run's start in row order, which the decoder computes once instead of
//! storing it (20 bytes per run, not 24).
//!
//! Why a separate object and not the Parquet footer: the footer is read by every query that
//! opens the block, while the index (20 bytes per trace) is needed only by trace lookups.
//! Keeping it out of the footer keeps searches cheap.

use std::ops::Range;

use sextant_model::TraceId;

use super::trace_filter::TraceFilter;

const MAGIC: &[u8; 4] = b"SXTI";
const VERSION: u32 = 2;
/// Version 1: one run per trace, so trace IDs and first rows both strictly increase.
const VERSION_ONE_RUN_PER_TRACE: u32 = 1;
const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 20;

/// Why an index file could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index is {0} bytes, too short")]
    Truncated(usize),
    #[error("index has a bad magic number")]
    BadMagic,
    #[error("index version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("index checksum mismatch")]
    Checksum,
    #[error("index is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The decoded index of one block: its runs sorted by (trace ID, first row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockIndex {
    trace_ids: Vec<TraceId>,
    first_rows: Vec<u32>,
    /// Each run's end (exclusive), computed from the first rows.
    ends: Vec<u32>,
    num_rows: u32,
    num_traces: usize,
    /// Answers "surely not here" for most trace IDs the block does not hold.
    filter: TraceFilter,
}

impl BlockIndex {
    /// Distinct traces in the block.
    pub fn num_traces(&self) -> usize {
        self.num_traces
    }

    pub fn num_rows(&self) -> u32 {
        self.num_rows
    }

    /// The trace ID of every run, sorted (a trace with several runs appears once per run).
    pub fn trace_ids(&self) -> &[TraceId] {
        &self.trace_ids
    }

    /// Every run of the block with its rows, in (trace ID, first row) order.
    pub fn runs(&self) -> impl Iterator<Item = (&TraceId, Range<u64>)> {
        self.trace_ids.iter().enumerate().map(|(i, trace_id)| (trace_id, self.rows_of(i)))
    }

    fn rows_of(&self, i: usize) -> Range<u64> {
        self.first_rows[i] as u64..self.ends[i] as u64
    }

    /// The runs of rows holding `trace_id`'s spans, in row order; empty if the block has none.
    pub fn lookup(&self, trace_id: &TraceId) -> impl Iterator<Item = Range<u64>> + '_ {
        let found = match self.find(trace_id) {
            Some(i) => {
                let first = self.trace_ids[..i].iter().rposition(|id| id != trace_id).map_or(0, |j| j + 1);
                let end =
                    self.trace_ids[i..].iter().position(|id| id != trace_id).map_or(self.trace_ids.len(), |j| i + j);
                first..end
            }
            None => 0..0,
        };
        found.map(|i| self.rows_of(i))
    }

    /// Where `trace_id`'s first run is among the runs (see [`BlockIndex::trace_ids`]).
    pub fn first_run_of(&self, trace_id: &TraceId) -> Option<usize> {
        let i = self.find(trace_id)?;
        Some(self.trace_ids[..i].iter().rposition(|id| id != trace_id).map_or(0, |j| j + 1))
    }

    /// Whether the block holds any of `sorted` (sorted trace IDs): one binary search each
    /// when they are few against the index, one merge pass otherwise.
    pub fn contains_any(&self, sorted: &[TraceId]) -> bool {
        if sorted.len().saturating_mul(16) < self.trace_ids.len() {
            return sorted.iter().any(|id| self.find(id).is_some());
        }
        let (mut a, mut b) = (self.trace_ids.iter().peekable(), sorted.iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            match x.cmp(y) {
                std::cmp::Ordering::Less => _ = a.next(),
                std::cmp::Ordering::Greater => _ = b.next(),
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// A position of `trace_id` among the sorted IDs, if the block holds it.
    fn find(&self, trace_id: &TraceId) -> Option<usize> {
        if !self.filter.may_contain(trace_id) {
            return None;
        }
        self.position(trace_id).ok()
    }

    /// Where `trace_id` is in the sorted IDs, or where it would go, as `binary_search` says.
    ///
    /// Trace IDs are random, so their first eight bytes spread evenly over the range:
    /// interpolating on them lands next to the ID in two or three probes, where a binary
    /// search takes one per halving (14 in a block of 10,000 traces, each a likely cache
    /// miss; every trace lookup does this in every block). IDs that are not spread evenly
    /// (a time prefix, a counter) stop the interpolation after a few rounds, and a binary
    /// search finishes on what is left.
    fn position(&self, trace_id: &TraceId) -> Result<usize, usize> {
        const ROUNDS: usize = 4;
        const SMALL: usize = 8;
        let ids = &self.trace_ids;
        let prefix = |id: &TraceId| u64::from_be_bytes(id.0[..8].try_into().expect("8 of 16 bytes"));
        let target = prefix(trace_id);
        let (mut low, mut high) = (0, ids.len());
        for _ in 0..ROUNDS {
            if high - low <= SMALL {
                break;
            }
            let (first, last) = (prefix(&ids[low]), prefix(&ids[high - 1]));
            if target < first || target > last || first == last {
                break;
            }
            // (target - first) / (last - first) of the way from low to high - 1.
            let offset = (target - first) as u128 * (high - 1 - low) as u128 / (last - first) as u128;
            let guess = low + offset as usize;
            match ids[guess].cmp(trace_id) {
                std::cmp::Ordering::Equal => return Ok(guess),
                std::cmp::Ordering::Less => low = guess + 1,
                std::cmp::Ordering::Greater => high = guess,
            }
        }
        match ids[low..high].binary_search(trace_id) {
            Ok(i) => Ok(low + i),
            Err(i) => Err(low + i),
        }
    }

    /// Heap bytes held, for cache accounting.
    pub fn memory_size(&self) -> usize {
        self.trace_ids.len() * (ENTRY_LEN + 4) + self.filter.memory_size() + std::mem::size_of::<Self>()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.trace_ids.len() * ENTRY_LEN + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.trace_ids.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.num_rows.to_le_bytes());
        for (trace_id, first_row) in self.trace_ids.iter().zip(&self.first_rows) {
            out.extend_from_slice(trace_id.as_bytes());
            out.extend_from_slice(&first_row.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockIndex, IndexError> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(IndexError::Truncated(bytes.len()));
        }
        if &bytes[..4] != MAGIC {
            return Err(IndexError::BadMagic);
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let version = u32_at(4);
        if version != VERSION && version != VERSION_ONE_RUN_PER_TRACE {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let num_runs = u32_at(8) as usize;
        let num_rows = u32_at(12);
        let body_end = num_runs
            .checked_mul(ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or(IndexError::Inconsistent("entry count overflows"))?;
        if bytes.len() != body_end + 4 {
            return Err(IndexError::Truncated(bytes.len()));
        }
        if crc32c::crc32c(&bytes[..body_end]) != u32_at(body_end) {
            return Err(IndexError::Checksum);
        }
        let mut trace_ids = Vec::with_capacity(num_runs);
        let mut first_rows = Vec::with_capacity(num_runs);
        for entry in bytes[HEADER_LEN..body_end].chunks_exact(ENTRY_LEN) {
            let trace_id = TraceId(entry[..16].try_into().expect("16 bytes"));
            let first_row = u32::from_le_bytes(entry[16..].try_into().expect("4 bytes"));
            if let (Some(last_id), Some(last_row)) = (trace_ids.last(), first_rows.last()) {
                let increasing = match version {
                    VERSION_ONE_RUN_PER_TRACE => trace_id > *last_id && first_row > *last_row,
                    _ => (trace_id, first_row) > (*last_id, *last_row),
                };
                if !increasing {
                    return Err(IndexError::Inconsistent("entries are not in increasing order"));
                }
            }
            if first_row >= num_rows {
                return Err(IndexError::Inconsistent("first row past the end"));
            }
            trace_ids.push(trace_id);
            first_rows.push(first_row);
        }
        BlockIndex::from_runs(trace_ids, first_rows, num_rows)
    }

    /// The index of runs sorted by (trace ID, first row), checking that they partition the
    /// rows, and computing each run's end.
    fn from_runs(trace_ids: Vec<TraceId>, first_rows: Vec<u32>, num_rows: u32) -> Result<BlockIndex, IndexError> {
        let mut by_row: Vec<(u32, u32)> = first_rows.iter().enumerate().map(|(i, &row)| (row, i as u32)).collect();
        by_row.sort_unstable();
        if by_row.first().map_or(num_rows > 0, |&(row, _)| row != 0) {
            return Err(IndexError::Inconsistent("no run starts at row 0"));
        }
        if by_row.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(IndexError::Inconsistent("two runs start at the same row"));
        }
        let mut ends = vec![num_rows; first_rows.len()];
        for pair in by_row.windows(2) {
            ends[pair[0].1 as usize] = pair[1].0;
        }
        let num_traces = trace_ids.len() - trace_ids.windows(2).filter(|pair| pair[0] == pair[1]).count();
        let filter = TraceFilter::new(&trace_ids);
        Ok(BlockIndex { trace_ids, first_rows, ends, num_rows, num_traces, filter })
    }
}

/// Builds an index from trace IDs seen in row order: a new run starts where the trace ID
/// changes, or where the writer says a new cluster starts.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    /// (trace ID, first row) of each run, in row order.
    runs: Vec<(TraceId, u32)>,
    num_rows: u32,
    /// The next row starts a run even if its trace continues the last one.
    break_run: bool,
}

impl IndexBuilder {
    /// Records the next row.
    pub fn push_row(&mut self, trace_id: TraceId) {
        if self.break_run || self.runs.last().is_none_or(|(last, _)| *last != trace_id) {
            self.runs.push((trace_id, self.num_rows));
            self.break_run = false;
        }
        self.num_rows += 1;
    }

    /// Makes the next row start a run of its own (a new cluster starts).
    pub fn break_run(&mut self) {
        self.break_run = true;
    }

    pub fn num_rows(&self) -> u32 {
        self.num_rows
    }

    /// The finished index. The writer puts a trace in one run per cluster, so (trace ID,
    /// first row) pairs are distinct.
    pub fn finish(mut self) -> BlockIndex {
        self.runs.sort_unstable();
        let (trace_ids, first_rows) = self.runs.into_iter().unzip();
        BlockIndex::from_runs(trace_ids, first_rows, self.num_rows).expect("runs in row order partition the rows")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tid(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn sample() -> BlockIndex {
        let mut builder = IndexBuilder::default();
        for (trace, rows) in [(1u8, 3), (5, 1), (9, 4)] {
            for _ in 0..rows {
                builder.push_row(tid(trace));
            }
        }
        builder.finish()
    }

    /// An index of `ids` (deduplicated, sorted), one row each.
    fn index_of(mut ids: Vec<TraceId>) -> BlockIndex {
        ids.sort_unstable();
        ids.dedup();
        let mut builder = IndexBuilder::default();
        ids.into_iter().for_each(|id| builder.push_row(id));
        builder.finish()
    }

    /// IDs of the shapes clients send: random, or with a shared or counting prefix, which
    /// interpolation must not get wrong.
    fn id_sets() -> impl Strategy<Value = Vec<TraceId>> {
        let random = proptest::collection::vec(any::<u128>(), 0..600);
        prop_oneof![
            random.clone().prop_map(|v| v.into_iter().map(|x| TraceId(x.to_be_bytes())).collect()),
            // X-Ray style: a few distinct time prefixes, random rest.
            random.clone().prop_map(|v| v.into_iter().map(|x| TraceId((x % (1 << 70)).to_be_bytes())).collect()),
            // Small counters: every prefix equal.
            (0u128..2000).prop_map(|n| (1..=n).map(|x| TraceId((x * 3).to_be_bytes())).collect()),
            // Clustered at both ends of the range.
            random.prop_map(|v| v
                .into_iter()
                .map(|x| TraceId((if x % 2 == 0 { x % 1000 } else { u128::MAX - x % 1000 }).to_be_bytes()))
                .collect()),
        ]
    }

    proptest! {
        #[test]
        fn position_agrees_with_binary_search(ids in id_sets(), probes in proptest::collection::vec(any::<u128>(), 0..50)) {
            let index = index_of(ids);
            let present = index.trace_ids().iter().step_by(7).copied();
            let absent = probes.into_iter().map(|x| TraceId(x.to_be_bytes()));
            let around = index.trace_ids().iter().take(30).map(|id| TraceId((u128::from_be_bytes(id.0) ^ 1).to_be_bytes()));
            for id in present.chain(absent).chain(around) {
                prop_assert_eq!(index.position(&id), index.trace_ids().binary_search(&id), "{}", id);
            }
        }
    }

    fn runs_of(index: &BlockIndex, trace: u8) -> Vec<Range<u64>> {
        index.lookup(&tid(trace)).collect()
    }

    #[test]
    fn lookup_returns_each_traces_rows() {
        let index = sample();
        assert_eq!(runs_of(&index, 1), vec![0..3]);
        assert_eq!(runs_of(&index, 5), vec![3..4]);
        assert_eq!(runs_of(&index, 9), vec![4..8]);
        assert_eq!(runs_of(&index, 2), vec![]);
        assert_eq!(index.num_traces(), 3);
    }

    /// Two clusters: traces 9 and 1 in the first, 1 (again), 5 and 9 (again) in the second.
    fn clustered() -> BlockIndex {
        let mut builder = IndexBuilder::default();
        for (trace, rows, new_cluster) in [(1u8, 2, false), (9, 1, false), (1, 3, true), (5, 1, false), (9, 2, false)] {
            if new_cluster {
                builder.break_run();
            }
            for _ in 0..rows {
                builder.push_row(tid(trace));
            }
        }
        builder.finish()
    }

    #[test]
    fn a_trace_in_two_clusters_has_a_run_in_each() {
        let index = clustered();
        assert_eq!(runs_of(&index, 1), vec![0..2, 3..6]);
        assert_eq!(runs_of(&index, 9), vec![2..3, 7..9]);
        assert_eq!(runs_of(&index, 5), vec![6..7]);
        assert_eq!((index.num_traces(), index.num_rows()), (3, 9));
        let decoded = BlockIndex::decode(&index.encode()).unwrap();
        assert_eq!(decoded, index);
        assert_eq!(runs_of(&decoded, 1), vec![0..2, 3..6]);
    }

    /// `bytes` with `patch` applied at `at` and the checksum made right again.
    fn patched(mut bytes: Vec<u8>, at: usize, patch: &[u8]) -> Vec<u8> {
        bytes[at..at + patch.len()].copy_from_slice(patch);
        let end = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn a_version_one_index_still_reads() {
        let version_one = VERSION_ONE_RUN_PER_TRACE.to_le_bytes();
        assert_eq!(BlockIndex::decode(&patched(sample().encode(), 4, &version_one)).unwrap(), sample());
        // Version 1 allows no repeated trace ID.
        assert_eq!(
            BlockIndex::decode(&patched(clustered().encode(), 4, &version_one)),
            Err(IndexError::Inconsistent("entries are not in increasing order"))
        );
    }

    #[test]
    fn runs_that_do_not_partition_the_rows_are_rejected() {
        // The second entry (trace 5) made to start at row 0, like the first.
        let bytes = patched(sample().encode(), 16 + 20 + 16, &0u32.to_le_bytes());
        assert_eq!(BlockIndex::decode(&bytes), Err(IndexError::Inconsistent("two runs start at the same row")));
    }

    #[test]
    fn contains_any_agrees_with_lookup_by_search_and_by_merge() {
        let mut builder = IndexBuilder::default();
        for trace in (0..=254u8).step_by(2) {
            builder.push_row(tid(trace));
        }
        let index = builder.finish();
        // Few IDs take binary searches, many a merge pass; both must give the same answers.
        for sorted in [vec![tid(3)], vec![tid(3), tid(201)], (1..=255u8).step_by(2).map(tid).collect::<Vec<_>>()] {
            assert!(!index.contains_any(&sorted), "only odd IDs: {}", sorted.len());
            let mut with_even = sorted.clone();
            with_even.push(tid(254));
            with_even.sort();
            assert!(index.contains_any(&with_even), "with an even ID: {}", with_even.len());
        }
        assert!(!index.contains_any(&[]));
    }

    #[test]
    fn encode_decode_round_trips_and_size_is_20_bytes_per_trace() {
        let index = sample();
        let bytes = index.encode();
        assert_eq!(bytes.len(), 16 + 3 * 20 + 4);
        assert_eq!(BlockIndex::decode(&bytes).unwrap(), index);
    }

    #[test]
    fn corrupt_index_files_are_rejected() {
        let bytes = sample().encode();
        assert_eq!(BlockIndex::decode(&bytes[..10]), Err(IndexError::Truncated(10)));
        assert_eq!(BlockIndex::decode(&bytes[..bytes.len() - 1]), Err(IndexError::Truncated(bytes.len() - 1)));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(BlockIndex::decode(&flipped), Err(IndexError::Checksum));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert_eq!(BlockIndex::decode(&magic), Err(IndexError::BadMagic));
    }
}
