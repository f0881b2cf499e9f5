//! Text exposition of the cumulative totals, under Tempo's metric and label names, for a
//! Prometheus-compatible scraper.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `traces_spanmetrics_calls` | counter | `service`, `span_name`, `span_kind`, `status_code`, dimensions |
//! | `traces_spanmetrics_latency` | histogram (seconds) | the same |
//! | `traces_service_graph_request` | counter | `client`, `server`, `connection_type` |
//! | `traces_service_graph_request_failed` | counter | the same |
//! | `traces_service_graph_request_server_seconds` | histogram | the same |
//! | `traces_service_graph_request_client_seconds` | histogram | the same |
//!
//! [`write_consistency`] adds the consistency analyzer's families (Sextant's own names):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `sextant_consistency_stale_reads` | counter | `source_region` (the write's), `replica_region` (the read's), `classification` |
//! | `sextant_consistency_replication_lag_seconds` | histogram | `source_region`, `replica_region` |
//! | `sextant_consistency_events` | counter | `event`: `write`, `read_judged`, `apply_judged`, `apply_without_write`, `conflict`, `judged_early`, `evicted_key`, `evicted_write`, `forgotten_finding`, `overflowed_pair`, `overflowed_usage`, `late_lag` |
//! | `sextant_consistency_pending` | gauge | reads and applies waiting to be judged |
//! | `sextant_consistency_keys` | gauge | keys whose writes are remembered |
//!
//! Region pairs are bounded by `max_region_pairs`.
//!
//! `span_kind` is the OTLP enum name (`SPAN_KIND_SERVER`), `status_code` likewise
//! (`STATUS_CODE_ERROR`). An overflow series or edge carries the single label
//! `metric_overflow="true"`.
//!
//! Two formats, chosen by the caller from the scraper's `Accept` header:
//! - [`Format::OpenMetrics`] (OpenMetrics 1.0, `application/openmetrics-text;
//!   version=1.0.0`): a counter family is named without `_total` in its `TYPE`/`HELP` lines
//!   and its samples carry the suffix; histograms in seconds also get a `UNIT` line; with
//!   `exemplars`, each bucket line carries the latest exemplar that fell in that bucket
//!   (` # {trace_id="…",span_id="…"} value timestamp`, both in seconds); the exposition ends
//!   with `# EOF`, which the specification requires.
//! - [`Format::PrometheusText`] (text format 0.0.4, `text/plain; version=0.0.4`): no
//!   exemplars, no `UNIT`, and no `# EOF` (0.0.4 would read it as a comment, but it has no
//!   meaning there), and counter `TYPE`/`HELP` lines name the sample (`…_total`), as 0.0.4
//!   types metric names, not families.
//!
//! Both share everything else, and everything is valid in both: label values escape `\`,
//! `"` and line feed as `\\`, `\"` and `\n`; `le` values are OpenMetrics canonical numbers
//! (Go's `%g` with `.0` appended to integers: `0.002`, `1.0`, `1e+06`, `+Inf`); sums and
//! timestamps are exact decimals of their nanoseconds with a decimal point; counts are
//! integers. Series are sorted by labels, the overflow series last.
//!
//! [`write_families`] writes the families without the terminator, so a server can put them
//! beside its own metrics in one exposition; [`render`] writes a whole exposition.

use sextant_model::StatusCode;

use crate::consistency::ConsistencyAnalyzer;
use crate::histogram::Histogram;
use crate::service_graph::{EdgeLabels, ServiceGraph};
use crate::span_metrics::{SeriesLabels, SpanMetrics};

/// The exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text; exemplars on bucket lines when `exemplars` is set.
    OpenMetrics { exemplars: bool },
    /// Prometheus text format 0.0.4.
    PrometheusText,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics { .. } => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    fn is_open_metrics(self) -> bool {
        matches!(self, Format::OpenMetrics { .. })
    }

    fn exemplars(self) -> bool {
        matches!(self, Format::OpenMetrics { exemplars: true })
    }
}

/// A whole exposition of the given aggregators (either may be left out).
pub fn render(
    format: Format,
    span_metrics_opt: Option<&SpanMetrics>,
    service_graph_opt: Option<&ServiceGraph>,
) -> String {
    let mut out = String::new();
    write_families(&mut out, format, span_metrics_opt, service_graph_opt);
    if format.is_open_metrics() {
        out.push_str("# EOF\n");
    }
    out
}

/// Appends the metric families of the given aggregators to `out`, without a terminator.
pub fn write_families(
    out: &mut String,
    format: Format,
    span_metrics_opt: Option<&SpanMetrics>,
    service_graph_opt: Option<&ServiceGraph>,
) {
    if let Some(metrics) = span_metrics_opt {
        write_span_metrics(out, format, metrics);
    }
    if let Some(graph) = service_graph_opt {
        write_service_graph(out, format, graph);
    }
}

