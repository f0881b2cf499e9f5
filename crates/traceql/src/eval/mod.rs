//! Evaluation of a query against the spans of one trace.
//!
//! [`Compiled::new`] checks a parsed [`Query`] and prepares it (types checked, regular
//! expressions compiled, select fields collected) once; [`Compiled::evaluate`] then runs it on
//! one trace at a time and returns its [`Spanset`]s: none when the trace does not match.
//!
//! # How a query runs
//!
//! Values flow as lists of spansets, each a set of span indices plus what the pipeline added
//! to it (`by()` keys, aggregate values). The query starts from one spanset holding every span
//! of the trace, and each element maps the list it receives to a new one:
//!
//! - `{ expr }` keeps, in each spanset, the spans for which `expr` is true (for some binding
//!   of events and links, see `expr.rs`); spansets left empty are dropped.
//! - `lhs op rhs` evaluates both sides on each spanset separately. `&&` keeps the union of
//!   both sides' spans when both matched, `||` when either did. The structural operators
//!   relate the spans of the two sides through the trace's parent links (`tree.rs`), so
//!   spans in between need not be in either side; they need at most one spanset per side
//!   (after a `by()`, `coalesce()` first), as in Tempo.
//! - A pipeline `source | stage | ...` feeds each stage the previous stage's list:
//!   a spanset expression as above; `count() > 2` and other comparisons of aggregates keep
//!   the spansets for which they hold, recording each aggregate's value; `by(f, ...)` splits
//!   each spanset by the fields' values (first-seen order); `coalesce()` merges all spansets
//!   into one, dropping group keys and aggregates; `select(f, ...)` changes nothing here.
//!
//! The fields of every `select()` in the query are read for every returned span, as Tempo's
//! fetch layer does. Value and type rules are in `value.rs` and `expr.rs`.
//!
//! # Where this differs from Tempo
//!
//! - `x != "v"` is false when `x` is missing, as Tempo's storage layer filters such spans
//!   (whether its engine agrees depends on its version); only `x != nil` and `x = nil` test
//!   presence.
//! - `&&` and `||` treat an operand that is not a boolean as false, so `{ .missing || true }`
//!   matches (Tempo's type rule makes it false unless it short-circuits); `!` of a
//!   non-boolean is nil and matches nothing (Tempo fails the query at run time).
//! - Event and link conditions of one filter are evaluated on one event and one link at a
//!   time (`expr.rs`); Tempo's answer depends on which layer evaluates the condition.
//!   `by()`, `select()` and aggregates read a span's first event and link.
//! - Integer arithmetic stays exact: `2 ^ 10` is 1024 (Tempo swaps the operands of integer
//!   `^`), overflow and division by zero give nil. Duration arithmetic stays a duration
//!   where that makes sense (Tempo turns it into float nanoseconds; comparisons agree).
//! - The right side of `=~` and `!~` must be a string literal.
//! - A span whose parent is not in the trace is the root of its subtree (nested-set parent
//!   -1, related to its descendants); Tempo leaves such spans out of the nested set, so its
//!   structural operators never return them. Roots have no siblings, even when a trace has
//!   several roots.
//! - `by()` accepts several fields and orders groups by first appearance; scalar filters
//!   accept any arithmetic of aggregates and numbers on either side (Tempo: an aggregate
//!   compared with a number). Aggregates skip values that are not numbers.
//! - Bytes and key-value-list attributes read as missing. `with (...)` hints are ignored.

mod expr;
pub(crate) mod tree;
pub(crate) mod value;

use std::collections::HashMap;

use sextant_model::Span;

use crate::ast::{Aggregate, FieldExpr, Pipeline, Query, ScalarExpr, ScalarFilter, SpansetExpr, SpansetOp, Stage};
use expr::{At, Expr, Reads, Type, bindings, first_binding};
use tree::TraceCx;
pub use value::Value;
use value::{CmpOp, Sum, arithmetic, compare, negate, numeric_order};

