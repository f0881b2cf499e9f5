//! Search execution over the head and the blocks: newest first, stopping early.
//!
//! The head is read whole (it is in memory). Blocks are then read newest first (by their
//! latest span start), only the columns the query needs (see `BlockStore::fold_search_rows`):
//! one block first, which often settles the page, then as many at once as there are cores,
//! each into a state of its own that is merged as it comes in. The next block starts as soon
//! as one is in (not when the slowest of a round is), unless the blocks being read will
//! likely complete the page at the rate of matches per block so far. Per trace the search
//! keeps its true earliest start, latest end, whether some span matched the span conditions,
//! and a summary of its spans.
//!
//! The search stops once the page is certain: `limit + 1` matching traces start after every
//! span of the blocks not read yet that could match (so no trace found later can rank before
//! them), and neither those traces nor the matched ones after them that the cursor or the
//! trace-duration bounds exclude so far have spans in an unread block (checked on the
//! blocks' trace-ID indexes; a block that has some is read, since its spans could move a
//! trace's start or end).
//! Ordering, the cursor and the trace-duration bounds use exact values, so pages neither skip
//! nor repeat traces, and `next_cursor` is set exactly when another page exists.
//!
//! A search with a service reads of each block only the clusters whose spans include that
//! service (see `BlockStore::fold_search_rows`). The rows it skips hold no span that could
//! match, but may hold other spans of a trace that matched elsewhere, which could move its
//! start or end: before the page is final, the runs of its candidate traces in skipped rows
//! (found on the trace-ID indexes) are read too.
//!
//! A block read keeps only the traces with a span that matched in it: a selective search
//! reads thousands of traces per block and keeps a few. The rows of the traces it left out
//! count as not read, like skipped clusters: a trace that makes the page and has spans there
//! has them read before the page is final.
//!
//! A page trace seen in exactly one run of one block is summarised from the rows read (a run
//! holds each span once, in start order). One also seen in the head, in another run or in
//! several blocks is read again whole, so duplicate spans from retried exports are counted once.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use sextant_model::TraceId;

use super::{Engine, EngineError};
use crate::block::{BlockMeta, SearchRow, SearchRows, ServiceNames, merge_ranges};
use crate::search::{Cursor, SearchQuery, SearchResult, TraceSummary};

/// What the search keeps per trace.
#[derive(Clone, Debug)]
struct Seen {
    min_start: u64,
    max_end: u64,
    matched: bool,
    /// Head parts and blocks the trace was found in (saturating).
    sources: u8,
    /// The trace's spans in the one block it was found in; `None` for the head.
    summary: Option<BlockSummary>,
}

/// Trace IDs come from clients, so the map keeps a keyed hash, a fast one (`ahash`).
type SeenMap = HashMap<TraceId, Seen, ahash::RandomState>;
/// A trace's earliest start and ID: the page order, newest first.
type Ranked = (u64, TraceId);

/// A trace's spans in one block, with service and span names as [`Names`] numbers.
#[derive(Clone, Debug)]
struct BlockSummary {
    span_count: u32,
    error_count: u32,
    /// (start, service, name) of the first span in block order (the earliest).
    first: (u64, u32, u32),
    /// The same for the earliest span without a parent.
    root: Option<(u64, u32, u32)>,
    services: ServiceSet,
}

impl BlockSummary {
    fn new(first: (u64, u32, u32)) -> Self {
        BlockSummary { span_count: 0, error_count: 0, first, root: None, services: ServiceSet::default() }
    }

    fn to_trace_summary(&self, trace_id: TraceId, seen: &Seen, names: &Names) -> TraceSummary {
        let (_, root_service, root_name) = self.root.unwrap_or(self.first);
        let mut services: Vec<String> = self.services.iter().map(|id| names.text(id).to_owned()).collect();
        services.sort();
        TraceSummary {
            trace_id,
            root_service: names.text(root_service).to_owned(),
            root_name: names.text(root_name).to_owned(),
            start_unix_nanos: seen.min_start,
            duration_nanos: seen.max_end.saturating_sub(seen.min_start),
            span_count: self.span_count as usize,
            error_count: self.error_count as usize,
            services,
        }
    }
}

/// A set of [`Names`] numbers: a bit mask for the first 64, a set beyond.
#[derive(Clone, Debug, Default)]
struct ServiceSet {
    low: u64,
    high: BTreeSet<u32>,
}

