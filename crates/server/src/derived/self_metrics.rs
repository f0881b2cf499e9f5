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
//! | `sextant_metrics_history_written_intervals_total{aggregator}` | counter | intervals written to `{data_dir}/metrics/` |
//! | `sextant_metrics_history_written_bytes_total{aggregator}` | counter | bytes of those files |
//! | `sextant_metrics_history_write_errors_total{aggregator}` | counter | intervals that could not be written (lost) |
//! | `sextant_metrics_history_unreadable_intervals_total{aggregator,reason}` | counter | files skipped: `corrupt` (torn, damaged) or `incompatible` (another interval length, buckets or dimensions) |
//! | `sextant_metrics_history_expired_intervals_total{aggregator}` | counter | files deleted by retention (`storage.retention`) |
//! | `sextant_metrics_history_truncated_reads_total{aggregator}` | counter | reads that visited only the newest `MAX_INTERVALS_PER_READ` intervals of their range |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Aggregators;
use super::history::DirCounters;

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

/// A counter family over both aggregators' directories, labelled `aggregator`.
fn dir_counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    dirs: Dirs,
    value: impl Fn(&DirCounters) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (aggregator, counters) in dirs {
        ConstCounter::new(value(counters)).encode(metric.encode_family(&[("aggregator", aggregator)])?)?;
    }
    Ok(())
}

/// Each aggregator's name and file counters.
type Dirs<'a> = [(&'static str, &'a DirCounters); 2];

fn history_metrics(e: &mut DescriptorEncoder, dirs: Dirs) -> Result<(), std::fmt::Error> {
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    dir_counters(
        e,
        "sextant_metrics_history_written_intervals",
        "Closed intervals written to the metrics directory",
        dirs,
        |d| load(&d.written_intervals),
    )?;
    dir_counters(e, "sextant_metrics_history_written_bytes", "Bytes of the interval files written", dirs, |d| {
        load(&d.written_bytes)
    })?;
    dir_counters(
        e,
        "sextant_metrics_history_write_errors",
        "Closed intervals that could not be written, lost",
        dirs,
        |d| load(&d.write_errors),
    )?;
    let mut metric = e.encode_descriptor(
        "sextant_metrics_history_unreadable_intervals",
        "Interval files skipped because they could not be decoded",
        None,
        ConstCounter::new(0u64).metric_type(),
    )?;
    for (aggregator, counters) in dirs {
        for (reason, value) in [("corrupt", &counters.corrupt), ("incompatible", &counters.incompatible)] {
            let labels = [("aggregator", aggregator), ("reason", reason)];
            ConstCounter::new(load(value)).encode(metric.encode_family(&labels)?)?;
        }
    }
    dir_counters(
        e,
        "sextant_metrics_history_expired_intervals",
        "Interval files deleted because they are older than storage.retention",
        dirs,
        |d| load(&d.expired),
    )?;
    dir_counters(
        e,
        "sextant_metrics_history_truncated_reads",
        "Reads of persisted intervals that visited only the newest of their range",
        dirs,
        |d| load(&d.truncated_reads),
    )
}

impl Collector for AggregatorMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let files = &self.aggregators.files;
        let dirs = [
            (files.span_metrics.name, &files.span_metrics.counters),
            (files.service_graph.name, &files.service_graph.counters),
        ];
        history_metrics(e, dirs)?;
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
