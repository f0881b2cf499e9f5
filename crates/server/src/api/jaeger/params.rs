//! Jaeger's query parameters, parsed as Jaeger's query service parses them
//! (`cmd/query/app/query_parser.go`), into Sextant's [`SearchQuery`].
//!
//! As in Go's `FormValue`, a parameter given twice counts once (the first), except the
//! repeatable `tag`, `tags` and `traceID`; an empty value counts as absent; parameters Jaeger
//! does not know are ignored (the UI sends some, such as `lookback=custom`).

use std::collections::BTreeMap;

use sextant_model::TraceId;
use sextant_storage::search::{AttributeFilter, DurationScope, MAX_SEARCH_LIMIT, SearchQuery};

use crate::api::params::parse_go_duration;

/// Traces per search when `limit` is absent: what the Jaeger UI sends by default.
pub const DEFAULT_LIMIT: usize = 20;
/// The search window when neither `start` nor `lookback` is given, as in Jaeger.
pub const DEFAULT_TRACE_LOOKBACK_NANOS: u64 = 2 * DAY_NANOS;
/// The dependencies window when `lookback` is absent, as in Jaeger.
pub const DEFAULT_DEPENDENCY_LOOKBACK_NANOS: u64 = DAY_NANOS;

const DAY_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// A parsed `GET /api/traces`: either trace IDs to fetch, or a search.
#[derive(Debug, PartialEq)]
pub struct TraceQuery {
    /// Given with `traceID`: these traces are fetched and the search conditions ignored.
    pub trace_ids: Vec<TraceId>,
    pub search: SearchQuery,
}

/// The first non-empty value of a parameter.
fn first<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
}

/// Every value of a repeatable parameter.
fn all<'a>(params: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> {
    params.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_error(param: &str, error: impl std::fmt::Display) -> String {
    format!("unable to parse param '{param}': {error}")
}

/// A time given in integer `unit_nanos` units since the epoch (negative is before 1970, taken
/// as 0).
fn parse_time(params: &[(String, String)], param: &str, unit_nanos: u64) -> Result<Option<u64>, String> {
    let Some(text) = first(params, param) else { return Ok(None) };
    let units: i64 = text.parse().map_err(|_| parse_error(param, format!("{text:?} is not an integer")))?;
    Ok(Some(u64::try_from(units).unwrap_or(0).saturating_mul(unit_nanos)))
}

/// A Go duration, where 0 means "no bound" as in Jaeger.
fn parse_bound(params: &[(String, String)], param: &str) -> Result<Option<u64>, String> {
    match first(params, param) {
        None => Ok(None),
        Some(text) => Ok(Some(parse_go_duration(text).map_err(|e| parse_error(param, e))?).filter(|d| *d > 0)),
    }
}

/// The UI's `lookback`: `custom` (the range is in `start` and `end`), a Go duration, or a
/// whole number of days or weeks (`2d`, `1w`).
fn parse_lookback(text: &str) -> Result<Option<u64>, String> {
    if text == "custom" {
        return Ok(None);
    }
    let days = |count: &str, per: u64| count.parse::<u64>().ok().map(|n| n.saturating_mul(per * DAY_NANOS));
    let in_days = match text.split_at(text.len().saturating_sub(1)) {
        (count, "d") => days(count, 1),
        (count, "w") => days(count, 7),
        _ => None,
    };
    match in_days {
        Some(nanos) => Ok(Some(nanos)),
        None => parse_go_duration(text)
            .map(Some)
            .map_err(|_| parse_error("lookback", format!("{text:?} is not custom, a duration like 1h, or 2d"))),
    }
}

/// Jaeger's `tag=key:value` (the value may hold colons) and `tags={"key": "value"}` (string
/// values only), merged in that order.
fn parse_tags(params: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let mut tags = BTreeMap::new();
    for tag in all(params, "tag") {
        let (key, value) = tag
            .split_once(':')
            .ok_or_else(|| format!("malformed 'tag' parameter, expecting key:value, received: {tag}"))?;
        tags.insert(key.to_string(), value.to_string());
    }
    for json in all(params, "tags") {
        let map: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| format!("malformed 'tags' parameter, cannot unmarshal JSON: {e}"))?;
        tags.extend(map);
    }
    Ok(tags)
}

