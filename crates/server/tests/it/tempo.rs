//! Tempo's HTTP API on its own port: traces by ID in JSON and protobuf, search by tags and by
//! TraceQL, tag names and values, as Grafana's Tempo data source calls them.

use prost::Message;
use serde_json::{Value, json};
use sextant_codec::proto::tonic::trace::v1::TracesData;

use crate::support::*;

/// checkout: gateway POST /checkout → cart GET /cart (error) → db SELECT; other: gateway GET /health.
const CHECKOUT: &str = "0af7651916cd43dd8448eb211c80319c";
const OTHER: &str = "1af7651916cd43dd8448eb211c80319c";

async fn send(server: &sextant_server::serve::Server, base: u64) {
    let span = |trace: &str, id: &str, parent: &str, name: &str, offset: u64, ms: u64, attrs: Value, error: bool| {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": 2,
               "startTimeUnixNano": (base + offset).to_string(), "endTimeUnixNano": (base + offset + ms * 1_000_000).to_string(),
               "attributes": attrs, "status": {"code": if error { 2 } else { 0 }}})
    };
    let resource = |service: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
               "scopeSpans": [{"scope": {"name": "tempo-test"}, "spans": spans}]})
    };
    let method = |m: &str| json!([{"key": "http.method", "value": {"stringValue": m}}]);
    let body = json!({"resourceSpans": [
        resource("gateway", vec![
            span(CHECKOUT, "0000000000000001", "", "POST /checkout", 0, 300, method("POST"), false),
            span(OTHER, "0000000000000011", "", "GET /health", 1_000_000, 2, method("GET"), false),
        ]),
        resource("cart", vec![span(CHECKOUT, "0000000000000002", "0000000000000001", "GET /cart", 1_000, 200, method("GET"), true)]),
        resource("db", vec![span(CHECKOUT, "0000000000000003", "0000000000000002", "SELECT", 2_000, 150,
            json!([{"key": "db.rows", "value": {"intValue": "3"}}]), false)]),
    ]});
    post_otlp_json(server, &body).await;
}

