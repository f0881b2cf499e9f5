//! From gathered counts to the answer: values per step, quantile series, `topk`/`bottomk`,
//! exemplar values, samples.

use super::intervals::Intervals;
use super::{Accumulator, Cells, Exemplar, Fold, Function, Labels, Sample, Series, log2, prometheus_labels};
use crate::ast::SeriesLimit;
use crate::eval::Value;

/// A series with one value per step (NaN where it has none), before it becomes samples.
#[derive(Debug)]
pub(crate) struct Built {
    pub labels: Labels,
    pub values: Vec<f64>,
    /// With the step each belongs to; a NaN value takes the series' value at that step.
    pub exemplars: Vec<(Exemplar, usize)>,
    /// Kept even without samples: compare()'s "too many values" marker.
    pub keep_empty: bool,
}

impl Accumulator {
    /// The series this accumulator makes: one, or one per quantile.
    pub(crate) fn finish(self, function: &Function, intervals: &Intervals) -> Vec<Built> {
        let Accumulator { labels, cells, exemplars } = self;
        let values = match cells {
            Cells::Count(counts) => {
                let per_second = matches!(function, Function::Count { per_second: true, .. });
                let divisor = if per_second { intervals.step_seconds() } else { 1.0 };
                counts.iter().map(|&count| count as f64 / divisor).collect()
            }
            Cells::Fold { fold, values, counts } => values
                .iter()
                .zip(&counts)
                .map(|(&value, &count)| match (fold, count) {
                    (_, 0) => f64::NAN,
                    (Fold::Avg, count) => value / count as f64,
                    _ => value,
                })
                .collect(),
            Cells::Buckets(mut steps) => {
                let Function::Quantile { quantiles, .. } = function else { unreachable!("only quantiles bucket") };
                for buckets in &mut steps {
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                let mut series: Vec<Built> = quantiles
                    .iter()
                    .map(|&p| {
                        let mut labels = labels.clone();
                        labels.push(("p".to_owned(), Value::Float(p)));
                        let values = steps.iter().map(|buckets| log2::quantile(p, buckets)).collect();
                        Built { labels, values, exemplars: Vec::new(), keep_empty: false }
                    })
                    .collect();
                for (exemplar, step) in exemplars {
                    let closest = (0..series.len()).min_by(|&a, &b| {
                        let distance = |i: usize| (series[i].values[step] - exemplar.value).abs();
                        distance(a).total_cmp(&distance(b))
                    });
                    if let Some(closest) = closest {
                        series[closest].exemplars.push((exemplar, step));
                    }
                }
                return series;
            }
        };
        vec![Built { labels, values, exemplars, keep_empty: false }]
    }
}

/// The answer: `limit` applied, NaN steps left out, exemplar values filled in, series without
/// samples dropped, ordered by label text.
pub(crate) fn series(mut built: Vec<Built>, limit: Option<SeriesLimit>, intervals: &Intervals) -> Vec<Series> {
    let mut keyed: Vec<(String, Built)> = built.drain(..).map(|b| (prometheus_labels(&b.labels), b)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(limit) = limit {
        apply_limit(&mut keyed, limit, intervals.len());
    }
    keyed
        .into_iter()
        .filter_map(|(_, built)| {
            let samples: Vec<Sample> = built
                .values
                .iter()
                .enumerate()
                .filter(|(_, value)| !value.is_nan())
                .map(|(step, &value)| Sample { timestamp_ms: intervals.timestamp_ms(step), value })
                .collect();
            if samples.is_empty() && !built.keep_empty {
                return None;
            }
            let exemplars = built
                .exemplars
                .iter()
                .filter(|(_, step)| !built.values[*step].is_nan())
                .map(|&(exemplar, step)| {
                    let value = if exemplar.value.is_nan() { built.values[step] } else { exemplar.value };
                    Exemplar { value, ..exemplar }
                })
                .collect();
            Some(Series { labels: built.labels, samples, exemplars })
        })
        .collect()
}

/// Keeps, at each step, the values of the `n` series ranked first there; `keyed` is sorted by
/// label text, which breaks ties.
fn apply_limit(keyed: &mut Vec<(String, Built)>, limit: SeriesLimit, steps: usize) {
    // kept[step][series]
    let mut kept = vec![vec![false; keyed.len()]; steps];
    for (step, kept_here) in kept.iter_mut().enumerate() {
        let mut ranked: Vec<usize> = (0..keyed.len()).filter(|&i| !keyed[i].1.values[step].is_nan()).collect();
        // Stable: equal values keep label order.
        ranked.sort_by(|&a, &b| {
            let (x, y) = (keyed[a].1.values[step], keyed[b].1.values[step]);
            if limit.top { y.total_cmp(&x) } else { x.total_cmp(&y) }
        });
        for &i in ranked.iter().take(limit.n as usize) {
            kept_here[i] = true;
        }
    }
    for (i, (_, built)) in keyed.iter_mut().enumerate() {
        for (value, kept_here) in built.values.iter_mut().zip(&kept) {
            if !kept_here[i] {
                *value = f64::NAN;
            }
        }
    }
    keyed.retain(|(_, built)| built.keep_empty || built.values.iter().any(|v| !v.is_nan()));
}
