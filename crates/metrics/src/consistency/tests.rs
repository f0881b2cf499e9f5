//! The analyzer on hand-built spans.

use sextant_model::{AnyValue, KeyValue, Span, SpanKind};

use super::*;
use crate::testing::{MS, SECOND, T0, span, span_id, trace_id, with_parent, with_resource_attribute};

const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

fn db(mut s: Span, attributes: &[(&str, AnyValue)]) -> Span {
    for (key, value) in attributes {
        s.attributes.push(KeyValue::new(*key, value.clone()));
    }
    s
}

fn text(value: &str) -> AnyValue {
    AnyValue::String(value.into())
}

/// A write of `key` at `version`, acknowledged (ended) at `ack`, in `region` at `level`.
fn write(id: u8, key: &str, version: u64, ack: u64, region: &str, level: &str) -> Span {
    db(
        span("cart", "UPDATE shop.carts", SpanKind::Client, (id, id), ack, MS),
        &[
            ("db.system.name", text("cassandra")),
            ("db.operation.name", text("UPDATE")),
            ("db.collection.name", text("carts")),
            ("db.consistency_level", text(level)),
            ("db.replica.region", text(region)),
            ("db.record.key", text(key)),
            ("db.record.version", AnyValue::Int(version as i64)),
        ],
    )
}

/// A read of `key` that returned `version`, started at `start`, without a region.
fn read(id: u8, key: &str, version: u64, start: u64, level: &str) -> Span {
    db(
        span("cart", "SELECT shop.carts", SpanKind::Client, (id, id), start + MS, MS),
        &[
            ("db.system", text("cassandra")),
            ("db.operation", text("SELECT")),
            ("db.collection.name", text("carts")),
            ("cassandra.consistency.level", text(level)),
            ("db.record.key", text(key)),
            ("db.record.version", AnyValue::Int(version as i64)),
        ],
    )
}

/// A read whose region comes from the resource (no `db.replica.region`).
fn read_in(id: u8, key: &str, version: u64, start: u64, region: &str, level: &str) -> Span {
    with_resource_attribute(read(id, key, version, start, level), "cloud.region", region)
}

fn apply(id: u8, write_id: u8, key: &str, version: u64, start: u64, source: &str, replica: &str) -> Span {
    let s = span("cart", "db.replication.apply", SpanKind::Internal, (write_id, id), start + MS / 4, MS / 4);
    db(
        with_parent(s, write_id),
        &[
            ("db.record.key", text(key)),
            ("db.record.version", AnyValue::Int(version as i64)),
            ("db.replication.source_region", text(source)),
            ("db.replica.region", text(replica)),
        ],
    )
}

fn analyzer(wait_seconds: u64) -> ConsistencyAnalyzer {
    ConsistencyAnalyzer::new(ConsistencyConfig { wait_seconds, ..Default::default() }).unwrap()
}

fn stale_ids(analyzer: &ConsistencyAnalyzer) -> Vec<(SpanId, SpanId, u64)> {
    analyzer.stale_reads().map(|s| (s.read.span_id, s.write.span_id, s.staleness_nanos)).collect()
}

#[test]
fn a_read_that_missed_an_acknowledged_write_is_stale_one_that_did_not_is_fresh() {
    let mut a = analyzer(0);
    a.observe(
        &[
            write(1, "carts:1", 100, T0 + 10 * MS, US, "LOCAL_QUORUM"),
            // Started 5 ms after the acknowledgement, returned the version before: stale.
            read_in(2, "carts:1", 0, T0 + 15 * MS, EU, "ONE"),
            // Returned the write: fresh.
            read_in(3, "carts:1", 100, T0 + 16 * MS, EU, "ONE"),
            // Started before the acknowledgement: not stale, whatever it returned.
            read_in(4, "carts:1", 0, T0 + 9 * MS, EU, "ONE"),
            // Started exactly at the acknowledgement: stale by 0.
            read_in(5, "carts:1", 0, T0 + 10 * MS, EU, "ONE"),
        ],
        T0,
    );
    a.expire(T0);
    assert_eq!(stale_ids(&a), [(span_id(2), span_id(1), 5 * MS), (span_id(5), span_id(1), 0)]);
    let stale = a.stale_reads().next().unwrap();
    assert_eq!((stale.read_region.as_str(), stale.write.region.as_str()), (EU, US));
    assert_eq!((stale.read_level.as_str(), stale.write.level.as_str()), ("ONE", "LOCAL_QUORUM"));
    assert_eq!((stale.returned_version, stale.write.version), (0, 100));
    assert_eq!(stale.classification, Classification::Expected);
    assert_eq!(stale.read.trace_id, trace_id(2));
    assert_eq!((a.counters().reads_judged, a.counters().stale_reads), (4, 2));
}

