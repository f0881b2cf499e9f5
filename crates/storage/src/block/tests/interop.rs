//! Blocks read by a tool outside Sextant, and their size on the benchmark workload.

use super::*;

#[tokio::test]
async fn pyarrow_reads_a_block() {
    let have_pyarrow = std::process::Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        have_pyarrow,
        "this test needs Python's pyarrow to check that blocks are readable outside Sextant: run `pip install pyarrow`"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::local(dir.path()).unwrap();
    let mut spans = simple_spans(30, 4);
    spans[0].attributes.push(KeyValue::new("nested", AnyValue::Array(vec![AnyValue::Double(1.5)])));
    let meta = store.write_block(spans.clone(), 0).await.unwrap();
    let path = dir.path().join(format!("blocks/{}/data.parquet", meta.id));
    let script = r#"
import sys, json, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
meta = f.metadata.metadata
print(json.dumps({
    "rows": t.num_rows,
    "first_trace_id": t.column("trace_id")[0].as_py().hex(),
    "services": sorted(set(t.column("service_name").to_pylist())),
    "format": meta[b"sextant.block.format_version"].decode(),
    "clusters": [(c["name"], c["rows"]) for c in json.loads(meta[b"sextant.block.clusters"])],
    "first_attr_key": t.column("attributes")[0].as_py()[0]["key"],
}))
"#;
    let output = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(output.status.success(), "pyarrow failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let first = &in_block_order(spans)[0];
    assert_eq!(report["rows"], 120);
    assert_eq!(report["first_trace_id"], first.trace_id.to_hex());
    assert_eq!(report["services"], serde_json::json!(["cart", "checkout", "db"]));
    assert_eq!(report["format"], "2");
    // simple_spans: every trace starts with a cart span, so one cluster holds every row.
    assert_eq!(report["clusters"], serde_json::json!([["cart", [0, 120]]]));
    assert_eq!(report["first_attr_key"], first.attributes[0].key.as_str());
}

// ---- size on a benchmark-like workload -----------------------------------------------------

/// The benchmark's shape: 10 spans per trace, 10 services, 11 attributes per span drawn from
/// 97 keys × 1000 values, starts spread over 10 days.
fn benchmark_like_spans(num_traces: usize) -> Vec<Span> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let resources: Vec<Arc<Resource>> = (0..10).map(|i| resource(&format!("service-{i}"))).collect();
    let scope = Arc::new(Scope { name: "bench".into(), version: "1.0".into(), ..Default::default() });
    let ten_days_nanos = 10 * 86_400 * 1_000_000_000u64;
    let mut spans = Vec::with_capacity(num_traces * 10);
    for _ in 0..num_traces {
        let trace_id = TraceId([next().to_le_bytes(), next().to_le_bytes()].concat().try_into().unwrap());
        let root_start = 1_700_000_000_000_000_000 + next() % ten_days_nanos;
        let root_id = SpanId(next().to_le_bytes());
        for s in 0..10u64 {
            let span_id = if s == 0 { root_id } else { SpanId(next().to_le_bytes()) };
            let start = root_start + s * 1_000_000 + next() % 1_000_000;
            let duration = 1_000_000 + next() % 100_000_000;
            let mut span = Span::new(trace_id, span_id, format!("operation-{}", next() % 20), start, start + duration);
            span.parent_span_id = (s > 0).then_some(root_id);
            span.kind = SpanKind::Server;
            span.resource = resources[(next() % 10) as usize].clone();
            span.scope = scope.clone();
            let mut keys = HashSet::new();
            while keys.len() < 11 {
                keys.insert(next() % 97);
            }
            for key in keys {
                span.attributes
                    .push(KeyValue::string(format!("attribute.key.{key}"), format!("value-{}", next() % 1000)));
            }
            spans.push(span);
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "size report: cargo test -p sextant-storage --lib block::tests::interop::report -- --ignored --nocapture"]
async fn report_bytes_per_span_on_a_benchmark_like_workload() {
    let store = memory_store(BlockStoreOptions::default());
    let spans = benchmark_like_spans(50_000);
    let num_spans = spans.len() as f64;
    let mut flushed = Vec::new();
    for chunk in spans.chunks(100_000) {
        flushed.push(store.write_block(chunk.to_vec(), 0).await.unwrap());
    }
    let flushed_bytes: u64 = flushed.iter().map(|b| b.size_bytes).sum();
    let compacted = store.compact(&flushed, u64::MAX).await.unwrap().remove(0);
    let opened = store.open(&compacted).await.unwrap();
    println!(
        "{} spans: {:.1} bytes/span as flushed blocks of 100k spans; compacted into one: {:.1} (data {:.1}, index {:.1})",
        compacted.num_spans,
        flushed_bytes as f64 / num_spans,
        compacted.size_bytes as f64 / num_spans,
        opened.file_size as f64 / num_spans,
        (compacted.size_bytes - opened.file_size) as f64 / num_spans
    );
    let mut columns: BTreeMap<String, i64> = BTreeMap::new();
    for row_group in opened.metadata().row_groups() {
        for column in row_group.columns() {
            *columns.entry(column.column_path().string()).or_default() += column.compressed_size();
        }
    }
    for (column, bytes) in columns.into_iter().filter(|(_, bytes)| *bytes as f64 > num_spans / 100.0) {
        println!("  {column:40} {:.2} bytes/span", bytes as f64 / num_spans);
    }
}

#[tokio::test]
async fn benchmark_like_blocks_stay_compact() {
    // A guard against size regressions, far looser than the 35 bytes/span target.
    let store = memory_store(BlockStoreOptions::default());
    let spans = benchmark_like_spans(2_000);
    let meta = store.write_block(spans, 0).await.unwrap();
    let bytes_per_span = meta.size_bytes as f64 / meta.num_spans as f64;
    assert!(bytes_per_span < 80.0, "{bytes_per_span:.1} bytes/span");
}
