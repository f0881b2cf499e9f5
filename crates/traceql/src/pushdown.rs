//! Conditions that storage can check cheaply to skip traces a query cannot match.
//!
//! [`conditions`] returns a conjunction of span-level conditions: a trace for which the query
//! returns anything has, for each condition, some span satisfying it (different conditions
//! may be satisfied by different spans). The extraction is conservative: a condition is kept
//! only when every result needs it, so a trace [`PushDown::may_match`] rejects never matches.
//!
//! Where conditions come from:
//! - a filter `{ a && b && ... }`: each conjunct that is a simple comparison (below); nothing
//!   from under `||` or `!`;
//! - `lhs && rhs` and the structural operators `>`, `<`, `>>`, `<<`, `~` and their union
//!   forms: both sides', since a result needs a span from each side;
//! - the negated structural operators (`!>`, ...): the right side's only, since the left
//!   side may match nothing;
//! - `lhs || rhs`: the conditions both sides have;
//! - a pipeline: its source's and those of its spanset stages (`| { ... }`).
//!
//! Simple comparisons (either side may hold the literal): `resource.service.name = "x"`,
//! `name = "x"`, `duration > 1s` (and `>=`, `<`, `<=`), `span.k = v`, `.k = v` and
//! `resource.k = v` with a string, number or boolean literal `v`, `status = error` (or `ok`,
//! `unset`), `kind = server` (or another kind). `!=`, regular expressions, event, link and
//! parent attributes are never extracted.

use std::fmt;
use std::time::Duration;

use sextant_model::{Span, find_attribute};

use crate::ast::{
    Attribute, AttributeScope, BinaryOp, ComparisonOp, FieldExpr, Intrinsic, Literal, Pipeline, Query, SpanKind,
    SpansetExpr, SpansetOp, Stage, Status,
};
use crate::eval::Value;

/// A conjunction of [`Condition`]s, each to be satisfied by some span of a matching trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushDown {
    /// Without repeats; empty when nothing can be pushed down.
    pub conditions: Vec<Condition>,
}

/// A condition on one span.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `resource.service.name = "x"`.
    ServiceName(String),
    /// `name = "x"`.
    SpanName(String),
    /// `duration op d`, with `op` one of `>`, `>=`, `<`, `<=`.
    Duration { op: ComparisonOp, nanos: u64 },
    /// `scope.name = value` for the span, resource or unscoped (span, then resource) scope.
    Attribute { scope: AttributeScope, name: String, value: AttributeValue },
    /// `status = s`.
    Status(Status),
    /// `kind = k`.
    Kind(SpanKind),
}

/// The literal an attribute is compared with. Numbers compare numerically (`1` equals
/// `1.0`); an array attribute matches when one of its elements does.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The conditions every trace matched by `query` satisfies.
pub fn conditions(query: &Query) -> PushDown {
    let mut conditions = Vec::new();
    for condition in required_by_pipeline(&query.pipeline) {
        if !conditions.contains(&condition) {
            conditions.push(condition);
        }
    }
    PushDown { conditions }
}

impl PushDown {
    /// Whether the trace may match: each condition is satisfied by some span. True when
    /// there are no conditions.
    pub fn may_match(&self, trace: &[Span]) -> bool {
        self.conditions.iter().all(|condition| trace.iter().any(|span| condition.matches(span)))
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }
}

impl Condition {
    /// Whether the span satisfies the condition, exactly as the evaluator would decide the
    /// comparison for it.
    pub fn matches(&self, span: &Span) -> bool {
        use crate::eval::value::{CmpOp, compare};
        match self {
            Condition::ServiceName(name) => find_attribute(&span.resource.attributes, "service.name")
                .is_some_and(|v| compare(CmpOp::Eq, &Value::from_any(v), &Value::String(name.as_str().into()))),
            Condition::SpanName(name) => span.name == *name,
            Condition::Duration { op, nanos } => {
                let duration = i64::try_from(span.duration_nanos()).unwrap_or(i64::MAX);
                let nanos = i64::try_from(*nanos).unwrap_or(i64::MAX);
                compare(CmpOp::from_comparison(*op), &Value::Duration(duration), &Value::Duration(nanos))
            }
            Condition::Attribute { scope, name, value } => {
                let found = match scope {
                    AttributeScope::Span => find_attribute(&span.attributes, name),
                    AttributeScope::Resource => find_attribute(&span.resource.attributes, name),
                    _ => find_attribute(&span.attributes, name)
                        .or_else(|| find_attribute(&span.resource.attributes, name)),
                };
                let literal = match value {
                    AttributeValue::String(s) => Value::String(s.as_str().into()),
                    AttributeValue::Int(i) => Value::Int(*i),
                    AttributeValue::Float(x) => Value::Float(*x),
                    AttributeValue::Bool(b) => Value::Bool(*b),
                };
                found.is_some_and(|v| compare(CmpOp::Eq, &Value::from_any(v), &literal))
            }
            Condition::Status(status) => {
                let code = match status {
                    Status::Unset => sextant_model::StatusCode::Unset,
                    Status::Ok => sextant_model::StatusCode::Ok,
                    Status::Error => sextant_model::StatusCode::Error,
                };
                span.status_code == code
            }
            Condition::Kind(kind) => span.kind == *kind,
        }
    }