#[test]
fn staleness_runs_from_the_first_missed_write_and_names_the_newest() {
    let mut a = analyzer(0);
    a.observe(
        &[
            write(1, "k", 100, T0 + 10 * MS, US, "ONE"),
            write(2, "k", 200, T0 + 20 * MS, US, "ONE"),
            write(3, "k", 300, T0 + 30 * MS, US, "ONE"),
            // Returned 100: missed 200 (first, acked at 20 ms) and 300 (the newest).
            read_in(4, "k", 100, T0 + 50 * MS, US, "ONE"),
        ],
        T0,
    );
    a.expire(T0);
    assert_eq!(stale_ids(&a), [(span_id(4), span_id(3), 30 * MS)]);
}

#[test]
fn the_verdict_does_not_depend_on_arrival_order_within_the_wait() {
    let spans =
        [write(1, "k", 100, T0 + 10 * MS, US, "LOCAL_QUORUM"), read_in(2, "k", 0, T0 + 20 * MS, EU, "LOCAL_QUORUM")];
    let mut in_order = analyzer(5);
    in_order.observe(&spans[..1], T0);
    in_order.observe(&spans[1..], T0 + SECOND);
    in_order.expire(T0 + 10 * SECOND);

    let mut reversed = analyzer(5);
    reversed.observe(&spans[1..], T0);
    reversed.expire(T0 + 4 * SECOND);
    assert_eq!(reversed.counters().reads_judged, 0, "the read still waits");
    reversed.observe(&spans[..1], T0 + 4 * SECOND);
    reversed.expire(T0 + 10 * SECOND);
    assert_eq!(stale_ids(&in_order), [(span_id(2), span_id(1), 10 * MS)]);
    assert_eq!(stale_ids(&reversed), stale_ids(&in_order));

    // A write arriving after the wait is not held against the read judged without it.
    let mut late = analyzer(5);
    late.observe(&spans[1..], T0);
    late.expire(T0 + 5 * SECOND);
    late.observe(&spans[..1], T0 + 6 * SECOND);
    late.expire(T0 + 20 * SECOND);
    assert!(stale_ids(&late).is_empty());
    assert_eq!(late.counters().reads_judged, 1);
}

#[test]
fn stale_reads_are_classified_by_levels_and_regions() {
    let mut a = analyzer(0);
    a.observe(
        &[
            write(1, "k", 100, T0 + 10 * MS, US, "LOCAL_QUORUM"),
            read(2, "k", 0, T0 + 20 * MS, "LOCAL_QUORUM"), // no region on the read: "", not the write's
            read_in(3, "k", 0, T0 + 21 * MS, EU, "LOCAL_QUORUM"),
            read_in(4, "k", 0, T0 + 22 * MS, US, "LOCAL_QUORUM"),
            read_in(5, "k", 0, T0 + 23 * MS, US, "QUORUM"),
            read_in(6, "k", 0, T0 + 24 * MS, US, "ALL"),
            read_in(7, "k", 0, T0 + 25 * MS, US, "whatever"),
        ],
        T0,
    );
    a.expire(T0);
    let classes: Vec<_> = a.stale_reads().map(|s| (s.read.span_id, s.classification)).collect();
    assert_eq!(
        classes,
        [
            (span_id(2), Classification::Expected),
            (span_id(3), Classification::Expected),
            (span_id(4), Classification::Violation),
            (span_id(5), Classification::Expected),
            (span_id(6), Classification::Violation),
            (span_id(7), Classification::Unknown),
        ]
    );
    let by_pair = a.stale_reads_by_pair();
    assert!(by_pair.contains(&(US, US, Classification::Violation, 2)), "{by_pair:?}");
    assert!(by_pair.contains(&(US, EU, Classification::Expected, 1)), "{by_pair:?}");
}

