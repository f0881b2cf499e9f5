//! The native API of the consistency analysis (`sextant_metrics::consistency`): stale reads,
//! replication lag, conflicts, consistency-level usage. Times and versions are JSON strings of
//! integers (unix nanoseconds, LWW timestamps exceed what a JSON number holds exactly),
//! durations in milliseconds are numbers. IDs are lowercase hex.
//!
//! - `GET /api/v1/consistency/stale-reads?start=&end=&service=&key=&classification=&traceId=&limit=`:
//!   the stale reads kept in memory whose read started in `[start, end)`, newest first, at
//!   most `limit` (default 100, at most 10,000); `service` matches the reading or the writing
//!   service; `traceId` the trace of the read or of the write; `classification` is `expected`, `violation` or `unknown`. `{"staleReads": [{"key",
//!   "system", "collection", "read": {"traceId", "spanId", "service", "region", "level",
//!   "returnedVersion", "startTimeUnixNano"}, "write": {"traceId", "spanId", "service",
//!   "region", "level", "version", "acknowledgedUnixNano"}, "stalenessNanos",
//!   "stalenessMillis", "classification", "reason"}], "matched", "truncated"}`.
//! - `GET /api/v1/consistency/replication-lag?start=&end=`: per (source region, replica region)
//!   pair, over the lag intervals held in memory that start in `[start, end)` (default: all):
//!   `{"intervalSeconds", "pairs": [{"sourceRegion", "replicaRegion", "count", "minMillis",
//!   "maxMillis", "meanMillis", "p50Millis", "p90Millis", "p99Millis", "minNanos", "maxNanos",
//!   "series": [{"startTimeUnixNano", "count", "minMillis", "maxMillis", "p50Millis",
//!   "p99Millis"}], "exemplars": [{"traceId", "spanId", "lagNanos", "timeUnixNano"}]}]}`.
//!   Quantiles are interpolated within the histogram's buckets; min and max are exact.
//! - `GET /api/v1/consistency/conflicts?start=&end=&key=&traceId=&limit=`: conflicts whose
//!   apply started in `[start, end)` (`traceId`: the apply's or a version's write's trace),
//!   newest first: `{"conflicts": [{"key", "region",
//!   "sourceRegion", "resolution", "apply": {"traceId", "spanId", "startTimeUnixNano"},
//!   "winner": {"version", "write"}, "losers": [{"version", "write"}], "explanation"}],
//!   "matched", "truncated"}` (`write`: `{"traceId", "spanId", "service", "region", "level",
//!   "acknowledgedUnixNano"}` or `null` when not remembered).
//! - `GET /api/v1/consistency/levels`: `{"usage": [{"service", "system", "collection",
//!   "operation", "level", "access", "spans"}], "riskyPatterns": [{"service", "collection",
//!   "readLevel", "writeLevel", "reads", "staleReads", "example": {"traceId", "spanId"}}],
//!   "staleReadsByRegion": [{"sourceRegion", "replicaRegion", "classification", "count"}],
//!   "counters": {…}}`.
//!
//! Each answers after the derived metrics' barrier, so it includes every span acknowledged
//! before the request, except reads and applies still inside their wait
//! (`metrics.consistency.wait_seconds`): they are judged once it is over. All answer `501
//! {"error": {"code": "consistency_disabled"}}` when `metrics.enabled` or
//! `metrics.consistency.enabled` is false.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sextant_metrics::consistency::{
    Classification, ConflictVersion, ConsistencyAnalyzer, LagStats, StaleRead, WriteRecord,
};
use sextant_model::{TraceId, now_unix_nanos};

use super::params::parse_timestamp;
use super::{ApiError, ApiState};

/// Findings returned when `limit` is not given, and the most that may be asked for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

fn disabled() -> ApiError {
    ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        code: "consistency_disabled",
        message: "the consistency analysis is disabled (metrics.enabled or metrics.consistency.enabled is false)"
            .to_string(),
    }
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

/// Runs `read` on the analyzer after the barrier, or answers 501.
async fn read<F>(state: &ApiState, read: F) -> Result<Json<Value>, ApiError>
where
    F: FnOnce(&ConsistencyAnalyzer) -> Value + Send + 'static,
{
    let derived = state.derived_opt.clone().ok_or_else(disabled)?;
    derived.read_consistency(read).await.map(Json).ok_or_else(disabled)
}