fn span_count(data: &TracesData) -> usize {
    data.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_api_answers_as_tempo_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = sextant_model::now_unix_nanos() - 60_000_000_000;
    send(&server, base).await;
    let tempo = |path: &str| format!("http://{}{path}", server.tempo_address);
    let text = |url: String| async move {
        let response = reqwest::get(&url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    assert_eq!(text(tempo("/ready")).await, (200, "ready".into()));
    assert_eq!(text(tempo("/api/echo")).await, (200, "echo".into()));
    let (_, info) = get_json(&tempo("/api/status/buildinfo")).await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    // Trace by ID: JSON with base64 IDs, and protobuf when asked.
    let (status, v1) = get_json(&tempo(&format!("/api/traces/{CHECKOUT}"))).await;
    assert_eq!(status, 200, "{v1}");
    let spans: Vec<&Value> = v1["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["scopeSpans"].as_array().unwrap())
        .flat_map(|s| s["spans"].as_array().unwrap())
        .collect();
    assert_eq!(spans.len(), 3);
    assert!(spans.iter().all(|s| s["traceId"] == "CvdlGRbNQ92ESOshHIAxnA=="), "{v1}");
    let (_, v2) = get_json(&tempo(&format!("/api/v2/traces/{CHECKOUT}"))).await;
    assert_eq!(v2["trace"]["resourceSpans"], v1["batches"]);
    let client = reqwest::Client::new();
    for (path, wrapped) in [(format!("/api/traces/{CHECKOUT}"), false), (format!("/api/v2/traces/{CHECKOUT}"), true)] {
        let response = client.get(tempo(&path)).header("accept", "application/protobuf").send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/protobuf");
        let bytes = response.bytes().await.unwrap();
        let data = if wrapped {
            // TraceByIDResponse: field 1 holds the trace.
            #[derive(Clone, PartialEq, prost::Message)]
            struct TraceByIdResponse {
                #[prost(message, optional, tag = "1")]
                trace: Option<TracesData>,
            }
            TraceByIdResponse::decode(bytes).unwrap().trace.unwrap()
        } else {
            TracesData::decode(bytes).unwrap()
        };
        assert_eq!(span_count(&data), 3, "{path}");
    }
    assert_eq!(text(tempo("/api/traces/0123456789abcdef")).await, (404, "trace not found".into()));
    assert_eq!(text(tempo("/api/traces/zz")).await.0, 400);

    // Search: tags, then TraceQL; newest first, span sets with the matching spans.
    let search = |query: &str| {
        let url = tempo(&format!("/api/search?{query}"));
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{url}: {body}");
            body
        }
    };
    let ids = |body: &Value| {
        body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let found = search("tags=service.name%3Dgateway").await;
    assert_eq!(ids(&found), [OTHER.trim_start_matches('0'), CHECKOUT.trim_start_matches('0')]);
    assert_eq!(found["traces"][1]["rootServiceName"], "gateway");
    assert_eq!(found["traces"][1]["rootTraceName"], "POST /checkout");
    assert_eq!(found["traces"][1]["durationMs"], 300);
    assert_eq!(found["traces"][1]["spanSet"]["matched"], 1);
    let found = search("tags=status.code%3Derror%20http.method%3DGET&minDuration=250ms").await;
    assert_eq!(ids(&found), [CHECKOUT.trim_start_matches('0')], "cart's error span, trace of 300 ms");
    assert_eq!(found["traces"][0]["spanSet"]["spans"][0]["spanID"], "0000000000000002");

    let traceql = |q: &str| format!("q={}", urlencode(q));
    let found = search(&traceql(r#"{ resource.service.name = "cart" && span.http.method = "GET" }"#)).await;
    assert_eq!(ids(&found), [CHECKOUT.trim_start_matches('0')]);
    let found = search(&traceql(r#"{ span.http.method = "GET" }"#)).await;
    assert_eq!(ids(&found).len(), 2);
    let found = search(&traceql(r#"{ name = "POST /checkout" } >> { resource.service.name = "db" }"#)).await;
    assert_eq!(ids(&found), [CHECKOUT.trim_start_matches('0')]);
    assert_eq!(found["traces"][0]["spanSet"]["spans"][0]["spanID"], "0000000000000003", "the descendant");
    let range = format!("start={}&end={}", base / 1_000_000_000 - 1, base / 1_000_000_000 + 10);
    let found = search(&format!("{}&{range}", traceql("{ } | count() > 2"))).await;
    assert_eq!(ids(&found), [CHECKOUT.trim_start_matches('0')]);
    assert_eq!(found["traces"][0]["spanSet"]["matched"], 3);
    let found = search(&format!("{}&spss=1", traceql("{ duration > 100ms }"))).await;
    assert_eq!(found["traces"][0]["spanSet"]["matched"], 3);
    assert_eq!(found["traces"][0]["spanSet"]["spans"].as_array().unwrap().len(), 1, "spss lists one");
    let found = search(&format!("{}&limit=1&{range}", traceql("{ }"))).await;
    assert_eq!(ids(&found), [OTHER.trim_start_matches('0')], "the newest");
    // The same as the native API finds.
    let (_, native) = get_json(&query_url(&server, "/api/v1/search?service=cart&attr.http.method=GET")).await;
    assert_eq!(native["traces"][0]["traceId"], CHECKOUT);

    // A query that would read every trace needs a time range.
    let (status, message) = text(tempo(&format!("/api/search?{}", traceql(r#"{ name != "x" }"#)))).await;
    assert_eq!(status, 400);
    assert!(message.contains("give start and end to search a time range"), "{message}");
    let found = search(&format!("{}&{range}", traceql(r#"{ name != "x" }"#))).await;
    assert_eq!(ids(&found).len(), 2);

    let (status, message) = text(tempo(&format!("/api/search?{}", traceql("{ name = }")))).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("invalid TraceQL query: line 1, column 10"), "{message}");

    // Tags.
    let (_, names) = get_json(&tempo("/api/search/tags")).await;
    assert_eq!(names, json!({"tagNames": ["db.rows", "http.method", "service.name"]}));
    let (_, scopes) = get_json(&tempo("/api/v2/search/tags")).await;
    let scope =
        |name: &str| scopes["scopes"].as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["tags"].clone());
    assert_eq!(scope("resource"), Some(json!(["service.name"])));
    assert_eq!(scope("span"), Some(json!(["db.rows", "http.method"])));
    assert!(scope("intrinsic").unwrap().as_array().unwrap().contains(&json!("rootServiceName")));
    let (_, values) = get_json(&tempo("/api/v2/search/tag/resource.service.name/values")).await;
    assert_eq!(
        values["tagValues"],
        json!([{"type": "string", "value": "cart"}, {"type": "string", "value": "db"}, {"type": "string", "value": "gateway"}])
    );
    let (_, values) = get_json(&tempo("/api/v2/search/tag/span.db.rows/values")).await;
    assert_eq!(values["tagValues"], json!([{"type": "int", "value": "3"}]));
    let (_, values) = get_json(&tempo("/api/v2/search/tag/status/values")).await;
    assert_eq!(values["tagValues"][0], json!({"type": "keyword", "value": "error"}));
    let (_, values) = get_json(&tempo("/api/search/tag/http.method/values")).await;
    assert_eq!(values, json!({"tagValues": ["GET", "POST"]}));
    server.shutdown().await.unwrap();
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