#[test]
fn replication_lag_runs_from_the_acknowledgement_to_the_apply_start() {
    let mut a = analyzer(0);
    a.observe(
        &[
            // The apply arrives before its write: it waits too.
            apply(11, 1, "k", 100, T0 + 3 * SECOND, US, EU),
            write(1, "k", 100, T0 + 10 * MS, US, "LOCAL_QUORUM"),
            apply(12, 1, "k", 100, T0 + 40 * MS, US, "ap-southeast-1"),
            apply(13, 9, "k", 999, T0 + 40 * MS, US, EU),
        ],
        T0,
    );
    a.expire(T0);
    let c = a.counters();
    assert_eq!((c.applies_judged, c.applies_without_write), (3, 1));
    let totals = a.lag_totals();
    let summary: Vec<_> = totals.iter().map(|(s, r, stats)| (*s, *r, stats.count(), stats.min_nanos)).collect();
    assert_eq!(summary, [(US, "ap-southeast-1", 1, 30 * MS), (US, EU, 1, 3 * SECOND - 10 * MS)]);
    let series = a.lag_in_range(T0, T0 + 60 * SECOND);
    assert_eq!(series.len(), 2);
    let eu = &series[1];
    assert_eq!((eu.total.max_nanos, eu.intervals.len(), eu.intervals[0].0), (3 * SECOND - 10 * MS, 1, T0));
    let exemplar = eu.total.histogram.exemplars().next().unwrap().1;
    assert_eq!((exemplar.trace_id, exemplar.span_id), (trace_id(1), span_id(11)));
    assert!(a.lag_in_range(T0 + 15 * SECOND, T0 + 60 * SECOND).is_empty());
}

#[test]
fn an_apply_whose_write_is_known_is_judged_before_later_writes_of_a_hot_key_push_it_out() {
    let config = ConsistencyConfig { wait_seconds: 10, max_writes_per_key: 2, ..Default::default() };
    let mut a = ConsistencyAnalyzer::new(config).unwrap();
    a.observe(&[write(1, "k", 100, T0 + 10 * MS, US, "LOCAL_QUORUM")], T0);
    a.observe(&[apply(11, 1, "k", 100, T0 + 50 * MS, US, EU)], T0);
    assert_eq!((a.counters().applies_judged, a.num_pending()), (1, 0), "judged without waiting");
    // Two more writes of the key within the wait forget version 100.
    a.observe(&[write(2, "k", 200, T0 + 60 * MS, US, "ONE"), write(3, "k", 300, T0 + 70 * MS, US, "ONE")], T0);
    a.expire(T0 + 20 * SECOND);
    let c = a.counters();
    assert_eq!((c.applies_judged, c.applies_without_write, c.evicted_writes), (1, 0, 1));
    assert_eq!(a.lag_totals()[0].2.min_nanos, 40 * MS);
}

#[test]
fn a_conflict_is_explained_with_the_writes_of_winner_and_loser() {
    let mut a = analyzer(0);
    let mut conflict = apply(11, 1, "prices:7", 100, T0 + 50 * MS, US, EU);
    conflict.attributes.extend([
        KeyValue::string("db.conflict.resolution", "lww"),
        KeyValue::new("db.conflict.winner_version", AnyValue::Int(120)),
        KeyValue::new("db.conflict.loser_versions", AnyValue::Array(vec![AnyValue::Int(100)])),
    ]);
    let mut catalog_write = write(2, "prices:7", 120, T0 + 21 * MS, EU, "LOCAL_QUORUM");
    catalog_write.resource = span("catalog", "x", SpanKind::Client, (2, 2), 1, 1).resource;
    a.observe(&[write(1, "prices:7", 100, T0 + MS, US, "LOCAL_QUORUM"), catalog_write, conflict], T0);
    a.expire(T0);
    let conflicts: Vec<_> = a.conflicts().collect();
    assert_eq!(conflicts.len(), 1);
    let c = conflicts[0];
    assert_eq!((c.key.as_str(), c.region.as_str(), c.resolution.as_str()), ("prices:7", EU, "lww"));
    assert_eq!(c.winner.write_opt.as_ref().map(|w| w.span_id), Some(span_id(2)));
    assert_eq!(
        c.losers.iter().map(|l| (l.version, l.write_opt.as_ref().map(|w| w.span_id))).collect::<Vec<_>>(),
        [(100, Some(span_id(1)))]
    );
    assert_eq!(
        c.explanation,
        "last write wins: version 120 (written by catalog in eu-west-1) is the newest timestamp; \
         100 (written by cart in us-east-1) discarded"
    );
    assert_eq!(a.counters().conflicts, 1);
}