    /// The condition as a filter expression.
    pub fn to_field_expr(&self) -> FieldExpr {
        let (field, op, literal) = match self {
            Condition::ServiceName(name) => (
                FieldExpr::Attribute(Attribute {
                    scope: AttributeScope::Resource,
                    parent: false,
                    name: "service.name".to_owned(),
                }),
                BinaryOp::Eq,
                Literal::String(name.clone()),
            ),
            Condition::SpanName(name) => {
                (FieldExpr::Intrinsic(Intrinsic::Name), BinaryOp::Eq, Literal::String(name.clone()))
            }
            Condition::Duration { op, nanos } => (
                FieldExpr::Intrinsic(Intrinsic::Duration),
                binary(*op),
                Literal::Duration(Duration::from_nanos(*nanos)),
            ),
            Condition::Attribute { scope, name, value } => (
                FieldExpr::Attribute(Attribute { scope: *scope, parent: false, name: name.clone() }),
                BinaryOp::Eq,
                match value {
                    AttributeValue::String(s) => Literal::String(s.clone()),
                    AttributeValue::Int(i) => Literal::Int(*i),
                    AttributeValue::Float(x) => Literal::Float(*x),
                    AttributeValue::Bool(b) => Literal::Bool(*b),
                },
            ),
            Condition::Status(status) => {
                (FieldExpr::Intrinsic(Intrinsic::Status), BinaryOp::Eq, Literal::Status(*status))
            }
            Condition::Kind(kind) => (FieldExpr::Intrinsic(Intrinsic::Kind), BinaryOp::Eq, Literal::Kind(*kind)),
        };
        FieldExpr::Binary { op, lhs: Box::new(field), rhs: Box::new(FieldExpr::Literal(literal)) }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_field_expr())
    }
}

fn binary(op: ComparisonOp) -> BinaryOp {
    match op {
        ComparisonOp::Eq => BinaryOp::Eq,
        ComparisonOp::Neq => BinaryOp::Neq,
        ComparisonOp::Lt => BinaryOp::Lt,
        ComparisonOp::Lte => BinaryOp::Lte,
        ComparisonOp::Gt => BinaryOp::Gt,
        ComparisonOp::Gte => BinaryOp::Gte,
    }
}

fn required_by_pipeline(pipeline: &Pipeline) -> Vec<Condition> {
    let mut out = required_by_spanset(&pipeline.source);
    for stage in &pipeline.stages {
        if let Stage::Spanset(expr) = stage {
            out.extend(required_by_spanset(expr));
        }
    }
    out
}

fn required_by_spanset(expr: &SpansetExpr) -> Vec<Condition> {
    match expr {
        SpansetExpr::Filter(field) => {
            let mut conjuncts = Vec::new();
            conjuncts_of(field, &mut conjuncts);
            conjuncts.into_iter().filter_map(simple_condition).collect()
        }
        SpansetExpr::Pipeline(pipeline) => required_by_pipeline(pipeline),
        SpansetExpr::Op { op, lhs, rhs } => match op {
            SpansetOp::Or => {
                let right = required_by_spanset(rhs);
                required_by_spanset(lhs).into_iter().filter(|c| right.contains(c)).collect()
            }
            SpansetOp::NotChild
            | SpansetOp::NotParent
            | SpansetOp::NotDescendant
            | SpansetOp::NotAncestor
            | SpansetOp::NotSibling => required_by_spanset(rhs),
            _ => {
                let mut out = required_by_spanset(lhs);
                out.extend(required_by_spanset(rhs));
                out
            }
        },
    }
}

/// The operands of a top-level `&&` chain.
fn conjuncts_of<'a>(expr: &'a FieldExpr, out: &mut Vec<&'a FieldExpr>) {
    match expr {
        FieldExpr::Binary { op: BinaryOp::And, lhs, rhs } => {
            conjuncts_of(lhs, out);
            conjuncts_of(rhs, out);
        }
        other => out.push(other),
    }
}

