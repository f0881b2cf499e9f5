//! The compaction executor: merge, dedupe, levels, metadata.

use super::*;
use crate::block::compaction::{CompactionPolicy, plan};

fn one(mut outputs: Vec<BlockMeta>) -> BlockMeta {
    assert_eq!(outputs.len(), 1, "without a size limit a compaction writes one block");
    outputs.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_blocks_and_drops_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::local_with_options(dir.path(), small_row_groups()).unwrap();
    let all = simple_spans(120, 5);
    // Two blocks that overlap on traces 40..80 (the same spans, as a client retry sends them).
    let first: Vec<Span> = all[..400].to_vec();
    let second: Vec<Span> = all[200..].to_vec();
    let a = store.write_block(first, 0).await.unwrap();
    let b = store.write_block(second, 2).await.unwrap();
    let merged = one(store.compact(&[a.clone(), b.clone()], u64::MAX).await.unwrap());
    assert_eq!(merged.level, 3);
    assert_eq!(merged.num_spans, 600);
    assert_eq!(merged.num_traces, 120);
    assert_eq!(merged.services, vec!["cart", "checkout", "db"]);
    assert_eq!(merged.min_start_unix_nanos, a.min_start_unix_nanos.min(b.min_start_unix_nanos));
    assert_eq!(merged.max_end_unix_nanos, a.max_end_unix_nanos.max(b.max_end_unix_nanos));
    let data_len = std::fs::metadata(dir.path().join(format!("blocks/{}/data.parquet", merged.id))).unwrap().len();
    let index_len = std::fs::metadata(dir.path().join(format!("blocks/{}/index.bin", merged.id))).unwrap().len();
    assert_eq!(merged.size_bytes, data_len + index_len);

    let read = store.read_spans(&merged).await.unwrap();
    let identities: HashSet<(TraceId, SpanId, SpanKind)> = read.iter().map(Span::identity).collect();
    assert_eq!(identities.len(), read.len(), "each span once");
    assert_eq!(read, in_block_order(all.clone()));
    let some_trace = all[250].trace_id;
    let want: Vec<Span> = in_block_order(all).into_iter().filter(|s| s.trace_id == some_trace).collect();
    let fresh = BlockStore::local_with_options(dir.path(), small_row_groups()).unwrap();
    assert_eq!(fresh.read_trace(&merged, some_trace).await.unwrap(), want);

    // The executor leaves the manifest to the caller.
    assert_eq!(store.load_manifest().await.unwrap().version, 0);
}

#[tokio::test]
async fn compaction_streams_its_output_in_parts_on_a_single_threaded_runtime() {
    // Small parts, so the output is uploaded in many pieces while the merge runs.
    let options =
        BlockStoreOptions { row_group_rows: 64, page_rows: 16, upload_part_bytes: 4096, ..Default::default() };
    let store = memory_store(options);
    let all = simple_spans(400, 6);
    let a = store.write_block(all[..1200].to_vec(), 0).await.unwrap();
    let b = store.write_block(all[1200..].to_vec(), 0).await.unwrap();
    let merged = one(store.compact(&[b, a], u64::MAX).await.unwrap());
    assert_eq!(merged.level, 1);
    assert!(merged.size_bytes > 4 * 4096, "the output must span several parts ({} bytes)", merged.size_bytes);
    assert_eq!(store.read_spans(&merged).await.unwrap(), in_block_order(all));
    assert!(matches!(store.compact(&[], u64::MAX).await, Err(BlockError::EmptyBlock)));
}

#[tokio::test]
async fn both_halves_of_a_zipkin_shared_span_are_kept() {
    // Regression: client and server halves share trace and span ID and the same start; they
    // are two spans, not a retry.
    let store = memory_store(BlockStoreOptions::default());
    let mut client = Span::new(TraceId([3; 16]), SpanId([4; 8]), "get", 10, 20);
    client.kind = SpanKind::Client;
    let mut server = client.clone();
    server.kind = SpanKind::Server;
    let a = store.write_block(vec![server.clone(), client.clone(), client.clone()], 0).await.unwrap();
    assert_eq!(a.num_spans, 2);
    let b = store.write_block(vec![server.clone()], 0).await.unwrap();
    let merged = one(store.compact(&[a, b], u64::MAX).await.unwrap());
    assert_eq!(store.read_spans(&merged).await.unwrap(), vec![server, client], "server (2) sorts before client (3)");
}

/// Blocks over the same period (spans that arrived out of time order) come out of compaction
/// as blocks of bounded size that no longer overlap in trace start, so the planner leaves them
/// alone and a newest-first search can stop after the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_splits_its_output_by_trace_start() {
    let store = memory_store(small_row_groups());
    let mut all = simple_spans(300, 4);
    // Trace starts shuffled against trace IDs, so each input covers the whole period.
    for (i, span) in all.iter_mut().enumerate() {
        let trace = (i / 4) as u64;
        let start = 1_000_000 + (trace * 7_919 % 300) * 1_000 + (i % 4) as u64;
        span.end_unix_nanos = start + (span.end_unix_nanos - span.start_unix_nanos);
        span.start_unix_nanos = start;
    }
    let inputs = vec![
        store.write_block(all.iter().step_by(2).cloned().collect(), 0).await.unwrap(),
        store.write_block(all.iter().skip(1).step_by(2).cloned().collect(), 0).await.unwrap(),
        // A retry of some spans, in a third block.
        store.write_block(all[100..140].to_vec(), 0).await.unwrap(),
    ];
    let policy = CompactionPolicy { target_spans: 250, ..CompactionPolicy::default() };
    assert_eq!(plan(&inputs, &policy).len(), 1, "the inputs overlap");

    let outputs = store.compact(&inputs, 250).await.unwrap();
    assert_eq!(outputs.len(), 5, "1200 spans in blocks of at most 250");
    let mut read = Vec::new();
    for (output, next) in outputs.iter().zip(outputs.iter().skip(1)) {
        assert!(output.num_spans <= 250);
        assert!(output.trace_start_range().1 <= next.trace_start_range().0, "trace starts do not overlap");
    }
    for output in &outputs {
        assert_eq!(output.level, 1);
        read.extend(store.read_spans(output).await.unwrap());
    }
    assert_eq!(in_block_order(read), in_block_order(all), "every span once");
    assert!(plan(&outputs, &policy).is_empty(), "nothing left to merge");
}