/// A trace ID as Jaeger accepts it: 1 to 32 hex digits, left-padded with zeros.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.is_empty() || text.len() > 32 {
        return Err(format!("TraceID must be 1 to 32 hex characters: {text:?}"));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("TraceID is not hexadecimal: {text:?}"));
    }
    let padded = format!("{text:0>32}");
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(&padded, &mut bytes).map_err(|e| format!("TraceID {text:?}: {e}"))?;
    // All zeros parses (as in Jaeger) and is then simply not found.
    Ok(TraceId(bytes))
}

/// Parses `GET /api/traces` parameters; `now_unix_nanos` is the default `end`.
pub fn parse_trace_query(params: &[(String, String)], now_unix_nanos: u64) -> Result<TraceQuery, String> {
    let service = first(params, "service");
    let end = parse_time(params, "end", 1_000)?.unwrap_or(now_unix_nanos);
    let start = match parse_time(params, "start", 1_000)? {
        Some(start) => start,
        None => {
            let lookback = first(params, "lookback").map(parse_lookback).transpose()?.flatten();
            end.saturating_sub(lookback.unwrap_or(DEFAULT_TRACE_LOOKBACK_NANOS))
        }
    };
    let tags = parse_tags(params)?;
    let limit = match first(params, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => {
            let limit: i32 = text.parse().map_err(|_| parse_error("limit", format!("{text:?} is not an integer")))?;
            match usize::try_from(limit) {
                Ok(0) | Err(_) => DEFAULT_LIMIT,
                Ok(limit) => limit.min(MAX_SEARCH_LIMIT),
            }
        }
    };
    let min_duration = parse_bound(params, "minDuration")?;
    let max_duration = parse_bound(params, "maxDuration")?;
    let mut trace_ids = Vec::new();
    for text in all(params, "traceID") {
        let id = parse_trace_id(text).map_err(|e| format!("cannot parse traceID param: {e}"))?;
        if !trace_ids.contains(&id) {
            trace_ids.push(id);
        }
    }

    if trace_ids.is_empty() && service.is_none() {
        return Err("parameter 'service' is required".to_string());
    }
    if let (Some(min), Some(max)) = (min_duration, max_duration)
        && max < min
    {
        return Err("'maxDuration' should be greater than 'minDuration'".to_string());
    }

    let mut search = SearchQuery {
        service: service.map(str::to_string),
        operation: first(params, "operation").map(str::to_string),
        min_duration_nanos: min_duration,
        max_duration_nanos: max_duration,
        duration_scope: DurationScope::Span,
        start_unix_nanos: Some(start),
        end_unix_nanos: Some(end),
        limit,
        ..SearchQuery::default()
    };
    for (key, value) in tags {
        // The error tags Jaeger derives from the span status, searched as the status itself.
        match (key.as_str(), value.as_str()) {
            ("error", "true") | ("otel.status_code", "ERROR") => search.errors_only = true,
            _ => search.attributes.push(AttributeFilter { key, value }),
        }
    }
    Ok(TraceQuery { trace_ids, search })
}

