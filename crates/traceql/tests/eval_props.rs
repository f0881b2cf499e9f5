//! Property tests of the evaluator and the push-down conditions on random traces: the spanset
//! operators against their definitions, the structural operators against a naive reference
//! over parent links, and push-down never rejecting a trace the query matches.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};
use sextant_traceql::{Compiled, conditions, parse};

// ----- random traces ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct SpanSpec {
    /// 0: no parent; 1: a parent not in the trace; otherwise an earlier span.
    parent: u8,
    name: u8,
    service: u8,
    kind: u8,
    status: u8,
    duration_ms: u8,
    k: Option<i64>,
    text: Option<u8>,
    events: Vec<(u8, i64)>,
    link: bool,
}

fn span_spec() -> impl Strategy<Value = SpanSpec> {
    (
        any::<u8>(),
        0..3u8,
        0..3u8,
        0..6u8,
        0..3u8,
        0..20u8,
        prop::option::of(0..3i64),
        prop::option::of(0..3u8),
        prop::collection::vec((0..2u8, 0..3i64), 0..3),
        any::<bool>(),
    )
        .prop_map(|(parent, name, service, kind, status, duration_ms, k, text, events, link)| SpanSpec {
            parent,
            name,
            service,
            kind,
            status,
            duration_ms,
            k,
            text,
            events,
            link,
        })
}

fn trace() -> impl Strategy<Value = Vec<Span>> {
    prop::collection::vec(span_spec(), 1..14).prop_map(|specs| build(&specs))
}

fn build(specs: &[SpanSpec]) -> Vec<Span> {
    let services: Vec<Arc<Resource>> = ["s0", "s1", "s2"]
        .iter()
        .map(|s| Arc::new(Resource { attributes: vec![KeyValue::string("service.name", *s)], ..Resource::default() }))
        .collect();
    let mut spans: Vec<Span> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let start = 1_000_000_000 + i as u64 * 1_000_000;
        let mut span = Span::new(
            TraceId([7; 16]),
            SpanId([1, i as u8 + 1, 0, 0, 0, 0, 0, 0]),
            ["a", "b", "c"][spec.name as usize],
            start,
            start + u64::from(spec.duration_ms) * 1_000_000,
        );
        span.parent_span_id = match (spec.parent, i) {
            (0, _) | (_, 0) => None,
            (1, _) => Some(SpanId([9; 8])),
            (p, i) => Some(spans[p as usize % i].span_id),
        };
        span.resource = Arc::clone(&services[spec.service as usize]);
        span.kind = SpanKind::from_i32(i32::from(spec.kind));
        span.status_code = StatusCode::from_i32(i32::from(spec.status));
        if let Some(k) = spec.k {
            span.attributes.push(KeyValue::new("k", AnyValue::Int(k)));
        }
        if let Some(t) = spec.text {
            span.attributes.push(KeyValue::string("t", ["x", "y", "z"][t as usize]));
        }
        span.events = spec
            .events
            .iter()
            .map(|&(name, n)| Event {
                time_unix_nanos: start,
                name: ["e0", "e1"][name as usize].to_owned(),
                attributes: vec![KeyValue::new("n", AnyValue::Int(n))],
                dropped_attributes_count: 0,
            })
            .collect();
        if spec.link {
            span.links.push(Link {
                trace_id: TraceId([8; 16]),
                span_id: SpanId([8; 8]),
                trace_state: String::new(),
                attributes: vec![KeyValue::string("r", "l")],
                dropped_attributes_count: 0,
                flags: 0,
            });
        }
        spans.push(span);
    }
    spans
}

// ----- random queries --------------------------------------------------------------------------

/// Conditions on one span, none reading events or links.
const PLAIN_ATOMS: &[&str] = &[
    r#"name = "a""#,
    r#"name != "b""#,
    r#"name =~ "[ab]""#,
    r#"resource.service.name = "s1""#,
    r#".service.name = "s2""#,
    "span.k = 1",
    ".k > 0",
    "span.k != nil",
    "span.k = nil",
    r#"span.t = "x""#,
    r#".t != "y""#,
    "duration > 5ms",
    "duration <= 10ms",
    "status = error",
    "status != ok",
    "kind = server",
    "kind = client",
    "childCount > 0",
    "parent.k = 2",
    r#"rootName = "a""#,
    "nestedSetParent = -1",
    "span.k * 2 >= 2",
    "true",
];

