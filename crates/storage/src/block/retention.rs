//! Which blocks to delete: a pure function over block metadata.
//!
//! Two limits, applied in order:
//! 1. **Age**: a block whose every span ended before `now - max_age` goes (its
//!    `max_end_unix_nanos` is older than the cutoff).
//! 2. **Total size**: while the remaining blocks are larger than `max_total_bytes`, the oldest
//!    (smallest `max_end_unix_nanos`, then smallest ID) goes.
//!
//! The caller commits a manifest without these blocks, then deletes their objects. This
//! module does no I/O.

use super::BlockMeta;

/// IDs of the blocks to delete: the expired ones first, then the oldest until the total fits.
pub fn plan(
    blocks: &[BlockMeta],
    now_unix_nanos: u64,
    max_age_nanos: u64,
    max_total_bytes: Option<u64>,
) -> Vec<String> {
    let cutoff = now_unix_nanos.saturating_sub(max_age_nanos);
    let (expired, mut kept): (Vec<&BlockMeta>, Vec<&BlockMeta>) =
        blocks.iter().partition(|block| block.max_end_unix_nanos < cutoff);
    let mut doomed: Vec<String> = expired.iter().map(|block| block.id.clone()).collect();
    if let Some(max_total_bytes) = max_total_bytes {
        kept.sort_by(|a, b| (a.max_end_unix_nanos, &a.id).cmp(&(b.max_end_unix_nanos, &b.id)));
        let mut total: u64 = kept.iter().map(|block| block.size_bytes).sum();
        for block in kept {
            if total <= max_total_bytes {
                break;
            }
            total -= block.size_bytes;
            doomed.push(block.id.clone());
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000_000_000;

    fn block(id: &str, max_end: u64, size_bytes: u64) -> BlockMeta {
        BlockMeta {
            id: id.to_owned(),
            level: 0,
            min_start_unix_nanos: max_end.saturating_sub(HOUR),
            max_start_unix_nanos: max_end.saturating_sub(1),
            max_end_unix_nanos: max_end,
            max_trace_start_unix_nanos: None,
            num_spans: 10,
            num_traces: 1,
            size_bytes,
            services: vec![],
            operations: vec![],
            created_unix_nanos: max_end,
        }
    }

    #[test]
    fn blocks_older_than_the_max_age_are_deleted() {
        let now = 100 * HOUR;
        let blocks = vec![block("old", 10 * HOUR, 1), block("edge", 52 * HOUR, 1), block("new", 99 * HOUR, 1)];
        assert_eq!(plan(&blocks, now, 48 * HOUR, None), vec!["old"]);
        assert!(plan(&blocks, now, 1_000 * HOUR, None).is_empty(), "nothing expires with a long max age");
    }

    #[test]
    fn oldest_blocks_go_until_the_total_fits() {
        let now = 100 * HOUR;
        let blocks = vec![block("c", 90 * HOUR, 40), block("a", 70 * HOUR, 40), block("b", 80 * HOUR, 40)];
        assert_eq!(plan(&blocks, now, 1_000 * HOUR, Some(80)), vec!["a"]);
        assert_eq!(plan(&blocks, now, 1_000 * HOUR, Some(79)), vec!["a", "b"]);
        assert_eq!(plan(&blocks, now, 1_000 * HOUR, Some(120)), Vec::<String>::new());
        assert_eq!(plan(&blocks, now, 1_000 * HOUR, Some(0)), vec!["a", "b", "c"]);
    }

    #[test]
    fn expired_blocks_count_before_the_size_limit() {
        let now = 100 * HOUR;
        let blocks = vec![block("expired", HOUR, 100), block("a", 90 * HOUR, 50), block("b", 95 * HOUR, 50)];
        // Once the expired block is gone, 100 bytes remain and fit.
        assert_eq!(plan(&blocks, now, 24 * HOUR, Some(100)), vec!["expired"]);
    }
}
