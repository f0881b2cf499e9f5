//! The typed syntax tree of a TraceQL query, and its canonical text form.
//!
//! Every node prints (`Display`, in `print.rs`) in a canonical form that parses back to an
//! equal tree.
//!
//! Invariants of trees produced by [`crate::parse`] (the printer relies on them):
//! - literals are never negative: `-1` is `Unary { op: Neg, expr: Literal(Int(1)) }`;
//! - floats are finite; durations are at most `i64::MAX` nanoseconds;
//! - a [`SpansetExpr::Pipeline`] has at least one stage after its source (a parenthesised
//!   spanset expression without `|` is just that expression);
//! - [`ScalarExpr::Literal`] holds an integer, a float or a duration;
//! - `by(...)` and `select(...)` hold at least one field expression;
//! - a [`Metrics`] stage's fields and `by()` fields are attributes or intrinsics, its quantiles
//!   are finite and between 0 and 1, and its limits are positive.

use std::time::Duration;

/// A whole query: a pipeline, an optional metrics stage, then optional `with (...)` hints.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub pipeline: Pipeline,
    /// `| rate() by (...) | topk(5)`: what turns the matching spans into time series; `None`
    /// for a search.
    pub metrics: Option<Metrics>,
    /// `with (name = value, ...)`, in query order; empty when the query has no hints.
    pub hints: Vec<Hint>,
}

/// `source | stage | stage ...`: a spanset expression whose result each stage filters in turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub source: SpansetExpr,
    /// The stages after `|`, in order; empty for a query without `|`.
    pub stages: Vec<Stage>,
}

/// An expression whose value is a set of spans per trace.
#[derive(Clone, Debug, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`: the spans for which `expr` is true. `{}` is `{ true }`.
    Filter(FieldExpr),
    /// `( source | stage ... )`: a parenthesised pipeline with at least one stage.
    Pipeline(Box<Pipeline>),
    /// `lhs op rhs`: a logical or structural combination of two spansets.
    Op { op: SpansetOp, lhs: Box<SpansetExpr>, rhs: Box<SpansetExpr> },
}

/// Operators between spansets. `&&` and `||` bind looser than the structural operators, which
/// all share one precedence level; all are left-associative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpansetOp {
    /// `&&`: both sides match in the trace; the spans of both.
    And,
    /// `||`: either side matches; the spans of either.
    Or,
    /// `>`: right-hand spans that are children of a left-hand span.
    Child,
    /// `<`: right-hand spans that are parents of a left-hand span.
    Parent,
    /// `>>`: right-hand spans that are descendants of a left-hand span.
    Descendant,
    /// `<<`: right-hand spans that are ancestors of a left-hand span.
    Ancestor,
    /// `~`: right-hand spans that are siblings of a left-hand span.
    Sibling,
    /// `&>`: like `>`, returning the matching spans of both sides.
    UnionChild,
    /// `&<`: like `<`, returning the matching spans of both sides.
    UnionParent,
    /// `&>>`: like `>>`, returning the matching spans of both sides.
    UnionDescendant,
    /// `&<<`: like `<<`, returning the matching spans of both sides.
    UnionAncestor,
    /// `&~`: like `~`, returning the matching spans of both sides.
    UnionSibling,
    /// `!>`: right-hand spans that are not children of a left-hand span.
    NotChild,
    /// `!<`: right-hand spans that are not parents of a left-hand span.
    NotParent,
    /// `!>>`: right-hand spans that are not descendants of a left-hand span.
    NotDescendant,
    /// `!<<`: right-hand spans that are not ancestors of a left-hand span.
    NotAncestor,
    /// `!~`: right-hand spans that are not siblings of a left-hand span.
    NotSibling,
}