fn simple_condition(expr: &FieldExpr) -> Option<Condition> {
    let FieldExpr::Binary { op, lhs, rhs } = expr else { return None };
    // The field on the left, the literal on the right.
    let (field, op, literal) = match (lhs.as_ref(), rhs.as_ref()) {
        (field, FieldExpr::Literal(literal)) => (field, *op, literal),
        (FieldExpr::Literal(literal), field) => (field, flip(*op)?, literal),
        _ => return None,
    };
    match (field, op, literal) {
        (FieldExpr::Intrinsic(Intrinsic::Name), BinaryOp::Eq, Literal::String(s)) => {
            Some(Condition::SpanName(s.clone()))
        }
        (FieldExpr::Intrinsic(Intrinsic::Duration), _, Literal::Duration(d)) => {
            let op = match op {
                BinaryOp::Gt => ComparisonOp::Gt,
                BinaryOp::Gte => ComparisonOp::Gte,
                BinaryOp::Lt => ComparisonOp::Lt,
                BinaryOp::Lte => ComparisonOp::Lte,
                _ => return None,
            };
            Some(Condition::Duration { op, nanos: u64::try_from(d.as_nanos()).ok()? })
        }
        (FieldExpr::Intrinsic(Intrinsic::Status), BinaryOp::Eq, Literal::Status(s)) => Some(Condition::Status(*s)),
        (FieldExpr::Intrinsic(Intrinsic::Kind), BinaryOp::Eq, Literal::Kind(k)) => Some(Condition::Kind(*k)),
        (FieldExpr::Attribute(attribute), BinaryOp::Eq, literal) if !attribute.parent => {
            let scope = attribute.scope;
            if !matches!(scope, AttributeScope::None | AttributeScope::Span | AttributeScope::Resource) {
                return None;
            }
            let value = match literal {
                Literal::String(s) => AttributeValue::String(s.clone()),
                Literal::Int(i) => AttributeValue::Int(*i),
                Literal::Float(x) => AttributeValue::Float(*x),
                Literal::Bool(b) => AttributeValue::Bool(*b),
                _ => return None,
            };
            Some(match value {
                AttributeValue::String(s) if scope == AttributeScope::Resource && attribute.name == "service.name" => {
                    Condition::ServiceName(s)
                }
                value => Condition::Attribute { scope, name: attribute.name.clone(), value },
            })
        }
        _ => None,
    }
}

/// `literal op field` as `field op' literal`; `None` for operators that do not flip.
fn flip(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn pushed(query: &str) -> Vec<String> {
        conditions(&parse(query).unwrap()).conditions.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_filter_gives_its_simple_conjuncts() {
        assert_eq!(
            pushed(r#"{ resource.service.name = "cart" && name = "GET" && duration > 1s && status = error }"#),
            ["resource.service.name = \"cart\"", "name = \"GET\"", "duration > 1s", "status = error"]
        );
        assert_eq!(
            pushed(r#"{ 10ms <= duration && "v" = span.k && .n = 3 }"#),
            ["duration >= 10ms", "span.k = \"v\"", ".n = 3"]
        );
        assert_eq!(
            pushed("{ kind = server && .flag = true && resource.zone = 1.5 }"),
            ["kind = server", ".flag = true", "resource.zone = 1.5"]
        );
    }

    #[test]
    fn disjunctions_negations_and_inequalities_give_nothing() {
        for query in [
            r#"{ name = "a" || name = "b" }"#,
            r#"{ !(name = "a") }"#,
            r#"{ name != "a" }"#,
            r#"{ name =~ "a.*" }"#,
            r#"{ (name = "a" || .x = 1) && .y != 2 }"#,
            r#"{ parent.span.k = "v" }"#,
            r#"{ event.k = "v" && link.k = "v" && instrumentation.k = "v" }"#,
            r#"{ duration = 1s }"#,
            r#"{ .x = nil }"#,
            r#"{ name = "a" } !> { }"#,
            r#"{ name = "a" } || { .x = 1 }"#,
        ] {
            assert_eq!(pushed(query), Vec::<String>::new(), "{query}");
        }
    }

    #[test]
    fn spanset_operators_combine_their_sides() {
        assert_eq!(pushed(r#"{ name = "a" } && { name = "b" }"#), ["name = \"a\"", "name = \"b\""]);
        assert_eq!(pushed(r#"{ name = "a" } >> { name = "b" }"#), ["name = \"a\"", "name = \"b\""]);
        assert_eq!(pushed(r#"{ name = "a" } &~ { name = "b" }"#), ["name = \"a\"", "name = \"b\""]);
        assert_eq!(pushed(r#"{ name = "a" } !< { name = "b" }"#), ["name = \"b\""]);
        assert_eq!(
            pushed(r#"({ name = "a" && status = error } || { name = "b" && status = error }) | count() > 1"#),
            ["status = error"]
        );
        assert_eq!(pushed(r#"{ .a = 1 } | by(name) | { kind = client } | select(.x)"#), [".a = 1", "kind = client"]);
    }
}
