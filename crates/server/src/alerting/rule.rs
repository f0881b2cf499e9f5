//! An alert rule: a condition over the span metrics of one service (and optionally one
//! operation and span kind), held for at least `for_seconds` before it fires.
//!
//! ```json
//! {"name": "CartErrors",
//!  "expr": {"metric": "error_rate", "service": "cart", "operation": "GET /cart",
//!           "span_kind": "server", "window_seconds": 300},
//!  "op": ">", "threshold": 0.05, "for_seconds": 60,
//!  "labels": {"severity": "page"}, "annotations": {"summary": "cart fails"}}
//! ```
//!
//! The unit of `threshold` is the metric's: `error_rate` is a fraction of calls (0 to 1),
//! `call_rate` calls per second, `latency_quantile` milliseconds.
//!
//! A rule may instead take its value from a TraceQL metrics query over the stored spans:
//!
//! ```json
//! {"name": "CheckoutSlow",
//!  "expr": {"metric": "traceql", "service": "checkout", "window_seconds": 300,
//!           "traceql": "{ resource.service.name = \"checkout\" } | quantile_over_time(duration, .99) by (name)"},
//!  "op": ">", "threshold": 1.5}
//! ```
//!
//! Its value is that of the query's series over the window (an instant query, in the
//! function's unit: seconds for durations); with several series, the one that crosses the
//! threshold furthest (the largest for `>` and `>=`, the smallest for `<` and `<=`). `service`
//! then only labels the alert; `operation`, `span_kind` and `quantile` do not apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sextant_model::SpanKind;

/// The default length of the range a rule reads, ending now.
pub const DEFAULT_WINDOW_SECONDS: u64 = 300;

/// The longest `for_seconds` and `window_seconds` accepted (a day).
pub const MAX_SECONDS: u64 = 86_400;

/// The longest rule name.
pub const MAX_NAME_BYTES: usize = 256;

/// What a rule measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Errors as a fraction of calls; no value without calls.
    ErrorRate,
    /// Calls per second over the window.
    CallRate,
    /// A latency quantile in milliseconds; no value without calls.
    LatencyQuantile,
    /// The value of the TraceQL metrics query `expr.traceql`; no value without series.
    Traceql,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::CallRate => "call_rate",
            Metric::LatencyQuantile => "latency_quantile",
            Metric::Traceql => "traceql",
        }
    }
}

/// How the value is compared with the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Greater => value > threshold,
            Op::GreaterOrEqual => value >= threshold,
            Op::Less => value < threshold,
            Op::LessOrEqual => value <= threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Greater => ">",
            Op::GreaterOrEqual => ">=",
            Op::Less => "<",
            Op::LessOrEqual => "<=",
        }
    }
}

/// The series a rule reads and what it computes from them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expr {
    pub metric: Metric,
    /// For `latency_quantile`: the quantile, in `(0, 1]` (0.99 for p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    pub service: String,
    /// The span name; every operation of the service when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `server` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_kind: Option<String>,
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
    /// For `traceql`: a TraceQL metrics query, e.g. `{ status = error } | rate()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceql: Option<String>,
}

fn default_window_seconds() -> u64 {
    DEFAULT_WINDOW_SECONDS
}

impl Expr {
    /// The span kind the rule reads (validated rules only name a known kind).
    pub fn span_kind(&self) -> SpanKind {
        self.span_kind.as_deref().and_then(SpanKind::from_short_name).unwrap_or(SpanKind::Server)
    }
}

/// An alert rule as written in the config file or sent to the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub expr: Expr,
    pub op: Op,
    /// In the metric's unit: a fraction, calls per second, or milliseconds.
    pub threshold: f64,
    /// How long the condition must hold before the alert fires (0: at once).
    #[serde(default)]
    pub for_seconds: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A field of a rule that is not valid, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The field's path in the rule, e.g. `expr.quantile`.
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> RuleError {
    RuleError { field: field.to_string(), message: message.into() }
}

/// Whether `name` can be a label name (Prometheus' `[a-zA-Z_][a-zA-Z0-9_]*`).
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `query` cannot be a rule's TraceQL metrics query, if it cannot.
fn validate_traceql(query: &str, window_seconds: u64) -> Result<(), String> {
    let parsed = sextant_traceql::parse(query).map_err(|e| format!("invalid TraceQL query: {e}"))?;
    let request = sextant_traceql::MetricsRequest {
        start_unix_nanos: 0,
        end_unix_nanos: window_seconds.max(1) * 1_000_000_000,
        step_nanos: 0,
        instant: true,
        max_exemplars: 0,
    };
    sextant_traceql::MetricsEvaluator::new(&parsed, &request).map(|_| ()).map_err(|e| e.to_string())
}

