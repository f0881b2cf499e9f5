//! Trace lookups and time-range reads return exactly their spans and fetch little.

use super::*;
use crate::search::SearchQuery;

#[tokio::test]
async fn read_trace_returns_one_trace_across_row_group_boundaries() {
    let store = memory_store(small_row_groups());
    let spans = simple_spans(300, 7); // 2100 rows in 42 row groups of 50: about 1 trace in 8 straddles two
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    let opened = store.open(&meta).await.unwrap();
    assert!(opened.metadata().num_row_groups() >= 40);
    let by_trace: BTreeMap<TraceId, Vec<Span>> = in_block_order(spans).into_iter().fold(BTreeMap::new(), |mut m, s| {
        m.entry(s.trace_id).or_insert_with(Vec::new).push(s);
        m
    });
    let mut straddling = 0;
    for (trace_id, want) in &by_trace {
        let got = store.read_trace(&meta, *trace_id).await.unwrap();
        assert_eq!(&got, want, "trace {trace_id}");
        let runs: Vec<_> = store.index(&meta).await.unwrap().lookup(trace_id).collect();
        assert_eq!(runs.len(), 1, "a flushed block holds a trace in one run");
        let rows = &runs[0];
        if rows.start / 50 != (rows.end - 1) / 50 {
            straddling += 1;
        }
    }
    assert!(straddling > 20, "the test must cover traces split across row groups ({straddling})");
    assert!(store.read_trace(&meta, TraceId([9; 16])).await.unwrap().is_empty(), "absent trace");
}

