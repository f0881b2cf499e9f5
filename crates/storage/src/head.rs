//! The head: the newest spans, in memory, grouped by trace.
//!
//! Spans enter the head right after their WAL record is committed, so they are searchable
//! as soon as they are acknowledged. The head has two parts:
//!
//! - `active`: where new spans go;
//! - `frozen`: the previous `active`, being written to a block by a flush. It stays
//!   queryable until the block is in the manifest, so no span is ever invisible. A span may
//!   briefly be both in `frozen` and in a block; readers deduplicate.
//!
//! Only one flush runs at a time, so there is at most one frozen part.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sextant_model::{Span, SpanMemory, TraceId};

/// Spans of one part of the head.
#[derive(Debug, Default)]
pub struct HeadPart {
    /// Spans by trace, in arrival order.
    traces: HashMap<TraceId, Vec<Span>>,
    num_spans: usize,
    size_bytes: usize,
    /// When the first span entered this part; drives age-based flushes.
    first_insert_opt: Option<Instant>,
    /// Traces with a span whose attributes own heap memory ([`sextant_model::SpanMemory`]);
    /// the others' attribute lists are freed without a visit of their elements.
    owning_attributes: HashSet<TraceId>,
}

impl Drop for HeadPart {
    /// Frees the spans trace by trace. Most spans' attributes hold their keys and values
    /// inline; for those, only the list's buffer is freed, and its elements, each a cache miss
    /// away after a flush, are not read again.
    fn drop(&mut self) {
        let owning = std::mem::take(&mut self.owning_attributes);
        for (trace_id, mut spans) in self.traces.drain() {
            if !owning.contains(&trace_id) {
                for span in &mut spans {
                    // SAFETY: shortening a vector is always sound; its elements are then not
                    // dropped, which only leaks what they own, and insert found that they
                    // own nothing.
                    unsafe { span.attributes.set_len(0) };
                }
            }
            drop(spans);
        }
    }
}

impl HeadPart {
    /// Adds spans. Runs of spans of the same trace (a request usually carries each trace's
    /// spans together) are added at once, so a trace's list is sized for them.
    pub fn insert(&mut self, spans: Vec<Span>) {
        self.insert_with(spans, |span, _| span.memory());
    }

    /// [`Self::insert`] with each span's [`Span::memory`] already known, `memory[i]` for
    /// `spans[i]`: a thread that just built the spans measures them while they are in its
    /// cache.
    pub fn insert_measured(&mut self, spans: Vec<Span>, memory: &[SpanMemory]) {
        assert_eq!(spans.len(), memory.len(), "one measure per span");
        self.insert_with(spans, |_, i| memory[i]);
    }

    /// Inserts `spans`, `memory_of(span, i)` giving the memory of `spans[i]`.
    fn insert_with(&mut self, spans: Vec<Span>, mut memory_of: impl FnMut(&Span, usize) -> SpanMemory) {
        if spans.is_empty() {
            return;
        }
        self.first_insert_opt.get_or_insert_with(Instant::now);
        let map_capacity = self.traces.capacity();
        let mut spans = spans.into_iter();
        let mut index = 0;
        while let Some(trace_id) = spans.as_slice().first().map(|span| span.trace_id) {
            let run = spans.as_slice().iter().take_while(|span| span.trace_id == trace_id).count();
            let trace = self.traces.entry(trace_id).or_default();
            let capacity = trace.capacity();
            trace.reserve_exact(run);
            for span in spans.by_ref().take(run) {
                self.num_spans += 1;
                let memory = memory_of(&span, index);
                index += 1;
                if memory.attributes_own_heap {
                    self.owning_attributes.insert(trace_id);
                }
                // The span's struct lives in the trace's list, counted by capacity below.
                self.size_bytes += memory.size_bytes - std::mem::size_of::<Span>();
                trace.push(span);
            }
            self.size_bytes += (trace.capacity() - capacity) * std::mem::size_of::<Span>();
        }
        // The map's table: one (trace ID, list) slot and one control byte per entry.
        let slot = std::mem::size_of::<(TraceId, Vec<Span>)>() + 1;
        self.size_bytes += (self.traces.capacity() - map_capacity) * slot;
    }

    pub fn trace(&self, trace_id: &TraceId) -> Option<&[Span]> {
        self.traces.get(trace_id).map(Vec::as_slice)
    }

