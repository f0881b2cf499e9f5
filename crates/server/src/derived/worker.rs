//! The thread that changes the aggregators: it takes the queue's messages in order, so a
//! `Sync` is answered only after every batch queued before it is aggregated.
//!
//! A batch's spans are aggregated only if they end within the window held before now (the
//! longer of the two aggregators' windows) or at most [`FUTURE_SLACK_NANOS`] after now.
//!
//! Retention on each `Tick`: intervals that ended more than one window (`interval_seconds ×
//! max_intervals`) before now are dropped, then the series and edges whose last span or call
//! ended before that and that no kept interval holds are removed with their totals (as
//! Prometheus forgets stale series), which frees room under `max_series` / `max_edges`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sextant_metrics::{ServiceGraph, SpanMetrics};
use sextant_model::{Span, now_unix_nanos};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::{Aggregators, FUTURE_SLACK_NANOS};

pub(super) enum Message {
    /// Committed spans; the permit holds their room in the queue until they are aggregated.
    Batch {
        spans: Vec<Span>,
        _permit: OwnedSemaphorePermit,
    },
    Tick,
    Sync(oneshot::Sender<()>),
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
                aggregators.span_metrics.lock().observe(&spans);
                aggregators.service_graph.lock().observe(&spans, now_unix_nanos);
            }
            Message::Tick => {
                retain_span_metrics(&mut aggregators.span_metrics.lock(), now_unix_nanos);
                let mut service_graph = aggregators.service_graph.lock();
                service_graph.expire(now_unix_nanos);
                retain_service_graph(&mut service_graph, now_unix_nanos);
            }
            Message::Sync(reply) => {
                aggregators.service_graph.lock().expire(now_unix_nanos);
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

fn retain_span_metrics(span_metrics: &mut SpanMetrics, now_unix_nanos: u64) {
    let cutoff = now_unix_nanos.saturating_sub(span_metrics.config().window_nanos());
    span_metrics.drop_intervals_before(cutoff);
    span_metrics.remove_stale_series(cutoff);
}

fn retain_service_graph(service_graph: &mut ServiceGraph, now_unix_nanos: u64) {
    let cutoff = now_unix_nanos.saturating_sub(service_graph.config().window_nanos());
    service_graph.drop_intervals_before(cutoff);
    service_graph.remove_stale_edges(cutoff);
}
