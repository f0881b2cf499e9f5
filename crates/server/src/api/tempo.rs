//! Grafana Tempo's HTTP API, on a port of its own (`query.tempo_address`, :3200 as Tempo's), so
//! Grafana's Tempo data source and Tempo's clients work against Sextant:
//!
//! - `GET /ready`, `GET /api/echo`, `GET /api/status/buildinfo`.
//! - `GET /api/traces/{id}`: `{"batches": [...]}`; `GET /api/v2/traces/{id}`: `{"trace":
//!   {"resourceSpans": [...]}, "metrics": {}}`. Both in protobuf (Tempo's `Trace` and
//!   `TraceByIDResponse`) when `Accept` asks for `application/protobuf`. Span and trace IDs in
//!   the JSON are base64, as Tempo writes them.
//! - `GET /api/search`: `tags` (logfmt `key=value` pairs: `service.name`, `name` (the span name),
//!   `status.code=error`, any other attribute), `minDuration`/`maxDuration` (of the trace),
//!   `start`/`end` (unix seconds), `limit` (default 20), `spss` (spans listed per span set,
//!   default 3); or `q`, a TraceQL query. Newest traces first.
//! - `GET /api/search/tags`, `/api/v2/search/tags` (`scope`), `/api/search/tag/{tag}/values`,
//!   `/api/v2/search/tag/{tag}/values` (scoped tags such as `resource.service.name`, and the
//!   intrinsics `name`, `status`, `kind`, `rootServiceName`, `rootName`): attribute keys and
//!   values from the head and the newest blocks (`start`/`end` narrow them).
//! - `GET /api/metrics/query_range`, `GET /api/metrics/query`: TraceQL metrics
//!   ([`super::tempo_metrics`]).
//!
//! Errors are plain text with status 400 or 404, as Tempo's.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sextant_model::{AnyValue, Span, TraceId};
use sextant_storage::engine::{TagQuery, TagScope};
use sextant_storage::search::{AttributeFilter, DurationScope, MAX_SEARCH_LIMIT, SearchQuery, TraceSummary};

use super::ApiState;
use super::params::parse_go_duration;
use super::plain::{Params, PlainError, number, param};

const DEFAULT_LIMIT: usize = 20;
const DEFAULT_SPANS_PER_SPAN_SET: usize = 3;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// The intrinsics Tempo lists under the `intrinsic` scope.
const INTRINSICS: [&str; 25] = [
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/ready", get(|| async { "ready" }))
        .route("/api/echo", get(|| async { "echo" }))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{trace_id}", get(trace_v1))
        .route("/api/v2/traces/{trace_id}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{tag}/values", get(tag_values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tag_values_v2))
        .route("/api/metrics/query_range", get(super::tempo_metrics::query_range))
        .route("/api/metrics/query", get(super::tempo_metrics::query_instant))
        .with_state(state)
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}

// ---- traces by ID ----

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/protobuf"))
}

async fn trace_spans(state: &ApiState, trace_id: &str) -> Result<Vec<Span>, PlainError> {
    let text = trace_id.trim();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PlainError::bad_request(format!(
            "invalid trace id {trace_id:?}: expected up to 32 hexadecimal digits"
        )));
    }
    let id = TraceId::parse_hex(&format!("{text:0>32}")).map_err(|e| PlainError::bad_request(e.to_string()))?;
    let spans = state.engine.trace(id).await?;
    if spans.is_empty() {
        return Err(PlainError::not_found("trace not found"));
    }
    Ok(spans)
}

/// The spans as OTLP `TracesData` protobuf: the wire form of Tempo's `Trace` (its field 1,
/// `batches`, is `ResourceSpans` as `TracesData`'s field 1 is).
fn trace_protobuf(spans: &[Span]) -> Vec<u8> {
    sextant_codec::encode_spans(spans)
}

fn protobuf_response(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], Bytes::from(bytes)).into_response()
}

