//! Alerting on span metrics, end to end: a rule from the config file fires and resolves
//! against a local webhook receiver (Alertmanager's webhook format), `/api/alerts` lists the
//! alert with example traces that open, rules created through the API survive a restart, and
//! a rule on a TraceQL metrics query fires on the stored spans.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sextant_server::alerting::rule::Rule;
use sextant_server::config::{ADDRESS_VARIABLES, Overrides, RawConfig};
use sextant_server::serve::Server;

use crate::support::*;

const MS: u64 = 1_000_000;
/// How long a test waits for the server to evaluate and notify before failing.
const DEADLINE: Duration = Duration::from_secs(30);

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Starts a server with the given settings, alerting evaluated every second, and `rules` in
/// its config file.
async fn start_with_rules(dir: &std::path::Path, settings: &[(&str, &str)], rules: Vec<Rule>) -> Server {
    let mut env: Vec<(String, String)> =
        ADDRESS_VARIABLES.iter().map(|name| (name.to_string(), "127.0.0.1:0".to_string())).collect();
    env.push(("SEXTANT_ALERTING_EVALUATION_INTERVAL".into(), "1s".into()));
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let overrides = Overrides { data_dir: Some(dir.to_path_buf()), log_level: None };
    let mut raw = RawConfig::load(None, env, &overrides).unwrap();
    raw.alerting.rules = rules;
    Server::start(raw.resolve().unwrap()).await.unwrap()
}

/// A webhook receiver on 127.0.0.1: every body it was sent, in order.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(received): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                received.lock().push(body);
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Waits until `received` holds a body with `status`, and returns it.
async fn wait_for_notification(received: &Mutex<Vec<Value>>, status: &str) -> Value {
    let started = Instant::now();
    loop {
        if let Some(body) = received.lock().iter().find(|b| b["status"] == status) {
            return body.clone();
        }
        assert!(started.elapsed() < DEADLINE, "no {status} notification within {DEADLINE:?}: {:?}", received.lock());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server spans of `service` ending now, one trace each: `(trace ID, error)`.
fn server_spans(service: &str, spans: &[(&str, bool)]) -> Value {
    let end = now_nanos();
    let spans: Vec<Value> = spans
        .iter()
        .enumerate()
        .map(|(index, (trace, error))| {
            json!({"traceId": trace, "spanId": format!("{:016x}", index + 1), "name": "POST /cart", "kind": 2,
                   "startTimeUnixNano": (end - 20 * MS).to_string(), "endTimeUnixNano": end.to_string(),
                   "status": {"code": if *error { 2 } else { 0 }}})
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "alerting-test"}, "spans": spans}]}]})
}

fn cart_errors_rule() -> Rule {
    serde_json::from_value(json!({
        "name": "CartErrors",
        "expr": {"metric": "error_rate", "service": "cart"},
        "op": ">",
        "threshold": 0.5,
        "for_seconds": 0,
        "labels": {"severity": "page"},
        "annotations": {"summary": "cart fails"},
    }))
    .unwrap()
}

const FAILED_TRACES: [&str; 3] =
    ["e0000000000000000000000000000001", "e0000000000000000000000000000002", "e0000000000000000000000000000003"];