/// Parses `GET /api/dependencies` parameters (`endTs` and `lookback` in milliseconds) into the
/// window `(from, to)` in unix nanoseconds.
pub fn parse_dependencies_window(params: &[(String, String)], now_unix_nanos: u64) -> Result<(u64, u64), String> {
    let end = parse_time(params, "endTs", 1_000_000)?.unwrap_or(now_unix_nanos);
    let lookback = match first(params, "lookback") {
        None => DEFAULT_DEPENDENCY_LOOKBACK_NANOS,
        Some(text) => {
            let millis: i64 =
                text.parse().map_err(|_| parse_error("lookback", format!("{text:?} is not an integer")))?;
            u64::try_from(millis).unwrap_or(0).saturating_mul(1_000_000)
        }
    };
    Ok((end.saturating_sub(lookback), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn search_parameters_map_onto_one_span() {
        let query = parse_trace_query(
            &params(&[
                ("service", "cart"),
                ("operation", "GET /cart"),
                ("tag", "http.route:/a:b"),
                ("tags", r#"{"error":"true","region":"eu"}"#),
                ("minDuration", "1.2s"),
                ("maxDuration", "2s"),
                ("start", "1700000000000000"),
                ("end", "1700000001000000"),
                ("limit", "5"),
                ("lookback", "custom"),
                ("prettyPrint", "true"),
            ]),
            NOW,
        )
        .unwrap();
        let search = &query.search;
        assert_eq!(search.service.as_deref(), Some("cart"));
        assert_eq!(search.operation.as_deref(), Some("GET /cart"));
        assert_eq!(search.duration_scope, DurationScope::Span);
        assert_eq!(search.min_duration_nanos, Some(1_200_000_000));
        assert_eq!(search.start_unix_nanos, Some(1_700_000_000_000_000_000), "microseconds");
        assert_eq!(search.end_unix_nanos, Some(1_700_000_001_000_000_000));
        assert_eq!(search.limit, 5);
        assert!(search.errors_only, "error=true is the error status");
        let tags: Vec<(&str, &str)> = search.attributes.iter().map(|a| (a.key.as_str(), a.value.as_str())).collect();
        assert_eq!(tags, vec![("http.route", "/a:b"), ("region", "eu")]);
    }

    #[test]
    fn defaults_follow_jaeger() {
        let search = parse_trace_query(&params(&[("service", "cart")]), NOW).unwrap().search;
        assert_eq!(search.end_unix_nanos, Some(NOW));
        assert_eq!(search.start_unix_nanos, Some(NOW - DEFAULT_TRACE_LOOKBACK_NANOS));
        assert_eq!(search.limit, DEFAULT_LIMIT);
        let search = parse_trace_query(&params(&[("service", "c"), ("lookback", "2d")]), NOW).unwrap().search;
        assert_eq!(search.start_unix_nanos, Some(NOW - 2 * DAY_NANOS));
        let search = parse_trace_query(&params(&[("service", "c"), ("lookback", "15m")]), NOW).unwrap().search;
        assert_eq!(search.start_unix_nanos, Some(NOW - 900_000_000_000));
        let search = parse_trace_query(&params(&[("service", "c"), ("minDuration", "0")]), NOW).unwrap().search;
        assert_eq!(search.min_duration_nanos, None, "0 means no bound");
        let search = parse_trace_query(&params(&[("service", "c"), ("limit", "5000")]), NOW).unwrap().search;
        assert_eq!(search.limit, MAX_SEARCH_LIMIT);
    }

    #[test]
    fn trace_ids_replace_the_service_requirement() {
        let query =
            parse_trace_query(&params(&[("traceID", "abc"), ("traceID", "ABC"), ("traceID", "1")]), NOW).unwrap();
        assert_eq!(query.trace_ids.len(), 2, "duplicates dropped");
        assert_eq!(query.trace_ids[0].to_hex(), "00000000000000000000000000000abc");
    }

    #[test]
    fn malformed_parameters_are_refused_by_name() {
        for (pairs, needle) in [
            (vec![], "parameter 'service' is required"),
            (vec![("service", "c"), ("minDuration", "fast")], "'minDuration'"),
            (vec![("service", "c"), ("start", "yesterday")], "'start'"),
            (vec![("service", "c"), ("limit", "ten")], "'limit'"),
            (vec![("service", "c"), ("lookback", "soon")], "'lookback'"),
            (vec![("service", "c"), ("tag", "novalue")], "malformed 'tag'"),
            (vec![("service", "c"), ("tags", "{not json")], "malformed 'tags'"),
            (vec![("service", "c"), ("tags", r#"{"n": 1}"#)], "malformed 'tags'"),
            (vec![("traceID", "xyz")], "cannot parse traceID"),
            (vec![("service", "c"), ("minDuration", "2s"), ("maxDuration", "1s")], "'maxDuration' should be greater"),
        ] {
            let err = parse_trace_query(&params(&pairs), NOW).unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn trace_ids_parse_like_jaeger() {
        assert_eq!(parse_trace_id("1").unwrap().to_hex(), "00000000000000000000000000000001");
        assert_eq!(
            parse_trace_id("0af7651916cd43dd8448eb211c80319c").unwrap().to_hex(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(parse_trace_id("").is_err());
        assert!(parse_trace_id("g").is_err());
        assert!(parse_trace_id(&"1".repeat(33)).is_err());
        assert!(parse_trace_id("0").unwrap().is_zero(), "parses, then is not found");
    }

    #[test]
    fn dependency_window_is_in_milliseconds() {
        let window = parse_dependencies_window(&params(&[("endTs", "1700000000000"), ("lookback", "60000")]), NOW);
        assert_eq!(window, Ok((1_699_999_940_000_000_000, 1_700_000_000_000_000_000)));
        assert_eq!(parse_dependencies_window(&[], NOW), Ok((NOW - DAY_NANOS, NOW)));
        assert!(parse_dependencies_window(&params(&[("endTs", "now")]), NOW).unwrap_err().contains("'endTs'"));
    }
}
