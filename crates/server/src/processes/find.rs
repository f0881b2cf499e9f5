//! Finding a process's traces, searching processes, and a trace's links and backlinks.
//!
//! A process's traces, and the backlink candidates sharing a message ID or a process with a
//! trace, come from [`Engine::trace_ids_with_attribute`]: the process keys and
//! `messaging.message.id` are indexed at ingest (see [`super::indexed_attribute_keys`]),
//! so each block written since answers from its small attribute index (`attrs.bin`) instead
//! of a scan of its attribute columns; blocks without one (older, or written with other
//! keys) are scanned as the search scans them, and the head is read in memory. The answer is
//! the traces the attribute search ([`Engine::search`] with one attribute filter) finds.
//! See `docs/adr/0011-business-processes-and-async-flows.md`.
//!
//! A process search by arbitrary conditions ([`search_processes`]) pages the search until it
//! is exhausted. Every function stops at the [`Limits`], saying `partial` then: a process of
//! more than `max_traces` traces keeps its newest ones.

use std::collections::{BTreeSet, HashMap, HashSet};

use sextant_model::{Span, SpanId, SpanKind, TraceId};
use sextant_storage::engine::{Engine, EngineError};
use sextant_storage::search::{MAX_SEARCH_LIMIT, SearchQuery};

use super::hops::{Via, find_hops, message_id};
use super::timeline::{Timeline, assemble};
use super::{Limits, process_ids};

/// Traces fetched at once: [`Engine::traces`] reads each block once per call.
const FETCH_CHUNK: usize = 256;

/// The IDs of the traces matching `query` (its limit and cursor are replaced), newest first,
/// at most `max`; `true` when there were more.
async fn matching_trace_ids(
    engine: &Engine,
    mut query: SearchQuery,
    max: usize,
    into: &mut Vec<TraceId>,
    seen: &mut HashSet<TraceId>,
) -> Result<bool, EngineError> {
    query.limit = MAX_SEARCH_LIMIT;
    query.cursor = None;
    loop {
        let page = engine.search(&query).await?;
        for trace in &page.traces {
            if seen.contains(&trace.trace_id) {
                continue;
            }
            if into.len() >= max {
                return Ok(true);
            }
            seen.insert(trace.trace_id);
            into.push(trace.trace_id);
        }
        match page.next_cursor {
            Some(cursor) if !page.traces.is_empty() => query.cursor = Some(cursor),
            _ => return Ok(false),
        }
    }
}

/// The traces of `ids`, in that order, fetched in chunks, stopping before the total of
/// spans passes `max_spans` (`true` then).
async fn fetch(
    engine: &Engine,
    ids: &[TraceId],
    max_spans: usize,
) -> Result<(Vec<(TraceId, Vec<Span>)>, bool), EngineError> {
    let mut traces = Vec::with_capacity(ids.len());
    let mut num_spans = 0;
    for chunk in ids.chunks(FETCH_CHUNK) {
        for (id, spans) in chunk.iter().zip(engine.traces(chunk).await?) {
            if num_spans + spans.len() > max_spans {
                return Ok((traces, true));
            }
            num_spans += spans.len();
            traces.push((*id, spans));
        }
    }
    Ok((traces, false))
}

/// The process `id` (its traces with a span starting in the range, all by default)
/// assembled as a timeline, and whether a limit left traces out. `None` when no trace
/// carries it.
pub async fn load_process(
    engine: &Engine,
    keys: &[String],
    id: &str,
    range: (Option<u64>, Option<u64>),
    limits: Limits,
) -> Result<Option<(Timeline, bool)>, EngineError> {
    let (ids, mut partial) = process_trace_ids(engine, keys, id, range, limits.max_traces).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let (traces, spans_partial) = fetch(engine, &ids, limits.max_spans).await?;
    partial |= spans_partial;
    let (id, keys) = (id.to_string(), keys.to_vec());
    // Sorting and stitching up to `max_spans` spans is CPU work: off the async runtime.
    let timeline = tokio::task::spawn_blocking(move || assemble(&id, &keys, traces))
        .await
        .expect("assembling a timeline does not panic");
    Ok(Some((timeline, partial)))
}

