//! The Zipkin v2 query API (`zipkin2-api.yaml`), on the Zipkin port (:9411) beside
//! `POST /api/v2/spans`, so Zipkin's UI and clients read what they sent:
//!
//! - `GET /api/v2/services`: service names.
//! - `GET /api/v2/spans?serviceName=`: the span names of a service.
//! - `GET /api/v2/traces`: `serviceName`, `spanName`, `remoteServiceName` (the `peer.service`
//!   attribute), `annotationQuery` (`key=value` terms joined by ` and `; the bare term `error`
//!   asks for error spans), `minDuration`/`maxDuration` (µs, of a span), `endTs` (ms, default
//!   now), `lookback` (ms, default 1 day), `limit` (default 10). The conditions hold on one span
//!   (as Zipkin's storage applies them to the spans of the service); newest traces first, each
//!   trace a list of spans.
//! - `GET /api/v2/trace/{traceId}`: the spans of a trace (16 or 32 hex digits); 404 when none.
//! - `GET /api/v2/traceMany?traceIds=`: the traces found among comma-separated IDs.
//! - `GET /api/v2/dependencies?endTs=&lookback=` (ms; `lookback` defaults to 1 day):
//!   `[{"parent", "child", "callCount", "errorCount"}]`, the calls between services over the
//!   window from the service graph (or, with `metrics.enabled = false`, counted over the
//!   newest traces of the window; [`super::dependencies`]).
//! - `GET /api/v2/autocompleteKeys`: the tag keys of the last day's spans (span and resource
//!   attributes but `service.name`: what Zipkin shows as tags); `GET
//!   /api/v2/autocompleteValues?key=`: a key's values. Both read the head and the newest blocks
//!   ([`sextant_storage::engine::TagQuery`]).
//!
//! Spans are written by [`sextant_codec::zipkin_json`] (`docs/formats/zipkin-mapping.md`).
//! Errors answer 400 or 404 with a plain-text message, as Zipkin does.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use sextant_model::{TraceId, now_unix_nanos};
use sextant_storage::engine::{TagQuery, TagScope};
use sextant_storage::search::{AttributeFilter, DurationScope, MAX_SEARCH_LIMIT, SearchQuery};

use super::ApiState;
use super::plain::{Params, PlainError, number, param};

/// `limit` when the request has none (Zipkin's default).
const DEFAULT_LIMIT: usize = 10;
/// `lookback` when the request has none: one day, Zipkin's default `QUERY_LOOKBACK`.
const DEFAULT_LOOKBACK_MILLIS: u64 = 86_400_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_MICRO: u64 = 1_000;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v2/services", get(services))
        .route("/api/v2/spans", get(span_names))
        .route("/api/v2/traces", get(traces))
        .route("/api/v2/trace/{trace_id}", get(trace))
        .route("/api/v2/traceMany", get(trace_many))
        .route("/api/v2/dependencies", get(dependencies))
        .route("/api/v2/autocompleteKeys", get(autocomplete_keys))
        .route("/api/v2/autocompleteValues", get(autocomplete_values))
        .with_state(state)
}

async fn services(State(state): State<Arc<ApiState>>) -> Json<Vec<String>> {
    Json(state.engine.services())
}

async fn span_names(
    State(state): State<Arc<ApiState>>,
    Query(params): Params,
) -> Result<Json<Vec<String>>, PlainError> {
    let service = param(&params, "serviceName").ok_or_else(|| PlainError::bad_request("serviceName is required"))?;
    let mut names: Vec<String> =
        state.engine.operations(service).unwrap_or_default().into_iter().map(|(name, _)| name).collect();
    names.dedup();
    Ok(Json(names))
}

async fn trace(State(state): State<Arc<ApiState>>, Path(trace_id): Path<String>) -> Result<Json<Value>, PlainError> {
    let id = parse_trace_id(&trace_id)?;
    let spans = state.engine.trace(id).await?;
    if spans.is_empty() {
        return Err(PlainError::not_found(format!("trace {trace_id} not found")));
    }
    Ok(Json(sextant_codec::zipkin_json(&spans)))
}

