//! Span metrics and service graph intervals persisted under `{data_dir}/metrics/`: the same
//! queries give the same numbers after a restart and once intervals leave the in-memory
//! window, spans received after a restart add to them, a corrupt file is skipped and counted,
//! and Jaeger's and Zipkin's dependencies come from the service graph.
//!
//! The fixture, ending in one 15 s interval two minutes ago (inside the 10 minute window):
//!
//! ```text
//! trace 1  frontend GET /checkout 300 ms → frontend GET /cart (client) 100 ms → cart GET /cart 80 ms
//!          → cart redis GET (client, db.system.name = redis) 2 ms
//! trace 2  frontend GET /checkout 500 ms → frontend GET /cart (client) 250 ms → cart GET /cart 200 ms ERROR
//! ```

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};
use sextant_server::serve::Server;

use crate::support::*;

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const INTERVAL: u64 = 15 * SECOND;

/// The service graph expires unpaired halves at once, so the redis client is a call at the
/// next read.
const SETTINGS: [(&str, &str); 1] = [("SEXTANT_METRICS_SERVICE_GRAPH_WAIT_SECONDS", "0")];

fn fixture_base() -> u64 {
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let two_minutes_ago = now - 120 * SECOND;
    two_minutes_ago - two_minutes_ago % INTERVAL
}

/// One span: (trace, id, parent, service, name, OTLP kind, end offset, duration, error, db).
type S = (&'static str, &'static str, &'static str, &'static str, &'static str, i32, u64, u64, bool, &'static str);

const T1: &str = "11111111111111111111111111111111";
const T2: &str = "22222222222222222222222222222222";

const FIXTURE: [S; 7] = [
    (T1, "1000000000000001", "", "frontend", "GET /checkout", 2, 2_000 * MS, 300 * MS, false, ""),
    (T1, "1000000000000002", "1000000000000001", "frontend", "GET /cart", 3, 1_900 * MS, 100 * MS, false, ""),
    (T1, "1000000000000003", "1000000000000002", "cart", "GET /cart", 2, 1_890 * MS, 80 * MS, false, ""),
    (T1, "1000000000000004", "1000000000000003", "cart", "redis GET", 3, 1_850 * MS, 2 * MS, false, "redis"),
    (T2, "2000000000000001", "", "frontend", "GET /checkout", 2, 4_000 * MS, 500 * MS, false, ""),
    (T2, "2000000000000002", "2000000000000001", "frontend", "GET /cart", 3, 3_900 * MS, 250 * MS, false, ""),
    (T2, "2000000000000003", "2000000000000002", "cart", "GET /cart", 2, 3_850 * MS, 200 * MS, true, ""),
];

/// The OTLP/JSON body of `spans`, one `resourceSpans` per span.
fn request(spans: &[S], base: u64) -> Value {
    let resource_spans: Vec<Value> = spans
        .iter()
        .map(|(trace, id, parent, service, name, kind, end_offset, duration, error, db)| {
            let attributes: Vec<Value> = if db.is_empty() {
                Vec::new()
            } else {
                vec![json!({"key": "db.system.name", "value": {"stringValue": db}})]
            };
            let span = json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": kind,
                              "startTimeUnixNano": (base + end_offset - duration).to_string(),
                              "endTimeUnixNano": (base + end_offset).to_string(),
                              "attributes": attributes, "status": {"code": if *error { 2 } else { 0 }}});
            json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                   "scopeSpans": [{"scope": {"name": "metrics-history-test"}, "spans": [span]}]})
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// The answers a restart must not change: native span metrics and service graph, Jaeger's
/// call rates, Jaeger's and Zipkin's dependencies, all over the fixture's interval.
async fn answers(server: &Server, base: u64) -> Vec<Value> {
    let (start, end) = (base, base + INTERVAL);
    let end_ms = end / MS;
    let mut found = Vec::new();
    for url in [
        query_url(server, &format!("/api/v1/span-metrics?start={start}&end={end}&groupBy=service,operation,status")),
        query_url(server, &format!("/api/v1/service-graph?start={start}&end={end}")),
        query_url(
            server,
            &format!("/api/metrics/calls?service=cart&endTs={end_ms}&lookback=15000&step=15000&ratePer=15000"),
        ),
        query_url(server, &format!("/api/dependencies?endTs={end_ms}&lookback=15000")),
        format!("http://{}/api/v2/dependencies?endTs={end_ms}&lookback=15000", server.zipkin_address),
    ] {
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        found.push(body);
    }
    found
}

