//! Service dependencies for Jaeger's `/api/dependencies` and Zipkin's `/api/v2/dependencies`,
//! over a window `[from, to]`.
//!
//! With the derived metrics on (`metrics.enabled`, the default) they come from the service
//! graph ([`graph_dependencies`]), held in memory and persisted for `storage.retention`: one
//! link per client → server pair of services with the calls of its edges (connection types
//! summed: direct, messaging, database, virtual node), an error when the call failed (either
//! span has error status). Calls to a node that sent no spans (a database, a `peer.service`)
//! are links to it, as Zipkin links to an uninstrumented remote service; the root client's
//! edges (`user` → the service of a root span) are left out, since neither Jaeger nor
//! Zipkin draws a caller from outside the traced system; so is the overflow edge. A call
//! counts in the 15 s interval its later span ended in: the window is widened to whole
//! intervals, as every service graph range is.
//!
//! With them off, [`recent_dependencies`] counts over a bounded sample of traces, the newest
//! [`MAX_TRACES`] with a span starting in the window: one call from the parent span's service
//! to the child span's service for every span whose parent is in the same trace and belongs
//! to another service (as Jaeger's in-memory store counts them), an error when the child span
//! has error status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sextant_metrics::EdgeSummary;
use sextant_model::{Span, SpanId, TraceId};
use sextant_storage::engine::{Engine, EngineError};
use sextant_storage::search::SearchQuery;

use super::ApiState;
use crate::derived::DerivedMetrics;

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
    /// Failed calls: from the service graph, calls where either span has error status; from
    /// traces, calls whose child span has error status.
    pub error_count: u64,
}

/// The dependencies over `[from, to]` (unix nanoseconds), sorted by parent then child: from
/// the service graph when the derived metrics are on, else from recent traces.
pub async fn dependencies(state: &ApiState, from: u64, to: u64) -> Result<Vec<DependencyLink>, EngineError> {
    match &state.derived_opt {
        Some(derived) => Ok(graph_dependencies(derived, from, to).await),
        None => recent_dependencies(&state.engine, from, to).await,
    }
}

/// The service graph's calls over `[from, to]` as links, in memory and on disk.
pub async fn graph_dependencies(derived: &DerivedMetrics, from: u64, to: u64) -> Vec<DependencyLink> {
    let to_exclusive = to.saturating_add(1);
    if from >= to_exclusive {
        return Vec::new();
    }
    derived
        .read(move |_, graph| {
            let edges = graph.edges_in_range(from, to_exclusive).expect("the range is not empty");
            links_from_edges(&edges, &graph.config().root_client_node)
        })
        .await
}

/// One link per (client, server) of `edges`, the root client's and the overflow edge left
/// out, sorted by parent then child.
pub fn links_from_edges(edges: &[EdgeSummary], root_client_node: &str) -> Vec<DependencyLink> {
    let mut counts: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for edge in edges {
        let labels = &edge.labels;
        let from_root =
            labels.client == root_client_node && labels.connection_type == sextant_metrics::ConnectionType::VirtualNode;
        if labels.overflow || from_root {
            continue;
        }
        let (calls, errors) = counts.entry((&labels.client, &labels.server)).or_default();
        *calls += edge.calls;
        *errors += edge.failed;
    }
    counts
        .into_iter()
        .map(|((parent, child), (call_count, error_count))| DependencyLink {
            parent: parent.to_string(),
            child: child.to_string(),
            call_count,
            error_count,
        })
        .collect()
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

    fn with_kind(mut span: Span, kind: sextant_model::SpanKind) -> Span {
        span.kind = kind;
        span
    }

    #[test]
    fn links_from_a_known_service_graph() {
        use sextant_metrics::{ServiceGraph, ServiceGraphConfig};
        use sextant_model::SpanKind::{Client, Server};
        let mut graph = ServiceGraph::new(ServiceGraphConfig { wait_seconds: 0, ..Default::default() }).unwrap();
        let mut failed = with_kind(span(1, 3, Some(2), "cart"), Server);
        failed.status_code = sextant_model::StatusCode::Error;
        let mut redis = with_kind(span(1, 4, Some(3), "cart"), Client);
        redis.attributes.push(KeyValue::string("db.system.name", "redis"));
        graph.observe(
            &[
                with_kind(span(1, 1, None, "gateway"), Server), // user → gateway: left out
                with_kind(span(1, 2, Some(1), "gateway"), Client),
                failed,
                redis,
                with_kind(span(2, 2, Some(1), "gateway"), Client),
                with_kind(span(2, 3, Some(2), "cart"), Server),
            ],
            0,
        );
        graph.expire(1); // the redis client becomes a call to the database
        let edges = graph.edges_in_range(0, 15_000_000_000).unwrap();
        assert_eq!(edges.len(), 3, "user → gateway, gateway → cart, cart → redis");
        let links = links_from_edges(&edges, "user");
        let got: Vec<(&str, &str, u64, u64)> =
            links.iter().map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count, l.error_count)).collect();
        assert_eq!(got, vec![("cart", "redis", 1, 0), ("gateway", "cart", 2, 1)]);
    }
}
