//! Tests of the whole simulation, checked from the spans it emits, independently of the
//! store model that produced them; and of the command-line arguments.

use std::collections::{BTreeMap, BTreeSet};

use sextant_model::{AnyValue, Span, SpanKind, StatusCode, find_attribute};

use super::flows::Simulation;
use super::parse_duration;
use super::scenario::Scenario;
use super::truth::Record;

const START_UNIX_NANOS: u64 = 1_790_000_000_000_000_000;

fn generate(seed: u64, scenario: Scenario, num_traces: u64) -> (Vec<Span>, Vec<Record>) {
    let mut simulation = Simulation::new(seed, scenario, START_UNIX_NANOS, 20.0);
    while simulation.world.num_traces < num_traces {
        simulation.step();
    }
    simulation.finish();
    (simulation.world.take_spans(), simulation.world.take_truth())
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    find_attribute(&span.attributes, key).and_then(AnyValue::as_str)
}

fn number(span: &Span, key: &str) -> Option<u64> {
    match find_attribute(&span.attributes, key) {
        Some(AnyValue::Int(value)) => Some(*value as u64),
        _ => None,
    }
}

fn resource_text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    find_attribute(&span.resource.attributes, key).and_then(AnyValue::as_str)
}

fn is_store_operation(span: &Span, operation: &str) -> bool {
    text(span, "db.system.name") == Some("cassandra") && text(span, "db.operation.name") == Some(operation)
}

/// The stale reads visible in the spans: a read of a key at a weak or strong level that
/// returned version v although a write of a higher version of that key had ended
/// (been acknowledged) before the read started. (trace, span) → (returned, newest newer).
fn stale_reads_in_spans(spans: &[Span]) -> BTreeMap<(String, String), (u64, u64)> {
    let writes: Vec<(&str, u64, u64)> = spans
        .iter()
        .filter(|s| is_store_operation(s, "UPDATE"))
        .map(|s| (text(s, "db.record.key").unwrap(), number(s, "db.record.version").unwrap(), s.end_unix_nanos))
        .collect();
    let mut stale = BTreeMap::new();
    for read in spans.iter().filter(|s| is_store_operation(s, "SELECT")) {
        let key = text(read, "db.record.key").unwrap();
        let returned = number(read, "db.record.version").unwrap();
        let newer = writes
            .iter()
            .filter(|(k, version, end)| *k == key && *version > returned && *end <= read.start_unix_nanos)
            .map(|(_, version, _)| *version)
            .max();
        if let Some(newer) = newer {
            stale.insert((read.trace_id.to_hex(), read.span_id.to_hex()), (returned, newer));
        }
    }
    stale
}