/// Labels every alert carries, set from the rule; a rule's `labels` cannot redefine them.
pub const RESERVED_LABELS: [&str; 2] = ["alertname", "service"];

impl Rule {
    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(error("name", "must not be empty"));
        }
        if self.name.len() > MAX_NAME_BYTES || self.name.chars().any(|c| c.is_control() || c == '/') {
            return Err(error(
                "name",
                format!("must be at most {MAX_NAME_BYTES} bytes without '/' or control characters"),
            ));
        }
        let expr = &self.expr;
        if expr.service.is_empty() {
            return Err(error("expr.service", "must not be empty"));
        }
        if expr.operation.as_deref() == Some("") {
            return Err(error("expr.operation", "must not be empty when given (leave it out for every operation)"));
        }
        if let Some(kind) = &expr.span_kind
            && SpanKind::from_short_name(kind).is_none()
        {
            return Err(error(
                "expr.span_kind",
                format!("{kind:?} is not one of server, client, producer, consumer, internal, unspecified"),
            ));
        }
        match (expr.metric, expr.quantile) {
            (Metric::LatencyQuantile, None) => {
                return Err(error("expr.quantile", "is required for latency_quantile (e.g. 0.99)"));
            }
            (Metric::LatencyQuantile, Some(q)) if !(q > 0.0 && q <= 1.0) => {
                return Err(error("expr.quantile", format!("{q} must be greater than 0 and at most 1")));
            }
            (Metric::ErrorRate | Metric::CallRate | Metric::Traceql, Some(_)) => {
                return Err(error(
                    "expr.quantile",
                    format!("applies only to latency_quantile, not {}", expr.metric.name()),
                ));
            }
            _ => {}
        }
        match (expr.metric, &expr.traceql) {
            (Metric::Traceql, None) => {
                return Err(error("expr.traceql", "is required for traceql (e.g. \"{ status = error } | rate()\")"));
            }
            (Metric::Traceql, Some(query)) => {
                validate_traceql(query, expr.window_seconds).map_err(|message| error("expr.traceql", message))?;
                if expr.operation.is_some() || expr.span_kind.is_some() {
                    let field = if expr.operation.is_some() { "expr.operation" } else { "expr.span_kind" };
                    return Err(error(field, "does not apply to traceql: the query selects the spans"));
                }
            }
            (_, Some(_)) => {
                return Err(error("expr.traceql", format!("applies only to traceql, not {}", expr.metric.name())));
            }
            (_, None) => {}
        }
        if expr.window_seconds == 0 || expr.window_seconds > MAX_SECONDS {
            return Err(error("expr.window_seconds", format!("must be from 1 to {MAX_SECONDS}")));
        }
        if !self.threshold.is_finite() {
            return Err(error("threshold", "must be a finite number"));
        }
        if self.threshold < 0.0 {
            return Err(error("threshold", "must not be negative"));
        }
        if expr.metric == Metric::ErrorRate && self.threshold > 1.0 {
            return Err(error("threshold", "an error_rate is a fraction of calls, from 0 to 1"));
        }
        if self.for_seconds > MAX_SECONDS {
            return Err(error("for_seconds", format!("must be at most {MAX_SECONDS}")));
        }
        for name in self.labels.keys() {
            if !is_label_name(name) {
                return Err(error(&format!("labels.{name}"), "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(error(&format!("labels.{name}"), "is set from the rule and cannot be given"));
            }
        }
        for name in self.annotations.keys() {
            if !is_label_name(name) {
                return Err(error(&format!("annotations.{name}"), "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
            }
        }
        Ok(())
    }

    pub fn for_nanos(&self) -> u64 {
        self.for_seconds * 1_000_000_000
    }

    /// The alert's labels: `alertname` (the rule's name), `service`, then the rule's labels.
    pub fn alert_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), self.name.clone());
        labels.insert("service".into(), self.expr.service.clone());
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        serde_json::from_value(serde_json::json!({
            "name": "CartErrors",
            "expr": {"metric": "error_rate", "service": "cart"},
            "op": ">",
            "threshold": 0.5,
        }))
        .unwrap()
    }

    #[test]
    fn defaults_fill_the_optional_fields() {
        let rule = rule();
        assert_eq!(rule.expr.window_seconds, DEFAULT_WINDOW_SECONDS);
        assert_eq!(rule.expr.span_kind(), SpanKind::Server);
        assert_eq!(rule.for_seconds, 0);
        assert_eq!(rule.validate(), Ok(()));
        assert_eq!(rule.alert_labels().get("alertname").map(String::as_str), Some("CartErrors"));
    }

    #[test]
    fn each_invalid_field_is_named() {
        type Change = fn(&mut Rule);
        let cases: Vec<(Change, &str)> = vec![
            (|r| r.name = " ".into(), "name"),
            (|r| r.name = "a/b".into(), "name"),
            (|r| r.expr.service = String::new(), "expr.service"),
            (|r| r.expr.operation = Some(String::new()), "expr.operation"),
            (|r| r.expr.span_kind = Some("sever".into()), "expr.span_kind"),
            (|r| r.expr.metric = Metric::LatencyQuantile, "expr.quantile"),
            (
                |r| {
                    r.expr.metric = Metric::LatencyQuantile;
                    r.expr.quantile = Some(1.5);
                },
                "expr.quantile",
            ),
            (|r| r.expr.quantile = Some(0.5), "expr.quantile"),
            (|r| r.expr.window_seconds = 0, "expr.window_seconds"),
            (|r| r.threshold = f64::NAN, "threshold"),
            (|r| r.threshold = 2.0, "threshold"),
            (|r| r.threshold = -1.0, "threshold"),
            (|r| r.for_seconds = MAX_SECONDS + 1, "for_seconds"),
            (|r| _ = r.labels.insert("bad-name".into(), "x".into()), "labels.bad-name"),
            (|r| _ = r.labels.insert("alertname".into(), "x".into()), "labels.alertname"),
            (|r| _ = r.annotations.insert("1st".into(), "x".into()), "annotations.1st"),
            (|r| r.expr.metric = Metric::Traceql, "expr.traceql"),
            (|r| r.expr.traceql = Some("{ } | rate()".into()), "expr.traceql"),
            (
                |r| {
                    r.expr.metric = Metric::Traceql;
                    r.expr.traceql = Some("{ status = error }".into());
                },
                "expr.traceql",
            ),
            (
                |r| {
                    r.expr.metric = Metric::Traceql;
                    r.expr.traceql = Some("{ } | rate(".into());
                },
                "expr.traceql",
            ),
            (
                |r| {
                    r.expr.metric = Metric::Traceql;
                    r.expr.traceql = Some("{ } | rate()".into());
                    r.expr.operation = Some("GET /".into());
                },
                "expr.operation",
            ),
        ];
        for (change, field) in cases {
            let mut rule = rule();
            change(&mut rule);
            let error = rule.validate().expect_err(field);
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn latency_thresholds_may_exceed_one() {
        let mut rule = rule();
        rule.expr.metric = Metric::LatencyQuantile;
        rule.expr.quantile = Some(0.99);
        rule.threshold = 250.0;
        assert_eq!(rule.validate(), Ok(()));
    }

    #[test]
    fn traceql_rules_need_a_metrics_query() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "name": "Slow",
            "expr": {"metric": "traceql", "service": "checkout",
                     "traceql": "{ kind = server } | quantile_over_time(duration, .99) by (name)"},
            "op": ">", "threshold": 1.5,
        }))
        .unwrap();
        assert_eq!(rule.validate(), Ok(()));
        let mut rule = rule;
        rule.expr.traceql = Some("{ } | avg_over_time(name)".into());
        let error = rule.validate().unwrap_err();
        assert!(error.message.contains("needs a numeric field"), "{error}");
        rule.expr.traceql = Some("{ }".into());
        assert!(rule.validate().unwrap_err().message.contains("not a metrics query"));
    }

    #[test]
    fn operators_compare_as_written() {
        assert!(Op::Greater.holds(2.0, 1.0) && !Op::Greater.holds(1.0, 1.0));
        assert!(Op::GreaterOrEqual.holds(1.0, 1.0));
        assert!(Op::Less.holds(0.5, 1.0) && !Op::Less.holds(1.0, 1.0));
        assert!(Op::LessOrEqual.holds(1.0, 1.0));
        let op: Op = serde_json::from_str("\">=\"").unwrap();
        assert_eq!(op, Op::GreaterOrEqual);
    }
}
