//! Business processes and async flows on `sextant demo` traffic: the process API assembles
//! exactly the traces the simulation's ground truth lists for a process, in time order with
//! consistent gaps and hops; a process search finds it; backlinks lead from a producer trace
//! to its consumer traces.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sextant_server::demo::scenario::Scenario;
use sextant_server::demo::{DemoArgs, run};

use crate::support::{get_json, post_otlp_json, query_url, start_server, start_server_with};

fn nanos(value: &Value) -> i128 {
    value.as_str().unwrap_or_else(|| panic!("{value} is not a string of nanoseconds")).parse().unwrap()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_view_assembles_every_step_of_an_order_and_backlinks_reach_its_consumers() {
    // Also read after a restart, from blocks.
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let truth_path = dir.path().join("truth.jsonl");
    let args = DemoArgs {
        endpoint: server.otlp_grpc_address.to_string(),
        seed: 7,
        scenario: Scenario::Normal,
        rate: 20.0,
        duration: "forever".to_string(),
        traces: Some(200),
        start_unix_nanos: None,
        ground_truth: Some(truth_path.clone()),
        batch_spans: 500,
    };
    run(&args, None).await.unwrap();
    let truth: Vec<Value> =
        std::fs::read_to_string(&truth_path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let processes: Vec<&Value> = truth.iter().filter(|r| r["type"] == "process").collect();
    let order = processes
        .iter()
        .find(|p| p["id"].as_str().unwrap().starts_with("order-") && p["trace_ids"].as_array().unwrap().len() == 3)
        .expect("an order that was paid and consumed");
    let order_id = order["id"].as_str().unwrap();
    let order_traces = strings(&order["trace_ids"]);

    // Answered from the head, then, after a restart flushed everything, from blocks: alike.
    let (status, from_head) = get_json(&query_url(&server, &format!("/api/v1/processes/{order_id}"))).await;
    assert_eq!(status, 200, "{from_head}");
    server.shutdown().await.unwrap();
    let server = start_server(dir.path()).await;
    assert!(std::fs::read_dir(dir.path().join("store/blocks")).unwrap().next().is_some(), "the shutdown flushed");

    // The process view: exactly the ground truth's traces, as steps in the order they ran.
    let (status, view) = get_json(&query_url(&server, &format!("/api/v1/processes/{order_id}"))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view, from_head);
    assert_eq!(view["partial"], false);
    let steps = view["steps"].as_array().unwrap();
    let step_ids: Vec<&str> = steps.iter().map(|s| s["traceId"].as_str().unwrap()).collect();
    assert_eq!(step_ids, order_traces, "{order_id}");
    assert_eq!(view["traceCount"], 3);
    let mut span_count = 0;
    for (step, trace_id) in steps.iter().zip(&order_traces) {
        // Each step is the whole trace, with the start and end of its spans.
        let (_, search) =
            get_json(&query_url(&server, &format!("/api/v1/search?attr.business_process.id={order_id}&limit=10")))
                .await;
        let summary = search["traces"].as_array().unwrap().iter().find(|t| t["traceId"] == *trace_id).unwrap();
        assert_eq!(step["startTimeUnixNano"], summary["startTimeUnixNano"]);
        assert_eq!(step["durationNanos"], summary["durationNanos"]);
        assert_eq!(step["spanCount"], summary["spanCount"]);
        let spans = step["spans"].as_array().unwrap();
        assert_eq!(spans.len() as u64, step["spanCount"].as_u64().unwrap());
        assert!(spans.iter().all(|s| s["traceId"] == *trace_id));
        assert!(spans.iter().any(|s| s["inProcess"] == true));
        let latest_end = spans.iter().map(|s| nanos(&s["endTimeUnixNano"])).max().unwrap();
        assert_eq!(nanos(&step["endTimeUnixNano"]), latest_end);
        span_count += spans.len();
    }
    assert_eq!(view["spanCount"].as_u64().unwrap() as usize, span_count);
    // The checkout's gateway spans belong to the cart session, not to the order.
    assert!(steps[0]["spans"].as_array().unwrap().iter().any(|s| s["inProcess"] == false));
    let starts: Vec<i128> = steps.iter().map(|s| nanos(&s["startTimeUnixNano"])).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "steps in time order: {starts:?}");
    // Gaps: the next step's start minus the previous step's end.
    let gaps = view["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2);
    for (i, gap) in gaps.iter().enumerate() {
        assert_eq!(gap["fromTraceId"], order_traces[i]);
        assert_eq!(gap["toTraceId"], order_traces[i + 1]);
        let expected = nanos(&steps[i + 1]["startTimeUnixNano"]) - nanos(&steps[i]["endTimeUnixNano"]);
        assert_eq!(nanos(&gap["gapNanos"]), expected);
    }
    // (A gap may be negative: the checkout trace's replication spans, applied
    // asynchronously in the write's trace, can end after a consumer started.)
    // Hops: the checkout's producer span to each consumer trace, by span link.
    let hops = view["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{hops:?}");
    for (hop, consumer_trace) in hops.iter().zip(&order_traces[1..]) {
        assert_eq!(hop["via"], "link");
        assert_eq!(hop["producer"]["traceId"], order_traces[0]);
        assert_eq!(hop["producer"]["kind"], "producer");
        assert_eq!(hop["consumer"]["traceId"], *consumer_trace);
        assert_eq!(hop["consumer"]["kind"], "consumer");
        assert_eq!((hop["messagingSystem"].as_str(), hop["destination"].as_str()), (Some("kafka"), Some("orders")));
        assert!(hop["messageId"].as_str().unwrap().starts_with("msg-"));
        let wait = nanos(&hop["consumer"]["startTimeUnixNano"]) - nanos(&hop["producer"]["endTimeUnixNano"]);
        assert_eq!(nanos(&hop["queueWaitNanos"]), wait);
        assert!(wait > 0);
    }

    // A long cart session: every one of its traces, none other.
    let session = processes
        .iter()
        .filter(|p| p["id"].as_str().unwrap().starts_with("cart-"))
        .max_by_key(|p| p["trace_ids"].as_array().unwrap().len())
        .unwrap();
    let (_, view) =
        get_json(&query_url(&server, &format!("/api/v1/processes/{}", session["id"].as_str().unwrap()))).await;
    let found: BTreeSet<&str> =
        view["steps"].as_array().unwrap().iter().map(|s| s["traceId"].as_str().unwrap()).collect();
    assert_eq!(found, strings(&session["trace_ids"]).into_iter().collect());

    // Process search: by an attribute of the order's spans, and over a time range.
    let (status, found) =
        get_json(&query_url(&server, &format!("/api/v1/processes?attr.business_process.id={order_id}"))).await;
    assert_eq!(status, 200, "{found}");
    let listed = &found["processes"].as_array().unwrap();
    let entry = listed.iter().find(|p| p["id"] == order_id).expect("the order is found");
    assert_eq!(entry["traceCount"], 3);
    assert!(strings(&entry["services"]).contains(&"payment"));
    // First and last times are those of the spans carrying the ID.
    let in_process = || steps.iter().flat_map(|s| s["spans"].as_array().unwrap()).filter(|s| s["inProcess"] == true);
    let first = in_process().map(|s| nanos(&s["startTimeUnixNano"])).min().unwrap();
    let last = in_process().map(|s| nanos(&s["endTimeUnixNano"])).max().unwrap();
    assert_eq!((nanos(&entry["firstTimeUnixNano"]), nanos(&entry["lastTimeUnixNano"])), (first, last));
    let (start, end) = (nanos(&steps[0]["startTimeUnixNano"]), nanos(&steps[2]["endTimeUnixNano"]));
    let (_, found) =
        get_json(&query_url(&server, &format!("/api/v1/processes?service=payment&start={start}&end={end}&limit=1000")))
            .await;
    assert!(found["processes"].as_array().unwrap().iter().any(|p| p["id"] == order_id), "{found}");

    // Backlinks: from the checkout (producer) trace to both consumer traces, and back.
    let (status, links) = get_json(&query_url(&server, &format!("/api/v1/traces/{}/links", order_traces[0]))).await;
    assert_eq!(status, 200, "{links}");
    let incoming: BTreeSet<&str> =
        links["incoming"].as_array().unwrap().iter().map(|l| l["linkedTraceId"].as_str().unwrap()).collect();
    assert_eq!(incoming, order_traces[1..].iter().copied().collect());
    for link in links["incoming"].as_array().unwrap() {
        assert_eq!(link["via"], "link");
        assert_eq!(link["span"]["kind"], "producer");
        assert!(nanos(&link["queueWaitNanos"]) > 0);
    }
    let (_, links) = get_json(&query_url(&server, &format!("/api/v1/traces/{}/links", order_traces[2]))).await;
    let outgoing = links["outgoing"].as_array().unwrap();
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0]["linkedTraceId"], order_traces[0]);
    assert_eq!(outgoing[0]["linked"]["kind"], "producer");

    // Unknown processes and traces.
    let (status, _) = get_json(&query_url(&server, "/api/v1/processes/order-999999")).await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&query_url(&server, &format!("/api/v1/traces/{}/links", "ab".repeat(16)))).await;
    assert_eq!(status, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn process_keys_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_PROCESSES_KEYS", "order.number,business_process.id")]).await;
    let now = sextant_model::now_unix_nanos();
    // Two traces of order 77: one names it with the configured key (an integer), one with the default.
    let span = |trace: &str, id: &str, name: &str, start: u64, key: &str, value: Value| {
        json!({"traceId": trace, "spanId": id, "name": name, "kind": 2,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string(),
               "attributes": [{"key": key, "value": value}]})
    };
    let body = json!({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "order"}}]},
    "scopeSpans": [{"spans": [
        span("000000000000000000000000000000b1", "00000000000000b1", "POST /orders", now - 5_000_000_000,
             "order.number", json!({"intValue": "77"})),
        span("000000000000000000000000000000b2", "00000000000000b2", "ship", now - 2_000_000_000,
             "business_process.id", json!({"stringValue": "77"})),
        span("000000000000000000000000000000b3", "00000000000000b3", "unrelated", now - 1_000_000_000,
             "customer.id", json!({"stringValue": "77"})),
    ]}]}]});
    post_otlp_json(&server, &body).await;
    let (status, view) = get_json(&query_url(&server, "/api/v1/processes/77")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(strings(&view["keys"]), ["order.number", "business_process.id"]);
    let steps: Vec<&str> = view["steps"].as_array().unwrap().iter().map(|s| s["traceId"].as_str().unwrap()).collect();
    assert_eq!(steps, ["000000000000000000000000000000b1", "000000000000000000000000000000b2"]);

    // After a restart the traces are in a block, found through its attribute index (the
    // custom key included): the same answer.
    server.shutdown().await.unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_PROCESSES_KEYS", "order.number,business_process.id")]).await;
    let blocks: Vec<_> =
        std::fs::read_dir(dir.path().join("store/blocks")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!blocks.is_empty() && blocks.iter().all(|b| b.join("attrs.bin").exists()), "{blocks:?}");
    let (status, from_blocks) = get_json(&query_url(&server, "/api/v1/processes/77")).await;
    assert_eq!(status, 200, "{from_blocks}");
    assert_eq!(from_blocks, view);
    server.shutdown().await.unwrap();
}
