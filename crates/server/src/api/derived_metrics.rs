//! The native API of the metrics derived from spans, `/api/v1/span-metrics` and
//! `/api/v1/service-graph`. Times are unix nanoseconds (or RFC 3339) as elsewhere in the
//! native API; nanosecond values are JSON strings, durations in milliseconds are numbers.
//!
//! - `GET /api/v1/span-metrics?service=&operation=&spanKind=&start=&end=&step=&groupBy=`:
//!   per group of series, one point per step with `calls`, `errors`, `ratePerSecond`,
//!   `errorRatePerSecond`, `p50Millis`, `p95Millis`, `p99Millis`, and the exemplars (trace
//!   and span IDs) of the range. `service` and `spanKind` may repeat; `groupBy` is a
//!   comma-separated list of `service`, `operation`, `kind`, `status` and configured
//!   dimension labels (`http_route` for `http.route`), default `service,operation`; `step` is
//!   a Go duration (or nanoseconds), a multiple of the interval (default: the interval);
//!   `start`/`end` default to the intervals held in memory (the last 10 minutes); older
//!   ranges are answered from the intervals persisted under `{data_dir}/metrics/`, alike.
//!   Steps without calls have no point.
//! - `GET /api/v1/service-graph?start=&end=` (`start` defaults to the oldest interval held in
//!   memory, `end` to now; any range reads the persisted intervals too): `{"edges": [{"client", "server",
//!   "connectionType", "calls", "failed", "errorRate", "p50Millis", "p90Millis", "p99Millis",
//!   "clientP50Millis", "clientP90Millis", "clientP99Millis", "overflow"}], "nodes": [{"name",
//!   "virtual", "callsIn", "failedIn", "callsOut"}]}`. Latencies without the `client` prefix
//!   are the server spans' durations; a virtual node's side stands in with the client's.
//!   `connectionType` is `direct`, `messaging_system`, `database` or `virtual_node`. A node is
//!   virtual when no span of it was received (a database, `peer.service`, the `user` client
//!   of root spans).
//!
//! Both answer `501 {"error": {"code": "metrics_disabled"}}` when `metrics.enabled` is false,
//! and include every span acknowledged before the request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_metrics::{
    ConnectionType, EdgeSummary, Exemplar, LatencyQuantiles, MetricsError, RangeQuery, SeriesLabels, SpanMetrics,
};
use sextant_model::{SpanKind, StatusCode as SpanStatus, now_unix_nanos};

use super::params::{parse_go_duration, parse_timestamp};
use super::{ApiError, ApiState};
use crate::derived::DerivedMetrics;

fn enabled(state: &ApiState) -> Result<Arc<DerivedMetrics>, ApiError> {
    state.derived_opt.clone().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        code: "metrics_disabled",
        message: "span metrics and the service graph are disabled (metrics.enabled = false)".to_string(),
    })
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

fn query_error(error: MetricsError) -> ApiError {
    ApiError::bad_request("invalid_query", error.to_string())
}

/// A parsed `/api/v1/span-metrics` request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanMetricsQuery {
    /// Empty: every service.
    pub services: Vec<String>,
    pub operation_opt: Option<String>,
    /// Empty: every kind.
    pub span_kinds: Vec<SpanKind>,
    pub start_opt: Option<u64>,
    pub end_opt: Option<u64>,
    pub step_opt: Option<u64>,
    pub group_by: Vec<String>,
}

pub fn parse_span_metrics_query(params: &[(String, String)]) -> Result<SpanMetricsQuery, ApiError> {
    let mut query =
        SpanMetricsQuery { group_by: vec!["service".to_string(), "operation".to_string()], ..Default::default() };
    for (key, value) in params {
        match key.as_str() {
            "service" => query.services.push(value.clone()),
            "operation" => query.operation_opt = Some(value.clone()),
            "spanKind" => query.span_kinds.push(SpanKind::from_short_name(value).ok_or_else(|| {
                bad(format!("spanKind: {value:?} is not server, client, producer, consumer, internal or unspecified"))
            })?),
            "start" => query.start_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("start: {e}")))?),
            "end" => query.end_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("end: {e}")))?),
            "step" => {
                let step = match value.parse::<u64>() {
                    Ok(nanos) => nanos,
                    Err(_) => parse_go_duration(value).map_err(|e| bad(format!("step: {e}")))?,
                };
                query.step_opt = Some(step);
            }
            "groupBy" => {
                query.group_by = value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(String::from).collect()
            }
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(query)
}

pub async fn span_metrics(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let derived = enabled(&state)?;
    let query = parse_span_metrics_query(&params)?;
    derived.read(move |span_metrics, _| span_metrics_json(span_metrics, &query)).await.map(Json)
}

/// A group's label values, in `groupBy` order.
type GroupKey = Vec<String>;

/// How one `groupBy` name reads a series' labels.
#[derive(Clone, Copy)]
enum GroupLabel {
    Service,
    Operation,
    Kind,
    Status,
    Dimension(usize),
}