/// Appends the consistency analyzer's families to `out`, without a terminator.
pub fn write_consistency(out: &mut String, format: Format, analyzer: &ConsistencyAnalyzer) {
    let family = "sextant_consistency_stale_reads";
    write_header(out, format, family, Kind::Counter, "Stale reads per write region, read region and classification.");
    for (source, replica, classification, count) in analyzer.stale_reads_by_pair() {
        let labels =
            [("source_region", source), ("replica_region", replica), ("classification", classification.name())];
        write_sample(out, "sextant_consistency_stale_reads_total", &labels, None, &count.to_string());
    }
    let family = "sextant_consistency_replication_lag_seconds";
    write_header(
        out,
        format,
        family,
        Kind::SecondsHistogram,
        "Replication lag from a write's acknowledgement to its apply on a replica, in seconds.",
    );
    for (source, replica, stats) in analyzer.lag_totals() {
        let labels = [("source_region", source), ("replica_region", replica)];
        write_histogram(out, format, family, &labels, &stats.histogram, analyzer.lag_bounds_seconds());
    }
    let c = analyzer.counters();
    let family = "sextant_consistency_events";
    write_header(out, format, family, Kind::Counter, "What the consistency analyzer did with database spans.");
    for (event, value) in [
        ("write", c.writes),
        ("read_judged", c.reads_judged),
        ("apply_judged", c.applies_judged),
        ("apply_without_write", c.applies_without_write),
        ("conflict", c.conflicts),
        ("judged_early", c.judged_early),
        ("evicted_key", c.evicted_keys),
        ("evicted_write", c.evicted_writes),
        ("forgotten_finding", c.forgotten_findings),
        ("overflowed_pair", c.overflowed_pairs),
        ("overflowed_usage", c.overflowed_usage),
        ("late_lag", c.late_lags),
    ] {
        write_sample(out, "sextant_consistency_events_total", &[("event", event)], None, &value.to_string());
    }
    write_header(out, format, "sextant_consistency_pending", Kind::Gauge, "Reads and applies waiting to be judged.");
    write_sample(out, "sextant_consistency_pending", &[], None, &analyzer.num_pending().to_string());
    write_header(out, format, "sextant_consistency_keys", Kind::Gauge, "Keys whose recent writes are remembered.");
    write_sample(out, "sextant_consistency_keys", &[], None, &analyzer.num_keys().to_string());
}

fn write_span_metrics(out: &mut String, format: Format, metrics: &SpanMetrics) {
    let series = metrics.series();
    let label_sets: Vec<Vec<(&str, &str)>> =
        series.iter().map(|(labels, _)| series_labels(labels, metrics.dimension_label_names())).collect();

    write_header(
        out,
        format,
        "traces_spanmetrics_calls",
        Kind::Counter,
        "Spans per service, span name, kind and status.",
    );
    for (labels, (_, stats)) in label_sets.iter().zip(&series) {
        write_sample(out, "traces_spanmetrics_calls_total", labels, None, &stats.calls().to_string());
    }
    write_header(out, format, "traces_spanmetrics_latency", Kind::Histogram, "Span durations in seconds.");
    for (labels, (_, stats)) in label_sets.iter().zip(&series) {
        write_histogram(
            out,
            format,
            "traces_spanmetrics_latency",
            labels,
            stats.latency(),
            metrics.latency_bounds_seconds(),
        );
    }
}

fn write_service_graph(out: &mut String, format: Format, graph: &ServiceGraph) {
    let edges = graph.edges();
    let label_sets: Vec<Vec<(&str, &str)>> = edges.iter().map(|(labels, _)| edge_labels(labels)).collect();
    let bounds_seconds = graph.latency_bounds_seconds();

    let family = "traces_service_graph_request";
    write_header(out, format, family, Kind::Counter, "Requests between two nodes of the service graph.");
    for (labels, (_, stats)) in label_sets.iter().zip(&edges) {
        write_sample(out, "traces_service_graph_request_total", labels, None, &stats.calls().to_string());
    }
    let family = "traces_service_graph_request_failed";
    write_header(out, format, family, Kind::Counter, "Requests where the client or the server span failed.");
    for (labels, (_, stats)) in label_sets.iter().zip(&edges) {
        write_sample(out, "traces_service_graph_request_failed_total", labels, None, &stats.failed().to_string());
    }
    let family = "traces_service_graph_request_server_seconds";
    write_header(out, format, family, Kind::SecondsHistogram, "Request durations seen by the server, in seconds.");
    for (labels, (_, stats)) in label_sets.iter().zip(&edges) {
        write_histogram(out, format, family, labels, stats.server_latency(), bounds_seconds);
    }
    let family = "traces_service_graph_request_client_seconds";
    write_header(out, format, family, Kind::SecondsHistogram, "Request durations seen by the client, in seconds.");
    for (labels, (_, stats)) in label_sets.iter().zip(&edges) {
        write_histogram(out, format, family, labels, stats.client_latency(), bounds_seconds);
    }
}