#[tokio::test]
async fn read_traces_returns_the_spans_of_many_traces_in_one_read() {
    let store = memory_store(small_row_groups());
    let spans = simple_spans(300, 7);
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    let all: Vec<TraceId> = store.index(&meta).await.unwrap().runs().map(|(id, _)| *id).collect();
    // Every third trace (ranges in many row groups, some straddling two), a repeat and an
    // absent trace; given out of order.
    let mut ids: Vec<TraceId> = all.iter().step_by(3).copied().collect();
    ids.reverse();
    ids.push(ids[0]);
    ids.push(TraceId([9; 16]));
    let got = store.read_traces(&meta, &ids).await.unwrap();
    let wanted: std::collections::BTreeSet<TraceId> = all.iter().step_by(3).copied().collect();
    let want: Vec<Span> = in_block_order(spans).into_iter().filter(|s| wanted.contains(&s.trace_id)).collect();
    assert_eq!(got, want, "exactly their spans, in block order");
    assert!(store.read_traces(&meta, &[TraceId([9; 16])]).await.unwrap().is_empty());
    assert!(store.read_traces(&meta, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_trace_lookup_fetches_a_small_part_of_the_block() {
    let store = memory_store(BlockStoreOptions { row_group_rows: 2_000, page_rows: 100, ..Default::default() });
    let meta = store.write_block(simple_spans(1_000, 8), 0).await.unwrap();
    let opened = store.open(&meta).await.unwrap();
    let index = store.index(&meta).await.unwrap();
    let trace_id = index.trace_ids()[500];
    let runs: Vec<_> = index.lookup(&trace_id).collect();
    let plan = ReadPlan::rows_in(opened.metadata(), &runs);
    let fetched: u64 = plan.byte_ranges(opened.metadata()).iter().map(|r| r.end - r.start).sum();
    assert!(fetched * 10 < opened.file_size, "fetched {fetched} of {} bytes", opened.file_size);
    // read_trace decodes from exactly those ranges; a read outside them would fail.
    assert_eq!(store.read_trace(&meta, trace_id).await.unwrap().len(), 8);
}

#[tokio::test]
async fn read_spans_in_range_returns_exactly_the_spans_starting_in_it() {
    let store = memory_store(small_row_groups());
    let mut spans = simple_spans(100, 5);
    // Make row groups time-ordered blocks of the range: trace t starts at t ms.
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    spans = in_block_order(spans);
    for (start, end) in
        [(0, u64::MAX), (10_000_000, 20_000_000), (10_001_000, 10_001_000), (5, 6), (99_000_000, 99_004_000)]
    {
        let want: Vec<Span> = spans.iter().filter(|s| (start..=end).contains(&s.start_unix_nanos)).cloned().collect();
        let got = store.read_spans_in_range(&meta, start, end).await.unwrap();
        assert_eq!(got, want, "range [{start}, {end}]");
    }
    assert!(store.read_spans_in_range(&meta, 200_000_000, 300_000_000).await.unwrap().is_empty());
    assert!(store.read_spans_in_range(&meta, 20, 10).await.unwrap().is_empty(), "inverted range");
}

#[tokio::test]
async fn row_groups_outside_the_range_are_pruned_by_statistics() {
    let store = memory_store(small_row_groups());
    // Trace IDs increase with time here, so row groups are narrow in time.
    let mut spans = Vec::new();
    for t in 1..=200u32 {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&t.to_be_bytes());
        for s in 1..=5u8 {
            let start = t as u64 * 1_000_000 + s as u64;
            spans.push(Span::new(TraceId(trace), SpanId([s; 8]), "op", start, start + 1));
        }
    }
    let meta = store.write_block(spans, 0).await.unwrap();
    let opened = store.open(&meta).await.unwrap();
    let groups = super::reader::row_groups_overlapping_start(&opened, 100_000_000, 101_000_000).unwrap();
    assert!(!groups.is_empty() && groups.len() <= 2, "{groups:?} of {}", opened.metadata().num_row_groups());
    assert_eq!(store.read_spans_in_range(&meta, 100_000_000, 101_000_000).await.unwrap().len(), 5);
}

/// Spans of several services and names, some errors, durations from 0 to 9,000 ns, typed
/// attributes; one span has no `service.name` and reads as `unknown_service`, and some
/// resources carry a `region`.
fn varied_spans() -> Vec<Span> {
    let mut spans = simple_spans(200, 6);
    let mut services = ["cart", "checkout", "db"].map(resource);
    Arc::make_mut(&mut services[2]).attributes.push(KeyValue::string("region", "eu"));
    for (i, span) in spans.iter_mut().enumerate() {
        let (t, s) = (i / 6, i % 6);
        span.resource = services[(t * s + t / 7) % 3].clone();
        span.name = format!("op-{}", (t + s) % 4).into();
        span.end_unix_nanos = span.start_unix_nanos + (i as u64 * 7_919) % 10_000;
        if i % 11 == 0 {
            span.status_code = StatusCode::Error;
        } else if i % 5 == 0 {
            span.status_code = StatusCode::Ok;
        }
        span.attributes = vec![
            KeyValue::string("user", format!("u{}", i % 13)),
            KeyValue { key: "http.status_code".into(), value: AnyValue::Int(200 + (i % 3) as i64 * 100) },
            KeyValue { key: "retry".into(), value: AnyValue::Bool(i % 4 == 0) },
        ];
        if i % 9 == 0 {
            // The last attribute with a key decides, as `find_attribute` says.
            span.attributes.push(KeyValue::string("user", "override"));
            span.attributes.push(KeyValue { key: "region".into(), value: AnyValue::Bytes(vec![1, 2]) });
        }
        if i % 10 == 0 {
            span.attributes.push(KeyValue {
                key: "tags".into(),
                value: AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::Int(1)]),
            });
        } else if i % 10 == 5 {
            span.attributes.push(KeyValue::string("tags", "a"));
        }
    }
    spans[17].resource = Arc::new(Resource::default());
    spans[20].parent_span_id = None;
    spans
}

#[tokio::test]
async fn search_rows_carry_the_same_values_as_decoded_spans() {
    let options = BlockStoreOptions { read_batch_rows: 64, ..small_row_groups() };
    let store = memory_store(options);
    let meta = store.write_block(varied_spans(), 0).await.unwrap();
    let spans = store.read_spans(&meta).await.unwrap();
    let rows = store
        .fold_search_rows(&meta, Arc::new(SearchQuery::default()), SearchRows::OfQuery, Vec::new(), |rows, row| {
            rows.push((
                row.trace_id,
                row.start_unix_nanos,
                row.end_unix_nanos,
                row.service_name.to_owned(),
                row.name.to_owned(),
                row.is_error,
                row.is_root,
                row.matched,
            ))
        })
        .await
        .unwrap()
        .0;
    let want: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                s.trace_id,
                s.start_unix_nanos,
                s.end_unix_nanos,
                s.service_name().to_owned(),
                s.name.to_string(),
                s.is_error(),
                s.is_root(),
                true,
            )
        })
        .collect();
    assert_eq!(rows, want);
    assert!(rows.iter().any(|r| r.3 == sextant_model::UNKNOWN_SERVICE));
}