impl SpansetOp {
    /// Every spanset operator, for tests and tools.
    pub const ALL: [SpansetOp; 17] = [
        SpansetOp::And,
        SpansetOp::Or,
        SpansetOp::Child,
        SpansetOp::Parent,
        SpansetOp::Descendant,
        SpansetOp::Ancestor,
        SpansetOp::Sibling,
        SpansetOp::UnionChild,
        SpansetOp::UnionParent,
        SpansetOp::UnionDescendant,
        SpansetOp::UnionAncestor,
        SpansetOp::UnionSibling,
        SpansetOp::NotChild,
        SpansetOp::NotParent,
        SpansetOp::NotDescendant,
        SpansetOp::NotAncestor,
        SpansetOp::NotSibling,
    ];

    /// The operator as written in a query.
    pub fn symbol(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Or => "||",
            SpansetOp::Child => ">",
            SpansetOp::Parent => "<",
            SpansetOp::Descendant => ">>",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
        }
    }

    /// Binding strength: higher binds tighter.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            SpansetOp::And | SpansetOp::Or => 1,
            _ => 2,
        }
    }
}

/// One stage of a pipeline, after `|`.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `| { ... }` or any spanset expression: keeps the spans that also match it.
    Spanset(SpansetExpr),
    /// `| count() > 3`: keeps the spansets for which the comparison holds.
    ScalarFilter(ScalarFilter),
    /// `| by(f, ...)`: splits each spanset by the values of the fields.
    By(Vec<FieldExpr>),
    /// `| select(f, ...)`: fetches the fields for the spans returned.
    Select(Vec<FieldExpr>),
    /// `| coalesce()`: merges the spansets of a trace back into one.
    Coalesce,
}

/// `lhs op rhs` over aggregates and numbers, e.g. `avg(duration) > 1s`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarFilter {
    pub op: ComparisonOp,
    pub lhs: ScalarExpr,
    pub rhs: ScalarExpr,
}

/// Comparison operators of a scalar filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComparisonOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl ComparisonOp {
    pub const ALL: [ComparisonOp; 6] =
        [ComparisonOp::Eq, ComparisonOp::Neq, ComparisonOp::Lt, ComparisonOp::Lte, ComparisonOp::Gt, ComparisonOp::Gte];

    pub fn symbol(self) -> &'static str {
        match self {
            ComparisonOp::Eq => "=",
            ComparisonOp::Neq => "!=",
            ComparisonOp::Lt => "<",
            ComparisonOp::Lte => "<=",
            ComparisonOp::Gt => ">",
            ComparisonOp::Gte => ">=",
        }
    }
}

/// Arithmetic on the values of a spanset: aggregates and numeric literals.
#[derive(Clone, Debug, PartialEq)]
pub enum ScalarExpr {
    Aggregate(Aggregate),
    /// An integer, float or duration literal.
    Literal(Literal),
    /// `-expr`.
    Neg(Box<ScalarExpr>),
    Binary {
        op: ArithmeticOp,
        lhs: Box<ScalarExpr>,
        rhs: Box<ScalarExpr>,
    },
}

/// Arithmetic operators of scalar expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithmeticOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl ArithmeticOp {
    pub const ALL: [ArithmeticOp; 6] = [
        ArithmeticOp::Add,
        ArithmeticOp::Sub,
        ArithmeticOp::Mul,
        ArithmeticOp::Div,
        ArithmeticOp::Mod,
        ArithmeticOp::Pow,
    ];

    pub fn symbol(self) -> &'static str {
        self.as_binary().symbol()
    }

    /// The same operator inside a spanset filter.
    pub fn as_binary(self) -> BinaryOp {
        match self {
            ArithmeticOp::Add => BinaryOp::Add,
            ArithmeticOp::Sub => BinaryOp::Sub,
            ArithmeticOp::Mul => BinaryOp::Mul,
            ArithmeticOp::Div => BinaryOp::Div,
            ArithmeticOp::Mod => BinaryOp::Mod,
            ArithmeticOp::Pow => BinaryOp::Pow,
        }
    }
}

/// An aggregate over the spans of a spanset.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// `count()`: the number of spans.
    Count,
    /// `avg(f)`.
    Avg(FieldExpr),
    /// `min(f)`.
    Min(FieldExpr),
    /// `max(f)`.
    Max(FieldExpr),
    /// `sum(f)`.
    Sum(FieldExpr),
}

