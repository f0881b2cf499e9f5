//! [`Engine::trace_ids_with_attribute`]: the traces with a span holding one attribute value,
//! from the blocks' attribute indexes (`attrs.bin`, see `block::attrs`) where they cover
//! the key, the search's block scan elsewhere, and the head.
//!
//! It finds exactly the traces a search with one attribute filter and the same time range
//! finds (a span with `key = value`, as [`AttributeFilter::matches_span`] decides it,
//! starting in the range):
//! - the head is read whole, as the search reads it: it is in memory, bounded by the flush
//!   thresholds, and the search reads all of it for every query too; keeping a map of it
//!   would cost every append and need care across freeze, flush and WAL replay;
//! - blocks are those with a span starting in the range (the manifest's start bounds, as
//!   the search selects them); a block's attribute index answers when it covers the key and
//!   decides the range for every candidate trace; otherwise (no `attrs.bin`: an older block
//!   or one written without indexed keys; written with other keys; carrying spans that
//!   straddle an edge of the range) the block is scanned with the search's own block scan
//!   and one attribute filter.
//!
//! Results are ordered as the search orders them, newest first by trace start then by
//! trace ID, where a trace's start is its earliest span among the places it was looked up
//! in: the head, the blocks scanned, and the blocks whose index lists it (an index keeps
//! each listed trace's earliest start in the block). A trace with earlier spans in a block
//! where it does not carry the value may be ranked by a later start than the search would
//! give it; that only matters when more than `max` traces match, for which of them are kept.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_model::TraceId;

use super::{Engine, EngineError};
use crate::block::BlockMeta;
use crate::search::{AttributeFilter, SearchQuery};

/// Attribute indexes loaded at once (each a cache hit once warm).
const INDEX_LOADS_AT_ONCE: usize = 16;

/// What [`Engine::trace_ids_with_attribute`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeTraces {
    /// Newest first, at most the `max` asked for.
    pub trace_ids: Vec<TraceId>,
    /// Whether more traces matched than `max`.
    pub more: bool,
    /// Blocks in the range answered by their attribute index.
    pub num_blocks_indexed: usize,
    /// Blocks in the range scanned instead.
    pub num_blocks_scanned: usize,
}

/// Per trace: the earliest start seen, and whether it matched.
#[derive(Default)]
struct Found {
    traces: HashMap<TraceId, (u64, bool), ahash::RandomState>,
}

impl Found {
    fn add(&mut self, trace_id: TraceId, start_unix_nanos: u64, matched: bool) {
        let entry = self.traces.entry(trace_id).or_insert((start_unix_nanos, matched));
        entry.0 = entry.0.min(start_unix_nanos);
        entry.1 |= matched;
    }
}

