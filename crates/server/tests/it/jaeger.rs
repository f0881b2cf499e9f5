//! The Jaeger query API (`/api/*` on the query port) as the Jaeger UI and Grafana's Jaeger data
//! source call it: the shapes and units of Jaeger's query service (`cmd/query/app/http_handler.go`,
//! `query_parser.go`, `internal/uimodel`) on spans sent over OTLP/HTTP JSON.

use serde_json::{Value, json};
use sextant_server::serve::Server;

use crate::support::*;

const SECOND: u64 = 1_000_000_000;
const MILLI: u64 = 1_000_000;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn string(value: &str) -> Value {
    json!({ "stringValue": value })
}

fn attr(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// An OTLP/JSON span; `parent` may be empty, `kind` is the OTLP number.
fn span(trace: &str, id: &str, parent: &str, name: &str, kind: u8, start: u64, duration: u64) -> Value {
    json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": kind,
           "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + duration).to_string()})
}

/// One `ResourceSpans` with a resource of these attributes and one scope.
fn resource_spans(resource: &[(&str, Value)], scope: Value, spans: Vec<Value>) -> Value {
    let attributes: Vec<Value> = resource.iter().map(|(k, v)| attr(k, v.clone())).collect();
    json!({"resource": {"attributes": attributes}, "scopeSpans": [{"scope": scope, "spans": spans}]})
}

fn service_spans(service: &str, spans: Vec<Value>) -> Value {
    resource_spans(&[("service.name", string(service))], json!({"name": "jaeger-test"}), spans)
}

async fn post(server: &Server, resource_spans: Vec<Value>) {
    post_otlp_json(server, &json!({ "resourceSpans": resource_spans })).await;
}

/// GET on the query port with URL-encoded parameters.
async fn get(server: &Server, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let url = reqwest::Url::parse_with_params(&query_url(server, path), params).unwrap();
    get_json(url.as_str()).await
}

/// Jaeger's success envelope around `data`.
fn envelope(data: Value, total: usize) -> Value {
    json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": null })
}

/// Asserts a Jaeger error answer and returns its message.
fn error_msg(status: u16, body: &Value, expected_status: u16) -> String {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!((&body["total"], &body["limit"], &body["offset"]), (&json!(0), &json!(0), &json!(0)), "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("errors is a list: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["code"], expected_status, "{body}");
    errors[0]["msg"].as_str().unwrap().to_string()
}

/// The trace IDs of a successful `GET /api/traces`, in answer order.
async fn search(server: &Server, params: &[(&str, &str)]) -> Vec<String> {
    let (status, body) = get(server, "/api/traces", params).await;
    assert_eq!(status, 200, "{params:?}: {body}");
    assert_eq!((&body["total"], &body["errors"]), (&json!(0), &Value::Null), "{body}");
    body["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_operations_answer_in_jaeger_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let t = "5b8efff798038103d269b633813fc60c";
    let base = now_nanos() - 60 * SECOND;
    post(
        &server,
        vec![
            service_spans(
                "gateway",
                vec![
                    span(t, "0000000000000001", "", "GET /cart", 2, base, MILLI),
                    span(t, "0000000000000002", "0000000000000001", "GET /cart", 3, base, MILLI),
                    span(t, "0000000000000003", "0000000000000001", "call cart", 3, base, MILLI),
                    span(t, "0000000000000004", "0000000000000001", "internal step", 0, base, MILLI),
                ],
            ),
            service_spans("cart", vec![span(t, "0000000000000005", "0000000000000003", "get_cart", 2, base, MILLI)]),
        ],
    )
    .await;

    let (status, body) = get(&server, "/api/services", &[]).await;
    assert_eq!((status, body), (200, envelope(json!(["cart", "gateway"]), 2)));

    // The legacy endpoint the UI's search form calls: names only, each once.
    let (status, body) = get(&server, "/api/services/gateway/operations", &[]).await;
    assert_eq!((status, body), (200, envelope(json!(["GET /cart", "call cart", "internal step"]), 3)));
    let (status, body) = get(&server, "/api/services/nope/operations", &[]).await;
    assert_eq!((status, body), (200, envelope(json!([]), 0)), "an unknown service has no operations");

    let (status, body) = get(&server, "/api/operations", &[("service", "gateway")]).await;
    let all = json!([
        {"name": "GET /cart", "spanKind": "server"},
        {"name": "GET /cart", "spanKind": "client"},
        {"name": "call cart", "spanKind": "client"},
        {"name": "internal step", "spanKind": ""},
    ]);
    assert_eq!((status, body), (200, envelope(all, 4)));
    let (status, body) = get(&server, "/api/operations", &[("service", "gateway"), ("spanKind", "client")]).await;
    let clients = json!([{"name": "GET /cart", "spanKind": "client"}, {"name": "call cart", "spanKind": "client"}]);
    assert_eq!((status, body), (200, envelope(clients, 2)));

    let (status, body) = get(&server, "/api/operations", &[]).await;
    let expected = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                          "errors": [{"code": 400, "msg": "parameter 'service' is required"}]});
    assert_eq!((status, body), (400, expected));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_by_id_renders_the_jaeger_trace_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    // A trace ID whose high half is zero: Jaeger prints it with 16 digits.
    let t = "00000000000000004bf92f3577b34da6";
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let base = (now_nanos() - 60 * SECOND) / 1_000 * 1_000 + 999; // 999 ns past a microsecond
    let base_us = base / 1_000;

    let mut root = span(t, "00f067aa0ba902b7", "", "GET /cart", 2, base, 1_500_999);
    root["attributes"] = json!([
        attr("http.route", string("/cart")),
        attr("cache.hit", json!({"boolValue": false})),
        attr("http.response.status_code", json!({"intValue": "500"})),
        attr("big", json!({"intValue": "9007199254740993"})),
        attr("ratio", json!({"doubleValue": 2.5})),
        attr("blob", json!({"bytesValue": "AQL/"})),
        attr("list", json!({"arrayValue": {"values": [string("a"), {"intValue": "1"}]}})),
    ]);
    root["status"] = json!({"code": 2, "message": "boom"});
    root["traceState"] = json!("k=v");
    root["events"] = json!([
        {"timeUnixNano": (base + 1_000_500).to_string(), "name": "cache miss", "attributes": [attr("cache.key", string("c1"))]},
        {"timeUnixNano": (base + 2_000_000).to_string(), "name": "ignored", "attributes": [attr("event", string("custom"))]},
    ]);
    let mut child = span(t, "00000000000000c2", "00f067aa0ba902b7", "get_cart", 3, base + 100_000, 50_000);
    child["status"] = json!({"code": 1});
    child["links"] = json!([
        {"traceId": other_trace, "spanId": "b7ad6b7169203331"},
        {"traceId": t, "spanId": "00000000000000c9", "attributes": [attr("opentracing.ref_type", string("child_of"))]},
    ]);
    let gateway = |host: &str| {
        vec![
            ("service.name", string("gateway")),
            ("host.name", string(host)),
            ("process.pid", json!({"intValue": "42"})),
        ]
    };
    let scope = json!({"name": "jaeger-test", "version": "1.2"});
    post(
        &server,
        vec![
            resource_spans(&gateway("gw-1"), scope.clone(), vec![root]),
            resource_spans(&[("service.name", string("cart"))], json!({"name": "cart-lib"}), vec![child]),
        ],
    )
    .await;
    // The same resource in another request is the same process; another host is another one.
    let third = span(t, "00000000000000c3", "00f067aa0ba902b7", "render", 1, base + 200_000, 1_000);
    post(&server, vec![resource_spans(&gateway("gw-1"), scope.clone(), vec![third])]).await;
    let fourth = span(t, "00000000000000c4", "00f067aa0ba902b7", "render", 1, base + 300_000, 1_000);
    post(&server, vec![resource_spans(&gateway("gw-2"), scope, vec![fourth])]).await;

    let string_tag = |key: &str, value: &str| json!({"key": key, "type": "string", "value": value});
    let scope_tags = || vec![string_tag("otel.scope.name", "jaeger-test"), string_tag("otel.scope.version", "1.2")];
    let process_tags =
        |host: &str| json!([string_tag("host.name", host), {"key": "process.pid", "type": "int64", "value": 42}]);
    let mut root_tags = scope_tags();
    root_tags.extend([
        string_tag("http.route", "/cart"),
        json!({"key": "cache.hit", "type": "bool", "value": false}),
        json!({"key": "http.response.status_code", "type": "int64", "value": 500}),
        json!({"key": "big", "type": "int64", "value": "9007199254740993"}),
        json!({"key": "ratio", "type": "float64", "value": 2.5}),
        json!({"key": "blob", "type": "binary", "value": "AQL/"}),
        string_tag("list", "[\"a\",1]"),
        string_tag("span.kind", "server"),
        string_tag("otel.status_code", "ERROR"),
        json!({"key": "error", "type": "bool", "value": true}),
        string_tag("otel.status_description", "boom"),
        string_tag("w3c.tracestate", "k=v"),
    ]);
    let render = |id: &str, start_offset_us: u64, process: &str| {
        let mut tags = scope_tags();
        tags.push(string_tag("span.kind", "internal"));
        json!({
            "traceID": "4bf92f3577b34da6", "spanID": id, "operationName": "render",
            "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "00f067aa0ba902b7"}],
            "startTime": base_us + start_offset_us, "duration": 1, "tags": tags, "logs": [],
            "processID": process, "warnings": null,
        })
    };
    let expected_trace = json!({
        "traceID": "4bf92f3577b34da6",
        "spans": [
            {
                "traceID": "4bf92f3577b34da6", "spanID": "00f067aa0ba902b7", "operationName": "GET /cart",
                "references": [], "startTime": base_us, "duration": 1_500, "tags": root_tags,
                "logs": [
                    {"timestamp": (base + 1_000_500) / 1_000,
                     "fields": [string_tag("event", "cache miss"), string_tag("cache.key", "c1")]},
                    {"timestamp": (base + 2_000_000) / 1_000, "fields": [string_tag("event", "custom")]},
                ],
                "processID": "p1", "warnings": null,
            },
            {
                "traceID": "4bf92f3577b34da6", "spanID": "00000000000000c2", "operationName": "get_cart",
                "references": [
                    {"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "00f067aa0ba902b7"},
                    {"refType": "FOLLOWS_FROM", "traceID": other_trace, "spanID": "b7ad6b7169203331"},
                    {"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "00000000000000c9"},
                ],
                "startTime": base_us + 100, "duration": 50,
                "tags": [string_tag("otel.scope.name", "cart-lib"), string_tag("span.kind", "client"),
                         string_tag("otel.status_code", "OK")],
                "logs": [], "processID": "p2", "warnings": null,
            },
            render("00000000000000c3", 200, "p1"),
            render("00000000000000c4", 300, "p3"),
        ],
        "processes": {
            "p1": {"serviceName": "gateway", "tags": process_tags("gw-1")},
            "p2": {"serviceName": "cart", "tags": []},
            "p3": {"serviceName": "gateway", "tags": process_tags("gw-2")},
        },
        "warnings": null,
    });

    for id in ["4bf92f3577b34da6", t, "4BF92F3577B34DA6"] {
        let (status, body) = get(&server, &format!("/api/traces/{id}"), &[]).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body, envelope(json!([expected_trace.clone()]), 0), "{id}");
    }
    // The same model in search answers, found by a tag on the child span.
    let (status, body) = get(&server, "/api/traces", &[("service", "cart"), ("tag", "otel.scope.name:cart-lib")]).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]), "otel.scope.name is not a searchable attribute");
    let (status, body) = get(&server, "/api/traces", &[("service", "cart"), ("operation", "get_cart")]).await;
    assert_eq!((status, body), (200, envelope(json!([expected_trace]), 0)));
    server.shutdown().await.unwrap();
}

