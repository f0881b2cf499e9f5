//! Span metrics and the service graph derived from spans sent over OTLP, read back through
//! `/metrics` (Prometheus text and OpenMetrics with exemplars), Jaeger's metrics API
//! (`/api/metrics/*`), and the native `/api/v1/span-metrics` and `/api/v1/service-graph`.
//!
//! The fixture, all ending in one 15 s interval two minutes ago:
//!
//! ```text
//! trace A (gRPC)  frontend GET /checkout 300 ms → frontend GET /cart 100 ms → cart GET /cart 80 ms → cart redis GET 2 ms
//! trace B (gRPC)  frontend GET /checkout 600 ms ERROR → … 250 ms → cart GET /cart 200 ms ERROR → cart redis GET 3 ms
//! trace C (HTTP)  frontend GET /checkout 40 ms → frontend GET /cart 30 ms → cart GET /cart 20 ms
//! ```
//!
//! The gRPC request is a protobuf body the server stores as received (`append_encoded`);
//! the OTLP/JSON one is re-encoded (`append`): both paths feed the aggregators. The service
//! graph waits 0 s for a missing half, so the unanswered redis client spans become calls to
//! the virtual node `redis` at the next read.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1 as pc;
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;
use sextant_server::serve::Server;

use crate::support::*;

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const INTERVAL: u64 = 15 * SECOND;

const TRACE_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
const TRACE_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
const TRACE_C: &str = "ccccccccccccccccccccccccccccccc3";

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// The start of the interval the fixture ends in: an interval boundary two minutes ago.
fn fixture_base() -> u64 {
    let two_minutes_ago = now_nanos() - 120 * SECOND;
    two_minutes_ago - two_minutes_ago % INTERVAL
}

