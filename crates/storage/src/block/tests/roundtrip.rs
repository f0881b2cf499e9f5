//! Every field of every span survives a write and a read.

use super::*;

fn double() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN never equals itself", |d| !d.is_nan())
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        "\\PC{0,12}".prop_map(|s: String| AnyValue::String(s.into())),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        double().prop_map(AnyValue::Double),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
            prop::collection::vec(("[a-z.]{0,6}", inner), 0..4)
                .prop_map(|kvs| AnyValue::KvList(kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(("[a-z.]{1,8}", any_value()), 0..5)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
}

fn nonzero_trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>().prop_map(|mut b| {
        b[0] |= 1;
        TraceId(b)
    })
}

fn nonzero_span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>().prop_map(|mut b| {
        b[0] |= 1;
        SpanId(b)
    })
}

fn event() -> impl Strategy<Value = Event> {
    (any::<u64>(), "\\PC{0,8}", attributes(), any::<u32>()).prop_map(|(time, name, attributes, dropped)| Event {
        time_unix_nanos: time,
        name,
        attributes,
        dropped_attributes_count: dropped,
    })
}

fn link() -> impl Strategy<Value = Link> {
    (nonzero_trace_id(), nonzero_span_id(), "[a-z=,]{0,8}", attributes(), any::<u32>(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped, flags)| Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: dropped,
            flags,
        },
    )
}

prop_compose! {
    fn span_body()(
        parent in proptest::option::of(nonzero_span_id()),
        trace_state in "[a-z=,]{0,8}",
        flags in any::<u32>(),
        name in "\\PC{0,10}",
        kind in 0i32..6,
        start in any::<u64>(),
        end in any::<u64>(),
        attributes in attributes(),
        dropped in any::<(u32, u32, u32)>(),
        events in prop::collection::vec(event(), 0..3),
        links in prop::collection::vec(link(), 0..3),
        status in 0i32..3,
        status_message in "\\PC{0,8}",
        resource_index in 0usize..3,
        scope_index in 0usize..2,
    ) -> (Span, usize, usize) {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), name, start, end);
        span.parent_span_id = parent;
        span.trace_state = trace_state;
        span.flags = flags;
        span.kind = SpanKind::from_i32(kind);
        span.attributes = attributes;
        (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) = dropped;
        span.events = events;
        span.links = links;
        span.status_code = StatusCode::from_i32(status);
        span.status_message = status_message;
        (span, resource_index, scope_index)
    }
}

fn resource_strategy() -> impl Strategy<Value = Resource> {
    (attributes(), any::<u32>(), proptest::option::of("[a-z]{1,6}")).prop_map(|(mut attributes, dropped, service)| {
        if let Some(service) = service {
            attributes.push(KeyValue::string("service.name", service));
        }
        Resource { attributes, dropped_attributes_count: dropped }
    })
}

fn scope_strategy() -> impl Strategy<Value = Scope> {
    ("\\PC{0,6}", "[0-9.]{0,5}", attributes(), any::<u32>()).prop_map(|(name, version, attributes, dropped)| Scope {
        name,
        version,
        attributes,
        dropped_attributes_count: dropped,
    })
}