/// An expression evaluated on one span (inside `{ }`, or as an aggregate's argument).
#[derive(Clone, Debug, PartialEq)]
pub enum FieldExpr {
    Literal(Literal),
    Attribute(Attribute),
    Intrinsic(Intrinsic),
    Unary { op: UnaryOp, expr: Box<FieldExpr> },
    Binary { op: BinaryOp, lhs: Box<FieldExpr>, rhs: Box<FieldExpr> },
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`. Binds looser than `*`, `/`, `%` and `^`: `-a * b` is `-(a * b)`.
    Neg,
    /// `!x`. Binds looser than `*`, `/`, `%` and `^`, tighter than `+` and `-`.
    Not,
}

impl UnaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
        }
    }

    /// Operators of higher precedence than this are part of the operand.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            UnaryOp::Neg => 3,
            UnaryOp::Not => 4,
        }
    }
}

/// Infix operators inside a spanset filter.
///
/// Precedence, loosest first (all left-associative except `^`): `&& ||` (one level, as in
/// Tempo: `a || b && c` is `(a || b) && c`); `= != < <= > >= =~ !~`; `+ -`; `* / %`; `^`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    And,
    Or,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    /// `=~`: the left side matches the regular expression on the right.
    Regex,
    /// `!~`: the left side does not match the regular expression on the right.
    NotRegex,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 16] = [
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Eq,
        BinaryOp::Neq,
        BinaryOp::Lt,
        BinaryOp::Lte,
        BinaryOp::Gt,
        BinaryOp::Gte,
        BinaryOp::Regex,
        BinaryOp::NotRegex,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Pow,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::Regex => "=~",
            BinaryOp::NotRegex => "!~",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }

    /// Binding strength: higher binds tighter. Level 4 belongs to unary `!`.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::And | BinaryOp::Or => 1,
            BinaryOp::Eq
            | BinaryOp::Neq
            | BinaryOp::Lt
            | BinaryOp::Lte
            | BinaryOp::Gt
            | BinaryOp::Gte
            | BinaryOp::Regex
            | BinaryOp::NotRegex => 2,
            BinaryOp::Add | BinaryOp::Sub => 3,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
            BinaryOp::Pow => 6,
        }
    }

    pub(crate) fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// A constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    String(String),
    /// Never negative (see the module invariants).
    Int(i64),
    /// Finite and never negative.
    Float(f64),
    /// At most `i64::MAX` nanoseconds.
    Duration(Duration),
    Bool(bool),
    Nil,
    Status(Status),
    Kind(SpanKind),
}

/// Span status values: `ok`, `error`, `unset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    Unset,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Ok, Status::Error, Status::Unset];

    pub fn keyword(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Unset => "unset",
        }
    }
}

/// Span kind values: the model's ([`SpanKind::short_name`] is the TraceQL keyword).
pub use sextant_model::SpanKind;

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttributeScope {
    /// `.name`: span attributes first, then resource attributes.
    None,
    /// `span.name`.
    Span,
    /// `resource.name`.
    Resource,
    /// `event.name`: attributes of the span's events.
    Event,
    /// `link.name`: attributes of the span's links.
    Link,
    /// `instrumentation.name`: attributes of the instrumentation scope.
    Instrumentation,
}

impl AttributeScope {
    pub const ALL: [AttributeScope; 6] = [
        AttributeScope::None,
        AttributeScope::Span,
        AttributeScope::Resource,
        AttributeScope::Event,
        AttributeScope::Link,
        AttributeScope::Instrumentation,
    ];

    /// The scope word before the `.` (`None` has none).
    pub fn keyword(self) -> Option<&'static str> {
        match self {
            AttributeScope::None => None,
            AttributeScope::Span => Some("span"),
            AttributeScope::Resource => Some("resource"),
            AttributeScope::Event => Some("event"),
            AttributeScope::Link => Some("link"),
            AttributeScope::Instrumentation => Some("instrumentation"),
        }
    }

    pub(crate) fn from_keyword(word: &str) -> Option<AttributeScope> {
        AttributeScope::ALL.into_iter().find(|scope| scope.keyword() == Some(word))
    }
}