async fn trace_v1(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PlainError> {
    let spans = trace_spans(&state, &trace_id).await?;
    if wants_protobuf(&headers) {
        return Ok(protobuf_response(trace_protobuf(&spans)));
    }
    let mut otlp = sextant_codec::otlp_json(&spans);
    ids_to_base64(&mut otlp);
    Ok(axum::Json(json!({ "batches": otlp["resourceSpans"] })).into_response())
}

async fn trace_v2(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PlainError> {
    let spans = trace_spans(&state, &trace_id).await?;
    if wants_protobuf(&headers) {
        // TraceByIDResponse { Trace trace = 1; }: the trace as a length-delimited field 1.
        let trace = trace_protobuf(&spans);
        let mut bytes = Vec::with_capacity(trace.len() + 8);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(trace.len() as u64, &mut bytes);
        bytes.extend_from_slice(&trace);
        return Ok(protobuf_response(bytes));
    }
    let mut otlp = sextant_codec::otlp_json(&spans);
    ids_to_base64(&mut otlp);
    Ok(axum::Json(json!({ "trace": otlp, "metrics": {} })).into_response())
}

/// Rewrites the hex `traceId`, `spanId` and `parentSpanId` of OTLP/JSON (links included) as
/// base64, the way Tempo's JSON carries bytes.
fn ids_to_base64(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if matches!(key.as_str(), "traceId" | "spanId" | "parentSpanId")
                    && let Value::String(text) = field
                    && let Ok(bytes) = hex::decode(text.as_str())
                {
                    *text = BASE64.encode(bytes);
                } else {
                    ids_to_base64(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ids_to_base64),
        _ => {}
    }
}

// ---- search ----

/// Tempo's trace IDs in search results: hex without leading zeros.
fn tempo_trace_id(id: &TraceId) -> String {
    let hex = id.to_hex();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() }
}

/// The shared parameters of a search: time range, limit, spans per span set.
struct SearchWindow {
    start_unix_nanos: Option<u64>,
    end_unix_nanos: Option<u64>,
    limit: usize,
    spans_per_set: usize,
}

fn search_window(params: &[(String, String)]) -> Result<SearchWindow, PlainError> {
    let limit = number(params, "limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(PlainError::bad_request(format!("invalid limit {limit}: expected 1 to {MAX_SEARCH_LIMIT}")));
    }
    let start = number(params, "start")?.map(|s| s.saturating_mul(NANOS_PER_SECOND));
    // `end` is a whole second: spans up to its last nanosecond count.
    let end = number(params, "end")?.map(|s| s.saturating_mul(NANOS_PER_SECOND).saturating_add(NANOS_PER_SECOND - 1));
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(PlainError::bad_request("invalid start and end: start is after end"));
    }
    let spans_per_set = number(params, "spss")?.map_or(DEFAULT_SPANS_PER_SPAN_SET, |n| n as usize);
    Ok(SearchWindow { start_unix_nanos: start, end_unix_nanos: end, limit, spans_per_set })
}

/// `tags=key=value key2="value 2"` (logfmt) and the duration bounds as a search.
fn tags_query(params: &[(String, String)], window: &SearchWindow) -> Result<SearchQuery, PlainError> {
    let mut query = SearchQuery {
        duration_scope: DurationScope::Trace,
        start_unix_nanos: window.start_unix_nanos,
        end_unix_nanos: window.end_unix_nanos,
        limit: window.limit,
        ..SearchQuery::default()
    };
    if let Some(tags) = param(params, "tags") {
        for (key, value) in parse_logfmt(tags)? {
            match key.as_str() {
                "service.name" => query.service = Some(value),
                "name" => query.operation = Some(value),
                "status.code" if value == "error" => query.errors_only = true,
                _ => query.attributes.push(AttributeFilter { key, value }),
            }
        }
    }
    if let Some(text) = param(params, "minDuration") {
        query.min_duration_nanos =
            Some(parse_go_duration(text).map_err(|e| PlainError::bad_request(format!("invalid minDuration: {e}")))?);
    }
    if let Some(text) = param(params, "maxDuration") {
        query.max_duration_nanos =
            Some(parse_go_duration(text).map_err(|e| PlainError::bad_request(format!("invalid maxDuration: {e}")))?);
    }
    Ok(query)
}

/// Parses logfmt: `key=value` pairs separated by spaces; values may be double-quoted (with `\"`
/// and `\\` escapes).
fn parse_logfmt(text: &str) -> Result<Vec<(String, String)>, PlainError> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if chars.next() != Some('=') || key.is_empty() {
            return Err(PlainError::bad_request(format!("invalid tags {text:?}: expected key=value pairs (logfmt)")));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(PlainError::bad_request(format!("invalid tags {text:?}: unterminated quote"))),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        pairs.push((key, value));
    }
}

async fn search(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Response, PlainError> {
    let window = search_window(&params)?;
    if let Some(q) = param(&params, "q").filter(|q| q.trim() != "{}") {
        return super::traceql_search::tempo_search(&state, q, &window_bounds(&window), window.spans_per_set)
            .await
            .map(|results| axum::Json(results).into_response());
    }
    let query = tags_query(&params, &window)?;
    let found = state.engine.search(&query).await?;
    let ids: Vec<TraceId> = found.traces.iter().map(|t| t.trace_id).collect();
    let all_spans = state.engine.traces(&ids).await?;
    let traces: Vec<Value> = found
        .traces
        .iter()
        .zip(&all_spans)
        .map(|(summary, spans)| {
            let matched: Vec<&Span> = spans.iter().filter(|span| query.span_matches(span)).collect();
            trace_result(summary, &matched, window.spans_per_set)
        })
        .collect();
    let inspected = found.traces.len();
    Ok(axum::Json(search_response(traces, inspected)).into_response())
}

/// The time range and limit a TraceQL search runs with.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub start_unix_nanos: Option<u64>,
    pub end_unix_nanos: Option<u64>,
    pub limit: usize,
}

