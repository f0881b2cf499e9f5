//! Jaeger's Service Performance Monitoring API (the Monitor tab of the Jaeger UI), answered
//! from the span metrics aggregator as Jaeger's query service answers it from Prometheus
//! (`cmd/query/app/http_handler.go`, `query_parser.go`, the Prometheus metrics reader).
//!
//! - `GET /api/metrics/latencies?quantile=` → `service_latencies`: the quantile of span
//!   durations in milliseconds;
//! - `GET /api/metrics/calls` → `service_call_rate`: calls per second;
//! - `GET /api/metrics/errors` → `service_error_rate`: errors per second over calls per
//!   second, a fraction from 0 to 1 (0 where there were calls and no errors);
//! - `GET /api/metrics/minstep` → `{"data": <the aggregation interval in ms>, …}` in the
//!   envelope.
//!
//! Parameters as Jaeger reads them: `service` (required, repeatable), `groupByOperation`
//! (Go's `ParseBool`; the names become `service_operation_*` and each series gets an
//! `operation` label), `spanKind` (repeatable: `server` (default), `client`, `producer`,
//! `consumer`, `internal`, `unspecified`, or the `SPAN_KIND_*` names), `endTs` (unix ms,
//! default now), `lookback` (ms, default 1 h), `step` (ms, default 5 s), `ratePer` (ms,
//! default 10 min). The answer is the bare `MetricFamily` JSON (not the envelope):
//! `{"name", "type": "GAUGE", "help", "metrics": [{"labels": [{"name", "value"}],
//! "metricPoints": [{"gaugeValue": {"doubleValue"}, "timestamp": RFC 3339}]}]}`.
//!
//! Points are at `endTs − lookback + k × step` up to `endTs`, like a Prometheus range query.
//! The point at `t` aggregates the whole intervals starting in `[t − ratePer, t)` (both ends
//! rounded out to interval boundaries, so the interval holding `t` counts) and its rate
//! divides by their total length. A point whose window holds no call of the series is left
//! out, as Prometheus leaves out a series without samples. The intervals held in memory and
//! those persisted under `{data_dir}/metrics/` (kept as long as traces, `storage.retention`)
//! answer alike.
//!
//! Differences from Jaeger: `tag`/`tags` filters are refused (400), since span metrics keep
//! only the configured dimensions; with `metrics.enabled = false` every endpoint answers 501
//! `metrics querying is currently disabled`, as Jaeger does without a metrics store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_metrics::{MAX_POINTS_PER_SERIES, RangePoint, RangeQuery, SpanMetrics};
use sextant_model::{SpanKind, now_unix_nanos};

use super::{JaegerError, envelope};
use crate::api::ApiState;
use crate::derived::DerivedMetrics;

const MILLI_NANOS: u64 = 1_000_000;
pub const DEFAULT_LOOKBACK_NANOS: u64 = 3_600 * 1_000 * MILLI_NANOS;
pub const DEFAULT_STEP_NANOS: u64 = 5 * 1_000 * MILLI_NANOS;
pub const DEFAULT_RATE_PER_NANOS: u64 = 600 * 1_000 * MILLI_NANOS;

/// A parsed metrics request.
#[derive(Clone, Debug, PartialEq)]
pub struct SpmQuery {
    pub services: Vec<String>,
    pub group_by_operation: bool,
    pub span_kinds: Vec<SpanKind>,
    pub end_unix_nanos: u64,
    pub lookback_nanos: u64,
    pub step_nanos: u64,
    pub rate_per_nanos: u64,
}

/// Which of the three families is asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Measure {
    Latencies { quantile: f64 },
    Calls,
    Errors,
}

fn parse_error(param: &str, error: impl std::fmt::Display) -> String {
    format!("unable to parse param '{param}': {error}")
}

fn first<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_span_kind(text: &str) -> Option<SpanKind> {
    SpanKind::from_short_name(text).or_else(|| SpanKind::ALL.into_iter().find(|kind| kind.otlp_name() == text))
}