const OK_TRACES: [&str; 4] = [
    "a0000000000000000000000000000001",
    "a0000000000000000000000000000002",
    "a0000000000000000000000000000003",
    "a0000000000000000000000000000004",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_alert_fires_then_resolves_on_a_local_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = webhook_receiver().await;
    let server =
        start_with_rules(dir.path(), &[("SEXTANT_ALERTING_WEBHOOKS", &hook_url)], vec![cart_errors_rule()]).await;

    let failing: Vec<(&str, bool)> = FAILED_TRACES.iter().map(|t| (*t, true)).collect();
    post_otlp_json(&server, &server_spans("cart", &failing)).await;
    // Another service's errors and the cart's client spans do not count.
    post_otlp_json(&server, &server_spans("shop", &[("f0000000000000000000000000000001", true)])).await;

    let firing = wait_for_notification(&received, "firing").await;
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "sextant");
    assert_eq!(firing["groupLabels"], json!({"alertname": "CartErrors"}));
    assert_eq!(firing["externalURL"], format!("http://{}", server.query_address));
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"], json!({"alertname": "CartErrors", "service": "cart", "severity": "page"}));
    assert_eq!(alert["annotations"]["summary"], "cart fails");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(alert["startsAt"].as_str().unwrap().ends_with('Z'), "{alert}");
    assert_eq!(alert["generatorURL"], format!("http://{}/api/v1/alert-rules/CartErrors", server.query_address));
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
    let example_traces: Vec<&str> = alert["annotations"]["example_traces"].as_str().unwrap().split(',').collect();
    assert!(!example_traces.is_empty() && example_traces.iter().all(|t| FAILED_TRACES.contains(t)), "{alert}");
    let (status, trace) = get_json(&query_url(&server, &format!("/api/v1/traces/{}", example_traces[0]))).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(otlp_spans(&trace).len(), 1);

    let (status, alerts) = get_json(&query_url(&server, "/api/alerts")).await;
    assert_eq!(status, 200);
    let listed = &alerts["alerts"][0];
    assert_eq!(listed["name"], "CartErrors");
    assert_eq!(listed["state"], "firing");
    assert_eq!(listed["value"], 1.0);
    assert_eq!(listed["threshold"], 0.5);
    assert_eq!(listed["labels"]["severity"], "page");
    assert!(listed["activeAt"].is_string() && listed["firedAt"].is_string(), "{listed}");
    let first = &listed["exampleTraces"][0];
    assert!(FAILED_TRACES.contains(&first["traceId"].as_str().unwrap()), "{listed}");
    assert_eq!(first["link"], format!("/api/v1/traces/{}", first["traceId"].as_str().unwrap()));

    // A config rule is read-only through the API.
    let client = reqwest::Client::new();
    let response = client
        .put(query_url(&server, "/api/v1/alert-rules/CartErrors"))
        .json(&serde_json::to_value(cart_errors_rule()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Four successful calls bring the error rate to 3/7, below the threshold.
    let succeeding: Vec<(&str, bool)> = OK_TRACES.iter().map(|t| (*t, false)).collect();
    post_otlp_json(&server, &server_spans("cart", &succeeding)).await;

    let resolved = wait_for_notification(&received, "resolved").await;
    let alert = &resolved["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["labels"]["alertname"], "CartErrors");
    assert_ne!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["fingerprint"], firing["alerts"][0]["fingerprint"]);
    assert_eq!(alert["startsAt"], firing["alerts"][0]["startsAt"]);
    let (_, alerts) = get_json(&query_url(&server, "/api/alerts")).await;
    assert_eq!(alerts["alerts"][0]["state"], "resolved");
    assert!(alerts["alerts"][0]["resolvedAt"].is_string());

    // Counted once the receiver's answer is read, which may be just after the body arrived.
    let started = Instant::now();
    loop {
        let text = metrics_text(&server).await;
        if metric_value(&text, "sextant_alert_notifications_sent_total") == 2.0 {
            assert_eq!(metric_value(&text, "sextant_alert_notifications_failed_total"), 0.0);
            break;
        }
        assert!(started.elapsed() < DEADLINE, "two notifications counted as sent: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_rule_update_resolves_a_firing_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = webhook_receiver().await;
    let server = start_with_rules(dir.path(), &[("SEXTANT_ALERTING_WEBHOOKS", &hook_url)], Vec::new()).await;
    let client = reqwest::Client::new();
    let mut rule = serde_json::to_value(cart_errors_rule()).unwrap();
    let response = client.post(query_url(&server, "/api/v1/alert-rules")).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let mut later = rule.clone();
    later["name"] = json!("CartErrorsForAnHour");
    later["for_seconds"] = json!(3600);
    let response = client.post(query_url(&server, "/api/v1/alert-rules")).json(&later).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let failing: Vec<(&str, bool)> = FAILED_TRACES.iter().map(|t| (*t, true)).collect();
    post_otlp_json(&server, &server_spans("cart", &failing)).await;
    wait_for_notification(&received, "firing").await;
    // Evaluated together: the rule with a `for` of an hour is pending.
    let (_, alerts) = get_json(&query_url(&server, "/api/alerts")).await;
    let states: Vec<(&str, &str)> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("CartErrors", "firing"), ("CartErrorsForAnHour", "pending")]);
    assert!(alerts["alerts"][1]["firedAt"].is_null());

    // An error rate of 1 is not above 1: the updated rule's condition is false.
    rule["threshold"] = json!(1.0);
    let response = client.put(query_url(&server, "/api/v1/alert-rules/CartErrors")).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let resolved = wait_for_notification(&received, "resolved").await;
    assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "CartErrors");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_rules_persist_across_a_restart_and_bad_rules_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_rules(dir.path(), &[], vec![cart_errors_rule()]).await;
    let client = reqwest::Client::new();
    let rules_url = query_url(&server, "/api/v1/alert-rules");
    let slow = json!({
        "name": "SlowCheckout",
        "expr": {"metric": "latency_quantile", "quantile": 0.99, "service": "checkout", "operation": "GET /checkout"},
        "op": ">", "threshold": 500.0, "for_seconds": 60,
    });
    let response = client.post(&rules_url).json(&slow).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!((created["source"].as_str(), created["expr"]["window_seconds"].as_u64()), (Some("api"), Some(300)));

    let quiet =
        json!({"name": "QuietCart", "expr": {"metric": "call_rate", "service": "cart"}, "op": "<", "threshold": 0.1});
    assert_eq!(client.post(&rules_url).json(&quiet).send().await.unwrap().status(), 201);
    assert_eq!(client.post(&rules_url).json(&quiet).send().await.unwrap().status(), 409, "duplicate name");
    let as_config =
        json!({"name": "CartErrors", "expr": {"metric": "call_rate", "service": "cart"}, "op": "<", "threshold": 1});
    assert_eq!(client.post(&rules_url).json(&as_config).send().await.unwrap().status(), 409, "a config rule's name");

    let invalid = [
        (
            json!({"name": "x", "expr": {"metric": "latency_quantile", "service": "a"}, "op": ">", "threshold": 1}),
            "expr.quantile",
        ),
        (json!({"name": "x", "expr": {"metric": "errors", "service": "a"}, "op": ">", "threshold": 1}), "expr.metric"),
        (json!({"name": "x", "expr": {"metric": "error_rate"}, "op": ">", "threshold": 0.1}), "expr"),
        (json!({"name": "x", "expr": {"metric": "error_rate", "service": "a"}, "op": "=", "threshold": 0.1}), "op"),
        (
            json!({"name": "x", "expr": {"metric": "error_rate", "service": "a"}, "op": ">", "threshold": 3}),
            "threshold",
        ),
    ];
    for (rule, field) in invalid {
        let response = client.post(&rules_url).json(&rule).send().await.unwrap();
        assert_eq!(response.status(), 400, "{rule}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_rule");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{field}: {message}");
    }

    let mut updated = quiet.clone();
    updated["threshold"] = json!(0.5);
    let quiet_url = query_url(&server, "/api/v1/alert-rules/QuietCart");
    assert_eq!(client.put(&quiet_url).json(&updated).send().await.unwrap().status(), 200);
    let unknown = query_url(&server, "/api/v1/alert-rules/Nope");
    assert_eq!(client.put(&unknown).json(&updated).send().await.unwrap().status(), 404);
    assert_eq!(client.delete(&unknown).send().await.unwrap().status(), 404);
    let config_rule = query_url(&server, "/api/v1/alert-rules/CartErrors");
    assert_eq!(client.delete(&config_rule).send().await.unwrap().status(), 403);
    let slow_url = query_url(&server, "/api/v1/alert-rules/SlowCheckout");
    assert_eq!(client.delete(&slow_url).send().await.unwrap().status(), 204);
    server.shutdown().await.unwrap();

    let server = start_with_rules(dir.path(), &[], vec![cart_errors_rule()]).await;
    let (status, listed) = get_json(&query_url(&server, "/api/v1/alert-rules")).await;
    assert_eq!(status, 200);
    let names: Vec<(&str, &str)> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("CartErrors", "config"), ("QuietCart", "api")]);
    let (status, quiet) = get_json(&query_url(&server, "/api/v1/alert-rules/QuietCart")).await;
    assert_eq!((status, quiet["threshold"].as_f64()), (200, Some(0.5)));
    let (status, _) = get_json(&query_url(&server, "/api/v1/alert-rules/SlowCheckout")).await;
    assert_eq!(status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceql_rule_fires_on_the_slowest_matching_series() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = webhook_receiver().await;
    let server = start_with_rules(dir.path(), &[("SEXTANT_ALERTING_WEBHOOKS", &hook_url)], Vec::new()).await;
    let client = reqwest::Client::new();
    let rules_url = query_url(&server, "/api/v1/alert-rules");
    // Not a metrics query, then a valid one: the slowest span per service over the last minute.
    let mut rule = json!({
        "name": "SlowSpans",
        "expr": {"metric": "traceql", "service": "checkout", "window_seconds": 60, "traceql": "{ kind = server }"},
        "op": ">", "threshold": 1.0,
    });
    let response = client.post(&rules_url).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("expr.traceql: not a metrics query"), "{message}");
    rule["expr"]["traceql"] = json!("{ kind = server } | max_over_time(duration) by (resource.service.name)");
    assert_eq!(client.post(&rules_url).json(&rule).send().await.unwrap().status(), 201);

    // checkout's spans take 1.5 s and 20 ms; cart's 20 ms.
    let end = now_nanos();
    let span = |trace: &str, duration_ms: u64| {
        json!({"traceId": trace, "spanId": "0000000000000001", "name": "POST /checkout", "kind": 2,
               "startTimeUnixNano": (end - duration_ms * MS).to_string(), "endTimeUnixNano": end.to_string()})
    };
    let resource = |service: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
               "scopeSpans": [{"spans": spans}]})
    };
    let slow = "5100000000000000000000000000000a";
    let body = json!({"resourceSpans": [
        resource("checkout", vec![span(slow, 1_500), span("5100000000000000000000000000000b", 20)]),
        resource("cart", vec![span("5100000000000000000000000000000c", 20)]),
    ]});
    post_otlp_json(&server, &body).await;

    let firing = wait_for_notification(&received, "firing").await;
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"], json!({"alertname": "SlowSpans", "service": "checkout"}));
    // Both checkout traces, the slow one first.
    assert_eq!(alert["annotations"]["example_traces"], format!("{slow},5100000000000000000000000000000b"));
    let (_, alerts) = get_json(&query_url(&server, "/api/alerts")).await;
    let listed = &alerts["alerts"][0];
    assert_eq!((listed["metric"].as_str(), listed["value"].as_f64()), (Some("traceql"), Some(1.5)));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerting_endpoints_answer_501_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_ALERTING_ENABLED", "false")]).await;
    for path in ["/api/alerts", "/api/v1/alert-rules"] {
        let (status, body) = get_json(&query_url(&server, path)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (501, Some("alerting_disabled")), "{path}");
    }
    server.shutdown().await.unwrap();
}
