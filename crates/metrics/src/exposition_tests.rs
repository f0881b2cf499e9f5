//! Tests of the text exposition: exact OpenMetrics output for a small fixture, its
//! Prometheus 0.0.4 variant, canonical numbers and exact decimals.

use sextant_model::SpanKind;

use super::*;
use crate::config::{ServiceGraphConfig, SpanMetricsConfig};
use crate::testing::*;

/// Two series and the overflow series (`max_series` = 2), one with a label value that
/// needs escaping; one failed edge.
fn fixture() -> (SpanMetrics, ServiceGraph) {
    let mut metrics = SpanMetrics::new(SpanMetricsConfig {
        latency_buckets_seconds: vec![0.002, 1.0],
        max_series: 2,
        dimensions: vec!["http.route".to_string()],
        ..Default::default()
    })
    .unwrap();
    let route = "a\"b\\c\nd";
    metrics.observe(&[
        with_attribute(
            span("cart", "GET /cart", SpanKind::Server, (0xaa, 1), T0 + 1_250 * MS, MS),
            "http.route",
            route,
        ),
        with_attribute(
            span("cart", "GET /cart", SpanKind::Server, (0xbb, 2), T0 + 2 * SECOND, 3 * MS),
            "http.route",
            route,
        ),
        with_error(span("cart", "POST /pay", SpanKind::Client, (0xcc, 3), T0 + 3 * SECOND, 2_500 * MS)),
        span("cart", "GET /health", SpanKind::Server, (0xdd, 4), T0 + 4 * SECOND, MS),
    ]);
    let mut graph =
        ServiceGraph::new(ServiceGraphConfig { latency_buckets_seconds: vec![0.002, 1.0], ..Default::default() })
            .unwrap();
    graph.observe(
        &[
            with_parent(span("frontend", "Get", SpanKind::Client, (0xee, 5), T0 + SECOND, 50 * MS), 6),
            with_error(with_parent(span("cart", "Get", SpanKind::Server, (0xee, 7), T0 + SECOND, 40 * MS), 5)),
        ],
        0,
    );
    (metrics, graph)
}

const GET: &str = r#"service="cart",span_name="GET /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",http_route="a\"b\\c\nd""#;
const PAY: &str = r#"service="cart",span_name="POST /pay",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_ERROR",http_route="""#;
const EDGE: &str = r#"client="frontend",server="cart",connection_type="""#;

