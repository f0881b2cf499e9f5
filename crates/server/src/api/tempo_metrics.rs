//! TraceQL metrics through Tempo's API: `GET /api/metrics/query_range` and
//! `GET /api/metrics/query` (instant), on the Tempo port.
//!
//! Parameters, as Tempo reads them: `q` (a query ending with a metrics function, e.g.
//! `{ status = error } | rate() by (resource.service.name)`), `start` and `end` (unix seconds
//! when 10 digits or fewer, fractional seconds, unix nanoseconds, or RFC 3339), `since` (a Go
//! duration, the range ending now when `start` is not given; default 1h), `step` (a Go
//! duration or seconds, range queries only; by default the range over 240, rounded down to
//! 5 s, at least 1 s, as Tempo chooses it) and `exemplars` (at most [`DEFAULT_MAX_EXEMPLARS`],
//! its default).
//!
//! The range answers `{"series": [{"labels": [...], "promLabels": "{...}", "samples":
//! [{"timestampMs": "...", "value": ...}], "exemplars": [{"labels": [{"key": "trace:id", ...},
//! {"key": "span:id", ...}], "value": ..., "timestampMs": "..."}]}], "metrics": {...}}`; the
//! instant query `{"series": [{"labels": [...], "promLabels": "...", "value": ...}], "metrics":
//! {...}}`. Semantics are those of [`sextant_traceql::metrics`].
//!
//! Candidate traces come from the engine as for a TraceQL search (`traceql_search.rs`): one
//! pushed-down condition and the query's time range (the span start times its steps count)
//! narrow [`Engine::search`](sextant_storage::engine::Engine::search), summaries rule out
//! traces that miss a service or an error, and the rest are read a page at a time and fed to
//! the evaluator on the blocking pool. At most [`MAX_INSPECTED_TRACES`] traces and
//! [`MAX_INSPECTED_SPANS`] spans are read: past that the answer says `"status": "PARTIAL"`
//! with a `"message"`, and `metrics` gives the counts read. Bad queries and parameters answer
//! 400 with the reason, as plain text.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sextant_model::TraceId;
use sextant_storage::engine::Engine;
use sextant_storage::search::{Cursor, TraceSummary};
use sextant_traceql::metrics::{DEFAULT_MAX_EXEMPLARS, Labels, MetricsError, prometheus_labels};
use sextant_traceql::{MetricsEvaluator, MetricsRequest, Series};

use super::ApiState;
use super::params::{parse_go_duration, parse_timestamp};
use super::plain::{Params, PlainError, param};
use super::traceql_search::{MAX_INSPECTED_TRACES, candidate_query, otlp_value, summary_may_match};

/// Spans read at most by one metrics query.
pub const MAX_INSPECTED_SPANS: usize = 1_000_000;
/// Candidate traces asked of the engine at a time.
const PAGE_TRACES: usize = 200;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// The range when neither `start` nor `since` is given, as Tempo's.
const DEFAULT_SINCE_NANOS: u64 = 3600 * NANOS_PER_SECOND;