/// One span of the fixture: trace, span ID, parent ID ("" for none), service, name, OTLP
/// kind (2 server, 3 client), end offset from the base, duration, error, `db.system.name`.
struct S {
    trace: &'static str,
    id: &'static str,
    parent: &'static str,
    service: &'static str,
    name: &'static str,
    kind: i32,
    end_offset: u64,
    duration: u64,
    error: bool,
    db_opt: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
const fn s(
    trace: &'static str,
    id: &'static str,
    parent: &'static str,
    service: &'static str,
    name: &'static str,
    kind: i32,
    end_offset: u64,
    duration: u64,
) -> S {
    S { trace, id, parent, service, name, kind, end_offset, duration, error: false, db_opt: None }
}

const fn failed(span: S) -> S {
    S { error: true, ..span }
}

const fn on_redis(span: S) -> S {
    S { db_opt: Some("redis"), ..span }
}

const GRPC_SPANS: [S; 8] = [
    s(TRACE_A, "a000000000000001", "", "frontend", "GET /checkout", 2, 2_000 * MS, 300 * MS),
    s(TRACE_A, "a000000000000002", "a000000000000001", "frontend", "GET /cart", 3, 1_900 * MS, 100 * MS),
    s(TRACE_A, "a000000000000003", "a000000000000002", "cart", "GET /cart", 2, 1_890 * MS, 80 * MS),
    on_redis(s(TRACE_A, "a000000000000004", "a000000000000003", "cart", "redis GET", 3, 1_850 * MS, 2 * MS)),
    failed(s(TRACE_B, "b000000000000001", "", "frontend", "GET /checkout", 2, 4_000 * MS, 600 * MS)),
    s(TRACE_B, "b000000000000002", "b000000000000001", "frontend", "GET /cart", 3, 3_900 * MS, 250 * MS),
    failed(s(TRACE_B, "b000000000000003", "b000000000000002", "cart", "GET /cart", 2, 3_850 * MS, 200 * MS)),
    on_redis(s(TRACE_B, "b000000000000004", "b000000000000003", "cart", "redis GET", 3, 3_700 * MS, 3 * MS)),
];

const HTTP_SPANS: [S; 3] = [
    s(TRACE_C, "c000000000000001", "", "frontend", "GET /checkout", 2, 6_000 * MS, 40 * MS),
    s(TRACE_C, "c000000000000002", "c000000000000001", "frontend", "GET /cart", 3, 5_990 * MS, 30 * MS),
    s(TRACE_C, "c000000000000003", "c000000000000002", "cart", "GET /cart", 2, 5_980 * MS, 20 * MS),
];

fn string_kv(key: &str, value: &str) -> pc::KeyValue {
    pc::KeyValue {
        key: key.into(),
        value: Some(pc::AnyValue { value: Some(pc::any_value::Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

/// The protobuf request of `spans`, one `ResourceSpans` per service.
fn grpc_request(spans: &[S], base: u64) -> ExportTraceServiceRequest {
    let mut resource_spans = Vec::new();
    for service in ["frontend", "cart"] {
        let spans: Vec<pt::Span> = spans
            .iter()
            .filter(|s| s.service == service)
            .map(|s| pt::Span {
                trace_id: hex::decode(s.trace).unwrap(),
                span_id: hex::decode(s.id).unwrap(),
                parent_span_id: hex::decode(s.parent).unwrap(),
                name: s.name.into(),
                kind: s.kind,
                start_time_unix_nano: base + s.end_offset - s.duration,
                end_time_unix_nano: base + s.end_offset,
                attributes: s.db_opt.map(|db| string_kv("db.system.name", db)).into_iter().collect(),
                status: Some(pt::Status { code: if s.error { 2 } else { 0 }, message: String::new() }),
                ..Default::default()
            })
            .collect();
        resource_spans.push(pt::ResourceSpans {
            resource: Some(pr::Resource { attributes: vec![string_kv("service.name", service)], ..Default::default() }),
            scope_spans: vec![pt::ScopeSpans {
                scope: Some(pc::InstrumentationScope { name: "span-metrics-test".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// The OTLP/JSON body of `spans`, one `resourceSpans` per service.
fn json_request(spans: &[S], base: u64) -> Value {
    let resource_spans: Vec<Value> = ["frontend", "cart"]
        .iter()
        .map(|service| {
            let spans: Vec<Value> = spans
                .iter()
                .filter(|s| s.service == *service)
                .map(|s| {
                    json!({"traceId": s.trace, "spanId": s.id, "parentSpanId": s.parent, "name": s.name, "kind": s.kind,
                           "startTimeUnixNano": (base + s.end_offset - s.duration).to_string(),
                           "endTimeUnixNano": (base + s.end_offset).to_string(),
                           "status": {"code": if s.error { 2 } else { 0 }}})
                })
                .collect();
            json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                   "scopeSpans": [{"scope": {"name": "span-metrics-test"}, "spans": spans}]})
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// Starts a server with the service graph's wait at 0 s and sends the fixture; returns the
/// fixture's base time.
async fn server_with_fixture(dir: &std::path::Path, settings: &[(&str, &str)]) -> (Server, u64) {
    let mut all_settings = vec![("SEXTANT_METRICS_SERVICE_GRAPH_WAIT_SECONDS", "0")];
    all_settings.extend_from_slice(settings);
    let server = start_server_with(dir, &all_settings).await;
    let base = fixture_base();
    let response = grpc_client(server.otlp_grpc_address).await.export(grpc_request(&GRPC_SPANS, base)).await.unwrap();
    assert_eq!(response.into_inner().partial_success, None, "every span accepted");
    post_otlp_json(&server, &json_request(&HTTP_SPANS, base)).await;
    (server, base)
}

async fn scrape(server: &Server, accept_opt: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(query_url(server, "/metrics"));
    if let Some(accept) = accept_opt {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, response.text().await.unwrap())
}

/// The sample lines of a family whose labels contain every `label="value"` of `labels`.
fn samples<'a>(text: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .collect()
}

/// The value of the one sample of `name` with `labels` (exemplar, if any, stripped).
fn sample(text: &str, name: &str, labels: &[&str]) -> String {
    let found = samples(text, name, labels);
    assert_eq!(found.len(), 1, "one {name} sample with {labels:?}: {found:?}");
    let without_exemplar = found[0].split(" # ").next().unwrap();
    without_exemplar.rsplit(' ').next().unwrap().to_string()
}

const FRONTEND_CHECKOUT: &str = r#"service="frontend",span_name="GET /checkout",span_kind="SPAN_KIND_SERVER""#;
const FRONTEND_CART: &str = r#"service="frontend",span_name="GET /cart",span_kind="SPAN_KIND_CLIENT""#;
const CART_SERVER: &str = r#"service="cart",span_name="GET /cart",span_kind="SPAN_KIND_SERVER""#;
const CART_REDIS: &str = r#"service="cart",span_name="redis GET",span_kind="SPAN_KIND_CLIENT""#;
const UNSET: &str = r#"status_code="STATUS_CODE_UNSET""#;
const ERROR: &str = r#"status_code="STATUS_CODE_ERROR""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_carries_the_counts_of_the_spans_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_fixture(dir.path(), &[]).await;
    let (content_type, text) = scrape(&server, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    let calls = "traces_spanmetrics_calls_total";
    assert_eq!(sample(&text, calls, &[FRONTEND_CHECKOUT, UNSET]), "2");
    assert_eq!(sample(&text, calls, &[FRONTEND_CHECKOUT, ERROR]), "1");
    assert_eq!(sample(&text, calls, &[FRONTEND_CART, UNSET]), "3");
    assert_eq!(sample(&text, calls, &[CART_SERVER, UNSET]), "2");
    assert_eq!(sample(&text, calls, &[CART_SERVER, ERROR]), "1");
    assert_eq!(sample(&text, calls, &[CART_REDIS, UNSET]), "2");
    assert_eq!(samples(&text, calls, &[]).len(), 6, "six series, no overflow");

    // frontend's client spans of 100, 250 and 30 ms; cart's redis spans of 2 and 3 ms.
    let bucket = "traces_spanmetrics_latency_bucket";
    for (le, count) in [("0.016", "0"), ("0.032", "1"), ("0.064", "1"), ("0.128", "2"), ("0.256", "3"), ("+Inf", "3")] {
        assert_eq!(sample(&text, bucket, &[FRONTEND_CART, &format!("le=\"{le}\"")]), count, "le {le}");
    }
    assert_eq!(sample(&text, "traces_spanmetrics_latency_sum", &[FRONTEND_CART]), "0.38");
    assert_eq!(sample(&text, "traces_spanmetrics_latency_count", &[FRONTEND_CART]), "3");
    assert_eq!(sample(&text, bucket, &[CART_REDIS, "le=\"0.002\""]), "1", "a bound is inclusive");
    assert_eq!(sample(&text, bucket, &[CART_REDIS, "le=\"0.004\""]), "2");

    let request = "traces_service_graph_request_total";
    let failed = "traces_service_graph_request_failed_total";
    let direct = r#"client="frontend",server="cart",connection_type="""#;
    let database = r#"client="cart",server="redis",connection_type="database""#;
    let root = r#"client="user",server="frontend",connection_type="virtual_node""#;
    assert_eq!((sample(&text, request, &[direct]), sample(&text, failed, &[direct])), ("3".into(), "1".into()));
    assert_eq!((sample(&text, request, &[database]), sample(&text, failed, &[database])), ("2".into(), "0".into()));
    assert_eq!((sample(&text, request, &[root]), sample(&text, failed, &[root])), ("3".into(), "1".into()));

    // One exposition with the self-metrics, in 0.0.4: no exemplars, no UNIT, no EOF.
    assert_eq!(metric_value(&text, "sextant_spans_accepted_total{protocol=\"otlp_grpc\"}"), 8.0);
    assert_eq!(metric_value(&text, "sextant_spans_accepted_total{protocol=\"otlp_http\"}"), 3.0);
    assert!(text.contains("# TYPE sextant_spans_accepted_total counter\n"), "{text}");
    assert!(text.contains("# TYPE traces_spanmetrics_calls_total counter\n"));
    assert_eq!(metric_value(&text, "sextant_spanmetrics_spans_total"), 11.0);
    assert_eq!(metric_value(&text, "sextant_service_graph_calls_total{source=\"paired\"}"), 3.0);
    assert_eq!(metric_value(&text, "sextant_service_graph_calls_total{source=\"root\"}"), 3.0);
    assert_eq!(metric_value(&text, "sextant_service_graph_calls_total{source=\"virtual_node\"}"), 2.0);
    assert_eq!(metric_value(&text, "sextant_metrics_dropped_batches_total"), 0.0);
    assert!(!text.contains(" # {"), "no exemplars in text format 0.0.4");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_metrics_exemplars_lead_to_the_traces_that_explain_them() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_fixture(dir.path(), &[]).await;
    let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (content_type, text) = scrape(&server, Some(prometheus_accept)).await;
    assert_eq!(content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "one exposition");
    assert!(text.contains("# TYPE sextant_spans_accepted counter\n"), "OpenMetrics names the family");
    assert_eq!(sample(&text, "traces_spanmetrics_calls_total", &[FRONTEND_CART, UNSET]), "3");

    // Each bucket line carries the latest span that fell in it.
    let line = samples(&text, "traces_spanmetrics_latency_bucket", &[FRONTEND_CART, "le=\"0.032\""])[0];
    assert!(
        line.ends_with(&format!(
            r#" # {{trace_id="{TRACE_C}",span_id="c000000000000002"}} 0.03 {}"#,
            exemplar_time(line)
        )),
        "{line}"
    );

    // Every exemplar names a stored span of the series' operation with the exemplar's duration.
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("traces_spanmetrics_latency_bucket{") && l.contains(" # {")) {
        let (series, exemplar) = line.split_once(" # ").unwrap();
        let span_name = series.split("span_name=\"").nth(1).unwrap().split('"').next().unwrap();
        let trace_id = exemplar.split("trace_id=\"").nth(1).unwrap().split('"').next().unwrap();
        let span_id = exemplar.split("span_id=\"").nth(1).unwrap().split('"').next().unwrap();
        let value_seconds: f64 = exemplar.split("} ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let (status, trace) = get_json(&query_url(&server, &format!("/api/v1/traces/{trace_id}"))).await;
        assert_eq!(status, 200, "{trace_id}: {trace}");
        let spans = otlp_spans(&trace);
        let span = spans.iter().find(|s| s["spanId"] == span_id).unwrap_or_else(|| panic!("{span_id} in {trace}"));
        assert_eq!(span["name"], span_name);
        let duration_nanos = span["endTimeUnixNano"].as_str().unwrap().parse::<u64>().unwrap()
            - span["startTimeUnixNano"].as_str().unwrap().parse::<u64>().unwrap();
        assert_eq!(duration_nanos, (value_seconds * 1e9).round() as u64, "{line}");
        checked += 1;
    }
    // 3 frontend checkout buckets, 3 frontend cart, 3 cart server, 2 redis.
    assert_eq!(checked, 11);
    server.shutdown().await.unwrap();
}

/// The exemplar timestamp at the end of a bucket line.
fn exemplar_time(line: &str) -> &str {
    line.rsplit(' ').next().unwrap()
}

/// `base + offset` as Jaeger's protobuf JSON writes a timestamp with whole seconds.
fn rfc3339(unix_nanos: u64) -> String {
    assert_eq!(unix_nanos % SECOND, 0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(unix_nanos)).to_string()
}

fn assert_close(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("a number, got {actual}"));
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_monitor_api_answers_rates_errors_and_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = server_with_fixture(dir.path(), &[]).await;
    // Points every 15 s over the minute after the fixture, each over the minute before it.
    let end_ms = ((base + 60 * SECOND) / MS).to_string();
    let window = |service: &str, kind: &str| -> Vec<(String, String)> {
        [
            ("service", service),
            ("spanKind", kind),
            ("endTs", &end_ms),
            ("lookback", "60000"),
            ("step", "15000"),
            ("ratePer", "60000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let with = |mut params: Vec<(String, String)>, key: &str, value: &str| {
        params.push((key.to_string(), value.to_string()));
        params
    };
    let get = |path: &'static str, params: Vec<(String, String)>| {
        let url = reqwest::Url::parse_with_params(&query_url(&server, path), &params).unwrap();
        async move { get_json(url.as_str()).await }
    };
    // The point at base has no call in its minute; the next four hold all three checkouts.
    let point_times: Vec<String> = (1..=4).map(|k| rfc3339(base + k * INTERVAL)).collect();

    let params = with(window("frontend", "server"), "groupByOperation", "true");
    let (status, calls) = get("/api/metrics/calls", params.clone()).await;
    assert_eq!(status, 200, "{calls}");
    let points: Vec<Value> =
        point_times.iter().map(|t| json!({"gaugeValue": {"doubleValue": 0.05}, "timestamp": t})).collect();
    assert_eq!(
        calls,
        json!({
            "name": "service_operation_call_rate",
            "type": "GAUGE",
            "help": "calls/sec, grouped by service & operation",
            "metrics": [{
                "labels": [{"name": "service_name", "value": "frontend"}, {"name": "operation", "value": "GET /checkout"}],
                "metricPoints": points,
            }],
        })
    );

    let (status, errors) = get("/api/metrics/errors", params.clone()).await;
    assert_eq!(status, 200, "{errors}");
    assert_eq!(errors["name"], "service_operation_error_rate");
    let error_points = errors["metrics"][0]["metricPoints"].as_array().unwrap();
    assert_eq!(error_points.len(), 4);
    for point in error_points {
        assert_close(&point["gaugeValue"]["doubleValue"], 1.0 / 3.0);
    }

    // p95 of 40, 300 and 600 ms: rank 2.85 lies in (512, 1024] ms, which holds one span.
    let (status, latencies) = get("/api/metrics/latencies", with(params.clone(), "quantile", "0.95")).await;
    assert_eq!(status, 200, "{latencies}");
    assert_eq!(latencies["name"], "service_operation_latencies");
    assert_eq!(latencies["help"], "0.95th quantile latency, grouped by service & operation");
    let latency_points = latencies["metrics"][0]["metricPoints"].as_array().unwrap();
    assert_eq!(latency_points.iter().map(|p| p["timestamp"].as_str().unwrap()).collect::<Vec<_>>(), point_times);
    for point in latency_points {
        assert_close(&point["gaugeValue"]["doubleValue"], 512.0 + 512.0 * 0.85);
    }

    // frontend's client spans (100, 250, 30 ms): p95 in (128, 256] ms; by service only.
    let client_params = with(window("frontend", "client"), "quantile", "0.95");
    let (_, client_latencies) = get("/api/metrics/latencies", client_params).await;
    assert_eq!(client_latencies["name"], "service_latencies");
    assert_eq!(client_latencies["metrics"][0]["labels"], json!([{"name": "service_name", "value": "frontend"}]));
    assert_close(&client_latencies["metrics"][0]["metricPoints"][0]["gaugeValue"]["doubleValue"], 128.0 + 128.0 * 0.85);

    // cart's server spans: 3 calls in the minute, one of them failed.
    let (_, cart_calls) = get("/api/metrics/calls", window("cart", "server")).await;
    assert_eq!(cart_calls["metrics"].as_array().unwrap().len(), 1);
    assert_close(&cart_calls["metrics"][0]["metricPoints"][3]["gaugeValue"]["doubleValue"], 0.05);
    let (_, nothing) = get("/api/metrics/calls", window("cart", "consumer")).await;
    assert_eq!(nothing["metrics"], json!([]), "no consumer spans");

    let (status, min_step) = get("/api/metrics/minstep", Vec::new()).await;
    assert_eq!((status, min_step), (200, json!({"data": 15000, "total": 0, "limit": 0, "offset": 0, "errors": null})));

    let (status, error) = get("/api/metrics/latencies", vec![("service".to_string(), "frontend".to_string())]).await;
    assert_eq!(status, 400, "quantile is required: {error}");
    assert!(error["errors"][0]["msg"].as_str().unwrap().contains("'quantile'"), "{error}");
    let (status, error) = get("/api/metrics/calls", Vec::new()).await;
    assert_eq!((status, &error["errors"][0]["code"]), (400, &json!(400)), "{error}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_graph_shows_the_topology_with_calls_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_fixture(dir.path(), &[]).await;
    let (status, graph) = get_json(&query_url(&server, "/api/v1/service-graph")).await;
    assert_eq!(status, 200, "{graph}");
    let edges: Vec<(&str, &str, &str, u64, u64)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["client"].as_str().unwrap(),
                e["server"].as_str().unwrap(),
                e["connectionType"].as_str().unwrap(),
                e["calls"].as_u64().unwrap(),
                e["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            ("cart", "redis", "database", 2, 0),
            ("frontend", "cart", "direct", 3, 1),
            ("user", "frontend", "virtual_node", 3, 1),
        ]
    );
    let frontend_cart = &graph["edges"][1];
    assert_close(&frontend_cart["errorRate"], 1.0 / 3.0);
    // cart's server spans of 20, 80 and 200 ms: the median is halfway into (64, 128] ms.
    assert_close(&frontend_cart["p50Millis"], 96.0);
    // frontend's client spans of 30, 100 and 250 ms: likewise.
    assert_close(&frontend_cart["clientP50Millis"], 96.0);
    // redis answers no spans: the client's 2 and 3 ms stand in.
    assert_close(&graph["edges"][0]["p50Millis"], 2.0);
    assert_eq!(
        graph["nodes"],
        json!([
            {"name": "cart", "virtual": false, "callsIn": 3, "failedIn": 1, "callsOut": 2},
            {"name": "frontend", "virtual": false, "callsIn": 3, "failedIn": 1, "callsOut": 3},
            {"name": "redis", "virtual": true, "callsIn": 2, "failedIn": 0, "callsOut": 0},
            {"name": "user", "virtual": true, "callsIn": 0, "failedIn": 0, "callsOut": 3},
        ])
    );

    // A range after the fixture holds nothing; a bad one is refused.
    let later = now_nanos();
    let (_, empty) =
        get_json(&query_url(&server, &format!("/api/v1/service-graph?start={later}&end={}", later + SECOND))).await;
    assert_eq!(empty, json!({"edges": [], "nodes": []}));
    let (status, error) = get_json(&query_url(&server, "/api/v1/service-graph?start=2&end=1")).await;
    assert_eq!((status, &error["error"]["code"]), (400, &json!("invalid_query")), "{error}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_span_metrics_give_red_points_and_exemplar_traces() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = server_with_fixture(dir.path(), &[]).await;
    let url =
        format!("/api/v1/span-metrics?service=cart&start={base}&end={}&step=15s&groupBy=operation", base + INTERVAL);
    let (status, answer) = get_json(&query_url(&server, &url)).await;
    assert_eq!(status, 200, "{answer}");
    let series = answer["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{answer}");
    assert_eq!(series[0]["labels"], json!({"operation": "GET /cart"}));
    let point = &series[0]["points"][0];
    assert_eq!(series[0]["points"].as_array().unwrap().len(), 1);
    assert_eq!(point["startTimeUnixNano"], base.to_string());
    assert_eq!((&point["calls"], &point["errors"]), (&json!(3), &json!(1)));
    assert_close(&point["ratePerSecond"], 3.0 / 15.0);
    assert_close(&point["errorRatePerSecond"], 1.0 / 15.0);
    assert_close(&point["p50Millis"], 96.0);
    // p95 and p99: rank 2.85 and 2.97 of 3 in (128, 256] ms, which holds one span.
    assert_close(&point["p95Millis"], 128.0 + 128.0 * 0.85);
    assert_close(&point["p99Millis"], 128.0 + 128.0 * 0.97);
    assert_eq!(series[1]["labels"], json!({"operation": "redis GET"}));
    assert_eq!((&series[1]["points"][0]["calls"], &series[1]["points"][0]["errors"]), (&json!(2), &json!(0)));

    // One exemplar per bucket: the 80, 200 and 20 ms spans, oldest first; each resolves.
    let exemplars = series[0]["exemplars"].as_array().unwrap();
    let ids: Vec<(&str, &str, &str)> = exemplars
        .iter()
        .map(|e| (e["traceId"].as_str().unwrap(), e["spanId"].as_str().unwrap(), e["durationNanos"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            (TRACE_A, "a000000000000003", "80000000"),
            (TRACE_B, "b000000000000003", "200000000"),
            (TRACE_C, "c000000000000003", "20000000"),
        ]
    );
    for (trace_id, span_id, _) in ids {
        let (status, trace) = get_json(&query_url(&server, &format!("/api/v1/traces/{trace_id}"))).await;
        assert_eq!(status, 200);
        let spans = otlp_spans(&trace);
        let span = spans.iter().find(|s| s["spanId"] == span_id).unwrap();
        assert_eq!((span["name"].as_str(), span["kind"].as_u64()), (Some("GET /cart"), Some(2)));
    }

    // By default: the intervals held, one step each, grouped by service and operation.
    let (_, default) = get_json(&query_url(&server, "/api/v1/span-metrics?spanKind=client")).await;
    let keys: Vec<&Value> = default["series"].as_array().unwrap().iter().map(|s| &s["labels"]).collect();
    assert_eq!(
        keys,
        [
            &json!({"service": "cart", "operation": "redis GET"}),
            &json!({"service": "frontend", "operation": "GET /cart"})
        ]
    );
    assert_eq!(default["series"][1]["points"][0]["calls"], 3);

    let (status, error) = get_json(&query_url(&server, "/api/v1/span-metrics?step=10s")).await;
    assert_eq!((status, &error["error"]["code"]), (400, &json!("invalid_query")), "not a multiple of 15 s: {error}");
    let (status, error) = get_json(&query_url(&server, "/api/v1/span-metrics?groupBy=colour")).await;
    assert_eq!((status, &error["error"]["code"]), (400, &json!("invalid_parameter")), "{error}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_metrics_say_so_and_traces_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_fixture(dir.path(), &[("SEXTANT_METRICS_ENABLED", "false")]).await;
    let (_, text) = scrape(&server, Some("application/openmetrics-text")).await;
    assert!(!text.contains("traces_spanmetrics") && !text.contains("traces_service_graph"), "{text}");
    assert!(!text.contains("sextant_spanmetrics") && !text.contains("sextant_metrics_dropped"), "{text}");
    assert_eq!(metric_value(&text, "sextant_spans_accepted_total{protocol=\"otlp_grpc\"}"), 8.0);
    assert!(text.ends_with("# EOF\n"));

    for path in [
        "/api/metrics/calls?service=frontend",
        "/api/metrics/latencies?service=frontend&quantile=0.5",
        "/api/metrics/minstep",
    ] {
        let (status, body) = get_json(&query_url(&server, path)).await;
        assert_eq!(status, 501, "{path}: {body}");
        assert_eq!(body["errors"], json!([{"code": 501, "msg": "metrics querying is currently disabled"}]), "{path}");
    }
    for path in ["/api/v1/service-graph", "/api/v1/span-metrics"] {
        let (status, body) = get_json(&query_url(&server, path)).await;
        assert_eq!((status, &body["error"]["code"]), (501, &json!("metrics_disabled")), "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("metrics.enabled = false"));
    }
    let (status, _) = get_json(&query_url(&server, &format!("/api/v1/traces/{TRACE_C}"))).await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}

/// A range asked of aggregators that hold nothing yet once answered 400 (an empty range).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregators_holding_nothing_answer_empty() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let start = fixture_base();
    for path in [
        format!("/api/v1/span-metrics?start={start}"),
        "/api/v1/span-metrics".to_string(),
        "/api/v1/service-graph".to_string(),
    ] {
        let (status, body) = get_json(&query_url(&server, &path)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body.get("series").or(body.get("edges")), Some(&json!([])), "{path}: {body}");
    }
    let (status, body) = get_json(&query_url(&server, "/api/metrics/calls?service=frontend")).await;
    assert_eq!((status, &body["metrics"]), (200, &json!([])), "{body}");
    server.shutdown().await.unwrap();
}