prop_compose! {
    /// Spans over a few traces, with span IDs made distinct, sharing a few resources and scopes.
    fn block_spans()(
        traces in prop::collection::vec(nonzero_trace_id(), 1..4),
        resources in prop::collection::vec(resource_strategy(), 3),
        scopes in prop::collection::vec(scope_strategy(), 2),
        bodies in prop::collection::vec((span_body(), any::<prop::sample::Index>(), nonzero_span_id()), 1..24),
    ) -> Vec<Span> {
        let resources: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        let scopes: Vec<Arc<Scope>> = scopes.into_iter().map(Arc::new).collect();
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, ((mut span, r, s), trace, mut span_id))| {
                span.trace_id = *trace.get(&traces);
                span_id.0[..2].copy_from_slice(&(i as u16 + 1).to_be_bytes());
                span.span_id = span_id;
                span.resource = resources[r].clone();
                span.scope = scopes[s].clone();
                span
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_spans_returns_exactly_the_input(spans in block_spans()) {
        let rt = runtime();
        let store = memory_store(BlockStoreOptions { row_group_rows: 7, page_rows: 3, ..Default::default() });
        let expected = in_block_order(spans.clone());
        let meta = rt.block_on(store.write_block(spans, 0)).unwrap();
        let read = rt.block_on(store.read_spans(&meta)).unwrap();
        prop_assert_eq!(&read, &expected);
        prop_assert_eq!(meta.num_spans, expected.len() as u64);
        let traces: HashSet<TraceId> = expected.iter().map(|s| s.trace_id).collect();
        prop_assert_eq!(meta.num_traces, traces.len() as u64);
        prop_assert_eq!(meta.min_start_unix_nanos, expected.iter().map(|s| s.start_unix_nanos).min().unwrap());
        prop_assert_eq!(meta.max_end_unix_nanos, expected.iter().map(|s| s.end_unix_nanos).max().unwrap());
        // Each trace read by ID from a fresh store (no cached footer or index) is its spans.
        let fresh = BlockStore::with_options(store.store.clone(), Path::from("tenant-a"), store.options().clone());
        for trace_id in traces {
            let want: Vec<Span> = expected.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
            prop_assert_eq!(rt.block_on(fresh.read_trace(&meta, trace_id)).unwrap(), want);
        }
    }
}

#[tokio::test]
async fn spans_of_one_resource_share_it_after_reading() {
    let store = memory_store(BlockStoreOptions::default());
    let meta = store.write_block(simple_spans(20, 6), 0).await.unwrap();
    let spans = store.read_spans(&meta).await.unwrap();
    let distinct: HashSet<*const Resource> = spans.iter().map(|s| Arc::as_ptr(&s.resource)).collect();
    assert_eq!(distinct.len(), 3, "one Arc per distinct resource, not one per span");
    assert_eq!(meta.services, vec!["cart", "checkout", "db"]);
}

#[tokio::test]
async fn repeated_spans_in_one_write_are_stored_once() {
    let store = memory_store(BlockStoreOptions::default());
    let spans = simple_spans(3, 4);
    let mut doubled = spans.clone();
    doubled.extend(spans.iter().cloned());
    let meta = store.write_block(doubled, 0).await.unwrap();
    assert_eq!(meta.num_spans, 12);
    assert_eq!(store.read_spans(&meta).await.unwrap(), in_block_order(spans));
}

#[tokio::test]
async fn writing_no_spans_is_refused() {
    let store = memory_store(BlockStoreOptions::default());
    assert!(matches!(store.write_block(Vec::new(), 0).await, Err(BlockError::EmptyBlock)));
}

#[tokio::test]
async fn a_corrupt_index_is_reported_not_panicked_on() {
    let store = memory_store(BlockStoreOptions::default());
    let meta = store.write_block(simple_spans(2, 2), 0).await.unwrap();
    let fresh = BlockStore::new(store.store.clone(), Path::from("tenant-a"));
    fresh.store.put(&fresh.index_path(&meta.id), PutPayload::from_static(b"SXTI garbage")).await.unwrap();
    assert!(matches!(fresh.read_trace(&meta, TraceId([1; 16])).await, Err(BlockError::Corrupt { .. })));
}

#[test]
fn sort_key_orders_by_trace_then_start_then_span() {
    let a = Span::new(TraceId([1; 16]), SpanId([9; 8]), "a", 5, 6);
    let b = Span::new(TraceId([1; 16]), SpanId([1; 8]), "b", 7, 8);
    let c = Span::new(TraceId([2; 16]), SpanId([1; 8]), "c", 1, 2);
    assert!(sort_key(&a) < sort_key(&b) && sort_key(&b) < sort_key(&c));
}
