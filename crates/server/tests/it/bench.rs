//! `sextant bench ingest` end to end: the real binary starts a server, loads it, stops it and
//! reports what it measured.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_ingest_reports_every_span_acknowledged_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("ingest.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "ingest", "--traces", "200", "--concurrency", "2", "--batch-spans", "300", "--json"])
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