/// Conditions reading events or links.
const BOUND_ATOMS: &[&str] = &[r#"event:name = "e1""#, "event.n = 2", "event.n > 0", r#"link.r = "l""#];

fn atom(with_bound: bool) -> BoxedStrategy<String> {
    let plain = prop::sample::select(PLAIN_ATOMS).prop_map(str::to_owned);
    if with_bound {
        prop_oneof![3 => plain, 1 => prop::sample::select(BOUND_ATOMS).prop_map(str::to_owned)].boxed()
    } else {
        plain.boxed()
    }
}

fn field(with_bound: bool) -> impl Strategy<Value = String> {
    atom(with_bound).prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

const SPANSET_OPS: &[&str] =
    &["&&", "||", ">", "<", ">>", "<<", "~", "&>", "&<", "&>>", "&<<", "&~", "!>", "!<", "!>>", "!<<", "!~"];

const STAGES: &[&str] = &[
    "count() > 1",
    "count() = 1",
    "by(name)",
    "by(resource.service.name) | count() > 1",
    "coalesce()",
    "avg(duration) > 3ms",
    "max(span.k) >= 1",
    "select(span.k)",
    r#"{ name = "a" }"#,
    "{ status = error } > { }",
];

fn spanset() -> impl Strategy<Value = String> {
    field(true).prop_map(|f| format!("{{ {f} }}")).prop_recursive(3, 10, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(SPANSET_OPS), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner, prop::sample::select(STAGES)).prop_map(|(a, stage)| format!("({a} | {stage})")),
        ]
    })
}

fn query() -> impl Strategy<Value = String> {
    (spanset(), prop::collection::vec(prop::sample::select(STAGES), 0..3)).prop_map(|(source, stages)| {
        let mut text = source;
        for stage in stages {
            text = format!("{text} | {stage}");
        }
        text
    })
}

// ----- helpers ---------------------------------------------------------------------------------

