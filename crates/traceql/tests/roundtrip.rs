//! Property tests: random trees print as text that parses back to the same tree, and no input
//! makes the parser panic.

use std::time::Duration;

use proptest::prelude::*;
use sextant_traceql::ast::*;
use sextant_traceql::parse;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.]{0,12}",
        "[a-z]+[-+*/%:][a-z]+",
        // Anything at all, quoted when printed.
        any::<String>().prop_filter("names are never empty", |s| !s.is_empty()),
        Just("span.x".to_owned()),
        Just("duration".to_owned()),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        (0..=i64::MAX).prop_map(Literal::Int),
        prop_oneof![0.0..1e6f64, 0.0..f64::MAX, Just(0.5), Just(1e-300)].prop_map(Literal::Float),
        prop_oneof![0..=i64::MAX as u64, (0..1000u64).prop_map(|s| s * 1_000_000_000)]
            .prop_map(|nanos| Literal::Duration(Duration::from_nanos(nanos))),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Nil),
        prop::sample::select(Status::ALL.to_vec()).prop_map(Literal::Status),
        prop::sample::select(SpanKind::ALL.to_vec()).prop_map(Literal::Kind),
    ]
}

fn numeric_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (0..=i64::MAX).prop_map(Literal::Int),
        (0.0..1e9f64).prop_map(Literal::Float),
        (0..=i64::MAX as u64).prop_map(|nanos| Literal::Duration(Duration::from_nanos(nanos))),
    ]
}

fn field_leaf() -> impl Strategy<Value = FieldExpr> {
    prop_oneof![
        literal().prop_map(FieldExpr::Literal),
        (prop::sample::select(AttributeScope::ALL.to_vec()), any::<bool>(), name())
            .prop_map(|(scope, parent, name)| FieldExpr::Attribute(Attribute { scope, parent, name })),
        prop::sample::select(Intrinsic::ALL.to_vec()).prop_map(FieldExpr::Intrinsic),
    ]
}

fn field_expr() -> impl Strategy<Value = FieldExpr> {
    field_leaf().prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            (prop::sample::select(vec![UnaryOp::Neg, UnaryOp::Not]), inner.clone())
                .prop_map(|(op, expr)| FieldExpr::Unary { op, expr: Box::new(expr) }),
            (prop::sample::select(BinaryOp::ALL.to_vec()), inner.clone(), inner).prop_map(|(op, lhs, rhs)| {
                // A string on the right of a regex operator must compile.
                let rhs = match (op, rhs) {
                    (BinaryOp::Regex | BinaryOp::NotRegex, FieldExpr::Literal(Literal::String(s))) => {
                        FieldExpr::Literal(Literal::String(regex::escape(&s)))
                    }
                    (_, rhs) => rhs,
                };
                FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
            }),
        ]
    })
}

fn aggregate() -> impl Strategy<Value = Aggregate> {
    prop_oneof![
        Just(Aggregate::Count),
        field_expr().prop_map(Aggregate::Avg),
        field_expr().prop_map(Aggregate::Min),
        field_expr().prop_map(Aggregate::Max),
        field_expr().prop_map(Aggregate::Sum),
    ]
}

fn scalar_expr() -> impl Strategy<Value = ScalarExpr> {
    prop_oneof![aggregate().prop_map(ScalarExpr::Aggregate), numeric_literal().prop_map(ScalarExpr::Literal)]
        .prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|expr| ScalarExpr::Neg(Box::new(expr))),
                (prop::sample::select(ArithmeticOp::ALL.to_vec()), inner.clone(), inner)
                    .prop_map(|(op, lhs, rhs)| ScalarExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }),
            ]
        })
}

fn fields() -> impl Strategy<Value = Vec<FieldExpr>> {
    prop::collection::vec(field_expr(), 1..4)
}

fn spanset_expr() -> impl Strategy<Value = SpansetExpr> {
    field_expr().prop_map(SpansetExpr::Filter).prop_recursive(4, 24, 3, |inner| {
        let stage = prop_oneof![
            inner.clone().prop_map(Stage::Spanset),
            (prop::sample::select(ComparisonOp::ALL.to_vec()), scalar_expr(), scalar_expr())
                .prop_map(|(op, lhs, rhs)| Stage::ScalarFilter(ScalarFilter { op, lhs, rhs })),
            fields().prop_map(Stage::By),
            fields().prop_map(Stage::Select),
            Just(Stage::Coalesce),
        ];
        prop_oneof![
            (prop::sample::select(SpansetOp::ALL.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, lhs, rhs)| SpansetExpr::Op { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }),
            // A parenthesised pipeline has at least one stage.
            (inner, prop::collection::vec(stage, 1..3))
                .prop_map(|(source, stages)| SpansetExpr::Pipeline(Box::new(Pipeline { source, stages }))),
        ]
    })
}

