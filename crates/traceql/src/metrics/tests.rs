//! Metrics queries on a known set of spans, with exact values.
//!
//! Steps of 10 s from T0: (T0, T0+10s], (T0+10s, T0+20s], (T0+20s, T0+30s].
//!
//! | trace | span | service | name   | kind   | start   | duration | other            |
//! |-------|------|---------|--------|--------|---------|----------|------------------|
//! | A     | a1   | api     | GET /  | server | T0+1s   | 100 ms   | http.status 200  |
//! | A     | a2   | db      | SELECT | client | T0+2s   | 3 ms     | child of a1      |
//! | A     | a3   | api     | GET /  | server | T0+3s   | 50 ms    | http.status 404  |
//! | B     | b1   | api     | GET /  | server | T0+12s  | 300 ms   | error            |
//! | B     | b2   | db      | SELECT | client | T0+13s  | 5 ms     | child of b1      |
//! | C     | c1   | api     | POST / | server | T0+25s  | 1 s      |                  |
//! | D     | d1   | api     | GET /  | server | T0+31s  | 1 ms     | after the range  |
//! | E     | e1   | edge    | GET /  | server | T0      | 1 ms     | on the range's start |

use std::sync::Arc;

use sextant_model::{AnyValue, KeyValue, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

use super::*;
use crate::parse;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const T0: u64 = 1_000_000 * S;
const T0_MS: u64 = T0 / MS;

fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, name: &str, start_ms: u64, duration_ms: u64) -> Span {
    let start = T0 + start_ms * MS;
    let mut span =
        Span::new(TraceId([trace; 16]), SpanId([trace, id, 0, 0, 0, 0, 0, 1]), name, start, start + duration_ms * MS);
    span.parent_span_id = parent.map(|p| SpanId([trace, p, 0, 0, 0, 0, 0, 1]));
    span.kind = if name == "SELECT" { SpanKind::Client } else { SpanKind::Server };
    span.resource =
        Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], dropped_attributes_count: 0 });
    span
}

fn traces() -> Vec<Vec<Span>> {
    let mut a1 = span(0xa, 1, None, "api", "GET /", 1_000, 100);
    a1.attributes.push(KeyValue::new("http.status", AnyValue::Int(200)));
    let mut a3 = span(0xa, 3, Some(1), "api", "GET /", 3_000, 50);
    a3.attributes.push(KeyValue::new("http.status", AnyValue::Int(404)));
    let mut b1 = span(0xb, 1, None, "api", "GET /", 12_000, 300);
    b1.status_code = StatusCode::Error;
    vec![
        vec![a1, span(0xa, 2, Some(1), "db", "SELECT", 2_000, 3), a3],
        vec![b1, span(0xb, 2, Some(1), "db", "SELECT", 13_000, 5)],
        vec![span(0xc, 1, None, "api", "POST /", 25_000, 1_000)],
        vec![span(0xd, 1, None, "api", "GET /", 31_000, 1)],
        vec![span(0xe, 1, None, "edge", "GET /", 0, 1)],
    ]
}

fn request(instant: bool, max_exemplars: usize) -> MetricsRequest {
    MetricsRequest { start_unix_nanos: T0, end_unix_nanos: T0 + 30 * S, step_nanos: 10 * S, instant, max_exemplars }
}

fn run_with(query: &str, request: MetricsRequest) -> Vec<Series> {
    let query = parse(query).unwrap_or_else(|e| panic!("{}", e.render(query)));
    let mut evaluator = MetricsEvaluator::new(&query, &request).unwrap();
    for trace in traces() {
        evaluator.observe(&trace).unwrap();
    }
    evaluator.finish()
}

fn run(query: &str) -> Vec<Series> {
    run_with(query, request(false, 0))
}

/// Each series as its label text and its (seconds after T0, value) samples.
fn table(series: &[Series]) -> Vec<(String, Vec<(u64, f64)>)> {
    series
        .iter()
        .map(|s| {
            let samples = s.samples.iter().map(|p| ((p.timestamp_ms - T0_MS) / 1000, p.value)).collect();
            (prometheus_labels(&s.labels), samples)
        })
        .collect()
}