#[test]
fn usage_and_risky_patterns_are_counted() {
    let mut a = analyzer(0);
    a.observe(
        &[
            write(1, "k", 100, T0 + 10 * MS, US, "LOCAL_QUORUM"),
            read_in(2, "k", 100, T0 + 20 * MS, US, "ONE"),
            read_in(3, "k", 0, T0 + 21 * MS, EU, "ONE"),
            read_in(4, "k", 100, T0 + 22 * MS, US, "LOCAL_QUORUM"),
            read_in(5, "other", 0, T0 + 22 * MS, US, "ONE"),
        ],
        T0,
    );
    a.expire(T0);
    let usage: Vec<_> = a.usage().map(|(k, n)| (k.access, k.level.as_str(), k.operation.as_str(), n)).collect();
    assert_eq!(
        usage,
        [
            (AccessKind::Read, "LOCAL_QUORUM", "SELECT", 1),
            (AccessKind::Read, "ONE", "SELECT", 3),
            (AccessKind::Write, "LOCAL_QUORUM", "UPDATE", 1)
        ]
    );
    let risky: Vec<_> = a.risky_patterns().map(|(k, s)| (k.read_level.as_str(), k.write_level.as_str(), s)).collect();
    assert_eq!(risky.len(), 1);
    let (read_level, write_level, stats) = risky[0];
    assert_eq!((read_level, write_level, stats.reads, stats.stale_reads), ("ONE", "LOCAL_QUORUM", 2, 1));
    assert_eq!(stats.example.span_id, span_id(3));
}

#[test]
fn bounds_are_enforced_and_counted() {
    let config = ConsistencyConfig {
        wait_seconds: 100,
        max_keys: 2,
        max_writes_per_key: 1,
        max_pending: 2,
        max_findings: 1,
        max_region_pairs: 1,
        ..Default::default()
    };
    let mut a = ConsistencyAnalyzer::new(config).unwrap();
    a.observe(
        &[
            write(1, "a", 100, T0 + MS, US, "ONE"),
            write(2, "a", 200, T0 + 2 * MS, US, "ONE"), // forgets version 100 of a
            write(3, "b", 100, T0 + 3 * MS, US, "ONE"),
            write(4, "c", 100, T0 + 4 * MS, US, "ONE"), // forgets a
        ],
        T0,
    );
    let c = a.counters();
    assert_eq!((a.num_keys(), a.num_writes(), c.evicted_keys, c.evicted_writes), (2, 2, 1, 2));
    a.observe(
        &[
            read_in(5, "b", 0, T0 + 10 * MS, US, "ONE"),
            read_in(6, "c", 0, T0 + 10 * MS, EU, "ONE"),
            read_in(7, "b", 0, T0 + 11 * MS, US, "ONE"), // judges read 5 early
        ],
        T0,
    );
    assert_eq!((a.num_pending(), a.counters().judged_early, a.counters().reads_judged), (2, 1, 1));
    a.expire(T0 + 100 * SECOND);
    let c = a.counters();
    assert_eq!((c.stale_reads, c.forgotten_findings), (3, 2));
    assert_eq!(stale_ids(&a), [(span_id(7), span_id(3), 8 * MS)], "the ring keeps the newest");
    assert_eq!(c.overflowed_pairs, 1, "us→eu is beyond max_region_pairs");
    assert_eq!(a.stale_reads_by_pair(), [(US, US, Classification::Expected, 2)]);
}

#[test]
fn spans_that_are_not_judged_are_ignored() {
    let mut a = analyzer(0);
    let no_version = db(span("cart", "SELECT x", SpanKind::Client, (1, 1), T0, MS), &[("db.record.key", text("k"))]);
    let other_operation = db(
        span("cart", "TRUNCATE x", SpanKind::Client, (2, 2), T0, MS),
        &[("db.record.key", text("k")), ("db.record.version", text("5"))],
    );
    a.observe(&[no_version, other_operation], T0);
    a.expire(T0);
    assert_eq!(a.counters(), ConsistencyCounters::default());
    assert_eq!(a.usage().count(), 0);
}

#[test]
fn invalid_configs_name_their_key() {
    let key_of = |config: ConsistencyConfig| match ConsistencyAnalyzer::new(config) {
        Err(MetricsError::InvalidConfig { key, .. }) => key,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    assert_eq!(key_of(ConsistencyConfig { max_keys: 0, ..Default::default() }), "max_keys");
    assert_eq!(
        key_of(ConsistencyConfig { lag_buckets_seconds: vec![1.0, 0.5], ..Default::default() }),
        "lag_buckets_seconds"
    );
    let partial: ConsistencyConfig = toml::from_str("wait_seconds = 0").unwrap();
    assert_eq!((partial.wait_seconds, partial.max_keys), (0, DEFAULT_CONSISTENCY_MAX_KEYS));
    assert!(toml::from_str::<ConsistencyConfig>("wait = 1").is_err());
}
