//! The web UI on the query port (`api/ui.rs`) and the native endpoints it reads
//! (`api/native_traceql.rs`): served files and their cache headers, deep links answering
//! `index.html`, unknown API paths keeping their JSON 404, TraceQL search with positioned
//! parse errors, attribute keys and values.

use reqwest::header;
use serde_json::json;

use crate::support::*;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[tokio::test]
async fn serves_the_ui_with_deep_links_and_cache_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let client = reqwest::Client::new();

    let index = client.get(query_url(&server, "/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(index.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let etag = index.headers()[header::ETAG].clone();
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<div id="app">"#));

    let again = client.get(query_url(&server, "/")).header(header::IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged index is revalidated, not sent again");

    // A page of the UI, reloaded: the browser routes it, the server answers the index.
    let deep = client.get(query_url(&server, "/trace/0123456789abcdef0123456789abcdef?span=1")).send().await.unwrap();
    assert_eq!(deep.status(), 200);
    assert_eq!(deep.text().await.unwrap(), html);

    let script = html.split('"').find(|part| part.starts_with("/assets/") && part.ends_with(".js")).unwrap();
    let asset = client.get(query_url(&server, script)).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(asset.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));

    // Regression: the UI's fallback must not swallow unknown API paths or other methods.
    for (method, path) in [("GET", "/api/v1/no-such-endpoint"), ("GET", "/api"), ("POST", "/search")] {
        let response = client.request(method.parse().unwrap(), query_url(&server, path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn traceql_search_parse_errors_and_tags_for_the_ui() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let start = now_nanos() - 1_000_000_000;
    let span = |id: &str, parent: &str, name: &str, error: bool, attributes: serde_json::Value| {
        json!({"traceId": "000000000000000000000000000000aa", "spanId": id, "parentSpanId": parent, "name": name,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 5_000_000).to_string(),
               "attributes": attributes, "status": {"code": if error { 2 } else { 0 }}})
    };
    let body = json!({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeSpans": [{"spans": [
        span("00000000000000a1", "", "GET /cart", false, json!([{"key": "customer.tier", "value": {"stringValue": "gold"}}])),
        span("00000000000000a2", "00000000000000a1", "SELECT", true, json!([])),
    ]}]}]});
    post_otlp_json(&server, &body).await;

    let q = urlencode(r#"{ span.customer.tier = "gold" } >> { status = error }"#);
    let (status, found) = get_json(&query_url(&server, &format!("/api/v1/traceql/search?q={q}"))).await;
    assert_eq!(status, 200, "{found}");
    let trace = &found["traces"][0];
    assert_eq!(trace["traceId"], "000000000000000000000000000000aa", "leading zeros restored");
    assert_eq!((trace["spanCount"].as_u64(), trace["errorCount"].as_u64()), (Some(2), Some(1)));
    assert_eq!(trace["rootName"], "GET /cart");
    assert_eq!(trace["matchedSpans"][0]["name"], "SELECT");

    let bad = urlencode(r#"{ .a = }"#);
    let (status, error) = get_json(&query_url(&server, &format!("/api/v1/traceql/search?q={bad}"))).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "invalid_traceql");
    assert_eq!((error["error"]["offset"].as_u64(), error["error"]["column"].as_u64()), (Some(7), Some(8)));
    let (_, check) = get_json(&query_url(&server, &format!("/api/v1/traceql/parse?q={bad}"))).await;
    assert_eq!(check["valid"], false);
    assert_eq!(check["error"]["line"], 1);
    let (_, check) = get_json(&query_url(&server, &format!("/api/v1/traceql/parse?q={q}"))).await;
    assert_eq!(check, json!({"valid": true}));

    let (status, tags) = get_json(&query_url(&server, "/api/v1/tags")).await;
    assert_eq!(status, 200);
    assert_eq!(tags["span"], json!(["customer.tier"]));
    assert!(tags["resource"].as_array().unwrap().contains(&json!("service.name")));
    let (_, values) = get_json(&query_url(&server, "/api/v1/tags/customer.tier/values?scope=span")).await;
    assert_eq!(values, json!({"values": ["gold"], "truncated": false}));
    let (status, _) = get_json(&query_url(&server, "/api/v1/tags/customer.tier/values?scope=nowhere")).await;
    assert_eq!(status, 400);
    server.shutdown().await.unwrap();
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
