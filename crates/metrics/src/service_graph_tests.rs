//! Tests of the service graph: pairing across batches and traces, virtual nodes, expiry,
//! and the bounds on pending halves and edges.

use sextant_model::SpanKind::{Client, Consumer, Internal, Producer, Server};

use super::*;
use crate::testing::*;

/// The caller's clock, unrelated to span times on purpose.
const NOW: u64 = 5_000 * SECOND;

fn graph(config: ServiceGraphConfig) -> ServiceGraph {
    ServiceGraph::new(config).unwrap()
}

/// (client, server, connection type, calls, failed) of every edge, in listing order.
fn edge_calls(graph: &ServiceGraph) -> Vec<(String, String, &'static str, u64, u64)> {
    graph
        .edges()
        .iter()
        .map(|(l, s)| (l.client.clone(), l.server.clone(), l.connection_type.label_value(), s.calls(), s.failed()))
        .collect()
}

fn edge(
    client: &str,
    server: &str,
    connection_type: &'static str,
    calls: u64,
    failed: u64,
) -> (String, String, &'static str, u64, u64) {
    (client.to_string(), server.to_string(), connection_type, calls, failed)
}

fn stats<'a>(graph: &'a ServiceGraph, client: &str, server: &str) -> &'a EdgeStats {
    graph.edges().into_iter().find(|(l, _)| l.client == client && l.server == server).unwrap().1
}