/// The filters shared by the findings endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingsQuery {
    pub start_opt: Option<u64>,
    pub end_opt: Option<u64>,
    pub service_opt: Option<String>,
    pub key_opt: Option<String>,
    pub classification_opt: Option<Classification>,
    /// A finding matches when one of its spans (read, write, apply) is in this trace.
    pub trace_id_opt: Option<TraceId>,
    pub limit: usize,
}

/// Parses the parameters of a findings endpoint; `allowed` names those it takes besides
/// `start`, `end` and `limit`.
pub fn parse_findings_query(params: &[(String, String)], allowed: &[&str]) -> Result<FindingsQuery, ApiError> {
    let mut query = FindingsQuery {
        start_opt: None,
        end_opt: None,
        service_opt: None,
        key_opt: None,
        classification_opt: None,
        trace_id_opt: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in params {
        match key.as_str() {
            "start" => query.start_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("start: {e}")))?),
            "end" => query.end_opt = Some(parse_timestamp(value).map_err(|e| bad(format!("end: {e}")))?),
            "limit" => {
                let limit: usize = value.parse().map_err(|_| bad(format!("limit: {value:?} is not a count")))?;
                if limit == 0 || limit > MAX_LIMIT {
                    return Err(bad(format!("limit: must be between 1 and {MAX_LIMIT}")));
                }
                query.limit = limit;
            }
            "service" if allowed.contains(&"service") => query.service_opt = Some(value.clone()),
            "key" if allowed.contains(&"key") => query.key_opt = Some(value.clone()),
            "traceId" if allowed.contains(&"traceId") => {
                let trace_id = TraceId::parse_hex(value).map_err(|e| bad(format!("traceId: {e}")))?;
                query.trace_id_opt = Some(trace_id);
            }
            "classification" if allowed.contains(&"classification") => {
                query.classification_opt =
                    Some(Classification::parse(value).ok_or_else(|| {
                        bad(format!("classification: {value:?} is not expected, violation or unknown"))
                    })?)
            }
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(query)
}

impl FindingsQuery {
    fn in_range(&self, unix_nanos: u64) -> bool {
        self.start_opt.is_none_or(|start| unix_nanos >= start) && self.end_opt.is_none_or(|end| unix_nanos < end)
    }

    /// Whether the finding whose spans are in `traces` passes the `traceId` filter.
    fn in_trace(&self, mut traces: impl Iterator<Item = TraceId>) -> bool {
        self.trace_id_opt.is_none_or(|wanted| traces.any(|t| t == wanted))
    }
}

fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn write_json(write: &WriteRecord) -> Value {
    json!({
        "traceId": write.trace_id.to_hex(),
        "spanId": write.span_id.to_hex(),
        "service": write.service,
        "region": write.region,
        "level": write.level,
        "version": write.version.to_string(),
        "acknowledgedUnixNano": write.acknowledged_unix_nanos.to_string(),
    })
}

fn stale_read_json(stale: &StaleRead) -> Value {
    json!({
        "key": stale.key,
        "system": stale.system,
        "collection": stale.collection,
        "read": {
            "traceId": stale.read.trace_id.to_hex(),
            "spanId": stale.read.span_id.to_hex(),
            "service": stale.read_service,
            "region": stale.read_region,
            "level": stale.read_level,
            "returnedVersion": stale.returned_version.to_string(),
            "startTimeUnixNano": stale.read_start_unix_nanos.to_string(),
        },
        "write": write_json(&stale.write),
        "stalenessNanos": stale.staleness_nanos.to_string(),
        "stalenessMillis": millis(stale.staleness_nanos),
        "classification": stale.classification.name(),
        "reason": stale.reason,
    })
}