/// `GET /api/metrics/query_range`.
pub async fn query_range(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Response, PlainError> {
    let answer = run(&state, &params, false).await?;
    let series: Vec<Value> = answer.series.iter().map(range_series_json).collect();
    Ok(axum::Json(answer.with_metrics(json!({ "series": series }))).into_response())
}

/// `GET /api/metrics/query`: one value per series over the whole range.
pub async fn query_instant(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Response, PlainError> {
    let answer = run(&state, &params, true).await?;
    let series: Vec<Value> = answer
        .series
        .iter()
        .filter_map(|series| {
            let sample = series.samples.first()?;
            Some(json!({
                "labels": labels_json(&series.labels),
                "promLabels": prometheus_labels(&series.labels),
                "value": sample.value,
            }))
        })
        .collect();
    Ok(axum::Json(answer.with_metrics(json!({ "series": series }))).into_response())
}

/// The series and what reading them took.
pub(crate) struct Answer {
    pub series: Vec<Series>,
    pub inspected_traces: usize,
    pub inspected_spans: usize,
    /// Why the answer leaves traces out, when it does.
    pub partial_opt: Option<String>,
}

impl Answer {
    /// `body` with Tempo's `metrics` object, and the partial status when reading stopped early.
    fn with_metrics(&self, mut body: Value) -> Value {
        body["metrics"] = json!({
            "inspectedTraces": self.inspected_traces,
            "inspectedSpans": self.inspected_spans.to_string(),
            "totalJobs": 1,
            "completedJobs": 1,
        });
        if let Some(message) = &self.partial_opt {
            body["status"] = json!("PARTIAL");
            body["message"] = json!(message);
        }
        body
    }
}

async fn run(state: &ApiState, params: &[(String, String)], instant: bool) -> Result<Answer, PlainError> {
    let q = param(params, "q").ok_or_else(|| PlainError::bad_request("missing q: a TraceQL metrics query"))?;
    let request = metrics_request(params, instant, sextant_model::now_unix_nanos())?;
    let query =
        sextant_traceql::parse(q).map_err(|e| PlainError::bad_request(format!("invalid TraceQL query: {e}")))?;
    let evaluator = MetricsEvaluator::new(&query, &request).map_err(|e| match e {
        MetricsError::NotMetrics => PlainError::bad_request(format!(
            "invalid TraceQL metrics query {query}: it has no metrics function; end it with one such as | rate()"
        )),
        other => PlainError::bad_request(format!("invalid TraceQL metrics query: {other}")),
    })?;
    read_series(&state.engine, &query, evaluator).await
}

/// Runs `query`, compiled as `evaluator`, over the engine's candidate traces, page by page
/// and within the read bounds. Alert rules on TraceQL metrics read through it too.
pub(crate) async fn read_series(
    engine: &Engine,
    query: &sextant_traceql::Query,
    mut evaluator: MetricsEvaluator,
) -> Result<Answer, PlainError> {
    let conditions = sextant_traceql::conditions(query).conditions;
    let mut candidates = candidate_query(&conditions);
    let (from, to) = evaluator.span_range();
    candidates.start_unix_nanos = Some(from);
    candidates.end_unix_nanos = Some(to);
    candidates.limit = PAGE_TRACES;
    let (mut inspected_traces, mut inspected_spans) = (0, 0);
    let mut partial_opt = None;
    let mut cursor: Option<Cursor> = None;
    loop {
        candidates.cursor = cursor.take();
        let page = engine.search(&candidates).await?;
        let worth_fetching: Vec<&TraceSummary> =
            page.traces.iter().filter(|summary| summary_may_match(&conditions, summary)).collect();
        inspected_traces += page.traces.len() - worth_fetching.len();
        let room = MAX_INSPECTED_TRACES.saturating_sub(inspected_traces);
        let ids: Vec<TraceId> = worth_fetching.iter().take(room).map(|t| t.trace_id).collect();
        let fetched = engine.traces(&ids).await?;
        let span_room = MAX_INSPECTED_SPANS - inspected_spans;
        let (returned, read_traces, read_spans) = tokio::task::spawn_blocking(move || {
            let (mut traces, mut spans) = (0, 0);
            for trace in &fetched {
                if spans + trace.len() > span_room {
                    break;
                }
                evaluator.observe(trace)?;
                traces += 1;
                spans += trace.len();
            }
            Ok::<_, sextant_traceql::EvalError>((evaluator, traces, spans))
        })
        .await
        .map_err(task_failed)?
        .map_err(|e| PlainError::bad_request(format!("TraceQL metrics query failed: {e}")))?;
        evaluator = returned;
        inspected_traces += read_traces;
        inspected_spans += read_spans;
        if read_traces < worth_fetching.len() {
            partial_opt = Some(if read_traces < ids.len() {
                format!("stopped at the bound of {MAX_INSPECTED_SPANS} spans read; narrow the query or its range")
            } else {
                format!("stopped at the bound of {MAX_INSPECTED_TRACES} traces read; narrow the query or its range")
            });
            break;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let series = tokio::task::spawn_blocking(move || evaluator.finish()).await.map_err(task_failed)?;
    Ok(Answer { series, inspected_traces, inspected_spans, partial_opt })
}

/// A blocking task that panicked or was cancelled: a server error.
fn task_failed(error: tokio::task::JoinError) -> PlainError {
    PlainError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("metrics query failed: {error}"))
}

/// The time range, step and exemplar count of a request, `now_unix_nanos` being now.
fn metrics_request(
    params: &[(String, String)],
    instant: bool,
    now_unix_nanos: u64,
) -> Result<MetricsRequest, PlainError> {
    let time = |name: &str| {
        param(params, name)
            .map(|text| parse_time(text).map_err(|e| PlainError::bad_request(format!("invalid {name}: {e}"))))
            .transpose()
    };
    let end = time("end")?.unwrap_or(now_unix_nanos);
    let start = match time("start")? {
        Some(start) => start,
        None => {
            let since = param(params, "since")
                .map(|text| parse_go_duration(text).map_err(|e| PlainError::bad_request(format!("invalid since: {e}"))))
                .transpose()?
                .unwrap_or(DEFAULT_SINCE_NANOS);
            end.saturating_sub(since)
        }
    };
    if end <= start {
        return Err(PlainError::bad_request(format!(
            "invalid start and end: end ({end}) must be after start ({start})"
        )));
    }
    let step_nanos = match param(params, "step") {
        Some(text) => parse_step(text).map_err(|e| PlainError::bad_request(format!("invalid step: {e}")))?,
        None => default_step(start, end),
    };
    if step_nanos == 0 && !instant {
        return Err(PlainError::bad_request("invalid step: it must be positive"));
    }
    let max_exemplars = match param(params, "exemplars") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| {
                PlainError::bad_request(format!("invalid exemplars {text:?}: expected a non-negative integer"))
            })?
            .min(DEFAULT_MAX_EXEMPLARS),
        None => DEFAULT_MAX_EXEMPLARS,
    };
    Ok(MetricsRequest { start_unix_nanos: start, end_unix_nanos: end, step_nanos, instant, max_exemplars })
}

/// A step as Tempo takes it: a Go duration (`30s`, `1m0s`) or a number of seconds (`15`, `0.5`).
fn parse_step(text: &str) -> Result<u64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok((seconds * 1e9).round() as u64),
        _ => parse_go_duration(text),
    }
}

