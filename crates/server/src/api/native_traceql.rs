//! TraceQL and attribute autocompletion on the query port, in the native API's shapes, for
//! the web UI (Tempo's own endpoints live on their port, `tempo.rs`).
//!
//! - `GET /api/v1/traceql/search?q=&start=&end=&limit=`: runs the query with
//!   [`traceql_search::tempo_search`] (`start`/`end` in unix nanoseconds or RFC 3339, `limit`
//!   default 20) and answers the native search's trace summaries, each with the spans that
//!   matched (`matchedSpans`, at most [`LISTED_MATCHES`], and their count `matched`), plus
//!   `inspectedTraces`. A query that does not parse answers 400 `invalid_traceql` with the
//!   error's `offset`, `line` and `column`, so an editor can underline it.
//! - `GET /api/v1/traceql/parse?q=`: `{"valid": true, "canonical"}` or `{"valid": false,
//!   "error": {"message", "offset", "line", "column"}}` without searching: checks as one types.
//! - `GET /api/v1/tags`: `{"span": [keys], "resource": [keys], …}` by scope, from recent spans.
//! - `GET /api/v1/tags/{key}/values?scope=span|resource|…`: `{"values": [text], "truncated"}`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use sextant_model::{Span, TraceId};
use sextant_storage::engine::{EngineError, TagQuery, TagScope};
use sextant_storage::search::MAX_SEARCH_LIMIT;

use super::params::parse_timestamp;
use super::plain::{PlainError, param};
use super::tempo::Bounds;
use super::{ApiError, ApiState, traceql_search};

const DEFAULT_LIMIT: usize = 20;
/// Matched spans listed per trace.
pub const LISTED_MATCHES: usize = 5;

pub fn router() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/traceql/search", get(search))
        .route("/api/v1/traceql/parse", get(check))
        .route("/api/v1/tags", get(tag_names))
        .route("/api/v1/tags/{key}/values", get(tag_values))
}

type Params = Query<Vec<(String, String)>>;

fn bad(message: String) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

/// The parse error of `q` as JSON, or `None` when it parses and compiles.
fn query_error(q: &str) -> Option<Value> {
    match sextant_traceql::parse(q) {
        Err(e) => Some(json!({ "message": e.message, "offset": e.offset, "line": e.line, "column": e.column })),
        Ok(query) => sextant_traceql::Compiled::new(&query).err().map(|e| json!({ "message": e.to_string() })),
    }
}

async fn check(Query(params): Params) -> Json<Value> {
    let q = param(&params, "q").unwrap_or("");
    Json(match query_error(q) {
        Some(error) => json!({ "valid": false, "error": error }),
        None => json!({ "valid": true }),
    })
}

/// A search's error: the API's, or a query that does not parse, answered with its position.
enum SearchError {
    Api(ApiError),
    Syntax(Value),
}

impl From<ApiError> for SearchError {
    fn from(error: ApiError) -> SearchError {
        SearchError::Api(error)
    }
}

impl From<EngineError> for SearchError {
    fn from(error: EngineError) -> SearchError {
        SearchError::Api(error.into())
    }
}

impl IntoResponse for SearchError {
    fn into_response(self) -> Response {
        match self {
            SearchError::Api(error) => error.into_response(),
            SearchError::Syntax(mut error) => {
                error["code"] = "invalid_traceql".into();
                (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
            }
        }
    }
}

async fn search(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, SearchError> {
    let q = param(&params, "q").ok_or_else(|| bad("q: a TraceQL query is required".to_string()))?;
    if let Some(error) = query_error(q) {
        return Err(SearchError::Syntax(error));
    }
    let timestamp = |name: &str| {
        param(&params, name).map(|text| parse_timestamp(text).map_err(|e| bad(format!("{name}: {e}")))).transpose()
    };
    let limit = match param(&params, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_SEARCH_LIMIT).contains(l))
            .ok_or_else(|| bad(format!("limit: {text:?} must be a number from 1 to {MAX_SEARCH_LIMIT}")))?,
    };
    let bounds = Bounds { start_unix_nanos: timestamp("start")?, end_unix_nanos: timestamp("end")?, limit };
    let answer = traceql_search::tempo_search(&state, q, &bounds, LISTED_MATCHES).await.map_err(plain_to_api)?;
    let empty = Vec::new();
    let found: Vec<(&Value, TraceId)> = answer["traces"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|result| Some((result, tempo_id(result["traceID"].as_str()?)?)))
        .collect();
    let ids: Vec<TraceId> = found.iter().map(|(_, id)| *id).collect();
    let all_spans = state.engine.traces(&ids).await?;
    let traces: Vec<Value> = found
        .iter()
        .map(|(result, _)| result)
        .zip(&all_spans)
        .map(|(result, spans)| {
            let mut summary = summary_json(spans);
            let set = &result["spanSet"];
            summary["matched"] = set["matched"].clone();
            summary["matchedSpans"] = set["spans"].clone();
            summary
        })
        .collect();
    Ok(Json(json!({ "traces": traces, "inspectedTraces": answer["metrics"]["inspectedTraces"] })))
}

