//! A rule's value from a TraceQL metrics query over the stored spans (`"metric": "traceql"`).
//!
//! The query runs as an instant query over `[now − window_seconds, now]`, through the bounded
//! reader of Tempo's `/api/metrics/query` (`api/tempo_metrics.rs`). With several series, the
//! rule's value is the one furthest past the threshold: the largest for `>` and `>=`, the
//! smallest for `<` and `<=`; the traces of that series' exemplars (at most
//! [`MAX_EXAMPLE_TRACES`], the furthest past the threshold first) exemplify the alert. Without any series there is no value and the
//! condition does not hold. A storage error leaves the rule without a value, logged; an answer
//! cut short by the read bounds is used as it is, logged.

use sextant_model::TraceId;
use sextant_storage::engine::Engine;
use sextant_traceql::metrics::Exemplar;
use sextant_traceql::{MetricsEvaluator, MetricsRequest, Series};
use tracing::warn;

use super::evaluate::{Evaluation, MAX_EXAMPLE_TRACES};
use super::rule::{Op, Rule};
use crate::api::tempo_metrics::read_series;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Evaluates `rule`, a `traceql` rule, at `now_unix_nanos`.
pub async fn evaluate(engine: &Engine, rule: &Rule, now_unix_nanos: u64) -> Evaluation {
    let no_value = Evaluation { value_opt: None, condition: false, example_traces: Vec::new() };
    let Some(text) = &rule.expr.traceql else { return no_value };
    let request = MetricsRequest {
        start_unix_nanos: now_unix_nanos.saturating_sub(rule.expr.window_seconds * NANOS_PER_SECOND),
        end_unix_nanos: now_unix_nanos,
        step_nanos: 0,
        instant: true,
        max_exemplars: MAX_EXAMPLE_TRACES,
    };
    // Validated rules parse and compile; a rule that no longer does is logged, not fatal.
    let compiled = sextant_traceql::parse(text)
        .map_err(|e| e.to_string())
        .and_then(|query| MetricsEvaluator::new(&query, &request).map(|e| (query, e)).map_err(|e| e.to_string()));
    let (query, evaluator) = match compiled {
        Ok(compiled) => compiled,
        Err(error) => {
            warn!(rule = %rule.name, %error, "alert rule's TraceQL query does not run");
            return no_value;
        }
    };
    let answer = match read_series(engine, &query, evaluator).await {
        Ok(answer) => answer,
        Err(error) => {
            warn!(rule = %rule.name, error = %error.1, "alert rule's TraceQL query failed");
            return no_value;
        }
    };
    if let Some(message) = &answer.partial_opt {
        warn!(rule = %rule.name, %message, "alert rule evaluated on a partial read");
    }
    decide(rule, &answer.series)
}

/// The rule's value, condition and example traces from the query's series.
fn decide(rule: &Rule, series: &[Series]) -> Evaluation {
    let furthest = series.iter().filter_map(|s| Some((s.samples.first()?.value, s))).reduce(|best, next| {
        let past = match rule.op {
            Op::Greater | Op::GreaterOrEqual => next.0 > best.0,
            Op::Less | Op::LessOrEqual => next.0 < best.0,
        };
        if past { next } else { best }
    });
    let Some((value, series)) = furthest else {
        return Evaluation { value_opt: None, condition: false, example_traces: Vec::new() };
    };
    // The most telling first: the furthest past the threshold (a stable sort keeps the order
    // of equal values, which counts and rates give).
    let mut exemplars: Vec<&Exemplar> = series.exemplars.iter().collect();
    exemplars.sort_by(|a, b| match rule.op {
        Op::Greater | Op::GreaterOrEqual => b.value.total_cmp(&a.value),
        Op::Less | Op::LessOrEqual => a.value.total_cmp(&b.value),
    });
    let mut example_traces: Vec<TraceId> = Vec::new();
    for exemplar in exemplars {
        if !example_traces.contains(&exemplar.trace_id) && example_traces.len() < MAX_EXAMPLE_TRACES {
            example_traces.push(exemplar.trace_id);
        }
    }
    Evaluation { value_opt: Some(value), condition: rule.op.holds(value, rule.threshold), example_traces }
}

#[cfg(test)]
mod tests {
    use sextant_model::SpanId;
    use sextant_traceql::metrics::Sample;

    use super::*;

    fn series(value: f64, trace: u8) -> Series {
        Series {
            labels: Vec::new(),
            samples: vec![Sample { timestamp_ms: 1, value }],
            exemplars: vec![Exemplar {
                trace_id: TraceId([trace; 16]),
                span_id: SpanId([trace; 8]),
                value,
                timestamp_ms: 1,
            }],
        }
    }

    fn rule(op: &str) -> Rule {
        serde_json::from_value(serde_json::json!({
            "name": "r", "expr": {"metric": "traceql", "service": "s", "traceql": "{ } | rate() by (name)"},
            "op": op, "threshold": 2.0,
        }))
        .unwrap()
    }

    #[test]
    fn the_series_furthest_past_the_threshold_decides() {
        let all = [series(1.0, 1), series(3.0, 3), series(2.5, 2)];
        let evaluation = decide(&rule(">"), &all);
        assert_eq!((evaluation.value_opt, evaluation.condition), (Some(3.0), true));
        assert_eq!(evaluation.example_traces, [TraceId([3; 16])]);
        let evaluation = decide(&rule("<"), &all);
        assert_eq!((evaluation.value_opt, evaluation.condition), (Some(1.0), true));
        assert_eq!(evaluation.example_traces, [TraceId([1; 16])]);
        let evaluation = decide(&rule(">"), &[series(1.5, 1)]);
        assert_eq!((evaluation.value_opt, evaluation.condition), (Some(1.5), false));
        let mut two = series(3.0, 3);
        two.exemplars.insert(0, Exemplar { value: 1.0, ..two.exemplars[0] });
        two.exemplars[0].trace_id = TraceId([9; 16]);
        assert_eq!(decide(&rule(">"), &[two]).example_traces, [TraceId([3; 16]), TraceId([9; 16])], "slowest first");
        let evaluation = decide(&rule(">"), &[]);
        assert_eq!((evaluation.value_opt, evaluation.condition), (None, false), "no series, no value");
    }
}
