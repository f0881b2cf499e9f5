//! Tests of the interval codec: exact round trips of both aggregators' intervals, and every
//! kind of damage refused.

use sextant_model::SpanKind::{Client, Server};

use super::*;
use crate::testing::*;
use crate::{ServiceGraph, SpanMetrics};

fn span_metrics_interval() -> (SpanMetricsInterval, Shape) {
    let config = SpanMetricsConfig { dimensions: vec!["http.route".to_string()], ..Default::default() };
    let mut m = SpanMetrics::new(config.clone()).unwrap();
    m.observe(&[
        with_attribute(span("cart", "GET /cart", Server, (1, 1), T0 + SECOND, 3 * MS), "http.route", "/cart"),
        with_attribute(span("cart", "GET /cart", Server, (2, 2), T0 + 2 * SECOND, 100 * MS), "http.route", "/cart"),
        with_error(span("cart", "GET /cart", Server, (3, 3), T0 + 3 * SECOND, 20 * SECOND)),
        span("shop", "checkout", Client, (4, 4), T0 + 14 * SECOND, MS),
    ]);
    let mut taken = m.take_all_intervals();
    assert_eq!(taken.len(), 1);
    (taken.remove(0), Shape::of_span_metrics(&config))
}

#[test]
fn span_metrics_intervals_round_trip_exactly() {
    let (interval, shape) = span_metrics_interval();
    assert_eq!(interval.entries.len(), 3);
    let bytes = encode_span_metrics(&interval, &shape);
    assert_eq!(&bytes[..4], b"SXMI");
    let decoded = decode_span_metrics(&bytes, &shape).unwrap();
    assert_eq!(decoded, interval, "labels, counts, sums and exemplars come back unchanged");
    let failed = decoded.entries.iter().find(|(l, _)| l.status_code == StatusCode::Error).unwrap();
    assert_eq!((failed.1.calls(), failed.1.errors()), (1, 1));
    assert_eq!(failed.0.dimensions, [""]);
}

#[test]
fn service_graph_intervals_round_trip_exactly() {
    let config = ServiceGraphConfig::default();
    let mut g = ServiceGraph::new(config.clone()).unwrap();
    g.observe(
        &[
            span("frontend", "GET /", Server, (1, 1), T0 + 200 * MS, 190 * MS),
            with_parent(span("cart", "cart.Get", Server, (1, 3), T0 + 150 * MS, 40 * MS), 2),
            with_error(with_parent(span("frontend", "cart.Get", Client, (1, 2), T0 + 160 * MS, 50 * MS), 1)),
        ],
        T0,
    );
    let interval = g.take_all_intervals().remove(0);
    let shape = Shape::of_service_graph(&config);
    let decoded = decode_service_graph(&encode_service_graph(&interval, &shape), &shape).unwrap();
    assert_eq!(decoded, interval);
    let calls: Vec<_> =
        decoded.entries.iter().map(|(l, s)| (l.client.as_str(), l.server.as_str(), s.calls(), s.failed())).collect();
    assert_eq!(calls, [("frontend", "cart", 1, 1), ("user", "frontend", 1, 0)]);
}

#[test]
fn damaged_bytes_are_refused_not_misread() {
    let (interval, shape) = span_metrics_interval();
    let bytes = encode_span_metrics(&interval, &shape);
    for cut in [0, 10, HEADER_BYTES, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode_span_metrics(&bytes[..cut], &shape).is_err(), "cut at {cut}");
    }
    for i in HEADER_BYTES..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x55;
        assert!(decode_span_metrics(&damaged, &shape).is_err(), "byte {i} flipped");
    }
    assert!(matches!(decode_service_graph(&bytes, &shape), Err(CodecError::WrongKind { .. })));
    let mut newer = bytes.clone();
    newer[4] = 2;
    assert!(matches!(decode_span_metrics(&newer, &shape), Err(CodecError::UnsupportedVersion(2))));
}

#[test]
fn an_interval_of_another_configuration_is_refused() {
    let (interval, shape) = span_metrics_interval();
    let bytes = encode_span_metrics(&interval, &shape);
    let others = [
        Shape { dimensions: Vec::new(), ..shape.clone() },
        Shape { interval_nanos: 60 * SECOND, ..shape.clone() },
        Shape { latency_bounds_seconds: vec![0.1, 1.0], ..shape.clone() },
    ];
    for other in others {
        assert!(matches!(decode_span_metrics(&bytes, &other), Err(CodecError::Incompatible(_))), "{other:?}");
    }
}
