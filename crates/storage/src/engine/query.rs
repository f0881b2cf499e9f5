//! Search execution over the head and the blocks.
//!
//! Two passes. The first streams every span of the head and of every block (one decoded
//! batch in memory at a time) and keeps, per trace, its true earliest start, latest end and
//! whether some span matched the query's span conditions. Ordering, the cursor and the
//! trace-duration bounds are then applied to those exact values, so pages neither skip nor
//! repeat traces. The second pass assembles only the traces of the page.
//!
//! Cost: the first pass reads every block; per-block trace summaries that let it skip
//! blocks are planned with the benchmark work.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_model::{Span, TraceId};

use super::{Engine, EngineError};
use crate::search::{Cursor, SearchQuery, SearchResult, TraceSummary};

/// What the first pass keeps per trace.
#[derive(Clone, Copy)]
struct Seen {
    min_start: u64,
    max_end: u64,
    matched: bool,
}

type SeenMap = HashMap<TraceId, Seen>;

fn observe(seen: &mut SeenMap, query: &SearchQuery, span: &Span) {
    let entry = seen.entry(span.trace_id).or_insert(Seen { min_start: u64::MAX, max_end: 0, matched: false });
    entry.min_start = entry.min_start.min(span.start_unix_nanos);
    entry.max_end = entry.max_end.max(span.end_unix_nanos);
    entry.matched = entry.matched || query.span_matches(span);
}

impl Engine {
    /// Finds traces matching `query`, newest first. See [`crate::search`] for semantics.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResult, EngineError> {
        let _permit = self.search_permits.acquire().await.expect("the search semaphore is never closed");
        let query = Arc::new(query.clone());
        let mut seen: SeenMap = HashMap::new();
        {
            let head = self.head.read();
            for span in head.parts().flat_map(|part| part.spans()) {
                observe(&mut seen, &query, span);
            }
        }
        let manifest = self.manifest_snapshot();
        for meta in &manifest.blocks {
            let query = query.clone();
            seen = self
                .blocks
                .fold_spans(meta, seen, move |seen, spans| {
                    for span in spans {
                        observe(seen, &query, span);
                    }
                })
                .await?;
        }

        let mut candidates: Vec<(u64, TraceId)> = seen
            .into_iter()
            .filter(|(id, s)| s.matched && query.trace_matches(s.min_start, s.max_end, id))
            .map(|(id, s)| (s.min_start, id))
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

        // Order, page and cursor all use the first pass's values, so they agree even if spans
        // arrive between the passes.
        let limit = query.effective_limit();
        let more = candidates.len() > limit;
        candidates.truncate(limit);
        let next_cursor = if more {
            candidates.last().map(|&(start_unix_nanos, trace_id)| Cursor { start_unix_nanos, trace_id })
        } else {
            None
        };
        let mut traces: Vec<TraceSummary> = Vec::with_capacity(candidates.len());
        for (_, trace_id) in candidates {
            let spans = self.trace(trace_id).await?;
            traces.extend(TraceSummary::of(trace_id, &spans));
        }
        Ok(SearchResult { traces, next_cursor })
    }
}
