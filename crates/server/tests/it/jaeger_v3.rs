//! Jaeger's api_v3 over HTTP on the query port: shapes, parameters and errors as Jaeger v2's
//! grpc-gateway serves them, and the same traces as the native API.

use serde_json::{Value, json};

use crate::support::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER: &str = "5bf92f3577b34da6a3ce929d0e0e4736";

fn rfc3339(nanos: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos);
    humantime::format_rfc3339_nanos(time).to_string()
}

async fn send(server: &sextant_server::serve::Server, base: u64) {
    let span = |trace: &str, id: &str, parent: &str, name: &str, kind: u8, offset: u64, duration: u64, attrs: Value| {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": kind,
               "startTimeUnixNano": (base + offset).to_string(), "endTimeUnixNano": (base + offset + duration).to_string(),
               "attributes": attrs})
    };
    let method = |m: &str| json!([{"key": "http.request.method", "value": {"stringValue": m}}]);
    let body = json!({"resourceSpans": [
    {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
     "scopeSpans": [{"scope": {"name": "v3-test"}, "spans": [
        span(TRACE, "00f067aa0ba902b7", "", "POST /checkout", 2, 0, 300_000_000, method("POST")),
        span(OTHER, "10f067aa0ba902b7", "", "GET /cart", 2, 1_000_000, 20_000_000, method("GET")),
     ]}]},
    {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payment"}}]},
     "scopeSpans": [{"scope": {"name": "v3-test"}, "spans": [
        span(TRACE, "00f067aa0ba902b8", "00f067aa0ba902b7", "charge", 3, 10_000_000, 200_000_000, json!([])),
     ]}]}]});
    post_otlp_json(server, &body).await;
}

fn span_ids(result: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        otlp_spans(&result["result"]).iter().map(|s| s["spanId"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v3_answers_as_jaeger_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = sextant_model::now_unix_nanos() - 60_000_000_000;
    send(&server, base).await;
    let url = |path: &str| query_url(&server, path);

    let (_, services) = get_json(&url("/api/v3/services")).await;
    assert_eq!(services, json!({"services": ["checkout", "payment"]}));
    let (_, operations) = get_json(&url("/api/v3/operations?service=checkout")).await;
    assert_eq!(
        operations,
        json!({"operations": [{"name": "GET /cart", "spanKind": "server"}, {"name": "POST /checkout", "spanKind": "server"}]})
    );
    let (_, clients) = get_json(&url("/api/v3/operations?service=payment&spanKind=client")).await;
    assert_eq!(clients, json!({"operations": [{"name": "charge", "spanKind": "client"}]}));
    let (_, none) = get_json(&url("/api/v3/operations?service=payment&span_kind=server")).await;
    assert_eq!(none, json!({"operations": []}));

    // A trace by ID: every span, OTLP/JSON under "result"; the same as the native API's.
    let (status, trace) = get_json(&url(&format!("/api/v3/traces/{TRACE}"))).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(span_ids(&trace), ["00f067aa0ba902b7", "00f067aa0ba902b8"]);
    let (_, native) = get_json(&url(&format!("/api/v1/traces/{TRACE}"))).await;
    assert_eq!(trace["result"], native);

    // Find traces: the time range is required; filters hold on one span.
    let window =
        format!("query.startTimeMin={}&query.startTimeMax={}", rfc3339(base - 1_000), rfc3339(base + 5_000_000_000));
    let find = |filters: &str| url(&format!("/api/v3/traces?{window}&{filters}"));
    let (status, found) = get_json(&find("query.serviceName=checkout")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(span_ids(&found), ["00f067aa0ba902b7", "00f067aa0ba902b8", "10f067aa0ba902b7"], "whole traces");
    let (_, found) = get_json(&find("query.serviceName=checkout&query.operationName=GET%20/cart")).await;
    assert_eq!(span_ids(&found), ["10f067aa0ba902b7"]);
    let (_, found) = get_json(&find("query.service_name=payment&query.duration_min=150ms")).await;
    assert_eq!(span_ids(&found), ["00f067aa0ba902b7", "00f067aa0ba902b8"], "older parameter names");
    let attributes = "query.attributes=%7B%22http.request.method%22%3A%22POST%22%7D";
    let (_, found) = get_json(&find(&format!("query.serviceName=checkout&{attributes}"))).await;
    assert_eq!(span_ids(&found), ["00f067aa0ba902b7", "00f067aa0ba902b8"]);
    let (_, found) = get_json(&find("query.serviceName=checkout&query.searchDepth=1")).await;
    assert_eq!(span_ids(&found), ["10f067aa0ba902b7"], "the newest trace");

    // Summaries: newest first, counts per service.
    let (status, summaries) =
        get_json(&url(&format!("/api/v3/trace-summaries?{window}&query.serviceName=checkout"))).await;
    assert_eq!(status, 200, "{summaries}");
    let checkout = summaries["summaries"].as_array().unwrap().iter().find(|s| s["traceId"] == TRACE).unwrap().clone();
    assert_eq!(summaries["summaries"][0]["traceId"], OTHER, "the newest first");
    assert_eq!(
        checkout,
        json!({"traceId": TRACE, "rootServiceName": "checkout", "rootOperationName": "POST /checkout",
               "minStartTimeUnixNano": base.to_string(), "maxEndTimeUnixNano": (base + 300_000_000).to_string(),
               "spanCount": 2, "errorSpanCount": 0, "orphanSpanCount": 0,
               "services": [{"name": "checkout", "spanCount": 1, "errorSpanCount": 0},
                            {"name": "payment", "spanCount": 1, "errorSpanCount": 0}]})
    );
    let (_, none) = get_json(&url(&format!("/api/v3/trace-summaries?{window}&query.serviceName=nobody"))).await;
    assert_eq!(none, json!({"summaries": []}));

    // Errors as Jaeger gives them.
    let (status, error) = get_json(&find("query.serviceName=payment&query.durationMin=1s")).await;
    assert_eq!((status, error), (404, json!({"error": {"httpCode": 404, "message": "No traces found"}})));
    let (status, error) = get_json(&url("/api/v3/traces/0123456789abcdef0123456789abcdef")).await;
    assert_eq!((status, error), (404, json!({"error": {"httpCode": 404, "message": "No traces found"}})));
    let (status, error) = get_json(&url("/api/v3/traces?query.serviceName=checkout")).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["message"], "query.startTimeMin and query.startTimeMax are required");
    let (status, error) = get_json(&url("/api/v3/traces/nothex")).await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("malformed parameter trace_id:"), "{error}");

    // A UI served from another origin may call the query port.
    let response =
        reqwest::Client::new().get(url("/api/v3/services")).header("origin", "http://ui.example").send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    server.shutdown().await.unwrap();
}