impl Engine {
    /// The traces with a span whose attribute `key` (on the span, or else on its resource)
    /// matches `value` by the attribute's type, starting in `[start_opt, end_opt]`
    /// (unbounded when `None`): the traces a search with that one attribute filter finds,
    /// newest first, at most `max`; see the module documentation for how it reads.
    pub async fn trace_ids_with_attribute(
        &self,
        key: &str,
        value: &str,
        start_opt: Option<u64>,
        end_opt: Option<u64>,
        max: usize,
    ) -> Result<AttributeTraces, EngineError> {
        let _permit = self.search_permits.acquire().await.expect("the search semaphore is never closed");
        let query = Arc::new(SearchQuery {
            attributes: vec![AttributeFilter { key: key.to_owned(), value: value.to_owned() }],
            start_unix_nanos: start_opt,
            end_unix_nanos: end_opt,
            ..Default::default()
        });
        let (from, to) = (start_opt.unwrap_or(0), end_opt.unwrap_or(u64::MAX));
        let mut found = Found::default();
        // The head before the manifest, as the search: a flush in between leaves its spans
        // in one or both, never in neither.
        for (trace_id, start, matched) in self.head_traces(query.clone()) {
            found.add(trace_id, start, matched);
        }
        let manifest = self.manifest_snapshot();
        let in_range: Vec<&BlockMeta> =
            manifest.blocks.iter().filter(|meta| meta.overlaps_start_range(from, to)).collect();
        let mut answer = AttributeTraces::default();
        let mut to_scan: Vec<&BlockMeta> = Vec::new();
        for chunk in in_range.chunks(INDEX_LOADS_AT_ONCE) {
            let loads = chunk.iter().map(|meta| self.blocks.attr_index(meta));
            for (meta, attrs_opt) in chunk.iter().zip(futures::future::try_join_all(loads).await?) {
                match attrs_opt.and_then(|attrs| attrs.lookup(key, value, from, to)) {
                    Some(hits) => {
                        answer.num_blocks_indexed += 1;
                        for hit in hits {
                            found.add(hit.trace_id, hit.start_unix_nanos, true);
                        }
                    }
                    None => to_scan.push(meta),
                }
            }
        }
        answer.num_blocks_scanned = to_scan.len();
        for chunk in to_scan.chunks(self.search_parallelism.max(1)) {
            let scans = chunk.iter().map(|meta| self.block_traces(meta, query.clone()));
            for traces in futures::future::try_join_all(scans).await? {
                for (trace_id, start, matched) in traces {
                    found.add(trace_id, start, matched);
                }
            }
        }
        let mut ranked: Vec<(u64, TraceId)> =
            found.traces.into_iter().filter(|(_, (_, matched))| *matched).map(|(id, (start, _))| (start, id)).collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        answer.more = ranked.len() > max;
        answer.trace_ids = ranked.into_iter().take(max).map(|(_, id)| id).collect();
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use sextant_model::{AnyValue, KeyValue, Resource, Span, SpanId};

    use super::*;
    use crate::engine::{EngineMetrics, EngineOptions, now_unix_nanos};
    use crate::search::MAX_SEARCH_LIMIT;

    const PROCESS: &str = "business_process.id";
    const MESSAGE: &str = "messaging.message.id";

    /// An hour ago, in whole seconds: inside the retention, and starts are easy to place.
    fn base() -> u64 {
        (now_unix_nanos() / 1_000_000_000 - 3_600) * 1_000_000_000
    }

    fn span(base: u64, trace: u8, id: u8, at_secs: u64, attributes: Vec<KeyValue>) -> Span {
        let start = base + at_secs * 1_000_000_000;
        let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), "op", start, start + 1_000);
        span.attributes = attributes;
        span
    }

    /// Trace t: a root at second t without IDs, a child at t + 1 carrying the process
    /// "p-{t % 3}" (a string; for t % 4 == 1 the integer t % 3 instead, and for t % 4 == 2
    /// on the resource), and a producer span at t + 2 with message "m-{t % 5}" (and for
    /// t % 4 == 3 the process again: two carrying spans a second apart).
    fn trace(base: u64, t: u8) -> Vec<Span> {
        let process = match t % 4 {
            1 => KeyValue::new(PROCESS, AnyValue::Int((t % 3) as i64)),
            _ => KeyValue::string(PROCESS, format!("p-{}", t % 3)),
        };
        let mut child = span(base, t, 2, u64::from(t) + 1, vec![]);
        if t % 4 == 2 {
            child.resource = Arc::new(Resource { attributes: vec![process], ..Default::default() });
        } else {
            child.attributes.push(process);
        }
        let t64 = u64::from(t);
        let mut producer = span(base, t, 3, t64 + 2, vec![KeyValue::string(MESSAGE, format!("m-{}", t % 5))]);
        if t % 4 == 3 {
            producer.attributes.push(KeyValue::string(PROCESS, format!("p-{}", t % 3)));
        }
        vec![span(base, t, 1, t64, vec![]), child, producer]
    }

    fn traces(base: u64, ts: impl IntoIterator<Item = u8>) -> Vec<Span> {
        ts.into_iter().flat_map(|t| trace(base, t)).collect()
    }

    async fn open(dir: &std::path::Path, keys: &[&str]) -> Arc<Engine> {
        let mut options = EngineOptions::new(dir);
        options.wal.fsync = false;
        options.indexed_attribute_keys = keys.iter().map(|k| k.to_string()).collect();
        Engine::open(options, EngineMetrics::default()).await.unwrap()
    }

    /// What the search answers for one attribute filter, every page.
    async fn searched(engine: &Engine, key: &str, value: &str, range: (Option<u64>, Option<u64>)) -> Vec<TraceId> {
        let mut query = SearchQuery {
            attributes: vec![AttributeFilter { key: key.into(), value: value.into() }],
            start_unix_nanos: range.0,
            end_unix_nanos: range.1,
            limit: MAX_SEARCH_LIMIT,
            ..Default::default()
        };
        let mut ids = Vec::new();
        loop {
            let page = engine.search(&query).await.unwrap();
            ids.extend(page.traces.iter().map(|t| t.trace_id));
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return ids,
            }
        }
    }

    async fn lookup(engine: &Engine, key: &str, value: &str, range: (Option<u64>, Option<u64>)) -> AttributeTraces {
        engine.trace_ids_with_attribute(key, value, range.0, range.1, usize::MAX).await.unwrap()
    }

    /// Every lookup the tests compare with the search: each process and message value, an
    /// integer written as text, a value nobody carries, over all time and over ranges that
    /// cut traces.
    async fn assert_lookups_equal_the_search(engine: &Engine, base: u64) -> Vec<AttributeTraces> {
        let ranges = [
            (None, None),
            (Some(base + 10 * 1_000_000_000), None),
            (Some(base + 12_500_000_000), Some(base + 21_500_000_000)),
        ];
        let mut answers = Vec::new();
        for range in ranges {
            for (key, value) in [
                (PROCESS, "p-0"),
                (PROCESS, "p-1"),
                (PROCESS, "p-2"),
                (PROCESS, "1"),
                (PROCESS, "01"),
                (PROCESS, "p-9"),
                (MESSAGE, "m-3"),
                (MESSAGE, "m-0"),
            ] {
                let want = searched(engine, key, value, range).await;
                let found = lookup(engine, key, value, range).await;
                assert_eq!(found.trace_ids, want, "{key}={value} in {range:?}");
                assert!(!found.more);
                answers.push(found);
            }
        }
        answers
    }

    #[tokio::test]
    async fn lookups_equal_the_search_across_head_blocks_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let base = base();
        {
            let engine = open(dir.path(), &[PROCESS, MESSAGE]).await;
            engine.append(traces(base, 1..=10)).await.unwrap();
            engine.flush().await.unwrap();
            engine.append(traces(base, 11..=20)).await.unwrap();
            engine.flush().await.unwrap();
            // In the head until the restart: the WAL replay brings it back.
            engine.append(traces(base, 21..=30)).await.unwrap();
            assert_eq!(engine.manifest_snapshot().blocks.len(), 2);
            let answers = assert_lookups_equal_the_search(&engine, base).await;
            let all_time = &answers[0];
            assert_eq!(all_time.trace_ids.len(), 8, "p-0: traces 3, 6, …, 30 but 9 and 21 (integers)");
            assert_eq!((all_time.num_blocks_indexed, all_time.num_blocks_scanned), (2, 0));
        }
        let engine = open(dir.path(), &[PROCESS, MESSAGE]).await;
        assert!(engine.head.read().num_spans() > 0, "the WAL refilled the head");
        let answers = assert_lookups_equal_the_search(&engine, base).await;
        assert_eq!(answers[0].trace_ids.len(), 8);
        // Cutting the range inside the carrying spans of a block's traces makes that block
        // scanned, and the answer is still the search's (checked above).
        assert!(answers.iter().any(|a| a.num_blocks_scanned > 0));

        // Bounded: the newest first, and `more` says the rest exists.
        let bounded = engine.trace_ids_with_attribute(PROCESS, "p-0", None, None, 3).await.unwrap();
        assert!(bounded.more);
        assert_eq!(bounded.trace_ids, answers[0].trace_ids[..3]);
        assert_eq!(bounded.trace_ids[0], TraceId([30; 16]));
    }

    #[tokio::test]
    async fn blocks_without_an_index_or_indexed_with_other_keys_are_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let base = base();
        for (keys, batch) in [(&[][..], 1..=6), (&["order.id"][..], 7..=12), (&[PROCESS][..], 13..=18)] {
            let engine = open(dir.path(), keys).await;
            engine.append(traces(base, batch)).await.unwrap();
            engine.flush().await.unwrap();
        }
        let engine = open(dir.path(), &[PROCESS]).await;
        assert_eq!(engine.manifest_snapshot().blocks.len(), 3);
        // "p-2": t % 3 == 2, but 5 and 17 carry the integer 2.
        let found = lookup(&engine, PROCESS, "p-2", (None, None)).await;
        assert_eq!((found.num_blocks_indexed, found.num_blocks_scanned), (1, 2));
        let want: Vec<TraceId> = [14, 11, 8, 2].into_iter().map(|t| TraceId([t; 16])).collect();
        assert_eq!(found.trace_ids, want);
        assert_eq!(found.trace_ids, searched(&engine, PROCESS, "p-2", (None, None)).await);
        // The message ID is indexed in none of them.
        let found = lookup(&engine, MESSAGE, "m-1", (None, None)).await;
        assert_eq!((found.num_blocks_indexed, found.num_blocks_scanned), (0, 3));
        assert_eq!(found.trace_ids, searched(&engine, MESSAGE, "m-1", (None, None)).await);
        assert_eq!(found.trace_ids.len(), 4, "traces 1, 6, 11, 16");
    }

    #[tokio::test]
    async fn compacted_blocks_answer_from_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let base = base();
        let engine = open(dir.path(), &[PROCESS]).await;
        for batch in [1..=8, 9..=16, 17..=24, 25..=32] {
            engine.append(traces(base, batch)).await.unwrap();
            engine.flush().await.unwrap();
        }
        let before = searched(&engine, PROCESS, "p-1", (None, None)).await;
        assert!(engine.compact().await.unwrap() > 0, "the small blocks are merged");
        let found = lookup(&engine, PROCESS, "p-1", (None, None)).await;
        assert_eq!(found.num_blocks_scanned, 0, "compaction outputs have indexes");
        assert_eq!(found.trace_ids, before);
        assert_eq!(found.trace_ids, searched(&engine, PROCESS, "p-1", (None, None)).await);
    }
}
