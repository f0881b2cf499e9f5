//! A rule's value over the span metrics, and the traces that exemplify it.
//!
//! The range read is `[now − window_seconds, now)`, extended to whole intervals as the range
//! queries select them (the interval holding `now − window` and the current one), queried
//! as one step over the series of the rule's service, span kind and (when given) operation,
//! every status merged.

use sextant_metrics::{RangeQuery, SeriesLabels, SpanMetrics};
use sextant_model::{StatusCode, TraceId};

use super::rule::{Metric, Rule};

/// The most example traces an alert carries.
pub const MAX_EXAMPLE_TRACES: usize = 5;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// What one evaluation of a rule found.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// In the metric's unit; `None` when a rate of errors or a latency has no calls.
    pub value_opt: Option<f64>,
    /// Whether `value op threshold` holds (false without a value).
    pub condition: bool,
    /// Traces of the matching series in the range, newest first: for an error rate spans
    /// with status error first, for a latency spans at or above the threshold first.
    pub example_traces: Vec<TraceId>,
}

fn matches(rule: &Rule, labels: &SeriesLabels) -> bool {
    let expr = &rule.expr;
    !labels.overflow
        && labels.service == expr.service
        && labels.span_kind == expr.span_kind()
        && expr.operation.as_ref().is_none_or(|op| *op == labels.span_name)
}

/// Evaluates `rule`, a rule over the span metrics (not `traceql`), at `now_unix_nanos`.
pub fn evaluate(span_metrics: &SpanMetrics, rule: &Rule, now_unix_nanos: u64) -> Evaluation {
    let interval_nanos = span_metrics.interval_nanos();
    let window_nanos = rule.expr.window_seconds * NANOS_PER_SECOND;
    let from = now_unix_nanos.saturating_sub(window_nanos);
    let from = from - from % interval_nanos;
    let to = (now_unix_nanos + 1).div_ceil(interval_nanos) * interval_nanos;
    let query = RangeQuery {
        from_unix_nanos: from,
        to_unix_nanos: to,
        step_nanos: to - from,
        quantile: rule.expr.quantile.unwrap_or(0.5),
    };
    let point_opt = span_metrics
        .query_range(&query, |labels| matches(rule, labels).then_some(()))
        .ok()
        .and_then(|series| series.into_iter().next())
        .and_then(|series| series.points.into_iter().next());
    let (calls, errors, latency_seconds_opt) = match &point_opt {
        Some(point) => (point.calls, point.errors, point.latency_quantile_seconds),
        None => (0, 0, None),
    };
    let value_opt = match rule.expr.metric {
        Metric::ErrorRate => (calls > 0).then(|| errors as f64 / calls as f64),
        Metric::CallRate => Some(calls as f64 / rule.expr.window_seconds as f64),
        Metric::LatencyQuantile => latency_seconds_opt.map(|seconds| seconds * 1_000.0),
        Metric::Traceql => unreachable!("TraceQL rules are evaluated over the stored spans (traceql.rs)"),
    };
    let condition = value_opt.is_some_and(|value| rule.op.holds(value, rule.threshold));
    Evaluation { value_opt, condition, example_traces: example_traces(span_metrics, rule, from, to) }
}

/// Up to [`MAX_EXAMPLE_TRACES`] distinct traces from the exemplars of the rule's series in
/// `[from, to)`, newest first, the most telling ones first.
fn example_traces(span_metrics: &SpanMetrics, rule: &Rule, from: u64, to: u64) -> Vec<TraceId> {
    let Ok(groups) =
        span_metrics.exemplars_in_range(from, to, |labels| matches(rule, labels).then_some(labels.status_code as u8))
    else {
        return Vec::new();
    };
    let threshold_nanos = (rule.threshold * 1_000_000.0) as u64;
    // (preferred, end time, trace): preferred exemplars sort first, then the newest.
    let mut ranked: Vec<(bool, u64, TraceId)> = groups
        .iter()
        .flat_map(|group| {
            group.exemplars.iter().map(move |e| {
                let preferred = match rule.expr.metric {
                    Metric::ErrorRate => group.key == StatusCode::Error as u8,
                    Metric::LatencyQuantile => e.duration_nanos >= threshold_nanos,
                    Metric::CallRate | Metric::Traceql => true,
                };
                (preferred, e.timestamp_unix_nanos, e.trace_id)
            })
        })
        .collect();
    ranked.sort_by_key(|(preferred, end, _)| std::cmp::Reverse((*preferred, *end)));
    let mut traces: Vec<TraceId> = Vec::new();
    for (_, _, trace) in ranked {
        if !traces.contains(&trace) {
            traces.push(trace);
            if traces.len() == MAX_EXAMPLE_TRACES {
                break;
            }
        }
    }
    traces
}