fn group_labels(span_metrics: &SpanMetrics, group_by: &[String]) -> Result<Vec<GroupLabel>, ApiError> {
    group_by
        .iter()
        .map(|name| match name.as_str() {
            "service" => Ok(GroupLabel::Service),
            "operation" => Ok(GroupLabel::Operation),
            "kind" => Ok(GroupLabel::Kind),
            "status" => Ok(GroupLabel::Status),
            other => span_metrics
                .dimension_label_names()
                .iter()
                .position(|d| d == other)
                .map(GroupLabel::Dimension)
                .ok_or_else(|| {
                    bad(format!(
                        "groupBy: {other:?} is not service, operation, kind, status or a configured dimension ({})",
                        span_metrics.dimension_label_names().join(", ")
                    ))
                }),
        })
        .collect()
}

fn status_name(status: SpanStatus) -> &'static str {
    match status {
        SpanStatus::Unset => "unset",
        SpanStatus::Ok => "ok",
        SpanStatus::Error => "error",
    }
}

fn span_metrics_json(span_metrics: &SpanMetrics, query: &SpanMetricsQuery) -> Result<Value, ApiError> {
    let labels = group_labels(span_metrics, &query.group_by)?;
    let interval_nanos = span_metrics.interval_nanos();
    let starts = span_metrics.interval_starts();
    let end = query.end_opt.or(starts.last().map(|last| last + interval_nanos)).unwrap_or_else(now_unix_nanos);
    let start = query.start_opt.or(starts.first().copied()).unwrap_or(end.saturating_sub(interval_nanos));
    let step_nanos = query.step_opt.unwrap_or(interval_nanos);
    let group = |series: &SeriesLabels| -> Option<GroupKey> {
        let wanted = !series.overflow
            && (query.services.is_empty() || query.services.contains(&series.service))
            && query.operation_opt.as_ref().is_none_or(|op| *op == series.span_name)
            && (query.span_kinds.is_empty() || query.span_kinds.contains(&series.span_kind));
        wanted.then(|| {
            labels
                .iter()
                .map(|label| match label {
                    GroupLabel::Service => series.service.clone(),
                    GroupLabel::Operation => series.span_name.clone(),
                    GroupLabel::Kind => series.span_kind.short_name().to_string(),
                    GroupLabel::Status => status_name(series.status_code).to_string(),
                    GroupLabel::Dimension(i) => series.dimensions[*i].clone(),
                })
                .collect()
        })
    };
    let range = |quantile: f64| RangeQuery { from_unix_nanos: start, to_unix_nanos: end, step_nanos, quantile };
    let p50 = span_metrics.query_range(&range(0.5), group).map_err(query_error)?;
    let p95 = span_metrics.query_range(&range(0.95), group).map_err(query_error)?;
    let p99 = span_metrics.query_range(&range(0.99), group).map_err(query_error)?;
    let mut exemplars: BTreeMap<GroupKey, Vec<Exemplar>> = span_metrics
        .exemplars_in_range(start, end, group)
        .map_err(query_error)?
        .into_iter()
        .map(|e| (e.key, e.exemplars))
        .collect();
    let mut series_json: Vec<Value> = Vec::new();
    for ((series50, series95), series99) in p50.into_iter().zip(p95).zip(p99) {
        let points: Vec<Value> = series50
            .points
            .iter()
            .zip(&series95.points)
            .zip(&series99.points)
            .map(|((p50, p95), p99)| {
                json!({
                    "startTimeUnixNano": p50.start_unix_nanos.to_string(),
                    "calls": p50.calls,
                    "errors": p50.errors,
                    "ratePerSecond": p50.rate_per_second,
                    "errorRatePerSecond": p50.error_rate_per_second,
                    "p50Millis": p50.latency_quantile_seconds.map(|s| s * 1_000.0),
                    "p95Millis": p95.latency_quantile_seconds.map(|s| s * 1_000.0),
                    "p99Millis": p99.latency_quantile_seconds.map(|s| s * 1_000.0),
                })
            })
            .collect();
        let label_json: serde_json::Map<String, Value> =
            query.group_by.iter().cloned().zip(series50.key.iter().map(|v| json!(v))).collect();
        let exemplar_json: Vec<Value> =
            exemplars.remove(&series50.key).unwrap_or_default().iter().map(exemplar_json).collect();
        series_json.push(json!({ "labels": label_json, "points": points, "exemplars": exemplar_json }));
    }
    Ok(json!({
        "intervalSeconds": interval_nanos / 1_000_000_000,
        "start": start.to_string(),
        "end": end.to_string(),
        "stepNanos": step_nanos.to_string(),
        "series": series_json,
    }))
}

