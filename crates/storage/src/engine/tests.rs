//! Engine tests on a temporary directory, without the server.

use super::*;
use crate::block::BlockStore;
use sextant_model::SpanId;

fn spans(trace: u8, count: u8) -> Vec<Span> {
    let now = now_unix_nanos();
    (1..=count).map(|i| Span::new(TraceId([trace; 16]), SpanId([i; 8]), "op", now - 1000, now)).collect()
}

async fn open(dir: &std::path::Path, adjust: impl FnOnce(&mut EngineOptions)) -> Arc<Engine> {
    let mut options = EngineOptions::new(dir);
    options.wal.fsync = false;
    adjust(&mut options);
    Engine::open(options, EngineMetrics::default()).await.unwrap()
}

#[tokio::test]
async fn a_full_head_refuses_appends_until_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |o| {
        o.head_max_bytes = 1;
        o.head_room_wait = Duration::from_millis(50);
    })
    .await;
    engine.append(spans(1, 3)).await.unwrap();
    assert_eq!(engine.metrics.head_room_wait_seconds.get(), 0.0, "the first append had room");
    let refused = engine.append(spans(2, 1)).await;
    assert!(matches!(refused, Err(EngineError::Overloaded { .. })), "{refused:?}");
    assert!(engine.metrics.head_room_wait_seconds.get() >= 0.05, "the refused append waited head_room_wait");
    engine.flush().await.unwrap();
    engine.append(spans(2, 1)).await.unwrap();
    assert_eq!(engine.trace(TraceId([1; 16])).await.unwrap().len(), 3);
}

#[tokio::test]
async fn an_append_to_a_full_head_waits_for_the_flush_and_a_filled_head_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |o| {
        o.head_max_bytes = 1;
        o.head_room_wait = Duration::from_secs(600);
    })
    .await;
    engine.append(spans(1, 3)).await.unwrap();
    // The append filled the head: a flush is asked for at once.
    tokio::time::timeout(Duration::from_secs(10), engine.flush_requested()).await.expect("a flush is requested");

    let waiting = tokio::spawn({
        let engine = engine.clone();
        async move { engine.append(spans(2, 1)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "the append waits while the head is full");
    assert_eq!(engine.trace(TraceId([2; 16])).await.unwrap().len(), 0);
    engine.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the flush lets it in").unwrap().unwrap();
    assert_eq!(engine.trace(TraceId([2; 16])).await.unwrap().len(), 1);
    let waited = engine.metrics.head_room_wait_seconds.get();
    assert!((0.1..600.0).contains(&waited), "the append waited for the flush: {waited} s");
}

#[tokio::test]
async fn retention_removes_expired_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |o| o.retention = Duration::from_secs(3600)).await;
    engine.append(spans(1, 2)).await.unwrap();
    engine.flush().await.unwrap();
    assert_eq!(engine.apply_retention(now_unix_nanos()).await.unwrap(), 0, "young block kept");
    let two_hours_later = now_unix_nanos() + 2 * 3600 * 1_000_000_000;
    assert_eq!(engine.apply_retention(two_hours_later).await.unwrap(), 1);
    assert!(engine.manifest_snapshot().blocks.is_empty());
    assert!(engine.trace(TraceId([1; 16])).await.unwrap().is_empty());
}

#[tokio::test]
async fn retention_by_size_removes_the_oldest_blocks_first() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |o| o.max_total_bytes = Some(1)).await;
    engine.append(spans(1, 2)).await.unwrap();
    engine.flush().await.unwrap();
    assert_eq!(engine.apply_retention(now_unix_nanos()).await.unwrap(), 1);
    assert!(engine.manifest_snapshot().blocks.is_empty());
}

#[tokio::test]
async fn reopening_replays_only_what_no_block_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), |_| {}).await;
        engine.append(spans(1, 2)).await.unwrap();
        engine.flush().await.unwrap();
        engine.append(spans(2, 3)).await.unwrap();
    }
    let metrics = EngineMetrics::default();
    let mut options = EngineOptions::new(dir.path());
    options.wal.fsync = false;
    let engine = Engine::open(options, metrics.clone()).await.unwrap();
    assert_eq!(metrics.replayed_spans.get(), 3, "the flushed trace is not replayed");
    assert_eq!(engine.trace(TraceId([1; 16])).await.unwrap().len(), 2);
    assert_eq!(engine.trace(TraceId([2; 16])).await.unwrap().len(), 3);
    assert_eq!(engine.services(), vec![sextant_model::UNKNOWN_SERVICE.to_string()]);
}

