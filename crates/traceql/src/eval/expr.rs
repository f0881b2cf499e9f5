//! Field expressions compiled for evaluation on one span: types checked as Tempo checks them,
//! regular expressions compiled once, presence tests (`x = nil`) recognised.
//!
//! Event and link values (`event.x`, `event:name`, `link.x`, `link:spanID`, ...) are read
//! from one event and one link of the span at a time, the *binding*: a spanset filter holds
//! for a span when it holds for some binding (some event, and some link, of the span; a span
//! without events binds none, and its event values are missing). So
//! `{ event:name = "retry" && event.attempt > 2 }` asks for one event with both.

use std::borrow::Cow;

use regex::Regex;
use sextant_model::{Span, StatusCode, find_attribute};

use super::EvalError;
use super::tree::TraceCx;
use super::value::{CmpOp, Value, arithmetic, compare, negate, regex_match};
use crate::ast::{ArithmeticOp, Attribute, AttributeScope, BinaryOp, FieldExpr, Intrinsic, Literal, Status, UnaryOp};

/// A compiled field expression.
#[derive(Debug)]
pub(crate) enum Expr {
    Literal(Value<'static>),
    Attribute(Attribute),
    Intrinsic(Intrinsic),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// `x =~ "re"` (`negated`: `!~`), anchored at both ends.
    Regex {
        negated: bool,
        lhs: Box<Expr>,
        re: Regex,
    },
    /// `x != nil` (`present`) or `x = nil`.
    Presence {
        present: bool,
        expr: Box<Expr>,
    },
    Arithmetic(ArithmeticOp, Box<Expr>, Box<Expr>),
}

/// The static type of an expression, as far as it is known before reading a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    /// An attribute, or arithmetic on one: any type.
    Any,
    Nil,
    Bool,
    Int,
    Float,
    String,
    Duration,
    Status,
    Kind,
}

impl Type {
    fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Duration)
    }

    fn name(self) -> &'static str {
        match self {
            Type::Any => "attribute",
            Type::Nil => "nil",
            Type::Bool => "boolean",
            Type::Int => "integer",
            Type::Float => "float",
            Type::String => "string",
            Type::Duration => "duration",
            Type::Status => "status",
            Type::Kind => "kind",
        }
    }

    fn with_article(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {name}")
    }

    /// Whether two types can meet under a binary operator at all (Tempo's rule: same type,
    /// both numeric, or either unknown or nil).
    fn matches(self, other: Type) -> bool {
        self == other
            || (self.is_numeric() && other.is_numeric())
            || matches!(self, Type::Any | Type::Nil)
            || matches!(other, Type::Any | Type::Nil)
    }

    /// Whether `op` accepts an operand of this type.
    fn accepts(self, op: BinaryOp) -> bool {
        use BinaryOp::*;
        match self {
            Type::Any => true,
            Type::Bool => matches!(op, And | Or | Eq | Neq),
            Type::Int | Type::Float | Type::Duration => {
                matches!(op, Add | Sub | Mul | Div | Mod | Pow | Eq | Neq | Lt | Lte | Gt | Gte)
            }
            Type::String => matches!(op, Eq | Neq | Lt | Lte | Gt | Gte | Regex | NotRegex),
            Type::Nil | Type::Status | Type::Kind => matches!(op, Eq | Neq),
        }
    }

    pub(crate) fn of_intrinsic(intrinsic: Intrinsic) -> Type {
        use Intrinsic::*;
        match intrinsic {
            Duration | TraceDuration | EventTimeSinceStart => Type::Duration,
            Name
            | StatusMessage
            | SpanId
            | ParentId
            | RootName
            | RootServiceName
            | TraceId
            | EventName
            | LinkTraceId
            | LinkSpanId
            | InstrumentationName
            | InstrumentationVersion => Type::String,
            Status => Type::Status,
            Kind => Type::Kind,
            ChildCount | NestedSetLeft | NestedSetRight | NestedSetParent => Type::Int,
        }
    }

    /// The type of arithmetic on two operands, following [`arithmetic`].
    fn of_arithmetic(op: ArithmeticOp, lhs: Type, rhs: Type) -> Type {
        match (lhs, rhs) {
            (Type::Any, _) | (_, Type::Any) => Type::Any,
            (Type::Int, Type::Int) => Type::Int,
            (Type::Duration, Type::Duration) if matches!(op, ArithmeticOp::Add | ArithmeticOp::Sub) => Type::Duration,
            (Type::Duration, Type::Duration) if op == ArithmeticOp::Mod => Type::Duration,
            (Type::Duration, _) if matches!(op, ArithmeticOp::Mul | ArithmeticOp::Div) && rhs != Type::Duration => {
                Type::Duration
            }
            (_, Type::Duration) if op == ArithmeticOp::Mul && lhs != Type::Duration => Type::Duration,
            _ => Type::Float,
        }
    }
}

