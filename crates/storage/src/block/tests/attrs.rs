//! Attribute indexes (`attrs.bin`) written with blocks: by a flush and by compaction, and
//! their absence without indexed keys.

use std::collections::BTreeSet;

use super::*;
use crate::block::attrs::{AttrIndex, ValueKind};

/// The keys indexed; the last is longer than 63 bytes (lengths from 63 up share one bit of
/// the builder's length filter).
const KEYS: [&str; 3] =
    ["business_process.id", "order.id", "com.example.fulfilment.workflow.correlation.identifier.of.the.order"];

fn indexed(options: BlockStoreOptions) -> BlockStoreOptions {
    BlockStoreOptions { indexed_attribute_keys: KEYS.iter().map(|k| k.to_string()).collect(), ..options }
}

/// `simple_spans` with process IDs: trace t's first span carries `business_process.id` =
/// "p-{t % 7}" as a string; its second span `order.id` = t % 5 as an integer; every span of
/// the traces with t % 4 == 0 carries `order.id` = "o-{t % 3}" through its resource, unless
/// the span has its own. Third spans carry the long key = "w-{t % 2}", and attributes whose keys
/// have the lengths of indexed keys without being one.
fn spans_with_ids(num_traces: u32) -> Vec<Span> {
    let mut spans = simple_spans(num_traces, 3);
    for span in &mut spans {
        let t = (span.start_unix_nanos / 1_000_000) as u32;
        let s = (span.start_unix_nanos % 1_000_000) / 1_000;
        match s {
            0 => span.attributes.push(KeyValue::string("business_process.id", format!("p-{}", t % 7))),
            1 => span.attributes.push(KeyValue::new("order.id", AnyValue::Int((t % 5) as i64))),
            2 => {
                span.attributes.push(KeyValue::string("order.nr", "n"));
                span.attributes.push(KeyValue::string(KEYS[2].replace("order", "parts"), "x"));
                span.attributes.push(KeyValue::string(KEYS[2], format!("w-{}", t % 2)));
            }
            _ => {}
        }
        if t.is_multiple_of(4) {
            let mut resource = (*span.resource).clone();
            resource.attributes.push(KeyValue::string("order.id", format!("o-{}", t % 3)));
            span.resource = Arc::new(resource);
        }
    }
    spans
}

/// What an attribute index of `spans` must hold, computed from the spans with the search's
/// rule (the span's attribute, else the resource's): (key, kind, text) → sorted traces.
fn expected(spans: &[Span]) -> BTreeMap<(String, ValueKind, String), BTreeSet<TraceId>> {
    let mut want: BTreeMap<(String, ValueKind, String), BTreeSet<TraceId>> = BTreeMap::new();
    for span in spans {
        for key in KEYS {
            let value = sextant_model::find_attribute(&span.attributes, key)
                .or_else(|| sextant_model::find_attribute(&span.resource.attributes, key));
            let entry = match value {
                Some(AnyValue::String(s)) => (ValueKind::String, s.to_string()),
                Some(AnyValue::Int(i)) => (ValueKind::Int, i.to_string()),
                Some(other) => panic!("unexpected value {other:?}"),
                None => continue,
            };
            want.entry((key.to_string(), entry.0, entry.1)).or_default().insert(span.trace_id);
        }
    }
    want
}

fn held(attrs: &AttrIndex) -> BTreeMap<(String, ValueKind, String), BTreeSet<TraceId>> {
    attrs
        .entries()
        .map(|(key, kind, text, traces)| ((key.to_string(), kind, text.to_string()), traces.into_iter().collect()))
        .collect()
}

#[tokio::test]
async fn a_written_block_lists_exactly_the_traces_carrying_each_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::local_with_options(dir.path(), indexed(small_row_groups())).unwrap();
    let spans = spans_with_ids(60);
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    let attrs = store.attr_index(&meta).await.unwrap().expect("written with the block");
    let want = expected(&spans);
    assert!(want.keys().any(|(_, kind, _)| *kind == ValueKind::Int), "the sample has integers");
    assert!(want.contains_key(&("order.id".into(), ValueKind::String, "o-0".into())), "and resource values");
    assert!(want.contains_key(&(KEYS[2].into(), ValueKind::String, "w-1".into())), "and a long key");
    assert_eq!(held(&attrs), want);

    // Read back from the object store, not the cache: the same index.
    let fresh = BlockStore::local_with_options(dir.path(), indexed(small_row_groups())).unwrap();
    assert_eq!(fresh.attr_index(&meta).await.unwrap().as_deref(), Some(&*attrs));
    let block_dir = dir.path().join(format!("blocks/{}", meta.id));
    let len = |name: &str| std::fs::metadata(block_dir.join(name)).unwrap().len();
    assert_eq!(meta.size_bytes, len("data.parquet") + len("index.bin") + len("attrs.bin"));

    // A lookup ranks by each trace's earliest start in the block.
    let hits = attrs.lookup("order.id", "3", 0, u64::MAX).unwrap();
    let want: Vec<TraceId> = spans
        .iter()
        .filter(|s| s.start_unix_nanos % 1_000_000 == 0 && (s.start_unix_nanos / 1_000_000) % 5 == 3)
        .map(|s| s.trace_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(hits.iter().map(|h| h.trace_id).collect::<Vec<_>>(), want);
    for hit in hits {
        let earliest = spans.iter().filter(|s| s.trace_id == hit.trace_id).map(|s| s.start_unix_nanos).min();
        assert_eq!(Some(hit.start_unix_nanos), earliest);
    }

    // Deleting the block deletes its attribute index too.
    store.delete_block(&meta).await.unwrap();
    assert!(!block_dir.join("attrs.bin").exists());
}

#[tokio::test]
async fn without_indexed_keys_a_block_has_no_attribute_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::local_with_options(dir.path(), small_row_groups()).unwrap();
    let meta = store.write_block(spans_with_ids(10), 0).await.unwrap();
    assert!(store.attr_index(&meta).await.unwrap().is_none());
    assert!(!dir.path().join(format!("blocks/{}/attrs.bin", meta.id)).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_outputs_carry_attribute_indexes_of_their_own_spans() {
    let store = memory_store(indexed(small_row_groups()));
    let all = spans_with_ids(90);
    // Overlapping inputs (traces 20..40 twice) and one written without keys: the outputs
    // are indexed with the store's keys whatever their inputs had.
    let plain = BlockStore::with_options(store.store.clone(), Path::from("tenant-a"), small_row_groups());
    let a = store.write_block(all[..120].to_vec(), 0).await.unwrap();
    let b = store.write_block(all[60..200].to_vec(), 0).await.unwrap();
    let c = plain.write_block(all[200..].to_vec(), 0).await.unwrap();
    assert!(store.attr_index(&c).await.unwrap().is_none());
    let outputs = store.compact(&[a, b, c], 100).await.unwrap();
    assert!(outputs.len() > 1, "split into several outputs");
    let mut traces_seen = BTreeSet::new();
    for output in &outputs {
        let spans = store.read_spans(output).await.unwrap();
        let attrs = store.attr_index(output).await.unwrap().expect("compaction writes attrs.bin");
        assert_eq!(held(&attrs), expected(&spans), "output {}", output.id);
        traces_seen.extend(spans.iter().map(|s| s.trace_id));
    }
    assert_eq!(traces_seen.len(), 90);
}
