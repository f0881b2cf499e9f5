//! A Bloom filter over a block's trace IDs, built in memory when the block's index is
//! loaded (nothing on disk changes).
//!
//! A trace lookup, and a search proving that a page's traces have no spans elsewhere, ask
//! every block's index whether it holds a trace; nearly all answer no. Searching the sorted
//! IDs for that costs a few cache misses per block (4 to 7 probes into 160 KB per 10,000
//! traces), so on 10M spans (122 blocks) a lookup spent a tenth of its time there. The
//! filter answers most of those with one cache line: it is blocked (Putze, Sanders, Singler,
//! "Cache-, Hash- and Space-Efficient Bloom Filters"), each ID setting six bits within one
//! 512-bit block, at 12 bits per ID: false positives for well under one ID in a hundred (they
//! then search the IDs as before; the tests hold it under one in fifty), no false negatives.

use sextant_model::TraceId;

/// Bits of filter per trace ID.
const BITS_PER_ID: usize = 12;
/// Bits set per ID, all within one block.
const BITS_SET: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TraceFilter {
    /// 512-bit blocks; none when the block holds no trace.
    blocks: Vec<[u64; 8]>,
}

impl TraceFilter {
    /// The filter of `ids` (repeats are fine).
    pub(crate) fn new(ids: &[TraceId]) -> TraceFilter {
        if ids.is_empty() {
            return TraceFilter::default();
        }
        let mut filter = TraceFilter { blocks: vec![[0; 8]; (ids.len() * BITS_PER_ID).div_ceil(512)] };
        for id in ids {
            let (block, bits) = filter.locate(id);
            for (word, mask) in filter.blocks[block].iter_mut().zip(bits) {
                *word |= mask;
            }
        }
        filter
    }

    /// False when `id` is surely not among the IDs; true when it may be.
    pub(crate) fn may_contain(&self, id: &TraceId) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let (block, bits) = self.locate(id);
        self.blocks[block].iter().zip(bits).all(|(word, mask)| word & mask == mask)
    }

    /// Heap bytes held.
    pub(crate) fn memory_size(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<[u64; 8]>()
    }

    /// The block of `id` and the bits it sets there, as eight words of mask.
    fn locate(&self, id: &TraceId) -> (usize, [u64; 8]) {
        let high = u64::from_le_bytes(id.0[..8].try_into().expect("8 of 16 bytes"));
        let low = u64::from_le_bytes(id.0[8..].try_into().expect("8 of 16 bytes"));
        // IDs are meant to be random, but clients are free to put a clock or a counter in
        // them: mix both halves.
        let first = mix(high ^ mix(low));
        let block = ((first as u128 * self.blocks.len() as u128) >> 64) as usize;
        let second = mix(first);
        let mut masks = [0u64; 8];
        for i in 0..BITS_SET {
            let bit = (second >> (9 * i)) & 511;
            masks[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        (block, masks)
    }
}

/// The finalizer of SplitMix64: every input bit flips each output bit with probability ½.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(n: u128) -> TraceId {
        TraceId(n.to_be_bytes())
    }

    proptest! {
        #[test]
        fn every_id_put_in_is_found(ids in proptest::collection::vec(any::<u128>(), 0..2000)) {
            let ids: Vec<TraceId> = ids.into_iter().map(id).collect();
            let filter = TraceFilter::new(&ids);
            for id in &ids {
                prop_assert!(filter.may_contain(id));
            }
        }
    }

    /// Counters and clock prefixes (IDs that differ in a few low bits, or only in the high
    /// half) are spread like random IDs: few false positives either way.
    #[test]
    fn false_positives_are_rare_for_random_and_sequential_ids() {
        let sequential: Vec<TraceId> = (0..10_000u128).map(id).collect();
        let clock_prefixed: Vec<TraceId> = (0..10_000u128).map(|n| id(n << 64 | 0xabcd)).collect();
        let mut state = 7u64;
        let mut random = || {
            state = mix(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        let randomized: Vec<TraceId> = (0..10_000).map(|_| id((random() as u128) << 64 | random() as u128)).collect();
        for ids in [sequential, clock_prefixed, randomized] {
            let filter = TraceFilter::new(&ids);
            let absent = (0..20_000u128).map(|n| id(n + (1 << 100))).filter(|id| filter.may_contain(id)).count();
            assert!(absent < 20_000 / 50, "{absent} false positives in 20,000");
        }
        assert!(!TraceFilter::new(&[]).may_contain(&id(0)));
    }
}
