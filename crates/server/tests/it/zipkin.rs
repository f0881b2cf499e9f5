//! Zipkin v2 JSON, as Zipkin clients send it, read back through the native API.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// The fixture holds timestamps taken when it was written; shift them to now so they pass the
/// clock-skew and retention checks.
fn fixture_now() -> Vec<Value> {
    let mut spans: Vec<Value> = serde_json::from_str(include_str!("../fixtures/zipkin_shared.json")).unwrap();
    let first = spans[0]["timestamp"].as_u64().unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64 - 10_000_000;
    for span in &mut spans {
        let shifted = span["timestamp"].as_u64().unwrap() - first + now;
        span["timestamp"] = shifted.into();
        for annotation in span["annotations"].as_array_mut().into_iter().flatten() {
            let shifted = annotation["timestamp"].as_u64().unwrap() - first + now;
            annotation["timestamp"] = shifted.into();
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_spans_are_stored_and_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let url = format!("http://{}/api/v2/spans", server.zipkin_address);
    let response = reqwest::Client::new().post(&url).json(&fixture_now()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    // 64-bit trace ID: left-padded to 128 bits, and found by either form.
    let (status, trace) = get_json(&query_url(&server, "/api/v1/traces/5af7183fb1d4cf5f")).await;
    assert_eq!(status, 200, "{trace}");
    let (_, same) = get_json(&query_url(&server, "/api/v1/traces/00000000000000005af7183fb1d4cf5f")).await;
    assert_eq!(trace, same);
    let spans = otlp_spans(&trace);
    assert_eq!(spans.len(), 3, "client and server halves of the shared span are both kept: {trace}");
    assert!(spans.iter().all(|s| s["traceId"] == "00000000000000005af7183fb1d4cf5f"));

    let client = spans.iter().find(|s| s["kind"] == 3 && s["name"] == "get /api").expect("client span");
    let events: Vec<&str> = client["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["ws", "wr"], "annotations become events");
    let attrs = client["attributes"].as_array().unwrap();
    assert!(attrs.iter().any(|kv| kv["key"] == "http.method" && kv["value"]["stringValue"] == "GET"), "{client}");
    assert!(attrs.iter().any(|kv| kv["key"] == "peer.service" && kv["value"]["stringValue"] == "backend"), "{client}");

    let server_half = spans.iter().find(|s| s["kind"] == 2).expect("server span");
    assert_eq!(server_half["status"]["code"], 2, "error tag sets status error: {server_half}");

    let (_, services) = get_json(&query_url(&server, "/api/v1/services")).await;
    assert_eq!(services["services"], serde_json::json!(["backend", "frontend"]));
    let (_, found) = get_json(&query_url(&server, "/api/v1/search?service=backend&status=error")).await;
    assert_eq!(found["traces"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["traces"][0]["errorCount"], 1);

    // Not JSON: 400, and still serving.
    let response =
        reqwest::Client::new().post(&url).header("content-type", "application/json").body("[{").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let metrics = metrics_text(&server).await;
    assert_eq!(metric_value(&metrics, "sextant_spans_accepted_total{protocol=\"zipkin\"}"), 3.0, "{metrics}");
    assert_eq!(metric_value(&metrics, "sextant_requests_rejected_total{protocol=\"zipkin\",reason=\"decode\"}"), 1.0);
    server.shutdown().await.unwrap();
}
