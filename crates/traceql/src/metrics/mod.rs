//! TraceQL metrics: time series computed from the spans a query matches, as Tempo's
//! `/api/metrics/query_range` and `/api/metrics/query` answer them.
//!
//! [`MetricsEvaluator::new`] compiles a query that ends with a metrics stage (`| rate() by
//! (resource.service.name)`, see [`crate::ast::Metrics`]) for one time range
//! ([`MetricsRequest`]); [`MetricsEvaluator::observe`] then takes the spans of one trace at a
//! time, runs the spanset pipeline on them as a search would ([`crate::Compiled`]), and adds
//! each matching span (once, even when several spansets hold it) to the step its start time
//! falls in (`intervals.rs`); [`MetricsEvaluator::finish`] turns the counts into [`Series`].
//!
//! # Semantics (Tempo's)
//!
//! - One series per distinct combination of `by()` values, labelled with the non-nil ones in
//!   `by()` order (all nil: the first field, nil). Without `by()` the series is labelled
//!   `__name__` = the function's name.
//! - `rate()`: matching spans per second of step; `count_over_time()`: per step. Steps without
//!   spans are 0 in a series that exists.
//! - `min_over_time`, `max_over_time`, `sum_over_time`, `avg_over_time` of a field: over the
//!   spans whose field is a number; durations in seconds. Steps without such spans have no
//!   sample.
//! - `histogram_over_time(f)`: spans per power-of-two bucket of `f` (`log2.rs`), one series per
//!   bucket labelled `__bucket` (seconds for durations). `quantile_over_time(f, q...)`: one
//!   series per quantile labelled `p`, each estimated from the same buckets; steps without
//!   spans are 0.
//! - `compare({ filter }, n, start, end)`: see `compare.rs`.
//! - `topk(n)` / `bottomk(n)`: at each step, the `n` series with the highest (lowest) value
//!   keep their sample there (ties go to the smaller label text); series left without samples
//!   are dropped.
//! - Series without any sample are left out; series are ordered by their label text.
//!
//! # Exemplars
//!
//! Each trace gives at most one exemplar, until [`MetricsRequest::max_exemplars`] traces have
//! given one: its matching span with the largest value of the measured field (the first one for
//! `rate` and `count_over_time`), kept in that span's series, at most
//! [`MAX_EXEMPLARS_PER_STEP`] per series and step. An exemplar's value is the span's field
//! value (seconds for durations); for `rate`, `count_over_time`, `histogram_over_time` and
//! `compare` it is the series' value at that step. A quantile's exemplars go to the `p` series
//! whose value at that step is closest.

mod compare;
mod intervals;
mod log2;
mod output;

use std::collections::HashMap;
use std::fmt::Write;

use sextant_model::{Span, SpanId, TraceId};

use crate::ast::{MetricsFunction, Query, SeriesLimit};
use crate::eval::tree::TraceCx;
use crate::eval::{Compiled, EvalError, Field, Value, compile_numeric_field};
use compare::Comparison;
use intervals::Intervals;
use output::Built;

/// The most steps a range query may have, as Prometheus limits its points per series.
pub const MAX_INTERVALS: usize = 11_000;
/// Exemplars a query gives when the request does not say, as Tempo's default.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100;
/// Exemplars kept at most per series and step, so they spread over the range.
pub const MAX_EXEMPLARS_PER_STEP: usize = 2;

const NANOS_PER_SECOND: f64 = 1e9;

/// The time range a metrics query covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsRequest {
    pub start_unix_nanos: u64,
    /// After `start_unix_nanos`.
    pub end_unix_nanos: u64,
    /// The step of a range query; ignored by an instant query.
    pub step_nanos: u64,
    /// One value per series over the whole range (`/api/metrics/query`).
    pub instant: bool,
    /// How many traces may give an exemplar.
    pub max_exemplars: usize,
}

/// A metrics query that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("not a metrics query: end it with a metrics function such as `| rate()`")]
    NotMetrics,
    /// A time range or step that makes no series.
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// A series' labels, in order: (name, value); a nil value is a label without a value.
pub type Labels = Vec<(String, Value<'static>)>;

/// One time series of the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// One per step that has a value, in time order.
    pub samples: Vec<Sample>,
    pub exemplars: Vec<Exemplar>,
}

/// A series' value at the end of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: u64,
    pub value: f64,
}

/// A span that exemplifies a series at one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub value: f64,
    /// The span's start, in unix milliseconds.
    pub timestamp_ms: u64,
}

/// A metrics query compiled for one time range, fed one trace at a time.
#[derive(Debug)]
pub struct MetricsEvaluator {
    pipeline: Compiled,
    function: Function,
    by: Vec<Field>,
    limit: Option<SeriesLimit>,
    intervals: Intervals,
    /// The series seen so far, by the debug text of their `by()` values (and bucket).
    series: HashMap<String, Accumulator>,
    max_exemplars: usize,
    /// Traces that gave an exemplar.
    exemplar_traces: usize,
}

