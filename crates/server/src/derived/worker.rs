//! The thread that changes the aggregators: it takes the queue's messages in order, so a
//! `Sync` is answered only after every batch queued before it is aggregated.
//!
//! A batch's spans are aggregated only if they end within the window held before now (the
//! longer of the two aggregators' windows) or at most [`FUTURE_SLACK_NANOS`] after now.
//!
//! Intervals leave memory when they ended more than one window (`interval_seconds ×
//! max_intervals`) before now, or when a newer interval pushes them out of the full window;
//! after each batch and on each `Tick` the thread takes them out and writes them to disk
//! ([`IntervalFiles`]) under the aggregator's lock, so readers find each interval in one of
//! the two places. On each `Tick` the series and edges whose last span or call ended before
//! the window and that no kept interval holds are then removed with their totals (as
//! Prometheus forgets stale series), which frees room under `max_series` / `max_edges`, and
//! files older than `storage.retention` are deleted. `Persist` writes every interval held.
//!
//! The consistency analyzer (when enabled) sees each batch after the service graph; `Tick`
//! and `Sync` judge the reads and applies whose wait is over, and `Tick` drops its lag
//! intervals older than its window (they are not persisted).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sextant_metrics::{ServiceGraph, SpanMetrics};
use sextant_model::{Span, now_unix_nanos};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::{Aggregators, FUTURE_SLACK_NANOS, IntervalFiles};

pub(super) enum Message {
    /// Committed spans; the permit holds their room in the queue until they are aggregated.
    Batch {
        spans: Vec<Span>,
        _permit: OwnedSemaphorePermit,
    },
    Tick,
    Sync(oneshot::Sender<()>),
    /// Write every interval held to disk (on shutdown), then reply.
    Persist(oneshot::Sender<()>),
}

pub(super) fn spawn(aggregators: Arc<Aggregators>, receiver: mpsc::UnboundedReceiver<Message>) -> std::io::Result<()> {
    std::thread::Builder::new().name("sextant-metrics".to_string()).spawn(move || run(&aggregators, receiver))?;
    Ok(())
}

/// Runs until every sender is gone.
fn run(aggregators: &Aggregators, mut receiver: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = receiver.blocking_recv() {
        let now_unix_nanos = now_unix_nanos();
        match message {
            Message::Batch { mut spans, _permit } => {
                keep_within_window(aggregators, &mut spans, now_unix_nanos);
                let files = &aggregators.files;
                let mut span_metrics = aggregators.span_metrics.lock();
                span_metrics.observe(&spans);
                persist_closed_span_metrics(&mut span_metrics, files, now_unix_nanos);
                drop(span_metrics);
                let mut service_graph = aggregators.service_graph.lock();
                service_graph.observe(&spans, now_unix_nanos);
                persist_closed_service_graph(&mut service_graph, files, now_unix_nanos);
                drop(service_graph);
                if let Some(consistency) = &aggregators.consistency_opt {
                    consistency.lock().observe(&spans, now_unix_nanos);
                }
            }
            Message::Tick => {
                let files = &aggregators.files;
                let mut span_metrics = aggregators.span_metrics.lock();
                let cutoff = persist_closed_span_metrics(&mut span_metrics, files, now_unix_nanos);
                span_metrics.remove_stale_series(cutoff);
                drop(span_metrics);
                let mut service_graph = aggregators.service_graph.lock();
                service_graph.expire(now_unix_nanos);
                let cutoff = persist_closed_service_graph(&mut service_graph, files, now_unix_nanos);
                service_graph.remove_stale_edges(cutoff);
                drop(service_graph);
                if let Some(consistency) = &aggregators.consistency_opt {
                    let mut consistency = consistency.lock();
                    consistency.expire(now_unix_nanos);
                    let cutoff = now_unix_nanos.saturating_sub(consistency.config().window_nanos());
                    consistency.remove_intervals_before(cutoff);
                }
                files.expire(now_unix_nanos);
            }
            Message::Sync(reply) => {
                aggregators.service_graph.lock().expire(now_unix_nanos);
                if let Some(consistency) = &aggregators.consistency_opt {
                    consistency.lock().expire(now_unix_nanos);
                }
                let _ = reply.send(());
            }
            Message::Persist(reply) => {
                let files = &aggregators.files;
                let mut span_metrics = aggregators.span_metrics.lock();
                files.write_span_metrics(span_metrics.take_all_intervals());
                drop(span_metrics);
                let mut service_graph = aggregators.service_graph.lock();
                service_graph.expire(now_unix_nanos);
                files.write_service_graph(service_graph.take_all_intervals());
                drop(service_graph);
                let _ = reply.send(());
            }
        }
    }
}

/// Leaves out (and counts) the spans that end before the window or beyond the slack ahead.
fn keep_within_window(aggregators: &Aggregators, spans: &mut Vec<Span>, now_unix_nanos: u64) {
    let earliest_end_unix_nanos = now_unix_nanos.saturating_sub(aggregators.window_nanos);
    let latest_end_unix_nanos = now_unix_nanos.saturating_add(FUTURE_SLACK_NANOS);
    let (mut num_past, mut num_future) = (0u64, 0u64);
    spans.retain(|span| {
        let end = span.end_unix_nanos;
        num_past += u64::from(end < earliest_end_unix_nanos);
        num_future += u64::from(end > latest_end_unix_nanos);
        (earliest_end_unix_nanos..=latest_end_unix_nanos).contains(&end)
    });
    if num_past > 0 {
        aggregators.past_spans.fetch_add(num_past, Ordering::Relaxed);
    }
    if num_future > 0 {
        aggregators.future_spans.fetch_add(num_future, Ordering::Relaxed);
    }
}

/// Writes the span metrics intervals that left memory (ended a window ago, or pushed out
/// of the full window); returns the window's start.
fn persist_closed_span_metrics(span_metrics: &mut SpanMetrics, files: &IntervalFiles, now_unix_nanos: u64) -> u64 {
    let cutoff = now_unix_nanos.saturating_sub(span_metrics.config().window_nanos());
    files.write_span_metrics(span_metrics.take_intervals_before(cutoff));
    cutoff
}

/// [`persist_closed_span_metrics`] for the service graph.
fn persist_closed_service_graph(service_graph: &mut ServiceGraph, files: &IntervalFiles, now_unix_nanos: u64) -> u64 {
    let cutoff = now_unix_nanos.saturating_sub(service_graph.config().window_nanos());
    files.write_service_graph(service_graph.take_intervals_before(cutoff));
    cutoff
}