/// What a compiled expression reads, to decide how to bind events and links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    pub events: bool,
    pub links: bool,
}

impl Expr {
    /// Compiles a field expression and returns its type.
    pub(crate) fn compile(expr: &FieldExpr) -> Result<(Expr, Type), EvalError> {
        match expr {
            FieldExpr::Literal(literal) => Ok(literal_value(literal)),
            FieldExpr::Attribute(attribute) => {
                if attribute.parent && matches!(attribute.scope, AttributeScope::Event | AttributeScope::Link) {
                    return Err(EvalError::Unsupported(format!(
                        "`{attribute}`: the events and links of the parent span cannot be read"
                    )));
                }
                Ok((Expr::Attribute(attribute.clone()), Type::Any))
            }
            FieldExpr::Intrinsic(intrinsic) => Ok((Expr::Intrinsic(*intrinsic), Type::of_intrinsic(*intrinsic))),
            FieldExpr::Unary { op, expr: operand } => {
                let (inner, ty) = Expr::compile(operand)?;
                match op {
                    UnaryOp::Not if matches!(ty, Type::Bool | Type::Any) => {
                        Ok((Expr::Not(Box::new(inner)), Type::Bool))
                    }
                    UnaryOp::Neg if ty.is_numeric() || ty == Type::Any => Ok((Expr::Neg(Box::new(inner)), ty)),
                    _ => Err(type_error(expr, format!("`{}` cannot apply to a {}", op.symbol(), ty.name()))),
                }
            }
            FieldExpr::Binary { op, lhs, rhs } => compile_binary(expr, *op, lhs, rhs),
        }
    }

    /// What the expression reads.
    pub(crate) fn reads(&self) -> Reads {
        let mut reads = Reads::default();
        self.visit(&mut |e| match e {
            Expr::Attribute(a) => {
                reads.events |= a.scope == AttributeScope::Event;
                reads.links |= a.scope == AttributeScope::Link;
            }
            Expr::Intrinsic(i) => {
                use Intrinsic::*;
                reads.events |= matches!(i, EventName | EventTimeSinceStart);
                reads.links |= matches!(i, LinkTraceId | LinkSpanId);
            }
            _ => {}
        });
        reads
    }

    fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Literal(_) | Expr::Attribute(_) | Expr::Intrinsic(_) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::Presence { expr: e, .. } | Expr::Regex { lhs: e, .. } => e.visit(f),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) | Expr::Arithmetic(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
        }
    }

    /// The value for one span under one binding.
    pub(crate) fn eval<'a>(&'a self, at: &At<'_, 'a>) -> Value<'a> {
        match self {
            // Borrowed, so that comparing with a string literal does not copy it.
            Expr::Literal(Value::String(s)) => Value::String(Cow::Borrowed(s)),
            Expr::Literal(v) => v.clone(),
            Expr::Attribute(attribute) => at.attribute(attribute),
            Expr::Intrinsic(intrinsic) => at.intrinsic(*intrinsic),
            Expr::Not(e) => match e.eval(at) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Nil,
            },
            Expr::Neg(e) => negate(&e.eval(at)),
            Expr::And(a, b) => Value::Bool(a.eval(at).is_true() && b.eval(at).is_true()),
            Expr::Or(a, b) => Value::Bool(a.eval(at).is_true() || b.eval(at).is_true()),
            Expr::Compare(op, a, b) => Value::Bool(compare(*op, &a.eval(at), &b.eval(at))),
            Expr::Regex { negated, lhs, re } => Value::Bool(regex_match(re, *negated, &lhs.eval(at))),
            Expr::Presence { present, expr } => Value::Bool(expr.eval(at).is_nil() != *present),
            Expr::Arithmetic(op, a, b) => arithmetic(*op, &a.eval(at), &b.eval(at)),
        }
    }
}

fn type_error(expr: &FieldExpr, reason: String) -> EvalError {
    EvalError::Type { expr: expr.to_string(), reason }
}

