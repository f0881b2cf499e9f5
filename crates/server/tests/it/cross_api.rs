//! The same data through every query API: the native API, Jaeger's v1 and api_v3, Tempo's and
//! Zipkin's find the same traces for the same search and give the same spans for a trace.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::*;

/// Any API's trace ID (hex, with or without leading zeros; or base64) as a number.
fn id(text: &str) -> u128 {
    u128::from_str_radix(text, 16).unwrap_or_else(|_| panic!("not a hex trace ID: {text}"))
}

fn span_id(text: &str) -> u64 {
    u64::from_str_radix(text, 16).unwrap()
}

async fn send(server: &sextant_server::serve::Server, base: u64, traces: std::ops::Range<u64>) {
    // Ten traces: shop → stock (GET /stock) for even ones, shop → pay (POST /pay, error) for odd.
    let mut resource_spans = Vec::new();
    for t in traces {
        let trace = format!("{:032x}", 0xabc0_0000_0000_0000_0000_0000_0000_0000u128 + t as u128);
        let start = base + t * 1_000_000_000;
        let (callee, name, error) =
            if t % 2 == 0 { ("stock", "GET /stock", false) } else { ("pay", "POST /pay", true) };
        let span = |id: u64, parent: &str, name: &str, offset: u64, error: bool| {
            json!({"traceId": trace, "spanId": format!("{id:016x}"), "parentSpanId": parent, "name": name, "kind": 2,
                   "startTimeUnixNano": (start + offset).to_string(), "endTimeUnixNano": (start + offset + 50_000_000).to_string(),
                   "attributes": [{"key": "tenant", "value": {"stringValue": if t < 5 { "a" } else { "b" }}}],
                   "status": {"code": if error { 2 } else { 0 }}})
        };
        let root_id = 0x100 + t;
        resource_spans
            .push(json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [{"scope": {"name": "cross"}, "spans": [span(root_id, "", "checkout", 0, false)]}]}));
        resource_spans.push(json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": callee}}]},
            "scopeSpans": [{"scope": {"name": "cross"}, "spans": [span(0x200 + t, &format!("{root_id:016x}"), name, 1_000, error)]}]}));
    }
    post_otlp_json(server, &json!({"resourceSpans": resource_spans})).await;
}

async fn get(url: String) -> Value {
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{url}: {body}");
    body
}