#[derive(Debug)]
enum Function {
    Count { name: &'static str, per_second: bool },
    Fold { name: &'static str, fold: Fold, field: Field },
    Quantile { field: Field, quantiles: Vec<f64> },
    Histogram { field: Field },
    Compare(Box<Comparison>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Min,
    Max,
    Sum,
    Avg,
}

/// What one series has gathered.
#[derive(Debug)]
struct Accumulator {
    labels: Labels,
    cells: Cells,
    /// With the step each belongs to.
    exemplars: Vec<(Exemplar, usize)>,
}

/// One value per step.
#[derive(Debug)]
enum Cells {
    Count(Vec<u64>),
    /// The running min, max or sum, and how many values made it.
    Fold {
        fold: Fold,
        values: Vec<f64>,
        counts: Vec<u64>,
    },
    /// (bucket label, count), unsorted.
    Buckets(Vec<Vec<(f64, u64)>>),
}

impl MetricsEvaluator {
    pub fn new(query: &Query, request: &MetricsRequest) -> Result<MetricsEvaluator, MetricsError> {
        let metrics = query.metrics.as_ref().ok_or(MetricsError::NotMetrics)?;
        let intervals = Intervals::new(request)?;
        let pipeline = Compiled::pipeline(&query.pipeline)?;
        let name = metrics.function.name();
        let function = match &metrics.function {
            MetricsFunction::Rate => Function::Count { name, per_second: true },
            MetricsFunction::CountOverTime => Function::Count { name, per_second: false },
            MetricsFunction::MinOverTime(f) => {
                Function::Fold { name, fold: Fold::Min, field: compile_numeric_field(f, name)? }
            }
            MetricsFunction::MaxOverTime(f) => {
                Function::Fold { name, fold: Fold::Max, field: compile_numeric_field(f, name)? }
            }
            MetricsFunction::SumOverTime(f) => {
                Function::Fold { name, fold: Fold::Sum, field: compile_numeric_field(f, name)? }
            }
            MetricsFunction::AvgOverTime(f) => {
                Function::Fold { name, fold: Fold::Avg, field: compile_numeric_field(f, name)? }
            }
            MetricsFunction::QuantileOverTime { field, quantiles } => {
                Function::Quantile { field: compile_numeric_field(field, name)?, quantiles: quantiles.clone() }
            }
            MetricsFunction::HistogramOverTime(f) => Function::Histogram { field: compile_numeric_field(f, name)? },
            MetricsFunction::Compare(compare) => {
                Function::Compare(Box::new(Comparison::new(compare, intervals.len())?))
            }
        };
        let by = metrics.by.iter().map(Field::compile).collect::<Result<_, _>>()?;
        Ok(MetricsEvaluator {
            pipeline,
            function,
            by,
            limit: metrics.limit,
            intervals,
            series: HashMap::new(),
            max_exemplars: request.max_exemplars,
            exemplar_traces: 0,
        })
    }

    /// The unix-nanosecond range of span start times the query counts, `(start, end]` for a
    /// range query (its aligned steps), `[start, end]` for an instant one: the traces to read
    /// are those with spans starting there.
    pub fn span_range(&self) -> (u64, u64) {
        self.intervals.span_range()
    }

    /// Adds the matching spans of one trace.
    pub fn observe(&mut self, trace: &[Span]) -> Result<(), EvalError> {
        let cx = TraceCx::new(trace);
        let matching = self.pipeline.matching_spans(&cx)?;
        let wants_exemplar = self.exemplar_traces < self.max_exemplars;
        if let Function::Compare(comparison) = &mut self.function {
            if comparison.observe(&cx, &matching, &self.intervals, wants_exemplar) {
                self.exemplar_traces += 1;
            }
            return Ok(());
        }
        // The exemplar candidate: series key, step, span, value.
        let mut best: Option<(String, usize, usize, Option<f64>)> = None;
        for span in matching {
            let Some(step) = self.intervals.of(trace[span].start_unix_nanos) else { continue };
            let (value, bucket) = match &self.function {
                Function::Count { .. } => (None, None),
                Function::Fold { field, .. } => match number(&field.value(&cx, span)) {
                    Some(value) => (Some(value), None),
                    None => continue,
                },
                Function::Quantile { field, .. } | Function::Histogram { field } => {
                    let value = field.value(&cx, span);
                    match log2::bucket_of(&value) {
                        Some(bucket) => (number(&value), Some(bucket)),
                        None => continue,
                    }
                }
                Function::Compare(_) => unreachable!("handled above"),
            };
            let by_values: Vec<Value<'static>> = self.by.iter().map(|f| f.value(&cx, span).into_owned()).collect();
            let mut key = format!("{by_values:?}");
            let histogram_bucket = if matches!(self.function, Function::Histogram { .. }) { bucket } else { None };
            if let Some(bucket) = histogram_bucket {
                let _ = write!(key, " {bucket}");
            }
            if best.as_ref().is_none_or(|(_, _, _, best_value)| value > *best_value) {
                best = Some((key.clone(), step, span, value));
            }
            if !self.series.contains_key(&key) {
                let labels = self.labels(by_values, histogram_bucket);
                let cells = self.function.cells(self.intervals.len());
                self.series.insert(key.clone(), Accumulator { labels, cells, exemplars: Vec::new() });
            }
            self.series.get_mut(&key).expect("inserted above").cells.add(step, value, bucket);
        }
        if let Some((key, step, span, value)) = best
            && wants_exemplar
        {
            let accumulator = self.series.get_mut(&key).expect("the candidate's series exists");
            if accumulator.exemplars.iter().filter(|(_, s)| *s == step).count() < MAX_EXEMPLARS_PER_STEP {
                let span = &trace[span];
                // A histogram's series count spans: its exemplars take the count, as Tempo's.
                let histogram = matches!(self.function, Function::Histogram { .. });
                let exemplar = Exemplar {
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    value: if histogram { f64::NAN } else { value.unwrap_or(f64::NAN) },
                    timestamp_ms: span.start_unix_nanos / 1_000_000,
                };
                accumulator.exemplars.push((exemplar, step));
                self.exemplar_traces += 1;
            }
        }
        Ok(())
    }

    /// The series, ordered by their labels.
    pub fn finish(self) -> Vec<Series> {
        let intervals = self.intervals;
        let built: Vec<Built> = match self.function {
            Function::Compare(comparison) => comparison.finish(),
            function => {
                self.series.into_values().flat_map(|accumulator| accumulator.finish(&function, &intervals)).collect()
            }
        };
        output::series(built, self.limit, &intervals)
    }

    /// The labels of a new series: the non-nil `by()` values, then the bucket.
    fn labels(&self, by_values: Vec<Value<'static>>, bucket: Option<f64>) -> Labels {
        let mut labels: Labels = self
            .by
            .iter()
            .zip(by_values)
            .filter(|(_, value)| !value.is_nil())
            .map(|(field, value)| (field.name.clone(), value))
            .collect();
        if labels.is_empty()
            && let Some(first) = self.by.first()
        {
            labels.push((first.name.clone(), Value::Nil));
        }
        if let Some(bucket) = bucket {
            labels.push(("__bucket".to_owned(), Value::Float(bucket)));
        }
        if labels.is_empty()
            && let Function::Count { name, .. } | Function::Fold { name, .. } = &self.function
        {
            labels.push(("__name__".to_owned(), Value::String((*name).into())));
        }
        labels
    }
}

impl Function {
    fn cells(&self, steps: usize) -> Cells {
        match self {
            Function::Count { .. } | Function::Histogram { .. } => Cells::Count(vec![0; steps]),
            Function::Fold { fold, .. } => {
                Cells::Fold { fold: *fold, values: vec![f64::NAN; steps], counts: vec![0; steps] }
            }
            Function::Quantile { .. } => Cells::Buckets(vec![Vec::new(); steps]),
            Function::Compare(_) => unreachable!("compare() keeps its own counts"),
        }
    }
}

impl Cells {
    fn add(&mut self, step: usize, value: Option<f64>, bucket: Option<f64>) {
        match self {
            Cells::Count(counts) => counts[step] += 1,
            Cells::Fold { fold, values, counts } => {
                let value = value.expect("a folded span has a value");
                let current = values[step];
                values[step] = match fold {
                    _ if counts[step] == 0 => value,
                    Fold::Min => current.min(value),
                    Fold::Max => current.max(value),
                    Fold::Sum | Fold::Avg => current + value,
                };
                counts[step] += 1;
            }
            Cells::Buckets(steps) => {
                let bucket = bucket.expect("a bucketed span has a bucket");
                match steps[step].iter_mut().find(|(label, _)| *label == bucket) {
                    Some((_, count)) => *count += 1,
                    None => steps[step].push((bucket, 1)),
                }
            }
        }
    }
}

/// A value as a metrics number: integers and floats as they are, durations in seconds.
fn number(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) if x.is_finite() => Some(*x),
        Value::Duration(nanos) => Some(*nanos as f64 / NANOS_PER_SECOND),
        _ => None,
    }
}

/// Labels as Prometheus writes them, sorted by name: `{name="GET /", p="0.99"}`; nil values
/// as `<nil>`, empty strings as `<empty>`, as Tempo writes them.
pub fn prometheus_labels(labels: &[(String, Value<'_>)]) -> String {
    let mut sorted: Vec<&(String, Value<'_>)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("{");
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let text = match value {
            Value::Nil => "<nil>".to_owned(),
            Value::String(s) if s.is_empty() => "<empty>".to_owned(),
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        };
        let _ = write!(out, "{name}=\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests;