fn stale_reads_in_truth(truth: &[Record]) -> BTreeMap<(String, String), (u64, u64)> {
    truth
        .iter()
        .filter_map(|r| match r {
            Record::StaleRead { trace_id, span_id, returned_version, newer_version, .. } => {
                Some(((trace_id.clone(), span_id.clone()), (*returned_version, *newer_version)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_seed_and_a_trace_count_give_the_same_spans() {
    let (spans, truth) = generate(7, Scenario::ReplicationLag, 300);
    let (again, truth_again) = generate(7, Scenario::ReplicationLag, 300);
    assert!(spans.len() > 2_000, "{} spans", spans.len());
    assert!(spans == again && truth == truth_again);
    let (other_seed, _) = generate(8, Scenario::ReplicationLag, 300);
    assert_ne!(spans, other_seed);
}

#[test]
fn replication_lag_injects_exactly_the_stale_reads_of_the_ground_truth() {
    let (spans, truth) = generate(11, Scenario::ReplicationLag, 600);
    let in_spans = stale_reads_in_spans(&spans);
    assert_eq!(in_spans, stale_reads_in_truth(&truth));
    assert!(in_spans.len() >= 10, "{} stale reads", in_spans.len());
    // Empty carts among them: a cart read in the other region right after the first add.
    let empty_carts = truth
        .iter()
        .filter(|r| matches!(r, Record::StaleRead { key, returned_version: 0, .. } if key.starts_with("carts:")))
        .count();
    assert!(empty_carts > 0);
    // Stale reads are weak reads; those staler than the normal delays cross the lagging pair.
    let mut num_lagging = 0;
    for record in &truth {
        if let Record::StaleRead { region, write_region, level, staleness_nanos, .. } = record {
            assert!(level.is_local(), "{record:?}");
            let pair = [*region, *write_region];
            if pair == ["us-east-1", "eu-west-1"] || pair == ["eu-west-1", "us-east-1"] {
                num_lagging += 1;
            } else {
                assert!(*staleness_nanos < 60_000_000, "{record:?}");
            }
        }
    }
    assert!(num_lagging * 2 > in_spans.len(), "{num_lagging} of {}", in_spans.len());
}

#[test]
fn normal_traffic_has_few_stale_reads_all_in_the_ground_truth() {
    let (spans, truth) = generate(11, Scenario::Normal, 600);
    let in_spans = stale_reads_in_spans(&spans);
    assert_eq!(in_spans, stale_reads_in_truth(&truth));
    let (lag_spans, _) = generate(11, Scenario::ReplicationLag, 600);
    assert!(in_spans.len() * 5 < stale_reads_in_spans(&lag_spans).len(), "{} stale reads", in_spans.len());
}

#[test]
fn replication_spans_carry_the_injected_delays() {
    let (spans, truth) = generate(3, Scenario::ReplicationLag, 400);
    let applies: BTreeMap<String, &Span> =
        spans.iter().filter(|s| s.name == "db.replication.apply").map(|s| (s.span_id.to_hex(), s)).collect();
    let mut num_records = 0;
    for record in &truth {
        let Record::Replication { apply_span_id, source_region, replica_region, delay_nanos, version, key, .. } =
            record
        else {
            continue;
        };
        num_records += 1;
        let span = applies[apply_span_id];
        assert_eq!(text(span, "db.replication.source_region"), Some(*source_region));
        assert_eq!(text(span, "db.replica.region"), Some(*replica_region));
        assert_eq!(resource_text(span, "cloud.region"), Some(*replica_region));
        assert_eq!(
            (text(span, "db.record.key"), number(span, "db.record.version")),
            (Some(key.as_str()), Some(*version))
        );
        assert_eq!(number(span, "db.replication.delay_nanos"), Some(*delay_nanos));
        let lagging =
            matches!((*source_region, *replica_region), ("us-east-1", "eu-west-1") | ("eu-west-1", "us-east-1"));
        if lagging {
            assert!((2_000_000_000..6_000_000_000).contains(delay_nanos), "{record:?}");
        } else {
            assert!((5_000_000..60_000_000).contains(delay_nanos), "{record:?}");
        }
        // The apply joins the trace of its write, as a child of the write span.
        let write = spans.iter().find(|s| Some(s.span_id) == span.parent_span_id).unwrap();
        assert_eq!((write.trace_id, number(write, "db.record.version")), (span.trace_id, Some(*version)));
    }
    assert_eq!(num_records, applies.len());
    // Each write is applied on the two other replicas.
    let num_writes = spans.iter().filter(|s| is_store_operation(s, "UPDATE")).count();
    assert_eq!(applies.len(), 2 * num_writes);
}

#[test]
fn price_conflicts_are_resolved_last_write_wins_as_recorded() {
    let (spans, truth) = generate(5, Scenario::PriceConflicts, 400);
    let in_spans: BTreeSet<(String, u64, Vec<u64>)> = spans
        .iter()
        .filter(|s| text(s, "db.conflict.resolution") == Some("lww"))
        .map(|s| {
            let Some(AnyValue::Array(losers)) = find_attribute(&s.attributes, "db.conflict.loser_versions") else {
                panic!("loser versions of {s:?}")
            };
            let losers = losers.iter().map(|v| if let AnyValue::Int(v) = v { *v as u64 } else { panic!("{v:?}") });
            (s.span_id.to_hex(), number(s, "db.conflict.winner_version").unwrap(), losers.collect())
        })
        .collect();
    let in_truth: BTreeSet<(String, u64, Vec<u64>)> = truth
        .iter()
        .filter_map(|r| match r {
            Record::Conflict { apply_span_id, winner_version, loser_versions, key, .. } => {
                assert!(key.starts_with("prices:"));
                assert!(loser_versions.iter().all(|l| l < winner_version), "last write wins");
                Some((apply_span_id.clone(), *winner_version, loser_versions.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(in_spans, in_truth);
    assert!(in_spans.len() >= 10, "{} conflicts", in_spans.len());
    let (normal, _) = generate(5, Scenario::Normal, 400);
    assert!(normal.iter().filter(|s| text(s, "db.conflict.resolution").is_some()).count() < in_spans.len() / 5);
}

#[test]
fn every_step_of_a_process_carries_its_id_and_consumers_link_to_the_producer() {
    let (spans, truth) = generate(2, Scenario::Normal, 500);
    let mut by_trace: BTreeMap<String, Vec<&Span>> = BTreeMap::new();
    for span in &spans {
        by_trace.entry(span.trace_id.to_hex()).or_default().push(span);
    }
    let (mut carts, mut orders_with_consumers) = (0, 0);
    for record in &truth {
        let Record::Process { id, trace_ids } = record else { continue };
        for trace_id in trace_ids {
            assert!(
                by_trace[trace_id].iter().any(|s| text(s, "business_process.id") == Some(id.as_str())),
                "{id}: trace {trace_id}"
            );
        }
        if id.starts_with("cart-") {
            carts += 1;
            // Root spans of a cart session's traces carry the cart's ID.
            for trace_id in trace_ids {
                let root = by_trace[trace_id].iter().find(|s| s.parent_span_id.is_none()).unwrap();
                assert_eq!(text(root, "business_process.id"), Some(id.as_str()));
            }
        } else if trace_ids.len() == 3 {
            orders_with_consumers += 1;
            let producer = by_trace[&trace_ids[0]].iter().find(|s| s.kind == SpanKind::Producer).unwrap();
            for consumer_trace in &trace_ids[1..] {
                let consumer = by_trace[consumer_trace].iter().find(|s| s.kind == SpanKind::Consumer).unwrap();
                assert_eq!(
                    (consumer.links[0].trace_id, consumer.links[0].span_id),
                    (producer.trace_id, producer.span_id)
                );
                assert_eq!(text(consumer, "messaging.message.id"), text(producer, "messaging.message.id"));
                assert_eq!(text(consumer, "baggage.business_process.id"), Some(id.as_str()));
            }
        }
    }
    assert!(carts > 20 && orders_with_consumers > 5, "{carts} carts, {orders_with_consumers} orders");
}

#[test]
fn declined_payments_are_errors_with_an_exception() {
    let (spans, _) = generate(4, Scenario::Normal, 2_000);
    let declined: Vec<&Span> = spans
        .iter()
        .filter(|s| resource_text(s, "service.name") == Some("payment") && s.kind == SpanKind::Server)
        .filter(|s| s.status_code == StatusCode::Error)
        .collect();
    assert!(!declined.is_empty());
    for span in declined {
        assert_eq!(number(span, "http.response.status_code"), Some(402));
        assert_eq!(span.events[0].name, "exception");
    }
}

#[test]
fn slow_inventory_deploys_a_new_version_with_a_slow_unindexed_query() {
    let inventory_queries = |spans: &[Span]| -> Vec<(String, String, u64)> {
        spans
            .iter()
            .filter(|s| {
                resource_text(s, "service.name") == Some("inventory") && text(s, "db.system.name") == Some("postgresql")
            })
            .filter(|s| text(s, "db.operation.name") == Some("SELECT"))
            .map(|s| {
                let version = resource_text(s, "service.version").unwrap().to_string();
                (version, text(s, "db.collection.name").unwrap().to_string(), s.duration_nanos())
            })
            .collect()
    };
    let (slow, _) = generate(9, Scenario::SlowInventory, 200);
    let (normal, _) = generate(9, Scenario::Normal, 200);
    let slow = inventory_queries(&slow);
    assert!(!slow.is_empty());
    assert!(slow.iter().all(|(v, table, d)| v == "1.5.0" && table == "stock_movements" && *d >= 150_000_000));
    assert!(inventory_queries(&normal).iter().all(|(v, table, d)| v == "1.4.2" && table == "stock" && *d < 3_000_000));
}

#[test]
fn switching_scenarios_is_recorded_and_takes_effect() {
    let mut simulation = Simulation::new(1, Scenario::Normal, START_UNIX_NANOS, 20.0);
    while simulation.world.num_traces < 50 {
        simulation.step();
    }
    simulation.set_scenario(Scenario::SlowInventory);
    let switched_at = simulation.world.now;
    while simulation.world.num_traces < 100 {
        simulation.step();
    }
    let spans = simulation.world.take_spans();
    let truth = simulation.world.take_truth();
    let switches: Vec<_> = truth.iter().filter(|r| matches!(r, Record::Scenario { .. })).collect();
    assert_eq!(switches.len(), 2);
    for span in spans.iter().filter(|s| resource_text(s, "service.name") == Some("inventory")) {
        let expected = if span.start_unix_nanos >= switched_at { "1.5.0" } else { "1.4.2" };
        assert_eq!(resource_text(span, "service.version"), Some(expected));
    }
}

#[test]
fn durations_are_seconds_human_durations_or_forever() {
    use std::time::Duration;
    assert_eq!(parse_duration("forever").unwrap(), None);
    assert_eq!(parse_duration("2.5").unwrap(), Some(Duration::from_millis(2_500)));
    assert_eq!(parse_duration("10m").unwrap(), Some(Duration::from_secs(600)));
    assert!(parse_duration("-1").is_err());
    assert!(parse_duration("soon").is_err());
}