fn window_bounds(window: &SearchWindow) -> Bounds {
    Bounds { start_unix_nanos: window.start_unix_nanos, end_unix_nanos: window.end_unix_nanos, limit: window.limit }
}

/// `{"traces": [...], "metrics": {...}}`.
pub fn search_response(traces: Vec<Value>, inspected_traces: usize) -> Value {
    json!({
        "traces": traces,
        "metrics": { "inspectedTraces": inspected_traces, "completedJobs": 1, "totalJobs": 1 },
    })
}

/// One trace of a search answer, with its matched spans as the span set (at most
/// `spans_per_set` listed, `matched` counting all).
pub fn trace_result(summary: &TraceSummary, matched: &[&Span], spans_per_set: usize) -> Value {
    let span_set = span_set(matched, spans_per_set);
    let mut result = json!({
        "traceID": tempo_trace_id(&summary.trace_id),
        "rootServiceName": summary.root_service,
        "rootTraceName": summary.root_name,
        "startTimeUnixNano": summary.start_unix_nanos.to_string(),
        "durationMs": summary.duration_nanos / 1_000_000,
    });
    result["spanSet"] = span_set.clone();
    result["spanSets"] = json!([span_set]);
    result
}

fn span_set(matched: &[&Span], spans_per_set: usize) -> Value {
    let spans: Vec<Value> = matched
        .iter()
        .take(spans_per_set)
        .map(|span| {
            json!({
                "spanID": span.span_id.to_hex(),
                "name": span.name,
                "startTimeUnixNano": span.start_unix_nanos.to_string(),
                "durationNanos": span.end_unix_nanos.saturating_sub(span.start_unix_nanos).to_string(),
                "attributes": [{ "key": "service.name", "value": { "stringValue": span.service_name() } }],
            })
        })
        .collect();
    json!({ "spans": spans, "matched": matched.len() })
}

// ---- tags ----

fn tag_query(params: &[(String, String)]) -> Result<TagQuery, PlainError> {
    let mut query = TagQuery::default();
    if let Some(start) = number(params, "start")? {
        query.start_unix_nanos = start.saturating_mul(NANOS_PER_SECOND);
    }
    if let Some(end) = number(params, "end")? {
        query.end_unix_nanos = end.saturating_mul(NANOS_PER_SECOND).saturating_add(NANOS_PER_SECOND - 1);
    }
    Ok(query)
}

fn scope_named(name: &str) -> Option<TagScope> {
    TagScope::ALL.into_iter().find(|scope| scope.name() == name)
}