fn literal_value(literal: &Literal) -> (Expr, Type) {
    let (value, ty) = match literal {
        Literal::String(s) => (Value::String(Cow::Owned(s.clone())), Type::String),
        Literal::Int(i) => (Value::Int(*i), Type::Int),
        Literal::Float(x) => (Value::Float(*x), Type::Float),
        // The parser keeps durations within i64 nanoseconds.
        Literal::Duration(d) => (Value::Duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)), Type::Duration),
        Literal::Bool(b) => (Value::Bool(*b), Type::Bool),
        Literal::Nil => (Value::Nil, Type::Nil),
        Literal::Status(s) => (Value::Status(*s), Type::Status),
        Literal::Kind(k) => (Value::Kind(*k), Type::Kind),
    };
    (Expr::Literal(value), ty)
}

fn compile_binary(
    whole: &FieldExpr,
    op: BinaryOp,
    lhs: &FieldExpr,
    rhs: &FieldExpr,
) -> Result<(Expr, Type), EvalError> {
    let (l, lt) = Expr::compile(lhs)?;
    let (r, rt) = Expr::compile(rhs)?;
    if !lt.matches(rt) {
        return Err(type_error(whole, format!("cannot combine {} with {}", lt.with_article(), rt.with_article())));
    }
    for ty in [lt, rt] {
        if !ty.accepts(op) {
            return Err(type_error(whole, format!("`{}` does not apply to a {}", op.symbol(), ty.name())));
        }
    }
    let (l, r) = (Box::new(l), Box::new(r));
    let compiled = match op {
        BinaryOp::And => (Expr::And(l, r), Type::Bool),
        BinaryOp::Or => (Expr::Or(l, r), Type::Bool),
        BinaryOp::Regex | BinaryOp::NotRegex => {
            let Expr::Literal(Value::String(pattern)) = *r else {
                return Err(EvalError::Unsupported(format!(
                    "`{whole}`: the right side of `{}` must be a string literal",
                    op.symbol()
                )));
            };
            // Anchored as Tempo's (Prometheus') matcher is; `.` also matches a newline.
            let re = Regex::new(&format!("^(?s:{pattern})$"))
                .map_err(|e| type_error(whole, format!("invalid regular expression: {e}")))?;
            (Expr::Regex { negated: op == BinaryOp::NotRegex, lhs: l, re }, Type::Bool)
        }
        BinaryOp::Eq | BinaryOp::Neq => {
            let present = op == BinaryOp::Neq;
            match (lt, rt) {
                (Type::Nil, Type::Nil) => (Expr::Literal(Value::Bool(!present)), Type::Bool),
                (_, Type::Nil) => (Expr::Presence { present, expr: l }, Type::Bool),
                (Type::Nil, _) => (Expr::Presence { present, expr: r }, Type::Bool),
                _ => (Expr::Compare(CmpOp::from_binary(op).expect("a comparison"), l, r), Type::Bool),
            }
        }
        BinaryOp::Lt | BinaryOp::Lte | BinaryOp::Gt | BinaryOp::Gte => {
            (Expr::Compare(CmpOp::from_binary(op).expect("a comparison"), l, r), Type::Bool)
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Pow => {
            let op = arithmetic_op(op);
            (Expr::Arithmetic(op, l, r), Type::of_arithmetic(op, lt, rt))
        }
    };
    Ok(compiled)
}

fn arithmetic_op(op: BinaryOp) -> ArithmeticOp {
    ArithmeticOp::ALL.into_iter().find(|a| a.as_binary() == op).expect("an arithmetic operator")
}

/// One span of a trace under one binding of its events and links.
pub(crate) struct At<'c, 't> {
    pub trace: &'c TraceCx<'t>,
    pub span: usize,
    pub event: Option<usize>,
    pub link: Option<usize>,
}

impl<'t> At<'_, 't> {
    fn span(&self) -> &'t Span {
        &self.trace.spans[self.span]
    }

    fn attribute(&self, attribute: &Attribute) -> Value<'t> {
        let span = if attribute.parent {
            match self.trace.tree().parent[self.span] {
                Some(parent) => &self.trace.spans[parent],
                None => return Value::Nil,
            }
        } else {
            self.span()
        };
        let name = attribute.name.as_str();
        let found = match attribute.scope {
            AttributeScope::None => {
                find_attribute(&span.attributes, name).or_else(|| find_attribute(&span.resource.attributes, name))
            }
            AttributeScope::Span => find_attribute(&span.attributes, name),
            AttributeScope::Resource => find_attribute(&span.resource.attributes, name),
            AttributeScope::Instrumentation => find_attribute(&span.scope.attributes, name),
            AttributeScope::Event => self.event.and_then(|e| find_attribute(&span.events[e].attributes, name)),
            AttributeScope::Link => self.link.and_then(|l| find_attribute(&span.links[l].attributes, name)),
        };
        found.map_or(Value::Nil, Value::from_any)
    }

    fn intrinsic(&self, intrinsic: Intrinsic) -> Value<'t> {
        let span = self.span();
        let trace = self.trace;
        let borrowed = |s: &'t str| Value::String(Cow::Borrowed(s));
        match intrinsic {
            Intrinsic::Duration => Value::Duration(nanos(span.duration_nanos())),
            Intrinsic::Name => borrowed(&span.name),
            Intrinsic::Status => Value::Status(match span.status_code {
                StatusCode::Unset => Status::Unset,
                StatusCode::Ok => Status::Ok,
                StatusCode::Error => Status::Error,
            }),
            Intrinsic::StatusMessage => borrowed(&span.status_message),
            Intrinsic::Kind => Value::Kind(span.kind),
            Intrinsic::ChildCount => Value::Int(i64::from(trace.tree().child_count[self.span])),
            Intrinsic::SpanId => Value::String(Cow::Owned(span.span_id.to_hex())),
            Intrinsic::ParentId => span.parent_span_id.map_or(Value::Nil, |id| Value::String(Cow::Owned(id.to_hex()))),
            Intrinsic::NestedSetLeft => Value::Int(trace.tree().left[self.span]),
            Intrinsic::NestedSetRight => Value::Int(trace.tree().right[self.span]),
            Intrinsic::NestedSetParent => Value::Int(trace.tree().nested_set_parent(self.span)),
            Intrinsic::TraceDuration => {
                let (start, end) = trace.bounds();
                Value::Duration(nanos(end.saturating_sub(start)))
            }
            Intrinsic::RootName => trace.root().map_or(Value::Nil, |root| borrowed(&trace.spans[root].name)),
            Intrinsic::RootServiceName => trace
                .root()
                .and_then(|root| find_attribute(&trace.spans[root].resource.attributes, "service.name"))
                .map_or(Value::Nil, Value::from_any),
            Intrinsic::TraceId => Value::String(Cow::Owned(span.trace_id.to_hex())),
            Intrinsic::EventName => self.event.map_or(Value::Nil, |e| borrowed(&span.events[e].name)),
            Intrinsic::EventTimeSinceStart => self.event.map_or(Value::Nil, |e| {
                let time = span.events[e].time_unix_nanos;
                let since = i128::from(time) - i128::from(span.start_unix_nanos);
                Value::Duration(i64::try_from(since).unwrap_or(if since < 0 { i64::MIN } else { i64::MAX }))
            }),
            Intrinsic::LinkTraceId => {
                self.link.map_or(Value::Nil, |l| Value::String(Cow::Owned(span.links[l].trace_id.to_hex())))
            }
            Intrinsic::LinkSpanId => {
                self.link.map_or(Value::Nil, |l| Value::String(Cow::Owned(span.links[l].span_id.to_hex())))
            }
            Intrinsic::InstrumentationName => borrowed(&span.scope.name),
            Intrinsic::InstrumentationVersion => borrowed(&span.scope.version),
        }
    }
}

fn nanos(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The bindings to try for a span: each event (or none when the expression reads no event
/// or the span has none), crossed with each link likewise.
pub(crate) fn bindings(span: &Span, reads: Reads) -> impl Iterator<Item = (Option<usize>, Option<usize>)> {
    let events: Vec<Option<usize>> =
        if reads.events && !span.events.is_empty() { (0..span.events.len()).map(Some).collect() } else { vec![None] };
    let links: Vec<Option<usize>> =
        if reads.links && !span.links.is_empty() { (0..span.links.len()).map(Some).collect() } else { vec![None] };
    events.into_iter().flat_map(move |e| links.clone().into_iter().map(move |l| (e, l)))
}

/// The binding used where one value per span is needed (`by()`, `select()`, aggregates):
/// the span's first event and first link.
pub(crate) fn first_binding(span: &Span) -> (Option<usize>, Option<usize>) {
    ((!span.events.is_empty()).then_some(0), (!span.links.is_empty()).then_some(0))
}