/// A query that parses but cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Operands of types that never meet, as Tempo refuses them: `{ duration = "x" }`,
    /// `{ name > 3 }`, `{ status = 1 }`, `avg(name)`, `{ 1 + 1 }` as a filter.
    #[error("type error in `{expr}`: {reason}")]
    Type { expr: String, reason: String },
    /// A construct this evaluator does not run (named in the message).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A structural operator met several spansets on one side (after `by()`), which has no
    /// defined meaning; found while evaluating a trace.
    #[error("`{op}` needs at most one spanset on each side, found {lhs} and {rhs}; merge groups with coalesce() first")]
    MultipleSpansets { op: &'static str, lhs: usize, rhs: usize },
}

/// One result of a query on a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanset {
    /// Indices into the trace's spans, ascending; never empty.
    pub spans: Vec<usize>,
    /// The keys of the `by()` stages that made this group, as (`by(field)`, value), in stage
    /// order.
    pub group: Vec<(String, Value<'static>)>,
    /// The aggregates computed by scalar filter stages, as (`count()`, value), in the order
    /// first computed; a later stage's value replaces an earlier one of the same name.
    pub aggregates: Vec<(String, Value<'static>)>,
    /// The `select()`ed fields, each with one value per span of `spans`.
    pub selected: Vec<Selected>,
}

/// The values of one `select()`ed field.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    /// The field as written canonically, e.g. `span.http.method`.
    pub field: String,
    /// One value per span of the spanset, in the same order; nil where missing.
    pub values: Vec<Value<'static>>,
}

/// Compiles `query` and runs it on one trace. To run a query on many traces, compile it once
/// with [`Compiled::new`].
pub fn evaluate(query: &Query, trace: &[Span]) -> Result<Vec<Spanset>, EvalError> {
    Compiled::new(query)?.evaluate(trace)
}

/// A query ready to run on many traces.
#[derive(Debug)]
pub struct Compiled {
    pipeline: CPipeline,
    /// Every `select()` field of the query, without repeats.
    select: Vec<Field>,
}

#[derive(Debug)]
struct CPipeline {
    source: CSpanset,
    stages: Vec<CStage>,
}

#[derive(Debug)]
enum CSpanset {
    Filter { expr: Expr, reads: Reads },
    Pipeline(Box<CPipeline>),
    Op { op: SpansetOp, lhs: Box<CSpanset>, rhs: Box<CSpanset> },
}

#[derive(Debug)]
enum CStage {
    Spanset(CSpanset),
    Scalar { op: CmpOp, lhs: CScalar, rhs: CScalar },
    By(Vec<Field>),
    Select,
    Coalesce,
}

/// A field read once per span (`by()`, `select()`, aggregate and metrics arguments), with its
/// name.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    expr: Expr,
}

impl Field {
    pub(crate) fn compile(field: &FieldExpr) -> Result<Field, EvalError> {
        Ok(Field { name: field.to_string(), expr: Expr::compile(field)?.0 })
    }

    /// The value for a span, under its first event and link.
    pub(crate) fn value<'a>(&'a self, cx: &TraceCx<'a>, span: usize) -> Value<'a> {
        let (event, link) = first_binding(&cx.spans[span]);
        self.expr.eval(&At { trace: cx, span, event, link })
    }
}

