//! Values of field expressions, and the operators on them.
//!
//! Rules (those of Tempo, except where noted in the crate docs):
//! - `nil` is a missing value. Any comparison with a missing operand is false; only the
//!   literal forms `x = nil` and `x != nil` test for presence (compiled separately).
//! - Integers, floats and durations form one numeric family and compare numerically
//!   (durations as nanoseconds). Integers and durations compare exactly; a float on either
//!   side makes the comparison a float one.
//! - Strings compare with strings (byte-wise order) and match regular expressions.
//! - Booleans, statuses and kinds support only `=` and `!=` with their own type.
//! - An array attribute compared with a scalar: `=`, `<`, `=~`, ... hold when they hold for
//!   some element; `!=` and `!~` hold when they hold for every element.
//! - Anything else (different types, unsupported operators) is false.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use sextant_model::AnyValue;

use crate::ast::{ArithmeticOp, BinaryOp, ComparisonOp, SpanKind, Status};

/// The value of a field expression for one span, or of an aggregate for one spanset.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Missing: an attribute the span does not have, an intrinsic that does not apply (the
    /// parent ID of a root span), or the result of an operation on values of the wrong types.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Cow<'a, str>),
    /// Nanoseconds; negative only as the result of arithmetic.
    Duration(i64),
    Status(Status),
    Kind(SpanKind),
    /// An array attribute (its elements are never arrays).
    Array(Vec<Value<'a>>),
}

impl Value<'_> {
    /// The same value, owning its strings.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x),
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Duration(d) => Value::Duration(d),
            Value::Status(s) => Value::Status(s),
            Value::Kind(k) => Value::Kind(k),
            Value::Array(values) => Value::Array(values.into_iter().map(Value::into_owned).collect()),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// True only for `Bool(true)`: the test a spanset filter applies to each span.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A value of the numeric family as an `f64` (durations in nanoseconds).
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            Value::Duration(d) => Some(*d as f64),
            _ => None,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_) | Value::Duration(_))
    }
}