fn owned(rows: &[(&str, &[(u64, f64)])]) -> Vec<(String, Vec<(u64, f64)>)> {
    rows.iter().map(|(labels, samples)| (labels.to_string(), samples.to_vec())).collect()
}

#[test]
fn rate_by_service_counts_spans_per_second_of_step() {
    let expected = owned(&[
        (r#"{resource.service.name="api"}"#, &[(10, 0.2), (20, 0.1), (30, 0.1)]),
        (r#"{resource.service.name="db"}"#, &[(10, 0.1), (20, 0.1), (30, 0.0)]),
    ]);
    assert_eq!(
        table(&run("{ } | rate() by (resource.service.name)")),
        expected,
        "d1 after the range, e1 on its open start"
    );
}

#[test]
fn count_without_by_is_named_and_follows_the_spanset_pipeline() {
    let series = run(r#"{ resource.service.name = "api" } >> { name = "SELECT" } | count_over_time()"#);
    assert_eq!(table(&series), owned(&[(r#"{__name__="count_over_time"}"#, &[(10, 1.0), (20, 1.0), (30, 0.0)])]));
    assert_eq!(series[0].labels, vec![("__name__".to_owned(), Value::String("count_over_time".into()))]);
}

#[test]
fn folds_over_a_field_skip_steps_without_values() {
    let q = |f: &str| table(&run(&format!("{{ }} | {f}(duration) by (resource.service.name)")));
    assert_eq!(
        q("avg_over_time"),
        owned(&[
            // (0.1 + 0.05) / 2 in f64.
            (r#"{resource.service.name="api"}"#, &[(10, 0.07500000000000001), (20, 0.3), (30, 1.0)]),
            (r#"{resource.service.name="db"}"#, &[(10, 0.003), (20, 0.005)]),
        ])
    );
    assert_eq!(q("min_over_time")[0].1, vec![(10, 0.05), (20, 0.3), (30, 1.0)]);
    assert_eq!(q("max_over_time")[0].1, vec![(10, 0.1), (20, 0.3), (30, 1.0)]);
    assert_eq!(q("sum_over_time")[0].1, vec![(10, 0.15000000000000002), (20, 0.3), (30, 1.0)]);
    // Spans without the attribute count nowhere.
    assert_eq!(
        table(&run("{ } | max_over_time(span.http.status)")),
        owned(&[(r#"{__name__="max_over_time"}"#, &[(10, 404.0)])])
    );
}

#[test]
fn quantiles_come_from_power_of_two_buckets() {
    // Step 1 holds 50 ms (bucket 2^26 ns) and 100 ms (2^27 ns); the others one span each.
    let series = run("{ kind = server } | quantile_over_time(duration, .5, 1)");
    let (b26, b27, b29, b30) = (0.067108864, 0.134217728, 0.536870912, 1.073741824);
    assert_eq!(
        table(&series),
        owned(&[
            (r#"{p="0.5"}"#, &[(10, b26), (20, b29), (30, b30)]),
            (r#"{p="1.0"}"#, &[(10, b27), (20, b29), (30, b30)])
        ])
    );
    assert_eq!(series[0].labels, vec![("p".to_owned(), Value::Float(0.5))]);
    let by_name = run(r#"{ kind = server } | quantile_over_time(duration, 0.9) by (name)"#);
    assert_eq!(table(&by_name)[0], (r#"{name="GET /", p="0.9"}"#.to_owned(), vec![(10, b27), (20, b29), (30, 0.0)]));
}

#[test]
fn histogram_series_are_labelled_with_their_bucket() {
    let series = run("{ kind = server } | histogram_over_time(duration)");
    assert_eq!(
        table(&series),
        owned(&[
            (r#"{__bucket="0.067108864"}"#, &[(10, 1.0), (20, 0.0), (30, 0.0)]),
            (r#"{__bucket="0.134217728"}"#, &[(10, 1.0), (20, 0.0), (30, 0.0)]),
            (r#"{__bucket="0.536870912"}"#, &[(10, 0.0), (20, 1.0), (30, 0.0)]),
            (r#"{__bucket="1.073741824"}"#, &[(10, 0.0), (20, 0.0), (30, 1.0)]),
        ])
    );
    assert_eq!(series[0].labels, vec![("__bucket".to_owned(), Value::Float(0.067108864))]);
    // A's slowest span (100 ms) exemplifies its bucket, valued at the bucket's count.
    let series = run_with("{ kind = server } | histogram_over_time(duration)", request(false, 1));
    let exemplars: Vec<(String, f64)> =
        series.iter().flat_map(|s| s.exemplars.iter().map(|e| (prometheus_labels(&s.labels), e.value))).collect();
    assert_eq!(exemplars, [(r#"{__bucket="0.134217728"}"#.to_owned(), 1.0)]);
}

#[test]
fn topk_and_bottomk_keep_the_ranked_series_per_step() {
    // Counts per step: GET / 2 1 0, POST / 0 0 1, SELECT 1 1 0; ties go to the smaller label.
    assert_eq!(
        table(&run("{ } | count_over_time() by (name) | topk(1)")),
        owned(&[(r#"{name="GET /"}"#, &[(10, 2.0), (20, 1.0)]), (r#"{name="POST /"}"#, &[(30, 1.0)])])
    );
    assert_eq!(
        table(&run("{ } | count_over_time() by (name) | bottomk(1)")),
        owned(&[(r#"{name="GET /"}"#, &[(30, 0.0)]), (r#"{name="POST /"}"#, &[(10, 0.0), (20, 0.0)])])
    );
}

#[test]
fn compare_splits_every_attribute_between_selection_and_baseline() {
    let series = run("{ } | compare({ status = error }, 1)");
    let rows = table(&series);
    let row = |labels: &str| rows.iter().find(|(l, _)| l == labels).map(|(_, samples)| samples.clone());
    // Baseline names: GET / (a1, a3) and SELECT (a2, b2) tie at 2; the smaller value wins.
    assert_eq!(row(r#"{__meta_type="baseline", name="GET /"}"#), Some(vec![(10, 2.0), (20, 0.0), (30, 0.0)]));
    assert_eq!(row(r#"{__meta_type="baseline", name="SELECT"}"#), None);
    assert_eq!(row(r#"{__meta_type="selection", name="GET /"}"#), Some(vec![(10, 0.0), (20, 1.0), (30, 0.0)]));
    assert_eq!(row(r#"{__meta_type="baseline_total", name="<nil>"}"#), Some(vec![(10, 3.0), (20, 1.0), (30, 1.0)]));
    assert_eq!(row(r#"{__meta_type="selection_total", name="<nil>"}"#), Some(vec![(10, 0.0), (20, 1.0), (30, 0.0)]));
    assert_eq!(row(r#"{__meta_type="selection", status="error"}"#), Some(vec![(10, 0.0), (20, 1.0), (30, 0.0)]));
    assert_eq!(row(r#"{__meta_type="baseline", span.http.status="200"}"#), Some(vec![(10, 1.0), (20, 0.0), (30, 0.0)]));
    assert_eq!(row(r#"{__meta_error="__too_many_values__", name="<nil>"}"#), Some(vec![]), "3 names, top 1");
    assert_eq!(row(r#"{__meta_error="__too_many_values__", status="<nil>"}"#), None, "one status per group");
    // A window leaves b1 out of the selection.
    let windowed = table(&run(&format!("{{ }} | compare({{ status = error }}, 10, {}, {})", T0, T0 + 5 * S)));
    assert!(!windowed.iter().any(|(l, _)| l.starts_with(r#"{__meta_type="selection""#)), "{windowed:?}");
}

#[test]
fn exemplars_are_one_span_per_trace_in_its_series() {
    let series = run_with("{ } | rate() by (resource.service.name)", request(false, 2));
    let exemplars: Vec<(TraceId, SpanId, f64, u64)> =
        series[0].exemplars.iter().map(|e| (e.trace_id, e.span_id, e.value, e.timestamp_ms - T0_MS)).collect();
    // Traces A and B give one each (their first span, api); the limit of 2 stops C.
    assert_eq!(
        exemplars,
        vec![
            (TraceId([0xa; 16]), SpanId([0xa, 1, 0, 0, 0, 0, 0, 1]), 0.2, 1_000),
            (TraceId([0xb; 16]), SpanId([0xb, 1, 0, 0, 0, 0, 0, 1]), 0.1, 12_000),
        ]
    );
    assert!(series[1].exemplars.is_empty());
    // The slowest span of each trace, valued in seconds.
    let series = run_with("{ } | max_over_time(duration) by (resource.service.name)", request(false, 10));
    let values: Vec<f64> = series[0].exemplars.iter().map(|e| e.value).collect();
    assert_eq!(values, vec![0.1, 0.3, 1.0]);
    assert!(run("{ } | rate()")[0].exemplars.is_empty(), "none asked");
}

#[test]
fn an_instant_query_counts_the_closed_range() {
    let series = run_with("{ } | count_over_time() by (resource.service.name)", request(true, 0));
    assert_eq!(
        table(&series),
        owned(&[
            (r#"{resource.service.name="api"}"#, &[(30, 4.0)]),
            (r#"{resource.service.name="db"}"#, &[(30, 2.0)]),
            (r#"{resource.service.name="edge"}"#, &[(30, 1.0)]),
        ])
    );
    let rate = run_with("{ } | rate()", request(true, 0));
    assert_eq!(rate[0].samples[0].value, 7.0 / 30.0);
}

#[test]
fn nil_group_values_are_left_out_of_the_labels() {
    let series = run("{ } | count_over_time() by (span.http.status, resource.service.name)");
    let labels: Vec<String> = series.iter().map(|s| prometheus_labels(&s.labels)).collect();
    assert_eq!(
        labels,
        [
            r#"{resource.service.name="api", span.http.status="200"}"#,
            r#"{resource.service.name="api", span.http.status="404"}"#,
            r#"{resource.service.name="api"}"#,
            r#"{resource.service.name="db"}"#,
        ]
    );
}

#[test]
fn queries_that_cannot_run_say_why() {
    let new = |q: &str, request| MetricsEvaluator::new(&parse(q).unwrap(), &request).map(|_| ()).unwrap_err();
    assert_eq!(new("{ }", request(false, 0)), MetricsError::NotMetrics);
    assert!(matches!(new("{ } | avg_over_time(name)", request(false, 0)), MetricsError::Eval(EvalError::Type { .. })));
    let backwards = MetricsRequest { end_unix_nanos: T0 - 1, ..request(false, 0) };
    assert!(matches!(new("{ } | rate()", backwards), MetricsError::Request(_)));
    assert!(matches!(
        crate::Compiled::new(&parse("{ } | rate()").unwrap()),
        Err(EvalError::Unsupported(m)) if m.contains("metrics query")
    ));
}

#[test]
fn quantile_and_compare_exemplars_go_to_one_series_each() {
    let series = run_with("{ kind = server } | quantile_over_time(duration, .5, 1)", request(false, 10));
    // A's 100 ms is closer to p50 (50 ms bucket) than to p100 (134 ms); B's and C's are
    // equally close to both, and go to the first.
    assert_eq!((series[0].exemplars.len(), series[1].exemplars.len()), (3, 0));
    let series = run_with("{ } | compare({ status = error })", request(false, 10));
    let exemplars = |labels: &str| -> Vec<(u8, f64)> {
        let series = series.iter().find(|s| prometheus_labels(&s.labels) == labels).expect(labels);
        series.exemplars.iter().map(|e| (e.trace_id.0[0], e.value)).collect()
    };
    // The first counted span of each trace: a1 and c1 in the baseline, b1 in the selection,
    // valued at their total series' step.
    assert_eq!(exemplars(r#"{__meta_type="baseline_total", name="<nil>"}"#), [(0xa, 3.0), (0xc, 1.0)]);
    assert_eq!(exemplars(r#"{__meta_type="selection_total", name="<nil>"}"#), [(0xb, 1.0)]);
    assert_eq!(
        exemplars(r#"{__meta_type="baseline_total", span.http.status="<nil>"}"#),
        [(0xa, 2.0)],
        "a1 and a3 have it"
    );
}