fn plain_to_api(error: PlainError) -> ApiError {
    ApiError { status: error.0, code: "invalid_query", message: error.1 }
}

/// Tempo's search answer writes trace IDs as hex without leading zeros.
fn tempo_id(text: &str) -> Option<TraceId> {
    TraceId::parse_hex(&format!("{text:0>32}")).ok()
}

/// A trace's summary in the native search's shape, from its spans.
fn summary_json(spans: &[Span]) -> Value {
    let root =
        spans.iter().find(|s| s.parent_span_id.is_none()).or_else(|| spans.iter().min_by_key(|s| s.start_unix_nanos));
    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0);
    let services: BTreeSet<&str> = spans.iter().map(Span::service_name).collect();
    json!({
        "traceId": root.map(|s| s.trace_id.to_hex()),
        "rootService": root.map(Span::service_name),
        "rootName": root.map(|s| s.name.as_str()),
        "startTimeUnixNano": start.to_string(),
        "durationNanos": end.saturating_sub(start).to_string(),
        "spanCount": spans.len(),
        "errorCount": spans.iter().filter(|s| s.is_error()).count(),
        "services": services,
    })
}

fn tag_query(params: &[(String, String)]) -> Result<TagQuery, ApiError> {
    let mut query = TagQuery::default();
    if let Some(start) = param(params, "start") {
        query.start_unix_nanos = parse_timestamp(start).map_err(|e| bad(format!("start: {e}")))?;
    }
    if let Some(end) = param(params, "end") {
        query.end_unix_nanos = parse_timestamp(end).map_err(|e| bad(format!("end: {e}")))?;
    }
    Ok(query)
}

async fn tag_names(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let names = state.engine.tag_names(&tag_query(&params)?).await?;
    let by_scope: Map<String, Value> =
        TagScope::ALL.iter().map(|scope| (scope.name().to_string(), json!(names.get(scope)))).collect();
    Ok(Json(Value::Object(by_scope)))
}

fn scope_named(name: &str) -> Result<TagScope, ApiError> {
    TagScope::ALL
        .into_iter()
        .find(|scope| scope.name() == name)
        .ok_or_else(|| bad(format!("scope: {name:?} is not span, resource, event, link or instrumentation")))
}

async fn tag_values(
    State(state): State<Arc<ApiState>>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let scope = param(&params, "scope").map(scope_named).transpose()?;
    let values = state.engine.tag_values(scope, &key, &tag_query(&params)?).await?;
    let texts: Vec<String> = values.values.iter().map(ToString::to_string).collect();
    Ok(Json(json!({ "values": texts, "truncated": values.truncated })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_carry_their_position() {
        let error = query_error("{ .a = }").expect("a value is missing");
        assert_eq!(error["offset"], 7);
        assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(1), Some(8)));
        assert!(query_error(r#"{ resource.service.name = "cart" } >> { status = error }"#).is_none());
    }

    #[test]
    fn tempo_ids_get_their_leading_zeros_back() {
        let id = tempo_id("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(tempo_id("5b8efff798038103d269b633813fc60c").unwrap(), id);
        assert_eq!(tempo_id("1f").unwrap().to_hex(), format!("{:0>32}", "1f"));
        assert!(tempo_id("xyz").is_none());
    }
}
