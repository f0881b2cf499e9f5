//! The native query API on data sent over OTLP/HTTP JSON: search semantics, paging, trace
//! assembly across head and blocks, duplicates, errors.

use serde_json::{Value, json};

use crate::support::*;

const SECOND: u64 = 1_000_000_000;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

struct S<'a> {
    trace: &'a str,
    span: &'a str,
    parent: &'a str,
    name: &'a str,
    start: u64,
    duration: u64,
    error: bool,
    attributes: Value,
}

fn span(trace: &str, span: &str, parent: &str, name: &str, start: u64, duration: u64) -> S<'static> {
    S {
        trace: Box::leak(trace.to_string().into_boxed_str()),
        span: Box::leak(span.to_string().into_boxed_str()),
        parent: Box::leak(parent.to_string().into_boxed_str()),
        name: Box::leak(name.to_string().into_boxed_str()),
        start,
        duration,
        error: false,
        attributes: json!([]),
    }
}

async fn send(server: &sextant_server::serve::Server, service: &str, spans: &[S<'_>]) {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            json!({"traceId": s.trace, "spanId": s.span, "parentSpanId": s.parent, "name": s.name,
                   "kind": if s.parent.is_empty() { 2 } else { 3 },
                   "startTimeUnixNano": s.start.to_string(), "endTimeUnixNano": (s.start + s.duration).to_string(),
                   "attributes": s.attributes, "status": {"code": if s.error { 2 } else { 0 }}})
        })
        .collect();
    let body = json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}},
        {"key": "cloud.region", "value": {"stringValue": "us-east-1"}}]},
        "scopeSpans": [{"scope": {"name": "api-test"}, "spans": spans}]}]});
    post_otlp_json(server, &body).await;
}

async fn search(server: &sextant_server::serve::Server, query: &str) -> Vec<String> {
    let (status, body) = get_json(&query_url(server, &format!("/api/v1/search?{query}"))).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["traces"].as_array().unwrap().iter().map(|t| t["traceId"].as_str().unwrap().to_string()).collect()
}

const T1: &str = "11111111111111111111111111111111";
const T2: &str = "22222222222222222222222222222222";
const T3: &str = "33333333333333333333333333333333";

