//! Business processes and trace links ([`crate::processes`]) on the native API.
//!
//! - `GET /api/v1/processes/{id}`: the process as one timeline. Optional `start`/`end`
//!   (unix nanoseconds or RFC 3339) keep the traces with a span starting in the range; by
//!   default the whole retained range. 404 when no trace carries the ID.
//!   `{"id", "keys", "startTimeUnixNano", "endTimeUnixNano", "durationNanos", "partial",
//!   "traceCount", "spanCount", "services", "steps": [{"traceId", "rootService", "rootName",
//!   "startTimeUnixNano", "endTimeUnixNano", "durationNanos", "spanCount", "errorCount",
//!   "processSpanCount", "services", "spans": [span]}], "gaps": [{"fromTraceId", "toTraceId",
//!   "gapNanos"}], "hops": [hop]}`, steps by start time. A span is `{"traceId", "spanId",
//!   "parentSpanId", "service", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
//!   "error", "inProcess"}`; a hop `{"producer": span, "consumer": span, "via": "link" |
//!   "message_id", "messageId", "messagingSystem", "destination", "queueWaitNanos"}`.
//!   Nanosecond values are decimal strings (gaps and waits may be negative).
//! - `GET /api/v1/processes`: the search's span parameters (`service`, `operation`,
//!   `attr.<key>=<value>`, `status=error`, `start`, `end`, durations) and `limit` (processes,
//!   default 20, at most 1,000): `{"processes": [{"id", "firstTimeUnixNano",
//!   "lastTimeUnixNano", "traceCount", "services"}], "partial"}`, the most recently active
//!   first. `traceCount` counts the matching traces read, not every trace of the process.
//! - `GET /api/v1/traces/{trace_id}/links`: `{"traceId", "outgoing": [link], "incoming":
//!   [link], "partial"}`, a link being `{"span": span (of this trace), "linkedTraceId",
//!   "linkedSpanId", "linked": span | null, "via", "messageId", "queueWaitNanos" | null}`.
//!   See [`crate::processes::find::trace_links`] for how backlinks are found and their limit.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sextant_model::{Span, TraceId};
use sextant_storage::search::MAX_SEARCH_LIMIT;

use super::native::parse_search;
use super::params::parse_timestamp;
use super::{ApiError, ApiState};
use crate::processes::find::{ProcessSummary, TraceLink, load_process, search_processes, trace_links};
use crate::processes::hops::{DESTINATION_KEY, MESSAGING_SYSTEM_KEY, string_attribute};
use crate::processes::timeline::Timeline;
use crate::processes::{Limits, carries};

const DEFAULT_PROCESS_LIMIT: usize = 20;

fn span_json(span: &Span) -> Value {
    json!({
        "traceId": span.trace_id.to_hex(),
        "spanId": span.span_id.to_hex(),
        "parentSpanId": span.parent_span_id.map(|p| p.to_hex()),
        "service": span.service_name(),
        "name": span.name,
        "kind": span.kind.short_name(),
        "startTimeUnixNano": span.start_unix_nanos.to_string(),
        "endTimeUnixNano": span.end_unix_nanos.to_string(),
        "error": span.is_error(),
    })
}

fn process_span_json(span: &Span, keys: &[String], id: &str) -> Value {
    let mut value = span_json(span);
    value["inProcess"] = json!(carries(span, keys, id));
    value
}