/// A duration in milliseconds; must be positive.
fn parse_millis(params: &[(String, String)], param: &str, default_nanos: u64) -> Result<u64, String> {
    let Some(text) = first(params, param) else { return Ok(default_nanos) };
    match text.parse::<i64>() {
        Ok(millis) if millis > 0 => Ok((millis as u64).saturating_mul(MILLI_NANOS)),
        Ok(_) => Err(parse_error(param, format!("{text} must be a positive number of milliseconds"))),
        Err(_) => Err(parse_error(param, format!("{text:?} is not an integer"))),
    }
}

/// Parses the parameters every metrics endpoint shares; `now_unix_nanos` is the default end.
pub fn parse_spm_query(params: &[(String, String)], now_unix_nanos: u64) -> Result<SpmQuery, String> {
    let services: Vec<String> = params.iter().filter(|(k, _)| k == "service").map(|(_, v)| v.clone()).collect();
    if services.is_empty() {
        return Err(parse_error("service", "please provide at least one service name"));
    }
    if params.iter().any(|(k, _)| k == "tag" || k == "tags") {
        return Err("tag filters are not supported: span metrics keep only the configured dimensions".to_string());
    }
    let group_by_operation = match first(params, "groupByOperation") {
        None => false,
        Some(text) => {
            parse_bool(text).ok_or_else(|| parse_error("groupByOperation", format!("{text:?} is not a bool")))?
        }
    };
    let mut span_kinds = Vec::new();
    for (_, text) in params.iter().filter(|(k, _)| k == "spanKind") {
        let kind =
            parse_span_kind(text).ok_or_else(|| parse_error("spanKind", format!("unsupported span kind: '{text}'")))?;
        span_kinds.push(kind);
    }
    if span_kinds.is_empty() {
        span_kinds.push(SpanKind::Server);
    }
    let end_unix_nanos = match first(params, "endTs") {
        None => now_unix_nanos,
        Some(text) => {
            let millis: i64 = text.parse().map_err(|_| parse_error("endTs", format!("{text:?} is not an integer")))?;
            u64::try_from(millis).unwrap_or(0).saturating_mul(MILLI_NANOS)
        }
    };
    let query = SpmQuery {
        services,
        group_by_operation,
        span_kinds,
        end_unix_nanos,
        lookback_nanos: parse_millis(params, "lookback", DEFAULT_LOOKBACK_NANOS)?,
        step_nanos: parse_millis(params, "step", DEFAULT_STEP_NANOS)?,
        rate_per_nanos: parse_millis(params, "ratePer", DEFAULT_RATE_PER_NANOS)?,
    };
    let num_points = query.lookback_nanos.min(query.end_unix_nanos) / query.step_nanos + 1;
    if num_points > MAX_POINTS_PER_SERIES {
        return Err(format!(
            "lookback / step gives {num_points} points per series, more than the {MAX_POINTS_PER_SERIES} allowed"
        ));
    }
    Ok(query)
}

fn disabled() -> JaegerError {
    JaegerError { status: StatusCode::NOT_IMPLEMENTED, msg: "metrics querying is currently disabled".to_string() }
}

fn enabled(state: &ApiState) -> Result<Arc<DerivedMetrics>, JaegerError> {
    state.derived_opt.clone().ok_or_else(disabled)
}

pub async fn latencies(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let derived = enabled(&state)?;
    let text = first(&params, "quantile").unwrap_or_default();
    let quantile: f64 = text
        .parse()
        .map_err(|_| JaegerError::bad_request(parse_error("quantile", format!("{text:?} is not a number"))))?;
    if !(0.0..=1.0).contains(&quantile) {
        return Err(JaegerError::bad_request(parse_error("quantile", format!("{quantile} is not between 0 and 1"))));
    }
    answer(&derived, &params, Measure::Latencies { quantile }).await
}

pub async fn calls(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let derived = enabled(&state)?;
    answer(&derived, &params, Measure::Calls).await
}

