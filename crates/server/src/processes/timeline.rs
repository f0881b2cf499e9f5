//! A process's traces as one timeline: steps ordered by start, the gaps between consecutive
//! steps and the producer → consumer hops between (or within) them. Pure: the traces are
//! given, already fetched; see [`super::find`] for how they are found.

use sextant_model::{Span, TraceId};
use sextant_storage::search::TraceSummary;

use super::hops::{Hop, find_hops, signed_diff};

/// One trace of the process.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub summary: TraceSummary,
    pub end_unix_nanos: u64,
    /// Spans of the trace that carry the process ID themselves.
    pub num_process_spans: usize,
    /// Every span of the trace, by start time.
    pub spans: Vec<Span>,
}

/// The time between two consecutive steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub from_step: usize,
    pub to_step: usize,
    /// The later step's start minus the earlier step's end; negative when they overlap.
    pub gap_nanos: i64,
}

/// A span of the timeline: its step and its position in the step's spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub step: usize,
    pub span: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TimelineHop {
    pub producer: SpanRef,
    pub consumer: SpanRef,
    pub hop: Hop,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub id: String,
    pub steps: Vec<Step>,
    pub gaps: Vec<Gap>,
    pub hops: Vec<TimelineHop>,
}

impl Timeline {
    pub fn start_unix_nanos(&self) -> u64 {
        self.steps.iter().map(|s| s.summary.start_unix_nanos).min().unwrap_or(0)
    }

    pub fn end_unix_nanos(&self) -> u64 {
        self.steps.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0)
    }

    pub fn num_spans(&self) -> usize {
        self.steps.iter().map(|s| s.spans.len()).sum()
    }

    pub fn span(&self, at: SpanRef) -> &Span {
        &self.steps[at.step].spans[at.span]
    }
}

/// Assembles the traces (each the spans of one trace; empty ones are skipped) of process
/// `id` as found under `keys`.
pub fn assemble(id: &str, keys: &[String], traces: Vec<(TraceId, Vec<Span>)>) -> Timeline {
    let mut steps: Vec<Step> = traces
        .into_iter()
        .filter_map(|(trace_id, spans)| {
            let summary = TraceSummary::of(trace_id, &spans)?;
            let end_unix_nanos = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0);
            let num_process_spans = spans.iter().filter(|s| super::carries(s, keys, id)).count();
            Some(Step { summary, end_unix_nanos, num_process_spans, spans })
        })
        .collect();
    steps.sort_by(|a, b| {
        a.summary.start_unix_nanos.cmp(&b.summary.start_unix_nanos).then(a.summary.trace_id.cmp(&b.summary.trace_id))
    });
    let gaps = steps
        .windows(2)
        .enumerate()
        .map(|(i, pair)| Gap {
            from_step: i,
            to_step: i + 1,
            gap_nanos: signed_diff(pair[1].summary.start_unix_nanos, pair[0].end_unix_nanos),
        })
        .collect();
    let refs: Vec<SpanRef> = steps
        .iter()
        .enumerate()
        .flat_map(|(step, s)| (0..s.spans.len()).map(move |span| SpanRef { step, span }))
        .collect();
    let spans: Vec<&Span> = refs.iter().map(|r| &steps[r.step].spans[r.span]).collect();
    let hops = find_hops(&spans)
        .into_iter()
        .map(|hop| TimelineHop { producer: refs[hop.producer], consumer: refs[hop.consumer], hop })
        .collect();
    Timeline { id: id.to_string(), steps, gaps, hops }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::default_process_keys;
    use crate::processes::testing::*;

    #[test]
    fn steps_in_time_order_with_gaps_and_a_hop_across_traces() {
        let keys = default_process_keys();
        let send = with_process(producer(span(1, 2, "order", 120, 140), "m1"), "order-1");
        let mut root = span(1, 1, "gateway", 100, 200);
        root.attributes.clear();
        let checkout = vec![root, send.clone()];
        let consume = vec![with_process(consumer(span(2, 3, "inventory", 260, 300), "m1", Some(&send)), "order-1")];
        let late = vec![with_process(span(3, 4, "mail", 900, 950), "order-1")];
        // Given out of order: the timeline orders by start.
        let timeline = assemble(
            "order-1",
            &keys,
            vec![(trace_id(3), late), (trace_id(2), consume), (trace_id(1), checkout), (trace_id(9), vec![])],
        );
        let order: Vec<TraceId> = timeline.steps.iter().map(|s| s.summary.trace_id).collect();
        assert_eq!(order, vec![trace_id(1), trace_id(2), trace_id(3)]);
        assert_eq!(timeline.steps[0].num_process_spans, 1);
        assert_eq!(timeline.steps[0].end_unix_nanos, 200);
        let gaps: Vec<i64> = timeline.gaps.iter().map(|g| g.gap_nanos).collect();
        assert_eq!(gaps, vec![60, 600]);
        assert_eq!(timeline.hops.len(), 1);
        let hop = &timeline.hops[0];
        assert_eq!((hop.producer.step, hop.consumer.step), (0, 1));
        assert_eq!(timeline.span(hop.producer).span_id, send.span_id);
        assert_eq!(hop.hop.queue_wait_nanos, 120);
        assert_eq!((timeline.start_unix_nanos(), timeline.end_unix_nanos(), timeline.num_spans()), (100, 950, 4));
    }

    #[test]
    fn overlapping_steps_have_a_negative_gap() {
        let keys = default_process_keys();
        let a = vec![with_process(span(1, 1, "a", 0, 100), "p")];
        let b = vec![with_process(span(2, 2, "b", 50, 80), "p")];
        let timeline = assemble("p", &keys, vec![(trace_id(1), a), (trace_id(2), b)]);
        assert_eq!(timeline.gaps[0].gap_nanos, -50);
    }
}