    /// Every trace of this part, in no particular order.
    pub fn traces(&self) -> impl Iterator<Item = (&TraceId, &[Span])> {
        self.traces.iter().map(|(id, spans)| (id, spans.as_slice()))
    }

    /// The part's traces in groups of at most `max_spans` spans (a larger trace is a group of
    /// its own), each group a run of traces ordered by their earliest start, oldest first.
    /// A flush writes one block per group, so blocks stay small and narrow in time and a
    /// newest-first search can stop after the newest ones. The groups share the spans evenly
    /// (as far as whole traces allow) rather than leaving a small remainder: a small block
    /// between full ones in time could only be merged with blocks beyond them.
    pub fn groups_by_start(&self, max_spans: usize) -> Vec<Vec<TraceId>> {
        let mut traces: Vec<(u64, TraceId, usize)> = self
            .traces
            .iter()
            .map(|(id, spans)| (spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0), *id, spans.len()))
            .collect();
        traces.sort_unstable();
        let max_spans = max_spans.max(1);
        let share = self.num_spans.div_ceil(self.num_spans.div_ceil(max_spans).max(1)).max(1);
        let mut groups: Vec<Vec<TraceId>> = Vec::new();
        let mut group_spans = 0;
        for (_, id, len) in traces {
            match groups.last_mut() {
                Some(group) if group_spans < share && group_spans + len <= max_spans => group.push(id),
                _ => {
                    groups.push(vec![id]);
                    group_spans = 0;
                }
            }
            group_spans += len;
        }
        groups
    }

    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.traces.values().flatten()
    }

    pub fn num_spans(&self) -> usize {
        self.num_spans
    }

    pub fn num_traces(&self) -> usize {
        self.traces.len()
    }

    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.num_spans == 0
    }

    pub fn age(&self) -> Option<std::time::Duration> {
        self.first_insert_opt.map(|t| t.elapsed())
    }
}

/// The active and frozen parts.
#[derive(Debug, Default)]
pub struct Head {
    active: HeadPart,
    frozen_opt: Option<Arc<HeadPart>>,
}

impl Head {
    pub fn insert(&mut self, spans: Vec<Span>) {
        self.active.insert(spans);
    }

    pub fn insert_measured(&mut self, spans: Vec<Span>, memory: &[SpanMemory]) {
        self.active.insert_measured(spans, memory);
    }

    pub fn active(&self) -> &HeadPart {
        &self.active
    }

    pub fn frozen(&self) -> Option<&Arc<HeadPart>> {
        self.frozen_opt.as_ref()
    }

    /// Both parts, frozen first (older spans first).
    pub fn parts(&self) -> impl Iterator<Item = &HeadPart> {
        self.frozen_opt.as_deref().into_iter().chain(std::iter::once(&self.active))
    }

    /// Moves the active part to frozen and returns it. Fails (returns `None`) when a frozen
    /// part is still there: the caller must finish the previous flush first.
    pub fn freeze(&mut self) -> Option<Arc<HeadPart>> {
        if self.frozen_opt.is_some() {
            return None;
        }
        let part = Arc::new(std::mem::take(&mut self.active));
        self.frozen_opt = Some(part.clone());
        Some(part)
    }

    /// Takes the frozen part out once its spans are in a committed block. The caller drops
    /// it, outside the head's lock: freeing a part's spans takes a while.
    #[must_use = "dropping the part frees its spans; do it outside the head's lock"]
    pub fn release_frozen(&mut self) -> Option<Arc<HeadPart>> {
        self.frozen_opt.take()
    }

    /// Puts a frozen part back in front of the active one after a failed flush, so its
    /// spans are flushed next time.
    pub fn thaw(&mut self) {
        if let Some(frozen) = self.frozen_opt.take() {
            let frozen = Arc::try_unwrap(frozen).unwrap_or_else(|shared| clone_part(&shared));
            let mut newer = std::mem::replace(&mut self.active, frozen);
            let first_insert_opt = self.active.first_insert_opt;
            for (_, spans) in newer.traces.drain() {
                self.active.insert(spans);
            }
            self.active.first_insert_opt = first_insert_opt;
        }
    }

    pub fn num_spans(&self) -> usize {
        self.parts().map(HeadPart::num_spans).sum()
    }

    pub fn size_bytes(&self) -> usize {
        self.parts().map(HeadPart::size_bytes).sum()
    }

    pub fn num_traces(&self) -> usize {
        self.parts().map(HeadPart::num_traces).sum()
    }
}

