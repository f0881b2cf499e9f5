//! TraceQL metrics through Tempo's `/api/metrics/query_range` and `/api/metrics/query`: exact
//! series for known spans, exemplars that resolve through the trace API, precise errors, and
//! the answer marked partial when the read bound is hit.

use serde_json::{Value, json};

use crate::support::*;

const SECOND: u64 = 1_000_000_000;
const TRACE_A: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
const TRACE_B: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const TRACE_C: &str = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c";

/// One OTLP/JSON span.
struct Span {
    trace: &'static str,
    id: &'static str,
    parent: &'static str,
    name: &'static str,
    start_ms: u64,
    duration_ms: u64,
    error: bool,
}

/// Steps of 10 s from `t0`: (t0, t0+10s], (t0+10s, t0+20s], (t0+20s, t0+30s].
///
/// | trace | service | span          | start  | duration | status |
/// |-------|---------|---------------|--------|----------|--------|
/// | A     | gateway | GET /checkout | +1 s   | 100 ms   |        |
/// | A     | cart    | GET /cart     | +2 s   | 50 ms    |        |
/// | B     | gateway | GET /checkout | +12 s  | 300 ms   | error  |
/// | B     | cart    | GET /cart     | +13 s  | 5 ms     |        |
/// | C     | gateway | POST /pay     | +25 s  | 1 s      |        |
async fn send(server: &sextant_server::serve::Server, t0: u64) {
    let json_span = |s: &Span| {
        let start = t0 + s.start_ms * 1_000_000;
        json!({"traceId": s.trace, "spanId": s.id, "parentSpanId": s.parent, "name": s.name, "kind": 2,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + s.duration_ms * 1_000_000).to_string(),
               "status": {"code": if s.error { 2 } else { 0 }}})
    };
    let resource = |service: &str, spans: &[Span]| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
               "scopeSpans": [{"scope": {"name": "metrics-test"}, "spans": spans.iter().map(json_span).collect::<Vec<_>>()}]})
    };
    let span = |trace, id, parent, name, start_ms, duration_ms, error| Span {
        trace,
        id,
        parent,
        name,
        start_ms,
        duration_ms,
        error,
    };
    let gateway = [
        span(TRACE_A, "00000000000000a1", "", "GET /checkout", 1_000, 100, false),
        span(TRACE_B, "00000000000000b1", "", "GET /checkout", 12_000, 300, true),
        span(TRACE_C, "00000000000000c1", "", "POST /pay", 25_000, 1_000, false),
    ];
    let cart = [
        span(TRACE_A, "00000000000000a2", "00000000000000a1", "GET /cart", 2_000, 50, false),
        span(TRACE_B, "00000000000000b2", "00000000000000b1", "GET /cart", 13_000, 5, false),
    ];
    post_otlp_json(server, &json!({"resourceSpans": [resource("gateway", &gateway), resource("cart", &cart)]})).await;
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Each series as its labels (key = value text) and its (seconds after t0, value) samples.
fn table(body: &Value, t0: u64) -> Vec<(String, Vec<(u64, f64)>)> {
    let t0_ms = t0 / 1_000_000;
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let labels: Vec<String> = series["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let value = &l["value"];
                    let text = value
                        .get("stringValue")
                        .or_else(|| value.get("doubleValue"))
                        .or_else(|| value.get("intValue"))
                        .map_or("nil".to_string(), |v| v.to_string().trim_matches('"').to_string());
                    format!("{}={text}", l["key"].as_str().unwrap())
                })
                .collect();
            let samples = series["samples"]
                .as_array()
                .map(|samples| {
                    samples
                        .iter()
                        .map(|s| {
                            let ms: u64 = s["timestampMs"].as_str().unwrap().parse().unwrap();
                            ((ms - t0_ms) / 1000, s["value"].as_f64().unwrap())
                        })
                        .collect()
                })
                .unwrap_or_default();
            (labels.join(","), samples)
        })
        .collect()
}