/// Footers are loaded when a block is written and, after a restart, in the background, so a
/// query does not pay for opening the blocks.
#[tokio::test]
async fn block_footers_are_loaded_before_queries_need_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), |_| {}).await;
        engine.append(spans(1, 3)).await.unwrap();
        engine.flush().await.unwrap();
        let meta = engine.manifest_snapshot().blocks[0].clone();
        assert!(engine.blocks.footer_cached(&meta), "after the flush");
    }
    let engine = open(dir.path(), |_| {}).await;
    let meta = engine.manifest_snapshot().blocks[0].clone();
    for _ in 0..100 {
        if engine.blocks.footer_cached(&meta) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the footer was not loaded after the restart");
}

/// Replay decodes records in parallel; the head must still receive them in log order.
#[tokio::test]
async fn replay_applies_records_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let trace = TraceId([3; 16]);
    let records = 3 * replay::MAX_IN_FLIGHT + 5;
    let appended: Vec<Span> = (0..records)
        .map(|i| {
            let mut span = spans(3, 1).remove(0);
            span.span_id = SpanId((i as u64 + 1).to_be_bytes());
            span
        })
        .collect();
    {
        let engine = open(dir.path(), |_| {}).await;
        for span in &appended {
            engine.append(vec![span.clone()]).await.unwrap();
        }
    }
    let engine = open(dir.path(), |_| {}).await;
    let head = engine.head.read();
    assert_eq!(head.active().trace(&trace).unwrap(), &appended[..], "same spans, same order");
}

/// An OTLP request body that validation left unchanged, with a field the model does not keep,
/// so that re-encoding its spans would give other bytes.
fn request_body(trace: u8) -> (Vec<Span>, Bytes) {
    use prost::Message;
    use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let mut request = ExportTraceServiceRequest { resource_spans: sextant_codec::to_resource_spans(&spans(trace, 3)) };
    request.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
    let body = Bytes::from(request.encode_to_vec());
    let limits = sextant_codec::Limits::default();
    let decoded = sextant_codec::decode_otlp_protobuf(&body, &limits, now_unix_nanos()).unwrap();
    assert!(decoded.unchanged);
    assert_ne!(sextant_codec::encode_spans(&decoded.spans), body.as_ref());
    (decoded.spans, body)
}

fn head_spans(engine: &Engine) -> Vec<Span> {
    let mut spans: Vec<Span> = engine.head.read().parts().flat_map(|part| part.spans()).cloned().collect();
    spans.sort_by_key(|span| (span.trace_id, span.span_id));
    spans
}

#[tokio::test]
async fn append_encoded_writes_the_payload_as_the_record_and_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let (received, body) = request_body(7);
    let encoded = spans(8, 2);
    {
        let engine = open(dir.path(), |_| {}).await;
        engine.append_encoded(received.clone(), body.clone()).await.unwrap();
        engine.append(encoded.clone()).await.unwrap();
        assert_eq!(head_spans(&engine)[..3], received[..]);
    }
    let mut wal = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("wal")).unwrap() {
        wal.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(wal.windows(body.len()).any(|window| window == body.as_ref()), "the body is the record, byte for byte");

    let metrics = EngineMetrics::default();
    let mut options = EngineOptions::new(dir.path());
    options.wal.fsync = false;
    let engine = Engine::open(options, metrics.clone()).await.unwrap();
    assert_eq!(metrics.replayed_spans.get(), 5);
    assert_eq!(metrics.undecodable_records.get(), 0);
    let replayed = head_spans(&engine);
    assert_eq!(replayed[..3], received[..], "replay gives back exactly the appended spans");
    assert_eq!(replayed[3..], encoded[..]);
}

#[cfg(debug_assertions)]
#[tokio::test]
#[should_panic(expected = "does not decode to its spans")]
async fn append_encoded_checks_its_contract_in_debug_builds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    let (_, body) = request_body(7);
    engine.append_encoded(spans(9, 1), body).await.unwrap();
}