/// A user attribute, e.g. `span.http.request.method`, `.foo`, `parent.resource.x`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub scope: AttributeScope,
    /// `parent.`: the attribute of the span's parent.
    pub parent: bool,
    /// The full name after the scope, dots included (`http.request.method`). Never empty.
    pub name: String,
}

/// Values every span has, written as keywords (`duration`) or scoped (`span:duration`).
/// Each has one canonical spelling; the others parse to the same variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `duration`, `span:duration`.
    Duration,
    /// `name`, `span:name`.
    Name,
    /// `status`, `span:status`.
    Status,
    /// `statusMessage`, `span:statusMessage`.
    StatusMessage,
    /// `kind`, `span:kind`.
    Kind,
    /// `childCount`, `span:childCount`.
    ChildCount,
    /// `span:id`.
    SpanId,
    /// `span:parentID`.
    ParentId,
    /// `nestedSetLeft`.
    NestedSetLeft,
    /// `nestedSetRight`.
    NestedSetRight,
    /// `nestedSetParent`.
    NestedSetParent,
    /// `traceDuration`, `trace:duration`.
    TraceDuration,
    /// `rootName`, `trace:rootName`.
    RootName,
    /// `rootServiceName`, `trace:rootService`.
    RootServiceName,
    /// `trace:id`.
    TraceId,
    /// `event:name`.
    EventName,
    /// `event:timeSinceStart`.
    EventTimeSinceStart,
    /// `link:traceID`.
    LinkTraceId,
    /// `link:spanID`.
    LinkSpanId,
    /// `instrumentation:name`.
    InstrumentationName,
    /// `instrumentation:version`.
    InstrumentationVersion,
}

impl Intrinsic {
    pub const ALL: [Intrinsic; 21] = [
        Intrinsic::Duration,
        Intrinsic::Name,
        Intrinsic::Status,
        Intrinsic::StatusMessage,
        Intrinsic::Kind,
        Intrinsic::ChildCount,
        Intrinsic::SpanId,
        Intrinsic::ParentId,
        Intrinsic::NestedSetLeft,
        Intrinsic::NestedSetRight,
        Intrinsic::NestedSetParent,
        Intrinsic::TraceDuration,
        Intrinsic::RootName,
        Intrinsic::RootServiceName,
        Intrinsic::TraceId,
        Intrinsic::EventName,
        Intrinsic::EventTimeSinceStart,
        Intrinsic::LinkTraceId,
        Intrinsic::LinkSpanId,
        Intrinsic::InstrumentationName,
        Intrinsic::InstrumentationVersion,
    ];

    /// The unscoped keyword, if the intrinsic has one (`duration`, `rootName`, ...).
    pub fn keyword(self) -> Option<&'static str> {
        Some(match self {
            Intrinsic::Duration => "duration",
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::ChildCount => "childCount",
            Intrinsic::NestedSetLeft => "nestedSetLeft",
            Intrinsic::NestedSetRight => "nestedSetRight",
            Intrinsic::NestedSetParent => "nestedSetParent",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootServiceName => "rootServiceName",
            _ => return None,
        })
    }

    /// The scoped form, if the intrinsic has one, as (scope, name): `("span", "duration")`.
    pub fn scoped(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Intrinsic::Duration => ("span", "duration"),
            Intrinsic::Name => ("span", "name"),
            Intrinsic::Status => ("span", "status"),
            Intrinsic::StatusMessage => ("span", "statusMessage"),
            Intrinsic::Kind => ("span", "kind"),
            Intrinsic::ChildCount => ("span", "childCount"),
            Intrinsic::SpanId => ("span", "id"),
            Intrinsic::ParentId => ("span", "parentID"),
            Intrinsic::TraceDuration => ("trace", "duration"),
            Intrinsic::RootName => ("trace", "rootName"),
            Intrinsic::RootServiceName => ("trace", "rootService"),
            Intrinsic::TraceId => ("trace", "id"),
            Intrinsic::EventName => ("event", "name"),
            Intrinsic::EventTimeSinceStart => ("event", "timeSinceStart"),
            Intrinsic::LinkTraceId => ("link", "traceID"),
            Intrinsic::LinkSpanId => ("link", "spanID"),
            Intrinsic::InstrumentationName => ("instrumentation", "name"),
            Intrinsic::InstrumentationVersion => ("instrumentation", "version"),
            Intrinsic::NestedSetLeft | Intrinsic::NestedSetRight | Intrinsic::NestedSetParent => return None,
        })
    }

    pub(crate) fn from_keyword(word: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|intrinsic| intrinsic.keyword() == Some(word))
    }

    pub(crate) fn from_scoped(scope: &str, name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|intrinsic| intrinsic.scoped() == Some((scope, name)))
    }
}