fn compile(text: &str) -> Compiled {
    let query = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
    Compiled::new(&query).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The spans of all spansets the query returns, or an error.
fn spans_of(text: &str, trace: &[Span]) -> BTreeSet<usize> {
    compile(text).evaluate(trace).unwrap().into_iter().flat_map(|s| s.spans).collect()
}

/// Naive structural relations over parent links: `related(l, r)` says whether r stands in
/// the operator's relation to l.
fn reference(op: &str, trace: &[Span], lhs: &BTreeSet<usize>, rhs: &BTreeSet<usize>) -> BTreeSet<usize> {
    let parent = |i: usize| -> Option<usize> {
        let id = trace[i].parent_span_id?;
        trace.iter().position(|s| s.span_id == id).filter(|&p| p != i)
    };
    let ancestor_of = |a: usize, mut d: usize| -> bool {
        while let Some(p) = parent(d) {
            if p == a {
                return true;
            }
            d = p;
        }
        false
    };
    let related = |base: &str, l: usize, r: usize| -> bool {
        match base {
            ">" => parent(r) == Some(l),
            "<" => parent(l) == Some(r),
            ">>" => ancestor_of(l, r),
            "<<" => ancestor_of(r, l),
            "~" => l != r && parent(l).is_some() && parent(l) == parent(r),
            _ => unreachable!(),
        }
    };
    let (base, union, negated) = match op.strip_prefix('&') {
        Some(base) => (base, true, false),
        None => match op.strip_prefix('!') {
            Some(base) => (base, false, true),
            None => (op, false, false),
        },
    };
    let mut out: BTreeSet<usize> =
        rhs.iter().copied().filter(|&r| lhs.iter().any(|&l| related(base, l, r)) != negated).collect();
    if union {
        out.extend(lhs.iter().copied().filter(|&l| rhs.iter().any(|&r| related(base, l, r))));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `{ A } && { B }` matches a trace exactly when both sides do, with the spans of both.
    #[test]
    fn spanset_and_needs_both_sides(trace in trace(), a in field(true), b in field(true)) {
        let left = spans_of(&format!("{{ {a} }}"), &trace);
        let right = spans_of(&format!("{{ {b} }}"), &trace);
        let both = spans_of(&format!("{{ {a} }} && {{ {b} }}"), &trace);
        let expected = if left.is_empty() || right.is_empty() { BTreeSet::new() } else { &left | &right };
        prop_assert_eq!(both, expected);
    }

    /// `{ A } || { B }` has the spans of either side.
    #[test]
    fn spanset_or_is_the_union(trace in trace(), a in field(true), b in field(true)) {
        let left = spans_of(&format!("{{ {a} }}"), &trace);
        let right = spans_of(&format!("{{ {b} }}"), &trace);
        prop_assert_eq!(spans_of(&format!("{{ {a} }} || {{ {b} }}"), &trace), &left | &right);
    }

    /// `{ A || B }` keeps the spans of `{ A }` and of `{ B }`, events and links included
    /// (some binding satisfies A or B exactly when some binding satisfies A or some B).
    #[test]
    fn filter_or_is_the_union_of_filters(trace in trace(), a in field(true), b in field(true)) {
        let left = spans_of(&format!("{{ {a} }}"), &trace);
        let right = spans_of(&format!("{{ {b} }}"), &trace);
        prop_assert_eq!(spans_of(&format!("{{ {a} || {b} }}"), &trace), &left | &right);
    }

    /// `{ A && B }` keeps the spans both filters keep; with events or links, only those where
    /// one binding satisfies both, a subset.
    #[test]
    fn filter_and_is_the_intersection_of_filters(trace in trace(), a in field(false), b in field(false), c in atom(true)) {
        let left = spans_of(&format!("{{ {a} }}"), &trace);
        let right = spans_of(&format!("{{ {b} }}"), &trace);
        prop_assert_eq!(spans_of(&format!("{{ {a} && {b} }}"), &trace), &left & &right);
        let bound = spans_of(&format!("{{ {a} && {c} }}"), &trace);
        let separately = &left & &spans_of(&format!("{{ {c} }}"), &trace);
        prop_assert!(bound.is_subset(&separately));
    }

    /// `{ !A }` is the complement of `{ A }` when A reads only values every span has.
    #[test]
    fn negation_complements_total_conditions(trace in trace(), which in 0..5usize) {
        let a = [r#"name = "a""#, "duration > 5ms", "status = error", "kind = server", "childCount > 0"][which];
        let all: BTreeSet<usize> = (0..trace.len()).collect();
        let plain = spans_of(&format!("{{ {a} }}"), &trace);
        prop_assert_eq!(spans_of(&format!("{{ !({a}) }}"), &trace), &all - &plain);
    }

    /// Every structural operator agrees with the naive reference over parent links.
    #[test]
    fn structural_operators_match_the_reference(
        trace in trace(),
        a in field(false),
        b in field(false),
        op in prop::sample::select(&SPANSET_OPS[2..]),
    ) {
        let left = spans_of(&format!("{{ {a} }}"), &trace);
        let right = spans_of(&format!("{{ {b} }}"), &trace);
        let actual = spans_of(&format!("{{ {a} }} {op} {{ {b} }}"), &trace);
        prop_assert_eq!(actual, reference(op, &trace, &left, &right), "{} {} {}", a, op, b);
    }

    /// A negated operator returns the right-hand spans the plain one does not; a union form
    /// is the plain operator together with its inverse with the sides swapped.
    #[test]
    fn negated_and_union_forms_follow_the_plain_ones(
        trace in trace(),
        a in field(false),
        b in field(false),
        which in 0..5usize,
    ) {
        let (plain, inverse) = [(">", "<"), ("<", ">"), (">>", "<<"), ("<<", ">>"), ("~", "~")][which];
        let (fa, fb) = (format!("{{ {a} }}"), format!("{{ {b} }}"));
        let right = spans_of(&fb, &trace);
        let related = spans_of(&format!("{fa} {plain} {fb}"), &trace);
        prop_assert_eq!(spans_of(&format!("{fa} !{plain} {fb}"), &trace), &right - &related);
        let swapped = spans_of(&format!("{fb} {inverse} {fa}"), &trace);
        prop_assert_eq!(spans_of(&format!("{fa} &{plain} {fb}"), &trace), &related | &swapped);
    }

    /// Push-down conditions never reject a trace the query matches, and queries of random
    /// shape either run or fail with an error, never a panic.
    #[test]
    fn pushdown_never_rejects_a_match(trace in trace(), text in query()) {
        let query = parse(&text).unwrap_or_else(|e| panic!("{}", e.render(&text)));
        let compiled = Compiled::new(&query).unwrap_or_else(|e| panic!("{text}: {e}"));
        if let Ok(spansets) = compiled.evaluate(&trace)
            && !spansets.is_empty()
        {
            let pushdown = conditions(&query);
            prop_assert!(pushdown.may_match(&trace), "{} rejected by {:?}", text, pushdown.conditions);
        }
    }

    /// A filter made of one extracted condition keeps exactly the spans the condition
    /// matches: storage and the evaluator agree on what each condition means.
    #[test]
    fn conditions_mean_what_the_evaluator_means(trace in trace(), a in field(false)) {
        let query = parse(&format!("{{ {a} }}")).unwrap();
        for condition in conditions(&query).conditions {
            let matching: BTreeSet<usize> = (0..trace.len()).filter(|&i| condition.matches(&trace[i])).collect();
            prop_assert_eq!(spans_of(&format!("{{ {condition} }}"), &trace), matching, "{}", condition);
        }
    }
}

#[test]
fn spansets_are_sorted_and_never_empty() {
    let specs: Vec<SpanSpec> = (0..6)
        .map(|i| SpanSpec {
            parent: if i == 0 { 0 } else { 2 },
            name: i % 3,
            service: i % 2,
            kind: 2,
            status: 0,
            duration_ms: i,
            k: Some(i64::from(i % 2)),
            text: None,
            events: Vec::new(),
            link: false,
        })
        .collect();
    let trace = build(&specs);
    for text in ["{ }", "{ } | by(name)", "{ .k = 1 } || { name = \"a\" }", "{ } >> { } | by(.k) | coalesce()"] {
        for spanset in compile(text).evaluate(&trace).unwrap() {
            assert!(!spanset.spans.is_empty(), "{text}");
            assert!(spanset.spans.windows(2).all(|w| w[0] < w[1]), "{text}: {:?}", spanset.spans);
        }
    }
}