#[tokio::test]
async fn blocks_left_by_an_interrupted_flush_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::local(&dir.path().join("store")).unwrap();
    let orphan = store.write_block(spans(9, 2), 0).await.unwrap();
    assert_eq!(store.list_block_ids().await.unwrap(), vec![orphan.id.clone()]);
    let engine = open(dir.path(), |_| {}).await;
    assert!(engine.blocks.list_block_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn shutdown_removes_the_outputs_of_an_abandoned_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    engine.append(spans(1, 3)).await.unwrap();
    engine.flush().await.unwrap();
    // What a compaction stopped before its manifest commit leaves: a block no manifest lists.
    let abandoned = engine.blocks.write_block(spans(2, 2), 0).await.unwrap();
    engine.append(spans(3, 1)).await.unwrap();
    engine.shutdown().await.unwrap();
    let listed: Vec<String> = engine.manifest_snapshot().blocks.iter().map(|b| b.id.clone()).collect();
    assert_eq!(listed.len(), 2, "the flushed blocks stay");
    let mut on_disk = engine.blocks.list_block_ids().await.unwrap();
    on_disk.sort();
    let mut want = listed.clone();
    want.sort();
    assert_eq!(on_disk, want);
    assert!(!on_disk.contains(&abandoned.id));
}

fn span_of(service: &str, trace: u8, id: u8, parent: Option<u8>, start: u64) -> Span {
    let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), "op", start, start + 10);
    span.parent_span_id = parent.map(|p| SpanId([p; 8]));
    span.resource = Arc::new(sextant_model::Resource {
        attributes: vec![sextant_model::KeyValue::string("service.name", service)],
        ..Default::default()
    });
    span
}

/// Regression: search used a trace's start as seen in the blocks it scanned, so a trace whose
/// root sat in a block without the queried service was ranked too new and the next page's
/// cursor skipped newer traces.
#[tokio::test]
async fn search_pages_by_true_trace_start_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    let base = now_unix_nanos() - 1_000_000_000;
    // Trace X: root in service A at base+100 (block 1), child in service B at base+300 (block 2).
    engine.append(vec![span_of("a", 1, 1, None, base + 100)]).await.unwrap();
    engine.flush().await.unwrap();
    engine.append(vec![span_of("b", 1, 2, Some(1), base + 300)]).await.unwrap();
    // Trace Y: all service B, starting at base+200.
    engine.append(vec![span_of("b", 2, 1, None, base + 200)]).await.unwrap();
    engine.flush().await.unwrap();

    let mut query = crate::search::SearchQuery { service: Some("b".into()), limit: 1, ..Default::default() };
    let page1 = engine.search(&query).await.unwrap();
    assert_eq!(page1.traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![TraceId([2; 16])]);
    query.cursor = page1.next_cursor;
    let page2 = engine.search(&query).await.unwrap();
    assert_eq!(page2.traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![TraceId([1; 16])]);
    assert_eq!(page2.traces[0].start_unix_nanos, base + 100);
    assert!(page2.next_cursor.is_none());
}

/// A block read keeps only the traces with a matching span; the spans of a page trace in
/// rows it left out (here its root, in an older block, without the attribute) are read when
/// the page is settled, so the trace's start and summary cover every span.
#[tokio::test]
async fn a_page_trace_counts_its_spans_in_rows_a_block_read_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    let base = now_unix_nanos() - 1_000_000_000;
    let with_value = |mut span: Span, value: &str| {
        span.attributes = vec![sextant_model::KeyValue::string("k", value)];
        span
    };
    // Trace 1: root at base+100 (block 1, k=a), child at base+300 (block 2, k=b).
    // Trace 2: one span at base+200 in block 1 (k=a), so block 1 has rows to leave out around it.
    engine.append(vec![with_value(span_of("s", 2, 1, None, base + 200), "a")]).await.unwrap();
    engine.append(vec![with_value(span_of("s", 1, 1, None, base + 100), "a")]).await.unwrap();
    engine.flush().await.unwrap();
    engine.append(vec![with_value(span_of("s", 1, 2, Some(1), base + 300), "b")]).await.unwrap();
    engine.flush().await.unwrap();
    assert_eq!(engine.manifest_snapshot().blocks.len(), 2);

    let filter = crate::search::AttributeFilter { key: "k".into(), value: "b".into() };
    let query = crate::search::SearchQuery { attributes: vec![filter], limit: 20, ..Default::default() };
    let page = engine.search(&query).await.unwrap();
    assert_eq!(page.traces.len(), 1, "{page:?}");
    let trace = &page.traces[0];
    assert_eq!(trace.trace_id, TraceId([1; 16]));
    assert_eq!((trace.start_unix_nanos, trace.duration_nanos), (base + 100, 210));
    assert_eq!((trace.span_count, trace.root_name.as_str()), (2, "op"));
}

