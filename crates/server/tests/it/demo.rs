//! `sextant demo` against an in-process server: its traces are found back through the API,
//! as its ground truth describes them.

use std::collections::BTreeSet;

use serde_json::Value;
use sextant_server::demo::scenario::Scenario;
use sextant_server::demo::{DemoArgs, run};

use crate::support::{get_json, query_url, start_server};

fn spans_of(trace: &Value) -> Vec<(String, Value)> {
    let mut spans = Vec::new();
    for resource_spans in trace["resourceSpans"].as_array().unwrap() {
        let attributes = resource_spans["resource"]["attributes"].as_array().unwrap();
        let service = attributes.iter().find(|a| a["key"] == "service.name").unwrap()["value"]["stringValue"]
            .as_str()
            .unwrap()
            .to_string();
        for scope_spans in resource_spans["scopeSpans"].as_array().unwrap() {
            for span in scope_spans["spans"].as_array().unwrap() {
                spans.push((service.clone(), span.clone()));
            }
        }
    }
    spans
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_traces_are_found_back_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let truth_path = dir.path().join("truth.jsonl");
    let args = DemoArgs {
        endpoint: server.otlp_grpc_address.to_string(),
        seed: 42,
        scenario: Scenario::ReplicationLag,
        rate: 20.0,
        duration: "forever".to_string(),
        traces: Some(300),
        start_unix_nanos: None,
        ground_truth: Some(truth_path.clone()),
        batch_spans: 500,
    };
    let outcome = run(&args, None).await.unwrap();
    assert!(outcome.num_traces >= 300);
    assert_eq!(outcome.counts.spans_rejected, 0);
    assert!(outcome.num_stale_reads > 0);
    let truth: Vec<Value> =
        std::fs::read_to_string(&truth_path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let of_type = |kind: &'static str| truth.iter().filter(move |r| r["type"] == kind);
    assert_eq!(of_type("stale_read").count() as u64, outcome.num_stale_reads);

    let (_, services) = get_json(&query_url(&server, "/api/v1/services")).await;
    let services: BTreeSet<&str> =
        services["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let expected = ["cart", "catalog", "gateway", "inventory", "order", "payment", "reviews"];
    assert_eq!(services, expected.into_iter().collect());

    // A cart session: searching its business process ID finds exactly its traces.
    let session = of_type("process")
        .filter(|p| p["id"].as_str().unwrap().starts_with("cart-"))
        .max_by_key(|p| p["trace_ids"].as_array().unwrap().len())
        .unwrap();
    let id = session["id"].as_str().unwrap();
    let (status, found) =
        get_json(&query_url(&server, &format!("/api/v1/search?attr.business_process.id={id}&limit=100"))).await;
    assert_eq!(status, 200, "{found}");
    let found: BTreeSet<&str> =
        found["traces"].as_array().unwrap().iter().map(|t| t["traceId"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> =
        session["trace_ids"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(found, expected, "{id}");

    // An order: each consumer trace links to the producer span of the checkout trace.
    let order = of_type("process").find(|p| p["trace_ids"].as_array().unwrap().len() == 3).expect("an order consumed");
    let trace_ids: Vec<&str> = order["trace_ids"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let (_, checkout) = get_json(&query_url(&server, &format!("/api/v1/traces/{}", trace_ids[0]))).await;
    let checkout = spans_of(&checkout);
    for consumer_trace in &trace_ids[1..] {
        let (_, consumer) = get_json(&query_url(&server, &format!("/api/v1/traces/{consumer_trace}"))).await;
        let (_, consumer) = spans_of(&consumer).into_iter().find(|(_, s)| !s["links"].is_null()).unwrap();
        let link = &consumer["links"][0];
        assert_eq!(link["traceId"], trace_ids[0]);
        let (service, producer) =
            checkout.iter().find(|(_, s)| s["spanId"] == link["spanId"]).expect("the producer span");
        assert_eq!((service.as_str(), producer["kind"].as_i64()), ("order", Some(4)));
        assert_eq!(attribute(&consumer, "messaging.message.id"), attribute(producer, "messaging.message.id"));
        assert_eq!(attribute(&consumer, "business_process.id").unwrap()["stringValue"], order["id"]);
    }

    // A stale read of the ground truth is stored as it was recorded.
    let stale = of_type("stale_read").next().unwrap();
    let (_, trace) =
        get_json(&query_url(&server, &format!("/api/v1/traces/{}", stale["trace_id"].as_str().unwrap()))).await;
    let (_, read) = spans_of(&trace).into_iter().find(|(_, s)| s["spanId"] == stale["span_id"]).unwrap();
    assert_eq!(attribute(&read, "db.record.key").unwrap()["stringValue"], stale["key"]);
    assert_eq!(attribute(&read, "db.record.version").unwrap()["intValue"], stale["returned_version"].to_string());
    assert_eq!(attribute(&read, "db.replica.region").unwrap()["stringValue"], stale["region"]);
    server.shutdown().await.unwrap();
}