/// An attribute or an intrinsic: what metrics functions and their `by()` take.
fn metrics_field() -> impl Strategy<Value = FieldExpr> {
    prop_oneof![
        (prop::sample::select(AttributeScope::ALL.to_vec()), any::<bool>(), name())
            .prop_map(|(scope, parent, name)| FieldExpr::Attribute(Attribute { scope, parent, name })),
        prop::sample::select(Intrinsic::ALL.to_vec()).prop_map(FieldExpr::Intrinsic),
    ]
}

fn metrics() -> impl Strategy<Value = Metrics> {
    let compare = (field_expr(), 1..100u32, prop::option::of((1..1u64 << 62, 1..1u64 << 62))).prop_map(
        |(selection, top_n, window)| {
            let window = window.map(|(start, length)| (start, start + length));
            MetricsFunction::Compare(Compare { selection, top_n, window })
        },
    );
    let function = prop_oneof![
        Just(MetricsFunction::Rate),
        Just(MetricsFunction::CountOverTime),
        metrics_field().prop_map(MetricsFunction::MinOverTime),
        metrics_field().prop_map(MetricsFunction::MaxOverTime),
        metrics_field().prop_map(MetricsFunction::AvgOverTime),
        metrics_field().prop_map(MetricsFunction::SumOverTime),
        metrics_field().prop_map(MetricsFunction::HistogramOverTime),
        (metrics_field(), prop::collection::vec(prop_oneof![0.0..=1.0f64, Just(0.5), Just(1.0)], 1..4))
            .prop_map(|(field, quantiles)| MetricsFunction::QuantileOverTime { field, quantiles }),
        compare,
    ];
    let limit = prop::option::of((any::<bool>(), 1..1000u32).prop_map(|(top, n)| SeriesLimit { top, n }));
    (function, prop::collection::vec(metrics_field(), 0..5), limit).prop_map(|(function, by, limit)| {
        // compare() takes no by(), the bucketed functions at most four fields.
        let by = match function {
            MetricsFunction::Compare(_) => Vec::new(),
            MetricsFunction::QuantileOverTime { .. } | MetricsFunction::HistogramOverTime(_) => {
                by.into_iter().take(4).collect()
            }
            _ => by,
        };
        Metrics { function, by, limit }
    })
}

fn query() -> impl Strategy<Value = Query> {
    let stage = prop_oneof![
        spanset_expr().prop_map(Stage::Spanset),
        (prop::sample::select(ComparisonOp::ALL.to_vec()), scalar_expr(), scalar_expr())
            .prop_map(|(op, lhs, rhs)| Stage::ScalarFilter(ScalarFilter { op, lhs, rhs })),
        fields().prop_map(Stage::By),
        fields().prop_map(Stage::Select),
        Just(Stage::Coalesce),
    ];
    let hint = ("[a-z_][a-z0-9_]{0,10}", literal()).prop_map(|(name, value)| Hint { name, value });
    (spanset_expr(), prop::collection::vec(stage, 0..3), prop::option::of(metrics()), prop::collection::vec(hint, 0..3))
        .prop_map(|(source, stages, metrics, hints)| Query { pipeline: Pipeline { source, stages }, metrics, hints })
}

/// Pieces of TraceQL, so that random concatenations get past the lexer and into the parser.
fn query_like_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "(",
        ")",
        "|",
        ",",
        "&&",
        "||",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "^",
        "=",
        "!=",
        "=~",
        "!~",
        ">",
        ">=",
        "<",
        "<=",
        ">>",
        "<<",
        "~",
        "&>",
        "&>>",
        "!>",
        "!<<",
        ".a",
        "span.b",
        "parent.span.c",
        "resource.\"d e\"",
        "duration",
        "name",
        "span:id",
        "trace:duration",
        "1",
        "2.5",
        "3s",
        "1.5ms",
        "\"s\"",
        "`r`",
        "\"(\"",
        "true",
        "nil",
        "ok",
        "server",
        "count",
        "avg",
        "min",
        "by",
        "select",
        "coalesce",
        "with",
        "most_recent",
        "rate",
        "quantile_over_time",
        "compare",
        "topk",
        ".5",
        " ",
        "\n",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_parse_back_to_the_same_tree(query in query()) {
        let text = query.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        prop_assert_eq!(&parsed, &query, "{}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn query_like_strings_never_panic_and_round_trip(text in query_like_text()) {
        if let Ok(parsed) = parse(&text) {
            let printed = parsed.to_string();
            let reparsed = parse(&printed);
            prop_assert_eq!(reparsed.as_ref(), Ok(&parsed), "{} printed as {}", text, printed);
        }
    }

    #[test]
    fn errors_point_inside_the_query(text in query_like_text()) {
        if let Err(error) = parse(&text) {
            prop_assert!(error.offset <= text.len());
            prop_assert!(text.is_char_boundary(error.offset));
            let _ = error.render(&text);
        }
    }
}