/// The IDs of the traces with a span whose attribute `key` matches `value` and starts in
/// the range, newest first, not in `seen`, added to `into` (and `seen`) until it holds `max`;
/// `true` when there were more. The indexed counterpart of [`matching_trace_ids`] for one
/// attribute filter.
async fn attribute_trace_ids(
    engine: &Engine,
    key: &str,
    value: &str,
    (start_opt, end_opt): (Option<u64>, Option<u64>),
    max: usize,
    into: &mut Vec<TraceId>,
    seen: &mut HashSet<TraceId>,
) -> Result<bool, EngineError> {
    // Traces already in `seen` take room in the answer: ask for enough to fill `into`
    // after skipping them, and for more if the engine had more than that.
    let mut ask = max.saturating_add(seen.len());
    loop {
        let found = engine.trace_ids_with_attribute(key, value, start_opt, end_opt, ask).await?;
        let unseen: Vec<TraceId> = found.trace_ids.into_iter().filter(|id| !seen.contains(id)).collect();
        let room = max.saturating_sub(into.len());
        if unseen.len() > room || !found.more || ask == usize::MAX {
            let more = unseen.len() > room || found.more;
            for id in unseen.into_iter().take(room) {
                seen.insert(id);
                into.push(id);
            }
            return Ok(more);
        }
        ask = ask.saturating_mul(2);
    }
}

/// The IDs of the traces with a span carrying process `id` under any of `keys`, newest
/// first per key, at most `max`.
pub async fn process_trace_ids(
    engine: &Engine,
    keys: &[String],
    id: &str,
    range: (Option<u64>, Option<u64>),
    max: usize,
) -> Result<(Vec<TraceId>, bool), EngineError> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut partial = false;
    for key in keys {
        partial |= attribute_trace_ids(engine, key, id, range, max, &mut ids, &mut seen).await?;
    }
    Ok((ids, partial))
}

/// One process found by [`search_processes`], over the traces read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSummary {
    pub id: String,
    pub first_unix_nanos: u64,
    pub last_unix_nanos: u64,
    pub num_traces: usize,
    /// Services of the spans that carry the ID.
    pub services: BTreeSet<String>,
}

/// The processes of the traces matching `query` (limit and cursor ignored), grouped by ID,
/// the most recently active first, at most `limit`; `true` when the traces read were
/// bounded by `limits.max_scanned_traces` (or their spans by `limits.max_spans`).
pub async fn search_processes(
    engine: &Engine,
    keys: &[String],
    query: SearchQuery,
    limit: usize,
    limits: Limits,
) -> Result<(Vec<ProcessSummary>, bool), EngineError> {
    let mut ids = Vec::new();
    let mut partial =
        matching_trace_ids(engine, query, limits.max_scanned_traces, &mut ids, &mut HashSet::new()).await?;
    let mut processes: HashMap<String, ProcessSummary> = HashMap::new();
    let mut num_spans = 0;
    'chunks: for chunk in ids.chunks(FETCH_CHUNK) {
        for spans in engine.traces(chunk).await? {
            num_spans += spans.len();
            if num_spans > limits.max_spans {
                partial = true;
                break 'chunks;
            }
            let mut in_trace: HashMap<String, ProcessSummary> = HashMap::new();
            for span in &spans {
                for id in process_ids(span, keys) {
                    let entry = in_trace.entry(id.clone()).or_insert_with(|| ProcessSummary {
                        id,
                        first_unix_nanos: u64::MAX,
                        ..Default::default()
                    });
                    entry.first_unix_nanos = entry.first_unix_nanos.min(span.start_unix_nanos);
                    entry.last_unix_nanos = entry.last_unix_nanos.max(span.end_unix_nanos);
                    entry.services.insert(span.service_name().to_string());
                }
            }
            for (id, found) in in_trace {
                let entry = processes.entry(id).or_insert_with(|| ProcessSummary {
                    id: found.id.clone(),
                    first_unix_nanos: u64::MAX,
                    ..Default::default()
                });
                entry.first_unix_nanos = entry.first_unix_nanos.min(found.first_unix_nanos);
                entry.last_unix_nanos = entry.last_unix_nanos.max(found.last_unix_nanos);
                entry.num_traces += 1;
                entry.services.extend(found.services);
            }
        }
    }
    let mut processes: Vec<ProcessSummary> = processes.into_values().collect();
    processes.sort_by(|a, b| b.last_unix_nanos.cmp(&a.last_unix_nanos).then(a.id.cmp(&b.id)));
    processes.truncate(limit);
    Ok((processes, partial))
}