impl ServiceSet {
    fn insert(&mut self, id: u32) {
        match id {
            0..64 => self.low |= 1 << id,
            _ => {
                self.high.insert(id);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64u32).filter(|i| self.low & (1 << i) != 0).chain(self.high.iter().copied())
    }
}

/// Service and span names seen by one search, numbered.
#[derive(Default)]
struct Names {
    texts: Vec<String>,
    ids: HashMap<String, u32, ahash::RandomState>,
}

impl Names {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }
}

/// Per-batch caches from a batch's distinct-value keys to [`Names`] numbers.
#[derive(Default)]
struct KeyCache {
    batch: Option<usize>,
    services: Vec<Option<u32>>,
    names: Vec<Option<u32>>,
}

impl KeyCache {
    fn lookup(slots: &mut Vec<Option<u32>>, key: usize, names: &mut Names, text: &str) -> u32 {
        if key >= slots.len() {
            slots.resize(key + 1, None);
        }
        *slots[key].get_or_insert_with(|| names.id(text))
    }

    /// (service, name) numbers of a row.
    fn ids(&mut self, names: &mut Names, row: &SearchRow<'_>) -> (u32, u32) {
        if self.batch != Some(row.batch) {
            self.batch = Some(row.batch);
            self.services.clear();
            self.names.clear();
        }
        let service = Self::lookup(&mut self.services, row.service_key, names, row.service_name);
        let name = Self::lookup(&mut self.names, row.name_key, names, row.name);
        (service, name)
    }
}

/// The search state, moved into each block read and back.
struct State {
    query: Arc<SearchQuery>,
    seen: SeenMap,
    names: Names,
    /// Traces in the order they first matched.
    matched: Vec<TraceId>,
    cache: KeyCache,
    /// The trace whose rows are being read (a block keeps a trace's rows together), and
    /// those rows.
    run: Option<(TraceId, Seen, Range<u64>)>,
    /// In a block read that keeps matched traces only (see [`Keep`]): the rows of the runs it
    /// left out, merged where they touch.
    dropped: Option<Vec<Range<u64>>>,
}

/// Which traces a block read keeps in its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Every trace read.
    All,
    /// Only the runs of rows in which some span matched: a selective search reads many
    /// traces and keeps a few. The rows of the others are then treated as not read (like
    /// skipped clusters), so that a trace that makes the page is read there if it has spans
    /// there.
    Matched,
}

impl State {
    fn new(query: Arc<SearchQuery>) -> State {
        State {
            query,
            seen: SeenMap::default(),
            names: Names::default(),
            matched: Vec::new(),
            cache: KeyCache::default(),
            run: None,
            dropped: None,
        }
    }

    /// Adds what another state (of other blocks) found.
    fn absorb(&mut self, other: State) {
        if self.seen.is_empty() {
            // Nothing to merge with (an empty head): take the other state as it is.
            *self = other;
            return;
        }
        self.seen.reserve(other.seen.len());
        let ids: Vec<u32> = other.names.texts.iter().map(|text| self.names.id(text)).collect();
        let remap = |(start, service, name): (u64, u32, u32)| (start, ids[service as usize], ids[name as usize]);
        for (trace_id, mut seen) in other.seen {
            if let Some(summary) = &mut seen.summary {
                summary.first = remap(summary.first);
                summary.root = summary.root.map(remap);
                let mut services = ServiceSet::default();
                for id in summary.services.iter() {
                    services.insert(ids[id as usize]);
                }
                summary.services = services;
            }
            self.merge(trace_id, seen);
        }
    }

    fn merge(&mut self, trace_id: TraceId, found: Seen) {
        match self.seen.get_mut(&trace_id) {
            Some(seen) => {
                let was_matched = seen.matched;
                seen.min_start = seen.min_start.min(found.min_start);
                seen.max_end = seen.max_end.max(found.max_end);
                seen.matched |= found.matched;
                seen.sources = seen.sources.saturating_add(found.sources);
                seen.summary = None;
                if seen.matched && !was_matched {
                    self.matched.push(trace_id);
                }
            }
            None => {
                if found.matched {
                    self.matched.push(trace_id);
                }
                self.seen.insert(trace_id, found);
            }
        }
    }