const T1: &str = "11111111111111111111111111111111";
const T2: &str = "22222222222222222222222222222222";
const T3: &str = "33333333333333333333333333333333";

/// T1: gateway GET /cart 300ms → cart get_cart 100ms (status code 200);
/// T2: gateway GET /cart 50ms → cart get_cart 40ms, error, status code 500;
/// T3: gateway POST /order 2s → payment charge 1.5s.
async fn three_traces(server: &Server, base: u64) {
    let mut c1 = span(T1, "0000000000000012", "0000000000000011", "get_cart", 3, base + 10, 100 * MILLI);
    c1["attributes"] = json!([attr("http.response.status_code", json!({"intValue": "200"}))]);
    let mut c2 = span(T2, "0000000000000022", "0000000000000021", "get_cart", 3, base + SECOND + 10, 40 * MILLI);
    c2["attributes"] = json!([attr("http.response.status_code", json!({"intValue": "500"}))]);
    c2["status"] = json!({"code": 2});
    post(
        server,
        vec![
            service_spans(
                "gateway",
                vec![
                    span(T1, "0000000000000011", "", "GET /cart", 2, base, 300 * MILLI),
                    span(T2, "0000000000000021", "", "GET /cart", 2, base + SECOND, 50 * MILLI),
                    span(T3, "0000000000000031", "", "POST /order", 2, base + 2 * SECOND, 2 * SECOND),
                ],
            ),
            service_spans("cart", vec![c1, c2]),
            service_spans(
                "payment",
                vec![span(
                    T3,
                    "0000000000000032",
                    "0000000000000031",
                    "charge",
                    3,
                    base + 2 * SECOND + 5,
                    1_500 * MILLI,
                )],
            ),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_maps_jaeger_parameters_onto_one_span() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = (now_nanos() - 60 * SECOND) / 1_000 * 1_000;
    three_traces(&server, base).await;
    let micros = |nanos: u64| (nanos / 1_000).to_string();

    assert_eq!(search(&server, &[("service", "gateway")]).await, vec![T3, T2, T1], "newest first");
    assert_eq!(search(&server, &[("service", "cart")]).await, vec![T2, T1]);
    assert_eq!(search(&server, &[("service", "nope")]).await, Vec::<String>::new());
    assert_eq!(search(&server, &[("service", "gateway"), ("operation", "GET /cart")]).await, vec![T2, T1]);
    assert_eq!(
        search(&server, &[("service", "cart"), ("operation", "GET /cart")]).await,
        Vec::<String>::new(),
        "service and operation hold on one span"
    );

    // Tags: the JSON object the UI sends and repeated tag=key:value, matched by value.
    assert_eq!(
        search(&server, &[("service", "cart"), ("tags", r#"{"http.response.status_code":"500"}"#)]).await,
        vec![T2]
    );
    assert_eq!(search(&server, &[("service", "cart"), ("tag", "http.response.status_code:200")]).await, vec![T1]);
    assert_eq!(
        search(&server, &[("service", "gateway"), ("tag", "http.response.status_code:500")]).await,
        Vec::<String>::new(),
        "the tag is on a cart span, the service condition on gateway spans"
    );
    assert_eq!(
        search(&server, &[("service", "cart"), ("tag", "http.response.status_code:500"), ("tag", "error:true")]).await,
        vec![T2],
        "error=true is the error status, as the tag Jaeger derives from it"
    );
    assert_eq!(search(&server, &[("service", "gateway"), ("tags", r#"{"error":"true"}"#)]).await, Vec::<String>::new());

    // Durations are a span's, as Go durations.
    assert_eq!(search(&server, &[("service", "gateway"), ("minDuration", "1.2s")]).await, vec![T3]);
    assert_eq!(
        search(&server, &[("service", "cart"), ("minDuration", "90ms"), ("maxDuration", "120ms")]).await,
        vec![T1]
    );
    assert_eq!(
        search(&server, &[("service", "payment"), ("maxDuration", "1s")]).await,
        Vec::<String>::new(),
        "the payment span lasts 1.5s although its trace's gateway span is longer"
    );
    assert_eq!(search(&server, &[("service", "gateway"), ("maxDuration", "100ms")]).await, vec![T2]);

    // start/end in unix microseconds, on a span's start.
    let (start, end) = (micros(base + SECOND / 2), micros(base + SECOND * 3 / 2));
    assert_eq!(search(&server, &[("service", "gateway"), ("start", &start), ("end", &end)]).await, vec![T2]);
    let just_after_t1 = micros(base + 1_000);
    assert_eq!(search(&server, &[("service", "gateway"), ("start", &just_after_t1)]).await, vec![T3, T2]);
    let t1_start = micros(base);
    assert_eq!(search(&server, &[("service", "gateway"), ("start", &t1_start), ("end", &t1_start)]).await, vec![T1]);

    // lookback (when start is absent), as the UI sends it; custom leaves start and end to decide.
    assert_eq!(search(&server, &[("service", "gateway"), ("lookback", "1h")]).await, vec![T3, T2, T1]);
    assert_eq!(search(&server, &[("service", "gateway"), ("lookback", "2d")]).await, vec![T3, T2, T1]);
    assert_eq!(search(&server, &[("service", "gateway"), ("lookback", "30s")]).await, Vec::<String>::new());
    assert_eq!(
        search(&server, &[("service", "gateway"), ("lookback", "custom"), ("start", &start), ("end", &end)]).await,
        vec![T2]
    );

    assert_eq!(search(&server, &[("service", "gateway"), ("limit", "2")]).await, vec![T3, T2]);

    // Search answers hold whole traces, not only the matching span.
    let (_, body) = get(&server, "/api/traces", &[("service", "payment")]).await;
    let spans = body["data"][0]["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["operationName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["POST /order", "charge"]);

    // Repeated traceID: those traces in the order asked, the missing one in errors, status 200.
    let missing = "44444444444444444444444444444444";
    let (status, body) = get(&server, "/api/traces", &[("traceID", T1), ("traceID", missing), ("traceID", T3)]).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![T1, T3]);
    assert_eq!(body["errors"], json!([{"msg": "trace not found", "traceID": missing}]));
    assert_eq!((&body["total"], &body["limit"], &body["offset"]), (&json!(0), &json!(0), &json!(0)));
    server.shutdown().await.unwrap();
}

/// Dependencies come from the service graph: a call is a client span and the server span
/// that is its child (OTLP kinds 3 and 2); the root span's caller (`user`) is not a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_of_a_known_topology() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let now = now_nanos();
    let base = now - 60 * SECOND;
    let (a, b, c) =
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccccc");
    // a: frontend → gateway → cart → db; gateway → payment.   b: frontend → gateway → cart.
    // c, 30 hours ago: frontend → legacy, older than the service graph's window when it arrives.
    let old = now - 30 * 3600 * SECOND;
    post(
        &server,
        vec![
            service_spans(
                "frontend",
                vec![
                    span(a, "00000000000000a1", "", "load", 2, base, SECOND),
                    span(a, "00000000000000a7", "00000000000000a1", "GET /route", 3, base + 1, 2 * MILLI),
                    span(b, "00000000000000b1", "", "load", 2, base + SECOND, SECOND),
                    span(b, "00000000000000b7", "00000000000000b1", "GET /route", 3, base + SECOND + 1, 2 * MILLI),
                    span(c, "00000000000000c1", "", "load", 3, old, SECOND),
                ],
            ),
            service_spans(
                "gateway",
                vec![
                    span(a, "00000000000000a2", "00000000000000a7", "route", 2, base + 1, MILLI),
                    span(a, "00000000000000a3", "00000000000000a2", "GET /cart", 3, base + 2, MILLI),
                    span(a, "00000000000000a9", "00000000000000a2", "POST /charge", 3, base + 5, MILLI),
                    span(b, "00000000000000b2", "00000000000000b7", "route", 2, base + SECOND + 1, MILLI),
                    span(b, "00000000000000b3", "00000000000000b2", "GET /cart", 3, base + SECOND + 2, MILLI),
                ],
            ),
            service_spans(
                "cart",
                vec![
                    span(a, "00000000000000a4", "00000000000000a3", "get", 2, base + 3, MILLI),
                    span(a, "00000000000000a8", "00000000000000a4", "select", 3, base + 4, MILLI),
                    span(b, "00000000000000b4", "00000000000000b3", "get", 2, base + SECOND + 3, MILLI),
                ],
            ),
            service_spans("db", vec![span(a, "00000000000000a5", "00000000000000a8", "select", 2, base + 4, MILLI)]),
            service_spans(
                "payment",
                vec![span(a, "00000000000000a6", "00000000000000a9", "charge", 2, base + 5, MILLI)],
            ),
            service_spans("legacy", vec![span(c, "00000000000000c2", "00000000000000c1", "old", 2, old + 1, MILLI)]),
        ],
    )
    .await;
    let link = |parent: &str, child: &str, count: u64| json!({"parent": parent, "child": child, "callCount": count});
    let now_ms = (now / MILLI + 1_000).to_string();

    let (status, body) = get(&server, "/api/dependencies", &[("endTs", &now_ms), ("lookback", "3600000")]).await;
    let recent = json!([
        link("cart", "db", 1),
        link("frontend", "gateway", 2),
        link("gateway", "cart", 2),
        link("gateway", "payment", 1),
    ]);
    assert_eq!((status, body), (200, envelope(recent.clone(), 0)));

    let (_, body) = get(&server, "/api/dependencies", &[("endTs", &now_ms), ("lookback", "111600000")]).await;
    assert_eq!(body["data"], recent, "a 31 h lookback: the 30 h old call never reached the service graph");

    let hours_ago_29 = ((now - 29 * 3600 * SECOND) / MILLI).to_string();
    let (_, body) = get(&server, "/api/dependencies", &[("endTs", &hours_ago_29), ("lookback", "7200000")]).await;
    assert_eq!(body["data"], json!([]), "nothing from 31 h to 29 h ago");

    let (_, body) =
        get(&server, "/api/dependencies", &[("endTs", &now_ms), ("lookback", "3600000"), ("service", "cart")]).await;
    assert_eq!(body["data"], json!([link("cart", "db", 1), link("gateway", "cart", 2)]), "links touching cart");

    let (_, body) = get(&server, "/api/dependencies", &[]).await;
    assert_eq!(body["data"], recent, "default: the last 24 h up to now");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_answer_in_jaeger_envelope_with_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;

    let (status, body) = get(&server, "/api/traces", &[]).await;
    let expected = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                          "errors": [{"code": 400, "msg": "parameter 'service' is required"}]});
    assert_eq!((status, body), (400, expected));

    for (params, needle) in [
        (vec![("service", "cart"), ("minDuration", "fast")], "'minDuration'"),
        (vec![("service", "cart"), ("maxDuration", "10")], "'maxDuration'"),
        (vec![("service", "cart"), ("minDuration", "2s"), ("maxDuration", "1s")], "'maxDuration' should be greater"),
        (vec![("service", "cart"), ("tags", "{not json")], "malformed 'tags'"),
        (vec![("service", "cart"), ("tags", r#"{"http.status_code": 500}"#)], "malformed 'tags'"),
        (vec![("service", "cart"), ("tag", "no-colon")], "malformed 'tag'"),
        (vec![("traceID", "not-hex")], "cannot parse traceID"),
        (vec![("service", "cart"), ("traceID", "1"), ("traceID", &"f".repeat(33))], "cannot parse traceID"),
        (vec![("service", "cart"), ("limit", "ten")], "'limit'"),
        (vec![("service", "cart"), ("start", "yesterday")], "'start'"),
        (vec![("service", "cart"), ("end", "1.5")], "'end'"),
        (vec![("service", "cart"), ("lookback", "a while")], "'lookback'"),
    ] {
        let (status, body) = get(&server, "/api/traces", &params).await;
        let msg = error_msg(status, &body, 400);
        assert!(msg.contains(needle), "{params:?}: {msg}");
    }

    let (status, body) = get(&server, "/api/traces/44444444444444444444444444444444", &[]).await;
    let expected = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                          "errors": [{"code": 404, "msg": "trace not found"}]});
    assert_eq!((status, body), (404, expected));
    for bad in ["xyz", &"1".repeat(33), "12-4"] {
        let (status, body) = get(&server, &format!("/api/traces/{bad}"), &[]).await;
        error_msg(status, &body, 400);
    }
    let (status, body) = get(&server, "/api/traces/4444", &[("start", "soon")]).await;
    assert!(error_msg(status, &body, 400).contains("'start'"));

    for (params, needle) in [(vec![("endTs", "now")], "'endTs'"), (vec![("lookback", "1h")], "'lookback'")] {
        let (status, body) = get(&server, "/api/dependencies", &params).await;
        assert!(error_msg(status, &body, 400).contains(needle), "{params:?}");
    }
    server.shutdown().await.unwrap();
}

/// The same spans read through the native API and the Jaeger API: the same traces, the same
/// spans with the same names, parents, services, times (in each API's unit) and attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_jaeger_apis_show_the_same_traces() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let base = now_nanos() - 120 * SECOND;
    three_traces(&server, base).await;
    server.engine.flush().await.unwrap(); // some spans in a block, some in the head
    let t4 = "0000000000000000000000000000abcd";
    post(
        &server,
        vec![
            service_spans("cart", vec![span(t4, "0000000000000041", "", "checkout", 2, base + 3 * SECOND, 7 * MILLI)]),
            service_spans(
                "gateway",
                vec![span(T1, "0000000000000013", "0000000000000011", "late", 1, base + 200 * MILLI, MILLI)],
            ),
        ],
    )
    .await;

    for service in ["gateway", "cart", "payment"] {
        let (status, native) = get(&server, "/api/v1/search", &[("service", service)]).await;
        assert_eq!(status, 200);
        let native_ids: Vec<String> =
            native["traces"].as_array().unwrap().iter().map(|t| t["traceId"].as_str().unwrap().to_string()).collect();
        let jaeger_ids = search(&server, &[("service", service)]).await;
        let jaeger_as_native: Vec<String> = jaeger_ids.iter().map(|id| format!("{id:0>32}")).collect();
        assert_eq!(jaeger_as_native, native_ids, "{service}");
        assert!(!native_ids.is_empty());
    }
    assert!(
        search(&server, &[("service", "cart")]).await.contains(&"000000000000abcd".to_string()),
        "16 digits when the high half is zero"
    );

    for trace in [T1, T2, T3, t4] {
        let (_, native) = get(&server, &format!("/api/v1/traces/{trace}"), &[]).await;
        let (status, jaeger) = get(&server, &format!("/api/traces/{trace}"), &[]).await;
        assert_eq!(status, 200);
        let jaeger_trace = &jaeger["data"][0];
        let mut expected: Vec<Value> = Vec::new();
        for resource_spans in native["resourceSpans"].as_array().unwrap() {
            let service = resource_spans["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv["key"] == "service.name")
                .map(|kv| kv["value"]["stringValue"].clone())
                .unwrap();
            for scope_spans in resource_spans["scopeSpans"].as_array().unwrap() {
                for s in scope_spans["spans"].as_array().unwrap() {
                    let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
                    let end: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
                    let parent = s["parentSpanId"].as_str().unwrap_or("");
                    let attributes: Vec<Value> = s["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|kv| json!([kv["key"], kv["value"].as_object().unwrap().values().next().unwrap()]))
                        .collect();
                    expected.push(json!([
                        s["spanId"],
                        s["name"],
                        parent,
                        service,
                        start / 1_000,
                        (end - start) / 1_000,
                        attributes
                    ]));
                }
            }
        }
        let mut got: Vec<Value> = Vec::new();
        for s in jaeger_trace["spans"].as_array().unwrap() {
            let parent = s["references"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["refType"] == "CHILD_OF")
                .map(|r| r["spanID"].as_str().unwrap())
                .unwrap_or("");
            let service = &jaeger_trace["processes"][s["processID"].as_str().unwrap()]["serviceName"];
            let attributes: Vec<Value> = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| {
                    !["otel.scope.name", "span.kind", "otel.status_code", "error"].contains(&t["key"].as_str().unwrap())
                })
                // OTLP/JSON writes 64-bit integers as strings.
                .map(|t| match t["type"].as_str().unwrap() {
                    "int64" => json!([t["key"], t["value"].to_string()]),
                    _ => json!([t["key"], t["value"]]),
                })
                .collect();
            got.push(json!([
                s["spanID"],
                s["operationName"],
                parent,
                service,
                s["startTime"],
                s["duration"],
                attributes
            ]));
        }
        let key = |v: &Value| v[0].as_str().unwrap().to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got, expected, "trace {trace}");
        assert!(!got.is_empty());
    }
    server.shutdown().await.unwrap();
}