/// (labels, calls, errors) of every span metrics series in the first answer.
fn series_calls(span_metrics: &Value) -> Vec<(String, u64, u64)> {
    span_metrics["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let labels = &series["labels"];
            let point = &series["points"][0];
            (
                format!(
                    "{} {} {}",
                    labels["service"].as_str().unwrap(),
                    labels["operation"].as_str().unwrap(),
                    labels["status"].as_str().unwrap()
                ),
                point["calls"].as_u64().unwrap(),
                point["errors"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// (client, server, calls, failed) of every edge.
fn edge_calls(graph: &Value) -> Vec<(String, String, u64, u64)> {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (
                edge["client"].as_str().unwrap().to_string(),
                edge["server"].as_str().unwrap().to_string(),
                edge["calls"].as_u64().unwrap(),
                edge["failed"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn interval_files(dir: &Path, aggregator: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("metrics").join(aggregator))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_span_metrics_and_the_service_graph() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &SETTINGS).await;
    let base = fixture_base();
    post_otlp_json(&server, &request(&FIXTURE, base)).await;
    let before = answers(&server, base).await;

    assert_eq!(
        series_calls(&before[0]),
        [
            ("cart GET /cart error".to_string(), 1, 1),
            ("cart GET /cart unset".to_string(), 1, 0),
            ("cart redis GET unset".to_string(), 1, 0),
            ("frontend GET /cart unset".to_string(), 2, 0),
            ("frontend GET /checkout unset".to_string(), 2, 0),
        ]
    );
    let edges = [
        ("cart".to_string(), "redis".to_string(), 1, 0),
        ("frontend".to_string(), "cart".to_string(), 2, 1),
        ("user".to_string(), "frontend".to_string(), 2, 0),
    ];
    assert_eq!(edge_calls(&before[1]), edges);
    let cart_calls = &before[2]["metrics"][0]["metricPoints"][0]["gaugeValue"]["doubleValue"];
    assert_eq!(cart_calls.as_f64(), Some(2.0 / 15.0), "two cart server spans over 15 s: {}", before[2]);
    let link = |parent: &str, child: &str, calls: u64| json!({"parent": parent, "child": child, "callCount": calls});
    assert_eq!(before[3]["data"], json!([link("cart", "redis", 1), link("frontend", "cart", 2)]));
    assert_eq!(
        before[4],
        json!([
            {"parent": "cart", "child": "redis", "callCount": 1, "errorCount": 0},
            {"parent": "frontend", "child": "cart", "callCount": 2, "errorCount": 1},
        ])
    );

    server.shutdown().await.unwrap();
    let file = format!("{base:020}.sxmi");
    assert_eq!(interval_files(dir.path(), "span_metrics"), std::slice::from_ref(&file), "written on shutdown");
    assert_eq!(interval_files(dir.path(), "service_graph"), std::slice::from_ref(&file));

    let server = start_server_with(dir.path(), &SETTINGS).await;
    assert_eq!(answers(&server, base).await, before, "the same answers from disk after a restart");

    // A span received after the restart in the same interval adds to what was persisted.
    let late: [S; 1] = [(T2, "2000000000000009", "", "frontend", "GET /checkout", 2, 9_000 * MS, 10 * MS, false, "")];
    post_otlp_json(&server, &request(&late, base)).await;
    let after = answers(&server, base).await;
    assert_eq!(series_calls(&after[0])[4], ("frontend GET /checkout unset".to_string(), 3, 0));
    assert_eq!(edge_calls(&after[1])[2], ("user".to_string(), "frontend".to_string(), 3, 0));
    server.shutdown().await.unwrap();
    assert_eq!(interval_files(dir.path(), "span_metrics"), std::slice::from_ref(&file), "merged into one file");

    let server = start_server_with(dir.path(), &SETTINGS).await;
    assert_eq!(answers(&server, base).await, after);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_interval_file_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &SETTINGS).await;
    let base = fixture_base();
    post_otlp_json(&server, &request(&FIXTURE, base)).await;
    server.shutdown().await.unwrap();

    let path = dir.path().join("metrics/span_metrics").join(format!("{base:020}.sxmi"));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let server = start_server_with(dir.path(), &SETTINGS).await;
    let answers = answers(&server, base).await;
    assert_eq!(answers[0]["series"], json!([]), "the torn interval is skipped");
    assert_eq!(edge_calls(&answers[1]).len(), 3, "the service graph's file is intact");
    let text = metrics_text(&server).await;
    let unreadable =
        r#"sextant_metrics_history_unreadable_intervals_total{aggregator="span_metrics",reason="corrupt"}"#;
    assert_eq!(metric_value(&text, unreadable), 1.0, "{text}");
    server.shutdown().await.unwrap();
}

/// With 1-second intervals and a 2-second window, intervals leave memory while the server
/// runs; the same range then answers the same from disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_that_leave_the_window_answer_alike_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = vec![
        ("SEXTANT_METRICS_SPAN_METRICS_INTERVAL_SECONDS", "1"),
        ("SEXTANT_METRICS_SPAN_METRICS_MAX_INTERVALS", "2"),
        ("SEXTANT_METRICS_SERVICE_GRAPH_INTERVAL_SECONDS", "1"),
        ("SEXTANT_METRICS_SERVICE_GRAPH_MAX_INTERVALS", "2"),
    ];
    settings.extend(SETTINGS);
    let server = start_server_with(dir.path(), &settings).await;
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let base = now - 300 * MS;
    let spans: [S; 3] = [
        (T1, "1000000000000001", "", "frontend", "GET /checkout", 2, 0, 200 * MS, false, ""),
        (T1, "1000000000000002", "1000000000000001", "frontend", "GET /cart", 3, 0, 100 * MS, false, ""),
        (T1, "1000000000000003", "1000000000000002", "cart", "GET /cart", 2, 0, 80 * MS, true, ""),
    ];
    post_otlp_json(&server, &request(&spans, base)).await;
    let (start, end) = (base - 10 * SECOND, base + 10 * SECOND);
    let urls = [
        query_url(
            &server,
            &format!("/api/v1/span-metrics?start={start}&end={end}&step=20s&groupBy=service,operation,status"),
        ),
        query_url(&server, &format!("/api/v1/service-graph?start={start}&end={end}")),
    ];
    let read = || async {
        let mut found = Vec::new();
        for url in &urls {
            let (status, body) = get_json(url).await;
            assert_eq!(status, 200, "{url}: {body}");
            found.push(body);
        }
        found
    };
    let in_memory = read().await;
    assert_eq!(
        series_calls(&in_memory[0]),
        [
            ("cart GET /cart error".to_string(), 1, 1),
            ("frontend GET /cart unset".to_string(), 1, 0),
            ("frontend GET /checkout unset".to_string(), 1, 0),
        ]
    );
    assert_eq!(
        edge_calls(&in_memory[1]),
        [("frontend".to_string(), "cart".to_string(), 1, 1), ("user".to_string(), "frontend".to_string(), 1, 0)]
    );

    // The window is 2 s and the metrics thread ticks every second.
    let written = r#"sextant_metrics_history_written_intervals_total{aggregator="span_metrics"}"#;
    let graph_written = r#"sextant_metrics_history_written_intervals_total{aggregator="service_graph"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = metrics_text(&server).await;
        if metric_value(&text, written) >= 1.0 && metric_value(&text, graph_written) >= 1.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no interval written: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Every span ended in the interval holding `base`, now older than the window.
    assert_eq!(interval_files(dir.path(), "span_metrics"), [format!("{:020}.sxmi", base - base % SECOND)]);
    assert_eq!(read().await, in_memory, "the same answers once the intervals are on disk");
    server.shutdown().await.unwrap();
}
