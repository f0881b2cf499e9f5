//! Every construct of the grammar, parsed and compared with the exact tree expected, then
//! printed and compared with its canonical text.

use std::time::Duration;

use sextant_traceql::ast::*;
use sextant_traceql::{MAX_DEPTH, MAX_NESTING, parse};

// ----- tree builders ---------------------------------------------------------------------------

fn attr(scope: AttributeScope, name: &str) -> FieldExpr {
    FieldExpr::Attribute(Attribute { scope, parent: false, name: name.to_owned() })
}

fn span(name: &str) -> FieldExpr {
    attr(AttributeScope::Span, name)
}

fn dot(name: &str) -> FieldExpr {
    attr(AttributeScope::None, name)
}

fn parent(scope: AttributeScope, name: &str) -> FieldExpr {
    FieldExpr::Attribute(Attribute { scope, parent: true, name: name.to_owned() })
}

fn lit(literal: Literal) -> FieldExpr {
    FieldExpr::Literal(literal)
}

fn int(i: i64) -> FieldExpr {
    lit(Literal::Int(i))
}

fn string(s: &str) -> FieldExpr {
    lit(Literal::String(s.to_owned()))
}

fn bin(op: BinaryOp, lhs: FieldExpr, rhs: FieldExpr) -> FieldExpr {
    FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
}

fn un(op: UnaryOp, expr: FieldExpr) -> FieldExpr {
    FieldExpr::Unary { op, expr: Box::new(expr) }
}

fn filter(expr: FieldExpr) -> SpansetExpr {
    SpansetExpr::Filter(expr)
}

fn all() -> SpansetExpr {
    filter(lit(Literal::Bool(true)))
}

fn sop(op: SpansetOp, lhs: SpansetExpr, rhs: SpansetExpr) -> SpansetExpr {
    SpansetExpr::Op { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
}

fn query(source: SpansetExpr, stages: Vec<Stage>) -> Query {
    Query { pipeline: Pipeline { source, stages }, metrics: None, hints: Vec::new() }
}

fn agg(aggregate: Aggregate) -> ScalarExpr {
    ScalarExpr::Aggregate(aggregate)
}

fn num(literal: Literal) -> ScalarExpr {
    ScalarExpr::Literal(literal)
}

fn cmp(op: ComparisonOp, lhs: ScalarExpr, rhs: ScalarExpr) -> Stage {
    Stage::ScalarFilter(ScalarFilter { op, lhs, rhs })
}

/// The filter expression of a query that is a single `{ ... }`.
fn filter_of(text: &str) -> FieldExpr {
    let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.render(text)));
    match parsed.pipeline.source {
        SpansetExpr::Filter(expr) if parsed.pipeline.stages.is_empty() && parsed.hints.is_empty() => expr,
        other => panic!("{text}: not a single filter: {other:?}"),
    }
}

/// Parses `text`, asserts the tree, and asserts that it prints as `canonical`.
#[track_caller]
fn check(text: &str, expected: Query, canonical: &str) {
    let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.render(text)));
    assert_eq!(parsed, expected, "{text}");
    assert_eq!(parsed.to_string(), canonical, "{text}");
    assert_eq!(parse(canonical).as_ref(), Ok(&expected), "{canonical}");
}

#[track_caller]
fn check_filter(text: &str, expected: FieldExpr, canonical: &str) {
    check(text, query(filter(expected), vec![]), canonical);
}

#[track_caller]
fn error(text: &str) -> String {
    match parse(text) {
        Ok(q) => panic!("{text}: parsed as {q:?}"),
        Err(e) => e.to_string(),
    }
}

// ----- spanset filters ---------------------------------------------------------------------------

#[test]
fn empty_filter_and_true_are_the_same() {
    check("{}", query(all(), vec![]), "{}");
    check("{ }", query(all(), vec![]), "{}");
    check("{ true }", query(all(), vec![]), "{}");
    check_filter("{ false }", lit(Literal::Bool(false)), "{ false }");
}

#[test]
fn boolean_expressions() {
    check_filter(
        r#"{ span.http.method = "GET" && resource.service.name != "api" }"#,
        bin(
            BinaryOp::And,
            bin(BinaryOp::Eq, span("http.method"), string("GET")),
            bin(BinaryOp::Neq, attr(AttributeScope::Resource, "service.name"), string("api")),
        ),
        r#"{ span.http.method = "GET" && resource.service.name != "api" }"#,
    );
    check_filter("{ !(.a || .b) }", un(UnaryOp::Not, bin(BinaryOp::Or, dot("a"), dot("b"))), "{ !(.a || .b) }");
    check_filter("{ .flag }", dot("flag"), "{ .flag }");
}