pub async fn errors(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, JaegerError> {
    let derived = enabled(&state)?;
    answer(&derived, &params, Measure::Errors).await
}

pub async fn min_step(State(state): State<Arc<ApiState>>) -> Result<Json<Value>, JaegerError> {
    let derived = enabled(&state)?;
    let interval_nanos = derived.read(|span_metrics, _| span_metrics.interval_nanos()).await;
    Ok(envelope(json!(interval_nanos / MILLI_NANOS), 0, None))
}

async fn answer(
    derived: &DerivedMetrics,
    params: &[(String, String)],
    measure: Measure,
) -> Result<Json<Value>, JaegerError> {
    let query = parse_spm_query(params, now_unix_nanos()).map_err(JaegerError::bad_request)?;
    let family = derived.read(move |span_metrics, _| metric_family(span_metrics, &query, measure)).await;
    Ok(Json(family))
}

/// A series: the service, and the operation when grouped by operation.
type SeriesKey = (String, Option<String>);

/// The `MetricFamily` JSON for `query`.
fn metric_family(span_metrics: &SpanMetrics, query: &SpmQuery, measure: Measure) -> Value {
    let (base_name, mut help) = match measure {
        Measure::Latencies { quantile } => {
            ("service_latencies", format!("{quantile:.2}th quantile latency, grouped by service"))
        }
        Measure::Calls => ("service_call_rate", "calls/sec, grouped by service".to_string()),
        Measure::Errors => (
            "service_error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service".to_string(),
        ),
    };
    let name = if query.group_by_operation {
        help.push_str(" & operation");
        base_name.replacen("service", "service_operation", 1)
    } else {
        base_name.to_string()
    };
    let quantile = match measure {
        Measure::Latencies { quantile } => quantile,
        Measure::Calls | Measure::Errors => 0.5,
    };
    let mut points: BTreeMap<SeriesKey, Vec<Value>> = BTreeMap::new();
    for (point_unix_nanos, series) in windows(span_metrics, query, quantile) {
        for (key, point) in series {
            let value = match measure {
                Measure::Latencies { .. } => point.latency_quantile_seconds.map(|s| s * 1_000.0),
                Measure::Calls => Some(point.rate_per_second),
                Measure::Errors => Some(point.errors as f64 / point.calls as f64),
            };
            let Some(value) = value else { continue };
            points.entry(key).or_default().push(json!({
                "gaugeValue": { "doubleValue": value },
                "timestamp": rfc3339_millis(point_unix_nanos),
            }));
        }
    }
    let metrics: Vec<Value> = points
        .into_iter()
        .map(|((service, operation_opt), metric_points)| {
            let mut labels = vec![json!({ "name": "service_name", "value": service })];
            if let Some(operation) = operation_opt {
                labels.push(json!({ "name": "operation", "value": operation }));
            }
            json!({ "labels": labels, "metricPoints": metric_points })
        })
        .collect();
    json!({ "name": name, "type": "GAUGE", "help": help, "metrics": metrics })
}

/// For each point time of `query` whose window holds kept intervals (in memory or persisted), the one-point range
/// query over that window, per series.
fn windows(span_metrics: &SpanMetrics, query: &SpmQuery, quantile: f64) -> Vec<(u64, Vec<(SeriesKey, RangePoint)>)> {
    let interval_nanos = span_metrics.interval_nanos();
    let Some((first_start, held_end)) = span_metrics.held_range() else { return Vec::new() };
    let group = |labels: &sextant_metrics::SeriesLabels| {
        let wanted = !labels.overflow
            && query.services.contains(&labels.service)
            && query.span_kinds.contains(&labels.span_kind);
        wanted.then(|| (labels.service.clone(), query.group_by_operation.then(|| labels.span_name.clone())))
    };
    let first_point = query.end_unix_nanos.saturating_sub(query.lookback_nanos);
    let mut answers = Vec::new();
    let mut point_unix_nanos = first_point;
    while point_unix_nanos <= query.end_unix_nanos {
        let from = point_unix_nanos.saturating_sub(query.rate_per_nanos);
        let from_aligned = from - from % interval_nanos;
        let to_aligned = point_unix_nanos.div_ceil(interval_nanos).saturating_mul(interval_nanos);
        if from_aligned < to_aligned && from_aligned < held_end && to_aligned > first_start {
            let range = RangeQuery {
                from_unix_nanos: from,
                to_unix_nanos: point_unix_nanos,
                step_nanos: to_aligned - from_aligned,
                quantile,
            };
            if let Ok(series) = span_metrics.query_range(&range, group) {
                let series: Vec<(SeriesKey, RangePoint)> = series
                    .into_iter()
                    .filter_map(|s| s.points.into_iter().next().map(|point| (s.key, point)))
                    .collect();
                if !series.is_empty() {
                    answers.push((point_unix_nanos, series));
                }
            }
        }
        let Some(next) = point_unix_nanos.checked_add(query.step_nanos) else { break };
        point_unix_nanos = next;
    }
    answers
}

/// `2024-05-01T12:00:15Z`, or `…15.250Z` when the milliseconds are not zero, as Jaeger's
/// protobuf JSON writes timestamps.
fn rfc3339_millis(unix_nanos: u64) -> String {
    let millis = unix_nanos / MILLI_NANOS;
    let text = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string();
    if millis.is_multiple_of(1_000) { text.replace(".000Z", "Z") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parameters_in_jaegers_units_and_defaults() {
        let now = 1_700_000_000_000 * MILLI_NANOS;
        let query = parse_spm_query(&params(&[("service", "cart"), ("service", "shop")]), now).unwrap();
        assert_eq!(query.services, ["cart", "shop"]);
        assert_eq!(query.span_kinds, [SpanKind::Server]);
        assert!(!query.group_by_operation);
        assert_eq!(query.end_unix_nanos, now);
        assert_eq!(
            (query.lookback_nanos, query.step_nanos, query.rate_per_nanos),
            (DEFAULT_LOOKBACK_NANOS, DEFAULT_STEP_NANOS, DEFAULT_RATE_PER_NANOS)
        );

        let query = parse_spm_query(
            &params(&[
                ("service", "cart"),
                ("groupByOperation", "T"),
                ("spanKind", "client"),
                ("spanKind", "SPAN_KIND_PRODUCER"),
                ("endTs", "1700000060000"),
                ("lookback", "60000"),
                ("step", "15000"),
                ("ratePer", "30000"),
            ]),
            now,
        )
        .unwrap();
        assert!(query.group_by_operation);
        assert_eq!(query.span_kinds, [SpanKind::Client, SpanKind::Producer]);
        assert_eq!(query.end_unix_nanos, 1_700_000_060_000 * MILLI_NANOS);
        assert_eq!(
            (query.lookback_nanos, query.step_nanos, query.rate_per_nanos),
            (60_000 * MILLI_NANOS, 15_000 * MILLI_NANOS, 30_000 * MILLI_NANOS)
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let now = 1_700_000_000_000 * MILLI_NANOS;
        for (pairs, needle) in [
            (vec![], "'service'"),
            (vec![("service", "a"), ("groupByOperation", "yes")], "'groupByOperation'"),
            (vec![("service", "a"), ("spanKind", "sideways")], "unsupported span kind: 'sideways'"),
            (vec![("service", "a"), ("endTs", "soon")], "'endTs'"),
            (vec![("service", "a"), ("step", "0")], "'step'"),
            (vec![("service", "a"), ("lookback", "1h")], "'lookback'"),
            (vec![("service", "a"), ("lookback", "86400000"), ("step", "1")], "points per series"),
            (vec![("service", "a"), ("tag", "k:v")], "tag filters"),
        ] {
            let error = parse_spm_query(&params(&pairs), now).unwrap_err();
            assert!(error.contains(needle), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn timestamps_as_protobuf_json_writes_them() {
        assert_eq!(rfc3339_millis(1_700_000_010 * 1_000 * MILLI_NANOS), "2023-11-14T22:13:30Z");
        assert_eq!(rfc3339_millis(1_700_000_010_250 * MILLI_NANOS), "2023-11-14T22:13:30.250Z");
    }
}