    fn observe_row(&mut self, row: SearchRow<'_>) {
        let continues =
            self.run.as_ref().is_some_and(|(trace_id, _, rows)| *trace_id == row.trace_id && rows.end == row.row);
        if !continues {
            self.end_run();
        }
        let (service, name) = self.cache.ids(&mut self.names, &row);
        let start = row.start_unix_nanos;
        let (_, run, rows) = self.run.get_or_insert_with(|| {
            let seen = Seen {
                min_start: start,
                max_end: 0,
                matched: false,
                sources: 1,
                summary: Some(BlockSummary::new((start, service, name))),
            };
            (row.trace_id, seen, row.row..row.row)
        });
        rows.end = row.row + 1;
        run.min_start = run.min_start.min(start);
        run.max_end = run.max_end.max(row.end_unix_nanos);
        run.matched |= row.matched;
        let summary = run.summary.as_mut().expect("a block run has a summary");
        summary.span_count += 1;
        summary.error_count += row.is_error as u32;
        summary.services.insert(service);
        if row.is_root && summary.root.is_none_or(|(root_start, _, _)| start < root_start) {
            summary.root = Some((start, service, name));
        }
    }

    fn end_run(&mut self) {
        let Some((trace_id, run, rows)) = self.run.take() else { return };
        match &mut self.dropped {
            Some(dropped) if !run.matched => match dropped.last_mut() {
                Some(last) if last.end == rows.start => last.end = rows.end,
                _ => dropped.push(rows),
            },
            _ => self.merge(trace_id, run),
        }
    }

    /// The newest matching traces that start after `bound` (all of them without a bound),
    /// at most `n`, in page order; and the matched traces after `bound` that the cursor or the
    /// trace-duration bounds exclude for now, which spans not read yet could bring back (when
    /// there are `n`, only those ranked before the last of them).
    fn top(&self, n: usize, bound: Option<u64>) -> (Vec<Ranked>, Vec<Ranked>) {
        let (mut top, mut excluded): (Vec<Ranked>, Vec<Ranked>) = (Vec::new(), Vec::new());
        for id in &self.matched {
            let seen = &self.seen[id];
            if bound.is_some_and(|bound| seen.min_start <= bound) {
                continue;
            }
            if self.query.trace_matches(seen.min_start, seen.max_end, id) {
                top.push((seen.min_start, *id));
            } else if self.query.trace_may_match_later(seen.min_start, seen.max_end) {
                excluded.push((seen.min_start, *id));
            }
        }
        let page_order = |a: &Ranked, b: &Ranked| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if top.len() > n && n > 0 {
            top.select_nth_unstable_by(n - 1, page_order);
            top.truncate(n);
        }
        top.sort_by(page_order);
        // With `n` traces in hand, an excluded trace ranked after the last of them stays there
        // whatever spans it gets (they can only make it start earlier), so it cannot change
        // this page: only the ones ranked before it are kept. A trace-duration bound can
        // exclude most traces read, and each is looked for in every unread block.
        if let Some(last) = top.last().filter(|_| top.len() == n) {
            excluded.retain(|trace| page_order(trace, last).is_lt());
        }
        (top, excluded)
    }
}

impl Engine {
    /// Finds traces matching `query`, newest first. See [`crate::search`] for semantics.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResult, EngineError> {
        let _permit = self.search_permits.acquire().await.expect("the search semaphore is never closed");
        let query = Arc::new(query.clone());
        let mut state = State::new(query.clone());
        self.search_head(&mut state);

