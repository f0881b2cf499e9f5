//! The canonical text form of the syntax tree (`Display` for every node).
//!
//! Operators are spaced; parentheses appear only where precedence needs them (a prefix
//! operator is parenthesised when the operator after it would otherwise become part of its
//! operand); attribute names are quoted only when they cannot be written bare; durations use
//! the largest unit that divides them exactly; `{ true }` prints as `{}`. The result parses
//! back to an equal tree.

use std::fmt::{self, Write};
use std::time::Duration;

use crate::ast::{
    Aggregate, Attribute, AttributeScope, BinaryOp, DEFAULT_COMPARE_TOP_N, FieldExpr, Hint, Intrinsic, Literal,
    Metrics, MetricsFunction, Pipeline, Query, ScalarExpr, ScalarFilter, SpansetExpr, Stage, UnaryOp,
};

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pipeline)?;
        if let Some(metrics) = &self.metrics {
            write!(f, " | {metrics}")?;
        }
        if !self.hints.is_empty() {
            f.write_str(" with (")?;
            for (i, hint) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{hint}")?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl fmt::Display for Metrics {
    /// `rate() by (name) | topk(5)`, without the leading `|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.function)?;
        if !self.by.is_empty() {
            // Tempo's spelling: a space between `by` and its fields.
            f.write_str(" by ")?;
            write_call(f, "", &self.by)?;
        }
        if let Some(limit) = self.limit {
            write!(f, " | {}({})", if limit.top { "topk" } else { "bottomk" }, limit.n)?;
        }
        Ok(())
    }
}

impl fmt::Display for MetricsFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            MetricsFunction::Rate | MetricsFunction::CountOverTime => write!(f, "{name}()"),
            MetricsFunction::QuantileOverTime { field, quantiles } => {
                write!(f, "{name}({field}")?;
                for q in quantiles {
                    // `{:?}` keeps a float a float: 1.0, 0.99.
                    write!(f, ", {q:?}")?;
                }
                f.write_char(')')
            }
            MetricsFunction::Compare(compare) => {
                write!(f, "{name}({}", SpansetExpr::Filter(compare.selection.clone()))?;
                if compare.top_n != DEFAULT_COMPARE_TOP_N || compare.window.is_some() {
                    write!(f, ", {}", compare.top_n)?;
                }
                if let Some((start, end)) = compare.window {
                    write!(f, ", {start}, {end}")?;
                }
                f.write_char(')')
            }
            MetricsFunction::MinOverTime(field)
            | MetricsFunction::MaxOverTime(field)
            | MetricsFunction::AvgOverTime(field)
            | MetricsFunction::SumOverTime(field)
            | MetricsFunction::HistogramOverTime(field) => write!(f, "{name}({field})"),
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.name, self.value)
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        for stage in &self.stages {
            write!(f, " | {stage}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(expr) => write!(f, "{expr}"),
            Stage::ScalarFilter(filter) => write!(f, "{filter}"),
            Stage::By(fields) => write_call(f, "by", fields),
            Stage::Select(fields) => write_call(f, "select", fields),
            Stage::Coalesce => f.write_str("coalesce()"),
        }
    }
}

fn write_call(f: &mut fmt::Formatter<'_>, name: &str, args: &[FieldExpr]) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{arg}")?;
    }
    f.write_char(')')
}

impl fmt::Display for SpansetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_spanset(f, self, 0)
    }
}

/// Writes `expr`, in parentheses if its operator binds looser than `min_precedence`.
fn write_spanset(f: &mut fmt::Formatter<'_>, expr: &SpansetExpr, min_precedence: u8) -> fmt::Result {
    match expr {
        SpansetExpr::Filter(FieldExpr::Literal(Literal::Bool(true))) => f.write_str("{}"),
        SpansetExpr::Filter(inner) => write!(f, "{{ {inner} }}"),
        SpansetExpr::Pipeline(pipeline) => write!(f, "({pipeline})"),
        SpansetExpr::Op { op, lhs, rhs } => {
            let precedence = op.precedence();
            let parens = precedence < min_precedence;
            if parens {
                f.write_char('(')?;
            }
            write_spanset(f, lhs, precedence)?;
            write!(f, " {} ", op.symbol())?;
            write_spanset(f, rhs, precedence + 1)?;
            if parens {
                f.write_char(')')?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for ScalarFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op.symbol(), self.rhs)
    }
}

impl fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scalar(f, self, 0, 0)
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregate::Count => f.write_str("count()"),
            Aggregate::Avg(field) => write!(f, "avg({field})"),
            Aggregate::Min(field) => write!(f, "min({field})"),
            Aggregate::Max(field) => write!(f, "max({field})"),
            Aggregate::Sum(field) => write!(f, "sum({field})"),
        }
    }
}

/// How an operand sits in the text around it, to decide whether it needs parentheses.
///
/// `min_precedence`: a binary operator binding looser than this must be parenthesised.
/// `follower`: the precedence of the operator printed right after the operand (0 if none);
/// a prefix operator would take that operator into its operand if it binds tighter than the
/// prefix operator itself, so the prefix expression is then parenthesised.
#[derive(Clone, Copy)]
struct Position {
    min_precedence: u8,
    follower: u8,
}

const TOP: Position = Position { min_precedence: 0, follower: 0 };

/// The shape shared by field and scalar expressions, so one printer serves both.
enum Shape<'a, T> {
    Atom,
    Unary(UnaryOp, &'a T),
    Binary(BinaryOp, &'a T, &'a T),
}