/// The far end of a link: a span of another trace, described when it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceLink {
    /// The span of the trace asked about.
    pub here: Span,
    pub other_trace_id: TraceId,
    pub other_span_id: SpanId,
    /// The other span, when stored (and within the limits).
    pub other_opt: Option<Span>,
    pub via: Via,
    pub message_id_opt: Option<String>,
    /// When the pair is a producer → consumer hop: the consumer's start minus the
    /// producer's end.
    pub queue_wait_nanos_opt: Option<i64>,
}

/// What [`trace_links`] answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceLinks {
    /// Links of this trace's spans to other traces, and consumer spans of this trace paired
    /// by message ID with a producer elsewhere.
    pub outgoing: Vec<TraceLink>,
    /// Spans of other traces that link to this trace's spans, and consumers elsewhere paired
    /// by message ID with a producer here (backlinks).
    pub incoming: Vec<TraceLink>,
    /// Whether the candidates were bounded by the limits.
    pub partial: bool,
}

/// The links and backlinks of trace `trace_id`; `None` when no span of it is stored.
///
/// Outgoing links come from the trace's own spans. Backlinks need the traces that link
/// here, which no index records: the candidates are the traces sharing a
/// `messaging.message.id` with one of this trace's producer or consumer spans and the
/// traces of the processes this trace belongs to (under `keys`), plus the traces it links
/// to. A trace that links here and shares neither a message ID nor a process is not found.
pub async fn trace_links(
    engine: &Engine,
    keys: &[String],
    trace_id: TraceId,
    limits: Limits,
) -> Result<Option<TraceLinks>, EngineError> {
    let spans = engine.trace(trace_id).await?;
    if spans.is_empty() {
        return Ok(None);
    }
    let mut candidates: Vec<TraceId> = Vec::new();
    let mut seen: HashSet<TraceId> = HashSet::from([trace_id]);
    let mut partial = false;
    let max = limits.max_scanned_traces;
    for span in &spans {
        for link in &span.links {
            if candidates.len() >= max {
                partial = true;
            } else if seen.insert(link.trace_id) {
                candidates.push(link.trace_id);
            }
        }
    }
    let message_ids: BTreeSet<&str> = spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Producer | SpanKind::Consumer))
        .filter_map(|s| message_id(s))
        .collect();
    let all_time = (None, None);
    for id in message_ids {
        let key = super::hops::MESSAGE_ID_KEY;
        partial |= attribute_trace_ids(engine, key, id, all_time, max, &mut candidates, &mut seen).await?;
    }
    let process_ids: BTreeSet<String> = spans.iter().flat_map(|s| process_ids(s, keys)).collect();
    for id in process_ids {
        for key in keys {
            partial |= attribute_trace_ids(engine, key, &id, all_time, max, &mut candidates, &mut seen).await?;
        }
    }
    let (others, spans_partial) = fetch(engine, &candidates, limits.max_spans).await?;
    partial |= spans_partial;
    let links = tokio::task::spawn_blocking(move || {
        let mut links = pair_links(trace_id, &spans, others.iter().flat_map(|(_, s)| s));
        links.partial = partial;
        links
    })
    .await
    .expect("pairing links does not panic");
    Ok(Some(links))
}