fn clone_part(part: &HeadPart) -> HeadPart {
    HeadPart {
        traces: part.traces.clone(),
        num_spans: part.num_spans,
        size_bytes: part.size_bytes,
        first_insert_opt: part.first_insert_opt,
        owning_attributes: part.owning_attributes.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::SpanId;

    fn span(trace: u8, span: u8) -> Span {
        Span::new(TraceId([trace; 16]), SpanId([span; 8]), "op", 10, 20)
    }

    #[test]
    fn groups_spans_by_trace() {
        let mut head = Head::default();
        head.insert(vec![span(1, 1), span(2, 1), span(1, 2)]);
        assert_eq!(head.num_spans(), 3);
        assert_eq!(head.num_traces(), 2);
        assert_eq!(head.active().trace(&TraceId([1; 16])).unwrap().len(), 2);
    }

    #[test]
    fn groups_are_bounded_and_ordered_by_trace_start() {
        let mut part = HeadPart::default();
        // Trace t starts at 100 - t: trace 9 is the oldest; trace 5 has 4 spans.
        for t in 1..=9u8 {
            let count = if t == 5 { 4 } else { 1 };
            part.insert(
                (0..count)
                    .map(|s| Span::new(TraceId([t; 16]), SpanId([s + 1; 8]), "op", 100 - t as u64 + s as u64, 200))
                    .collect(),
            );
        }
        let groups = part.groups_by_start(3);
        let ids = |group: &[TraceId]| group.iter().map(|id| id.0[0]).collect::<Vec<_>>();
        assert_eq!(
            groups.iter().map(|g| ids(g)).collect::<Vec<_>>(),
            vec![vec![9, 8, 7], vec![6], vec![5], vec![4, 3, 2], vec![1]]
        );
    }

    #[test]
    fn groups_share_the_spans_evenly() {
        let mut part = HeadPart::default();
        for t in 1..=8u8 {
            part.insert(vec![Span::new(TraceId([t; 16]), SpanId([1; 8]), "op", t as u64, 200)]);
        }
        let sizes = |max| part.groups_by_start(max).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(6), vec![4, 4], "not 6 and 2");
        assert_eq!(sizes(3), vec![3, 3, 2]);
        assert_eq!(sizes(8), vec![8]);
    }

    /// Replay measures spans on its decoding threads; the head must count them as if it had
    /// measured them itself, including which traces own heap memory in their attributes.
    #[test]
    fn measured_insert_counts_as_insert() {
        let mut spans = vec![span(1, 1), span(2, 1), span(2, 2)];
        spans[0].attributes.push(sextant_model::KeyValue::string("url", "x".repeat(100)));
        spans[1].attributes.push(sextant_model::KeyValue::string("k", "v"));
        let memory: Vec<SpanMemory> = spans.iter().map(Span::memory).collect();
        let (mut measured, mut plain) = (HeadPart::default(), HeadPart::default());
        measured.insert_measured(spans.clone(), &memory);
        plain.insert(spans);
        assert_eq!(measured.size_bytes(), plain.size_bytes());
        assert_eq!(measured.owning_attributes, plain.owning_attributes);
        assert_eq!(measured.owning_attributes, HashSet::from([TraceId([1; 16])]));
        assert_eq!(measured.num_spans(), 3);
    }

    #[test]
    fn frozen_part_stays_visible_until_released() {
        let mut head = Head::default();
        head.insert(vec![span(1, 1)]);
        let frozen = head.freeze().unwrap();
        assert!(head.freeze().is_none(), "a second freeze must wait for the first flush");
        head.insert(vec![span(1, 2)]);
        assert_eq!(frozen.num_spans(), 1);
        assert_eq!(head.num_spans(), 2);
        let released = head.release_frozen().expect("the frozen part");
        assert!(Arc::ptr_eq(&released, &frozen));
        assert_eq!(head.num_spans(), 1);
        assert!(head.release_frozen().is_none());
    }

    #[test]
    fn thaw_keeps_every_span_after_a_failed_flush() {
        let mut head = Head::default();
        head.insert(vec![span(1, 1), span(2, 1)]);
        let frozen = head.freeze().unwrap();
        head.insert(vec![span(1, 2)]);
        drop(frozen);
        head.thaw();
        assert!(head.frozen().is_none());
        assert_eq!(head.num_spans(), 3);
        assert_eq!(head.active().trace(&TraceId([1; 16])).unwrap().len(), 2);
    }
}