async fn trace_many(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, PlainError> {
    let list = param(&params, "traceIds").ok_or_else(|| PlainError::bad_request("traceIds is required"))?;
    let ids = list
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(parse_trace_id)
        .collect::<Result<Vec<_>, _>>()?;
    stored_traces(&state, &ids).await
}

/// The stored traces among `ids`, in order, each a list of Zipkin spans.
async fn stored_traces(state: &ApiState, ids: &[TraceId]) -> Result<Json<Value>, PlainError> {
    let traces: Vec<Value> = state
        .engine
        .traces(ids)
        .await?
        .iter()
        .filter(|spans| !spans.is_empty())
        .map(|spans| sextant_codec::zipkin_json(spans))
        .collect();
    Ok(Json(Value::Array(traces)))
}

async fn traces(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, PlainError> {
    let query = parse_traces_query(&params, now_unix_nanos())?;
    let found = state.engine.search(&query).await?;
    let ids: Vec<TraceId> = found.traces.iter().map(|t| t.trace_id).collect();
    stored_traces(&state, &ids).await
}

async fn dependencies(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, PlainError> {
    let end_millis = number(&params, "endTs")?.ok_or_else(|| PlainError::bad_request("endTs is required"))?;
    let lookback_millis = number(&params, "lookback")?.unwrap_or(DEFAULT_LOOKBACK_MILLIS);
    let (from, to) = (
        end_millis.saturating_sub(lookback_millis).saturating_mul(NANOS_PER_MILLI),
        end_millis.saturating_mul(NANOS_PER_MILLI),
    );
    let links: Vec<Value> = super::dependencies::dependencies(&state, from, to)
        .await?
        .into_iter()
        .map(|link| {
            serde_json::json!({
                "parent": link.parent, "child": link.child, "callCount": link.call_count, "errorCount": link.error_count
            })
        })
        .collect();
    Ok(Json(Value::Array(links)))
}

/// Tags of the last day (Zipkin's default lookback).
fn recent_tags() -> TagQuery {
    let now = now_unix_nanos();
    TagQuery {
        start_unix_nanos: now.saturating_sub(DEFAULT_LOOKBACK_MILLIS * NANOS_PER_MILLI),
        end_unix_nanos: now,
        ..TagQuery::default()
    }
}

async fn autocomplete_keys(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<String>>, PlainError> {
    let names = state.engine.tag_names(&recent_tags()).await?;
    let mut keys: Vec<String> = [TagScope::Span, TagScope::Resource]
        .iter()
        .filter_map(|scope| names.get(scope))
        .flatten()
        .filter(|key| *key != "service.name")
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    Ok(Json(keys))
}

async fn autocomplete_values(
    State(state): State<Arc<ApiState>>,
    Query(params): Params,
) -> Result<Json<Vec<String>>, PlainError> {
    let key = param(&params, "key").ok_or_else(|| PlainError::bad_request("key is required"))?;
    let values = state.engine.tag_values(None, key, &recent_tags()).await?;
    Ok(Json(values.values.iter().map(ToString::to_string).collect()))
}

/// Zipkin trace IDs are 16 or 32 hex digits; shorter ones are left-padded as Zipkin reads them.
fn parse_trace_id(text: &str) -> Result<TraceId, PlainError> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PlainError::bad_request(format!(
            "invalid trace ID {text:?}: expected up to 32 hexadecimal digits"
        )));
    }
    TraceId::parse_hex(&format!("{text:0>32}"))
        .map_err(|e| PlainError::bad_request(format!("invalid trace ID {text:?}: {e}")))
}

/// `GET /api/v2/traces` parameters as a search.
fn parse_traces_query(params: &[(String, String)], now_nanos: u64) -> Result<SearchQuery, PlainError> {
    let mut query = SearchQuery { duration_scope: DurationScope::Span, ..SearchQuery::default() };
    query.service = param(params, "serviceName").filter(|s| !s.is_empty()).map(str::to_string);
    // Zipkin's UI sends `spanName=all` for "any".
    query.operation = param(params, "spanName").filter(|s| !s.is_empty() && *s != "all").map(str::to_string);
    if let Some(remote) = param(params, "remoteServiceName").filter(|s| !s.is_empty() && *s != "all") {
        query.attributes.push(AttributeFilter { key: "peer.service".into(), value: remote.to_string() });
    }
    if let Some(annotations) = param(params, "annotationQuery") {
        for term in annotations.split(" and ").map(str::trim).filter(|t| !t.is_empty()) {
            match term.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    query.attributes.push(AttributeFilter { key: key.to_string(), value: value.to_string() })
                }
                _ if term == "error" => query.errors_only = true,
                _ => {
                    return Err(PlainError::bad_request(format!(
                        "annotationQuery term {term:?}: only key=value terms and `error` are supported"
                    )));
                }
            }
        }
    }
    query.min_duration_nanos = number(params, "minDuration")?.map(|us| us.saturating_mul(NANOS_PER_MICRO));
    query.max_duration_nanos = number(params, "maxDuration")?.map(|us| us.saturating_mul(NANOS_PER_MICRO));
    let end_millis = number(params, "endTs")?.unwrap_or(now_nanos / NANOS_PER_MILLI);
    let lookback_millis = number(params, "lookback")?.unwrap_or(DEFAULT_LOOKBACK_MILLIS);
    query.end_unix_nanos = Some(end_millis.saturating_mul(NANOS_PER_MILLI));
    query.start_unix_nanos = Some(end_millis.saturating_sub(lookback_millis).saturating_mul(NANOS_PER_MILLI));
    let limit = number(params, "limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(PlainError::bad_request(format!("limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}")));
    }
    query.limit = limit;
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn traces_parameters_become_a_span_level_search() {
        let now = 1_700_000_000_000 * NANOS_PER_MILLI;
        let q = parse_traces_query(
            &pairs("serviceName=cart&spanName=get&remoteServiceName=db&annotationQuery=http.method=GET and error&minDuration=1500&maxDuration=9000&endTs=1699999999000&lookback=60000&limit=5"),
            now,
        )
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("cart"));
        assert_eq!(q.operation.as_deref(), Some("get"));
        assert_eq!(
            q.attributes,
            vec![
                AttributeFilter { key: "peer.service".into(), value: "db".into() },
                AttributeFilter { key: "http.method".into(), value: "GET".into() }
            ]
        );
        assert!(q.errors_only);
        assert_eq!((q.min_duration_nanos, q.max_duration_nanos), (Some(1_500_000), Some(9_000_000)));
        assert_eq!(q.duration_scope, DurationScope::Span);
        assert_eq!(q.end_unix_nanos, Some(1_699_999_999_000 * NANOS_PER_MILLI));
        assert_eq!(q.start_unix_nanos, Some(1_699_999_939_000 * NANOS_PER_MILLI));
        assert_eq!(q.limit, 5);

        let defaults = parse_traces_query(&pairs("spanName=all"), now).unwrap();
        assert_eq!((defaults.service, defaults.operation, defaults.limit), (None, None, DEFAULT_LIMIT));
        assert_eq!(defaults.end_unix_nanos, Some(now));
        assert_eq!(defaults.start_unix_nanos, Some(now - DEFAULT_LOOKBACK_MILLIS * NANOS_PER_MILLI));
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        let message = |q: &str| parse_traces_query(&pairs(q), 0).unwrap_err().1;
        assert!(message("minDuration=1s").contains("minDuration must be a non-negative integer"));
        assert!(message("limit=0").contains("limit must be between 1"));
        assert!(message("annotationQuery=retried").contains("only key=value terms"));
        assert_eq!(parse_trace_id("abc").unwrap(), TraceId::parse_hex(&format!("{:0>32}", "abc")).unwrap());
        assert!(parse_trace_id("xyz").unwrap_err().1.contains("hexadecimal"));
        assert!(parse_trace_id(&"1".repeat(33)).is_err());
    }
}
