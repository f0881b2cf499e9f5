//! The aggregators' own counters and sizes as self-metrics, read from them at each scrape (a
//! `prometheus-client` collector), so no second copy of them is kept up to date.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `sextant_metrics_spans_outside_window_total{side}` | counter | accepted spans not aggregated: they ended before the window held (`past`) or end more than a minute after the server's clock (`future`) |
//! | `sextant_spanmetrics_series` | gauge | span metrics series (the overflow series excluded) |
//! | `sextant_spanmetrics_spans_total` | counter | spans aggregated |
//! | `sextant_spanmetrics_overflowed_spans_total` | counter | spans counted in the overflow series (`max_series` reached) |
//! | `sextant_spanmetrics_late_spans_total` | counter | spans older than every kept interval: in the totals only |
//! | `sextant_service_graph_edges` | gauge | edges (the overflow edge excluded) |
//! | `sextant_service_graph_pending_spans` | gauge | client/server and producer/consumer halves waiting for their other half |
//! | `sextant_service_graph_calls_total{source}` | counter | calls counted: `paired`, `virtual_node` (an unanswered client naming its peer), `root` (a server span without parent) |
//! | `sextant_service_graph_dropped_spans_total{reason}` | counter | halves that made no call: `unpaired` (expired without partner or peer), `replaced` (a second half with the same key) |
//! | `sextant_service_graph_evicted_spans_total` | counter | halves expired early to stay under `max_pending_spans` |
//! | `sextant_service_graph_overflowed_calls_total` | counter | calls counted in the overflow edge (`max_edges` reached) |
//! | `sextant_service_graph_late_calls_total` | counter | calls older than every kept interval: in the totals only |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Aggregators;

#[derive(Debug)]
pub(super) struct AggregatorMetrics {
    aggregators: Arc<Aggregators>,
}

impl AggregatorMetrics {
    pub(super) fn new(aggregators: Arc<Aggregators>) -> AggregatorMetrics {
        AggregatorMetrics { aggregators }
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: usize) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// A counter family with one label.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (label_value, value) in values {
        let labels = [(label, *label_value)];
        ConstCounter::new(*value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for AggregatorMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        {
            let span_metrics = self.aggregators.span_metrics.lock();
            gauge(e, "sextant_spanmetrics_series", "Span metrics series", span_metrics.num_series())?;
            counter(
                e,
                "sextant_spanmetrics_spans",
                "Spans aggregated into span metrics",
                span_metrics.observed_spans(),
            )?;
            counter(
                e,
                "sextant_spanmetrics_overflowed_spans",
                "Spans counted in the overflow series because max_series was reached",
                span_metrics.overflowed_spans(),
            )?;
            counter(
                e,
                "sextant_spanmetrics_late_spans",
                "Spans older than every kept interval, counted in the totals only",
                span_metrics.late_spans(),
            )?;
        }
        counters(
            e,
            "sextant_metrics_spans_outside_window",
            "Accepted spans not aggregated because they ended before the window held or end more than a minute ahead",
            "side",
            &[
                ("past", self.aggregators.past_spans.load(Ordering::Relaxed)),
                ("future", self.aggregators.future_spans.load(Ordering::Relaxed)),
            ],
        )?;
        let service_graph = self.aggregators.service_graph.lock();
        let c = service_graph.counters();
        gauge(e, "sextant_service_graph_edges", "Service graph edges", service_graph.num_edges())?;
        gauge(
            e,
            "sextant_service_graph_pending_spans",
            "Client, server, producer and consumer spans waiting for their other half",
            service_graph.pending_spans(),
        )?;
        counters(
            e,
            "sextant_service_graph_calls",
            "Calls counted in the service graph, by how they were found",
            "source",
            &[("paired", c.paired), ("virtual_node", c.virtual_node_calls), ("root", c.root_calls)],
        )?;
        counters(
            e,
            "sextant_service_graph_dropped_spans",
            "Waiting halves that made no call",
            "reason",
            &[("unpaired", c.expired_unpaired), ("replaced", c.replaced)],
        )?;
        counter(
            e,
            "sextant_service_graph_evicted_spans",
            "Waiting halves expired early to stay under max_pending_spans",
            c.evicted,
        )?;
        counter(
            e,
            "sextant_service_graph_overflowed_calls",
            "Calls counted in the overflow edge because max_edges was reached",
            c.overflowed_calls,
        )?;
        counter(
            e,
            "sextant_service_graph_late_calls",
            "Calls older than every kept interval, counted in the totals only",
            c.late_calls,
        )
    }
}
