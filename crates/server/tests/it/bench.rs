//! `sextant bench ingest` end to end: the real binary starts a server, loads it, stops it and
//! reports what it measured.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_ingest_reports_every_span_acknowledged_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("ingest.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "ingest", "--traces", "200", "--concurrency", "2", "--connections", "2"])
        .args(["--batch-spans", "300", "--json"])
        .arg(&json_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("spans/s") && stdout.contains("2,000"), "table missing: {stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let ingest = &report["ingest"];
    assert_eq!(ingest["spans_sent"], 2000, "{report:#}");
    assert_eq!(ingest["spans_acknowledged"], 2000, "{report:#}");
    assert_eq!(ingest["spans_rejected"], 0);
    assert_eq!(ingest["failed_requests"], 0);
    assert_eq!(ingest["requests"], 7, "2000 spans in requests of 300");
    assert!(ingest["spans_per_second"].as_f64().unwrap() > 0.0);
    let server = &report["server"];
    assert!(server["block_bytes"].as_u64().unwrap() > 0, "the stop flushed a block: {report:#}");
    assert!(server["bytes_on_disk"].as_u64().unwrap() > 0);
    let bytes_per_span = server["bytes_per_span"].as_f64().unwrap();
    assert!((5.0..=500.0).contains(&bytes_per_span), "{bytes_per_span} bytes/span");
    assert!(server["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["replay"], Value::Null);
    assert_eq!(report["parameters"]["traces"], 200);
    assert_eq!(report["parameters"]["seed"], 1);
    assert_eq!(report["parameters"]["connections"], 2);
    assert_eq!(report["sextant_version"], env!("CARGO_PKG_VERSION"));
    assert!(dir.path().join("data/ingest/store/blocks").is_dir(), "a given --data-dir is kept");
}

#[test]
fn bench_ingest_replay_counts_the_wal_of_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("replay.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "ingest", "--traces", "100", "--concurrency", "2", "--replay", "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["replay"]["spans_replayed"], 1000, "{report:#}");
    assert!(report["replay"]["wal_bytes"].as_u64().unwrap() > 0);
    assert!(report["replay"]["spans_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_ingest_refuses_a_non_empty_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "ingest", "--traces", "10", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

/// `sextant bench query` end to end: load, stop, restart, the whole query set, every answer
/// checked by the benchmark against the workload.
#[test]
fn bench_query_answers_every_query_of_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("query.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "query", "--traces", "200", "--repetitions", "2", "--trace-ids", "20", "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("search by all filters") && stdout.contains("p50 ms"), "table missing: {stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["benchmark"], "query");
    assert_eq!(report["parameters"]["shape"], "tracegen", "the published benchmark's spans by default");
    assert_eq!(report["data"]["queried"], "blocks", "{report:#}");
    assert_eq!(report["data"]["head_spans"], 0, "the restart found every span in blocks: {report:#}");
    assert_eq!(report["load"]["ingest"]["spans_acknowledged"], 2000);
    assert!(report["server"]["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(report["load"]["compaction_seconds"].as_f64().is_some(), "waited for compaction: {:#}", report["load"]);
    let queries = report["queries"].as_array().unwrap();
    let names: Vec<&str> = queries.iter().map(|q| q["query"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "services",
            "operations",
            "trace_by_id",
            "trace_by_id_time_range",
            "search_service",
            "search_operation",
            "search_duration",
            "search_timestamp",
            "search_attribute",
            "search_all",
            "traceql_service",
            "traceql_attribute",
            "traceql_name_duration",
            "traceql_structural",
            "traceql_count"
        ]
    );
    for query in queries {
        let name = query["query"].as_str().unwrap();
        assert_eq!(query["failures"], 0, "{name}: {query:#}");
        assert!(query["p50_ms"].as_f64().unwrap() > 0.0, "{name}");
        assert!(query["p99_ms"].as_f64().unwrap() >= query["p50_ms"].as_f64().unwrap(), "{name}");
        let expected_samples = if name.starts_with("trace_by_id") { 20 } else { 2 };
        assert_eq!(query["samples"], expected_samples, "{name}");
        if name.starts_with("search") || name.starts_with("traceql") {
            let results = query["results"].as_u64().unwrap();
            let matching = query["matching_traces"].as_u64().unwrap();
            assert!(results >= 1, "{name} returned no trace: {query:#}");
            assert_eq!(results, matching.min(20), "{name}: the newest 20 of the matches");
        }
    }
    assert_eq!(queries[0]["results"], 10, "ten services");
    assert_eq!(queries[2]["results"], 20, "every trace complete");
}

#[test]
fn bench_query_with_head_queries_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("head.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "query", "--head", "--shape", "random", "--traces", "50", "--repetitions", "1"])
        .args(["--trace-ids", "5", "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["data"]["queried"], "head");
    assert_eq!(report["parameters"]["shape"], "random");
    assert_eq!(report["load"]["restart_seconds"], Value::Null);
    assert_eq!(report["load"]["compaction_seconds"], Value::Null);
    assert_eq!(report["data"]["head_spans"], 500, "{report:#}");
    assert_eq!(report["parameters"]["server_settings"]["SEXTANT_STORAGE_HEAD_MAX_SPANS"], "501");
    assert!(report["queries"].as_array().unwrap().iter().all(|q| q["failures"] == 0), "{report:#}");
}
