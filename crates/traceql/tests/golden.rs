//! Golden tests: each `tests/golden/NAME.tql` holds one query (after `//` comment lines saying
//! what it checks), run on the fixture traces built below; `NAME.expected` holds the result.
//!
//! Result format, one line per spanset, traces in fixture order:
//!
//! ```text
//! checkout: fe-root co-place | by(kind) = server | count() = 2 | select span.x = [1, nil]
//! ```
//!
//! A trace without results has no line; `none` when no trace has any; `error: ...` when the
//! query does not compile; `TRACE: error: ...` when it fails on a trace. Every trace that
//! matches must also pass the query's push-down conditions.
//!
//! Set `SEXTANT_GOLDEN_UPDATE=1` to rewrite the `.expected` files from the current results
//! (then read the diff: the expectations were written by reasoning about the fixture).

mod fixture;

use std::fmt::Write;
use std::path::Path;

use sextant_traceql::{Compiled, conditions, parse};

fn render(query_text: &str, traces: &[fixture::Trace]) -> String {
    let query = match parse(query_text) {
        Ok(query) => query,
        Err(e) => panic!("golden query does not parse:\n{}", e.render(query_text)),
    };
    let compiled = match Compiled::new(&query) {
        Ok(compiled) => compiled,
        Err(e) => return format!("error: {e}\n"),
    };
    let pushdown = conditions(&query);
    let mut out = String::new();
    for trace in traces {
        let spansets = match compiled.evaluate(&trace.spans) {
            Ok(spansets) => spansets,
            Err(e) => {
                writeln!(out, "{}: error: {e}", trace.name).unwrap();
                continue;
            }
        };
        if !spansets.is_empty() {
            assert!(
                pushdown.may_match(&trace.spans),
                "push-down conditions {:?} reject trace {} that `{query_text}` matches",
                pushdown.conditions,
                trace.name
            );
        }
        for spanset in spansets {
            write!(out, "{}:", trace.name).unwrap();
            for &i in &spanset.spans {
                write!(out, " {}", trace.labels[i]).unwrap();
            }
            for (name, value) in spanset.group.iter().chain(&spanset.aggregates) {
                write!(out, " | {name} = {value}").unwrap();
            }
            for selected in &spanset.selected {
                let values: Vec<String> = selected.values.iter().map(ToString::to_string).collect();
                write!(out, " | select {} = [{}]", selected.field, values.join(", ")).unwrap();
            }
            out.push('\n');
        }
    }
    if out.is_empty() { "none\n".to_owned() } else { out }
}

/// The query of a `.tql` file: its lines without the `//` comments.
fn query_of(text: &str) -> (String, Vec<&str>) {
    let comments: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("//")).collect();
    let query = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    (query.trim().to_owned(), comments)
}

#[test]
fn golden_queries() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("SEXTANT_GOLDEN_UPDATE").is_some();
    let traces = fixture::traces();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tql"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 40, "expected at least 40 golden queries, found {}", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let (query, comments) = query_of(&text);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(!comments.is_empty(), "{name}.tql: the first line should be a `//` comment saying what it checks");
        let actual = render(&query, &traces);
        let expected_path = path.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).unwrap();
            }
            failures.push(format!("--- {name}: {query}\n{}", diff(&expected, &actual)));
        }
    }
    assert!(failures.is_empty(), "{} golden queries differ:\n\n{}", failures.len(), failures.join("\n"));
}

/// Line diff: `-` expected lines missing from the result, `+` result lines not expected.
fn diff(expected: &str, actual: &str) -> String {
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for line in &expected_lines {
        if !actual_lines.contains(line) {
            writeln!(out, "  - {line}").unwrap();
        }
    }
    for line in &actual_lines {
        if !expected_lines.contains(line) {
            writeln!(out, "  + {line}").unwrap();
        }
    }
    if out.is_empty() {
        // Same lines in a different order.
        writeln!(out, "  expected (in this order):\n    {}", expected_lines.join("\n    ")).unwrap();
        writeln!(out, "  actual:\n    {}", actual_lines.join("\n    ")).unwrap();
    }
    out
}