/// Regression: with the WAL directory lost but the store kept, new records got sequence
/// numbers below the manifest's checkpoint and were skipped by the next replay.
#[tokio::test]
async fn records_survive_a_lost_wal_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), |_| {}).await;
        for trace in 1..=3 {
            engine.append(spans(trace, 2)).await.unwrap();
        }
        engine.flush().await.unwrap();
        assert!(engine.manifest_snapshot().wal_checkpoint_seq > 0);
    }
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();
    {
        let engine = open(dir.path(), |_| {}).await;
        engine.append(spans(9, 4)).await.unwrap();
    }
    let engine = open(dir.path(), |_| {}).await;
    assert_eq!(engine.trace(TraceId([9; 16])).await.unwrap().len(), 4, "acknowledged after the loss, then replayed");
    assert_eq!(engine.trace(TraceId([1; 16])).await.unwrap().len(), 2, "still in its block");
}

/// Regression: a second process opening the same data directory deleted the first one's
/// not-yet-committed block before failing on the WAL lock.
#[tokio::test]
async fn a_second_open_of_the_same_directory_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path(), |_| {}).await;
    let in_flight = first.blocks.write_block(spans(5, 2), 0).await.unwrap();
    let mut options = EngineOptions::new(dir.path());
    options.wal.fsync = false;
    let second = Engine::open(options, EngineMetrics::default()).await;
    assert!(matches!(second, Err(EngineError::Wal(WalError::Locked { .. }))), "{:?}", second.err());
    assert_eq!(first.blocks.list_block_ids().await.unwrap(), vec![in_flight.id]);
}

#[tokio::test]
async fn compaction_output_is_dropped_when_retention_removed_an_input_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    for trace in 1..=2 {
        engine.append(spans(trace, 2)).await.unwrap();
        engine.flush().await.unwrap();
    }
    let manifest = engine.manifest_snapshot();
    let job: Vec<String> = manifest.blocks.iter().map(|b| b.id.clone()).collect();
    let inputs = manifest.blocks.clone();
    // Retention removes the first input before the compaction commits.
    engine.blocks.update_manifest(1, |current| Some(current.apply(&job[..1], Vec::new()))).await.unwrap();
    assert!(!engine.compact_one(&job, &inputs).await.unwrap());
    let live = engine.manifest_snapshot();
    assert_eq!(live.blocks.len(), 1);
    assert_eq!(live.blocks[0].id, job[1], "the untouched input stays live");
}

mod search_model {
    //! Search over blocks and the head, page by page, against a reference computed from every
    //! span directly.

    use super::*;
    use crate::search::{AttributeFilter, DurationScope, SearchQuery, TraceSummary, merge_trace_spans};
    use proptest::prelude::*;
    use sextant_model::{KeyValue, Resource, StatusCode};
    use std::collections::HashMap;

    /// (trace, span, service, name, start offset, duration, error, attribute value, phase)
    type SpanSpec = (u8, u8, u8, u8, u16, u16, bool, u8, u8);

    fn build(spec: &SpanSpec, base: u64) -> Span {
        let &(trace, id, service, name, start, duration, error, value, _) = spec;
        let start = base + start as u64 * 1_000;
        let mut span = Span::new(
            TraceId([trace + 1; 16]),
            SpanId([id + 1; 8]),
            format!("op{name}"),
            start,
            start + duration as u64 * 1_000,
        );
        // Span 0 of a trace is its root; others hang under it.
        span.parent_span_id = (id != 0).then_some(SpanId([1; 8]));
        span.resource = Arc::new(Resource {
            attributes: vec![KeyValue::string("service.name", format!("svc{service}"))],
            ..Default::default()
        });
        span.status_code = if error { StatusCode::Error } else { StatusCode::Unset };
        span.attributes = vec![KeyValue::string("k", format!("v{value}"))];
        span
    }

    fn query_strategy() -> impl Strategy<Value = SearchQuery> {
        (
            proptest::option::of(0..3u8),
            proptest::option::of(0..3u8),
            proptest::option::of(0..3u8),
            proptest::option::of((0..40u64, 0..60u64)),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of((0..100u64, 0..100u64)),
            1..5usize,
        )
            .prop_map(|(service, name, value, duration, span_scope, errors_only, range, limit)| SearchQuery {
                service: service.map(|s| format!("svc{s}")),
                operation: name.map(|n| format!("op{n}")),
                attributes: value
                    .map(|v| AttributeFilter { key: "k".into(), value: format!("v{v}") })
                    .into_iter()
                    .collect(),
                min_duration_nanos: duration.map(|(min, _)| min * 1_000),
                max_duration_nanos: duration.map(|(min, extra)| (min + extra) * 1_000),
                duration_scope: if span_scope { DurationScope::Span } else { DurationScope::Trace },
                errors_only,
                // Offsets become absolute times in the test.
                start_unix_nanos: range.map(|(from, _)| from),
                end_unix_nanos: range.map(|(from, len)| from + len),
                limit,
                cursor: None,
            })
    }