#[test]
fn builds_a_known_topology_from_halves_in_any_batch() {
    let mut g = graph(ServiceGraphConfig::default());
    g.observe(
        &[
            // user → frontend: a root server span.
            span("frontend", "GET /checkout", Server, (1, 1), T0 + 200 * MS, 190 * MS),
            // frontend → cart over gRPC, both halves in this batch, the server's first.
            with_parent(span("cart", "cart.Get", Server, (1, 3), T0 + 150 * MS, 40 * MS), 2),
            with_parent(span("frontend", "cart.Get", Client, (1, 2), T0 + 160 * MS, 50 * MS), 1),
            // cart → redis: a client span no server span answers.
            with_attribute(
                with_parent(span("cart", "HGET", Client, (1, 4), T0 + 140 * MS, 2 * MS), 3),
                "db.system.name",
                "redis",
            ),
            // frontend → cart again: the client half now, the server half in the next batch.
            with_parent(span("frontend", "cart.Add", Client, (5, 2), T0 + SECOND, 60 * MS), 1),
            // frontend → cart a third time: the server half now, the client half later.
            with_parent(span("cart", "cart.Add", Server, (6, 3), T0 + 2 * SECOND, 40 * MS), 2),
            // orders publishes to kafka; billing consumes it in another trace, linked, later.
            with_attribute(
                with_parent(span("orders", "publish", Producer, (7, 1), T0 + 3 * SECOND, 5 * MS), 9),
                "messaging.system",
                "kafka",
            ),
            // A server span whose client never comes and that names nothing.
            with_parent(span("cart", "cart.Get", Server, (8, 3), T0 + 4 * SECOND, 40 * MS), 2),
            // Internal spans are not part of the graph.
            span("cart", "compute", Internal, (1, 5), T0, MS),
        ],
        NOW,
    );
    assert_eq!(g.pending_spans(), 5);
    g.observe(
        &[
            with_parent(span("cart", "cart.Add", Server, (5, 3), T0 + SECOND - 5 * MS, 40 * MS), 2),
            with_parent(span("frontend", "cart.Add", Client, (6, 2), T0 + 2 * SECOND + 5 * MS, 50 * MS), 1),
            with_error(with_link(span("billing", "process", Consumer, (9, 1), T0 + 5 * SECOND, 30 * MS), (7, 1))),
        ],
        NOW + SECOND,
    );
    assert_eq!(g.pending_spans(), 2, "the redis client and the orphan server wait");
    assert_eq!(
        edge_calls(&g),
        [
            edge("frontend", "cart", "", 3, 0),
            edge("orders", "billing", "messaging_system", 1, 1),
            edge("user", "frontend", "virtual_node", 1, 0),
        ]
    );

    g.expire(NOW + 10 * SECOND - 1);
    assert_eq!(g.pending_spans(), 2, "halves wait wait_seconds from when they arrived");
    g.expire(NOW + 10 * SECOND);
    assert_eq!(g.pending_spans(), 0);
    assert_eq!(
        edge_calls(&g),
        [
            edge("cart", "redis", "database", 1, 0),
            edge("frontend", "cart", "", 3, 0),
            edge("orders", "billing", "messaging_system", 1, 1),
            edge("user", "frontend", "virtual_node", 1, 0),
        ]
    );
    assert_eq!(
        g.counters(),
        ServiceGraphCounters {
            paired: 4,
            virtual_node_calls: 1,
            root_calls: 1,
            expired_unpaired: 1,
            ..Default::default()
        }
    );

    // Latencies: clients 50, 60 and 50 ms and servers 40 ms each, all in (32, 64] ms.
    let cart = stats(&g, "frontend", "cart");
    assert_eq!(cart.client_latency().bucket_counts()[5], 3);
    assert_eq!(cart.server_latency().bucket_counts()[5], 3);
    assert_eq!(cart.server_latency().sum_nanos(), u128::from(120 * MS));
    assert_eq!(cart.client_latency().sum_nanos(), u128::from(160 * MS));
    // The virtual database's side stands in with the client's 2 ms.
    let redis = stats(&g, "cart", "redis");
    assert_eq!((redis.client_latency().bucket_counts()[0], redis.server_latency().bucket_counts()[0]), (1, 1));
    // Exemplars point at each side's own span, in its own trace.
    let billing = stats(&g, "orders", "billing");
    let consumer = billing.server_latency().exemplar(4).unwrap(); // 30 ms in (16, 32] ms
    assert_eq!((consumer.trace_id, consumer.span_id), (trace_id(9), span_id(1)));
    let producer = billing.client_latency().exemplar(2).unwrap(); // 5 ms in (4, 8] ms
    assert_eq!((producer.trace_id, producer.span_id), (trace_id(7), span_id(1)));

    // Every call ended in the interval starting at T0; the edges are there too.
    assert_eq!(g.interval_starts(), [T0]);
    assert_eq!(g.interval_edges(T0).iter().map(|(_, s)| s.calls()).sum::<u64>(), 6);
}

#[test]
fn a_batch_consumer_makes_one_call_per_linked_producer() {
    let mut g = graph(ServiceGraphConfig::default());
    g.observe(&[span("orders", "publish", Producer, (1, 1), T0, 5 * MS)], NOW);
    let consumer = with_parent(span("billing", "process", Consumer, (3, 2), T0 + SECOND, 30 * MS), 7);
    let consumer = with_link(with_link(with_link(consumer, (1, 1)), (2, 1)), (1, 1));
    g.observe(&[consumer], NOW);
    assert_eq!(edge_calls(&g), [edge("orders", "billing", "messaging_system", 1, 0)]);
    assert_eq!(g.pending_spans(), 2, "waiting for producer (2, 1) and for the parent");
    g.observe(&[span("orders", "publish", Producer, (2, 1), T0, 5 * MS)], NOW + SECOND);
    assert_eq!(edge_calls(&g), [edge("orders", "billing", "messaging_system", 2, 0)]);
    g.expire(NOW + 10 * SECOND);
    assert_eq!(g.counters().expired_unpaired, 1, "the half waiting on its (internal) parent");
    assert_eq!(g.counters().paired, 2);
}

