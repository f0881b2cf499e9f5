//! Service dependencies computed from traces, for Jaeger's `/api/dependencies` and Zipkin's
//! `/api/v2/dependencies`: one call from the parent span's service to the child span's service
//! for every span whose parent is in the same trace and belongs to another service (as Jaeger's
//! in-memory store counts them); an error when the child span has error status.
//!
//! The service graph aggregator (`crate::derived`) keeps only its last minutes, in memory, so
//! these answers do not use it: [`recent_dependencies`] counts over a bounded sample, the
//! newest [`MAX_TRACES`] traces with a span starting in the window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sextant_model::{Span, SpanId, TraceId};
use sextant_storage::engine::{Engine, EngineError};
use sextant_storage::search::SearchQuery;

/// The most traces a dependency answer reads (the newest in its window).
pub const MAX_TRACES: usize = 1_000;
/// Traces read at once (each block is read once for all of them).
const FETCH_TRACES: usize = 100;

/// Calls from one service to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    /// Calls whose child span has error status.
    pub error_count: u64,
}

/// The dependencies among the newest [`MAX_TRACES`] traces with a span starting in
/// `[from, to]` (unix nanoseconds), sorted by parent then child.
pub async fn recent_dependencies(engine: &Arc<Engine>, from: u64, to: u64) -> Result<Vec<DependencyLink>, EngineError> {
    let query = SearchQuery {
        start_unix_nanos: Some(from),
        end_unix_nanos: Some(to),
        limit: MAX_TRACES,
        ..SearchQuery::default()
    };
    let ids: Vec<TraceId> = engine.search(&query).await?.traces.iter().map(|t| t.trace_id).collect();
    let mut counter = DependencyCounter::default();
    for chunk in ids.chunks(FETCH_TRACES) {
        for spans in engine.traces(chunk).await? {
            counter.add_trace(&spans);
        }
    }
    Ok(counter.into_links())
}

/// Counts parent → child service calls (and errors), one trace at a time.
#[derive(Debug, Default)]
pub struct DependencyCounter {
    counts: BTreeMap<(String, String), (u64, u64)>,
}

impl DependencyCounter {
    /// Adds the calls within one trace's spans.
    pub fn add_trace(&mut self, spans: &[Span]) {
        let mut by_id: HashMap<SpanId, &Span> = HashMap::with_capacity(spans.len());
        for span in spans {
            by_id.entry(span.span_id).or_insert(span);
        }
        let mut counts: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for span in spans {
            let Some(parent) = span.parent_span_id.and_then(|id| by_id.get(&id)) else { continue };
            let (from, to) = (parent.service_name(), span.service_name());
            if from != to {
                let (calls, errors) = counts.entry((from, to)).or_default();
                *calls += 1;
                *errors += u64::from(span.is_error());
            }
        }
        for ((from, to), (calls, errors)) in counts {
            let (all_calls, all_errors) = self.counts.entry((from.to_string(), to.to_string())).or_default();
            *all_calls += calls;
            *all_errors += errors;
        }
    }

    /// The links, sorted by parent then child.
    pub fn into_links(self) -> Vec<DependencyLink> {
        self.counts
            .into_iter()
            .map(|((parent, child), (call_count, error_count))| DependencyLink {
                parent,
                child,
                call_count,
                error_count,
            })
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
        let mut failed = span(1, 2, Some(1), "cart");
        failed.status_code = sextant_model::StatusCode::Error;
        let first = vec![
            span(1, 1, None, "gateway"),
            failed,
            span(1, 3, Some(2), "cart"), // same service: not a dependency
            span(1, 4, Some(3), "db"),
            span(1, 5, Some(9), "orphan"), // parent not in the trace
        ];
        let second = vec![span(2, 1, None, "gateway"), span(2, 2, Some(1), "cart")];
        let mut counter = DependencyCounter::default();
        counter.add_trace(&first);
        counter.add_trace(&second);
        let links = counter.into_links();
        let got: Vec<(&str, &str, u64, u64)> =
            links.iter().map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count, l.error_count)).collect();
        assert_eq!(got, vec![("cart", "db", 1, 0), ("gateway", "cart", 2, 1)]);
    }
}