    fn reference(spans: &[Span], query: &SearchQuery) -> Vec<TraceSummary> {
        let mut by_trace: HashMap<TraceId, Vec<Span>> = HashMap::new();
        for span in spans {
            by_trace.entry(span.trace_id).or_default().push(span.clone());
        }
        let mut found: Vec<TraceSummary> = by_trace
            .into_iter()
            .filter_map(|(id, spans)| {
                let spans = merge_trace_spans(spans);
                let summary = TraceSummary::of(id, &spans)?;
                let end = summary.start_unix_nanos + summary.duration_nanos;
                (spans.iter().any(|s| query.span_matches(s)) && query.trace_matches(summary.start_unix_nanos, end, &id))
                    .then_some(summary)
            })
            .collect();
        found.sort_by(|a, b| b.start_unix_nanos.cmp(&a.start_unix_nanos).then(a.trace_id.cmp(&b.trace_id)));
        found
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        #[test]
        fn pages_match_a_scan_of_every_span(
            specs in proptest::collection::vec(
                (0..12u8, 0..5u8, 0..3u8, 0..3u8, 0..60u16, 0..50u16, proptest::bool::weighted(0.2), 0..3u8, 0..4u8),
                1..60,
            ),
            mut query in query_strategy(),
            compact in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let engine = open(dir.path(), |o| o.block_max_spans = 6).await;
                let base = now_unix_nanos() - 3_600_000_000_000;
                if let (Some(from), Some(to)) = (query.start_unix_nanos, query.end_unix_nanos) {
                    query.start_unix_nanos = Some(base + from * 1_000);
                    query.end_unix_nanos = Some(base + to * 1_000);
                }
                // Phases 0-2 end with a flush (phase 3 stays in the head). A span that comes
                // twice (same trace and span ID) is a client's retry: same content, maybe
                // another phase.
                let mut first: HashMap<(u8, u8), SpanSpec> = HashMap::new();
                let specs: Vec<SpanSpec> = specs
                    .iter()
                    .map(|s| (*first.entry((s.0, s.1)).or_insert(*s), s.8))
                    .map(|(mut content, phase)| {
                        content.8 = phase;
                        content
                    })
                    .collect();
                let mut all = Vec::new();
                for phase in 0..4u8 {
                    let batch: Vec<Span> = specs.iter().filter(|s| s.8 == phase).map(|s| build(s, base)).collect();
                    all.extend(batch.iter().cloned());
                    engine.append(batch).await.unwrap();
                    if phase < 3 {
                        engine.flush().await.unwrap();
                    }
                }
                // Compaction merges the flushed parts of traces (whose earliest spans may have
                // had different services, so different clusters) and drops repeated spans.
                if compact {
                    engine.compact().await.unwrap();
                }
                let want = reference(&all, &query);
                let mut got = Vec::new();
                let limit = query.limit;
                loop {
                    let page = engine.search(&query).await.unwrap();
                    prop_assert!(page.traces.len() <= limit);
                    if page.next_cursor.is_some() {
                        prop_assert_eq!(page.traces.len(), limit, "a page before the last is full");
                    }
                    got.extend(page.traces);
                    match page.next_cursor {
                        Some(cursor) => query.cursor = Some(cursor),
                        None => break,
                    }
                }
                prop_assert_eq!(got, want);
                Ok(())
            })?;
        }
    }
}