impl<'a> Value<'a> {
    /// The value of an attribute. Bytes and key-value lists have no TraceQL type: they read
    /// as missing.
    pub(crate) fn from_any(value: &'a AnyValue) -> Value<'a> {
        match value {
            AnyValue::String(s) => Value::String(Cow::Borrowed(s)),
            AnyValue::Bool(b) => Value::Bool(*b),
            AnyValue::Int(i) => Value::Int(*i),
            AnyValue::Double(x) => Value::Float(*x),
            AnyValue::Array(values) => Value::Array(
                values
                    .iter()
                    .filter(|v| !matches!(v, AnyValue::Array(_)))
                    .map(Value::from_any)
                    .filter(|v| !v.is_nil())
                    .collect(),
            ),
            AnyValue::Bytes(_) | AnyValue::KvList(_) => Value::Nil,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// The value as it would be written in a query (`"text"`, `1.5s`, `error`); arrays as
    /// `[a, b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::String(s) => crate::print::write_quoted(f, s),
            Value::Duration(d) => {
                if *d < 0 {
                    f.write_str("-")?;
                }
                let literal = crate::ast::Literal::Duration(std::time::Duration::from_nanos(d.unsigned_abs()));
                write!(f, "{literal}")
            }
            Value::Status(s) => f.write_str(s.keyword()),
            Value::Kind(k) => f.write_str(k.short_name()),
            Value::Array(values) => {
                f.write_str("[")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A comparison or regular-expression operator, the only operators that compare values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub(crate) fn from_binary(op: BinaryOp) -> Option<CmpOp> {
        Some(match op {
            BinaryOp::Eq => CmpOp::Eq,
            BinaryOp::Neq => CmpOp::Neq,
            BinaryOp::Lt => CmpOp::Lt,
            BinaryOp::Lte => CmpOp::Lte,
            BinaryOp::Gt => CmpOp::Gt,
            BinaryOp::Gte => CmpOp::Gte,
            _ => return None,
        })
    }

    pub(crate) fn from_comparison(op: ComparisonOp) -> CmpOp {
        match op {
            ComparisonOp::Eq => CmpOp::Eq,
            ComparisonOp::Neq => CmpOp::Neq,
            ComparisonOp::Lt => CmpOp::Lt,
            ComparisonOp::Lte => CmpOp::Lte,
            ComparisonOp::Gt => CmpOp::Gt,
            ComparisonOp::Gte => CmpOp::Gte,
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Lte => CmpOp::Gte,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Gte => CmpOp::Lte,
            other => other,
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Neq => ordering != Ordering::Equal,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Lte => ordering != Ordering::Greater,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Gte => ordering != Ordering::Less,
        }
    }

    /// `!=` and `!~` on an array must hold for every element; the others for one.
    fn is_negative(self) -> bool {
        self == CmpOp::Neq
    }
}

/// `lhs op rhs`. False when either side is missing or the types do not compare.
pub(crate) fn compare(op: CmpOp, lhs: &Value<'_>, rhs: &Value<'_>) -> bool {
    match (lhs, rhs) {
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Array(_), Value::Array(_)) => false,
        (Value::Array(elements), scalar) => any_or_all(op.is_negative(), elements, |e| compare(op, e, scalar)),
        (scalar, Value::Array(elements)) => {
            any_or_all(op.is_negative(), elements, |e| compare(op.flipped(), e, scalar))
        }
        (Value::String(a), Value::String(b)) => op.holds(a.as_ref().cmp(b.as_ref())),
        (Value::Bool(a), Value::Bool(b)) => equality(op, a == b),
        (Value::Status(a), Value::Status(b)) => equality(op, a == b),
        (Value::Kind(a), Value::Kind(b)) => equality(op, a == b),
        (Value::Int(a) | Value::Duration(a), Value::Int(b) | Value::Duration(b)) => op.holds(a.cmp(b)),
        (a, b) if a.is_numeric() && b.is_numeric() => {
            // Both are numeric and one is a float; NaN compares as nothing, not even unequal.
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            a.partial_cmp(&b).is_some_and(|ordering| op.holds(ordering))
        }
        _ => false,
    }
}

fn equality(op: CmpOp, equal: bool) -> bool {
    match op {
        CmpOp::Eq => equal,
        CmpOp::Neq => !equal,
        _ => false,
    }
}

/// `lhs =~ re` (or `!~` when `negated`): strings only; arrays as for comparisons.
pub(crate) fn regex_match(re: &regex::Regex, negated: bool, lhs: &Value<'_>) -> bool {
    match lhs {
        Value::String(s) => re.is_match(s) != negated,
        Value::Array(elements) => any_or_all(negated, elements, |e| regex_match(re, negated, e)),
        _ => false,
    }
}

fn any_or_all<'v, 'a: 'v>(all: bool, elements: &'v [Value<'a>], test: impl Fn(&'v Value<'a>) -> bool) -> bool {
    if all { elements.iter().all(test) } else { elements.iter().any(test) }
}

/// `lhs op rhs` for the arithmetic operators. Integers stay integers (`7 / 2` is `3`) and
/// give nil on overflow or division by zero; durations stay durations where the result is
/// a duration (`1s + 1ms`, `2 * 1s`, `1s / 4`); anything else numeric is a float. A
/// non-numeric operand gives nil.
pub(crate) fn arithmetic(op: ArithmeticOp, lhs: &Value<'_>, rhs: &Value<'_>) -> Value<'static> {
    use ArithmeticOp::*;
    match (lhs, rhs) {
        (Value::Int(a), Value::Int(b)) => int_arithmetic(op, *a, *b).map_or(Value::Nil, Value::Int),
        (Value::Duration(a), Value::Duration(b)) => match op {
            Add | Sub | Mod => int_arithmetic(op, *a, *b).map_or(Value::Nil, Value::Duration),
            Div => Value::Float(*a as f64 / *b as f64),
            Mul | Pow => Value::Float(float_arithmetic(op, *a as f64, *b as f64)),
        },
        (Value::Duration(d), n @ (Value::Int(_) | Value::Float(_))) if matches!(op, Mul | Div) => {
            scaled_duration(float_arithmetic(op, *d as f64, n.as_f64().unwrap_or(f64::NAN)))
        }
        (n @ (Value::Int(_) | Value::Float(_)), Value::Duration(d)) if op == Mul => {
            scaled_duration(n.as_f64().unwrap_or(f64::NAN) * *d as f64)
        }
        (a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => Value::Float(float_arithmetic(op, a, b)),
            _ => Value::Nil,
        },
    }
}

/// `-value`: numbers and durations only.
pub(crate) fn negate(value: &Value<'_>) -> Value<'static> {
    match value {
        Value::Int(i) => i.checked_neg().map_or(Value::Nil, Value::Int),
        Value::Float(x) => Value::Float(-x),
        Value::Duration(d) => d.checked_neg().map_or(Value::Nil, Value::Duration),
        _ => Value::Nil,
    }
}

fn int_arithmetic(op: ArithmeticOp, a: i64, b: i64) -> Option<i64> {
    match op {
        ArithmeticOp::Add => a.checked_add(b),
        ArithmeticOp::Sub => a.checked_sub(b),
        ArithmeticOp::Mul => a.checked_mul(b),
        ArithmeticOp::Div => a.checked_div(b),
        ArithmeticOp::Mod => a.checked_rem(b),
        ArithmeticOp::Pow => u32::try_from(b).ok().and_then(|b| a.checked_pow(b)),
    }
}

fn float_arithmetic(op: ArithmeticOp, a: f64, b: f64) -> f64 {
    match op {
        ArithmeticOp::Add => a + b,
        ArithmeticOp::Sub => a - b,
        ArithmeticOp::Mul => a * b,
        ArithmeticOp::Div => a / b,
        ArithmeticOp::Mod => a % b,
        ArithmeticOp::Pow => a.powf(b),
    }
}

fn scaled_duration(nanos: f64) -> Value<'static> {
    if nanos.is_finite() && nanos.abs() < i64::MAX as f64 { Value::Duration(nanos.round() as i64) } else { Value::Nil }
}

/// The order of two numeric values (for `min` and `max`); `None` when either is not numeric
/// or is NaN.
pub(crate) fn numeric_order(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(a) | Value::Duration(a), Value::Int(b) | Value::Duration(b)) => Some(a.cmp(b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// The running sum of `sum()` and `avg()`: integers and durations stay exact while every
/// value has the same type; a float, a mix of types or an overflow makes it a float.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sum {
    Empty,
    Int(i64),
    Duration(i64),
    Float(f64),
}

impl Sum {
    /// Adds a value; values outside the numeric family are skipped. Returns whether the
    /// value was counted.
    pub(crate) fn add(&mut self, value: &Value<'_>) -> bool {
        let next = match (*self, value) {
            (_, v) if !v.is_numeric() => return false,
            (Sum::Empty, Value::Int(i)) => Sum::Int(*i),
            (Sum::Empty, Value::Duration(d)) => Sum::Duration(*d),
            (Sum::Int(a), Value::Int(b)) => a.checked_add(*b).map_or(Sum::Float(a as f64 + *b as f64), Sum::Int),
            (Sum::Duration(a), Value::Duration(b)) => {
                a.checked_add(*b).map_or(Sum::Float(a as f64 + *b as f64), Sum::Duration)
            }
            (sum, v) => Sum::Float(sum.as_f64() + v.as_f64().unwrap_or(f64::NAN)),
        };
        *self = next;
        true
    }

    fn as_f64(self) -> f64 {
        match self {
            Sum::Empty => 0.0,
            Sum::Int(i) | Sum::Duration(i) => i as f64,
            Sum::Float(x) => x,
        }
    }

    pub(crate) fn total(self) -> Value<'static> {
        match self {
            Sum::Empty => Value::Nil,
            Sum::Int(i) => Value::Int(i),
            Sum::Duration(d) => Value::Duration(d),
            Sum::Float(x) => Value::Float(x),
        }
    }

    /// The mean of `count` values: a duration for durations, a float otherwise.
    pub(crate) fn mean(self, count: usize) -> Value<'static> {
        match self {
            Sum::Empty => Value::Nil,
            Sum::Duration(d) => scaled_duration(d as f64 / count as f64),
            other => Value::Float(other.as_f64() / count as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value<'_> {
        Value::String(Cow::Borrowed(text))
    }

    #[test]
    fn numbers_compare_across_ints_floats_and_durations() {
        assert!(compare(CmpOp::Eq, &Value::Int(1), &Value::Float(1.0)));
        assert!(compare(CmpOp::Lt, &Value::Int(1), &Value::Float(1.5)));
        assert!(compare(CmpOp::Gt, &Value::Duration(2_000), &Value::Int(1_999)));
        assert!(!compare(CmpOp::Eq, &Value::Float(f64::NAN), &Value::Float(f64::NAN)));
        assert!(!compare(CmpOp::Neq, &Value::Float(f64::NAN), &Value::Float(1.0)));
        // Exact for integers beyond f64's 53 bits.
        assert!(compare(CmpOp::Lt, &Value::Int(i64::MAX - 1), &Value::Int(i64::MAX)));
    }

    #[test]
    fn mismatched_types_and_missing_values_compare_false() {
        for op in [CmpOp::Eq, CmpOp::Neq, CmpOp::Lt, CmpOp::Gte] {
            assert!(!compare(op, &s("1"), &Value::Int(1)), "{op:?}");
            assert!(!compare(op, &Value::Nil, &Value::Int(1)), "{op:?}");
            assert!(!compare(op, &Value::Nil, &Value::Nil), "{op:?}");
        }
        assert!(!compare(CmpOp::Lt, &Value::Bool(false), &Value::Bool(true)));
        assert!(compare(CmpOp::Neq, &Value::Status(Status::Ok), &Value::Status(Status::Error)));
    }

    #[test]
    fn arrays_match_any_element_and_negations_every_element() {
        let array = Value::Array(vec![s("a"), s("b")]);
        assert!(compare(CmpOp::Eq, &array, &s("b")));
        assert!(!compare(CmpOp::Neq, &array, &s("b")));
        assert!(compare(CmpOp::Neq, &array, &s("c")));
        let numbers = Value::Array(vec![Value::Int(1), Value::Int(5)]);
        assert!(compare(CmpOp::Gt, &numbers, &Value::Int(4)));
        assert!(compare(CmpOp::Lt, &Value::Int(4), &numbers));
        assert!(!compare(CmpOp::Gt, &Value::Int(1), &numbers));
    }

    #[test]
    fn arithmetic_keeps_integers_and_durations() {
        assert_eq!(arithmetic(ArithmeticOp::Div, &Value::Int(7), &Value::Int(2)), Value::Int(3));
        assert_eq!(arithmetic(ArithmeticOp::Div, &Value::Int(7), &Value::Int(0)), Value::Nil);
        assert_eq!(arithmetic(ArithmeticOp::Pow, &Value::Int(2), &Value::Int(10)), Value::Int(1024));
        assert_eq!(arithmetic(ArithmeticOp::Mul, &Value::Int(2), &Value::Duration(5)), Value::Duration(10));
        assert_eq!(arithmetic(ArithmeticOp::Div, &Value::Duration(10), &Value::Duration(4)), Value::Float(2.5));
        assert_eq!(arithmetic(ArithmeticOp::Add, &Value::Int(1), &Value::Float(0.5)), Value::Float(1.5));
        assert_eq!(arithmetic(ArithmeticOp::Add, &s("a"), &Value::Int(1)), Value::Nil);
    }

    #[test]
    fn durations_display_as_literals() {
        assert_eq!(Value::Duration(1_500_000).to_string(), "1500us");
        assert_eq!(Value::Duration(-2_000_000_000).to_string(), "-2s");
        assert_eq!(s("a\"b").to_string(), "\"a\\\"b\"");
    }
}