fn expected_open_metrics() -> Vec<String> {
    let trace = |byte: &str| byte.repeat(16);
    let span = |byte: &str| byte.repeat(8);
    let exemplar = |t: &str, s: &str, value: &str, timestamp: &str| {
        format!(r#" # {{trace_id="{}",span_id="{}"}} {value} {timestamp}"#, trace(t), span(s))
    };
    vec![
        "# TYPE traces_spanmetrics_calls counter".to_string(),
        "# HELP traces_spanmetrics_calls Spans per service, span name, kind and status.".to_string(),
        format!("traces_spanmetrics_calls_total{{{GET}}} 2"),
        format!("traces_spanmetrics_calls_total{{{PAY}}} 1"),
        r#"traces_spanmetrics_calls_total{metric_overflow="true"} 1"#.to_string(),
        "# TYPE traces_spanmetrics_latency histogram".to_string(),
        "# HELP traces_spanmetrics_latency Span durations in seconds.".to_string(),
        format!(
            r#"traces_spanmetrics_latency_bucket{{{GET},le="0.002"}} 1{}"#,
            exemplar("aa", "01", "0.001", "1700000011.25")
        ),
        format!(
            r#"traces_spanmetrics_latency_bucket{{{GET},le="1.0"}} 2{}"#,
            exemplar("bb", "02", "0.003", "1700000012.0")
        ),
        format!(r#"traces_spanmetrics_latency_bucket{{{GET},le="+Inf"}} 2"#),
        format!("traces_spanmetrics_latency_sum{{{GET}}} 0.004"),
        format!("traces_spanmetrics_latency_count{{{GET}}} 2"),
        format!(r#"traces_spanmetrics_latency_bucket{{{PAY},le="0.002"}} 0"#),
        format!(r#"traces_spanmetrics_latency_bucket{{{PAY},le="1.0"}} 0"#),
        format!(
            r#"traces_spanmetrics_latency_bucket{{{PAY},le="+Inf"}} 1{}"#,
            exemplar("cc", "03", "2.5", "1700000013.0")
        ),
        format!("traces_spanmetrics_latency_sum{{{PAY}}} 2.5"),
        format!("traces_spanmetrics_latency_count{{{PAY}}} 1"),
        format!(
            r#"traces_spanmetrics_latency_bucket{{metric_overflow="true",le="0.002"}} 1{}"#,
            exemplar("dd", "04", "0.001", "1700000014.0")
        ),
        r#"traces_spanmetrics_latency_bucket{metric_overflow="true",le="1.0"} 1"#.to_string(),
        r#"traces_spanmetrics_latency_bucket{metric_overflow="true",le="+Inf"} 1"#.to_string(),
        r#"traces_spanmetrics_latency_sum{metric_overflow="true"} 0.001"#.to_string(),
        r#"traces_spanmetrics_latency_count{metric_overflow="true"} 1"#.to_string(),
        "# TYPE traces_service_graph_request counter".to_string(),
        "# HELP traces_service_graph_request Requests between two nodes of the service graph.".to_string(),
        format!("traces_service_graph_request_total{{{EDGE}}} 1"),
        "# TYPE traces_service_graph_request_failed counter".to_string(),
        "# HELP traces_service_graph_request_failed Requests where the client or the server span failed.".to_string(),
        format!("traces_service_graph_request_failed_total{{{EDGE}}} 1"),
        "# TYPE traces_service_graph_request_server_seconds histogram".to_string(),
        "# UNIT traces_service_graph_request_server_seconds seconds".to_string(),
        "# HELP traces_service_graph_request_server_seconds Request durations seen by the server, in seconds."
            .to_string(),
        format!(r#"traces_service_graph_request_server_seconds_bucket{{{EDGE},le="0.002"}} 0"#),
        format!(
            r#"traces_service_graph_request_server_seconds_bucket{{{EDGE},le="1.0"}} 1{}"#,
            exemplar("ee", "07", "0.04", "1700000011.0")
        ),
        format!(r#"traces_service_graph_request_server_seconds_bucket{{{EDGE},le="+Inf"}} 1"#),
        format!("traces_service_graph_request_server_seconds_sum{{{EDGE}}} 0.04"),
        format!("traces_service_graph_request_server_seconds_count{{{EDGE}}} 1"),
        "# TYPE traces_service_graph_request_client_seconds histogram".to_string(),
        "# UNIT traces_service_graph_request_client_seconds seconds".to_string(),
        "# HELP traces_service_graph_request_client_seconds Request durations seen by the client, in seconds."
            .to_string(),
        format!(r#"traces_service_graph_request_client_seconds_bucket{{{EDGE},le="0.002"}} 0"#),
        format!(
            r#"traces_service_graph_request_client_seconds_bucket{{{EDGE},le="1.0"}} 1{}"#,
            exemplar("ee", "05", "0.05", "1700000011.0")
        ),
        format!(r#"traces_service_graph_request_client_seconds_bucket{{{EDGE},le="+Inf"}} 1"#),
        format!("traces_service_graph_request_client_seconds_sum{{{EDGE}}} 0.05"),
        format!("traces_service_graph_request_client_seconds_count{{{EDGE}}} 1"),
        "# EOF".to_string(),
    ]
}

fn assert_lines(actual: &str, expected: &[String]) {
    assert!(actual.ends_with('\n'), "the last line ends with a line feed");
    let actual: Vec<&str> = actual.lines().collect();
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "line {}", i + 1);
    }
    assert_eq!(actual.len(), expected.len(), "number of lines");
}

#[test]
fn open_metrics_with_exemplars_is_exact() {
    let (metrics, graph) = fixture();
    let text = render(Format::OpenMetrics { exemplars: true }, Some(&metrics), Some(&graph));
    assert_lines(&text, &expected_open_metrics());
}

#[test]
fn open_metrics_without_exemplars_drops_only_the_exemplars() {
    let (metrics, graph) = fixture();
    let text = render(Format::OpenMetrics { exemplars: false }, Some(&metrics), Some(&graph));
    let expected: Vec<String> = expected_open_metrics()
        .iter()
        .map(|line| line.split_once(" # {").map_or(line.as_str(), |(sample, _)| sample).to_string())
        .collect();
    assert_lines(&text, &expected);
}

#[test]
fn prometheus_text_names_counter_samples_and_has_no_exemplars_units_or_eof() {
    let (metrics, graph) = fixture();
    let text = render(Format::PrometheusText, Some(&metrics), Some(&graph));
    let counters = ["traces_spanmetrics_calls", "traces_service_graph_request", "traces_service_graph_request_failed"];
    let expected: Vec<String> = expected_open_metrics()
        .iter()
        .filter(|line| *line != "# EOF" && !line.starts_with("# UNIT"))
        .map(|line| {
            let line = line.split_once(" # {").map_or(line.as_str(), |(sample, _)| sample);
            for family in counters {
                for keyword in ["TYPE", "HELP"] {
                    let prefix = format!("# {keyword} {family} ");
                    if let Some(rest) = line.strip_prefix(&prefix) {
                        return format!("# {keyword} {family}_total {rest}");
                    }
                }
            }
            line.to_string()
        })
        .collect();
    assert!(expected.contains(&"# TYPE traces_spanmetrics_calls_total counter".to_string()));
    assert_lines(&text, &expected);
    assert_eq!(Format::PrometheusText.content_type(), "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn families_can_be_written_alone_and_empty() {
    let metrics = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
    let text = render(Format::OpenMetrics { exemplars: true }, Some(&metrics), None);
    assert_eq!(
        text,
        "# TYPE traces_spanmetrics_calls counter\n\
         # HELP traces_spanmetrics_calls Spans per service, span name, kind and status.\n\
         # TYPE traces_spanmetrics_latency histogram\n\
         # HELP traces_spanmetrics_latency Span durations in seconds.\n\
         # EOF\n"
    );
    let mut out = String::from("sextant_up 1\n");
    write_families(&mut out, Format::OpenMetrics { exemplars: false }, None, None);
    assert_eq!(out, "sextant_up 1\n");
}

#[test]
fn le_values_are_canonical_numbers() {
    // The renderings the OpenMetrics specification lists.
    let cases: [(f64, &str); 19] = [
        (0.0, "0.0"),
        (0.001, "0.001"),
        (0.002, "0.002"),
        (0.01, "0.01"),
        (0.1, "0.1"),
        (0.9, "0.9"),
        (0.95, "0.95"),
        (0.999, "0.999"),
        (1.0, "1.0"),
        (1.7, "1.7"),
        (10.0, "10.0"),
        (1e-10, "1e-10"),
        (1e-9, "1e-09"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (100_000.0, "100000.0"),
        (1e6, "1e+06"),
        (1.1e23, "1.1e+23"),
        (f64::INFINITY, "+Inf"),
    ];
    for (value, expected) in cases {
        assert_eq!(canonical_float(value), expected, "{value}");
    }
    assert_eq!(canonical_float(16.384), "16.384");
}

#[test]
fn seconds_are_exact_decimals_of_nanoseconds() {
    assert_eq!(nanos_as_seconds(0), "0.0");
    assert_eq!(nanos_as_seconds(4_200_000), "0.0042");
    assert_eq!(nanos_as_seconds(3_000_000_000), "3.0");
    assert_eq!(nanos_as_seconds(1_700_000_011_000_000_001), "1700000011.000000001");
    assert_eq!(nanos_as_seconds(u128::from(u64::MAX) * 4), "73786976294.83820646");
}
