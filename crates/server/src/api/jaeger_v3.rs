//! Jaeger's api_v3 over HTTP (the grpc-gateway JSON of `jaeger.api_v3.QueryService`), on the
//! query port, as Jaeger v2 serves it:
//!
//! - `GET /api/v3/services` → `{"services": [...]}`.
//! - `GET /api/v3/operations?service=&spanKind=` (or `span_kind`) → `{"operations": [{"name",
//!   "spanKind"}]}`.
//! - `GET /api/v3/traces/{trace_id}` (`startTime`/`endTime`, RFC 3339, accepted and unused: a
//!   trace is whole wherever its spans are) → `{"result": {"resourceSpans": [...]}}` (OTLP/JSON).
//! - `GET /api/v3/traces` with `query.serviceName`, `query.operationName`,
//!   `query.startTimeMin` and `query.startTimeMax` (RFC 3339, both required),
//!   `query.durationMin`/`query.durationMax` (Go durations, of a span), `query.searchDepth`
//!   (traces returned, default 20), `query.attributes` (a JSON object of strings); the
//!   snake_case names of earlier Jaeger releases (`query.service_name`, `query.num_traces`, …)
//!   too. The spans of every trace found, in one `{"result": {"resourceSpans": [...]}}`.
//!
//! - `GET /api/v3/trace-summaries` with the same parameters → `{"summaries": [{"traceId",
//!   "rootServiceName", "rootOperationName", "minStartTimeUnixNano", "maxEndTimeUnixNano",
//!   "spanCount", "errorSpanCount", "orphanSpanCount", "services": [{"name", "spanCount",
//!   "errorSpanCount"}]}]}`, newest first (an empty list when nothing matches).
//!
//! Errors: `{"error": {"httpCode", "message"}}` with that status; no trace found is a 404 with
//! the message `No traces found`, as in Jaeger.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sextant_model::{Span, SpanKind, TraceId};
use sextant_storage::search::{AttributeFilter, DurationScope, MAX_SEARCH_LIMIT, SearchQuery};

use super::ApiState;
use super::params::{parse_go_duration, parse_timestamp};

/// Traces returned when `query.searchDepth` is not given.
const DEFAULT_SEARCH_DEPTH: usize = 20;

pub fn router() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(trace_summaries))
}

/// An api_v3 error: `{"error": {"httpCode", "message"}}`.
#[derive(Debug)]
struct V3Error(StatusCode, String);

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "httpCode": self.0.as_u16(), "message": self.1 } });
        (self.0, Json(body)).into_response()
    }
}

impl From<sextant_storage::engine::EngineError> for V3Error {
    fn from(error: sextant_storage::engine::EngineError) -> Self {
        V3Error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

fn malformed(name: &str, problem: impl std::fmt::Display) -> V3Error {
    V3Error(StatusCode::BAD_REQUEST, format!("malformed parameter {name}: {problem}"))
}

fn no_traces() -> V3Error {
    V3Error(StatusCode::NOT_FOUND, "No traces found".to_string())
}

type Params = Query<Vec<(String, String)>>;

/// The value of the first of `names` present (canonical name first, then older aliases), with
/// the name it was given under.
fn param<'a>(params: &'a [(String, String)], names: &[&'a str]) -> Option<(&'a str, &'a str)> {
    names.iter().find_map(|name| {
        params.iter().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| (*name, value.as_str()))
    })
}

async fn services(State(state): State<Arc<ApiState>>) -> Json<Value> {
    Json(json!({ "services": state.engine.services() }))
}

async fn operations(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, V3Error> {
    let service = param(&params, &["service"]).map(|(_, v)| v).unwrap_or_default();
    let kind = param(&params, &["spanKind", "span_kind"]).map(|(_, v)| v.to_ascii_lowercase());
    let operations: Vec<Value> = state
        .engine
        .operations(service)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, k)| kind.as_deref().is_none_or(|wanted| kind_name(*k) == wanted))
        .map(|(name, k)| {
            let kind = kind_name(k);
            // Proto3 JSON leaves out empty strings.
            if kind.is_empty() { json!({ "name": name }) } else { json!({ "name": name, "spanKind": kind }) }
        })
        .collect();
    Ok(Json(json!({ "operations": operations })))
}