/// Pure part of [`trace_links`]: the links between `here` (the spans of `trace_id`) and
/// `others` (spans of other traces).
pub fn pair_links<'a>(trace_id: TraceId, here: &'a [Span], others: impl Iterator<Item = &'a Span>) -> TraceLinks {
    let all: Vec<&Span> = here.iter().chain(others.filter(|s| s.trace_id != trace_id)).collect();
    let by_identity: HashMap<(TraceId, SpanId), &Span> = all.iter().map(|s| ((s.trace_id, s.span_id), *s)).collect();
    let hops = find_hops(&all);
    let wait_of: HashMap<(usize, usize), (Via, Option<String>, i64)> = hops
        .iter()
        .map(|h| ((h.producer, h.consumer), (h.via, h.message_id_opt.clone(), h.queue_wait_nanos)))
        .collect();
    let position: HashMap<(TraceId, SpanId), usize> =
        all.iter().enumerate().map(|(i, s)| ((s.trace_id, s.span_id), i)).collect();
    let is_here = |span: &Span| span.trace_id == trace_id;
    let mut result = TraceLinks::default();
    for (i, span) in all.iter().enumerate() {
        for link in &span.links {
            if link.trace_id == trace_id && is_here(span) {
                continue; // a link within the trace
            }
            let target = by_identity.get(&(link.trace_id, link.span_id)).copied();
            let hop = target.and_then(|t| wait_of.get(&(position[&(t.trace_id, t.span_id)], i)));
            let message_id_opt = hop.and_then(|h| h.1.clone()).or_else(|| message_id(span).map(str::to_string));
            if is_here(span) {
                result.outgoing.push(TraceLink {
                    here: (*span).clone(),
                    other_trace_id: link.trace_id,
                    other_span_id: link.span_id,
                    other_opt: target.cloned(),
                    via: Via::Link,
                    message_id_opt,
                    queue_wait_nanos_opt: hop.map(|h| h.2),
                });
            } else if link.trace_id == trace_id
                && let Some(target) = target
            {
                result.incoming.push(TraceLink {
                    here: target.clone(),
                    other_trace_id: span.trace_id,
                    other_span_id: span.span_id,
                    other_opt: Some((*span).clone()),
                    via: Via::Link,
                    message_id_opt,
                    queue_wait_nanos_opt: hop.map(|h| h.2),
                });
            }
        }
    }
    for hop in hops.iter().filter(|h| h.via == Via::MessageId) {
        let (producer, consumer) = (all[hop.producer], all[hop.consumer]);
        let (here, other, list) = match (is_here(producer), is_here(consumer)) {
            (false, true) => (consumer, producer, &mut result.outgoing),
            (true, false) => (producer, consumer, &mut result.incoming),
            _ => continue,
        };
        list.push(TraceLink {
            here: here.clone(),
            other_trace_id: other.trace_id,
            other_span_id: other.span_id,
            other_opt: Some(other.clone()),
            via: Via::MessageId,
            message_id_opt: hop.message_id_opt.clone(),
            queue_wait_nanos_opt: Some(hop.queue_wait_nanos),
        });
    }
    let order = |l: &TraceLink| (l.other_opt.as_ref().map_or(u64::MAX, |s| s.start_unix_nanos), l.other_span_id);
    result.outgoing.sort_by_key(order);
    result.incoming.sort_by_key(order);
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::processes::testing::*;

    async fn engine_with(spans: Vec<Span>) -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let options = sextant_storage::engine::EngineOptions::new(dir.path());
        let engine = Engine::open(options, Default::default()).await.unwrap();
        engine.append(spans).await.unwrap();
        (dir, engine)
    }

    /// Five traces of process `p` a second apart, each a root and a child; the child only
    /// carries the ID in trace 2, the root in the others. Trace 9 belongs to `q`.
    fn five_steps() -> Vec<Span> {
        let mut spans = Vec::new();
        for t in 1..=5u8 {
            let base = u64::from(t) * 1_000_000_000;
            let root = span(t, 1, "gateway", base, base + 100);
            let mut child = span(t, 2, "order", base + 10, base + 50);
            child.parent_span_id = Some(root.span_id);
            if t == 2 {
                spans.extend([root, with_process(child, "p")]);
            } else {
                spans.extend([with_process(root, "p"), child]);
            }
        }
        spans.push(with_process(span(9, 1, "cart", 500, 600), "q"));
        spans
    }

    #[tokio::test]
    async fn a_process_is_every_trace_carrying_its_id_and_limits_keep_the_newest() {
        let (_dir, engine) = engine_with(five_steps()).await;
        let keys = crate::processes::default_process_keys();
        let (timeline, partial) =
            load_process(&engine, &keys, "p", (None, None), Limits::default()).await.unwrap().unwrap();
        assert!(!partial);
        let steps: Vec<TraceId> = timeline.steps.iter().map(|s| s.summary.trace_id).collect();
        assert_eq!(steps, (1..=5).map(trace_id).collect::<Vec<_>>());
        assert_eq!(timeline.num_spans(), 10, "whole traces, the spans without the ID too");
        assert!(load_process(&engine, &keys, "nope", (None, None), Limits::default()).await.unwrap().is_none());

        // Bounded by traces: the newest three, said partial.
        let limits = Limits { max_traces: 3, ..Limits::default() };
        let (timeline, partial) = load_process(&engine, &keys, "p", (None, None), limits).await.unwrap().unwrap();
        assert!(partial);
        let steps: Vec<TraceId> = timeline.steps.iter().map(|s| s.summary.trace_id).collect();
        assert_eq!(steps, vec![trace_id(3), trace_id(4), trace_id(5)]);
        // Bounded by spans: two traces fit in five spans.
        let limits = Limits { max_spans: 5, ..Limits::default() };
        let (timeline, partial) = load_process(&engine, &keys, "p", (None, None), limits).await.unwrap().unwrap();
        assert!(partial);
        assert_eq!(timeline.steps.len(), 2);
        // A time range keeps the traces with a span starting in it.
        let range = (Some(2_000_000_000), Some(3_000_000_000));
        let (timeline, _) = load_process(&engine, &keys, "p", range, Limits::default()).await.unwrap().unwrap();
        assert_eq!(timeline.steps.len(), 2);
    }

    /// Traces carrying the ID under two keys count once, in the head and in indexed blocks
    /// alike, and the bound applies to them all.
    #[tokio::test]
    async fn a_trace_found_under_two_keys_counts_once_and_the_bound_spans_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec![crate::processes::DEFAULT_PROCESS_KEY.to_string(), "order.id".to_string()];
        let mut options = sextant_storage::engine::EngineOptions::new(dir.path());
        options.indexed_attribute_keys = crate::processes::indexed_attribute_keys(&keys);
        let engine = Engine::open(options, Default::default()).await.unwrap();
        let mut spans = five_steps();
        for t in [4u8, 5, 6] {
            let base = u64::from(t) * 1_000_000_000;
            let mut s = span(t, 7, "shipping", base + 60, base + 70);
            s.attributes.push(sextant_model::KeyValue::string("order.id", "p"));
            spans.push(s);
        }
        engine.append(spans).await.unwrap();
        for _ in 0..2 {
            let (ids, partial) = process_trace_ids(&engine, &keys, "p", (None, None), 10).await.unwrap();
            assert!(!partial);
            assert_eq!(ids, [5, 4, 3, 2, 1, 6].map(trace_id));
            let (ids, partial) = process_trace_ids(&engine, &keys, "p", (None, None), 5).await.unwrap();
            assert!(partial, "trace 6 is left out");
            assert_eq!(ids, [5, 4, 3, 2, 1].map(trace_id));
            let (ids, partial) = process_trace_ids(&engine, &keys, "p", (None, None), 6).await.unwrap();
            assert!(!partial, "exactly six");
            assert_eq!(ids.len(), 6);
            // Again from a block with an attribute index.
            engine.flush().await.unwrap();
        }
    }

    #[tokio::test]
    async fn process_search_groups_the_matching_traces_by_id() {
        let (_dir, engine) = engine_with(five_steps()).await;
        let keys = crate::processes::default_process_keys();
        let (found, partial) =
            search_processes(&engine, &keys, SearchQuery::default(), 10, Limits::default()).await.unwrap();
        assert!(!partial);
        let ids: Vec<(&str, usize)> = found.iter().map(|p| (p.id.as_str(), p.num_traces)).collect();
        assert_eq!(ids, vec![("p", 5), ("q", 1)], "most recently active first");
        assert_eq!(found[0].first_unix_nanos, 1_000_000_000);
        assert_eq!(found[0].last_unix_nanos, 5_000_000_100);
        assert_eq!(found[0].services.iter().collect::<Vec<_>>(), vec!["gateway", "order"]);
        // Filtered by service: only the traces with a span of `cart`.
        let query = SearchQuery { service: Some("cart".into()), ..Default::default() };
        let (found, _) = search_processes(&engine, &keys, query, 10, Limits::default()).await.unwrap();
        assert_eq!(found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec!["q"]);
        // Bounded by the traces read.
        let limits = Limits { max_scanned_traces: 2, ..Limits::default() };
        let (found, partial) = search_processes(&engine, &keys, SearchQuery::default(), 10, limits).await.unwrap();
        assert!(partial);
        assert_eq!(found.iter().map(|p| p.num_traces).sum::<usize>(), 2);
    }

    #[test]
    fn links_and_backlinks_of_a_producer_and_a_consumer_trace() {
        let send = producer(span(1, 1, "order", 100, 150), "m1");
        let by_link = consumer(span(2, 2, "inventory", 170, 200), "m1", Some(&send));
        let by_message = consumer(span(3, 3, "order", 210, 260), "m1", None);
        let here = vec![send.clone()];
        let links = pair_links(trace_id(1), &here, [&by_link, &by_message].into_iter());
        assert!(links.outgoing.is_empty());
        let incoming: Vec<(TraceId, Via, Option<i64>)> =
            links.incoming.iter().map(|l| (l.other_trace_id, l.via, l.queue_wait_nanos_opt)).collect();
        assert_eq!(incoming, vec![(trace_id(2), Via::Link, Some(20)), (trace_id(3), Via::MessageId, Some(60))]);
        assert_eq!(links.incoming[0].here.span_id, send.span_id);

        // Seen from the consumer: one outgoing link, to the producer.
        let here = vec![by_link.clone()];
        let links = pair_links(trace_id(2), &here, [&send, &by_message].into_iter());
        assert_eq!(links.outgoing.len(), 1);
        assert_eq!(links.outgoing[0].other_span_id, send.span_id);
        assert_eq!(links.outgoing[0].queue_wait_nanos_opt, Some(20));
        assert_eq!(links.outgoing[0].message_id_opt.as_deref(), Some("m1"));
        assert!(links.incoming.is_empty());
    }

    #[test]
    fn a_link_to_a_trace_not_stored_is_listed_without_its_span() {
        let target = span(9, 9, "gone", 0, 1);
        let mut batch = span(1, 1, "batch", 10, 20);
        batch.links = consumer(span(1, 1, "x", 0, 0), "m", Some(&target)).links;
        let here = vec![batch];
        let links = pair_links(trace_id(1), &here, std::iter::empty());
        assert_eq!(links.outgoing.len(), 1);
        assert!(links.outgoing[0].other_opt.is_none());
        assert_eq!(links.outgoing[0].queue_wait_nanos_opt, None);
    }
}