fn rows(expected: &[(&str, &[(u64, f64)])]) -> Vec<(String, Vec<(u64, f64)>)> {
    expected.iter().map(|(labels, samples)| (labels.to_string(), samples.to_vec())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_metrics_answer_exact_series_with_exemplars() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let now = sextant_model::now_unix_nanos();
    let t0 = (now - 600 * SECOND) / (10 * SECOND) * (10 * SECOND);
    send(&server, t0).await;
    let tempo = |path: &str| format!("http://{}{path}", server.tempo_address);
    let range = |q: &str, extra: &str| {
        tempo(&format!(
            "/api/metrics/query_range?q={}&start={}&end={}&step=10s{extra}",
            encode(q),
            t0 / SECOND,
            t0 / SECOND + 30
        ))
    };
    let ok = |url: String| async move {
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        body
    };

    // rate() by service: spans per second of each 10 s step, reported at the step's end.
    let body = ok(range("{ } | rate() by (resource.service.name)", "")).await;
    assert_eq!(
        table(&body, t0),
        rows(&[
            ("resource.service.name=cart", &[(10, 0.1), (20, 0.1), (30, 0.0)]),
            ("resource.service.name=gateway", &[(10, 0.1), (20, 0.1), (30, 0.1)]),
        ])
    );
    assert_eq!(
        body["series"][0]["labels"],
        json!([{"key": "resource.service.name", "value": {"stringValue": "cart"}}])
    );
    assert_eq!(body["series"][0]["promLabels"], r#"{resource.service.name="cart"}"#);
    assert_eq!(body["series"][0]["samples"][0]["timestampMs"], ((t0 + 10 * SECOND) / 1_000_000).to_string());
    assert_eq!(body["metrics"]["inspectedTraces"], 3);
    assert_eq!(body["metrics"]["inspectedSpans"], "5");
    assert!(body.get("status").is_none(), "complete: {body}");

    // quantile_over_time: power-of-two buckets, a `p` label per quantile.
    let body = ok(range("{ resource.service.name = \"gateway\" } | quantile_over_time(duration, .5, .9)", "")).await;
    let (b27, b29, b30) = (0.134217728, 0.536870912, 1.073741824);
    assert_eq!(
        table(&body, t0),
        rows(&[("p=0.5", &[(10, b27), (20, b29), (30, b30)]), ("p=0.9", &[(10, b27), (20, b29), (30, b30)])])
    );
    assert_eq!(body["series"][0]["labels"], json!([{"key": "p", "value": {"doubleValue": 0.5}}]));

    // histogram_over_time: one series per bucket, `__bucket` in seconds.
    let body = ok(range("{ } | histogram_over_time(duration) by (resource.service.name)", "")).await;
    assert_eq!(
        table(&body, t0),
        rows(&[
            ("resource.service.name=cart,__bucket=0.008388608", &[(10, 0.0), (20, 1.0), (30, 0.0)]),
            ("resource.service.name=cart,__bucket=0.067108864", &[(10, 1.0), (20, 0.0), (30, 0.0)]),
            ("resource.service.name=gateway,__bucket=0.134217728", &[(10, 1.0), (20, 0.0), (30, 0.0)]),
            ("resource.service.name=gateway,__bucket=0.536870912", &[(10, 0.0), (20, 1.0), (30, 0.0)]),
            ("resource.service.name=gateway,__bucket=1.073741824", &[(10, 0.0), (20, 0.0), (30, 1.0)]),
        ])
    );

    // topk(1) by name: GET /cart and GET /checkout tie at 1 in the first two steps, the
    // smaller label wins; POST /pay leads the last.
    let body = ok(range("{ } | count_over_time() by (name) | topk(1)", "")).await;
    assert_eq!(
        table(&body, t0),
        rows(&[("name=GET /cart", &[(10, 1.0), (20, 1.0)]), ("name=POST /pay", &[(30, 1.0)])])
    );

    // compare(): the error span against the rest.
    let body = ok(range("{ } | compare({ status = error })", "")).await;
    let compare = table(&body, t0);
    let series = |labels: &str| compare.iter().find(|(l, _)| l == labels).map(|(_, s)| s.clone());
    assert_eq!(series("__meta_type=selection,name=GET /checkout"), Some(vec![(10, 0.0), (20, 1.0), (30, 0.0)]));
    assert_eq!(series("__meta_type=baseline,name=GET /checkout"), Some(vec![(10, 1.0), (20, 0.0), (30, 0.0)]));
    assert_eq!(series("__meta_type=baseline,resource.service.name=cart"), Some(vec![(10, 1.0), (20, 1.0), (30, 0.0)]));
    assert_eq!(series("__meta_type=baseline_total,name=nil"), Some(vec![(10, 2.0), (20, 1.0), (30, 1.0)]));
    assert_eq!(series("__meta_type=selection_total,status=nil"), Some(vec![(10, 0.0), (20, 1.0), (30, 0.0)]));

    // Exemplars: the slowest gateway span of each trace, which the trace API resolves.
    let body = ok(range("{ resource.service.name = \"gateway\" } | max_over_time(duration)", "&exemplars=10")).await;
    assert_eq!(table(&body, t0), rows(&[("__name__=max_over_time", &[(10, 0.1), (20, 0.3), (30, 1.0)])]));
    let exemplars = body["series"][0]["exemplars"].as_array().unwrap().clone();
    let mut found: Vec<(String, f64)> = Vec::new();
    for exemplar in &exemplars {
        assert_eq!(exemplar["labels"][0]["key"], "trace:id");
        assert_eq!(exemplar["labels"][1]["key"], "span:id");
        let trace_id = exemplar["labels"][0]["value"]["stringValue"].as_str().unwrap().to_string();
        let span_id = exemplar["labels"][1]["value"]["stringValue"].as_str().unwrap();
        let value = exemplar["value"].as_f64().unwrap();
        let (status, trace) = get_json(&tempo(&format!("/api/v2/traces/{trace_id}"))).await;
        assert_eq!(status, 200, "exemplar trace {trace_id} resolves");
        let spans = otlp_spans(&trace["trace"]);
        let base64_span_id = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(hex::decode(span_id).unwrap())
        };
        let span = spans.iter().find(|s| s["spanId"] == base64_span_id).expect("the exemplar's span is in its trace");
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert_eq!((end - start) as f64 / 1e9, value, "the exemplar's value is its span's duration");
        assert_eq!(exemplar["timestampMs"], (start / 1_000_000).to_string());
        found.push((trace_id, value));
    }
    // Traces are read newest first; one exemplar each.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found, [(TRACE_A.to_string(), 0.1), (TRACE_B.to_string(), 0.3), (TRACE_C.to_string(), 1.0)]);
    let body = ok(range("{ } | rate()", "&exemplars=0")).await;
    assert!(body["series"][0].get("exemplars").is_none(), "none asked: {body}");

    // The instant query: one value per series over the range.
    let instant =
        |q: &str| tempo(&format!("/api/metrics/query?q={}&start={}&end={}", encode(q), t0 / SECOND, t0 / SECOND + 30));
    let body = ok(instant("{ } | count_over_time() by (resource.service.name)")).await;
    assert_eq!(
        body["series"],
        json!([
            {"labels": [{"key": "resource.service.name", "value": {"stringValue": "cart"}}],
             "promLabels": r#"{resource.service.name="cart"}"#, "value": 2.0},
            {"labels": [{"key": "resource.service.name", "value": {"stringValue": "gateway"}}],
             "promLabels": r#"{resource.service.name="gateway"}"#, "value": 3.0},
        ])
    );

    // Bad queries answer 400 with the reason.
    let text = |url: String| async move {
        let response = reqwest::get(&url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, message) = text(range("{ } | rate(", "")).await;
    assert_eq!(
        (status, message.as_str()),
        (400, "invalid TraceQL query: line 1, column 12: expected ')' (rate() takes no arguments), found end of query")
    );
    let (status, message) = text(range("{ .a = 1 }", "")).await;
    assert_eq!(status, 400);
    assert!(message.contains("has no metrics function"), "{message}");
    let (status, message) = text(range("{ } | avg_over_time(name)", "")).await;
    assert_eq!(status, 400);
    assert!(message.contains("avg_over_time() needs a numeric field"), "{message}");
    let (status, message) = text(tempo("/api/metrics/query_range?q=%7B%7D%7Crate()&step=forever")).await;
    assert_eq!(
        (status, message.as_str()),
        (400, "invalid step: \"forever\" is not a duration like 150ms, 1.5s or 1h30m")
    );
    let (status, message) = text(tempo("/api/metrics/query_range")).await;
    assert_eq!((status, message.as_str()), (400, "missing q: a TraceQL metrics query"));
    // A metrics query is not a search.
    let (status, message) = text(tempo(&format!("/api/search?q={}", encode("{ } | rate()")))).await;
    assert_eq!(status, 400);
    assert!(message.contains("makes a metrics query"), "{message}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_metrics_say_when_the_answer_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let t0 = (sextant_model::now_unix_nanos() - 600 * SECOND) / SECOND * SECOND;
    // One span more than the traces a query reads, in batches of 2,001.
    let traces = sextant_server::api::traceql_search::MAX_INSPECTED_TRACES + 1;
    for batch in 0..traces.div_ceil(2_001) {
        let spans: Vec<Value> = (batch * 2_001..((batch + 1) * 2_001).min(traces))
            .map(|i| {
                let start = t0 + i as u64 * 1_000_000;
                json!({"traceId": format!("{:032x}", i + 1), "spanId": "0000000000000001", "name": "tick",
                       "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000).to_string()})
            })
            .collect();
        let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "clock"}}]},
                          "scopeSpans": [{"spans": spans}]}]});
        post_otlp_json(&server, &body).await;
    }
    let url = format!(
        "http://{}/api/metrics/query?q={}&start={}&end={}",
        server.tempo_address,
        encode("{ } | count_over_time()"),
        t0 / SECOND,
        t0 / SECOND + 60
    );
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "PARTIAL");
    assert!(body["message"].as_str().unwrap().contains("10000 traces"), "{body}");
    assert_eq!(body["metrics"]["inspectedTraces"], 10_000);
    assert_eq!(body["series"][0]["value"], 10_000.0, "what was read is counted");
    server.shutdown().await.unwrap();
}