/// Every row of a block of `spans`.
fn every_row(spans: &[Span]) -> SearchRows {
    SearchRows::Listed(std::iter::once(0..spans.len() as u64).collect())
}

#[tokio::test]
async fn a_search_for_a_service_reads_only_the_clusters_holding_it() {
    let store = memory_store(small_row_groups());
    // Trace t has service t % 3 on every span; every fifth trace also calls db once.
    let services = ["cart", "checkout", "db"].map(resource);
    let mut spans = simple_spans(60, 4);
    for (i, span) in spans.iter_mut().enumerate() {
        let (t, s) = (i / 4, i % 4);
        span.resource = services[if t % 5 == 0 && s == 3 { 2 } else { t % 3 }].clone();
    }
    let meta = store.write_block(spans, 0).await.unwrap();
    let spans = store.read_spans(&meta).await.unwrap();
    let clusters = Clusters::of(&store.open(&meta).await.unwrap()).unwrap();
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cart", "checkout", "db"]);
    for cluster in clusters.iter() {
        let rows = cluster.row_range();
        for span in &spans[rows.start as usize..rows.end as usize] {
            let earliest = spans.iter().filter(|s| s.trace_id == span.trace_id).min_by_key(|s| s.start_unix_nanos);
            assert_eq!(earliest.unwrap().service_name(), cluster.name, "a trace is in its root service's cluster");
        }
    }
    // Rows read: the clusters with a span of the service (db: all three).
    for (service, clusters_read) in [("cart", 1), ("checkout", 1), ("db", 3), ("nowhere", 0)] {
        let query = SearchQuery { service: Some(service.into()), ..Default::default() };
        let (read, skipped) = store
            .fold_search_rows(&meta, Arc::new(query), SearchRows::OfQuery, Vec::new(), |read, row| {
                read.push((row.trace_id, row.service_name.to_owned(), row.matched, row.row))
            })
            .await
            .unwrap();
        let skipped_spans: Vec<&Span> =
            skipped.iter().flat_map(|rows| &spans[rows.start as usize..rows.end as usize]).collect();
        assert_eq!(read.len() + skipped_spans.len(), spans.len(), "{service}: every row read or skipped");
        // Rows carry their number in the block: the rows not skipped, in order.
        let numbers: Vec<u64> = read.iter().map(|r| r.3).collect();
        let not_skipped: Vec<u64> =
            (0..spans.len() as u64).filter(|n| !skipped.iter().any(|r| r.contains(n))).collect();
        assert_eq!(numbers, not_skipped, "{service}");
        assert!(read.iter().all(|r| spans[r.3 as usize].trace_id == r.0), "{service}: a row's number names its span");
        assert!(skipped_spans.iter().all(|s| s.service_name() != service), "{service}: a skipped span could match");
        let matched = read.iter().filter(|r| r.2).count();
        assert_eq!(matched, spans.iter().filter(|s| s.service_name() == service).count(), "{service}");
        let read_clusters: HashSet<&str> = read
            .iter()
            .map(|(id, _, _, _)| {
                let earliest = spans.iter().filter(|s| s.trace_id == *id).min_by_key(|s| s.start_unix_nanos);
                earliest.unwrap().service_name()
            })
            .collect();
        assert_eq!(read_clusters.len(), clusters_read, "{service}: {read_clusters:?}");
    }
}

