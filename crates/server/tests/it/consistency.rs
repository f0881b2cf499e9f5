//! The consistency analysis against `sextant demo`: on seeded demo traffic, the stale reads,
//! replication lags and conflicts the API reports are exactly those the simulation injected
//! (its ground truth).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use sextant_server::demo::scenario::Scenario;
use sextant_server::demo::{DemoArgs, run};
use sextant_server::serve::Server;

use crate::support::{get_json, metric_value, metrics_text, query_url, start_server_with};

/// Reads and applies wait a second for writes that arrive after them (an apply is sent
/// before its write when the demo's batch boundary falls between them). The demo sends
/// minutes of simulated traffic within that second, so a hot key (a product price) is
/// written far more often per wait than real traffic would: each key keeps more writes.
const SETTINGS: [(&str, &str); 2] =
    [("SEXTANT_METRICS_CONSISTENCY_WAIT_SECONDS", "1"), ("SEXTANT_METRICS_CONSISTENCY_MAX_WRITES_PER_KEY", "1000")];

/// Runs the demo against `server` and returns its ground truth.
async fn demo(server: &Server, dir: &std::path::Path, scenario: Scenario, seed: u64, traces: u64) -> Vec<Value> {
    let truth_path = dir.join(format!("truth-{}.jsonl", scenario.name()));
    let args = DemoArgs {
        endpoint: server.otlp_grpc_address.to_string(),
        seed,
        scenario,
        rate: 20.0,
        duration: "forever".to_string(),
        traces: Some(traces),
        start_unix_nanos: None,
        ground_truth: Some(truth_path.clone()),
        batch_spans: 500,
    };
    let outcome = run(&args, None).await.unwrap();
    assert_eq!(outcome.counts.spans_rejected, 0);
    std::fs::read_to_string(&truth_path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Waits until every read and apply received has been judged (their wait is over), then
/// returns `/api/v1/consistency/levels`.
async fn settled(server: &Server) -> Value {
    for _ in 0..150 {
        let (status, levels) = get_json(&query_url(server, "/api/v1/consistency/levels")).await;
        assert_eq!(status, 200, "{levels}");
        if levels["counters"]["pending"] == 0 {
            return levels;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reads and applies still pending after 15 s");
}

fn of_type<'a>(truth: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    truth.iter().filter(move |r| r["type"] == kind)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// (read span, write span, key, returned version, newer version, staleness) of each stale read.
type StaleKey = (String, String, String, String, String, String);

fn stale_reads_in_truth(truth: &[Value]) -> BTreeSet<StaleKey> {
    of_type(truth, "stale_read")
        .map(|r| {
            (
                text(&r["span_id"]),
                text(&r["write_span_id"]),
                text(&r["key"]),
                text(&r["returned_version"]),
                text(&r["newer_version"]),
                text(&r["staleness_nanos"]),
            )
        })
        .collect()
}

async fn stale_reads_reported(server: &Server) -> (BTreeSet<StaleKey>, Vec<Value>) {
    let (status, answer) = get_json(&query_url(server, "/api/v1/consistency/stale-reads?limit=10000")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["truncated"], false);
    let findings = answer["staleReads"].as_array().unwrap().clone();
    let keys = findings
        .iter()
        .map(|f| {
            (
                text(&f["read"]["spanId"]),
                text(&f["write"]["spanId"]),
                text(&f["key"]),
                text(&f["read"]["returnedVersion"]),
                text(&f["write"]["version"]),
                text(&f["stalenessNanos"]),
            )
        })
        .collect();
    (keys, findings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_lag_stale_reads_and_lags_match_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &SETTINGS).await;
    let truth = demo(&server, dir.path(), Scenario::ReplicationLag, 42, 300).await;
    let levels = settled(&server).await;

    let expected = stale_reads_in_truth(&truth);
    assert!(expected.len() > 5, "the scenario injects stale reads: {}", expected.len());
    let (reported, findings) = stale_reads_reported(&server).await;
    assert_eq!(reported, expected, "exactly the injected stale reads");
    // Every finding names the regions, levels and trace of the ground truth's record.
    let truth_by_read: BTreeMap<String, &Value> =
        of_type(&truth, "stale_read").map(|r| (text(&r["span_id"]), r)).collect();
    for finding in &findings {
        let record = truth_by_read[&text(&finding["read"]["spanId"])];
        assert_eq!(finding["read"]["traceId"], record["trace_id"]);
        assert_eq!(finding["read"]["region"], record["region"]);
        assert_eq!(finding["read"]["level"], record["level"]);
        assert_eq!(finding["read"]["startTimeUnixNano"], text(&record["read_unix_nanos"]));
        assert_eq!(finding["write"]["traceId"], record["write_trace_id"]);
        assert_eq!(finding["write"]["region"], record["write_region"]);
        assert_eq!(finding["write"]["level"], record["write_level"]);
        // Weak reads (ONE, or LOCAL_QUORUM in another region than the write) may miss a write.
        assert_eq!(finding["classification"], "expected", "{finding}");
    }
    // By trace: the stale reads whose read or write is in one trace, for the trace view.
    let read_trace = text(&findings[0]["read"]["traceId"]);
    let in_trace: BTreeSet<String> = findings
        .iter()
        .filter(|f| text(&f["read"]["traceId"]) == read_trace || text(&f["write"]["traceId"]) == read_trace)
        .map(|f| text(&f["read"]["spanId"]))
        .collect();
    let url = format!("/api/v1/consistency/stale-reads?limit=10000&traceId={read_trace}");
    let (_, by_trace) = get_json(&query_url(&server, &url)).await;
    let by_trace: BTreeSet<String> =
        by_trace["staleReads"].as_array().unwrap().iter().map(|f| text(&f["read"]["spanId"])).collect();
    assert_eq!(by_trace, in_trace);
    let (status, _) = get_json(&query_url(&server, "/api/v1/consistency/stale-reads?traceId=xyz")).await;
    assert_eq!(status, 400);
    let counters = &levels["counters"];
    assert_eq!(counters["staleReads"], expected.len());
    assert_eq!(counters["appliesWithoutWrite"], 0, "{counters}");

    // Replication lag per region pair: the counts, minimum and maximum of the injected delays.
    let mut injected: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in of_type(&truth, "replication") {
        let pair = (text(&r["source_region"]), text(&r["replica_region"]));
        injected.entry(pair).or_default().push(r["delay_nanos"].as_u64().unwrap());
    }
    let (status, lag) = get_json(&query_url(&server, "/api/v1/consistency/replication-lag")).await;
    assert_eq!(status, 200, "{lag}");
    let reported: BTreeMap<(String, String), (u64, String, String)> = lag["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let pair = (text(&p["sourceRegion"]), text(&p["replicaRegion"]));
            (pair, (p["count"].as_u64().unwrap(), text(&p["minNanos"]), text(&p["maxNanos"])))
        })
        .collect();
    let expected_lag: BTreeMap<(String, String), (u64, String, String)> = injected
        .iter()
        .map(|(pair, delays)| {
            let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
            (pair.clone(), (delays.len() as u64, min.to_string(), max.to_string()))
        })
        .collect();
    assert_eq!(reported, expected_lag);
    assert_eq!(reported.len(), 6, "every ordered pair of the three regions");
    let lagging = lag["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sourceRegion"] == "us-east-1" && p["replicaRegion"] == "eu-west-1")
        .unwrap();
    for pair in lag["pairs"].as_array().unwrap() {
        let (max, p99) = (pair["maxMillis"].as_f64().unwrap(), pair["p99Millis"].as_f64().unwrap());
        assert!(p99 <= max && pair["p50Millis"].as_f64().unwrap() >= pair["minMillis"].as_f64().unwrap(), "{pair}");
    }
    let p50 = lagging["p50Millis"].as_f64().unwrap();
    assert!((2_000.0..=6_000.0).contains(&p50), "the lagging pair's median is in its 2–6 s: {p50}");
    assert!(!lagging["exemplars"].as_array().unwrap().is_empty());
    assert!(!lagging["series"].as_array().unwrap().is_empty());

    // The same through /metrics.
    let metrics = metrics_text(&server).await;
    let count = metric_value(
        &metrics,
        "sextant_consistency_replication_lag_seconds_count{source_region=\"us-east-1\",replica_region=\"eu-west-1\"}",
    );
    assert_eq!(count as usize, injected[&("us-east-1".to_string(), "eu-west-1".to_string())].len());
    let stale_total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sextant_consistency_stale_reads_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(stale_total as usize, expected.len());

    // Usage: the demo reads carts at ONE, LOCAL_QUORUM and QUORUM and writes at LOCAL_QUORUM.
    let usage = levels["usage"].as_array().unwrap();
    let carts_levels: BTreeSet<(String, String)> =
        usage.iter().filter(|u| u["collection"] == "carts").map(|u| (text(&u["access"]), text(&u["level"]))).collect();
    assert!(carts_levels.contains(&("read".to_string(), "ONE".to_string())), "{carts_levels:?}");
    assert!(carts_levels.contains(&("write".to_string(), "LOCAL_QUORUM".to_string())), "{carts_levels:?}");
    let risky = levels["riskyPatterns"].as_array().unwrap();
    assert!(
        risky.iter().any(|r| r["readLevel"] == "ONE"
            && r["writeLevel"] == "LOCAL_QUORUM"
            && r["staleReads"].as_u64() > Some(0)),
        "{risky:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_traffic_stale_reads_match_the_ground_truth_and_none_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &SETTINGS).await;
    let truth = demo(&server, dir.path(), Scenario::Normal, 7, 300).await;
    settled(&server).await;
    let (reported, findings) = stale_reads_reported(&server).await;
    assert_eq!(reported, stale_reads_in_truth(&truth));
    assert!(findings.iter().all(|f| f["classification"] == "expected"));
    // Consistent reads (QUORUM: the newest acknowledged version) are judged and never stale.
    let levels = settled(&server).await;
    let quorum_reads: u64 = levels["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["access"] == "read" && u["level"] == "QUORUM")
        .map(|u| u["spans"].as_u64().unwrap())
        .sum();
    assert!(quorum_reads > 10, "the demo reads carts at QUORUM at checkout: {quorum_reads}");
    assert!(findings.iter().all(|f| f["read"]["level"] != "QUORUM"), "no consistent read is stale");
    let (_, violations) =
        get_json(&query_url(&server, "/api/v1/consistency/stale-reads?classification=violation")).await;
    assert_eq!(violations["matched"], 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_conflicts_are_explained_as_the_ground_truth_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &SETTINGS).await;
    let truth = demo(&server, dir.path(), Scenario::PriceConflicts, 5, 300).await;
    settled(&server).await;
    let expected: BTreeSet<(String, String, String, String, Vec<String>)> = of_type(&truth, "conflict")
        .map(|c| {
            let losers = c["loser_versions"].as_array().unwrap().iter().map(text).collect();
            (text(&c["apply_span_id"]), text(&c["key"]), text(&c["region"]), text(&c["winner_version"]), losers)
        })
        .collect();
    assert!(expected.len() > 3, "the scenario injects conflicts: {}", expected.len());
    let (status, answer) = get_json(&query_url(&server, "/api/v1/consistency/conflicts?limit=10000")).await;
    assert_eq!(status, 200, "{answer}");
    let conflicts = answer["conflicts"].as_array().unwrap();
    let reported: BTreeSet<(String, String, String, String, Vec<String>)> = conflicts
        .iter()
        .map(|c| {
            let losers = c["losers"].as_array().unwrap().iter().map(|l| text(&l["version"])).collect();
            (text(&c["apply"]["spanId"]), text(&c["key"]), text(&c["region"]), text(&c["winner"]["version"]), losers)
        })
        .collect();
    assert_eq!(reported, expected);
    // By trace: a conflict is found from its apply's trace.
    let apply_trace = text(&conflicts[0]["apply"]["traceId"]);
    let url = format!("/api/v1/consistency/conflicts?limit=10000&traceId={apply_trace}");
    let (_, by_trace) = get_json(&query_url(&server, &url)).await;
    let by_trace = by_trace["conflicts"].as_array().unwrap();
    assert!(by_trace.iter().any(|c| c["apply"]["spanId"] == conflicts[0]["apply"]["spanId"]));
    assert!(by_trace.len() < conflicts.len(), "other traces' conflicts are left out");
    for conflict in conflicts {
        assert_eq!(conflict["resolution"], "lww");
        // Both writes of a conflicting pair are known, so the explanation names them.
        assert!(!conflict["winner"]["write"].is_null(), "{conflict}");
        assert!(conflict["losers"].as_array().unwrap().iter().all(|l| !l["write"].is_null()), "{conflict}");
        let explanation = conflict["explanation"].as_str().unwrap();
        assert!(explanation.starts_with("last write wins: version "), "{explanation}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn consistency_endpoints_answer_501_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_METRICS_CONSISTENCY_ENABLED", "false")]).await;
    for path in ["stale-reads", "replication-lag", "conflicts", "levels"] {
        let (status, body) = get_json(&query_url(&server, &format!("/api/v1/consistency/{path}"))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (501, Some("consistency_disabled")), "{path}");
    }
    let (status, body) = get_json(&query_url(&server, "/api/v1/span-metrics")).await;
    assert_eq!(status, 200, "the other derived metrics still run: {body}");
    server.shutdown().await.unwrap();
}