fn write_operand<T>(
    f: &mut fmt::Formatter<'_>,
    expr: &T,
    shape: &dyn Fn(&T) -> Shape<'_, T>,
    atom: &dyn Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
    position: Position,
) -> fmt::Result {
    let parens = match shape(expr) {
        Shape::Atom => false,
        Shape::Unary(op, _) => position.follower > op.precedence(),
        Shape::Binary(op, _, _) => op.precedence() < position.min_precedence,
    };
    let position = if parens { TOP } else { position };
    if parens {
        f.write_char('(')?;
    }
    match shape(expr) {
        Shape::Atom => atom(f, expr)?,
        Shape::Unary(op, operand) => {
            f.write_str(op.symbol())?;
            let inner = Position { min_precedence: op.precedence() + 1, follower: position.follower };
            write_operand(f, operand, shape, atom, inner)?;
        }
        Shape::Binary(op, lhs, rhs) => {
            let precedence = op.precedence();
            let (lhs_min, rhs_min) =
                if op.is_right_associative() { (precedence + 1, precedence) } else { (precedence, precedence + 1) };
            write_operand(f, lhs, shape, atom, Position { min_precedence: lhs_min, follower: precedence })?;
            write!(f, " {} ", op.symbol())?;
            write_operand(f, rhs, shape, atom, Position { min_precedence: rhs_min, follower: position.follower })?;
        }
    }
    if parens {
        f.write_char(')')?;
    }
    Ok(())
}

fn field_shape(expr: &FieldExpr) -> Shape<'_, FieldExpr> {
    match expr {
        FieldExpr::Unary { op, expr } => Shape::Unary(*op, expr),
        FieldExpr::Binary { op, lhs, rhs } => Shape::Binary(*op, lhs, rhs),
        FieldExpr::Literal(_) | FieldExpr::Attribute(_) | FieldExpr::Intrinsic(_) => Shape::Atom,
    }
}

fn field_atom(f: &mut fmt::Formatter<'_>, expr: &FieldExpr) -> fmt::Result {
    match expr {
        FieldExpr::Literal(literal) => write!(f, "{literal}"),
        FieldExpr::Attribute(attribute) => write!(f, "{attribute}"),
        FieldExpr::Intrinsic(intrinsic) => write!(f, "{intrinsic}"),
        FieldExpr::Unary { .. } | FieldExpr::Binary { .. } => unreachable!("not an atom"),
    }
}

fn scalar_shape(expr: &ScalarExpr) -> Shape<'_, ScalarExpr> {
    match expr {
        ScalarExpr::Neg(operand) => Shape::Unary(UnaryOp::Neg, operand),
        ScalarExpr::Binary { op, lhs, rhs } => Shape::Binary(op.as_binary(), lhs, rhs),
        ScalarExpr::Aggregate(_) | ScalarExpr::Literal(_) => Shape::Atom,
    }
}

fn scalar_atom(f: &mut fmt::Formatter<'_>, expr: &ScalarExpr) -> fmt::Result {
    match expr {
        ScalarExpr::Aggregate(aggregate) => write!(f, "{aggregate}"),
        ScalarExpr::Literal(literal) => write!(f, "{literal}"),
        ScalarExpr::Neg(_) | ScalarExpr::Binary { .. } => unreachable!("not an atom"),
    }
}

fn write_scalar(f: &mut fmt::Formatter<'_>, expr: &ScalarExpr, min_precedence: u8, follower: u8) -> fmt::Result {
    write_operand(f, expr, &scalar_shape, &scalar_atom, Position { min_precedence, follower })
}

impl fmt::Display for FieldExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_operand(f, self, &field_shape, &field_atom, TOP)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write_quoted(f, s),
            Literal::Int(i) => write!(f, "{i}"),
            // `Debug` prints the shortest text that reads back as the same float, always with
            // a `.` or an exponent, so it never reads back as an integer.
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::Duration(d) => write_duration(f, *d),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Nil => f.write_str("nil"),
            Literal::Status(status) => f.write_str(status.keyword()),
            Literal::Kind(kind) => f.write_str(kind.short_name()),
        }
    }
}

fn write_duration(f: &mut fmt::Formatter<'_>, duration: Duration) -> fmt::Result {
    const UNITS: [(u128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return f.write_str("0s");
    }
    let (size, unit) = UNITS.into_iter().find(|(size, _)| nanos.is_multiple_of(*size)).unwrap_or((1, "ns"));
    write!(f, "{}{unit}", nanos / size)
}

/// Writes `s` as a double-quoted string literal.
pub(crate) fn write_quoted(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parent {
            f.write_str("parent.")?;
        }
        match self.scope.keyword() {
            Some(scope) => write!(f, "{scope}.")?,
            None if !self.parent => f.write_char('.')?,
            None => {}
        }
        if can_write_bare(self) { f.write_str(&self.name) } else { write_quoted(f, &self.name) }
    }
}

/// Whether the attribute's name reads back unchanged without quotes.
fn can_write_bare(attribute: &Attribute) -> bool {
    let name = &attribute.name;
    if name.is_empty() || !name.chars().all(crate::lexer::is_attribute_char) {
        return false;
    }
    if attribute.parent && attribute.scope == AttributeScope::None {
        // `parent.span.x` is the parent's span attribute `x`, and `parent.duration` is refused
        // as an intrinsic of the parent, so such unscoped names need quotes.
        let starts_with_scope = AttributeScope::ALL
            .into_iter()
            .filter_map(AttributeScope::keyword)
            .any(|scope| name.strip_prefix(scope).is_some_and(|rest| rest.starts_with('.')));
        if starts_with_scope || Intrinsic::from_keyword(name).is_some() {
            return false;
        }
    }
    true
}

impl fmt::Display for Intrinsic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.keyword(), self.scoped()) {
            (Some(keyword), _) => f.write_str(keyword),
            (None, Some((scope, name))) => write!(f, "{scope}:{name}"),
            (None, None) => unreachable!("every intrinsic has a keyword or a scoped form"),
        }
    }
}
