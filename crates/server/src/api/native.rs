//! The native API, `/api/v1/*`.
//!
//! - `GET /api/v1/traces/{trace_id}`: the whole trace as OTLP/JSON `{"resourceSpans": […]}`.
//!   32 hex digits, or 16 (left-padded with zeros). 404 when no span of it is stored.
//! - `GET /api/v1/search`: parameters `service`, `operation`, `attr.<key>=<value>`,
//!   `minDuration`/`maxDuration` (Go durations), `durationScope=trace|span` (default
//!   `trace`), `status=error`, `start`/`end` (unix nanoseconds or RFC 3339), `limit`
//!   (default 20), `cursor` (from the previous page's `nextCursor`). Newest first.
//! - `GET /api/v1/services`: `{"services": [names]}`.
//! - `GET /api/v1/services/{service}/operations`: `{"operations": [{"name", "spanKind"}]}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sextant_model::TraceId;
use sextant_storage::search::{
    AttributeFilter, Cursor, DurationScope, MAX_SEARCH_LIMIT, SearchQuery, SearchResult, TraceSummary,
};

use super::params::{parse_go_duration, parse_timestamp};
use super::{ApiError, ApiState};

pub async fn trace(State(state): State<Arc<ApiState>>, Path(trace_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = TraceId::parse_hex(&trace_id).map_err(|e| {
        ApiError::bad_request("invalid_trace_id", format!("{e}; expected 32 (or 16) hexadecimal digits"))
    })?;
    let spans = state.engine.trace(id).await?;
    if spans.is_empty() {
        return Err(ApiError::not_found("trace_not_found", format!("trace {id} not found")));
    }
    Ok(Json(sextant_codec::otlp_json(&spans)))
}

pub async fn search(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse_search(&params)?;
    let result = state.engine.search(&query).await?;
    Ok(Json(search_json(&result)))
}

/// Builds a [`SearchQuery`] from URL parameters, refusing unknown or malformed ones.
pub fn parse_search(params: &[(String, String)]) -> Result<SearchQuery, ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_parameter", message);
    let mut query = SearchQuery::default();
    for (key, value) in params {
        match key.as_str() {
            "service" => query.service = Some(value.clone()),
            "operation" => query.operation = Some(value.clone()),
            "minDuration" => {
                query.min_duration_nanos = Some(parse_go_duration(value).map_err(|e| bad(format!("minDuration: {e}")))?)
            }
            "maxDuration" => {
                query.max_duration_nanos = Some(parse_go_duration(value).map_err(|e| bad(format!("maxDuration: {e}")))?)
            }
            "durationScope" => {
                query.duration_scope = match value.as_str() {
                    "trace" => DurationScope::Trace,
                    "span" => DurationScope::Span,
                    other => return Err(bad(format!("durationScope: {other:?} must be trace or span"))),
                }
            }
            "status" => match value.as_str() {
                "error" => query.errors_only = true,
                other => return Err(bad(format!("status: {other:?} is not supported; use status=error"))),
            },
            "start" => query.start_unix_nanos = Some(parse_timestamp(value).map_err(|e| bad(format!("start: {e}")))?),
            "end" => query.end_unix_nanos = Some(parse_timestamp(value).map_err(|e| bad(format!("end: {e}")))?),
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_SEARCH_LIMIT).contains(l))
                    .ok_or_else(|| bad(format!("limit: {value:?} must be a number from 1 to {MAX_SEARCH_LIMIT}")))?
            }
            "cursor" => {
                query.cursor = Some(
                    Cursor::decode(value)
                        .ok_or_else(|| bad(format!("cursor: {value:?} is not a cursor from a previous answer")))?,
                )
            }
            other => match other.strip_prefix("attr.") {
                Some(attr) if !attr.is_empty() => {
                    query.attributes.push(AttributeFilter { key: attr.to_string(), value: value.clone() })
                }
                _ => return Err(bad(format!("unknown parameter {other:?}"))),
            },
        }
    }
    if let (Some(min), Some(max)) = (query.min_duration_nanos, query.max_duration_nanos)
        && min > max
    {
        return Err(bad("minDuration is greater than maxDuration".to_string()));
    }
    if let (Some(start), Some(end)) = (query.start_unix_nanos, query.end_unix_nanos)
        && start > end
    {
        return Err(bad("start is after end".to_string()));
    }
    Ok(query)
}

fn summary_json(t: &TraceSummary) -> Value {
    json!({
        "traceId": t.trace_id.to_hex(),
        "rootService": t.root_service,
        "rootName": t.root_name,
        "startTimeUnixNano": t.start_unix_nanos.to_string(),
        "durationNanos": t.duration_nanos.to_string(),
        "spanCount": t.span_count,
        "errorCount": t.error_count,
        "services": t.services,
    })
}

pub fn search_json(result: &SearchResult) -> Value {
    json!({
        "traces": result.traces.iter().map(summary_json).collect::<Vec<_>>(),
        "nextCursor": result.next_cursor.map(|c| c.encode()),
    })
}

pub async fn services(State(state): State<Arc<ApiState>>) -> Json<Value> {
    Json(json!({ "services": state.engine.services() }))
}

pub async fn operations(
    State(state): State<Arc<ApiState>>,
    Path(service): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let operations = state
        .engine
        .operations(&service)
        .ok_or_else(|| ApiError::not_found("service_not_found", format!("service {service:?} not found")))?;
    let operations: Vec<Value> =
        operations.iter().map(|(name, kind)| json!({ "name": name, "spanKind": kind.short_name() })).collect();
    Ok(Json(json!({ "operations": operations })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_parameter() {
        let query = parse_search(&params(&[
            ("service", "cart"),
            ("operation", "GET /cart"),
            ("attr.http.response.status_code", "500"),
            ("minDuration", "150ms"),
            ("maxDuration", "2s"),
            ("durationScope", "span"),
            ("status", "error"),
            ("start", "1700000000000000000"),
            ("end", "2023-11-14T23:00:00Z"),
            ("limit", "5"),
        ]))
        .unwrap();
        assert_eq!(query.service.as_deref(), Some("cart"));
        assert_eq!(query.attributes[0].key, "http.response.status_code");
        assert_eq!(query.min_duration_nanos, Some(150_000_000));
        assert_eq!(query.duration_scope, DurationScope::Span);
        assert!(query.errors_only);
        assert_eq!(query.limit, 5);
    }

    #[test]
    fn refuses_bad_parameters_by_name() {
        for (pairs, needle) in [
            (vec![("minDuration", "fast")], "minDuration"),
            (vec![("limit", "0")], "limit"),
            (vec![("status", "ok")], "status"),
            (vec![("colour", "red")], "colour"),
            (vec![("cursor", "zzz")], "cursor"),
            (vec![("minDuration", "2s"), ("maxDuration", "1s")], "greater"),
            (vec![("start", "2"), ("end", "1")], "after"),
        ] {
            let err = parse_search(&params(&pairs)).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(err.message.contains(needle), "{}", err.message);
        }
    }
}
