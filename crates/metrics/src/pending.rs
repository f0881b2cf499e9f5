//! The store of unpaired halves: client and producer spans waiting for their server or
//! consumer span (upstream halves), and server and consumer spans waiting for their client
//! or producer span (downstream halves), each until a deadline on the caller's clock.
//!
//! Both sides are keyed by the upstream span's identity, the [`PairKey`]: an upstream half
//! by its own trace and span ID, a downstream half by its parent's (same trace) or by the
//! span a link points to (any trace).
//!
//! Invariants:
//! - each side holds at most one half per key; a second half for the same side and key
//!   replaces the first, which is handed back to the caller;
//! - `deadlines` holds exactly one `(deadline, seq) → (side, key)` entry per stored half, so
//!   expiry walks halves in deadline order (insertion order among equal deadlines);
//! - at most `max_entries` halves in all: inserting into a full store first evicts the half
//!   with the earliest deadline and hands it back.

use std::collections::BTreeMap;

use ahash::AHashMap;
use sextant_model::{Span, SpanId, SpanKind, TraceId};

use crate::service_graph::ConnectionType;

/// The identity of the upstream (client or producer) span of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PairKey {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
}

/// Which half of a pair is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// A client or producer span.
    Upstream,
    /// A server or consumer span.
    Downstream,
}

/// What the service graph needs of one span of a pair, borrowed from the span.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HalfView<'a> {
    pub(crate) service: &'a str,
    pub(crate) kind: SpanKind,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) end_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) is_error: bool,
}

impl HalfView<'_> {
    pub(crate) fn of(span: &Span) -> HalfView<'_> {
        HalfView {
            service: span.service_name(),
            kind: span.kind,
            trace_id: span.trace_id,
            span_id: span.span_id,
            end_unix_nanos: span.end_unix_nanos,
            duration_nanos: span.duration_nanos(),
            is_error: span.is_error(),
        }
    }
}

/// A waiting half, owned.
#[derive(Clone, Debug)]
pub(crate) struct Half {
    pub(crate) service: String,
    pub(crate) kind: SpanKind,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) end_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) is_error: bool,
    /// For an upstream half: the virtual node it calls if no downstream half comes.
    pub(crate) virtual_node_opt: Option<(String, ConnectionType)>,
}

impl Half {
    pub(crate) fn owned(view: HalfView<'_>, virtual_node_opt: Option<(String, ConnectionType)>) -> Half {
        Half {
            service: view.service.to_string(),
            kind: view.kind,
            trace_id: view.trace_id,
            span_id: view.span_id,
            end_unix_nanos: view.end_unix_nanos,
            duration_nanos: view.duration_nanos,
            is_error: view.is_error,
            virtual_node_opt,
        }
    }

    pub(crate) fn view(&self) -> HalfView<'_> {
        HalfView {
            service: &self.service,
            kind: self.kind,
            trace_id: self.trace_id,
            span_id: self.span_id,
            end_unix_nanos: self.end_unix_nanos,
            duration_nanos: self.duration_nanos,
            is_error: self.is_error,
        }
    }
}

#[derive(Debug)]
struct Entry {
    half: Half,
    deadline_unix_nanos: u64,
    seq: u64,
}

/// What an insertion displaced.
#[derive(Debug, Default)]
pub(crate) struct Displaced {
    /// The half of the same side and key that was waiting (a duplicate or a retry).
    pub(crate) replaced_opt: Option<Half>,
    /// The half evicted to make room, with its side.
    pub(crate) evicted_opt: Option<(Side, Half)>,
}

#[derive(Debug)]
pub(crate) struct PendingStore {
    upstream: AHashMap<PairKey, Entry>,
    downstream: AHashMap<PairKey, Entry>,
    deadlines: BTreeMap<(u64, u64), (Side, PairKey)>,
    next_seq: u64,
    max_entries: usize,
}

