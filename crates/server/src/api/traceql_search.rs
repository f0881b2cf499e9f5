//! TraceQL search over the engine, for Tempo's `GET /api/search?q=`.
//!
//! The query is parsed and compiled once ([`sextant_traceql`]). One span condition every
//! result needs ([`sextant_traceql::conditions`]; the most selective kind: an attribute, then
//! the span name, a duration bound, the service, an error status) narrows the engine's search
//! to candidate traces, newest first; conditions on the service and on errors are checked on
//! each candidate's summary; the remaining candidates are fetched whole and the query evaluated
//! on them, until `limit` traces match or [`MAX_INSPECTED_TRACES`] candidates have been read
//! (then the answer holds the matches found so far, as a Tempo search that hits its limits).
//! A query with no such condition is refused unless it gives a time range.
//! Conditions are not yet evaluated inside the block scan itself.

use serde_json::{Value, json};
use sextant_model::{Span, TraceId};
use sextant_storage::search::{AttributeFilter, Cursor, DurationScope, SearchQuery, TraceSummary};
use sextant_traceql::ast::{ComparisonOp, Status};
use sextant_traceql::eval::Value as TqlValue;
use sextant_traceql::pushdown::{AttributeValue, Condition};
use sextant_traceql::{Compiled, Spanset};

use super::ApiState;
use super::plain::PlainError;
use super::tempo::{Bounds, search_response, trace_result};

/// Candidate traces read at most by one search.
pub const MAX_INSPECTED_TRACES: usize = 10_000;
/// Candidates asked of the engine at most at a time. The first page asks for as many as the
/// answer needs (every candidate may match), each next one four times more: a selective
/// condition is not made to find hundreds of candidates it does not need.
const MAX_PAGE_TRACES: usize = 200;

fn invalid(message: String) -> PlainError {
    PlainError::bad_request(message)
}