        // Blocks not read yet, newest first.
        let manifest = self.manifest_snapshot();
        let mut pending: Vec<&BlockMeta> = manifest.blocks.iter().collect();
        pending.sort_by(|a, b| b.max_start_unix_nanos.cmp(&a.max_start_unix_nanos).then(a.id.cmp(&b.id)));
        let (from, to) = (query.start_unix_nanos.unwrap_or(0), query.end_unix_nanos.unwrap_or(u64::MAX));
        // Only blocks with a span starting in the time range can hold a matching span.
        let may_match = |meta: &BlockMeta| meta.overlaps_start_range(from, to);
        let limit = query.effective_limit();
        // Blocks read in part, with the rows not read.
        let mut partial: Vec<(&BlockMeta, Vec<Range<u64>>)> = Vec::new();
        // Blocks being read, and blocks to read next whatever the page (they hold spans of
        // the page's traces).
        let mut reading = FuturesUnordered::new();
        let mut reading_metas: Vec<&BlockMeta> = Vec::new();
        let mut queued: Vec<&BlockMeta> = Vec::new();
        // One block is read first, which often settles the page; then as many at once as
        // there are cores, the next one started as soon as one is done.
        let (mut width, mut blocks_read) = (1, 0);
        let page = loop {
            if reading_metas.len() < width {
                let start = match queued.pop() {
                    Some(meta) => Some(meta),
                    None => {
                        let next = pending.iter().position(|meta| may_match(meta));
                        // A block being read could still hold matches that rank first.
                        let bound = next
                            .map(|i| pending[i].max_start_unix_nanos)
                            .into_iter()
                            .chain(reading_metas.iter().filter(|m| may_match(m)).map(|m| m.max_start_unix_nanos))
                            .max();
                        let (top, excluded) = state.top(limit + 1, bound);
                        // Whether the blocks being read will likely complete the page, at the
                        // rate of matches per block so far: then no other is started until
                        // they are in.
                        let likely = state.matched.len() * (blocks_read + reading_metas.len()) > limit * blocks_read;
                        match (top.len() > limit || next.is_none(), reading_metas.is_empty()) {
                            (false, false) if likely => None,
                            // No block started before the ones being read are in.
                            (true, false) => None,
                            (true, true) => {
                                // Unread spans of these traces could change their place or
                                // bring them in.
                                let traces = || top.iter().chain(&excluded);
                                let spread = self.blocks_holding(&pending, traces()).await?;
                                let unread = self.unread_runs(&mut partial, traces()).await?;
                                if spread.is_empty() && unread.is_empty() {
                                    break top;
                                }
                                for (meta, runs) in unread {
                                    let rows = SearchRows::Listed(runs);
                                    let (scan, _) = self.search_block(meta, query.clone(), rows, Keep::All).await?;
                                    state.absorb(scan);
                                }
                                queued.extend(spread.iter().rev().map(|&i| pending.remove(i)));
                                continue;
                            }
                            (false, _) => next.map(|i| pending.remove(i)),
                        }
                    }
                };
                if let Some(meta) = start {
                    reading_metas.push(meta);
                    let read = self.search_block(meta, query.clone(), SearchRows::OfQuery, Keep::Matched);
                    reading.push(async move { (meta, read.await) });
                    continue;
                }
            }
            let (meta, read) = reading.next().await.expect("a block is being read");
            reading_metas.retain(|m| m.id != meta.id);
            let (scan, skipped) = read?;
            state.absorb(scan);
            blocks_read += 1;
            if !skipped.is_empty() {
                partial.push((meta, skipped));
            }
            width = self.search_parallelism;
        };