/// Tempo's default step: the range over 240, rounded down to a multiple of 5 s, or of 1 s
/// below 5 s, and at least 1 s.
fn default_step(start: u64, end: u64) -> u64 {
    let baseline = (end - start) / 240;
    let five = 5 * NANOS_PER_SECOND;
    let step = if baseline >= five { baseline / five * five } else { baseline / NANOS_PER_SECOND * NANOS_PER_SECOND };
    step.max(NANOS_PER_SECOND)
}

/// A time as Tempo's metrics API takes it: unix seconds (up to 10 digits), fractional unix
/// seconds, unix nanoseconds, or RFC 3339.
fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.len() <= 10
        && let Ok(seconds) = text.parse::<u64>()
    {
        return Ok(seconds.saturating_mul(NANOS_PER_SECOND));
    }
    if let Some((whole, fraction)) = text.split_once('.')
        && let Ok(seconds) = whole.parse::<u64>()
        && (1..=9).contains(&fraction.len())
        && fraction.bytes().all(|b| b.is_ascii_digit())
    {
        let nanos: u64 = format!("{fraction:0<9}").parse().expect("nine digits");
        return Ok(seconds.saturating_mul(NANOS_PER_SECOND).saturating_add(nanos));
    }
    parse_timestamp(text)
}