impl PendingStore {
    pub(crate) fn new(max_entries: usize) -> PendingStore {
        PendingStore {
            upstream: AHashMap::new(),
            downstream: AHashMap::new(),
            deadlines: BTreeMap::new(),
            next_seq: 0,
            max_entries,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    fn side_mut(&mut self, side: Side) -> &mut AHashMap<PairKey, Entry> {
        match side {
            Side::Upstream => &mut self.upstream,
            Side::Downstream => &mut self.downstream,
        }
    }

    /// Removes and returns the half waiting on `side` under `key`, if `accept` takes it.
    pub(crate) fn take(&mut self, side: Side, key: PairKey, accept: impl Fn(&Half) -> bool) -> Option<Half> {
        let map = self.side_mut(side);
        if !accept(&map.get(&key)?.half) {
            return None;
        }
        let entry = map.remove(&key).expect("just found");
        self.deadlines.remove(&(entry.deadline_unix_nanos, entry.seq));
        Some(entry.half)
    }

    /// Stores a half until `deadline_unix_nanos`, handing back what it displaced.
    pub(crate) fn insert(&mut self, side: Side, key: PairKey, half: Half, deadline_unix_nanos: u64) -> Displaced {
        let mut displaced = Displaced { replaced_opt: self.take(side, key, |_| true), evicted_opt: None };
        if self.len() >= self.max_entries {
            displaced.evicted_opt = self.pop_first();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.deadlines.insert((deadline_unix_nanos, seq), (side, key));
        self.side_mut(side).insert(key, Entry { half, deadline_unix_nanos, seq });
        displaced
    }

    /// Removes and returns the half with the earliest deadline if that deadline is at or
    /// before `now_unix_nanos`.
    pub(crate) fn pop_expired(&mut self, now_unix_nanos: u64) -> Option<(Side, Half)> {
        let ((deadline_unix_nanos, _), _) = self.deadlines.first_key_value()?;
        if *deadline_unix_nanos > now_unix_nanos {
            return None;
        }
        self.pop_first()
    }

    fn pop_first(&mut self) -> Option<(Side, Half)> {
        let (_, (side, key)) = self.deadlines.pop_first()?;
        let entry = self.side_mut(side).remove(&key).expect("every deadline has its half");
        Some((side, entry.half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{span_id, trace_id};

    fn half(service: &str, kind: SpanKind) -> Half {
        Half {
            service: service.to_string(),
            kind,
            trace_id: trace_id(1),
            span_id: span_id(1),
            end_unix_nanos: 0,
            duration_nanos: 0,
            is_error: false,
            virtual_node_opt: None,
        }
    }

    fn key(n: u8) -> PairKey {
        PairKey { trace_id: trace_id(1), span_id: span_id(n) }
    }

    #[test]
    fn halves_wait_until_their_deadline_in_deadline_order() {
        let mut store = PendingStore::new(10);
        store.insert(Side::Upstream, key(1), half("a", SpanKind::Client), 30);
        store.insert(Side::Downstream, key(2), half("b", SpanKind::Server), 10);
        store.insert(Side::Upstream, key(3), half("c", SpanKind::Client), 20);
        assert!(store.pop_expired(9).is_none());
        let expired: Vec<_> = std::iter::from_fn(|| store.pop_expired(25)).map(|(s, h)| (s, h.service)).collect();
        assert_eq!(expired, [(Side::Downstream, "b".to_string()), (Side::Upstream, "c".to_string())]);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn take_only_removes_an_accepted_half_of_the_asked_side() {
        let mut store = PendingStore::new(10);
        store.insert(Side::Upstream, key(1), half("a", SpanKind::Producer), 30);
        assert!(store.take(Side::Downstream, key(1), |_| true).is_none());
        assert!(store.take(Side::Upstream, key(1), |h| h.kind == SpanKind::Client).is_none());
        assert_eq!(store.take(Side::Upstream, key(1), |h| h.kind == SpanKind::Producer).unwrap().service, "a");
        assert_eq!(store.len(), 0);
        assert!(store.pop_expired(u64::MAX).is_none(), "its deadline went with it");
    }

    #[test]
    fn a_full_store_evicts_the_earliest_deadline_and_a_same_key_half_replaces() {
        let mut store = PendingStore::new(2);
        assert!(store.insert(Side::Upstream, key(1), half("a", SpanKind::Client), 10).evicted_opt.is_none());
        store.insert(Side::Upstream, key(2), half("b", SpanKind::Client), 20);
        let displaced = store.insert(Side::Upstream, key(3), half("c", SpanKind::Client), 30);
        let (side, evicted) = displaced.evicted_opt.unwrap();
        assert_eq!((side, evicted.service.as_str()), (Side::Upstream, "a"));
        let displaced = store.insert(Side::Upstream, key(3), half("c2", SpanKind::Client), 40);
        assert_eq!(displaced.replaced_opt.unwrap().service, "c");
        assert!(displaced.evicted_opt.is_none(), "replacing makes its own room");
        assert_eq!(store.len(), 2);
        let expired: Vec<_> = std::iter::from_fn(|| store.pop_expired(100)).map(|(_, h)| h.service).collect();
        assert_eq!(expired, ["b", "c2"]);
    }
}