async fn tags_v1(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Response, PlainError> {
    let names = state.engine.tag_names(&tag_query(&params)?).await?;
    let wanted: Vec<TagScope> = match param(&params, "scope") {
        None | Some("all") | Some("none") => vec![TagScope::Span, TagScope::Resource],
        Some(name) => {
            vec![scope_named(name).ok_or_else(|| PlainError::bad_request(format!("invalid scope {name:?}")))?]
        }
    };
    let tags: BTreeSet<&String> = wanted.iter().filter_map(|scope| names.get(scope)).flatten().collect();
    Ok(axum::Json(json!({ "tagNames": tags })).into_response())
}

async fn tags_v2(State(state): State<Arc<ApiState>>, Query(params): Params) -> Result<Response, PlainError> {
    let names = state.engine.tag_names(&tag_query(&params)?).await?;
    let scope = param(&params, "scope").unwrap_or("all");
    let mut scopes = Vec::new();
    for tag_scope in [TagScope::Resource, TagScope::Span, TagScope::Event, TagScope::Link, TagScope::Instrumentation] {
        if matches!(scope, "all" | "none") || scope == tag_scope.name() {
            let tags: Vec<&String> = names.get(&tag_scope).into_iter().flatten().collect();
            if !tags.is_empty() || scope == tag_scope.name() {
                scopes.push(json!({ "name": tag_scope.name(), "tags": tags }));
            }
        }
    }
    if matches!(scope, "all" | "intrinsic") {
        scopes.push(json!({ "name": "intrinsic", "tags": INTRINSICS }));
    }
    if scopes.is_empty() && !matches!(scope, "all" | "none" | "intrinsic") && scope_named(scope).is_none() {
        return Err(PlainError::bad_request(format!("invalid scope {scope:?}")));
    }
    Ok(axum::Json(json!({ "scopes": scopes, "metrics": {} })).into_response())
}

async fn tag_values_v1(
    State(state): State<Arc<ApiState>>,
    Path(tag): Path<String>,
    Query(params): Params,
) -> Result<Response, PlainError> {
    let values = state.engine.tag_values(None, &tag, &tag_query(&params)?).await?;
    let texts: Vec<String> = values.values.iter().map(ToString::to_string).collect();
    Ok(axum::Json(json!({ "tagValues": texts })).into_response())
}

/// A typed value as Tempo's v2 tag values list it.
fn typed(value: &AnyValue) -> Value {
    let kind = match value {
        AnyValue::String(_) => "string",
        AnyValue::Int(_) => "int",
        AnyValue::Double(_) => "float",
        AnyValue::Bool(_) => "bool",
        _ => "string",
    };
    json!({ "type": kind, "value": value.to_string() })
}

async fn tag_values_v2(
    State(state): State<Arc<ApiState>>,
    Path(tag): Path<String>,
    Query(params): Params,
) -> Result<Response, PlainError> {
    let keyword = |text: &str| json!({ "type": "keyword", "value": text });
    let string = |text: &str| json!({ "type": "string", "value": text });
    let values: Vec<Value> = match tag.as_str() {
        "status" | "span:status" => ["error", "ok", "unset"].map(keyword).to_vec(),
        "kind" | "span:kind" => {
            ["client", "consumer", "internal", "producer", "server", "unspecified"].map(keyword).to_vec()
        }
        "rootServiceName" | "trace:rootService" => state.engine.services().iter().map(|s| string(s)).collect(),
        "name" | "span:name" | "rootName" | "trace:rootName" => {
            let names: BTreeSet<String> = state
                .engine
                .services()
                .iter()
                .flat_map(|service| state.engine.operations(service).unwrap_or_default())
                .map(|(name, _)| name)
                .collect();
            names.iter().map(|n| string(n)).collect()
        }
        _ => {
            let (scope, key) = match tag.split_once('.') {
                Some(("", key)) => (None, key),
                Some((prefix, key)) if scope_named(prefix).is_some() => (scope_named(prefix), key),
                _ => (None, tag.as_str()),
            };
            state.engine.tag_values(scope, key, &tag_query(&params)?).await?.values.iter().map(typed).collect()
        }
    };
    Ok(axum::Json(json!({ "tagValues": values, "metrics": {} })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_pairs_plain_and_quoted() {
        assert_eq!(
            parse_logfmt(r#" service.name=cart  name="GET /items" note="a \"b\" c" "#).unwrap(),
            vec![
                ("service.name".into(), "cart".into()),
                ("name".into(), "GET /items".into()),
                ("note".into(), r#"a "b" c"#.into())
            ]
        );
        assert!(parse_logfmt("service.name").unwrap_err().1.contains("key=value"));
        assert!(parse_logfmt("x=\"open").unwrap_err().1.contains("unterminated"));
    }

    #[test]
    fn tag_search_parameters() {
        let params: Vec<(String, String)> = [
            ("tags", "service.name=cart name=checkout status.code=error http.method=GET"),
            ("minDuration", "100ms"),
            ("maxDuration", "2s"),
            ("start", "1700000000"),
            ("end", "1700000060"),
            ("limit", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let window = search_window(&params).unwrap();
        let query = tags_query(&params, &window).unwrap();
        assert_eq!(query.service.as_deref(), Some("cart"));
        assert_eq!(query.operation.as_deref(), Some("checkout"));
        assert!(query.errors_only);
        assert_eq!(query.attributes, vec![AttributeFilter { key: "http.method".into(), value: "GET".into() }]);
        assert_eq!((query.min_duration_nanos, query.max_duration_nanos), (Some(100_000_000), Some(2_000_000_000)));
        assert_eq!(query.duration_scope, DurationScope::Trace);
        assert_eq!(query.start_unix_nanos, Some(1_700_000_000 * NANOS_PER_SECOND));
        assert_eq!(query.end_unix_nanos, Some(1_700_000_061 * NANOS_PER_SECOND - 1));
        assert_eq!(query.limit, 5);
    }

    #[test]
    fn ids_in_json_become_base64_and_search_ids_lose_leading_zeros() {
        let mut value = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "000102030405060708090a0b0c0d0e0f", "spanId": "0001020304050607", "name": "x",
             "links": [{"traceId": "0f0e0d0c0b0a09080706050403020100", "spanId": "0706050403020100"}]}]}]}]});
        ids_to_base64(&mut value);
        let span = &value["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "AAECAwQFBgcICQoLDA0ODw==");
        assert_eq!(span["spanId"], "AAECAwQFBgc=");
        assert_eq!(span["links"][0]["spanId"], "BwYFBAMCAQA=");
        assert_eq!(span["name"], "x");
        let id = TraceId::parse_hex("00000000000000000000000000abcdef").unwrap();
        assert_eq!(tempo_trace_id(&id), "abcdef");
    }
}