pub fn timeline_json(timeline: &Timeline, keys: &[String], partial: bool) -> Value {
    let id = timeline.id.as_str();
    let services: std::collections::BTreeSet<&str> =
        timeline.steps.iter().flat_map(|s| s.summary.services.iter().map(String::as_str)).collect();
    let steps: Vec<Value> = timeline
        .steps
        .iter()
        .map(|step| {
            let s = &step.summary;
            json!({
                "traceId": s.trace_id.to_hex(),
                "rootService": s.root_service,
                "rootName": s.root_name,
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": step.end_unix_nanos.to_string(),
                "durationNanos": s.duration_nanos.to_string(),
                "spanCount": s.span_count,
                "errorCount": s.error_count,
                "processSpanCount": step.num_process_spans,
                "services": s.services,
                "spans": step.spans.iter().map(|span| process_span_json(span, keys, id)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let gaps: Vec<Value> = timeline
        .gaps
        .iter()
        .map(|gap| {
            json!({
                "fromTraceId": timeline.steps[gap.from_step].summary.trace_id.to_hex(),
                "toTraceId": timeline.steps[gap.to_step].summary.trace_id.to_hex(),
                "gapNanos": gap.gap_nanos.to_string(),
            })
        })
        .collect();
    let hops: Vec<Value> = timeline
        .hops
        .iter()
        .map(|hop| {
            let (producer, consumer) = (timeline.span(hop.producer), timeline.span(hop.consumer));
            let attribute = |key: &str| string_attribute(producer, key).or_else(|| string_attribute(consumer, key));
            json!({
                "producer": process_span_json(producer, keys, id),
                "consumer": process_span_json(consumer, keys, id),
                "via": hop.hop.via.name(),
                "messageId": hop.hop.message_id_opt,
                "messagingSystem": attribute(MESSAGING_SYSTEM_KEY),
                "destination": attribute(DESTINATION_KEY),
                "queueWaitNanos": hop.hop.queue_wait_nanos.to_string(),
            })
        })
        .collect();
    let (start, end) = (timeline.start_unix_nanos(), timeline.end_unix_nanos());
    json!({
        "id": id,
        "keys": keys,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": end.to_string(),
        "durationNanos": end.saturating_sub(start).to_string(),
        "partial": partial,
        "traceCount": timeline.steps.len(),
        "spanCount": timeline.num_spans(),
        "services": services,
        "steps": steps,
        "gaps": gaps,
        "hops": hops,
    })
}

/// `start` and `end` only.
fn parse_range(params: &[(String, String)]) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_parameter", message);
    let (mut start, mut end) = (None, None);
    for (key, value) in params {
        let slot = match key.as_str() {
            "start" => &mut start,
            "end" => &mut end,
            other => return Err(bad(format!("unknown parameter {other:?}; use start and end"))),
        };
        *slot = Some(parse_timestamp(value).map_err(|e| bad(format!("{key}: {e}")))?);
    }
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(bad("start is after end".to_string()));
    }
    Ok((start, end))
}

pub async fn process(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let range = parse_range(&params)?;
    if id.is_empty() {
        return Err(ApiError::bad_request("invalid_process_id", "the process ID is empty"));
    }
    let keys = &state.process_keys;
    let (timeline, partial) = load_process(&state.engine, keys, &id, range, Limits::default())
        .await?
        .ok_or_else(|| ApiError::not_found("process_not_found", format!("no trace carries process ID {id:?}")))?;
    Ok(Json(timeline_json(&timeline, keys, partial)))
}

fn summary_json(process: &ProcessSummary) -> Value {
    json!({
        "id": process.id,
        "firstTimeUnixNano": process.first_unix_nanos.to_string(),
        "lastTimeUnixNano": process.last_unix_nanos.to_string(),
        "traceCount": process.num_traces,
        "services": process.services,
    })
}

pub async fn processes(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut limit = DEFAULT_PROCESS_LIMIT;
    let mut search_params = Vec::with_capacity(params.len());
    for (key, value) in params {
        match key.as_str() {
            "limit" => {
                limit = value.parse::<usize>().ok().filter(|l| (1..=MAX_SEARCH_LIMIT).contains(l)).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("limit: {value:?} must be a number from 1 to {MAX_SEARCH_LIMIT}"),
                    )
                })?
            }
            "cursor" => return Err(ApiError::bad_request("invalid_parameter", "cursor: processes are not paged")),
            _ => search_params.push((key, value)),
        }
    }
    let query = parse_search(&search_params)?;
    let keys = &state.process_keys;
    let (found, partial) = search_processes(&state.engine, keys, query, limit, Limits::default()).await?;
    Ok(Json(json!({ "processes": found.iter().map(summary_json).collect::<Vec<_>>(), "partial": partial })))
}

fn link_json(link: &TraceLink) -> Value {
    json!({
        "span": span_json(&link.here),
        "linkedTraceId": link.other_trace_id.to_hex(),
        "linkedSpanId": link.other_span_id.to_hex(),
        "linked": link.other_opt.as_ref().map(span_json),
        "via": link.via.name(),
        "messageId": link.message_id_opt,
        "queueWaitNanos": link.queue_wait_nanos_opt.map(|w| w.to_string()),
    })
}

pub async fn links(State(state): State<Arc<ApiState>>, Path(trace_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = TraceId::parse_hex(&trace_id).map_err(|e| {
        ApiError::bad_request("invalid_trace_id", format!("{e}; expected 32 (or 16) hexadecimal digits"))
    })?;
    let links = trace_links(&state.engine, &state.process_keys, id, Limits::default())
        .await?
        .ok_or_else(|| ApiError::not_found("trace_not_found", format!("trace {id} not found")))?;
    Ok(Json(json!({
        "traceId": id.to_hex(),
        "outgoing": links.outgoing.iter().map(link_json).collect::<Vec<_>>(),
        "incoming": links.incoming.iter().map(link_json).collect::<Vec<_>>(),
        "partial": links.partial,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn range_parameters_are_checked() {
        assert_eq!(parse_range(&params(&[("start", "5"), ("end", "9")])).unwrap(), (Some(5), Some(9)));
        assert_eq!(parse_range(&[]).unwrap(), (None, None));
        for bad in [vec![("start", "9"), ("end", "5")], vec![("colour", "red")], vec![("end", "soon")]] {
            assert_eq!(parse_range(&params(&bad)).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