/// Attribute keys and values for autocompletion: by scope, typed, distinct, sorted, bounded,
/// from the head and the newest blocks in the range.
#[tokio::test]
async fn tag_names_and_values_come_from_head_and_newest_blocks() {
    use sextant_model::{AnyValue, Event, KeyValue};
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    let base = now_unix_nanos() - 10_000_000_000;
    let with = |trace: u8, start: u64, attributes: Vec<KeyValue>| {
        let mut span = span_of("cart", trace, 1, None, start);
        span.attributes = attributes;
        span.events = vec![Event {
            name: "retry".into(),
            attributes: vec![KeyValue::string("attempt.reason", "timeout")],
            ..Default::default()
        }];
        span
    };
    // An old block, a newer block, then the head.
    engine.append(vec![with(1, base, vec![KeyValue::string("http.method", "DELETE")])]).await.unwrap();
    engine.flush().await.unwrap();
    engine
        .append(vec![with(
            2,
            base + 1_000,
            vec![KeyValue::string("http.method", "GET"), KeyValue::new("http.status_code", AnyValue::Int(200))],
        )])
        .await
        .unwrap();
    engine.flush().await.unwrap();
    engine
        .append(vec![with(
            3,
            base + 2_000,
            vec![
                KeyValue::string("http.method", "POST"),
                KeyValue::new("http.status_code", AnyValue::Int(1000)),
                KeyValue::new("http.status_code", AnyValue::Int(200)),
                KeyValue::new("tags", AnyValue::Array(vec![AnyValue::Int(1)])),
            ],
        )])
        .await
        .unwrap();

    let all = TagQuery::default();
    let names = engine.tag_names(&all).await.unwrap();
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names[&TagScope::Span], set(&["http.method", "http.status_code", "tags"]));
    assert_eq!(names[&TagScope::Resource], set(&["service.name"]));
    assert_eq!(names[&TagScope::Event], set(&["attempt.reason"]));
    assert!(!names.contains_key(&TagScope::Link));

    let values = engine.tag_values(Some(TagScope::Span), "http.method", &all).await.unwrap();
    let strings = |v: &[&str]| v.iter().map(|s| AnyValue::String((*s).into())).collect::<Vec<_>>();
    assert_eq!(values, TagValues { values: strings(&["DELETE", "GET", "POST"]), truncated: false });
    // Integers by value, not by text; lists left out.
    let codes = engine.tag_values(None, "http.status_code", &all).await.unwrap();
    assert_eq!(codes.values, vec![AnyValue::Int(200), AnyValue::Int(1000)]);
    assert!(engine.tag_values(None, "tags", &all).await.unwrap().values.is_empty());
    // Unscoped reads span then resource; a scope reads only itself.
    assert_eq!(engine.tag_values(None, "service.name", &all).await.unwrap().values, strings(&["cart"]));
    assert!(engine.tag_values(Some(TagScope::Span), "service.name", &all).await.unwrap().values.is_empty());

    // Bounded: values, blocks (newest first), and the time range.
    let two = TagQuery { max_values: 2, ..all };
    assert_eq!(
        engine.tag_values(Some(TagScope::Span), "http.method", &two).await.unwrap(),
        TagValues { values: strings(&["GET", "POST"]), truncated: true },
        "the head first, then the newest block"
    );
    let one_block = TagQuery { max_blocks: 1, ..all };
    assert_eq!(engine.tag_values(None, "http.method", &one_block).await.unwrap().values, strings(&["GET", "POST"]));
    let early = TagQuery { start_unix_nanos: base, end_unix_nanos: base + 500, ..all };
    assert_eq!(engine.tag_values(None, "http.method", &early).await.unwrap().values, strings(&["DELETE"]));
}

/// Many traces at once give what one lookup each gives: across the head and blocks, a trace
/// split between them, a repeat and an unknown trace.
#[tokio::test]
async fn traces_at_once_equal_one_lookup_each() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), |_| {}).await;
    let base = now_unix_nanos() - 10_000_000_000;
    for trace in 1..=6u8 {
        engine.append(vec![span_of("a", trace, 1, None, base + trace as u64)]).await.unwrap();
    }
    engine.flush().await.unwrap();
    for trace in 4..=9u8 {
        engine.append(vec![span_of("b", trace, 2, Some(1), base + 100 + trace as u64)]).await.unwrap();
    }
    engine.flush().await.unwrap();
    engine.append(vec![span_of("c", 5, 3, Some(2), base + 200)]).await.unwrap();
    let ids: Vec<TraceId> = [5u8, 1, 9, 42, 5, 7].iter().map(|t| TraceId([*t; 16])).collect();
    let together = engine.traces(&ids).await.unwrap();
    assert_eq!(together.len(), ids.len());
    for (id, spans) in ids.iter().zip(&together) {
        assert_eq!(spans, &engine.trace(*id).await.unwrap(), "trace {id}");
    }
    assert_eq!(together[0].len(), 3, "trace 5: a block each and the head");
    assert!(together[3].is_empty(), "unknown trace");
    assert_eq!(together[4], together[0], "a repeat gets the same answer");
}