/// Runs TraceQL query `q` and answers as Tempo's `/api/search` does.
pub async fn tempo_search(
    state: &ApiState,
    q: &str,
    bounds: &Bounds,
    spans_per_set: usize,
) -> Result<Value, PlainError> {
    let query = sextant_traceql::parse(q).map_err(|e| invalid(format!("invalid TraceQL query: {e}")))?;
    let compiled = Compiled::new(&query).map_err(|e| invalid(format!("invalid TraceQL query: {e}")))?;
    let conditions = sextant_traceql::conditions(&query).conditions;
    let mut candidates = candidate_query(&conditions);
    if candidates == SearchQuery::default() && (bounds.start_unix_nanos.is_none() || bounds.end_unix_nanos.is_none()) {
        return Err(invalid(format!(
            "TraceQL query {query} has no condition every match needs that narrows the search (a service, span \
             name, attribute equality, error status or duration bound), so it would read every trace: give start \
             and end to search a time range"
        )));
    }
    candidates.start_unix_nanos = bounds.start_unix_nanos;
    candidates.end_unix_nanos = bounds.end_unix_nanos;
    candidates.limit = bounds.limit.clamp(1, MAX_PAGE_TRACES);

    let mut results = Vec::new();
    let mut inspected = 0;
    let mut cursor: Option<Cursor> = None;
    'pages: loop {
        candidates.cursor = cursor.take();
        let page = state.engine.search(&candidates).await?;
        // Conditions a trace's summary can decide are checked before fetching it.
        let worth_fetching: Vec<TraceSummary> =
            page.traces.iter().filter(|summary| summary_may_match(&conditions, summary)).cloned().collect();
        inspected += page.traces.len() - worth_fetching.len();
        let ids: Vec<TraceId> = worth_fetching.iter().map(|t| t.trace_id).collect();
        let fetched = state.engine.traces(&ids).await?;
        for (summary, spans) in worth_fetching.iter().zip(&fetched) {
            inspected += 1;
            let sets = compiled.evaluate(spans).map_err(|e| invalid(format!("TraceQL query failed: {e}")))?;
            if !sets.is_empty() {
                results.push(result_with_sets(summary, spans, &sets, spans_per_set));
                if results.len() >= bounds.limit {
                    break 'pages;
                }
            }
            if inspected >= MAX_INSPECTED_TRACES {
                break 'pages;
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        candidates.limit = (candidates.limit * 4).min(MAX_PAGE_TRACES);
    }
    Ok(search_response(results, inspected))
}

/// Whether a trace with this summary may satisfy every condition: a condition on the service
/// needs the service among the trace's, one on error status an error span; the others need the
/// spans.
pub(crate) fn summary_may_match(conditions: &[Condition], summary: &TraceSummary) -> bool {
    conditions.iter().all(|condition| match condition {
        Condition::ServiceName(service) => summary.services.iter().any(|s| s == service),
        Condition::Status(Status::Error) => summary.error_count > 0,
        _ => true,
    })
}

/// One trace's answer: its span sets, the first also as `spanSet`.
fn result_with_sets(summary: &TraceSummary, spans: &[Span], sets: &[Spanset], spans_per_set: usize) -> Value {
    let first: Vec<&Span> = sets[0].spans.iter().map(|&i| &spans[i]).collect();
    let mut result = trace_result(summary, &first, spans_per_set);
    let all: Vec<Value> = sets.iter().map(|set| span_set_json(set, spans, spans_per_set)).collect();
    result["spanSet"] = all[0].clone();
    result["spanSets"] = Value::Array(all);
    result
}

/// A span set as Tempo lists it: up to `spans_per_set` spans with `service.name` and the
/// `select()`ed fields, `matched` counting them all, and the `by()` and aggregate values as
/// `attributes`.
fn span_set_json(set: &Spanset, spans: &[Span], spans_per_set: usize) -> Value {
    let listed: Vec<Value> = set
        .spans
        .iter()
        .enumerate()
        .take(spans_per_set)
        .map(|(position, &index)| {
            let span = &spans[index];
            let mut attributes =
                vec![json!({ "key": "service.name", "value": { "stringValue": span.service_name() } })];
            for selected in &set.selected {
                if let Some(value) = selected.values.get(position).and_then(otlp_value) {
                    attributes.push(json!({ "key": selected.field, "value": value }));
                }
            }
            json!({
                "spanID": span.span_id.to_hex(),
                "name": span.name,
                "startTimeUnixNano": span.start_unix_nanos.to_string(),
                "durationNanos": span.end_unix_nanos.saturating_sub(span.start_unix_nanos).to_string(),
                "attributes": attributes,
            })
        })
        .collect();
    let set_attributes: Vec<Value> = set
        .group
        .iter()
        .chain(&set.aggregates)
        .filter_map(|(name, value)| Some(json!({ "key": name, "value": otlp_value(value)? })))
        .collect();
    let mut json = json!({ "spans": listed, "matched": set.spans.len() });
    if !set_attributes.is_empty() {
        json["attributes"] = Value::Array(set_attributes);
    }
    json
}

/// A TraceQL value as an OTLP/JSON `AnyValue`; nil has none.
pub(crate) fn otlp_value(value: &TqlValue<'_>) -> Option<Value> {
    Some(match value {
        TqlValue::Nil => return None,
        TqlValue::Bool(b) => json!({ "boolValue": b }),
        TqlValue::Int(i) => json!({ "intValue": i.to_string() }),
        TqlValue::Float(f) => json!({ "doubleValue": f }),
        TqlValue::String(s) => json!({ "stringValue": s }),
        other => json!({ "stringValue": other.to_string() }),
    })
}

/// The engine search for candidates: the one condition most likely to narrow them, since the
/// engine's span conditions must all hold on one span while the query's may hold on different
/// ones. Service and error conditions rank last: a trace's summary decides them anyway
/// ([`summary_may_match`]) before the trace is fetched.
pub(crate) fn candidate_query(conditions: &[Condition]) -> SearchQuery {
    let rank = |condition: &Condition| match condition {
        Condition::Attribute { value: AttributeValue::Float(_), .. } => None,
        Condition::Attribute { .. } => Some(0),
        Condition::SpanName(_) => Some(1),
        Condition::Duration { .. } => Some(2),
        Condition::ServiceName(_) => Some(3),
        Condition::Status(Status::Error) => Some(4),
        Condition::Status(_) | Condition::Kind(_) => None,
    };
    let mut query = SearchQuery::default();
    let Some(best) = conditions.iter().filter(|c| rank(c).is_some()).min_by_key(|c| rank(c)) else { return query };
    match best {
        Condition::Attribute { name, value, .. } => {
            let value = match value {
                AttributeValue::String(s) => s.clone(),
                AttributeValue::Int(i) => i.to_string(),
                AttributeValue::Bool(b) => b.to_string(),
                AttributeValue::Float(f) => f.to_string(),
            };
            query.attributes.push(AttributeFilter { key: name.clone(), value });
        }
        Condition::SpanName(name) => query.operation = Some(name.clone()),
        Condition::ServiceName(service) => query.service = Some(service.clone()),
        Condition::Status(_) => query.errors_only = true,
        Condition::Duration { op, nanos } => {
            query.duration_scope = DurationScope::Span;
            match op {
                ComparisonOp::Gt => query.min_duration_nanos = Some(nanos.saturating_add(1)),
                ComparisonOp::Gte => query.min_duration_nanos = Some(*nanos),
                ComparisonOp::Lt => query.max_duration_nanos = Some(nanos.saturating_sub(1)),
                ComparisonOp::Lte => query.max_duration_nanos = Some(*nanos),
                ComparisonOp::Eq | ComparisonOp::Neq => {}
            }
        }
        Condition::Kind(_) => {}
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(q: &str) -> SearchQuery {
        let query = sextant_traceql::parse(q).unwrap();
        candidate_query(&sextant_traceql::conditions(&query).conditions)
    }

    #[test]
    fn one_condition_narrows_the_candidates() {
        let q = candidates(r#"{ resource.service.name = "cart" && name = "checkout" && span.http.method = "GET" }"#);
        assert_eq!(q.attributes, vec![AttributeFilter { key: "http.method".into(), value: "GET".into() }]);
        assert_eq!((q.service, q.operation), (None, None), "conditions of other spans are not combined");
        assert_eq!(
            candidates(r#"{ name = "checkout" } >> { resource.service.name = "db" }"#).operation.as_deref(),
            Some("checkout")
        );
        let q = candidates("{ duration > 1s }");
        assert_eq!((q.min_duration_nanos, q.duration_scope), (Some(1_000_000_001), DurationScope::Span));
        assert!(candidates("{ status = error }").errors_only);
        // Nothing every result needs: all traces of the range are candidates.
        assert_eq!(candidates(r#"{ name = "a" } || { name = "b" }"#), SearchQuery::default());
        assert_eq!(candidates("{ .x = 1.5 }"), SearchQuery::default(), "a float may equal an integer attribute");
        let q = candidates(r#"{ resource.service.name = "a" && duration > 1s }"#);
        assert_eq!((q.service, q.min_duration_nanos), (None, Some(1_000_000_001)), "the service is left to summaries");
    }

    #[test]
    fn summaries_decide_service_and_error_conditions() {
        let query =
            sextant_traceql::parse(r#"{ resource.service.name = "db" } >> { status = error && name = "x" }"#).unwrap();
        let conditions = sextant_traceql::conditions(&query).conditions;
        let summary = |services: &[&str], errors: usize| TraceSummary {
            trace_id: sextant_model::TraceId([1; 16]),
            root_service: services[0].to_string(),
            root_name: "r".into(),
            start_unix_nanos: 1,
            duration_nanos: 1,
            span_count: 3,
            error_count: errors,
            services: services.iter().map(|s| s.to_string()).collect(),
        };
        assert!(summary_may_match(&conditions, &summary(&["api", "db"], 1)));
        assert!(!summary_may_match(&conditions, &summary(&["api", "cache"], 1)), "no span of db");
        assert!(!summary_may_match(&conditions, &summary(&["api", "db"], 0)), "no error span");
    }
}
