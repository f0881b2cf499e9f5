//! Which blocks to merge: a pure function over block metadata.
//!
//! Small blocks cost every query an index lookup and a footer each, so blocks of one level
//! that are below the target size are merged, oldest first, in runs of neighbours in time
//! (sorted by `min_start_unix_nanos`). A job never exceeds the target size or `max_inputs`
//! blocks, so the merge's memory and duration stay bounded, and no block is in two jobs.
//! Merging within a level makes each span's number of rewrites logarithmic in the data size.
//!
//! The executor is [`BlockStore::compact`](super::BlockStore::compact); this module does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::BlockMeta;

/// Default number of spans at which a block counts as big enough: the size of the blocks a
/// flush writes. Searches read blocks newest first and stop early, so small blocks keep a
/// search's cost near that of reading one block (see `engine::query`).
pub const DEFAULT_TARGET_SPANS: u64 = 100_000;
/// Default size at which a block counts as big enough.
pub const DEFAULT_TARGET_SIZE_BYTES: u64 = 512 << 20;
pub const DEFAULT_MAX_INPUTS: usize = 8;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactionPolicy {
    /// Blocks with at least this many spans are left alone; a job's output stays below it.
    pub target_spans: u64,
    /// Blocks at least this large are left alone; a job's output stays below it.
    pub target_size_bytes: u64,
    /// At most this many inputs per job.
    pub max_inputs: usize,
    /// At least this many inputs per job (2: merging one block alone gains nothing).
    pub min_inputs: usize,
    /// When set, a job's inputs all start within this window, so outputs stay narrow in time
    /// and time-range queries keep pruning them.
    pub max_time_range_nanos: Option<u64>,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            target_spans: DEFAULT_TARGET_SPANS,
            target_size_bytes: DEFAULT_TARGET_SIZE_BYTES,
            max_inputs: DEFAULT_MAX_INPUTS,
            min_inputs: 2,
            max_time_range_nanos: None,
        }
    }
}

/// Compaction jobs, each a list of block IDs to merge into one block, lowest level first.
pub fn plan(blocks: &[BlockMeta], policy: &CompactionPolicy) -> Vec<Vec<String>> {
    let mut by_level: BTreeMap<u32, Vec<&BlockMeta>> = BTreeMap::new();
    for block in blocks {
        if block.num_spans < policy.target_spans && block.size_bytes < policy.target_size_bytes {
            by_level.entry(block.level).or_default().push(block);
        }
    }
    let min_inputs = policy.min_inputs.max(2);
    let max_inputs = policy.max_inputs.max(min_inputs);
    let mut jobs = Vec::new();
    for (_, mut level) in by_level {
        level.sort_by(|a, b| (a.min_start_unix_nanos, &a.id).cmp(&(b.min_start_unix_nanos, &b.id)));
        let mut job: Vec<&BlockMeta> = Vec::new();
        let (mut spans, mut bytes) = (0u64, 0u64);
        for block in level {
            let fits = job.len() < max_inputs
                && spans + block.num_spans < policy.target_spans
                && bytes + block.size_bytes < policy.target_size_bytes
                && policy.max_time_range_nanos.is_none_or(|window| {
                    job.first().is_none_or(|first| {
                        block.max_start_unix_nanos.saturating_sub(first.min_start_unix_nanos) <= window
                    })
                });
            if !fits {
                if job.len() >= min_inputs {
                    jobs.push(job.iter().map(|b| b.id.clone()).collect());
                }
                job.clear();
                (spans, bytes) = (0, 0);
            }
            job.push(block);
            spans += block.num_spans;
            bytes += block.size_bytes;
        }
        if job.len() >= min_inputs {
            jobs.push(job.iter().map(|b| b.id.clone()).collect());
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: &str, level: u32, min_start: u64, num_spans: u64, size_bytes: u64) -> BlockMeta {
        BlockMeta {
            id: id.to_owned(),
            level,
            min_start_unix_nanos: min_start,
            max_start_unix_nanos: min_start + 10,
            max_end_unix_nanos: min_start + 20,
            num_spans,
            num_traces: num_spans / 10,
            size_bytes,
            services: vec!["svc".to_owned()],
            operations: vec![],
            created_unix_nanos: min_start,
        }
    }

    fn policy() -> CompactionPolicy {
        CompactionPolicy { target_spans: 1_000, target_size_bytes: 10_000, max_inputs: 3, ..Default::default() }
    }

    #[test]
    fn merges_small_blocks_of_one_level_in_time_order_in_bounded_jobs() {
        let blocks = vec![
            block("e", 0, 50, 100, 100),
            block("a", 0, 10, 100, 100),
            block("c", 0, 30, 100, 100),
            block("b", 0, 20, 100, 100),
            block("d", 0, 40, 100, 100),
        ];
        assert_eq!(plan(&blocks, &policy()), vec![vec!["a", "b", "c"], vec!["d", "e"]]);
    }

    #[test]
    fn levels_are_not_mixed_and_a_lone_block_is_left_alone() {
        let blocks = vec![block("a", 0, 10, 100, 100), block("b", 1, 20, 100, 100), block("c", 1, 30, 100, 100)];
        assert_eq!(plan(&blocks, &policy()), vec![vec!["b", "c"]]);
    }

    #[test]
    fn big_blocks_are_left_alone_and_jobs_stay_below_the_target() {
        let blocks = vec![
            block("big", 0, 0, 1_000, 100),
            block("fat", 0, 1, 10, 10_000),
            block("a", 0, 10, 600, 100),
            block("b", 0, 20, 300, 100),
            block("c", 0, 30, 300, 100),
            block("d", 0, 40, 50, 100),
        ];
        // a+b = 900 < 1000; adding c would reach 1200, so c starts a new job with d.
        assert_eq!(plan(&blocks, &policy()), vec![vec!["a", "b"], vec!["c", "d"]]);
    }

    #[test]
    fn the_time_window_splits_jobs() {
        let windowed = CompactionPolicy { max_time_range_nanos: Some(25), ..policy() };
        let blocks =
            vec![block("a", 0, 0, 1, 1), block("b", 0, 10, 1, 1), block("c", 0, 100, 1, 1), block("d", 0, 105, 1, 1)];
        assert_eq!(plan(&blocks, &windowed), vec![vec!["a", "b"], vec!["c", "d"]]);
        assert_eq!(plan(&blocks, &policy()), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn nothing_to_do_on_no_blocks() {
        assert!(plan(&[], &CompactionPolicy::default()).is_empty());
    }
}