/// A range series as Tempo writes it; empty lists are left out, as protobuf JSON does.
fn range_series_json(series: &Series) -> Value {
    let mut json = json!({
        "labels": labels_json(&series.labels),
        "promLabels": prometheus_labels(&series.labels),
    });
    if !series.samples.is_empty() {
        json["samples"] = series
            .samples
            .iter()
            .map(|s| json!({ "timestampMs": s.timestamp_ms.to_string(), "value": s.value }))
            .collect();
    }
    if !series.exemplars.is_empty() {
        json["exemplars"] = series
            .exemplars
            .iter()
            .map(|e| {
                json!({
                    "labels": [
                        { "key": "trace:id", "value": { "stringValue": e.trace_id.to_hex() } },
                        { "key": "span:id", "value": { "stringValue": e.span_id.to_hex() } },
                    ],
                    "value": e.value,
                    "timestampMs": e.timestamp_ms.to_string(),
                })
            })
            .collect();
    }
    json
}

/// Labels as OTLP key-values; a nil value is an empty `AnyValue`.
fn labels_json(labels: &Labels) -> Vec<Value> {
    labels
        .iter()
        .map(|(key, value)| json!({ "key": key, "value": otlp_value(value).unwrap_or_else(|| json!({})) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const NOW: u64 = 1_700_000_000 * NANOS_PER_SECOND;

    #[test]
    fn times_steps_and_defaults() {
        let request = metrics_request(&params(&[("q", "x")]), false, NOW).unwrap();
        assert_eq!((request.start_unix_nanos, request.end_unix_nanos), (NOW - 3600 * NANOS_PER_SECOND, NOW));
        assert_eq!(request.step_nanos, 15 * NANOS_PER_SECOND, "1 h / 240");
        assert_eq!(request.max_exemplars, DEFAULT_MAX_EXEMPLARS);
        let request = metrics_request(
            &params(&[("start", "1699999000"), ("end", "1700000000000000000"), ("step", "1m"), ("exemplars", "5")]),
            false,
            NOW,
        )
        .unwrap();
        assert_eq!((request.start_unix_nanos, request.end_unix_nanos), (1_699_999_000 * NANOS_PER_SECOND, NOW));
        assert_eq!((request.step_nanos, request.max_exemplars), (60 * NANOS_PER_SECOND, 5));
        let request = metrics_request(&params(&[("since", "10m")]), true, NOW).unwrap();
        assert_eq!(request.start_unix_nanos, NOW - 600 * NANOS_PER_SECOND);
        assert_eq!(parse_time("1700000000.25"), Ok(NOW + NANOS_PER_SECOND / 4));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(NOW));
        assert_eq!(parse_step("1m0s"), Ok(60 * NANOS_PER_SECOND));
        assert_eq!(parse_step("15"), Ok(15 * NANOS_PER_SECOND));
        assert_eq!(parse_step("0.5"), Ok(NANOS_PER_SECOND / 2));
        assert_eq!(default_step(0, 60 * NANOS_PER_SECOND), NANOS_PER_SECOND);
        assert_eq!(default_step(0, 24 * 3600 * NANOS_PER_SECOND), 360 * NANOS_PER_SECOND);
    }

    #[test]
    fn bad_parameters_say_which() {
        let error = |pairs: &[(&str, &str)]| metrics_request(&params(pairs), false, NOW).unwrap_err().1;
        assert!(error(&[("start", "1700000100"), ("end", "1700000000")]).contains("end"));
        assert!(error(&[("step", "soon")]).starts_with("invalid step"));
        assert!(error(&[("since", "-1h")]).starts_with("invalid since"));
        assert!(error(&[("exemplars", "many")]).starts_with("invalid exemplars"));
        assert!(error(&[("end", "yesterday")]).starts_with("invalid end"));
    }
}