const OVERFLOW_LABELS: [(&str, &str); 1] = [("metric_overflow", "true")];

fn series_labels<'a>(labels: &'a SeriesLabels, dimension_label_names: &'a [String]) -> Vec<(&'a str, &'a str)> {
    if labels.overflow {
        return OVERFLOW_LABELS.to_vec();
    }
    let mut pairs = vec![
        ("service", labels.service.as_str()),
        ("span_name", labels.span_name.as_str()),
        ("span_kind", labels.span_kind.otlp_name()),
        ("status_code", status_code_name(labels.status_code)),
    ];
    pairs.extend(dimension_label_names.iter().map(String::as_str).zip(labels.dimensions.iter().map(String::as_str)));
    pairs
}

fn edge_labels(labels: &EdgeLabels) -> Vec<(&str, &str)> {
    if labels.overflow {
        return OVERFLOW_LABELS.to_vec();
    }
    vec![
        ("client", labels.client.as_str()),
        ("server", labels.server.as_str()),
        ("connection_type", labels.connection_type.label_value()),
    ]
}

fn status_code_name(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "STATUS_CODE_UNSET",
        StatusCode::Ok => "STATUS_CODE_OK",
        StatusCode::Error => "STATUS_CODE_ERROR",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Histogram,
    /// A histogram whose family name ends in `_seconds`, so it can carry a `UNIT` line.
    SecondsHistogram,
    Gauge,
}

fn write_header(out: &mut String, format: Format, family: &str, kind: Kind, help: &str) {
    let (type_name, suffix) = match kind {
        Kind::Counter if !format.is_open_metrics() => ("counter", "_total"),
        Kind::Counter => ("counter", ""),
        Kind::Histogram | Kind::SecondsHistogram => ("histogram", ""),
        Kind::Gauge => ("gauge", ""),
    };
    out.push_str(&format!("# TYPE {family}{suffix} {type_name}\n"));
    if kind == Kind::SecondsHistogram && format.is_open_metrics() {
        out.push_str(&format!("# UNIT {family} seconds\n"));
    }
    out.push_str(&format!("# HELP {family}{suffix} {help}\n"));
}

/// `name{labels[,le="…"]} value`, without the line feed when an exemplar follows.
fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], le_opt: Option<&str>, value: &str) {
    out.push_str(name);
    let mut pairs = labels.iter().copied().chain(le_opt.map(|le| ("le", le))).peekable();
    if pairs.peek().is_some() {
        out.push('{');
        for (i, (name, value)) in pairs.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            push_escaped(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    if le_opt.is_none() {
        out.push('\n');
    }
}

fn write_histogram(
    out: &mut String,
    format: Format,
    family: &str,
    labels: &[(&str, &str)],
    histogram: &Histogram,
    bounds_seconds: &[f64],
) {
    let bucket_name = format!("{family}_bucket");
    let mut cumulative = 0u64;
    for (i, count) in histogram.bucket_counts().iter().enumerate() {
        cumulative += count;
        let le = bounds_seconds.get(i).map_or_else(|| "+Inf".to_string(), |bound| canonical_float(*bound));
        write_sample(out, &bucket_name, labels, Some(&le), &cumulative.to_string());
        if format.exemplars()
            && let Some(exemplar) = histogram.exemplar(i)
        {
            out.push_str(&format!(
                " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {}",
                exemplar.trace_id,
                exemplar.span_id,
                nanos_as_seconds(u128::from(exemplar.duration_nanos)),
                nanos_as_seconds(u128::from(exemplar.timestamp_unix_nanos)),
            ));
        }
        out.push('\n');
    }
    write_sample(out, &format!("{family}_sum"), labels, None, &nanos_as_seconds(histogram.sum_nanos()));
    write_sample(out, &format!("{family}_count"), labels, None, &histogram.count().to_string());
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Nanoseconds as an exact decimal number of seconds with a decimal point: `0.0042`,
/// `1700000011.25`, `3.0`.
fn nanos_as_seconds(nanos: u128) -> String {
    let nanos_per_second = u128::from(crate::NANOS_PER_SECOND);
    let (seconds, fraction) = (nanos / nanos_per_second, nanos % nanos_per_second);
    if fraction == 0 {
        return format!("{seconds}.0");
    }
    let digits = format!("{fraction:09}");
    format!("{seconds}.{}", digits.trim_end_matches('0'))
}

/// An OpenMetrics canonical number: Go's shortest `%g` (exponent below -4 or from 6 on,
/// written `e-05`, `e+06`), with `.0` appended when there is neither a decimal point nor
/// an exponent.
pub(crate) fn canonical_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if value == 0.0 {
        return "0.0".to_string();
    }
    let scientific = format!("{value:e}"); // shortest digits: "1.5e7", "1e-5"
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let fixed = format!("{value}"); // shortest digits, never an exponent
    if fixed.contains('.') { fixed } else { fixed + ".0" }
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;
