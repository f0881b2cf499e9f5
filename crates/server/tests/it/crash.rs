//! Kill -9 while a real OTLP exporter is sending: every acknowledged span survives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SpanExporter as _;

use crate::support::*;

const SPANS_PER_TRACE: u64 = 40;
const ROUNDS: u64 = 4;

/// Sends one trace per export until an export fails; records the acknowledged traces.
async fn send_until_failure(grpc_port: u16, round: u64, acked: Arc<Mutex<Vec<u128>>>) {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://127.0.0.1:{grpc_port}"))
        .with_timeout(Duration::from_secs(3))
        .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
        .build()
        .unwrap();
    exporter.set_resource(&resource("crash-test"));
    for i in 0u128.. {
        let trace = ((round as u128 + 1) << 64) | (i + 1);
        let start = SystemTime::now() - Duration::from_secs(1);
        let batch = (0..SPANS_PER_TRACE)
            .map(|s| span_data(trace, s + 1, if s == 0 { 0 } else { 1 }, "step", start, Duration::from_millis(s + 1)))
            .collect();
        if exporter.export(batch).await.is_err() {
            return;
        }
        acked.lock().unwrap().push(trace);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(5);
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..ROUNDS {
        let mut server = ChildServer::spawn(dir.path(), &ports);
        server.wait_ready().await;
        let before = acked.lock().unwrap().len();
        let sender = tokio::spawn(send_until_failure(server.grpc_port, round, acked.clone()));
        tokio::time::sleep(Duration::from_millis(400 + 150 * round)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        tokio::time::timeout(Duration::from_secs(20), sender).await.expect("sender stops after the kill").unwrap();
        let sent = acked.lock().unwrap().len() - before;
        assert!(sent > 0, "round {round}: nothing was acknowledged before the kill");
        eprintln!("round {round}: {sent} traces acknowledged before SIGKILL");
    }

    let mut server = ChildServer::spawn(dir.path(), &ports);
    server.wait_ready().await;
    let acked = acked.lock().unwrap().clone();
    for trace in &acked {
        let (status, body) = get_json(&server.query_url(&format!("/api/v1/traces/{}", hex_trace(*trace)))).await;
        assert_eq!(status, 200, "acknowledged trace {} lost", hex_trace(*trace));
        assert_eq!(otlp_spans(&body).len() as u64, SPANS_PER_TRACE, "trace {} incomplete", hex_trace(*trace));
    }
    let metrics = reqwest::get(server.query_url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metric_value(&metrics, "sextant_wal_replayed_spans_total") > 0.0, "the last start replayed the WAL");
}