fn exemplar_json(exemplar: &Exemplar) -> Value {
    json!({
        "traceId": exemplar.trace_id.to_hex(),
        "spanId": exemplar.span_id.to_hex(),
        "durationNanos": exemplar.duration_nanos.to_string(),
        "timeUnixNano": exemplar.timestamp_unix_nanos.to_string(),
    })
}

pub async fn service_graph(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let derived = enabled(&state)?;
    let mut start_opt = None;
    let mut end_opt = None;
    for (key, value) in &params {
        match key.as_str() {
            "start" => start_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("start: {e}")))?),
            "end" => end_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("end: {e}")))?),
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    let services: BTreeSet<String> = state.engine.services().into_iter().collect();
    let edges = derived
        .read(move |_, graph| {
            // Without a start, the window held in memory, as before intervals were persisted:
            // reading a day of files is for the callers that ask for it.
            let memory_start_opt = graph.interval_starts().first().copied();
            let start = start_opt.or(memory_start_opt).unwrap_or_else(now_unix_nanos);
            graph.edges_in_range(start, end_opt.unwrap_or(u64::MAX))
        })
        .await;
    let edges = match edges {
        Ok(edges) => edges,
        // Nothing held and no start given: an empty range, an empty graph.
        Err(MetricsError::EmptyRange { .. }) if start_opt.is_none() => Vec::new(),
        Err(error) => return Err(query_error(error)),
    };
    Ok(Json(service_graph_json(&edges, &services)))
}

fn millis(seconds_opt: Option<f64>) -> Option<f64> {
    seconds_opt.map(|s| s * 1_000.0)
}

fn connection_type_name(connection_type: ConnectionType) -> &'static str {
    match connection_type {
        ConnectionType::Direct => "direct",
        other => other.label_value(),
    }
}

fn service_graph_json(edges: &[EdgeSummary], services: &BTreeSet<String>) -> Value {
    #[derive(Default)]
    struct Node {
        calls_in: u64,
        failed_in: u64,
        calls_out: u64,
    }
    let mut nodes: BTreeMap<&str, Node> = BTreeMap::new();
    let edge_json: Vec<Value> = edges
        .iter()
        .map(|edge| {
            let labels = &edge.labels;
            if !labels.overflow {
                let server = nodes.entry(&labels.server).or_default();
                server.calls_in += edge.calls;
                server.failed_in += edge.failed;
                nodes.entry(&labels.client).or_default().calls_out += edge.calls;
            }
            let quantiles =
                |q: &LatencyQuantiles| (millis(q.p50_seconds), millis(q.p90_seconds), millis(q.p99_seconds));
            let (p50, p90, p99) = quantiles(&edge.server_latency);
            let (client_p50, client_p90, client_p99) = quantiles(&edge.client_latency);
            json!({
                "client": labels.client,
                "server": labels.server,
                "connectionType": connection_type_name(labels.connection_type),
                "calls": edge.calls,
                "failed": edge.failed,
                "errorRate": if edge.calls == 0 { 0.0 } else { edge.failed as f64 / edge.calls as f64 },
                "p50Millis": p50,
                "p90Millis": p90,
                "p99Millis": p99,
                "clientP50Millis": client_p50,
                "clientP90Millis": client_p90,
                "clientP99Millis": client_p99,
                "overflow": labels.overflow,
            })
        })
        .collect();
    let node_json: Vec<Value> = nodes
        .iter()
        .map(|(name, node)| {
            json!({
                "name": name,
                "virtual": !services.contains(*name),
                "callsIn": node.calls_in,
                "failedIn": node.failed_in,
                "callsOut": node.calls_out,
            })
        })
        .collect();
    json!({ "edges": edge_json, "nodes": node_json })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn span_metrics_parameters() {
        let query = parse_span_metrics_query(&params(&[
            ("service", "cart"),
            ("spanKind", "server"),
            ("start", "1700000000000000000"),
            ("end", "2023-11-14T22:15:00Z"),
            ("step", "1m"),
            ("groupBy", "operation,status"),
        ]))
        .unwrap();
        assert_eq!(query.services, ["cart"]);
        assert_eq!(query.span_kinds, [SpanKind::Server]);
        assert_eq!(query.start_opt, Some(1_700_000_000_000_000_000));
        assert_eq!(query.end_opt, Some(1_700_000_100_000_000_000));
        assert_eq!(query.step_opt, Some(60_000_000_000));
        assert_eq!(query.group_by, ["operation", "status"]);
        assert_eq!(parse_span_metrics_query(&[]).unwrap().group_by, ["service", "operation"]);
        assert_eq!(
            parse_span_metrics_query(&params(&[("step", "15000000000")])).unwrap().step_opt,
            Some(15_000_000_000)
        );
        for (pairs, needle) in [
            (vec![("spanKind", "SERVER")], "spanKind"),
            (vec![("step", "soon")], "step"),
            (vec![("start", "yesterday")], "start"),
            (vec![("colour", "red")], "colour"),
        ] {
            let error = parse_span_metrics_query(&params(&pairs)).unwrap_err();
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }
}