#[tokio::test]
async fn search_rows_match_exactly_as_whole_spans_do() {
    use crate::search::{AttributeFilter, DurationScope};

    let attribute = |key: &str, value: &str| AttributeFilter { key: key.into(), value: value.into() };
    let options = BlockStoreOptions { read_batch_rows: 64, ..small_row_groups() };
    let store = memory_store(options);
    let meta = store.write_block(varied_spans(), 0).await.unwrap();
    let spans = store.read_spans(&meta).await.unwrap();
    let queries = [
        SearchQuery::default(),
        SearchQuery { service: Some("checkout".into()), ..Default::default() },
        SearchQuery { service: Some("unknown_service".into()), ..Default::default() },
        SearchQuery { operation: Some("op-2".into()), errors_only: true, ..Default::default() },
        SearchQuery { service: Some("db".into()), operation: Some("op-1".into()), ..Default::default() },
        SearchQuery {
            min_duration_nanos: Some(3_000),
            max_duration_nanos: Some(3_500),
            duration_scope: DurationScope::Span,
            ..Default::default()
        },
        SearchQuery { start_unix_nanos: Some(50_000_000), end_unix_nanos: Some(120_002_000), ..Default::default() },
        SearchQuery {
            service: Some("cart".into()),
            errors_only: true,
            max_duration_nanos: Some(5_000),
            duration_scope: DurationScope::Span,
            start_unix_nanos: Some(10_000_000),
            ..Default::default()
        },
        SearchQuery { attributes: vec![attribute("user", "u3")], ..Default::default() },
        SearchQuery { attributes: vec![attribute("user", "override")], ..Default::default() },
        SearchQuery { attributes: vec![attribute("http.status_code", "300")], ..Default::default() },
        SearchQuery { attributes: vec![attribute("retry", "true")], ..Default::default() },
        // A span attribute shadows the resource's; the resource answers when the span has none.
        SearchQuery { attributes: vec![attribute("region", "eu")], ..Default::default() },
        SearchQuery { attributes: vec![attribute("service.name", "db")], ..Default::default() },
        SearchQuery { attributes: vec![attribute("tags", "[a,1]")], ..Default::default() },
        // Read without the value types: the arrays' text must not pass for a string.
        SearchQuery { attributes: vec![attribute("tags", "a")], ..Default::default() },
        SearchQuery {
            service: Some("cart".into()),
            attributes: vec![attribute("user", "u5"), attribute("retry", "false")],
            ..Default::default()
        },
    ];
    for query in queries {
        let want: Vec<bool> = spans.iter().map(|s| query.span_matches(s)).collect();
        let got = store
            .fold_search_rows(&meta, Arc::new(query.clone()), every_row(&spans), Vec::new(), |matched, row| {
                matched.push(row.matched)
            })
            .await
            .unwrap()
            .0;
        assert_eq!(got, want, "{query:?}");
        let count = want.iter().filter(|&&m| m).count();
        if query != SearchQuery::default() {
            assert!(count < spans.len(), "the query must reject some spans: {query:?}");
        }
        assert!(count > 0, "the query must match some spans: {query:?}");
    }
}

/// Columns with more distinct values than a dictionary page holds fall back to plain pages;
/// the search scan reads them as dictionaries all the same.
#[tokio::test]
async fn search_rows_match_in_columns_that_fell_back_from_dictionaries() {
    use crate::search::AttributeFilter;

    let store = memory_store(BlockStoreOptions::default());
    let mut spans = simple_spans(4_000, 5);
    for (i, span) in spans.iter_mut().enumerate() {
        span.name = format!("operation-{i:0>120}").into();
        span.attributes = vec![KeyValue::string("id", format!("value-{i:0>120}"))];
    }
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    let opened = store.open(&meta).await.unwrap();
    let fell_back = opened.metadata().row_groups()[0].columns().iter().any(|c| {
        c.column_path().string().starts_with("attributes")
            && c.encodings().any(|e| e == parquet::basic::Encoding::PLAIN)
    });
    assert!(fell_back, "the test needs a column that left dictionary encoding");
    for i in [0usize, 7_777, 19_999] {
        let query = SearchQuery {
            operation: Some(format!("operation-{i:0>120}")),
            attributes: vec![AttributeFilter { key: "id".into(), value: format!("value-{i:0>120}") }],
            ..Default::default()
        };
        let want: Vec<bool> = in_block_order(spans.clone()).iter().map(|s| query.span_matches(s)).collect();
        let got = store
            .fold_search_rows(&meta, Arc::new(query), SearchRows::OfQuery, Vec::new(), |matched, row| {
                matched.push(row.matched)
            })
            .await
            .unwrap()
            .0;
        assert_eq!(got.iter().filter(|&&m| m).count(), 1);
        assert_eq!(got, want);
    }
}