pub async fn stale_reads(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse_findings_query(&params, &["service", "key", "classification", "traceId"])?;
    read(&state, move |analyzer| {
        let mut matched: Vec<&StaleRead> = analyzer
            .stale_reads()
            .filter(|s| {
                query.in_range(s.read_start_unix_nanos)
                    && query.key_opt.as_ref().is_none_or(|k| *k == s.key)
                    && query.service_opt.as_ref().is_none_or(|v| *v == s.read_service || *v == s.write.service)
                    && query.classification_opt.is_none_or(|c| c == s.classification)
                    && query.in_trace([s.read.trace_id, s.write.trace_id].into_iter())
            })
            .collect();
        matched.sort_by_key(|s| std::cmp::Reverse(s.read_start_unix_nanos));
        let found: Vec<Value> = matched.iter().take(query.limit).map(|s| stale_read_json(s)).collect();
        json!({ "staleReads": found, "matched": matched.len(), "truncated": matched.len() > query.limit })
    })
    .await
}

/// A quantile interpolated within its bucket, kept within the exact minimum and maximum
/// (a bucket's upper part may lie beyond the largest lag seen).
fn quantile_millis(stats: &LagStats, q: f64, bounds_seconds: &[f64]) -> Option<f64> {
    let (min, max) = (millis(stats.min_nanos), millis(stats.max_nanos));
    stats.histogram.quantile(q, bounds_seconds).map(|seconds| (seconds * 1e3).clamp(min.min(max), max))
}

pub async fn replication_lag(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse_findings_query(&params, &[])?;
    read(&state, move |analyzer| {
        let interval_nanos = analyzer.interval_nanos();
        let starts = analyzer.lag_interval_starts();
        let start = query.start_opt.or(starts.first().copied()).unwrap_or(0);
        let end = query.end_opt.or(starts.last().map(|last| last + interval_nanos)).unwrap_or_else(now_unix_nanos);
        let bounds = analyzer.lag_bounds_seconds();
        let pairs: Vec<Value> = analyzer
            .lag_in_range(start, end)
            .iter()
            .map(|pair| {
                let total = &pair.total;
                let series: Vec<Value> = pair
                    .intervals
                    .iter()
                    .map(|(start, stats)| {
                        json!({
                            "startTimeUnixNano": start.to_string(),
                            "count": stats.count(),
                            "minMillis": millis(stats.min_nanos),
                            "maxMillis": millis(stats.max_nanos),
                            "p50Millis": quantile_millis(stats, 0.5, bounds),
                            "p99Millis": quantile_millis(stats, 0.99, bounds),
                        })
                    })
                    .collect();
                let exemplars: Vec<Value> = total
                    .histogram
                    .exemplars()
                    .map(|(_, e)| {
                        json!({
                            "traceId": e.trace_id.to_hex(),
                            "spanId": e.span_id.to_hex(),
                            "lagNanos": e.duration_nanos.to_string(),
                            "timeUnixNano": e.timestamp_unix_nanos.to_string(),
                        })
                    })
                    .collect();
                let mean_nanos = total.histogram.sum_nanos() / u128::from(total.count().max(1));
                json!({
                    "sourceRegion": pair.source_region,
                    "replicaRegion": pair.replica_region,
                    "count": total.count(),
                    "minNanos": total.min_nanos.to_string(),
                    "maxNanos": total.max_nanos.to_string(),
                    "minMillis": millis(total.min_nanos),
                    "maxMillis": millis(total.max_nanos),
                    "meanMillis": mean_nanos as f64 / 1e6,
                    "p50Millis": quantile_millis(total, 0.5, bounds),
                    "p90Millis": quantile_millis(total, 0.9, bounds),
                    "p99Millis": quantile_millis(total, 0.99, bounds),
                    "series": series,
                    "exemplars": exemplars,
                })
            })
            .collect();
        json!({ "intervalSeconds": interval_nanos / 1_000_000_000, "pairs": pairs })
    })
    .await
}

fn conflict_version_json(version: &ConflictVersion) -> Value {
    json!({ "version": version.version.to_string(), "write": version.write_opt.as_ref().map(write_json) })
}