#[cfg(test)]
mod tests {
    use sextant_metrics::SpanMetricsConfig;
    use sextant_model::{KeyValue, Resource, Span, SpanId, SpanKind};

    use super::*;

    const S: u64 = NANOS_PER_SECOND;
    const MS: u64 = 1_000_000;
    const NOW: u64 = 1_700_000_000 * S;

    fn span(trace: u8, service: &str, kind: SpanKind, end: u64, duration: u64, error: bool) -> Span {
        let mut s = Span::new(TraceId([trace; 16]), SpanId([trace; 8]), "GET /cart", end - duration, end);
        s.kind = kind;
        s.status_code = if error { StatusCode::Error } else { StatusCode::Unset };
        s.resource = std::sync::Arc::new(Resource {
            attributes: vec![KeyValue::string("service.name", service)],
            dropped_attributes_count: 0,
        });
        s
    }

    fn rule(json: serde_json::Value) -> Rule {
        let rule: Rule = serde_json::from_value(json).unwrap();
        rule.validate().unwrap();
        rule
    }

    fn metrics(spans: &[Span]) -> SpanMetrics {
        let mut metrics = SpanMetrics::new(SpanMetricsConfig::default()).unwrap();
        metrics.observe(spans);
        metrics
    }

    #[test]
    fn error_rate_counts_the_service_and_kind_only_and_prefers_error_exemplars() {
        let metrics = metrics(&[
            span(1, "cart", SpanKind::Server, NOW - 10 * S, 5 * MS, true),
            span(2, "cart", SpanKind::Server, NOW - 20 * S, 5 * MS, false),
            span(3, "cart", SpanKind::Server, NOW - 30 * S, 5 * MS, true),
            span(4, "cart", SpanKind::Server, NOW - 40 * S, 5 * MS, false),
            span(5, "cart", SpanKind::Client, NOW - 10 * S, 5 * MS, true),
            span(6, "shop", SpanKind::Server, NOW - 10 * S, 5 * MS, true),
        ]);
        let rule = rule(serde_json::json!({
            "name": "e", "expr": {"metric": "error_rate", "service": "cart"}, "op": ">", "threshold": 0.4,
        }));
        let evaluation = evaluate(&metrics, &rule, NOW);
        assert_eq!(evaluation.value_opt, Some(0.5));
        assert!(evaluation.condition);
        assert_eq!(evaluation.example_traces[..2], [TraceId([1; 16]), TraceId([3; 16])]);
        assert!(!evaluation.example_traces.contains(&TraceId([5; 16])));
        assert!(!evaluation.example_traces.contains(&TraceId([6; 16])));
    }

    #[test]
    fn spans_before_the_window_do_not_count() {
        let metrics = metrics(&[span(1, "cart", SpanKind::Server, NOW - 200 * S, 5 * MS, true)]);
        let rule = rule(serde_json::json!({
            "name": "e", "expr": {"metric": "error_rate", "service": "cart", "window_seconds": 60},
            "op": ">", "threshold": 0.0,
        }));
        let evaluation = evaluate(&metrics, &rule, NOW);
        assert_eq!(evaluation.value_opt, None);
        assert!(!evaluation.condition);
        assert!(evaluation.example_traces.is_empty());
    }

    #[test]
    fn latency_is_in_milliseconds_and_slow_exemplars_come_first() {
        let metrics = metrics(&[
            span(1, "cart", SpanKind::Server, NOW - 10 * S, 3_000 * MS, false),
            span(2, "cart", SpanKind::Server, NOW - 5 * S, 3 * MS, false),
        ]);
        let rule = rule(serde_json::json!({
            "name": "slow", "expr": {"metric": "latency_quantile", "quantile": 0.99, "service": "cart"},
            "op": ">", "threshold": 1000.0,
        }));
        let evaluation = evaluate(&metrics, &rule, NOW);
        let value = evaluation.value_opt.unwrap();
        assert!(value > 1_000.0 && value <= 4_096.0, "{value}");
        assert!(evaluation.condition);
        assert_eq!(evaluation.example_traces, [TraceId([1; 16]), TraceId([2; 16])]);
    }

    #[test]
    fn call_rate_without_calls_is_zero() {
        let metrics = metrics(&[]);
        let rule = rule(serde_json::json!({
            "name": "quiet", "expr": {"metric": "call_rate", "service": "cart"}, "op": "<", "threshold": 0.1,
        }));
        let evaluation = evaluate(&metrics, &rule, NOW);
        assert_eq!(evaluation.value_opt, Some(0.0));
        assert!(evaluation.condition);
    }
}
