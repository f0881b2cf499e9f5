//! The Jaeger v1 HTTP query API, `/api/*`, answered as Jaeger's query service answers it, so
//! the Jaeger UI and Grafana's Jaeger data source work against Sextant unmodified.
//!
//! Every answer is Jaeger's envelope `{"data", "total", "limit": 0, "offset": 0, "errors"}`;
//! `total` is the length of `data` for services and operations and 0 for traces and
//! dependencies, as in Jaeger. Errors are `{"data": null, "total": 0, "limit": 0, "offset": 0,
//! "errors": [{"code", "msg"}]}` with the same status (400, 404 or 500), mapped in one place,
//! [`JaegerError`].
//!
//! - `GET /api/services`: service names, sorted.
//! - `GET /api/services/{service}/operations`: the service's span names, sorted, unique.
//! - `GET /api/operations?service=&spanKind=`: `[{"name", "spanKind"}]`, the kind lowercase
//!   (`server`, `client`, `producer`, `consumer`, `internal`; `""` when unspecified); with
//!   `spanKind`, only that kind. `service` is required.
//! - `GET /api/traces`: whole traces (see `params.rs` for the parameters). With `traceID`,
//!   those traces, the ones not found listed in `errors` as `{"msg": "trace not found",
//!   "traceID"}` (status 200). Otherwise a search: `service` (required), `operation`, the tags,
//!   `minDuration`/`maxDuration` and the `start`/`end` range must all hold on ONE span, as in
//!   Jaeger's memory, Badger and Elasticsearch stores (Jaeger's Cassandra store lets them hold
//!   on different spans); durations are the span's. Newest first, `limit` traces (default 20).
//! - `GET /api/traces/{traceID}`: `{"data": [trace]}`; 404 when no span of it is stored.
//! - `GET /api/dependencies?endTs=&lookback=&service=` (milliseconds; default now and 24 h):
//!   `[{"parent", "child", "callCount"}]`, the calls between services over the window, from
//!   the service graph (in memory and persisted; with `metrics.enabled = false`, from the
//!   newest [`super::dependencies::MAX_TRACES`] traces of the window instead), see
//!   [`super::dependencies`]; with `service`, only the links touching it.
//! - `GET /api/metrics/{latencies,calls,errors,minstep}`: Jaeger's Service Performance
//!   Monitoring API, answered from the span metrics (see [`spm`]).
//!
//! Known differences from Jaeger:
//! - tags are searched on span and resource attributes; Jaeger also searches event (log)
//!   fields. Of the tags Jaeger derives from the span itself, only `error=true` and
//!   `otel.status_code=ERROR` are searchable (as the error status); `span.kind`,
//!   `otel.scope.name` and the like are not;
//! - `limit` defaults to 20 (what the UI sends; Jaeger's server default is 100) and is capped
//!   at 1,000; `lookback` is honoured when `start` is absent (Jaeger ignores it);
//! - `start`/`end` on `GET /api/traces/{traceID}` and with `traceID` are checked but not
//!   applied; no adjusters run (clock skew, span ID deduplication of Zipkin shared spans);
//! - a resource without `service.name` is the service `unknown_service` (Jaeger: an empty
//!   name, or `OTLPResourceNoServiceName` for a resource without attributes);
//! - error bodies are sent as `application/json` (Jaeger: `text/plain`).

pub mod model;
pub mod params;
pub mod spm;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sextant_model::{Span, SpanKind, TraceId, now_unix_nanos};
use sextant_storage::engine::{Engine, EngineError};

use super::ApiState;
use super::dependencies;
use model::{trace_id_string, trace_json};
use params::{parse_dependencies_window, parse_trace_id, parse_trace_query};

/// An error in Jaeger's shape: the status and a message.
#[derive(Debug)]
pub struct JaegerError {
    pub status: StatusCode,
    pub msg: String,
}

impl JaegerError {
    fn bad_request(msg: impl Into<String>) -> JaegerError {
        JaegerError { status: StatusCode::BAD_REQUEST, msg: msg.into() }
    }
}

impl From<EngineError> for JaegerError {
    fn from(error: EngineError) -> JaegerError {
        tracing::error!(%error, "jaeger query failed");
        JaegerError { status: StatusCode::INTERNAL_SERVER_ERROR, msg: error.to_string() }
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let body = json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": self.status.as_u16(), "msg": self.msg }],
        });
        (self.status, Json(body)).into_response()
    }
}