        let more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let next_cursor = match more {
            true => page.last().map(|&(start_unix_nanos, trace_id)| Cursor { start_unix_nanos, trace_id }),
            false => None,
        };
        let mut traces: Vec<TraceSummary> = Vec::with_capacity(page.len());
        for &(_, trace_id) in page {
            let seen = &state.seen[&trace_id];
            match (&seen.summary, seen.sources) {
                (Some(summary), 1) => traces.push(summary.to_trace_summary(trace_id, seen, &state.names)),
                _ => {
                    let spans = self.trace(trace_id).await?;
                    traces.extend(TraceSummary::of(trace_id, &spans));
                }
            }
        }
        Ok(SearchResult { traces, next_cursor })
    }

    /// Every trace of the head, with its earliest start there and whether one of its spans
    /// satisfies `query`'s span conditions, as the search reads the head (for
    /// [`Engine::trace_ids_with_attribute`]).
    pub(super) fn head_traces(&self, query: Arc<SearchQuery>) -> Vec<(TraceId, u64, bool)> {
        let mut state = State::new(query);
        self.search_head(&mut state);
        state.seen.iter().map(|(id, seen)| (*id, seen.min_start, seen.matched)).collect()
    }

    /// The traces of one block in the rows a search for `query` reads (all of them without a
    /// service condition), each with its earliest start there and whether one of its spans
    /// there satisfies `query`'s span conditions: the search's block scan, for
    /// [`Engine::trace_ids_with_attribute`] on blocks its attribute indexes do not cover.
    pub(super) async fn block_traces(
        &self,
        meta: &BlockMeta,
        query: Arc<SearchQuery>,
    ) -> Result<Vec<(TraceId, u64, bool)>, EngineError> {
        let (state, _) = self.search_block(meta, query, SearchRows::OfQuery, Keep::All).await?;
        Ok(state.seen.iter().map(|(id, seen)| (*id, seen.min_start, seen.matched)).collect())
    }

    /// Adds every span of the head to the search state.
    fn search_head(&self, state: &mut State) {
        let head = self.head.read();
        // Spans share a handful of resources: each one's service name is looked up once.
        let mut service_names = ServiceNames::default();
        for part in head.parts() {
            for (trace_id, spans) in part.traces() {
                let mut run = Seen { min_start: u64::MAX, max_end: 0, matched: false, sources: 1, summary: None };
                for span in spans {
                    run.min_start = run.min_start.min(span.start_unix_nanos);
                    run.max_end = run.max_end.max(span.end_unix_nanos);
                    if !run.matched {
                        run.matched = state.query.span_fields_match(
                            service_names.of(span),
                            &span.name,
                            span.is_error(),
                            span.start_unix_nanos,
                            span.end_unix_nanos,
                        ) && state.query.attributes_match(span);
                    }
                }
                state.merge(*trace_id, run);
            }
        }
    }

    /// Reads the rows `rows` chooses of one block into a search state of its own, keeping
    /// the traces `keep` says; returns it with the rows not read or not kept.
    async fn search_block(
        &self,
        meta: &BlockMeta,
        query: Arc<SearchQuery>,
        rows: SearchRows,
        keep: Keep,
    ) -> Result<(State, Vec<Range<u64>>), EngineError> {
        let mut state = State::new(query.clone());
        if keep == Keep::Matched {
            state.dropped = Some(Vec::new());
        }
        let fold = self.blocks.fold_search_rows(meta, query, rows, state, |state, row| state.observe_row(row));
        let (mut state, mut skipped) = fold.await?;
        state.end_run();
        if let Some(dropped) = state.dropped.take().filter(|dropped| !dropped.is_empty()) {
            skipped.extend(dropped);
            skipped = merge_ranges(skipped);
        }
        Ok((state, skipped))
    }

    /// The runs of `traces` in rows that a partial read of a block skipped, per block; they
    /// are taken out of the skipped rows, so each is read once.
    async fn unread_runs<'m>(
        &self,
        partial: &mut [(&'m BlockMeta, Vec<Range<u64>>)],
        traces: impl Iterator<Item = &Ranked>,
    ) -> Result<Vec<(&'m BlockMeta, Vec<Range<u64>>)>, EngineError> {
        let traces: Vec<TraceId> = traces.map(|(_, trace_id)| *trace_id).collect();
        let mut unread = Vec::new();
        for (meta, skipped) in partial.iter_mut() {
            if skipped.is_empty() {
                continue;
            }
            let index = self.blocks.index(meta).await?;
            let mut runs: Vec<Range<u64>> = Vec::new();
            for trace_id in &traces {
                for run in index.lookup(trace_id) {
                    // A run lies in one cluster, which was read or skipped whole, and a run
                    // read was kept or left out whole. The skipped rows are sorted and
                    // disjoint (and, with rows left out, can be many ranges).
                    let i = skipped.partition_point(|rows| rows.end <= run.start);
                    let Some(rows) = skipped.get(i).filter(|r| r.start <= run.start && run.end <= r.end).cloned()
                    else {
                        continue;
                    };
                    let rest = [rows.start..run.start, run.end..rows.end].into_iter().filter(|r| !r.is_empty());
                    skipped.splice(i..=i, rest);
                    runs.push(run);
                }
            }
            if !runs.is_empty() {
                runs.sort_unstable_by_key(|r| r.start);
                unread.push((*meta, runs));
            }
        }
        Ok(unread)
    }

    /// Positions in `pending` of the blocks holding spans of any of `traces`, ascending.
    async fn blocks_holding(
        &self,
        pending: &[&BlockMeta],
        traces: impl Iterator<Item = &Ranked>,
    ) -> Result<Vec<usize>, EngineError> {
        let mut traces: Vec<TraceId> = traces.map(|(_, trace_id)| *trace_id).collect();
        traces.sort_unstable();
        let mut holding = Vec::new();
        for (i, meta) in pending.iter().enumerate() {
            if !traces.is_empty() && self.blocks.index(meta).await?.contains_any(&traces) {
                holding.push(i);
            }
        }
        Ok(holding)
    }
}
