//! Search execution over the head and the blocks.
//!
//! Two passes. The first streams every span of the head and of every block (one decoded
//! batch in memory at a time) and keeps, per trace, its true earliest start, latest end and
//! whether some span matched the query's span conditions. Ordering, the cursor and the
//! trace-duration bounds are then applied to those exact values, so pages neither skip nor
//! repeat traces. The second pass assembles only the traces of the page.
//!
//! Cost: the first pass reads every block. Without attribute filters it decodes only the
//! columns the span conditions look at (trace ID, start, duration, service, name, status)
//! and builds no spans; with them it decodes whole spans. Per-block trace summaries that let
//! it skip blocks are planned with the benchmark work.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_model::{Resource, Span, TraceId};

use super::{Engine, EngineError};
use crate::block::SearchRow;
use crate::search::{Cursor, SearchQuery, SearchResult, TraceSummary};

/// What the first pass keeps per trace.
#[derive(Clone, Copy)]
struct Seen {
    min_start: u64,
    max_end: u64,
    matched: bool,
}

type SeenMap = HashMap<TraceId, Seen>;

impl Seen {
    const NONE: Seen = Seen { min_start: u64::MAX, max_end: 0, matched: false };

    fn add(&mut self, start: u64, end: u64, matched: impl FnOnce() -> bool) {
        self.min_start = self.min_start.min(start);
        self.max_end = self.max_end.max(end);
        self.matched = self.matched || matched();
    }

    fn merge(&mut self, other: Seen) {
        self.add(other.min_start, other.max_end, || other.matched);
    }
}

fn observe(seen: &mut SeenMap, query: &SearchQuery, span: &Span) {
    let entry = seen.entry(span.trace_id).or_insert(Seen::NONE);
    entry.add(span.start_unix_nanos, span.end_unix_nanos, || query.span_matches(span));
}

/// First-pass state over block rows. A block keeps one trace's rows together, so they are
/// gathered in `run` and the map is touched once per trace rather than once per span.
struct RowFold {
    seen: SeenMap,
    run: Option<(TraceId, Seen)>,
}

impl RowFold {
    fn observe(&mut self, query: &SearchQuery, row: SearchRow<'_>) {
        let run = match &mut self.run {
            Some((trace_id, run)) if *trace_id == row.trace_id => run,
            _ => {
                self.flush();
                &mut self.run.insert((row.trace_id, Seen::NONE)).1
            }
        };
        run.add(row.start_unix_nanos, row.end_unix_nanos, || {
            query.span_fields_match(row.service_name, row.name, row.is_error, row.start_unix_nanos, row.end_unix_nanos)
        });
    }

    fn flush(&mut self) {
        if let Some((trace_id, run)) = self.run.take() {
            self.seen.entry(trace_id).or_insert(Seen::NONE).merge(run);
        }
    }
}

impl Engine {
    /// Finds traces matching `query`, newest first. See [`crate::search`] for semantics.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResult, EngineError> {
        let _permit = self.search_permits.acquire().await.expect("the search semaphore is never closed");
        let query = Arc::new(query.clone());
        let mut seen: SeenMap = HashMap::new();
        {
            let head = self.head.read();
            for part in head.parts() {
                // Spans of one request share their resource: its service name is looked up
                // once per run of spans rather than once per span.
                let mut service: Option<(*const Resource, &str)> = None;
                for (trace_id, spans) in part.traces() {
                    let mut run = Seen::NONE;
                    for span in spans {
                        run.add(span.start_unix_nanos, span.end_unix_nanos, || {
                            let resource = Arc::as_ptr(&span.resource);
                            let name = match service {
                                Some((cached, name)) if cached == resource => name,
                                _ => service.insert((resource, span.service_name())).1,
                            };
                            query.span_fields_match(
                                name,
                                &span.name,
                                span.is_error(),
                                span.start_unix_nanos,
                                span.end_unix_nanos,
                            ) && query.attributes_match(span)
                        });
                    }
                    seen.entry(*trace_id).or_insert(Seen::NONE).merge(run);
                }
            }
        }
        let manifest = self.manifest_snapshot();
        for meta in &manifest.blocks {
            let query = query.clone();
            if query.has_attribute_filters() {
                seen = self
                    .blocks
                    .fold_spans(meta, seen, move |seen, spans| {
                        for span in spans {
                            observe(seen, &query, span);
                        }
                    })
                    .await?;
            } else {
                // Attribute-free conditions need only a few columns: no spans are built.
                let fold = RowFold { seen, run: None };
                let mut fold =
                    self.blocks.fold_search_rows(meta, fold, move |fold, row| fold.observe(&query, row)).await?;
                fold.flush();
                seen = fold.seen;
            }
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