/// Jaeger's success envelope.
fn envelope(data: Value, total: usize, errors: Option<Vec<Value>>) -> Json<Value> {
    Json(json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": errors }))
}

/// A span kind as Jaeger names it: lowercase, empty when unspecified.
fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        kind => kind.short_name(),
    }
}

pub async fn services(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let services = state.engine.services();
    let total = services.len();
    envelope(json!(services), total, None)
}

/// The legacy operations endpoint the UI's search form still calls: names only.
pub async fn service_operations(State(state): State<Arc<ApiState>>, Path(service): Path<String>) -> Json<Value> {
    let mut names: Vec<String> =
        state.engine.operations(&service).unwrap_or_default().into_iter().map(|(name, _)| name).collect();
    names.dedup(); // sorted by name, then kind
    let total = names.len();
    envelope(json!(names), total, None)
}

pub async fn operations(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let value = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
    let service = value("service");
    if service.is_empty() {
        return Err(JaegerError::bad_request("parameter 'service' is required"));
    }
    let span_kind = value("spanKind");
    let operations: Vec<Value> = state
        .engine
        .operations(service)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, kind)| span_kind.is_empty() || kind_name(*kind) == span_kind)
        .map(|(name, kind)| json!({ "name": name, "spanKind": kind_name(kind) }))
        .collect();
    let total = operations.len();
    Ok(envelope(json!(operations), total, None))
}

/// The traces with these IDs, in order; an ID with no stored span has no entry.
async fn fetch_traces(engine: &Engine, ids: &[TraceId]) -> Result<Vec<(TraceId, Vec<Span>)>, EngineError> {
    let traces = engine.traces(ids).await?;
    Ok(ids.iter().copied().zip(traces).filter(|(_, spans)| !spans.is_empty()).collect())
}

pub async fn traces(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let query = parse_trace_query(&params, now_unix_nanos()).map_err(JaegerError::bad_request)?;
    if !query.trace_ids.is_empty() {
        let found = fetch_traces(&state.engine, &query.trace_ids).await?;
        let errors: Vec<Value> = query
            .trace_ids
            .iter()
            .filter(|id| !found.iter().any(|(found_id, _)| found_id == *id))
            .map(|id| json!({ "msg": "trace not found", "traceID": trace_id_string(id) }))
            .collect();
        let data: Vec<Value> = found.iter().map(|(_, spans)| trace_json(spans)).collect();
        return Ok(envelope(json!(data), 0, (!errors.is_empty()).then_some(errors)));
    }
    let result = state.engine.search(&query.search).await?;
    let ids: Vec<TraceId> = result.traces.iter().map(|t| t.trace_id).collect();
    let found = fetch_traces(&state.engine, &ids).await?;
    let data: Vec<Value> = found.iter().map(|(_, spans)| trace_json(spans)).collect();
    Ok(envelope(json!(data), 0, None))
}

pub async fn trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let id = parse_trace_id(&trace_id).map_err(JaegerError::bad_request)?;
    for param in ["start", "end"] {
        if let Some((_, value)) = params.iter().find(|(k, v)| k == param && !v.is_empty())
            && value.parse::<i64>().is_err()
        {
            return Err(JaegerError::bad_request(format!(
                "unable to parse param '{param}': {value:?} is not an integer"
            )));
        }
    }
    let spans = state.engine.trace(id).await?;
    if spans.is_empty() {
        return Err(JaegerError { status: StatusCode::NOT_FOUND, msg: "trace not found".to_string() });
    }
    Ok(envelope(json!([trace_json(&spans)]), 0, None))
}

pub async fn dependencies(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let (from, to) = parse_dependencies_window(&params, now_unix_nanos()).map_err(JaegerError::bad_request)?;
    let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str()).unwrap_or("");
    let links: Vec<Value> = dependencies::dependencies(&state, from, to)
        .await?
        .into_iter()
        .filter(|link| service.is_empty() || link.parent == service || link.child == service)
        .map(|link| json!({ "parent": link.parent, "child": link.child, "callCount": link.call_count }))
        .collect();
    Ok(envelope(json!(links), 0, None))
}