/// `name = value` inside `with (...)`, e.g. `most_recent = true`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    /// An identifier: ASCII letters, digits and `_`, not starting with a digit.
    pub name: String,
    pub value: Literal,
}

/// The metrics stages that end a query: a function over the matching spans, its `by()` and an
/// optional `topk`/`bottomk`, e.g. `| quantile_over_time(duration, .5, .99) by (name) | topk(5)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub function: MetricsFunction,
    /// `by (a, b)` after the function: one series per distinct combination of values. Each is an
    /// attribute or an intrinsic. Empty without `by`.
    pub by: Vec<FieldExpr>,
    /// `| topk(n)` or `| bottomk(n)` after the function.
    pub limit: Option<SeriesLimit>,
}

/// A metrics function: what each series counts or measures per step.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricsFunction {
    /// `rate()`: matching spans per second.
    Rate,
    /// `count_over_time()`: matching spans per step.
    CountOverTime,
    /// `min_over_time(f)`.
    MinOverTime(FieldExpr),
    /// `max_over_time(f)`.
    MaxOverTime(FieldExpr),
    /// `avg_over_time(f)`.
    AvgOverTime(FieldExpr),
    /// `sum_over_time(f)`.
    SumOverTime(FieldExpr),
    /// `quantile_over_time(f, q, ...)`: each quantile (0 to 1) of the values per step.
    QuantileOverTime { field: FieldExpr, quantiles: Vec<f64> },
    /// `histogram_over_time(f)`: spans per power-of-two bucket of the values per step.
    HistogramOverTime(FieldExpr),
    /// `compare({ filter }, top_n, start, end)`: for every attribute value, how many spans of
    /// the selection (matching `filter`, within the window if given) and of the baseline (the
    /// others) have it.
    Compare(Compare),
}

impl MetricsFunction {
    /// The function's name as written in a query.
    pub fn name(&self) -> &'static str {
        match self {
            MetricsFunction::Rate => "rate",
            MetricsFunction::CountOverTime => "count_over_time",
            MetricsFunction::MinOverTime(_) => "min_over_time",
            MetricsFunction::MaxOverTime(_) => "max_over_time",
            MetricsFunction::AvgOverTime(_) => "avg_over_time",
            MetricsFunction::SumOverTime(_) => "sum_over_time",
            MetricsFunction::QuantileOverTime { .. } => "quantile_over_time",
            MetricsFunction::HistogramOverTime(_) => "histogram_over_time",
            MetricsFunction::Compare(_) => "compare",
        }
    }
}

/// The arguments of `compare()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compare {
    /// The expression inside the `{ }` that picks the selection (`true` for `{}`).
    pub selection: FieldExpr,
    /// How many values per attribute are listed, the most frequent first (default 10).
    pub top_n: u32,
    /// The selection's time window in unix nanoseconds, `[start, end)`; `None` for all time.
    pub window: Option<(u64, u64)>,
}

/// The number of values `compare()` lists per attribute when the query does not say.
pub const DEFAULT_COMPARE_TOP_N: u32 = 10;

/// `topk(n)` or `bottomk(n)`: at each step, only the `n` series with the highest (lowest)
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesLimit {
    /// `true` for `topk`, `false` for `bottomk`.
    pub top: bool,
    /// Positive.
    pub n: u32,
}
