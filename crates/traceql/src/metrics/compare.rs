//! `compare({ filter }, n, start, end)`: what sets a selection of spans apart from the rest.
//!
//! Each matching span is in the selection when `filter` holds for it (and, with a window, it
//! starts in `[start, end)`), in the baseline otherwise. For every attribute the span has
//! (`span.*`, `resource.*`, and the intrinsics `name`, `status`, `kind`; arrays, bytes and maps
//! are left out), its value is counted per step in its group. The series, as Tempo answers:
//!
//! - `{__meta_type="baseline", <attribute>=<value>}` and `{__meta_type="selection", ...}`: spans
//!   per step with that value, for the `n` values of each attribute with the most spans in
//!   the group (ties: the smaller value text);
//! - `{__meta_type="baseline_total", <attribute>=nil}`, `selection_total`: spans per step
//!   with the attribute at all;
//! - `{__meta_error="__too_many_values__", <attribute>=nil}`, without samples, for each attribute
//!   with more than `n` values in either group.
//!
//! Exemplars: the first counted span of a trace, on the `*_total` series of its group for
//! every attribute it has.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sextant_model::{Span, StatusCode};

use super::Exemplar;
use super::intervals::Intervals;
use super::output::Built;
use crate::ast::{Attribute, AttributeScope, Compare, FieldExpr, Status};
use crate::eval::tree::TraceCx;
use crate::eval::{EvalError, Field, Value, compile_condition};

const BASELINE: usize = 0;
const SELECTION: usize = 1;
const GROUP_NAMES: [&str; 2] = ["baseline", "selection"];

/// The state of one `compare()`.
#[derive(Debug)]
pub(crate) struct Comparison {
    selection: Field,
    window: Option<(u64, u64)>,
    top_n: usize,
    steps: usize,
    groups: [Group; 2],
}

/// The counts of the baseline or of the selection.
#[derive(Debug, Default)]
struct Group {
    /// Per attribute label, per value (by its debug text): the value and its spans per step.
    values: BTreeMap<String, HashMap<String, (Value<'static>, Vec<u64>)>>,
    /// Per attribute label: spans per step that have it.
    totals: BTreeMap<String, Vec<u64>>,
    /// With their step and the attribute labels of the span.
    exemplars: Vec<(Exemplar, usize, Vec<String>)>,
}

impl Comparison {
    pub(crate) fn new(compare: &Compare, steps: usize) -> Result<Comparison, EvalError> {
        Ok(Comparison {
            selection: compile_condition(&compare.selection)?,
            window: compare.window,
            top_n: compare.top_n as usize,
            steps,
            groups: [Group::default(), Group::default()],
        })
    }

    /// Counts the matching spans of one trace; returns whether it gave an exemplar (asked
    /// with `wants_exemplar`).
    pub(crate) fn observe(
        &mut self,
        cx: &TraceCx<'_>,
        matching: &[usize],
        intervals: &Intervals,
        wants_exemplar: bool,
    ) -> bool {
        let mut gave_exemplar = false;
        for &index in matching {
            let span = &cx.spans[index];
            let Some(step) = intervals.of(span.start_unix_nanos) else { continue };
            let in_window = self.window.is_none_or(|(start, end)| (start..end).contains(&span.start_unix_nanos));
            let group_index = if in_window && self.selection.value(cx, index).is_true() { SELECTION } else { BASELINE };
            let group = &mut self.groups[group_index];
            let mut names = Vec::new();
            for (name, value) in attributes(span) {
                let counts = group
                    .values
                    .entry(name.clone())
                    .or_default()
                    .entry(format!("{value:?}"))
                    .or_insert_with(|| (value, vec![0; self.steps]));
                counts.1[step] += 1;
                group.totals.entry(name.clone()).or_insert_with(|| vec![0; self.steps])[step] += 1;
                names.push(name);
            }
            if wants_exemplar && !gave_exemplar {
                let exemplar = Exemplar {
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    value: f64::NAN,
                    timestamp_ms: span.start_unix_nanos / 1_000_000,
                };
                group.exemplars.push((exemplar, step, names));
                gave_exemplar = true;
            }
        }
        gave_exemplar
    }

    pub(crate) fn finish(self) -> Vec<Built> {
        let mut built = Vec::new();
        let mut too_many: BTreeSet<String> = BTreeSet::new();
        for (group, name) in self.groups.iter().zip(GROUP_NAMES) {
            for (attribute, values) in &group.values {
                let mut ranked: Vec<(&String, &(Value<'static>, Vec<u64>))> = values.iter().collect();
                ranked.sort_by(|a, b| {
                    let total = |counts: &[u64]| counts.iter().sum::<u64>();
                    total(&b.1.1).cmp(&total(&a.1.1)).then_with(|| a.0.cmp(b.0))
                });
                if ranked.len() > self.top_n {
                    too_many.insert(attribute.clone());
                }
                for (_, (value, counts)) in ranked.into_iter().take(self.top_n) {
                    built.push(Built {
                        labels: vec![meta_type(name), (attribute.clone(), value.clone())],
                        values: counts.iter().map(|&c| c as f64).collect(),
                        exemplars: Vec::new(),
                        keep_empty: false,
                    });
                }
            }
            let total_name = format!("{name}_total");
            for (attribute, counts) in &group.totals {
                let exemplars = group
                    .exemplars
                    .iter()
                    .filter(|(_, _, names)| names.contains(attribute))
                    .map(|(exemplar, step, _)| (*exemplar, *step))
                    .collect();
                built.push(Built {
                    labels: vec![meta_type(&total_name), (attribute.clone(), Value::Nil)],
                    values: counts.iter().map(|&c| c as f64).collect(),
                    exemplars,
                    keep_empty: false,
                });
            }
        }
        for attribute in too_many {
            built.push(Built {
                labels: vec![
                    ("__meta_error".to_owned(), Value::String("__too_many_values__".into())),
                    (attribute, Value::Nil),
                ],
                values: vec![f64::NAN; self.steps],
                exemplars: Vec::new(),
                keep_empty: true,
            });
        }
        built
    }
}

fn meta_type(name: &str) -> (String, Value<'static>) {
    ("__meta_type".to_owned(), Value::String(name.to_owned().into()))
}

/// The attributes compare() splits by, as (label, value).
fn attributes(span: &Span) -> Vec<(String, Value<'static>)> {
    let label =
        |scope, name: &str| FieldExpr::Attribute(Attribute { scope, parent: false, name: name.to_owned() }).to_string();
    let mut out = vec![
        ("name".to_owned(), Value::String(span.name.clone().into())),
        (
            "status".to_owned(),
            Value::Status(match span.status_code {
                StatusCode::Unset => Status::Unset,
                StatusCode::Ok => Status::Ok,
                StatusCode::Error => Status::Error,
            }),
        ),
        ("kind".to_owned(), Value::Kind(span.kind)),
    ];
    let scoped = span
        .attributes
        .iter()
        .map(|kv| (AttributeScope::Span, kv))
        .chain(span.resource.attributes.iter().map(|kv| (AttributeScope::Resource, kv)));
    for (scope, kv) in scoped {
        let value = Value::from_any(&kv.value);
        if !matches!(value, Value::Nil | Value::Array(_)) {
            out.push((label(scope, &kv.key), value.into_owned()));
        }
    }
    out
}