async fn three_traces(server: &sextant_server::serve::Server, base: u64) {
    // T1: gateway GET /cart 300ms → cart get_cart 100ms (status code 200)
    // T2: gateway GET /cart 50ms → cart get_cart 40ms, error, status code 500
    // T3: gateway POST /order 2s → payment charge 1.5s
    let mut c1 = span(T1, "0000000000000012", "0000000000000011", "get_cart", base + 10, 100_000_000);
    c1.attributes = json!([{"key": "http.response.status_code", "value": {"intValue": "200"}}]);
    let mut c2 = span(T2, "0000000000000022", "0000000000000021", "get_cart", base + SECOND + 10, 40_000_000);
    c2.attributes = json!([{"key": "http.response.status_code", "value": {"intValue": 500}}, {"key": "cart.items", "value": {"doubleValue": 2.5}}]);
    c2.error = true;
    send(
        server,
        "gateway",
        &[
            span(T1, "0000000000000011", "", "GET /cart", base, 300_000_000),
            span(T2, "0000000000000021", "", "GET /cart", base + SECOND, 50_000_000),
            span(T3, "0000000000000031", "", "POST /order", base + 2 * SECOND, 2 * SECOND),
        ],
    )
    .await;
    send(server, "cart", &[c1, c2]).await;
    send(
        server,
        "payment",
        &[span(T3, "0000000000000032", "0000000000000031", "charge", base + 2 * SECOND + 5, 1_500_000_000)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_order_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = now_nanos() - 60 * SECOND;
    three_traces(&server, base).await;

    assert_eq!(search(&server, "").await, vec![T3, T2, T1], "newest first");
    assert_eq!(search(&server, "service=cart").await, vec![T2, T1]);
    assert_eq!(search(&server, "service=payment").await, vec![T3]);
    assert_eq!(search(&server, "operation=GET%20/cart").await, vec![T2, T1]);
    assert_eq!(search(&server, "service=cart&operation=GET%20/cart").await, Vec::<String>::new(), "same span");
    assert_eq!(search(&server, "attr.http.response.status_code=500").await, vec![T2], "typed int match");
    assert_eq!(search(&server, "attr.cart.items=2.5").await, vec![T2], "typed double match");
    assert_eq!(search(&server, "attr.cloud.region=us-east-1&service=payment").await, vec![T3], "resource attribute");
    assert_eq!(search(&server, "status=error").await, vec![T2]);
    assert_eq!(search(&server, "minDuration=1s").await, vec![T3], "trace scope by default");
    assert_eq!(search(&server, "minDuration=250ms&maxDuration=1s").await, vec![T1]);
    assert_eq!(
        search(&server, "minDuration=90ms&maxDuration=120ms&durationScope=span").await,
        vec![T1],
        "the cart span of T1"
    );
    assert_eq!(search(&server, "minDuration=90ms&maxDuration=120ms").await, Vec::<String>::new());
    assert_eq!(search(&server, &format!("start={}&end={}", base + SECOND / 2, base + SECOND * 3 / 2)).await, vec![T2]);

    // Paging: limit 2, then the cursor gives the rest, then no cursor.
    let (_, page1) = get_json(&query_url(&server, "/api/v1/search?limit=2")).await;
    let ids: Vec<&str> = page1["traces"].as_array().unwrap().iter().map(|t| t["traceId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![T3, T2]);
    let cursor = page1["nextCursor"].as_str().expect("a next cursor");
    let (_, page2) = get_json(&query_url(&server, &format!("/api/v1/search?limit=2&cursor={cursor}"))).await;
    let ids: Vec<&str> = page2["traces"].as_array().unwrap().iter().map(|t| t["traceId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![T1]);
    assert!(page2["nextCursor"].is_null());

    // Summary fields.
    let (_, body) = get_json(&query_url(&server, "/api/v1/search?service=payment")).await;
    let t = &body["traces"][0];
    assert_eq!(t["rootService"], "gateway");
    assert_eq!(t["rootName"], "POST /order");
    assert_eq!(t["startTimeUnixNano"], (base + 2 * SECOND).to_string());
    assert_eq!(t["durationNanos"], (2 * SECOND).to_string());
    assert_eq!(t["spanCount"], 2);
    assert_eq!(t["errorCount"], 0);
    assert_eq!(t["services"], json!(["gateway", "payment"]));

    // Services and operations.
    let (_, services) = get_json(&query_url(&server, "/api/v1/services")).await;
    assert_eq!(services["services"], json!(["cart", "gateway", "payment"]));
    let (_, ops) = get_json(&query_url(&server, "/api/v1/services/gateway/operations")).await;
    assert_eq!(
        ops["operations"],
        json!([{"name": "GET /cart", "spanKind": "server"}, {"name": "POST /order", "spanKind": "server"}])
    );
    let (status, err) = get_json(&query_url(&server, "/api/v1/services/nope/operations")).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "service_not_found");

    // Errors are JSON with a code.
    let (status, err) = get_json(&query_url(&server, "/api/v1/search?minDuration=soon")).await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("minDuration"), "{err}");
    let (status, err) = get_json(&query_url(&server, "/api/v1/traces/abc")).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "invalid_trace_id");
    let (status, err) = get_json(&query_url(&server, "/api/v1/traces/44444444444444444444444444444444")).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "trace_not_found");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_merge_across_blocks_and_head_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = now_nanos() - 3 * 3600 * SECOND;
    // The root arrives, is flushed to a block; three hours later a late child arrives, twice
    // (a client retry), and stays in the head.
    send(&server, "batch", &[span(T1, "0000000000000001", "", "nightly", base, 3 * 3600 * SECOND)]).await;
    server.engine.flush().await.unwrap();
    assert_eq!(server.engine.manifest_snapshot().blocks.len(), 1);
    let late =
        || span(T1, "0000000000000002", "0000000000000001", "report", base + 3 * 3600 * SECOND - SECOND, SECOND / 2);
    send(&server, "reporter", &[late()]).await;
    send(&server, "reporter", &[late()]).await;

    let (status, trace) = get_json(&query_url(&server, &format!("/api/v1/traces/{T1}"))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = otlp_spans(&trace).iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["nightly", "report"], "block and head merged, duplicate dropped");
    assert_eq!(search(&server, "service=batch").await, vec![T1], "search finds spans in blocks");
    assert_eq!(search(&server, "service=reporter").await, vec![T1]);

    // Graceful shutdown flushes; a new server on the same directory has everything.
    server.shutdown().await.unwrap();
    let server = start_server(dir.path()).await;
    let (status, again) = get_json(&query_url(&server, &format!("/api/v1/traces/{T1}"))).await;
    assert_eq!(status, 200);
    assert_eq!(otlp_spans(&again).len(), 2);
    let (_, services) = get_json(&query_url(&server, "/api/v1/services")).await;
    assert_eq!(services["services"], json!(["batch", "reporter"]), "catalog rebuilt from block metadata");

    // Compaction merges the two blocks and drops the duplicate copy.
    let blocks_before = server.engine.manifest_snapshot().blocks.len();
    assert!(blocks_before >= 2, "{blocks_before}");
    let merged = server.engine.compact().await.unwrap();
    assert!(merged >= 1);
    let manifest = server.engine.manifest_snapshot();
    assert!(manifest.blocks.len() < blocks_before);
    assert_eq!(manifest.blocks.iter().map(|b| b.num_spans).sum::<u64>(), 2, "duplicate removed by compaction");
    let (_, after) = get_json(&query_url(&server, &format!("/api/v1/traces/{T1}"))).await;
    assert_eq!(after, again);
    server.shutdown().await.unwrap();
}
