//! `GET /metrics`: one exposition holding the server's self-metrics (`prometheus-client`'s
//! registry) and, when `metrics.enabled`, the span metrics and service graph families
//! (`traces_spanmetrics_*`, `traces_service_graph_*`, see `sextant_metrics::exposition`).
//!
//! The format follows the scraper's `Accept` header:
//! - `application/openmetrics-text` (what Prometheus asks for first): OpenMetrics 1.0, bucket
//!   lines with exemplars (`# {trace_id="…",span_id="…"} value timestamp`), one `# EOF` at
//!   the end;
//! - anything else (`text/plain`, `*/*`, no header): Prometheus text format 0.0.4, without
//!   exemplars, `UNIT` lines or `# EOF`; the self-metrics, which `prometheus-client` writes in
//!   OpenMetrics, are rewritten to it (counter `HELP`/`TYPE` lines name the `_total` sample,
//!   `unknown` becomes `untyped`).
//!
//! A media range with `q=0` is refused; when both are acceptable the higher `q` wins, and
//! OpenMetrics on a tie.
//!
//! The answer includes every span acknowledged before the request (the aggregators are
//! synced first) and is rendered on the blocking pool.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use sextant_metrics::exposition::Format;

use super::{ApiError, ApiState};
use crate::derived::DerivedMetrics;

pub async fn metrics(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let format = negotiate(&accept);
    if let Some(derived) = &state.derived_opt {
        derived.sync().await;
    }
    let registry = state.registry.clone();
    let derived_opt = state.derived_opt.clone();
    let rendered = tokio::task::spawn_blocking(move || render(format, &registry, derived_opt.as_deref())).await;
    match rendered {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Ok(Err(error)) => metrics_error(error.to_string()),
        Err(error) => metrics_error(error.to_string()),
    }
}

fn metrics_error(message: String) -> Response {
    ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "metrics_error", message }.into_response()
}

/// The whole exposition in `format`.
fn render(
    format: Format,
    registry: &Mutex<Registry>,
    derived_opt: Option<&DerivedMetrics>,
) -> Result<String, std::fmt::Error> {
    let mut self_metrics = String::new();
    // The registry's collectors lock the aggregators one at a time and release them.
    prometheus_client::encoding::text::encode_registry(&mut self_metrics, &registry.lock())?;
    let mut out = match format {
        Format::OpenMetrics { .. } => self_metrics,
        Format::PrometheusText => open_metrics_to_prometheus_text(&self_metrics),
    };
    if let Some(derived) = derived_opt {
        derived.write_families(&mut out, format);
    }
    if matches!(format, Format::OpenMetrics { .. }) {
        out.push_str("# EOF\n");
    }
    Ok(out)
}

/// The format an `Accept` header asks for.
pub fn negotiate(accept: &str) -> Format {
    let mut open_metrics_q: f64 = 0.0;
    let mut text_q: f64 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media_type.as_str() {
            "application/openmetrics-text" => open_metrics_q = open_metrics_q.max(q),
            "text/plain" | "text/*" | "*/*" => text_q = text_q.max(q),
            _ => {}
        }
    }
    if open_metrics_q > 0.0 && open_metrics_q >= text_q {
        Format::OpenMetrics { exemplars: true }
    } else {
        Format::PrometheusText
    }
}

/// Rewrites `prometheus-client`'s OpenMetrics text (without `# EOF`) as text format 0.0.4.
/// Its samples are already valid 0.0.4 (it writes no exemplars for these metrics); only the
/// metadata lines differ. `HELP` precedes `TYPE` there, so a `HELP` line waits for the
/// line after it.
pub fn open_metrics_to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help_opt: Option<(&str, &str)> = None; // (name, text)
    let flush_help = |out: &mut String, help_opt: &mut Option<(&str, &str)>, name_suffix: &str| {
        if let Some((name, text)) = help_opt.take() {
            out.push_str(&format!("# HELP {name}{name_suffix} {text}\n"));
        }
    };
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, &mut help_opt, "");
            help_opt = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            let help_suffix = if help_opt.is_some_and(|(help_name, _)| help_name == name) { suffix } else { "" };
            flush_help(&mut out, &mut help_opt, help_suffix);
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        flush_help(&mut out, &mut help_opt, "");
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, &mut help_opt, "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_open_metrics_and_curl_gets_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(prometheus), Format::OpenMetrics { exemplars: true });
        assert_eq!(negotiate("application/openmetrics-text"), Format::OpenMetrics { exemplars: true });
        assert_eq!(negotiate("*/*"), Format::PrometheusText);
        assert_eq!(negotiate(""), Format::PrometheusText);
        assert_eq!(negotiate("text/plain;version=0.0.4"), Format::PrometheusText);
        assert_eq!(negotiate("application/openmetrics-text;q=0"), Format::PrometheusText, "q=0 refuses");
        assert_eq!(negotiate("text/plain, application/openmetrics-text;q=0.9"), Format::PrometheusText);
    }

    #[test]
    fn self_metrics_are_rewritten_as_text_format_0_0_4() {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::gauge::Gauge;
        use prometheus_client::metrics::histogram::Histogram;

        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        counter.inc_by(3);
        registry.register("sextant_spans", "Spans seen", counter);
        let gauge: Gauge = Gauge::default();
        gauge.set(7);
        registry.register("sextant_head_spans", "Spans in the head", gauge);
        let histogram = Histogram::new([0.5]);
        histogram.observe(0.25);
        registry.register_with_unit(
            "sextant_wal_commit",
            "Commit latency",
            prometheus_client::registry::Unit::Seconds,
            histogram,
        );
        let mut open_metrics = String::new();
        prometheus_client::encoding::text::encode_registry(&mut open_metrics, &registry).unwrap();
        assert!(open_metrics.contains("# UNIT sextant_wal_commit_seconds seconds"), "{open_metrics}");

        let text = open_metrics_to_prometheus_text(&open_metrics);
        let expected = [
            "# HELP sextant_spans_total Spans seen.",
            "# TYPE sextant_spans_total counter",
            "sextant_spans_total 3",
            "# HELP sextant_head_spans Spans in the head.",
            "# TYPE sextant_head_spans gauge",
            "sextant_head_spans 7",
            "# HELP sextant_wal_commit_seconds Commit latency.",
            "# TYPE sextant_wal_commit_seconds histogram",
            "sextant_wal_commit_seconds_sum 0.25",
            "sextant_wal_commit_seconds_count 1",
            "sextant_wal_commit_seconds_bucket{le=\"0.5\"} 1",
            "sextant_wal_commit_seconds_bucket{le=\"+Inf\"} 1",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
    }
}
