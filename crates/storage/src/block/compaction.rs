//! Which blocks to merge: a pure function over block metadata.
//!
//! Small blocks cost every query an index lookup and a footer each, so blocks of one level
//! that are below the target size are merged, oldest first, in runs of neighbours in time
//! (sorted by `min_start_unix_nanos`). A job never exceeds the target size or `max_inputs`
//! blocks, so the merge's memory and duration stay bounded, and no block is in two jobs.
//! Merging within a level makes each span's number of rewrites logarithmic in the data size.
//!
//! The executor is [`BlockStore::compact`](super::BlockStore::compact); this module does no I/O.

use serde::{Deserialize, Serialize};

use super::BlockMeta;

/// Default number of spans at which a block counts as big enough: the size of the blocks a
/// flush writes. Searches read blocks newest first and stop early, so small blocks keep a
/// search's cost near that of reading one block (see `engine::query`).
pub const DEFAULT_TARGET_SPANS: u64 = 100_000;
/// Default size at which a block counts as big enough.
pub const DEFAULT_TARGET_SIZE_BYTES: u64 = 512 << 20;
pub const DEFAULT_MAX_INPUTS: usize = 4;
/// Blocks overlap for [`plan`] when the overlap of their trace-start ranges is at least
/// 1/this of the narrower range. Spans that arrive in time order give consecutive flushes
/// ranges that overlap only by the traces a flush cut in two: rewriting both blocks for those
/// would cost a compaction per flush and gain a search nothing.
const OVERLAP_FRACTION_DENOMINATOR: u64 = 8;

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

/// Compaction jobs, each a list of block IDs to merge.
///
/// First, blocks whose trace-start ranges overlap ([`BlockMeta::trace_start_range`], strictly:
/// ranges that only touch do not; and by at least 1/`OVERLAP_FRACTION_DENOMINATOR` of the
/// narrower range) are merged in runs of at most `max_inputs`, earliest first;
/// the executor splits each job's output by trace start, so its blocks no longer overlap and a
/// newest-first search can stop after the newest ones. Then, among the other blocks, small
/// neighbours of one level, consecutive in time, are merged up to the target size.
pub fn plan(blocks: &[BlockMeta], policy: &CompactionPolicy) -> Vec<Vec<String>> {
    let min_inputs = policy.min_inputs.max(2);
    let max_inputs = policy.max_inputs.max(min_inputs);
    let mut jobs: Vec<Vec<String>> = Vec::new();
    let mut sorted: Vec<&BlockMeta> = blocks.iter().collect();
    sorted.sort_by(|a, b| (a.min_start_unix_nanos, &a.id).cmp(&(b.min_start_unix_nanos, &b.id)));
    let mut overlapping: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut cluster: Vec<&BlockMeta> = Vec::new();
    let (mut cluster_start, mut cluster_end) = (0u64, 0u64);
    for block in sorted.iter().copied().chain(std::iter::once(&SENTINEL)) {
        let (start, end) = block.trace_start_range();
        let narrower = end.saturating_sub(start).min(cluster_end.saturating_sub(cluster_start));
        let overlap = cluster_end.saturating_sub(start);
        if !cluster.is_empty()
            && overlap > 0
            && overlap.saturating_mul(OVERLAP_FRACTION_DENOMINATOR) >= narrower
            && !std::ptr::eq(block, &SENTINEL)
        {
            cluster.push(block);
            cluster_end = cluster_end.max(end);
            continue;
        }
        if cluster.len() >= 2 {
            for run in cluster.chunks(max_inputs).filter(|run| run.len() >= min_inputs) {
                overlapping.extend(run.iter().map(|b| b.id.as_str()));
                jobs.push(run.iter().map(|b| b.id.clone()).collect());
            }
        }
        cluster = vec![block];
        (cluster_start, cluster_end) = (start, end);
    }

    // Small neighbours: runs of consecutive blocks in time, so an output never spans a block
    // left out of its job (it would overlap it, and the next plan would merge them again).
    let mut job: Vec<&BlockMeta> = Vec::new();
    let (mut spans, mut bytes) = (0u64, 0u64);
    for block in sorted {
        let small = block.num_spans < policy.target_spans
            && block.size_bytes < policy.target_size_bytes
            && !overlapping.contains(block.id.as_str());
        let fits = job.first().is_none_or(|first| {
            first.level == block.level
                && job.len() < max_inputs
                && spans + block.num_spans < policy.target_spans
                && bytes + block.size_bytes < policy.target_size_bytes
                && policy.max_time_range_nanos.is_none_or(|window| {
                    block.max_start_unix_nanos.saturating_sub(first.min_start_unix_nanos) <= window
                })
        });
        if !small || !fits {
            if job.len() >= min_inputs {
                jobs.push(job.iter().map(|b| b.id.clone()).collect());
            }
            job.clear();
            (spans, bytes) = (0, 0);
        }
        if small {
            job.push(block);
            spans += block.num_spans;
            bytes += block.size_bytes;
        }
    }
    if job.len() >= min_inputs {
        jobs.push(job.iter().map(|b| b.id.clone()).collect());
    }
    jobs
}

