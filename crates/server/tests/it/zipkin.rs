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

fn zipkin_url(server: &sextant_server::serve::Server, path: &str) -> String {
    format!("http://{}{path}", server.zipkin_address)
}

async fn get_text(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Zipkin's query API on the Zipkin port: spans come back as they were sent, and searches find
/// them by service, span name, remote service, annotation query and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_query_api_gives_back_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    // Unpaired client spans become calls to their remote service at once (dependencies).
    let server = start_server_with(dir.path(), &[("SEXTANT_METRICS_SERVICE_GRAPH_WAIT_SECONDS", "0")]).await;
    let sent = fixture_now();
    let response = reqwest::Client::new().post(zipkin_url(&server, "/api/v2/spans")).json(&sent).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let (status, trace) = get_json(&zipkin_url(&server, "/api/v2/trace/5af7183fb1d4cf5f")).await;
    assert_eq!(status, 200, "{trace}");
    let read = trace.as_array().unwrap();
    assert_eq!(read.len(), 3, "{trace}");
    for (sent, read) in sent.iter().zip(read) {
        for field in ["traceId", "id", "parentId", "name", "kind", "timestamp", "duration", "shared"] {
            assert_eq!(sent.get(field), read.get(field), "{field}: sent {sent}, read {read}");
        }
        for field in ["localEndpoint", "remoteEndpoint", "annotations"] {
            let sent_field = sent.get(field).filter(|v| !v.is_null());
            assert_eq!(sent_field, read.get(field), "{field}: sent {sent}, read {read}");
        }
        // Every tag sent is read back; an error also reads as OpenTelemetry's status tags.
        for (key, value) in sent["tags"].as_object().unwrap() {
            assert_eq!(&read["tags"][key], value, "tag {key} of {read}");
        }
    }
    assert_eq!(read[1]["tags"]["otel.status_code"], "ERROR");
    let (_, same) = get_json(&zipkin_url(&server, "/api/v2/trace/00000000000000005af7183fb1d4cf5f")).await;
    assert_eq!(same, trace, "a 64-bit ID is found by either form");

    let (_, services) = get_json(&zipkin_url(&server, "/api/v2/services")).await;
    assert_eq!(services, serde_json::json!(["backend", "frontend"]));
    let (_, names) = get_json(&zipkin_url(&server, "/api/v2/spans?serviceName=backend")).await;
    assert_eq!(names, serde_json::json!(["get /api", "query"]));

    let count = |url: String| async move {
        let (status, traces) = get_json(&url).await;
        assert_eq!(status, 200, "{url}: {traces}");
        let traces = traces.as_array().unwrap().clone();
        for trace in &traces {
            assert_eq!(trace.as_array().unwrap().len(), 3, "whole traces: {trace}");
        }
        traces.len()
    };
    let traces = |query: &str| zipkin_url(&server, &format!("/api/v2/traces?{query}"));
    assert_eq!(count(traces("serviceName=backend")).await, 1);
    assert_eq!(count(traces("serviceName=backend&annotationQuery=error")).await, 1);
    assert_eq!(count(traces("serviceName=frontend&annotationQuery=error")).await, 0, "the error is backend's");
    assert_eq!(count(traces("serviceName=frontend&annotationQuery=http.method%3DGET")).await, 1);
    assert_eq!(count(traces("serviceName=frontend&annotationQuery=http.method%3DPOST")).await, 0);
    assert_eq!(count(traces("serviceName=backend&remoteServiceName=mysql")).await, 1);
    assert_eq!(count(traces("serviceName=frontend&remoteServiceName=mysql")).await, 0);
    assert_eq!(count(traces("serviceName=backend&spanName=query&minDuration=40000")).await, 1);
    assert_eq!(count(traces("serviceName=backend&spanName=query&minDuration=60000")).await, 0, "query took 50 ms");
    assert_eq!(count(traces("serviceName=backend&spanName=query&maxDuration=40000")).await, 0);
    assert_eq!(count(traces("serviceName=backend&endTs=1000&lookback=1000")).await, 0, "long ago");

    // The same trace through the native API.
    let (_, native) = get_json(&query_url(&server, "/api/v1/search?service=backend&operation=query")).await;
    assert_eq!(native["traces"][0]["traceId"], "00000000000000005af7183fb1d4cf5f");

    // Dependencies come from the service graph. frontend's client span names backend as its
    // remote service, and backend's shared server half has no parent span (a root call, not a
    // link): frontend → backend is a call to the remote service, not failed (the client span
    // is not an error). backend's client span to mysql, which sent no spans, is a call to it.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let (_, links) = get_json(&zipkin_url(&server, &format!("/api/v2/dependencies?endTs={now_ms}"))).await;
    assert_eq!(
        links,
        serde_json::json!([
            {"parent": "backend", "child": "mysql", "callCount": 1, "errorCount": 0},
            {"parent": "frontend", "child": "backend", "callCount": 1, "errorCount": 0},
        ])
    );
    let (status, text) = get_text(&zipkin_url(&server, "/api/v2/dependencies")).await;
    assert_eq!((status, text.as_str()), (400, "endTs is required"));

    let (_, keys) = get_json(&zipkin_url(&server, "/api/v2/autocompleteKeys")).await;
    for key in ["http.method", "http.path", "clnt/finagle.version", "sql.query", "http.status_code", "error"] {
        assert!(keys.as_array().unwrap().contains(&Value::String(key.into())), "{key} in {keys}");
    }
    let (_, values) = get_json(&zipkin_url(&server, "/api/v2/autocompleteValues?key=http.path")).await;
    assert_eq!(values, serde_json::json!(["/api"]));
    let (status, text) = get_text(&zipkin_url(&server, "/api/v2/autocompleteValues")).await;
    assert_eq!((status, text.as_str()), (400, "key is required"));

    let (status, many) =
        get_json(&zipkin_url(&server, "/api/v2/traceMany?traceIds=5af7183fb1d4cf5f,0123456789abcdef")).await;
    assert_eq!(status, 200);
    assert_eq!(many.as_array().unwrap().len(), 1, "only the stored one: {many}");
    assert_eq!(many[0], trace);

    let (status, text) = get_text(&zipkin_url(&server, "/api/v2/trace/0123456789abcdef")).await;
    assert_eq!((status, text.as_str()), (404, "trace 0123456789abcdef not found"));
    let (status, text) = get_text(&zipkin_url(&server, "/api/v2/trace/xyz")).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("hexadecimal"), "{text}");
    let (status, text) = get_text(&zipkin_url(&server, "/api/v2/spans")).await;
    assert_eq!((status, text.as_str()), (400, "serviceName is required"));
    let (status, text) = get_text(&traces("serviceName=backend&minDuration=5ms")).await;
    assert_eq!(status, 400);
    assert!(text.contains("minDuration must be a non-negative integer"), "{text}");
    server.shutdown().await.unwrap();
}
