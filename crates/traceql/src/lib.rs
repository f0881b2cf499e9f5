//! TraceQL, the query language of Grafana Tempo: parsed into a typed syntax tree, evaluated
//! against the spans of one trace.
//!
//! [`parse`] turns a query into a [`Query`], or a [`ParseError`] that gives the position
//! (byte offset, line, column), what was expected and what was found. Every tree prints
//! (`Display`) in a canonical form that parses back to an equal tree.
//!
//! [`Compiled::new`] prepares a query to run, or refuses it with an [`EvalError`] (types that
//! never meet, as Tempo refuses them); [`Compiled::evaluate`] runs it on one trace and returns
//! the matching [`Spanset`]s (see [`eval`] for the semantics). A query that ends with a metrics
//! function (`| rate() by (...)`) runs through [`MetricsEvaluator`] instead, which takes the
//! traces one at a time and answers time series ([`metrics`]). [`conditions`] extracts the
//! span-level conditions storage can check to skip traces ([`pushdown`]). No I/O.
//!
//! # Grammar
//!
//! ```text
//! query      = pipeline [ metrics ] [ "with" "(" hint { "," hint } ")" ]
//! metrics    = "|" function [ "by" "(" fields ")" ] [ "|" ( "topk" | "bottomk" ) "(" integer ")" ]
//!              (functions: rate, count_over_time, min/max/avg/sum_over_time, quantile_over_time,
//!              histogram_over_time, compare; see metrics_parser.rs)
//! hint       = identifier "=" literal                      e.g. with (most_recent = true)
//! pipeline   = spanset { "|" stage }
//! stage      = spanset | scalar_cmp | "by" "(" fields ")" | "select" "(" fields ")" | "coalesce" "(" ")"
//! spanset    = "{" [ field ] "}" | "(" pipeline ")" | spanset spanset_op spanset
//! spanset_op = "&&" | "||"                                  (loosest)
//!            | ">" | "<" | ">>" | "<<" | "~"                (child, parent, descendant, ancestor, sibling)
//!            | "&>" | "&<" | "&>>" | "&<<" | "&~"           (union forms)
//!            | "!>" | "!<" | "!>>" | "!<<" | "!~"           (negated forms)
//! scalar_cmp = scalar ( "=" | "!=" | "<" | "<=" | ">" | ">=" ) scalar
//! scalar     = aggregate | integer | float | duration | "-" scalar | "(" scalar ")"
//!            | scalar ( "+" | "-" | "*" | "/" | "%" | "^" ) scalar
//! aggregate  = "count" "(" ")" | ( "avg" | "min" | "max" | "sum" ) "(" field ")"
//! fields     = field { "," field }
//! field      = literal | attribute | intrinsic | "(" field ")" | ( "-" | "!" ) field
//!            | field binary_op field
//! binary_op  = "&&" "||" | "=" "!=" "<" "<=" ">" ">=" "=~" "!~" | "+" "-" | "*" "/" "%" | "^"
//! attribute  = [ "parent." ] scope "." name                 span.http.method, parent.resource.x
//!            | "." name | "parent." name                    unscoped: .x, parent.x
//! scope      = "span" | "resource" | "event" | "link" | "instrumentation"
//! name       = bare name (up to whitespace or one of { } ( ) = ~ ! < > & | ^ , " `) | "\"quoted\""
//! intrinsic  = duration | name | status | statusMessage | kind | childCount | rootName
//!            | rootServiceName | traceDuration | nestedSetLeft | nestedSetRight | nestedSetParent
//!            | span:duration | span:name | span:status | span:statusMessage | span:kind
//!            | span:childCount | span:id | span:parentID | trace:duration | trace:rootName
//!            | trace:rootService | trace:id | event:name | event:timeSinceStart | link:traceID
//!            | link:spanID | instrumentation:name | instrumentation:version
//! literal    = "string" (escapes \" \\ \n \r \t \a \b \f \v \xHH \uHHHH \UHHHHHHHH) | `raw string`
//!            | integer | float (1.5, 2e-3) | duration (1ns 2us 3µs 4ms 5s 6m 7h 1d 1w, 1.5s, 1h30m)
//!            | true | false | nil | ok | error | unset
//!            | unspecified | internal | server | client | producer | consumer
//! ```
//!
//! Precedence follows Tempo. Between spansets, `&&` and `||` bind looser than the structural
//! operators; all are left-associative. Inside a filter, loosest first: `&&` and `||` (one
//! level, so `a || b && c` is `(a || b) && c`); comparisons; `+ -`; prefix `!`; `* / %`; `^`
//! (right-associative). Prefix `-` binds like `+`: `-a * b` is `-(a * b)` and `!a * b` is
//! `!(a * b)`, while `!a = b` is `(!a) = b`.
//!
//! Checks made while parsing: a string on the right of `=~` or `!~` must be a valid regular
//! expression; `avg`, `min`, `max` and `sum` need a field and `count` takes none; `by()` and
//! `select()` need at least one field; integers fit in `i64`, floats are finite, durations are
//! whole nanoseconds up to `i64::MAX`; nesting is limited ([`MAX_NESTING`], [`MAX_DEPTH`]).
//!
//! Not supported: comparisons of metrics with a number (`| rate() > 10`), comparisons between
//! two pipelines (`({ a } | count()) > ({ b } | count())`), intrinsics of the parent span
//! (`parent.duration` is refused), and pipelines that start with a stage other than a spanset
//! (`by(.x) | ...`).

pub mod ast;
mod error;
pub mod eval;
mod lexer;
pub mod metrics;
mod metrics_parser;
mod parser;
mod print;
pub mod pushdown;

pub use ast::Query;
pub use error::ParseError;
pub use eval::{Compiled, EvalError, Spanset, evaluate};
pub use metrics::{MetricsEvaluator, MetricsRequest, Series};
pub use metrics_parser::MAX_METRICS_BY;
pub use parser::{MAX_DEPTH, MAX_NESTING, parse};
pub use pushdown::{PushDown, conditions};