/// Ends the last cluster of the sweep in [`plan`].
static SENTINEL: BlockMeta = BlockMeta {
    id: String::new(),
    level: 0,
    min_start_unix_nanos: u64::MAX,
    max_start_unix_nanos: u64::MAX,
    max_end_unix_nanos: u64::MAX,
    max_trace_start_unix_nanos: None,
    num_spans: 0,
    num_traces: 0,
    size_bytes: 0,
    services: Vec::new(),
    operations: Vec::new(),
    created_unix_nanos: 0,
};

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
            max_trace_start_unix_nanos: None,
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
            block("big", 0, 100, 1_000, 100),
            block("fat", 0, 200, 10, 10_000),
            block("a", 0, 10, 600, 100),
            block("b", 0, 20, 300, 100),
            block("c", 0, 30, 300, 100),
            block("d", 0, 40, 50, 100),
        ];
        // a+b = 900 < 1000; adding c would reach 1200, so c starts a new job with d.
        assert_eq!(plan(&blocks, &policy()), vec![vec!["a", "b"], vec!["c", "d"]]);
    }

    #[test]
    fn small_blocks_are_merged_only_with_their_neighbours_in_time() {
        // A full block between two small ones: merging those would give a block overlapping it.
        let blocks = vec![block("a", 0, 10, 400, 100), block("full", 0, 20, 1_000, 100), block("b", 0, 30, 400, 100)];
        assert!(plan(&blocks, &policy()).is_empty());
        // As would a small block of another level.
        let blocks = vec![block("a", 0, 10, 400, 100), block("up", 1, 20, 100, 100), block("b", 0, 30, 400, 100)];
        assert!(plan(&blocks, &policy()).is_empty());
    }

    #[test]
    fn the_time_window_splits_jobs() {
        let windowed = CompactionPolicy { max_time_range_nanos: Some(25), ..policy() };
        let blocks =
            vec![block("a", 0, 0, 1, 1), block("b", 0, 10, 1, 1), block("c", 0, 100, 1, 1), block("d", 0, 200, 1, 1)];
        assert_eq!(plan(&blocks, &windowed), vec![vec!["a", "b"]]);
        assert_eq!(plan(&blocks, &policy()), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn blocks_overlapping_in_trace_start_are_merged_whatever_their_size() {
        // Full-size blocks over the same period (spans that arrived out of time order), in
        // runs of at most three; a block that only touches the run is not part of it.
        let mut blocks: Vec<BlockMeta> = ["p", "q", "r", "s"].iter().map(|id| block(id, 2, 0, 1_000, 100)).collect();
        for b in &mut blocks {
            b.max_start_unix_nanos = 500;
        }
        blocks.push(block("t", 0, 500, 1_000, 100));
        assert_eq!(plan(&blocks, &policy()), vec![vec!["p", "q", "r"]]);
    }

    #[test]
    fn trace_start_ranges_decide_overlap() {
        // Spans of the first block start until 30, but its traces all start by 12: a split
        // compaction output that keeps traces apart is not merged again.
        let mut first = block("x", 1, 0, 1_000, 100);
        first.max_start_unix_nanos = 30;
        first.max_trace_start_unix_nanos = Some(12);
        let second = block("y", 1, 12, 1_000, 100);
        assert!(plan(&[first.clone(), second.clone()], &policy()).is_empty());
        // Traces of both start in 12..=14: a fifth of the second block's range.
        first.max_trace_start_unix_nanos = Some(14);
        assert_eq!(plan(&[first, second], &policy()), vec![vec!["x", "y"]]);
    }

    #[test]
    fn a_sliver_of_overlap_is_not_worth_a_merge() {
        // Consecutive flushes of spans sent in time order: the second block starts just
        // before the first ends (a trace the flush cut in two).
        let wide = |id: &str, start: u64| {
            let mut b = block(id, 0, start, 100_000, 1 << 20);
            b.max_start_unix_nanos = start + 1_000;
            b
        };
        assert!(plan(&[wide("a", 0), wide("b", 990)], &policy()).is_empty(), "1% of the range");
        assert!(plan(&[wide("a", 0), wide("b", 876)], &policy()).is_empty(), "12.4% of the range");
        assert_eq!(plan(&[wide("a", 0), wide("b", 875)], &policy()), vec![vec!["a", "b"]], "12.5%");
        // Against the narrower range: a short block a fifth inside a long one is merged.
        let mut short = wide("s", 990);
        short.max_start_unix_nanos = 1_040;
        assert_eq!(plan(&[wide("a", 0), short], &policy()), vec![vec!["a", "s"]]);
    }

    #[test]
    fn nothing_to_do_on_no_blocks() {
        assert!(plan(&[], &CompactionPolicy::default()).is_empty());
    }
}