#[derive(Debug)]
enum CScalar {
    Aggregate { name: String, kind: AggregateKind, field: Option<Field> },
    Literal(Value<'static>),
    Neg(Box<CScalar>),
    Arithmetic(crate::ast::ArithmeticOp, Box<CScalar>, Box<CScalar>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggregateKind {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

/// A spanset while the pipeline runs.
#[derive(Clone, Debug, Default)]
struct Set {
    spans: Vec<usize>,
    group: Vec<(String, Value<'static>)>,
    aggregates: Vec<(String, Value<'static>)>,
}

impl Set {
    /// A set with `spans` and the annotations of `self`.
    fn with_spans(&self, spans: Vec<usize>) -> Set {
        Set { spans, group: self.group.clone(), aggregates: self.aggregates.clone() }
    }
}

impl Compiled {
    /// Compiles a search query. A metrics query (`| rate()` ...) is refused: it runs through
    /// [`crate::MetricsEvaluator`].
    pub fn new(query: &Query) -> Result<Compiled, EvalError> {
        if let Some(metrics) = &query.metrics {
            return Err(EvalError::Unsupported(format!(
                "`{}()` makes a metrics query, which answers time series rather than traces",
                metrics.function.name()
            )));
        }
        Compiled::pipeline(&query.pipeline)
    }

    /// Compiles the spanset pipeline of a query, without its metrics stage.
    pub(crate) fn pipeline(pipeline: &Pipeline) -> Result<Compiled, EvalError> {
        let mut select = Vec::new();
        let pipeline = compile_pipeline(pipeline, &mut select)?;
        Ok(Compiled { pipeline, select })
    }

    /// The spans of a trace that some returned spanset holds, ascending; the trace is `cx`.
    pub(crate) fn matching_spans(&self, cx: &TraceCx<'_>) -> Result<Vec<usize>, EvalError> {
        if cx.spans.is_empty() {
            return Ok(Vec::new());
        }
        let all = vec![Set { spans: (0..cx.spans.len()).collect(), ..Set::default() }];
        let sets = eval_pipeline(&self.pipeline, cx, all)?;
        Ok(union_of(&sets, &[]))
    }

    /// The spansets the query returns for one trace; empty when the trace does not match.
    pub fn evaluate(&self, trace: &[Span]) -> Result<Vec<Spanset>, EvalError> {
        if trace.is_empty() {
            return Ok(Vec::new());
        }
        let cx = TraceCx::new(trace);
        let all = vec![Set { spans: (0..trace.len()).collect(), ..Set::default() }];
        let sets = eval_pipeline(&self.pipeline, &cx, all)?;
        Ok(sets
            .into_iter()
            .filter(|set| !set.spans.is_empty())
            .map(|set| {
                let selected = self
                    .select
                    .iter()
                    .map(|field| Selected {
                        field: field.name.clone(),
                        values: set.spans.iter().map(|&i| field.value(&cx, i).into_owned()).collect(),
                    })
                    .collect();
                Spanset { spans: set.spans, group: set.group, aggregates: set.aggregates, selected }
            })
            .collect())
    }

    /// Whether the query returns anything for the trace.
    pub fn matches(&self, trace: &[Span]) -> Result<bool, EvalError> {
        Ok(!self.evaluate(trace)?.is_empty())
    }
}

// ----- compiling -------------------------------------------------------------------------------

/// A field whose values are numbers (`duration`, `span.size`), as a metrics function measures
/// it; `function` names the function for the error.
pub(crate) fn compile_numeric_field(field: &FieldExpr, function: &str) -> Result<Field, EvalError> {
    let (expr, ty) = Expr::compile(field)?;
    if !matches!(ty, Type::Any | Type::Int | Type::Float | Type::Duration) {
        return Err(EvalError::Type {
            expr: format!("{function}({field})"),
            reason: format!("{function}() needs a numeric field"),
        });
    }
    Ok(Field { name: field.to_string(), expr })
}

/// A condition on one span, such as the selection filter of `compare()`.
pub(crate) fn compile_condition(condition: &FieldExpr) -> Result<Field, EvalError> {
    let (expr, ty) = Expr::compile(condition)?;
    if !matches!(ty, Type::Bool | Type::Any) {
        return Err(EvalError::Type {
            expr: condition.to_string(),
            reason: "a spanset filter must be a boolean expression".to_owned(),
        });
    }
    Ok(Field { name: condition.to_string(), expr })
}

fn compile_pipeline(pipeline: &Pipeline, select: &mut Vec<Field>) -> Result<CPipeline, EvalError> {
    let source = compile_spanset(&pipeline.source, select)?;
    let stages = pipeline.stages.iter().map(|stage| compile_stage(stage, select)).collect::<Result<_, _>>()?;
    Ok(CPipeline { source, stages })
}

fn compile_spanset(expr: &SpansetExpr, select: &mut Vec<Field>) -> Result<CSpanset, EvalError> {
    Ok(match expr {
        SpansetExpr::Filter(field) => {
            let (compiled, ty) = Expr::compile(field)?;
            if !matches!(ty, Type::Bool | Type::Any) {
                return Err(EvalError::Type {
                    expr: field.to_string(),
                    reason: "a spanset filter must be a boolean expression".to_owned(),
                });
            }
            let reads = compiled.reads();
            CSpanset::Filter { expr: compiled, reads }
        }
        SpansetExpr::Pipeline(pipeline) => CSpanset::Pipeline(Box::new(compile_pipeline(pipeline, select)?)),
        SpansetExpr::Op { op, lhs, rhs } => CSpanset::Op {
            op: *op,
            lhs: Box::new(compile_spanset(lhs, select)?),
            rhs: Box::new(compile_spanset(rhs, select)?),
        },
    })
}

fn compile_stage(stage: &Stage, select: &mut Vec<Field>) -> Result<CStage, EvalError> {
    Ok(match stage {
        Stage::Spanset(expr) => CStage::Spanset(compile_spanset(expr, select)?),
        Stage::ScalarFilter(ScalarFilter { op, lhs, rhs }) => {
            CStage::Scalar { op: CmpOp::from_comparison(*op), lhs: compile_scalar(lhs)?, rhs: compile_scalar(rhs)? }
        }
        Stage::By(fields) => CStage::By(fields.iter().map(Field::compile).collect::<Result<_, _>>()?),
        Stage::Select(fields) => {
            for field in fields {
                let field = Field::compile(field)?;
                if !select.iter().any(|f| f.name == field.name) {
                    select.push(field);
                }
            }
            // Select annotates the output (see `Compiled::select`); as a stage it passes
            // spansets through.
            CStage::Select
        }
        Stage::Coalesce => CStage::Coalesce,
    })
}

fn compile_scalar(expr: &ScalarExpr) -> Result<CScalar, EvalError> {
    Ok(match expr {
        ScalarExpr::Aggregate(aggregate) => {
            let name = aggregate.to_string();
            let (kind, field) = match aggregate {
                Aggregate::Count => (AggregateKind::Count, None),
                Aggregate::Avg(f) => (AggregateKind::Avg, Some(f)),
                Aggregate::Min(f) => (AggregateKind::Min, Some(f)),
                Aggregate::Max(f) => (AggregateKind::Max, Some(f)),
                Aggregate::Sum(f) => (AggregateKind::Sum, Some(f)),
            };
            let field = match field {
                Some(f) => {
                    let (compiled, ty) = Expr::compile(f)?;
                    if !matches!(ty, Type::Any | Type::Int | Type::Float | Type::Duration) {
                        return Err(EvalError::Type {
                            expr: name,
                            reason: "an aggregate needs a numeric field".to_owned(),
                        });
                    }
                    Some(Field { name: f.to_string(), expr: compiled })
                }
                None => None,
            };
            CScalar::Aggregate { name, kind, field }
        }
        ScalarExpr::Literal(literal) => match Expr::compile(&FieldExpr::Literal(literal.clone()))?.0 {
            Expr::Literal(value) => CScalar::Literal(value),
            _ => unreachable!("a literal compiles to a literal"),
        },
        ScalarExpr::Neg(inner) => CScalar::Neg(Box::new(compile_scalar(inner)?)),
        ScalarExpr::Binary { op, lhs, rhs } => {
            CScalar::Arithmetic(*op, Box::new(compile_scalar(lhs)?), Box::new(compile_scalar(rhs)?))
        }
    })
}

// ----- running ---------------------------------------------------------------------------------

fn eval_pipeline(pipeline: &CPipeline, cx: &TraceCx<'_>, input: Vec<Set>) -> Result<Vec<Set>, EvalError> {
    let mut sets = eval_spanset(&pipeline.source, cx, &input)?;
    for stage in &pipeline.stages {
        if sets.is_empty() {
            break;
        }
        sets = eval_stage(stage, cx, sets)?;
    }
    Ok(sets)
}

fn eval_spanset(expr: &CSpanset, cx: &TraceCx<'_>, input: &[Set]) -> Result<Vec<Set>, EvalError> {
    match expr {
        CSpanset::Filter { expr, reads } => Ok(input
            .iter()
            .filter_map(|set| {
                let spans: Vec<usize> = set.spans.iter().copied().filter(|&i| holds(expr, *reads, cx, i)).collect();
                (!spans.is_empty()).then(|| set.with_spans(spans))
            })
            .collect()),
        CSpanset::Pipeline(pipeline) => eval_pipeline(pipeline, cx, input.to_vec()),
        CSpanset::Op { op, lhs, rhs } => {
            let mut output = Vec::new();
            for set in input {
                let one = std::slice::from_ref(set);
                let left = eval_spanset(lhs, cx, one)?;
                let right = eval_spanset(rhs, cx, one)?;
                let spans = match op {
                    SpansetOp::And if !left.is_empty() && !right.is_empty() => union_of(&left, &right),
                    SpansetOp::Or if !left.is_empty() || !right.is_empty() => union_of(&left, &right),
                    SpansetOp::And | SpansetOp::Or => continue,
                    structural => {
                        if right.is_empty() {
                            continue;
                        }
                        if left.len() > 1 || right.len() > 1 {
                            return Err(EvalError::MultipleSpansets {
                                op: structural.symbol(),
                                lhs: left.len(),
                                rhs: right.len(),
                            });
                        }
                        let lhs_spans = left.first().map_or(&[][..], |s| &s.spans);
                        cx.tree().relate(*structural, lhs_spans, &right[0].spans)
                    }
                };
                if !spans.is_empty() {
                    output.push(set.with_spans(spans));
                }
            }
            Ok(output)
        }
    }
}

/// Whether a filter holds for a span under some binding of its events and links.
fn holds(expr: &Expr, reads: Reads, cx: &TraceCx<'_>, span: usize) -> bool {
    if !reads.events && !reads.links {
        return expr.eval(&At { trace: cx, span, event: None, link: None }).is_true();
    }
    bindings(&cx.spans[span], reads).any(|(event, link)| expr.eval(&At { trace: cx, span, event, link }).is_true())
}

/// The spans of all the sets, ascending and without repeats.
fn union_of(left: &[Set], right: &[Set]) -> Vec<usize> {
    let mut spans: Vec<usize> = left.iter().chain(right).flat_map(|s| s.spans.iter().copied()).collect();
    spans.sort_unstable();
    spans.dedup();
    spans
}

fn eval_stage(stage: &CStage, cx: &TraceCx<'_>, sets: Vec<Set>) -> Result<Vec<Set>, EvalError> {
    match stage {
        CStage::Spanset(expr) => eval_spanset(expr, cx, &sets),
        CStage::Scalar { op, lhs, rhs } => Ok(sets
            .into_iter()
            .filter_map(|mut set| {
                let mut computed = Vec::new();
                let l = eval_scalar(lhs, cx, &set.spans, &mut computed);
                let r = eval_scalar(rhs, cx, &set.spans, &mut computed);
                if !compare(*op, &l, &r) {
                    return None;
                }
                for (name, value) in computed {
                    match set.aggregates.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = value,
                        None => set.aggregates.push((name, value)),
                    }
                }
                Some(set)
            })
            .collect()),
        CStage::By(fields) => {
            let mut output = Vec::new();
            for set in &sets {
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut groups: Vec<Set> = Vec::new();
                for &span in &set.spans {
                    let values: Vec<Value<'static>> = fields.iter().map(|f| f.value(cx, span).into_owned()).collect();
                    // Debug text tells apart every value of a different type or content.
                    let key = format!("{values:?}");
                    let slot = *index.entry(key).or_insert_with(|| {
                        let mut group = set.with_spans(Vec::new());
                        for (field, value) in fields.iter().zip(values) {
                            let name = format!("by({})", field.name);
                            match group.group.iter_mut().find(|(n, _)| *n == name) {
                                Some(slot) => slot.1 = value,
                                None => group.group.push((name, value)),
                            }
                        }
                        groups.push(group);
                        groups.len() - 1
                    });
                    groups[slot].spans.push(span);
                }
                output.extend(groups);
            }
            Ok(output)
        }
        CStage::Select => Ok(sets),
        CStage::Coalesce => {
            let spans = union_of(&sets, &[]);
            Ok(if spans.is_empty() { Vec::new() } else { vec![Set { spans, ..Set::default() }] })
        }
    }
}

/// The value of a scalar expression on a spanset; each aggregate computed is recorded in
/// `computed` as (name, value). Nil when an aggregate has no numeric value to work on.
fn eval_scalar(
    expr: &CScalar,
    cx: &TraceCx<'_>,
    spans: &[usize],
    computed: &mut Vec<(String, Value<'static>)>,
) -> Value<'static> {
    match expr {
        CScalar::Literal(value) => value.clone(),
        CScalar::Neg(inner) => negate(&eval_scalar(inner, cx, spans, computed)),
        CScalar::Arithmetic(op, lhs, rhs) => {
            let l = eval_scalar(lhs, cx, spans, computed);
            let r = eval_scalar(rhs, cx, spans, computed);
            arithmetic(*op, &l, &r)
        }
        CScalar::Aggregate { name, kind, field } => {
            let value = aggregate(*kind, field.as_ref(), cx, spans);
            if !value.is_nil() {
                computed.push((name.clone(), value.clone()));
            }
            value
        }
    }
}

fn aggregate(kind: AggregateKind, field: Option<&Field>, cx: &TraceCx<'_>, spans: &[usize]) -> Value<'static> {
    let Some(field) = field else {
        return Value::Int(i64::try_from(spans.len()).unwrap_or(i64::MAX));
    };
    let values = spans.iter().map(|&i| field.value(cx, i));
    match kind {
        AggregateKind::Count => unreachable!("count() has no field"),
        AggregateKind::Sum | AggregateKind::Avg => {
            let mut sum = Sum::Empty;
            let mut count = 0;
            for value in values {
                count += usize::from(sum.add(&value));
            }
            if kind == AggregateKind::Sum { sum.total() } else { sum.mean(count) }
        }
        AggregateKind::Min | AggregateKind::Max => {
            let wanted =
                if kind == AggregateKind::Min { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
            let mut best: Option<Value<'_>> = None;
            for value in values {
                // Skips values that are not numbers (and NaN).
                if numeric_order(&value, &value).is_none() {
                    continue;
                }
                if best.as_ref().is_none_or(|b| numeric_order(&value, b) == Some(wanted)) {
                    best = Some(value);
                }
            }
            best.map_or(Value::Nil, Value::into_owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn compile(text: &str) -> Result<Compiled, EvalError> {
        Compiled::new(&parse(text).unwrap())
    }

    #[test]
    fn compiled_queries_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Compiled>();
    }

    #[test]
    fn types_that_never_meet_are_refused() {
        for text in [
            r#"{ duration = "x" }"#,
            "{ name > 3 }",
            "{ status = server }",
            "{ kind = 1 }",
            "{ .a && 3 }",
            r#"{ !"x" }"#,
            r#"{ -name = 1 }"#,
            "{ 1 }",
            "{ duration =~ \"1s\" }",
            "{ } | sum(status) > 1",
        ] {
            assert!(matches!(compile(text), Err(EvalError::Type { .. })), "{text}: {:?}", compile(text).err());
        }
        for text in [
            "{ duration > 100 }",
            "{ childCount = 1.0 }",
            "{ .a = nil && duration != nil }",
            r#"{ name < "b" }"#,
            "{ .a }",
            "{ !.a }",
            "{ span.x + 1 > duration }",
        ] {
            assert!(compile(text).is_ok(), "{text}: {:?}", compile(text).err());
        }
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let error = compile(r#"{ parent.event.x = 1 }"#).unwrap_err();
        assert!(matches!(error, EvalError::Unsupported(ref m) if m.contains("parent.event.x")), "{error}");
        let error = compile("{ name !~ .pattern }").unwrap_err();
        assert!(matches!(error, EvalError::Unsupported(ref m) if m.contains("string literal")), "{error}");
    }

    #[test]
    fn an_empty_trace_matches_nothing() {
        assert_eq!(compile("{ }").unwrap().evaluate(&[]).unwrap(), Vec::new());
    }
}
