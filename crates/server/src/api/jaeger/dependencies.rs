//! Service dependencies computed from traces: one call from the parent span's service to the
//! child span's service for every span whose parent is in the same trace and belongs to another
//! service (as Jaeger's in-memory store counts them).

use std::collections::{BTreeMap, HashMap};

use sextant_model::{Span, SpanId};

/// Calls from one service to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// Counts parent → child service calls, one trace at a time.
#[derive(Debug, Default)]
pub struct DependencyCounter {
    counts: BTreeMap<(String, String), u64>,
}

impl DependencyCounter {
    /// Adds the calls within one trace's spans.
    pub fn add_trace(&mut self, spans: &[Span]) {
        let mut by_id: HashMap<SpanId, &Span> = HashMap::with_capacity(spans.len());
        for span in spans {
            by_id.entry(span.span_id).or_insert(span);
        }
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for span in spans {
            let Some(parent) = span.parent_span_id.and_then(|id| by_id.get(&id)) else { continue };
            let (from, to) = (parent.service_name(), span.service_name());
            if from != to {
                *counts.entry((from, to)).or_default() += 1;
            }
        }
        for ((from, to), count) in counts {
            *self.counts.entry((from.to_string(), to.to_string())).or_default() += count;
        }
    }

    /// The links, sorted by parent then child.
    pub fn into_links(self) -> Vec<DependencyLink> {
        self.counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink { parent, child, call_count })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_model::{KeyValue, Resource, TraceId};
    use std::sync::Arc;

    fn span(trace: u8, id: u8, parent: Option<u8>, service: &str) -> Span {
        let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), "op", 0, 1);
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.resource =
            Arc::new(Resource { attributes: vec![KeyValue::string("service.name", service)], ..Default::default() });
        span
    }

    #[test]
    fn counts_cross_service_parent_child_pairs() {
        let first = vec![
            span(1, 1, None, "gateway"),
            span(1, 2, Some(1), "cart"),
            span(1, 3, Some(2), "cart"), // same service: not a dependency
            span(1, 4, Some(3), "db"),
            span(1, 5, Some(9), "orphan"), // parent not in the trace
        ];
        let second = vec![span(2, 1, None, "gateway"), span(2, 2, Some(1), "cart")];
        let mut counter = DependencyCounter::default();
        counter.add_trace(&first);
        counter.add_trace(&second);
        let links = counter.into_links();
        let got: Vec<(&str, &str, u64)> =
            links.iter().map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count)).collect();
        assert_eq!(got, vec![("cart", "db", 1), ("gateway", "cart", 2)]);
    }
}