#[test]
fn kinds_pair_only_with_their_counterpart() {
    let mut g = graph(ServiceGraphConfig { root_client_node: String::new(), ..Default::default() });
    g.observe(
        &[
            span("a", "call", Client, (1, 1), T0, MS),
            // A consumer child of a client span is not its server.
            with_parent(span("b", "recv", Consumer, (1, 2), T0, MS), 1),
            // A root span makes no edge without a root client node.
            span("c", "GET", Server, (2, 1), T0, MS),
        ],
        NOW,
    );
    assert!(g.edges().is_empty());
    assert_eq!(g.pending_spans(), 2);
    assert_eq!(g.counters().root_calls, 0);
}

#[test]
fn a_full_pending_store_expires_the_oldest_half_early() {
    let mut g = graph(ServiceGraphConfig { max_pending_spans: 2, ..Default::default() });
    let client = |span_id: u8| span("frontend", "call", Client, (1, span_id), T0, 10 * MS);
    g.observe(&[with_attribute(client(1), "peer.service", "payments"), client(2)], NOW);
    g.observe(&[client(3)], NOW + SECOND);
    assert_eq!(g.pending_spans(), 2);
    assert_eq!(edge_calls(&g), [edge("frontend", "payments", "virtual_node", 1, 0)]);
    g.observe(&[client(4)], NOW + 2 * SECOND);
    assert_eq!(
        g.counters(),
        ServiceGraphCounters { virtual_node_calls: 1, expired_unpaired: 1, evicted: 2, ..Default::default() }
    );
    // A server span arriving for an evicted client waits in vain.
    g.observe(&[with_parent(span("cart", "call", Server, (1, 9), T0, 5 * MS), 2)], NOW + 3 * SECOND);
    assert_eq!(g.counters().paired, 0);
}

#[test]
fn a_retried_half_replaces_the_waiting_one() {
    let mut g = graph(ServiceGraphConfig::default());
    let server = with_parent(span("cart", "GET", Server, (1, 2), T0, 5 * MS), 1);
    g.observe(&[server.clone(), server], NOW);
    assert_eq!(g.pending_spans(), 1);
    assert_eq!(g.counters().replaced, 1);
    g.observe(&[span("frontend", "GET", Client, (1, 1), T0, 10 * MS)], NOW);
    assert_eq!(edge_calls(&g), [edge("frontend", "cart", "", 1, 0)]);
}

#[test]
fn edges_beyond_max_edges_go_to_the_overflow_edge() {
    let mut g = graph(ServiceGraphConfig { max_edges: 1, ..Default::default() });
    let pair = |trace: u8, client: &str, server: &str, end: u64| {
        [
            span(client, "call", Client, (trace, 1), end, 10 * MS),
            with_error(with_parent(span(server, "call", Server, (trace, 2), end, 5 * MS), 1)),
        ]
    };
    g.observe(&pair(1, "a", "b", T0), NOW);
    g.observe(&pair(2, "c", "d", T0 + 60 * SECOND), NOW);
    g.observe(&pair(3, "a", "b", T0), NOW);
    let edges = g.edges();
    assert_eq!(g.num_edges(), 1);
    assert_eq!(edges.len(), 2);
    assert_eq!((edges[0].0.client.as_str(), edges[0].1.calls(), edges[0].1.failed()), ("a", 2, 2));
    assert!(edges[1].0.overflow);
    assert_eq!(edges[1].1.calls(), 1);
    assert_eq!(g.counters().overflowed_calls, 1);

    // Once its intervals are gone, the stale edge makes room again.
    assert_eq!(g.remove_stale_edges(T0 + SECOND), 0, "an interval still holds it");
    assert_eq!(g.take_intervals_before(T0 + 60 * SECOND).len(), 1);
    assert_eq!(g.remove_stale_edges(T0 + SECOND), 1);
    g.observe(&pair(4, "c", "d", T0 + 61 * SECOND), NOW);
    assert_eq!(edge_calls(&g), [edge("c", "d", "", 1, 1), edge("", "", "", 1, 1)]);
}