#[test]
fn every_comparison_and_arithmetic_operator() {
    for op in BinaryOp::ALL {
        let text = format!("{{ .a {} .b }}", op.symbol());
        check_filter(&text, bin(op, dot("a"), dot("b")), &text);
        // And without spaces, where the attribute name ends at the operator.
        let tight = format!("{{.a{}.b}}", op.symbol());
        if !matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod) {
            assert_eq!(filter_of(&tight), bin(op, dot("a"), dot("b")), "{tight}");
        }
    }
    // `+ - * / %` are part of attribute names, as in Tempo.
    assert_eq!(filter_of("{ .a+.b }"), dot("a+.b"));
    check_filter("{ .a = -1 }", bin(BinaryOp::Eq, dot("a"), un(UnaryOp::Neg, int(1))), "{ .a = -1 }");
}

// ----- attributes and intrinsics ------------------------------------------------------------------

#[test]
fn scoped_unscoped_and_quoted_attributes() {
    check_filter("{ span.http.request.method }", span("http.request.method"), "{ span.http.request.method }");
    check_filter("{ resource.k8s.pod }", attr(AttributeScope::Resource, "k8s.pod"), "{ resource.k8s.pod }");
    check_filter("{ event.exception.type }", attr(AttributeScope::Event, "exception.type"), "{ event.exception.type }");
    check_filter("{ link.opentracing.ref }", attr(AttributeScope::Link, "opentracing.ref"), "{ link.opentracing.ref }");
    check_filter(
        "{ instrumentation.library }",
        attr(AttributeScope::Instrumentation, "library"),
        "{ instrumentation.library }",
    );
    check_filter("{ .foo.bar }", dot("foo.bar"), "{ .foo.bar }");
    check_filter(r#"{ span."name with spaces" }"#, span("name with spaces"), r#"{ span."name with spaces" }"#);
    check_filter(r#"{ ."x" }"#, dot("x"), "{ .x }");
    check_filter(r#"{ ."a=b" = 1 }"#, bin(BinaryOp::Eq, dot("a=b"), int(1)), r#"{ ."a=b" = 1 }"#);
    check_filter("{ span.status }", span("status"), "{ span.status }");
    check_filter("{ .http-status }", dot("http-status"), "{ .http-status }");
    check_filter("{ .😝 }", dot("😝"), "{ .😝 }");
}

#[test]
fn parent_attributes() {
    check_filter("{ parent.span.x }", parent(AttributeScope::Span, "x"), "{ parent.span.x }");
    check_filter(
        "{ parent.resource.service.name }",
        parent(AttributeScope::Resource, "service.name"),
        "{ parent.resource.service.name }",
    );
    check_filter("{ parent.foo.bar }", parent(AttributeScope::None, "foo.bar"), "{ parent.foo.bar }");
    // An unscoped parent attribute whose name starts like a scope must be quoted.
    check_filter(r#"{ parent."span.x" }"#, parent(AttributeScope::None, "span.x"), r#"{ parent."span.x" }"#);
    check_filter(r#"{ parent."duration" }"#, parent(AttributeScope::None, "duration"), r#"{ parent."duration" }"#);
    assert_eq!(
        error("{ parent.duration > 1s }"),
        "line 1, column 3: intrinsics of the parent span are not supported: 'parent.duration'"
    );
}

#[test]
fn unscoped_intrinsics() {
    let cases = [
        ("duration", Intrinsic::Duration),
        ("name", Intrinsic::Name),
        ("status", Intrinsic::Status),
        ("statusMessage", Intrinsic::StatusMessage),
        ("kind", Intrinsic::Kind),
        ("childCount", Intrinsic::ChildCount),
        ("rootName", Intrinsic::RootName),
        ("rootServiceName", Intrinsic::RootServiceName),
        ("traceDuration", Intrinsic::TraceDuration),
        ("nestedSetLeft", Intrinsic::NestedSetLeft),
        ("nestedSetRight", Intrinsic::NestedSetRight),
        ("nestedSetParent", Intrinsic::NestedSetParent),
    ];
    for (text, intrinsic) in cases {
        let q = format!("{{ {text} }}");
        check_filter(&q, FieldExpr::Intrinsic(intrinsic), &q);
        // As an attribute name it stays an attribute.
        assert_eq!(filter_of(&format!("{{ .{text} }}")), dot(text));
    }
}

#[test]
fn scoped_intrinsics() {
    let cases = [
        ("span:duration", Intrinsic::Duration, "duration"),
        ("span:name", Intrinsic::Name, "name"),
        ("span:status", Intrinsic::Status, "status"),
        ("span:statusMessage", Intrinsic::StatusMessage, "statusMessage"),
        ("span:kind", Intrinsic::Kind, "kind"),
        ("span:childCount", Intrinsic::ChildCount, "childCount"),
        ("span:id", Intrinsic::SpanId, "span:id"),
        ("span:parentID", Intrinsic::ParentId, "span:parentID"),
        ("trace:duration", Intrinsic::TraceDuration, "traceDuration"),
        ("trace:rootName", Intrinsic::RootName, "rootName"),
        ("trace:rootService", Intrinsic::RootServiceName, "rootServiceName"),
        ("trace:id", Intrinsic::TraceId, "trace:id"),
        ("event:name", Intrinsic::EventName, "event:name"),
        ("event:timeSinceStart", Intrinsic::EventTimeSinceStart, "event:timeSinceStart"),
        ("link:traceID", Intrinsic::LinkTraceId, "link:traceID"),
        ("link:spanID", Intrinsic::LinkSpanId, "link:spanID"),
        ("instrumentation:name", Intrinsic::InstrumentationName, "instrumentation:name"),
        ("instrumentation:version", Intrinsic::InstrumentationVersion, "instrumentation:version"),
    ];
    for (text, intrinsic, canonical) in cases {
        check_filter(&format!("{{ {text} }}"), FieldExpr::Intrinsic(intrinsic), &format!("{{ {canonical} }}"));
    }
    assert_eq!(error("{ span:foo }"), "line 1, column 3: unknown intrinsic 'span:foo'");
}

// ----- literals -------------------------------------------------------------------------------------

#[test]
fn string_literals() {
    check_filter(r#"{ "a\"b\\c\n" }"#, string("a\"b\\c\n"), r#"{ "a\"b\\c\n" }"#);
    check_filter(r"{ `raw \d+` }", string(r"raw \d+"), r#"{ "raw \\d+" }"#);
    check_filter(r#"{ "\u00e9\x41\t" }"#, string("éA\t"), r#"{ "éA\t" }"#);
    check_filter("{ \"\u{1}\" }", string("\u{1}"), r#"{ "\u0001" }"#);
}

#[test]
fn numbers() {
    check_filter("{ 42 }", int(42), "{ 42 }");
    check_filter("{ 1.5 }", lit(Literal::Float(1.5)), "{ 1.5 }");
    check_filter("{ 3.0 }", lit(Literal::Float(3.0)), "{ 3.0 }");
    check_filter("{ 2e10 }", lit(Literal::Float(2e10)), "{ 20000000000.0 }");
    check_filter("{ 1e-7 }", lit(Literal::Float(1e-7)), "{ 1e-7 }");
    check_filter("{ 9223372036854775807 }", int(i64::MAX), "{ 9223372036854775807 }");
    assert_eq!(
        error("{ .a = 9223372036854775808 }"),
        "line 1, column 8: integer literal 9223372036854775808 is out of range (the largest is 9223372036854775807)"
    );
    assert_eq!(error("{ 1e999 }"), "line 1, column 3: float literal 1e999 is out of range");
}

#[test]
fn durations() {
    let cases = [
        ("1ns", Duration::from_nanos(1), "1ns"),
        ("2us", Duration::from_micros(2), "2us"),
        ("3µs", Duration::from_micros(3), "3us"),
        ("4ms", Duration::from_millis(4), "4ms"),
        ("5s", Duration::from_secs(5), "5s"),
        ("6m", Duration::from_secs(360), "6m"),
        ("7h", Duration::from_secs(7 * 3600), "7h"),
        ("1.5s", Duration::from_millis(1500), "1500ms"),
        ("1.5m", Duration::from_secs(90), "90s"),
        ("1h30m", Duration::from_secs(5400), "90m"),
        ("0s", Duration::ZERO, "0s"),
        ("1000ms", Duration::from_secs(1), "1s"),
    ];
    for (text, duration, canonical) in cases {
        check_filter(
            &format!("{{ duration > {text} }}"),
            bin(BinaryOp::Gt, FieldExpr::Intrinsic(Intrinsic::Duration), lit(Literal::Duration(duration))),
            &format!("{{ duration > {canonical} }}"),
        );
    }
    assert_eq!(
        error("{ duration > 10xs }"),
        "line 1, column 14: invalid duration '10xs' (expected a number and a unit: ns, us, µs, ms, s, m, h, d, w)"
    );
}

#[test]
fn keyword_literals() {
    let cases = [
        ("true", Literal::Bool(true), "{}"),
        ("nil", Literal::Nil, "{ nil }"),
        ("ok", Literal::Status(Status::Ok), "{ ok }"),
        ("error", Literal::Status(Status::Error), "{ error }"),
        ("unset", Literal::Status(Status::Unset), "{ unset }"),
        ("unspecified", Literal::Kind(SpanKind::Unspecified), "{ unspecified }"),
        ("internal", Literal::Kind(SpanKind::Internal), "{ internal }"),
        ("server", Literal::Kind(SpanKind::Server), "{ server }"),
        ("client", Literal::Kind(SpanKind::Client), "{ client }"),
        ("producer", Literal::Kind(SpanKind::Producer), "{ producer }"),
        ("consumer", Literal::Kind(SpanKind::Consumer), "{ consumer }"),
    ];
    for (text, literal, canonical) in cases {
        check_filter(&format!("{{ {text} }}"), lit(literal), canonical);
    }
    check_filter(
        "{ status = error && kind = server }",
        bin(
            BinaryOp::And,
            bin(BinaryOp::Eq, FieldExpr::Intrinsic(Intrinsic::Status), lit(Literal::Status(Status::Error))),
            bin(BinaryOp::Eq, FieldExpr::Intrinsic(Intrinsic::Kind), lit(Literal::Kind(SpanKind::Server))),
        ),
        "{ status = error && kind = server }",
    );
    check_filter("{ .a != nil }", bin(BinaryOp::Neq, dot("a"), lit(Literal::Nil)), "{ .a != nil }");
}

#[test]
fn regex_literals() {
    check_filter(
        r#"{ name =~ "GET /api/.*" }"#,
        bin(BinaryOp::Regex, FieldExpr::Intrinsic(Intrinsic::Name), string("GET /api/.*")),
        r#"{ name =~ "GET /api/.*" }"#,
    );
    check_filter(
        r"{ .path !~ `^/v\d+` }",
        bin(BinaryOp::NotRegex, dot("path"), string(r"^/v\d+")),
        r#"{ .path !~ "^/v\\d+" }"#,
    );
    assert_eq!(error(r#"{ name =~ "a(" }"#), "line 1, column 11: invalid regular expression: unclosed group");
}

// ----- precedence -------------------------------------------------------------------------------

#[test]
fn field_precedence_follows_tempo() {
    let (a, b, c) = (dot("a"), dot("b"), dot("c"));
    let cases = [
        (
            "{ .a * .b + .c }",
            bin(BinaryOp::Add, bin(BinaryOp::Mul, a.clone(), b.clone()), c.clone()),
            "{ .a * .b + .c }",
        ),
        (
            "{ .a + .b * .c }",
            bin(BinaryOp::Add, a.clone(), bin(BinaryOp::Mul, b.clone(), c.clone())),
            "{ .a + .b * .c }",
        ),
        (
            "{ (.a + .b) * .c }",
            bin(BinaryOp::Mul, bin(BinaryOp::Add, a.clone(), b.clone()), c.clone()),
            "{ (.a + .b) * .c }",
        ),
        (
            "{ .a - .b - .c }",
            bin(BinaryOp::Sub, bin(BinaryOp::Sub, a.clone(), b.clone()), c.clone()),
            "{ .a - .b - .c }",
        ),
        (
            "{ .a - (.b - .c) }",
            bin(BinaryOp::Sub, a.clone(), bin(BinaryOp::Sub, b.clone(), c.clone())),
            "{ .a - (.b - .c) }",
        ),
        (
            "{ .a ^ .b ^ .c }",
            bin(BinaryOp::Pow, a.clone(), bin(BinaryOp::Pow, b.clone(), c.clone())),
            "{ .a ^ .b ^ .c }",
        ),
        (
            "{ (.a ^ .b) ^ .c }",
            bin(BinaryOp::Pow, bin(BinaryOp::Pow, a.clone(), b.clone()), c.clone()),
            "{ (.a ^ .b) ^ .c }",
        ),
        (
            "{ .a = .b + .c }",
            bin(BinaryOp::Eq, a.clone(), bin(BinaryOp::Add, b.clone(), c.clone())),
            "{ .a = .b + .c }",
        ),
        (
            "{ .a && .b = .c }",
            bin(BinaryOp::And, a.clone(), bin(BinaryOp::Eq, b.clone(), c.clone())),
            "{ .a && .b = .c }",
        ),
        // `&&` and `||` share one level, left to right.
        (
            "{ .a || .b && .c }",
            bin(BinaryOp::And, bin(BinaryOp::Or, a.clone(), b.clone()), c.clone()),
            "{ .a || .b && .c }",
        ),
        (
            "{ .a && .b || .c }",
            bin(BinaryOp::Or, bin(BinaryOp::And, a.clone(), b.clone()), c.clone()),
            "{ .a && .b || .c }",
        ),
        (
            "{ .a || (.b && .c) }",
            bin(BinaryOp::Or, a.clone(), bin(BinaryOp::And, b.clone(), c.clone())),
            "{ .a || (.b && .c) }",
        ),
        // Prefix operators.
        ("{ !.a = .b }", bin(BinaryOp::Eq, un(UnaryOp::Not, a.clone()), b.clone()), "{ !.a = .b }"),
        ("{ !(.a = .b) }", un(UnaryOp::Not, bin(BinaryOp::Eq, a.clone(), b.clone())), "{ !(.a = .b) }"),
        (
            "{ .a = !.b && .c }",
            bin(BinaryOp::And, bin(BinaryOp::Eq, a.clone(), un(UnaryOp::Not, b.clone())), c.clone()),
            "{ .a = !.b && .c }",
        ),
        ("{ -.a * .b }", un(UnaryOp::Neg, bin(BinaryOp::Mul, a.clone(), b.clone())), "{ -.a * .b }"),
        ("{ (-.a) * .b }", bin(BinaryOp::Mul, un(UnaryOp::Neg, a.clone()), b.clone()), "{ (-.a) * .b }"),
        ("{ -.a + .b }", bin(BinaryOp::Add, un(UnaryOp::Neg, a.clone()), b.clone()), "{ -.a + .b }"),
        ("{ !.a * .b }", un(UnaryOp::Not, bin(BinaryOp::Mul, a.clone(), b.clone())), "{ !.a * .b }"),
        ("{ !.a + .b }", bin(BinaryOp::Add, un(UnaryOp::Not, a.clone()), b.clone()), "{ !.a + .b }"),
        (
            "{ .c - -.a + .b }",
            bin(BinaryOp::Add, bin(BinaryOp::Sub, c.clone(), un(UnaryOp::Neg, a.clone())), b.clone()),
            "{ .c - -.a + .b }",
        ),
        (
            "{ .a * -.b * .c }",
            bin(BinaryOp::Mul, a.clone(), un(UnaryOp::Neg, bin(BinaryOp::Mul, b.clone(), c.clone()))),
            "{ .a * -.b * .c }",
        ),
        (
            "{ (.a * -.b) * .c }",
            bin(BinaryOp::Mul, bin(BinaryOp::Mul, a.clone(), un(UnaryOp::Neg, b.clone())), c.clone()),
            "{ .a * (-.b) * .c }",
        ),
        ("{ --.a }", un(UnaryOp::Neg, un(UnaryOp::Neg, a.clone())), "{ --.a }"),
    ];
    for (text, expected, canonical) in cases {
        check_filter(text, expected, canonical);
    }
}

#[test]
fn spanset_operators() {
    let a = || filter(dot("a"));
    let b = || filter(dot("b"));
    for op in SpansetOp::ALL {
        let text = format!("{{ .a }} {} {{ .b }}", op.symbol());
        check(&text, query(sop(op, a(), b()), vec![]), &text);
        let tight = format!("{{.a}}{}{{.b}}", op.symbol());
        check(&tight, query(sop(op, a(), b()), vec![]), &text);
    }
}

#[test]
fn spanset_precedence_follows_tempo() {
    let (t, f, s) = (all(), filter(lit(Literal::Bool(false))), filter(string("a")));
    check(
        "{ true } && { false } >> { `a` }",
        query(sop(SpansetOp::And, t.clone(), sop(SpansetOp::Descendant, f.clone(), s.clone())), vec![]),
        r#"{} && { false } >> { "a" }"#,
    );
    check(
        "{ true } >> { false } && { `a` }",
        query(sop(SpansetOp::And, sop(SpansetOp::Descendant, t.clone(), f.clone()), s.clone()), vec![]),
        r#"{} >> { false } && { "a" }"#,
    );
    check(
        "{ true } ~ { false } >> { `a` }",
        query(sop(SpansetOp::Descendant, sop(SpansetOp::Sibling, t.clone(), f.clone()), s.clone()), vec![]),
        r#"{} ~ { false } >> { "a" }"#,
    );
    check(
        "{ true } || ({ false } &> { `a` })",
        query(sop(SpansetOp::Or, t.clone(), sop(SpansetOp::UnionChild, f.clone(), s.clone())), vec![]),
        r#"{} || { false } &> { "a" }"#,
    );
    check(
        "({ true } || { false }) !< { `a` }",
        query(sop(SpansetOp::NotParent, sop(SpansetOp::Or, t.clone(), f.clone()), s.clone()), vec![]),
        r#"({} || { false }) !< { "a" }"#,
    );
    check(
        "{ true } > ({ false } > { `a` })",
        query(sop(SpansetOp::Child, t.clone(), sop(SpansetOp::Child, f.clone(), s.clone())), vec![]),
        r#"{} > ({ false } > { "a" })"#,
    );
    // Redundant parentheses disappear.
    check("(({ true }))", query(t.clone(), vec![]), "{}");
}

// ----- pipelines --------------------------------------------------------------------------------------

#[test]
fn aggregates_compared_with_literals() {
    let a = filter(dot("a"));
    check(
        "{ .a } | count() > 3",
        query(a.clone(), vec![cmp(ComparisonOp::Gt, agg(Aggregate::Count), num(Literal::Int(3)))]),
        "{ .a } | count() > 3",
    );
    check(
        "{ .a } | avg(duration) > 1s",
        query(
            a.clone(),
            vec![cmp(
                ComparisonOp::Gt,
                agg(Aggregate::Avg(FieldExpr::Intrinsic(Intrinsic::Duration))),
                num(Literal::Duration(Duration::from_secs(1))),
            )],
        ),
        "{ .a } | avg(duration) > 1s",
    );
    let field = || span("bytes");
    let aggregates = [
        ("min", Aggregate::Min(field())),
        ("max", Aggregate::Max(field())),
        ("sum", Aggregate::Sum(field())),
        ("avg", Aggregate::Avg(field())),
    ];
    for (name, aggregate) in aggregates {
        for op in ComparisonOp::ALL {
            let text = format!("{{ .a }} | {name}(span.bytes) {} 1.5", op.symbol());
            check(&text, query(a.clone(), vec![cmp(op, agg(aggregate.clone()), num(Literal::Float(1.5)))]), &text);
        }
    }
    check(
        "{} | sum(span.x * 2) / count() >= -0.5",
        query(
            all(),
            vec![cmp(
                ComparisonOp::Gte,
                ScalarExpr::Binary {
                    op: ArithmeticOp::Div,
                    lhs: Box::new(agg(Aggregate::Sum(bin(BinaryOp::Mul, span("x"), int(2))))),
                    rhs: Box::new(agg(Aggregate::Count)),
                },
                ScalarExpr::Neg(Box::new(num(Literal::Float(0.5)))),
            )],
        ),
        "{} | sum(span.x * 2) / count() >= -0.5",
    );
    check(
        "{} | (count() + 1) * 2 = max(duration) ^ 2",
        query(
            all(),
            vec![cmp(
                ComparisonOp::Eq,
                ScalarExpr::Binary {
                    op: ArithmeticOp::Mul,
                    lhs: Box::new(ScalarExpr::Binary {
                        op: ArithmeticOp::Add,
                        lhs: Box::new(agg(Aggregate::Count)),
                        rhs: Box::new(num(Literal::Int(1))),
                    }),
                    rhs: Box::new(num(Literal::Int(2))),
                },
                ScalarExpr::Binary {
                    op: ArithmeticOp::Pow,
                    lhs: Box::new(agg(Aggregate::Max(FieldExpr::Intrinsic(Intrinsic::Duration)))),
                    rhs: Box::new(num(Literal::Int(2))),
                },
            )],
        ),
        "{} | (count() + 1) * 2 = max(duration) ^ 2",
    );
}

#[test]
fn by_select_coalesce_and_filters_after_a_pipe() {
    check(
        "{ } | by(resource.service.name, span.x) | select(span.a, .b) | coalesce() | { .c } && { .d }",
        query(
            all(),
            vec![
                Stage::By(vec![attr(AttributeScope::Resource, "service.name"), span("x")]),
                Stage::Select(vec![span("a"), dot("b")]),
                Stage::Coalesce,
                Stage::Spanset(sop(SpansetOp::And, filter(dot("c")), filter(dot("d")))),
            ],
        ),
        "{} | by(resource.service.name, span.x) | select(span.a, .b) | coalesce() | { .c } && { .d }",
    );
    check(
        "{} | ({ .a } > { .b })",
        query(all(), vec![Stage::Spanset(sop(SpansetOp::Child, filter(dot("a")), filter(dot("b"))))]),
        "{} | { .a } > { .b }",
    );
    check(
        "{} | by(.a + .b)",
        query(all(), vec![Stage::By(vec![bin(BinaryOp::Add, dot("a"), dot("b"))])]),
        "{} | by(.a + .b)",
    );
}

#[test]
fn parenthesised_pipelines_combine_as_spansets() {
    let inner = |name: &str| Pipeline {
        source: filter(dot(name)),
        stages: vec![cmp(ComparisonOp::Gt, agg(Aggregate::Count), num(Literal::Int(1)))],
    };
    check(
        "({ .a } | count() > 1) && ({ .b } | count() > 1)",
        query(
            sop(
                SpansetOp::And,
                SpansetExpr::Pipeline(Box::new(inner("a"))),
                SpansetExpr::Pipeline(Box::new(inner("b"))),
            ),
            vec![],
        ),
        "({ .a } | count() > 1) && ({ .b } | count() > 1)",
    );
    check(
        "({ .a } | count() > 1)",
        query(SpansetExpr::Pipeline(Box::new(inner("a"))), vec![]),
        "({ .a } | count() > 1)",
    );
    check(
        "{} | ({ .a } | count() > 1) | by(.x)",
        query(all(), vec![Stage::Spanset(SpansetExpr::Pipeline(Box::new(inner("a")))), Stage::By(vec![dot("x")])]),
        "{} | ({ .a } | count() > 1) | by(.x)",
    );
}

#[test]
fn hints() {
    let mut expected = query(all(), vec![]);
    expected.hints = vec![Hint { name: "most_recent".to_owned(), value: Literal::Bool(true) }];
    check("{} with (most_recent=true)", expected.clone(), "{} with (most_recent = true)");
    check("{} with(most_recent = true)", expected, "{} with (most_recent = true)");
    let mut expected = query(all(), vec![Stage::Coalesce]);
    expected.hints = vec![
        Hint { name: "sample".to_owned(), value: Literal::Float(0.1) },
        Hint { name: "timeout".to_owned(), value: Literal::Duration(Duration::from_secs(5)) },
        Hint { name: "mode".to_owned(), value: Literal::String("fast".to_owned()) },
    ];
    check(
        r#"{} | coalesce() with (sample = 0.1, timeout = 5s, mode = "fast")"#,
        expected,
        r#"{} | coalesce() with (sample = 0.1, timeout = 5s, mode = "fast")"#,
    );
}

// ----- errors ------------------------------------------------------------------------------------

#[test]
fn errors_say_where_what_was_expected_and_what_was_found() {
    let cases = [
        ("{ span.foo = }", "line 1, column 14: expected a value after '=', found '}'"),
        ("{ .a = 1", "line 1, column 9: expected an operator or '}', found end of query"),
        ("{ = 1 }", "line 1, column 3: expected a value or '}' after '{', found '='"),
        ("{ .a } &&", "line 1, column 10: expected a spanset filter '{ ... }' after '&&', found end of query"),
        (
            "count() > 1",
            "line 1, column 1: expected a spanset filter '{ ... }' at the start of the query, found 'count'",
        ),
        ("", "line 1, column 1: expected a spanset filter '{ ... }' at the start of the query, found end of query"),
        ("{ .a } }", "line 1, column 8: expected '|', a spanset operator, 'with (...)' or end of query, found '}'"),
        ("({ .a } | { .b }", "line 1, column 17: expected '|', a spanset operator or ')', found end of query"),
        ("{ .a | .b }", "line 1, column 6: expected an operator or '}', found '|'"),
        ("{ 2 <> 3 }", "line 1, column 6: expected a value after '<', found '>'"),
        ("{ . foo }", "line 1, column 4: expected an attribute name after '.'"),
        ("{ span. = 1 }", "line 1, column 8: expected an attribute name after 'span.'"),
        (
            "{ foo = 1 }",
            "line 1, column 3: unknown identifier 'foo': attributes need a scope, e.g. 'span.foo', 'resource.foo' or '.foo'",
        ),
        ("{ .a = \"x }", "line 1, column 8: unterminated string literal"),
        ("{ .a = 1 } @", "line 1, column 12: unexpected character '@'"),
        (
            "{} | ",
            "line 1, column 6: expected a spanset filter, an aggregate (count(), avg(), min(), max(), sum()), by(), select() or coalesce() after '|', found end of query",
        ),
        ("{} | avg() > 1", "line 1, column 10: avg() needs a field expression, e.g. avg(duration)"),
        ("{} | sum() > 1", "line 1, column 10: sum() needs a field expression, e.g. sum(duration)"),
        ("{} | count(.a) > 1", "line 1, column 12: expected ')' (count() takes no argument), found '.a'"),
        (
            "{} | count()",
            "line 1, column 13: expected an arithmetic operator or a comparison (=, !=, <, <=, >, >=), found end of query",
        ),
        (
            "{} | count() > ",
            "line 1, column 16: expected an aggregate such as count() or a number after '>', found end of query",
        ),
        ("{} | by()", "line 1, column 9: by() needs at least one field expression"),
        ("{} | select()", "line 1, column 13: select() needs at least one field expression"),
        ("{} | by(.a .b)", "line 1, column 12: expected an operator, ',' or ')', found '.b'"),
        ("{} | coalesce(.a)", "line 1, column 15: expected ')' (coalesce() takes no arguments), found '.a'"),
        ("{} with ()", "line 1, column 10: expected a hint name such as 'most_recent', found ')'"),
        ("{} with (a = .b)", "line 1, column 14: expected a literal value for the hint 'a', found '.b'"),
        ("{} with (a = 1) | {}", "line 1, column 17: expected end of query, found '|'"),
        ("{ .a }\n  && { .b = }", "line 2, column 13: expected a value after '=', found '}'"),
    ];
    for (text, message) in cases {
        assert_eq!(error(text), message, "{text}");
    }
}

#[test]
fn error_offsets_are_bytes_and_columns_are_characters() {
    let err = parse("{ .é = }").unwrap_err();
    assert_eq!((err.offset, err.line, err.column), (8, 1, 8));
    assert_eq!(
        err.render("{ .é = }"),
        "line 1, column 8: expected a value after '=', found '}'\n  { .é = }\n         ^"
    );
}

#[test]
fn the_first_error_in_the_query_is_reported() {
    // The lexer would fail at '@', but the parser fails earlier.
    assert_eq!(error("{ .a = } @"), "line 1, column 8: expected a value after '=', found '}'");
}

#[test]
fn long_found_tokens_are_shortened() {
    let long = "x".repeat(50);
    assert_eq!(
        error(&format!("{{ .a = 1 \"{long}\" }}")),
        format!("line 1, column 10: expected an operator or '}}', found '\"{}…'", "x".repeat(31))
    );
}

// ----- limits -------------------------------------------------------------------------------------

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{{ {}.a{} }}", "(".repeat(10_000), ")".repeat(10_000));
    let err = parse(&deep).unwrap_err();
    assert_eq!(err.message, format!("the query nests more than {MAX_NESTING} levels deep"));

    let prefixes = format!("{{ {}1 }}", "-".repeat(10_000));
    assert!(parse(&prefixes).unwrap_err().message.contains("nests more than"));

    let spansets = format!("{}{{}}{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&spansets).unwrap_err().message.contains("nests more than"));

    let powers = format!("{{ .a{} }}", " ^ .a".repeat(10_000));
    assert!(parse(&powers).unwrap_err().message.contains("nests more than"));

    // Just inside the limit parses.
    let ok = format!("{{ {}.a{} }}", "(".repeat(100), ")".repeat(100));
    assert_eq!(filter_of(&ok), dot("a"));
}

#[test]
fn long_chains_are_limited_by_tree_depth() {
    let chain = |n: usize| format!("{{ .a{} }}", " || .a".repeat(n));
    let ok = parse(&chain(MAX_DEPTH - 2)).unwrap();
    // The deepest tree allowed prints, compares and drops on a small stack.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let text = ok.to_string();
            assert_eq!(parse(&text).unwrap(), ok);
        })
        .unwrap()
        .join()
        .unwrap();
    let err = parse(&chain(100_000)).unwrap_err();
    assert_eq!(err.message, format!("the query's expression is more than {MAX_DEPTH} levels deep"));
    let spansets = format!("{{}}{}", " && {}".repeat(100_000));
    assert!(parse(&spansets).unwrap_err().message.contains("levels deep"));
}