/// Jaeger's span kind names: lowercase, empty for unspecified.
fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "",
        other => other.short_name(),
    }
}

async fn get_trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, V3Error> {
    let id = TraceId::parse_hex(&trace_id).map_err(|e| malformed("trace_id", e))?;
    for names in [["startTime", "start_time"], ["endTime", "end_time"]] {
        if let Some((name, value)) = param(&params, &names) {
            parse_timestamp(value).map_err(|e| malformed(name, e))?;
        }
    }
    let spans = state.engine.trace(id).await?;
    if spans.is_empty() {
        return Err(no_traces());
    }
    Ok(Json(result(&spans)))
}

async fn find_traces(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, V3Error> {
    let query = parse_find_traces(&params)?;
    let found = state.engine.search(&query).await?;
    let ids: Vec<TraceId> = found.traces.iter().map(|t| t.trace_id).collect();
    let spans: Vec<Span> = state.engine.traces(&ids).await?.into_iter().flatten().collect();
    if spans.is_empty() {
        return Err(no_traces());
    }
    Ok(Json(result(&spans)))
}

async fn trace_summaries(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, V3Error> {
    let query = parse_find_traces(&params)?;
    let found = state.engine.search(&query).await?;
    let ids: Vec<TraceId> = found.traces.iter().map(|t| t.trace_id).collect();
    let traces = state.engine.traces(&ids).await?;
    let summaries: Vec<Value> = found
        .traces
        .iter()
        .zip(&traces)
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(summary, spans)| trace_summary(summary, spans))
        .collect();
    Ok(Json(json!({ "summaries": summaries })))
}

/// One trace's summary, with span and error counts per service and the spans whose parent is
/// not in the trace.
fn trace_summary(summary: &sextant_storage::search::TraceSummary, spans: &[Span]) -> Value {
    let ids: std::collections::HashSet<sextant_model::SpanId> = spans.iter().map(|s| s.span_id).collect();
    let orphans = spans.iter().filter(|s| s.parent_span_id.is_some_and(|parent| !ids.contains(&parent))).count();
    let mut services: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
    for span in spans {
        let (count, errors) = services.entry(span.service_name()).or_default();
        *count += 1;
        *errors += usize::from(span.is_error());
    }
    let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(summary.start_unix_nanos);
    json!({
        "traceId": summary.trace_id.to_hex(),
        "rootServiceName": summary.root_service,
        "rootOperationName": summary.root_name,
        "minStartTimeUnixNano": summary.start_unix_nanos.to_string(),
        "maxEndTimeUnixNano": end.to_string(),
        "spanCount": spans.len(),
        "errorSpanCount": spans.iter().filter(|s| s.is_error()).count(),
        "orphanSpanCount": orphans,
        "services": services
            .into_iter()
            .map(|(name, (count, errors))| json!({ "name": name, "spanCount": count, "errorSpanCount": errors }))
            .collect::<Vec<_>>(),
    })
}

/// `{"result": <OTLP/JSON TracesData>}`, the grpc-gateway's wrapping of a streamed answer.
fn result(spans: &[Span]) -> Value {
    json!({ "result": sextant_codec::otlp_json(spans) })
}

fn parse_find_traces(params: &[(String, String)]) -> Result<SearchQuery, V3Error> {
    let mut query = SearchQuery { duration_scope: DurationScope::Span, ..SearchQuery::default() };
    query.service = param(params, &["query.serviceName", "query.service_name"]).map(|(_, v)| v.to_string());
    query.operation = param(params, &["query.operationName", "query.operation_name"]).map(|(_, v)| v.to_string());
    let min = param(params, &["query.startTimeMin", "query.start_time_min"]);
    let max = param(params, &["query.startTimeMax", "query.start_time_max"]);
    let (Some((min_name, min)), Some((max_name, max))) = (min, max) else {
        return Err(V3Error(
            StatusCode::BAD_REQUEST,
            "query.startTimeMin and query.startTimeMax are required".to_string(),
        ));
    };
    query.start_unix_nanos = Some(parse_timestamp(min).map_err(|e| malformed(min_name, e))?);
    query.end_unix_nanos = Some(parse_timestamp(max).map_err(|e| malformed(max_name, e))?);
    if let Some((name, value)) = param(params, &["query.durationMin", "query.duration_min"]) {
        query.min_duration_nanos = Some(parse_go_duration(value).map_err(|e| malformed(name, e))?);
    }
    if let Some((name, value)) = param(params, &["query.durationMax", "query.duration_max"]) {
        query.max_duration_nanos = Some(parse_go_duration(value).map_err(|e| malformed(name, e))?);
    }
    query.limit = DEFAULT_SEARCH_DEPTH;
    if let Some((name, value)) = param(params, &["query.searchDepth", "query.search_depth", "query.num_traces"]) {
        let depth: usize = value.parse().map_err(|_| malformed(name, format!("{value:?} is not a whole number")))?;
        if depth == 0 || depth > MAX_SEARCH_LIMIT {
            return Err(malformed(name, format!("must be between 1 and {MAX_SEARCH_LIMIT}")));
        }
        query.limit = depth;
    }
    if let Some((name, value)) = param(params, &["query.attributes"]) {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(value).map_err(|e| malformed(name, e))?;
        query.attributes = map.into_iter().map(|(key, value)| AttributeFilter { key, value }).collect();
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn find_traces_parameters_canonical_and_older_names() {
        let query = parse_find_traces(&pairs(&[
            ("query.serviceName", "cart"),
            ("query.operation_name", "checkout"),
            ("query.startTimeMin", "2026-11-22T10:00:00Z"),
            ("query.start_time_max", "2026-11-22T10:00:01.5Z"),
            ("query.durationMin", "1.5ms"),
            ("query.duration_max", "2s"),
            ("query.num_traces", "7"),
            ("query.attributes", r#"{"http.method":"GET","region":"eu"}"#),
        ]))
        .unwrap();
        assert_eq!(query.service.as_deref(), Some("cart"));
        assert_eq!(query.operation.as_deref(), Some("checkout"));
        assert_eq!(query.start_unix_nanos, Some(1_795_341_600_000_000_000));
        assert_eq!(query.end_unix_nanos, Some(1_795_341_601_500_000_000));
        assert_eq!((query.min_duration_nanos, query.max_duration_nanos), (Some(1_500_000), Some(2_000_000_000)));
        assert_eq!(query.duration_scope, DurationScope::Span);
        assert_eq!(query.limit, 7);
        assert_eq!(
            query.attributes,
            vec![
                AttributeFilter { key: "http.method".into(), value: "GET".into() },
                AttributeFilter { key: "region".into(), value: "eu".into() }
            ]
        );
    }

    #[test]
    fn find_traces_errors_name_the_parameter() {
        let times = [("query.startTimeMin", "2026-11-22T10:00:00Z"), ("query.startTimeMax", "2026-11-22T11:00:00Z")];
        let error = |extra: &[(&str, &str)]| {
            let mut all = times.to_vec();
            all.extend_from_slice(extra);
            parse_find_traces(&pairs(&all)).unwrap_err().1
        };
        assert_eq!(
            parse_find_traces(&pairs(&times[..1])).unwrap_err().1,
            "query.startTimeMin and query.startTimeMax are required"
        );
        assert!(error(&[("query.durationMin", "fast")]).starts_with("malformed parameter query.durationMin:"));
        assert!(error(&[("query.searchDepth", "x")]).starts_with("malformed parameter query.searchDepth:"));
        assert!(error(&[("query.attributes", "[1]")]).starts_with("malformed parameter query.attributes:"));
        let bad_time = parse_find_traces(&pairs(&[("query.start_time_min", "noon"), times[1]])).unwrap_err().1;
        assert!(bad_time.starts_with("malformed parameter query.start_time_min:"), "{bad_time}");
    }
}