pub async fn conflicts(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse_findings_query(&params, &["key", "traceId"])?;
    read(&state, move |analyzer| {
        let mut matched: Vec<_> = analyzer
            .conflicts()
            .filter(|c| {
                let writes = std::iter::once(&c.winner).chain(&c.losers).filter_map(|v| v.write_opt.as_ref());
                query.in_range(c.apply_start_unix_nanos)
                    && query.key_opt.as_ref().is_none_or(|k| *k == c.key)
                    && query.in_trace(std::iter::once(c.apply.trace_id).chain(writes.map(|w| w.trace_id)))
            })
            .collect();
        matched.sort_by_key(|c| std::cmp::Reverse(c.apply_start_unix_nanos));
        let found: Vec<Value> = matched
            .iter()
            .take(query.limit)
            .map(|c| {
                json!({
                    "key": c.key,
                    "region": c.region,
                    "sourceRegion": c.source_region,
                    "resolution": c.resolution,
                    "apply": {
                        "traceId": c.apply.trace_id.to_hex(),
                        "spanId": c.apply.span_id.to_hex(),
                        "startTimeUnixNano": c.apply_start_unix_nanos.to_string(),
                    },
                    "winner": conflict_version_json(&c.winner),
                    "losers": c.losers.iter().map(conflict_version_json).collect::<Vec<_>>(),
                    "explanation": c.explanation,
                })
            })
            .collect();
        json!({ "conflicts": found, "matched": matched.len(), "truncated": matched.len() > query.limit })
    })
    .await
}

pub async fn levels(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    if let Some((key, _)) = params.first() {
        return Err(bad(format!("unknown parameter {key:?}")));
    }
    read(&state, |analyzer| {
        let usage: Vec<Value> = analyzer
            .usage()
            .map(|(k, spans)| {
                json!({
                    "service": k.service,
                    "system": k.system,
                    "collection": k.collection,
                    "operation": k.operation,
                    "level": k.level,
                    "access": k.access.name(),
                    "spans": spans,
                })
            })
            .collect();
        let risky: Vec<Value> = analyzer
            .risky_patterns()
            .map(|(k, s)| {
                json!({
                    "service": k.service,
                    "collection": k.collection,
                    "readLevel": k.read_level,
                    "writeLevel": k.write_level,
                    "reads": s.reads,
                    "staleReads": s.stale_reads,
                    "example": { "traceId": s.example.trace_id.to_hex(), "spanId": s.example.span_id.to_hex() },
                })
            })
            .collect();
        let by_region: Vec<Value> = analyzer
            .stale_reads_by_pair()
            .into_iter()
            .map(|(source, replica, classification, count)| {
                json!({
                    "sourceRegion": source,
                    "replicaRegion": replica,
                    "classification": classification.name(),
                    "count": count,
                })
            })
            .collect();
        let c = analyzer.counters();
        json!({
            "usage": usage,
            "riskyPatterns": risky,
            "staleReadsByRegion": by_region,
            "counters": {
                "writes": c.writes,
                "readsJudged": c.reads_judged,
                "staleReads": c.stale_reads,
                "appliesJudged": c.applies_judged,
                "appliesWithoutWrite": c.applies_without_write,
                "conflicts": c.conflicts,
                "judgedEarly": c.judged_early,
                "evictedKeys": c.evicted_keys,
                "evictedWrites": c.evicted_writes,
                "forgottenFindings": c.forgotten_findings,
                "overflowedPairs": c.overflowed_pairs,
                "overflowedUsage": c.overflowed_usage,
                "lateLags": c.late_lags,
                "pending": analyzer.num_pending(),
                "keys": analyzer.num_keys(),
            },
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn findings_parameters() {
        let query = parse_findings_query(
            &params(&[("start", "10"), ("end", "20"), ("service", "cart"), ("classification", "violation")]),
            &["service", "classification"],
        )
        .unwrap();
        assert_eq!((query.start_opt, query.end_opt, query.limit), (Some(10), Some(20), DEFAULT_LIMIT));
        assert_eq!(query.classification_opt, Some(Classification::Violation));
        assert!(query.in_range(10) && !query.in_range(20));
        let refused = |pairs: &[(&str, &str)]| parse_findings_query(&params(pairs), &["service"]).unwrap_err().message;
        assert!(refused(&[("key", "k")]).contains("unknown parameter"));
        assert!(refused(&[("limit", "0")]).contains("limit"));
        assert!(refused(&[("start", "yesterday")]).contains("start"));
    }
}