fn strings<'a>(values: impl IntoIterator<Item = &'a Value>, field: &str) -> Vec<String> {
    values.into_iter().map(|v| v[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_finds_the_same_traces_and_spans() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = sextant_model::now_unix_nanos() - 120_000_000_000;
    // Half the traces in a block, the rest in the head: every API reads both.
    send(&server, base, 0..6).await;
    server.engine.flush().await.unwrap();
    send(&server, base, 6..10).await;
    let query = |path: &str| query_url(&server, path);
    let tempo = |path: &str| format!("http://{}{path}", server.tempo_address);
    let zipkin = |path: &str| format!("http://{}{path}", server.zipkin_address);
    let (start_s, end_s) = (base / 1_000_000_000 - 1, base / 1_000_000_000 + 20);
    let (start_us, end_us) = (start_s * 1_000_000, end_s * 1_000_000);

    // Traces with an error span of service pay and tenant b: odd traces 5, 7, 9, newest first.
    let expected: Vec<u128> = [9u128, 7, 5].iter().map(|t| 0xabc0_0000_0000_0000_0000_0000_0000_0000 + t).collect();
    let native = get(query("/api/v1/search?service=pay&attr.tenant=b&status=error")).await;
    let native: Vec<u128> = strings(native["traces"].as_array().unwrap(), "traceId").iter().map(|t| id(t)).collect();
    assert_eq!(native, expected);

    let jaeger = get(query(&format!(
        "/api/traces?service=pay&tags=%7B%22tenant%22%3A%22b%22%2C%22error%22%3A%22true%22%7D&start={start_us}&end={end_us}"
    )))
    .await;
    let jaeger: Vec<u128> = strings(jaeger["data"].as_array().unwrap(), "traceID").iter().map(|t| id(t)).collect();
    assert_eq!(jaeger, expected, "Jaeger v1");

    let tempo_tags = get(tempo(&format!(
        "/api/search?tags=service.name%3Dpay%20tenant%3Db%20status.code%3Derror&start={start_s}&end={end_s}"
    )))
    .await;
    let tempo_tags: Vec<u128> =
        strings(tempo_tags["traces"].as_array().unwrap(), "traceID").iter().map(|t| id(t)).collect();
    assert_eq!(tempo_tags, expected, "Tempo tags");
    let q = "%7B%20resource.service.name%20%3D%20%22pay%22%20%26%26%20.tenant%20%3D%20%22b%22%20%26%26%20status%20%3D%20error%20%7D";
    let tempo_q = get(tempo(&format!("/api/search?q={q}&start={start_s}&end={end_s}"))).await;
    let tempo_q: Vec<u128> = strings(tempo_q["traces"].as_array().unwrap(), "traceID").iter().map(|t| id(t)).collect();
    assert_eq!(tempo_q, expected, "Tempo TraceQL");

    let zipkin_found = get(zipkin(&format!(
        "/api/v2/traces?serviceName=pay&annotationQuery=tenant%3Db%20and%20error&endTs={}&lookback=60000",
        end_s * 1000
    )))
    .await;
    let zipkin_found: Vec<u128> =
        zipkin_found.as_array().unwrap().iter().map(|trace| id(trace[0]["traceId"].as_str().unwrap())).collect();
    assert_eq!(zipkin_found, expected, "Zipkin");

    let v3 = get(query(&format!(
        "/api/v3/traces?query.serviceName=pay&query.attributes=%7B%22tenant%22%3A%22b%22%7D&query.startTimeMin={}&query.startTimeMax={}",
        humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_secs(start_s)),
        humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_secs(end_s)),
    )))
    .await;
    let v3: BTreeSet<u128> = otlp_spans(&v3["result"]).iter().map(|s| id(s["traceId"].as_str().unwrap())).collect();
    assert_eq!(v3, expected.iter().copied().collect(), "Jaeger api_v3 (no status filter: the same traces here)");

    // One trace through each API: the same span IDs.
    let trace = format!("{:032x}", expected[0]);
    let from_native: BTreeSet<u64> = otlp_spans(&get(query(&format!("/api/v1/traces/{trace}"))).await)
        .iter()
        .map(|s| span_id(s["spanId"].as_str().unwrap()))
        .collect();
    assert_eq!(from_native.len(), 2);
    let jaeger_trace = get(query(&format!("/api/traces/{trace}"))).await;
    let from_jaeger: BTreeSet<u64> = jaeger_trace["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| span_id(s["spanID"].as_str().unwrap()))
        .collect();
    assert_eq!(from_jaeger, from_native, "Jaeger v1");
    let v3_trace = get(query(&format!("/api/v3/traces/{trace}"))).await;
    let from_v3: BTreeSet<u64> =
        otlp_spans(&v3_trace["result"]).iter().map(|s| span_id(s["spanId"].as_str().unwrap())).collect();
    assert_eq!(from_v3, from_native, "Jaeger api_v3");
    let zipkin_trace = get(zipkin(&format!("/api/v2/trace/{trace}"))).await;
    let from_zipkin: BTreeSet<u64> =
        zipkin_trace.as_array().unwrap().iter().map(|s| span_id(s["id"].as_str().unwrap())).collect();
    assert_eq!(from_zipkin, from_native, "Zipkin");
    let tempo_trace = get(tempo(&format!("/api/v2/traces/{trace}"))).await;
    use base64::Engine as _;
    let from_tempo: BTreeSet<u64> = otlp_spans(&tempo_trace["trace"])
        .iter()
        .map(|s| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s["spanId"].as_str().unwrap()).unwrap();
            u64::from_be_bytes(bytes.try_into().unwrap())
        })
        .collect();
    assert_eq!(from_tempo, from_native, "Tempo");
    server.shutdown().await.unwrap();
}
