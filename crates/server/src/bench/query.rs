//! `sextant bench query`: the query set of the published Jaeger ClickHouse benchmark, asked of a
//! loaded server over the native HTTP API, every answer checked against the workload.
//!
//! What is asked, all chosen from the generated data with the workload's seed:
//! - a sample of trace IDs (`--trace-ids`), fetched once each by "trace by ID", and another
//!   sample for "trace by ID + time range" (the native API has no time range there, so it is
//!   the same request on other traces; the report says so);
//! - one *anchor* trace, the first of the sample. Its root span gives every search parameter:
//!   its service (search by service; operations of that service), its service and name
//!   (search by operation: an operation belongs to a service, as in the Jaeger UI), a range
//!   of ±[`DURATION_RANGE_FACTOR`] around its duration (a few % of all traces: durations are
//!   log-uniform), [`TIME_RANGE`] around its start, one of its attributes, and all of those at
//!   once. So every search has at least one match, whatever the size of the workload.
//!
//! What the answers must be: one pass regenerates every trace ([`TraceSource`]) and applies
//! the search semantics of the API (span conditions on one span, the duration on the whole
//! trace, newest first, ties by trace ID) to know, per search, how many traces match and which
//! `limit` of them come back, in order. A trace must come back with all its spans; services
//! and operations must be those of the workload. An answer that differs counts as a failure.
//!
//! Timing: one request at a time on one kept-alive connection, the wall time from writing the
//! request to the end of the body (JSON parsing and checking after the clock stops); one
//! untimed warm-up per query.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use sextant_codec::proto::tonic::common::v1::{KeyValue, any_value};
use sextant_codec::proto::tonic::trace::v1::Span;

use super::http::{Answer, HttpClient};
use super::report::{
    DataSummary, IngestSummary, LoadSummary, Machine, Parameters, QueryKind, QueryParameters, QueryReport, QueryResult,
    QueryServerSummary, WorkloadSummary,
};
use super::rng::SplitMix64;
use super::server_process::{READY_TIMEOUT, ServerProcess, metric_value, passed_through_settings};
use super::workload::{SPANS_PER_TRACE, TraceSource, WorkloadParams};
use super::{DataRoot, QueryArgs, generate, keep_in_head, start_and_load, workload_params};

/// The longest the restarted server may take to compact the loaded blocks.
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(1800);
/// The longest a single answer may take (searches scan every block).
const QUERY_TIMEOUT: Duration = Duration::from_secs(600);
/// The duration range is `[d / f, d × f]` around the anchor's duration `d`. With the random
/// shape, root durations are log-uniform over four decades (ln 10⁴ ≈ 9.2), so about
/// 2 ln f / 9.2 ≈ 3 % of traces match; tracegen's traces last 30 to 180 µs, and about a third
/// match.
pub const DURATION_RANGE_FACTOR: f64 = 1.15;
/// The timestamp range: this long, centred on the anchor's start.
pub const TIME_RANGE: Duration = Duration::from_secs(3600);
/// The random stream that picks trace IDs: one no trace of a workload uses.
const SAMPLE_STREAM: u64 = u64::MAX;
/// Traces per task of the pass that computes the expected answers.
const CHUNK_TRACES: u64 = 1024;
/// Characters of an unexpected answer quoted in a failure.
const QUOTED_CHARS: usize = 300;

/// Conditions of one search, as the API applies them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchSpec {
    pub service: Option<usize>,
    pub operation: Option<String>,
    /// `attr.<key>=<value>`.
    pub attribute: Option<(String, String)>,
    /// `minDuration`, `maxDuration` of the whole trace, inclusive.
    pub duration_nanos: Option<(u64, u64)>,
    /// `start`, `end`: some matching span starts in between, inclusive.
    pub start_range_nanos: Option<(u64, u64)>,
}

impl SearchSpec {
    /// `/api/v1/search?…` with `limit`.
    pub fn path(&self, source: &TraceSource, limit: u64) -> String {
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(service) = self.service {
            params.push(("service".into(), source.service_name(service)));
        }
        if let Some(operation) = &self.operation {
            params.push(("operation".into(), operation.clone()));
        }
        if let Some((key, value)) = &self.attribute {
            params.push((format!("attr.{key}"), value.clone()));
        }
        if let Some((min, max)) = self.duration_nanos {
            params.push(("minDuration".into(), format!("{min}ns")));
            params.push(("maxDuration".into(), format!("{max}ns")));
        }
        if let Some((start, end)) = self.start_range_nanos {
            params.push(("start".into(), start.to_string()));
            params.push(("end".into(), end.to_string()));
        }
        params.push(("limit".into(), limit.to_string()));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        format!("/api/v1/search?{}", query.join("&"))
    }

    /// Whether the trace of `spans`, spanning `start..end`, matches.
    fn trace_matches(&self, source: &TraceSource, spans: &[(usize, Span)], start: u64, end: u64) -> bool {
        self.duration_nanos.is_none_or(|(min, max)| (min..=max).contains(&(end - start)))
            && spans.iter().any(|(service, span)| self.span_matches(source, *service, span))
    }

    fn span_matches(&self, source: &TraceSource, service: usize, span: &Span) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.operation.as_ref().is_none_or(|o| *o == span.name)
            && self.start_range_nanos.is_none_or(|(start, end)| (start..=end).contains(&span.start_time_unix_nano))
            && self.attribute.as_ref().is_none_or(|(key, value)| {
                attribute_matches(&span.attributes, source.resource_attributes(service), key, value)
            })
    }
}

/// The API's attribute match: the span's attribute, else the resource's, compared with its
/// own type (the workload has strings and integers only).
fn attribute_matches(span: &[KeyValue], resource: &[KeyValue], key: &str, value: &str) -> bool {
    let found = span.iter().find(|kv| kv.key == key).or_else(|| resource.iter().find(|kv| kv.key == key));
    found.and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref()).is_some_and(|v| match v {
        any_value::Value::StringValue(s) => s == value,
        any_value::Value::IntValue(i) => value.parse::<i64>().is_ok_and(|x| x == *i),
        _ => false,
    })
}

/// Percent-encodes a query component: everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A search and the answer it must get.
#[derive(Clone, Debug)]
pub struct PlannedSearch {
    pub kind: QueryKind,
    pub spec: SearchSpec,
    /// What is asked: [`SearchSpec::path`].
    pub path: String,
    /// Traces of the workload that match.
    pub matching: u64,
    /// Trace IDs (hex) of the answer: the newest `limit` matching traces, in order.
    pub newest: Vec<String>,
}

/// Everything the benchmark asks, with the answers it expects.
#[derive(Clone, Debug)]
pub struct Plan {
    pub anchor_service: String,
    pub services: BTreeSet<String>,
    /// Span names of the anchor's service.
    pub operations: BTreeSet<String>,
    pub trace_ids: Vec<String>,
    pub other_trace_ids: Vec<String>,
    pub searches: Vec<PlannedSearch>,
    pub traceql: Vec<PlannedTraceql>,
}

/// A TraceQL search through Tempo's API and the answer it must get.
#[derive(Clone, Debug)]
pub struct PlannedTraceql {
    pub kind: QueryKind,
    /// The query.
    pub query: String,
    /// `/api/search?q=…&limit=…`.
    pub path: String,
    /// Traces of the workload that match.
    pub matching: u64,
    /// Trace IDs as Tempo writes them (hex without leading zeros) of the newest `limit` matches,
    /// in order.
    pub newest: Vec<String>,
}

/// Which traces the trace-by-ID queries fetch: two independent samples of trace indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub trace_ids: Vec<u64>,
    pub other_trace_ids: Vec<u64>,
}

impl Samples {
    /// `count` distinct traces (all, shuffled, if the workload has fewer) for each query.
    pub fn draw(params: &WorkloadParams, count: u64) -> Samples {
        let mut rng = SplitMix64::for_stream(params.seed, SAMPLE_STREAM);
        let trace_ids = sample_indices(&mut rng, count, params.num_traces);
        let other_trace_ids = sample_indices(&mut rng, count, params.num_traces);
        Samples { trace_ids, other_trace_ids }
    }

    /// The trace whose root span gives the search parameters.
    pub fn anchor(&self) -> u64 {
        self.trace_ids[0]
    }
}

fn sample_indices(rng: &mut SplitMix64, count: u64, total: u64) -> Vec<u64> {
    if count >= total {
        let mut all: Vec<u64> = (0..total).collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i as u64 + 1) as usize);
        }
        return all;
    }
    let mut chosen = HashSet::new();
    let mut out = Vec::with_capacity(count as usize);
    while (out.len() as u64) < count {
        let index = rng.below(total);
        if chosen.insert(index) {
            out.push(index);
        }
    }
    out
}

/// Earliest start and latest end of a trace's spans.
fn trace_bounds(spans: &[(usize, Span)]) -> (u64, u64) {
    let start = spans.iter().map(|(_, s)| s.start_time_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|(_, s)| s.end_time_unix_nano).max().unwrap_or(0);
    (start, end)
}

/// An attribute of the span as `(key, value)` text: the first string, else the first integer.
fn some_attribute(span: &Span) -> Option<(String, String)> {
    let text = |want_string: bool| {
        span.attributes.iter().find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if want_string => Some((kv.key.clone(), s.clone())),
            any_value::Value::IntValue(i) if !want_string => Some((kv.key.clone(), i.to_string())),
            _ => None,
        })
    };
    text(true).or_else(|| text(false))
}

/// The searches, their parameters taken from the anchor trace: service and operation from its
/// root span, the attribute from its last span (a child, whose attributes are the selective
/// ones: tracegen's roots carry only the two attributes every root has), and all filters from
/// that last span.
pub fn searches(source: &TraceSource, anchor: u64) -> anyhow::Result<Vec<(QueryKind, SearchSpec)>> {
    let spans = source.trace(anchor);
    let (start, end) = trace_bounds(&spans);
    let (service, root) = &spans[0];
    let (last_service, last) = spans.last().expect("traces have spans");
    let duration = (end - start) as f64;
    let duration_nanos =
        Some(((duration / DURATION_RANGE_FACTOR).floor() as u64, (duration * DURATION_RANGE_FACTOR).ceil() as u64));
    let half_range = TIME_RANGE.as_nanos() as u64 / 2;
    let start_range_nanos = Some((start.saturating_sub(half_range), start + half_range));
    let attribute = Some(some_attribute(last).context("the anchor's last span has no attribute")?);
    let service = Some(*service);
    Ok(vec![
        (QueryKind::SearchService, SearchSpec { service, ..Default::default() }),
        (QueryKind::SearchOperation, SearchSpec { service, operation: Some(root.name.clone()), ..Default::default() }),
        (QueryKind::SearchDuration, SearchSpec { duration_nanos, ..Default::default() }),
        (QueryKind::SearchTimestamp, SearchSpec { start_range_nanos, ..Default::default() }),
        (QueryKind::SearchAttribute, SearchSpec { attribute: attribute.clone(), ..Default::default() }),
        (
            QueryKind::SearchAll,
            SearchSpec {
                service: Some(*last_service),
                operation: Some(last.name.clone()),
                attribute,
                duration_nanos,
                start_range_nanos,
            },
        ),
    ])
}

/// What one pass over the workload found.
struct Tally {
    /// Per search, then per TraceQL query.
    matching: Vec<u64>,
    /// Per search, then per TraceQL query, `(start, trace id)` of candidates for the newest;
    /// trimmed now and then.
    newest: Vec<Vec<(u64, u128)>>,
    services: BTreeSet<usize>,
    operations: BTreeSet<String>,
}

/// Newest first, then by trace ID, as the API orders; the first `limit`.
fn keep_newest(list: &mut Vec<(u64, u128)>, limit: usize) {
    list.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    list.truncate(limit);
}

impl Tally {
    fn new(searches: usize) -> Tally {
        Tally {
            matching: vec![0; searches],
            newest: vec![Vec::new(); searches],
            services: BTreeSet::new(),
            operations: BTreeSet::new(),
        }
    }

    fn merge(mut self, other: Tally, limit: usize) -> Tally {
        for (k, (matching, mut newest)) in other.matching.into_iter().zip(other.newest).enumerate() {
            self.matching[k] += matching;
            self.newest[k].append(&mut newest);
            keep_newest(&mut self.newest[k], limit);
        }
        self.services.extend(other.services);
        self.operations.extend(other.operations);
        self
    }
}

/// The spans of a generated trace as the server stores them.
fn model_spans(source: &TraceSource, spans: &[(usize, Span)]) -> Vec<sextant_model::Span> {
    use prost::Message;
    use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use sextant_codec::proto::tonic::resource::v1::Resource;
    use sextant_codec::proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    let resource_spans = spans
        .iter()
        .map(|(service, span)| ResourceSpans {
            resource: Some(Resource {
                attributes: source.resource_attributes(*service).to_vec(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { scope: None, spans: vec![span.clone()], schema_url: String::new() }],
            schema_url: String::new(),
        })
        .collect();
    let bytes = ExportTraceServiceRequest { resource_spans }.encode_to_vec();
    sextant_codec::decode_spans(&bytes).expect("the workload's spans decode")
}

/// Regenerates every trace on `threads` threads and counts what each search and each TraceQL
/// query must find.
fn tally(
    source: &TraceSource,
    specs: &[SearchSpec],
    traceql: &[sextant_traceql::Compiled],
    limit: usize,
    anchor_service: usize,
    threads: usize,
) -> Tally {
    let next = AtomicU64::new(0);
    let total = source.params.num_traces;
    let parts: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut t = Tally::new(specs.len() + traceql.len());
                    loop {
                        let first = next.fetch_add(CHUNK_TRACES, Ordering::Relaxed);
                        if first >= total {
                            return t;
                        }
                        for index in first..(first + CHUNK_TRACES).min(total) {
                            let spans = source.trace(index);
                            let (start, end) = trace_bounds(&spans);
                            let id_bytes: [u8; 16] =
                                spans[0].1.trace_id.as_slice().try_into().expect("16-byte trace IDs");
                            let id = u128::from_be_bytes(id_bytes);
                            for (service, span) in &spans {
                                t.services.insert(*service);
                                if *service == anchor_service && !t.operations.contains(&span.name) {
                                    t.operations.insert(span.name.clone());
                                }
                            }
                            let stored = (!traceql.is_empty()).then(|| model_spans(source, &spans));
                            let matches = specs
                                .iter()
                                .map(|spec| spec.trace_matches(source, &spans, start, end))
                                .chain(traceql.iter().map(|query| {
                                    query.matches(stored.as_deref().unwrap_or_default()).unwrap_or(false)
                                }));
                            for (k, matched) in matches.enumerate() {
                                if matched {
                                    t.matching[k] += 1;
                                    t.newest[k].push((start, id));
                                    if t.newest[k].len() >= 4 * limit.max(16) {
                                        keep_newest(&mut t.newest[k], limit);
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a thread of the expected-answer pass panicked")).collect()
    });
    parts.into_iter().fold(Tally::new(specs.len() + traceql.len()), |all, part| all.merge(part, limit))
}

/// The hex trace ID of trace `index`.
fn trace_id_hex(source: &TraceSource, index: u64) -> String {
    hex::encode(&source.trace(index)[0].1.trace_id)
}

/// Everything to ask, with the expected answers.
pub fn plan(source: &TraceSource, samples: &Samples, limit: u64, threads: usize) -> anyhow::Result<Plan> {
    let anchor_service = source.trace(samples.anchor())[0].0;
    let kinds_and_specs = searches(source, samples.anchor())?;
    let specs: Vec<SearchSpec> = kinds_and_specs.iter().map(|(_, spec)| spec.clone()).collect();
    let traceql_queries = traceql_queries(source, samples.anchor())?;
    let compiled = traceql_queries
        .iter()
        .map(|(_, text)| {
            let query = sextant_traceql::parse(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
            sextant_traceql::Compiled::new(&query).map_err(|e| anyhow::anyhow!("{text}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tally = tally(source, &specs, &compiled, limit as usize, anchor_service, threads);
    let mut matching = tally.matching.into_iter();
    let mut newest = tally.newest.into_iter();
    let searches = kinds_and_specs
        .into_iter()
        .zip(matching.by_ref())
        .zip(newest.by_ref())
        .map(|(((kind, spec), matching), newest)| PlannedSearch {
            kind,
            path: spec.path(source, limit),
            spec,
            matching,
            newest: newest.into_iter().map(|(_, id)| format!("{id:032x}")).collect(),
        })
        .collect();
    let traceql = traceql_queries
        .into_iter()
        .zip(matching)
        .zip(newest)
        .map(|(((kind, query), matching), newest)| PlannedTraceql {
            kind,
            path: format!("/api/search?q={}&limit={limit}", encode(&query)),
            query,
            matching,
            newest: newest.into_iter().map(|(_, id)| format!("{id:x}")).collect(),
        })
        .collect();
    Ok(Plan {
        anchor_service: source.service_name(anchor_service),
        services: tally.services.into_iter().map(|s| source.service_name(s)).collect(),
        operations: tally.operations,
        trace_ids: samples.trace_ids.iter().map(|&i| trace_id_hex(source, i)).collect(),
        other_trace_ids: samples.other_trace_ids.iter().map(|&i| trace_id_hex(source, i)).collect(),
        searches,
        traceql,
    })
}

/// A TraceQL string literal.
fn traceql_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The TraceQL set, its parameters taken from the anchor trace as for the searches: its root's
/// service (and how many of its spans that service has), its last span's name, duration and
/// first attribute.
pub fn traceql_queries(source: &TraceSource, anchor: u64) -> anyhow::Result<Vec<(QueryKind, String)>> {
    let spans = source.trace(anchor);
    let service = traceql_string(&source.service_name(spans[0].0));
    let (_, last) = spans.last().expect("traces have spans");
    let name = traceql_string(&last.name);
    let literal = match last.attributes.iter().find_map(|kv| kv.value.as_ref()?.value.as_ref().map(|v| (kv, v))) {
        Some((kv, any_value::Value::StringValue(s))) => (kv.key.clone(), traceql_string(s)),
        Some((kv, any_value::Value::IntValue(i))) => (kv.key.clone(), i.to_string()),
        _ => bail!("the anchor's last span has no string or integer attribute"),
    };
    let duration = last.end_time_unix_nano - last.start_time_unix_nano;
    let root_service_spans = spans.iter().filter(|(s, _)| *s == spans[0].0).count();
    Ok(vec![
        (QueryKind::TraceqlService, format!("{{ resource.service.name = {service} }}")),
        (QueryKind::TraceqlAttribute, format!("{{ span.{} = {} }}", literal.0, literal.1)),
        (QueryKind::TraceqlNameDuration, format!("{{ name = {name} && duration >= {}ns }}", duration / 2)),
        (QueryKind::TraceqlStructural, format!("{{ resource.service.name = {service} }} >> {{ name = {name} }}")),
        (QueryKind::TraceqlCount, format!("{{ resource.service.name = {service} }} | count() >= {root_service_spans}")),
    ])
}

// ---- checking answers ----

fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted
}

/// The JSON of a 200 answer.
fn json_of(answer: &Answer) -> Result<Value, String> {
    if answer.status != 200 {
        return Err(format!("status {}: {}", answer.status, quote(&answer.text())));
    }
    serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON ({e}): {}", quote(&answer.text())))
}

fn strings_at<'a>(value: &'a Value, array: &str, field: Option<&str>) -> Result<Vec<&'a str>, String> {
    let items = value[array].as_array().ok_or_else(|| format!("no {array:?} array"))?;
    items
        .iter()
        .map(|item| field.map_or(item, |f| &item[f]).as_str().ok_or_else(|| format!("{array:?} holds a non-string")))
        .collect()
}

/// `{"services": [...]}` with exactly the workload's services.
fn check_services(answer: &Answer, expected: &BTreeSet<String>) -> Result<u64, String> {
    let value = json_of(answer)?;
    let names = strings_at(&value, "services", None)?;
    let got: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    if got != *expected {
        return Err(format!("services {got:?}, expected {expected:?}"));
    }
    Ok(names.len() as u64)
}

/// `{"operations": [{"name", "spanKind"}]}` naming exactly the service's span names.
fn check_operations(answer: &Answer, expected: &BTreeSet<String>) -> Result<u64, String> {
    let value = json_of(answer)?;
    let names = strings_at(&value, "operations", Some("name"))?;
    let got: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    if got != *expected {
        return Err(format!("operations {got:?}, expected {expected:?}"));
    }
    Ok(names.len() as u64)
}

/// The spans of an OTLP/JSON trace answer.
fn otlp_spans(value: &Value) -> Vec<&Value> {
    fn each<'a>(v: &'a Value, key: &str) -> &'a [Value] {
        v[key].as_array().map_or(&[], Vec::as_slice)
    }
    each(value, "resourceSpans").iter().flat_map(|rs| each(rs, "scopeSpans")).flat_map(|ss| each(ss, "spans")).collect()
}

/// The whole trace `trace_id`: [`SPANS_PER_TRACE`] spans, all of it.
fn check_trace(answer: &Answer, trace_id: &str) -> Result<u64, String> {
    let value = json_of(answer).map_err(|e| format!("trace {trace_id}: {e}"))?;
    let spans = otlp_spans(&value);
    let own =
        spans.iter().filter(|s| s["traceId"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(trace_id))).count();
    if spans.len() != SPANS_PER_TRACE || own != SPANS_PER_TRACE {
        return Err(format!(
            "trace {trace_id}: {} spans ({own} of this trace), expected {SPANS_PER_TRACE}",
            spans.len()
        ));
    }
    Ok(1)
}

/// Exactly the expected trace IDs, in order.
fn same_ids(ids: &[&str], expected: &[String]) -> Result<(), String> {
    let first = ids.iter().zip(expected).position(|(got, want)| !got.eq_ignore_ascii_case(want));
    if ids.len() != expected.len() || first.is_some() {
        return Err(format!(
            "{} traces, expected {}{}",
            ids.len(),
            expected.len(),
            first.map(|i| format!("; first difference at position {i}")).unwrap_or_default()
        ));
    }
    Ok(())
}

/// `{"traces": [...]}` holding exactly the expected traces, in order, each complete.
fn check_search(answer: &Answer, expected: &[String]) -> Result<u64, String> {
    let value = json_of(answer)?;
    let ids = strings_at(&value, "traces", Some("traceId"))?;
    same_ids(&ids, expected)?;
    let traces = value["traces"].as_array().map_or(&[][..], Vec::as_slice);
    if let Some(t) = traces.iter().find(|t| t["spanCount"].as_u64() != Some(SPANS_PER_TRACE as u64)) {
        return Err(format!("trace {} has spanCount {}, expected {SPANS_PER_TRACE}", t["traceId"], t["spanCount"]));
    }
    Ok(ids.len() as u64)
}

/// `{"traces": [...]}` from Tempo's search holding exactly the expected traces, in order.
fn check_tempo_search(answer: &Answer, expected: &[String]) -> Result<u64, String> {
    let value = json_of(answer)?;
    let ids = strings_at(&value, "traces", Some("traceID"))?;
    same_ids(&ids, expected)?;
    Ok(ids.len() as u64)
}

/// Runs the TraceQL set against Tempo's API.
async fn run_traceql(client: &mut HttpClient, plan: &Plan, repetitions: u64) -> anyhow::Result<Vec<QueryResult>> {
    let mut results = Vec::new();
    for query in &plan.traceql {
        let paths = vec![query.path.clone(); repetitions as usize];
        let timed = time_requests(client, &paths, |_, a| check_tempo_search(a, &query.newest)).await?;
        let last = timed.results.last().copied().unwrap_or(0);
        results.push(result_of(query.kind, &query.path, timed, last, Some(query.matching)));
    }
    Ok(results)
}

// ---- timing ----

/// The timed requests of one query.
#[derive(Default)]
struct Timed {
    latencies: Vec<Duration>,
    /// What `check` returned for each timed request (0 for a failure).
    results: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
}

impl Timed {
    fn record(&mut self, checked: Result<u64, String>, timed: bool) {
        let result = checked.unwrap_or_else(|failure| {
            self.failures += 1;
            self.first_failure.get_or_insert(failure);
            0
        });
        if timed {
            self.results.push(result);
        }
    }
}

/// Requests each of `paths` in turn, timed, after one untimed request of the first; `check`
/// gets the index of the path and the answer.
async fn time_requests(
    client: &mut HttpClient,
    paths: &[String],
    check: impl Fn(usize, &Answer) -> Result<u64, String>,
) -> anyhow::Result<Timed> {
    let mut timed = Timed::default();
    let Some(first) = paths.first() else { return Ok(timed) };
    let answer = client.get(first).await?;
    timed.record(check(0, &answer), false);
    for (index, path) in paths.iter().enumerate() {
        let started = Instant::now();
        let answer = client.get(path).await?;
        timed.latencies.push(started.elapsed());
        timed.record(check(index, &answer), true);
    }
    Ok(timed)
}

fn result_of(kind: QueryKind, path: &str, timed: Timed, results: u64, matching: Option<u64>) -> QueryResult {
    let mut result = QueryResult::new(kind, path.to_string(), timed.latencies, results);
    result.matching_traces = matching;
    result.failures = timed.failures;
    result.first_failure = timed.first_failure;
    let wrong = if result.failures > 0 { format!(", {} wrong", result.failures) } else { String::new() };
    eprintln!(
        "{:<26} p50 {:>9.3} ms  p99 {:>9.3} ms  {} results{wrong}",
        kind.title(),
        result.p50_ms,
        result.p99_ms,
        result.results
    );
    result
}

/// Runs the whole query set in the order of [`QueryKind::ALL`].
async fn run_queries(client: &mut HttpClient, plan: &Plan, repetitions: u64) -> anyhow::Result<Vec<QueryResult>> {
    let repeated = |path: String| vec![path; repetitions as usize];
    let mut results = Vec::new();

    let path = "/api/v1/services".to_string();
    let timed = time_requests(client, &repeated(path.clone()), |_, a| check_services(a, &plan.services)).await?;
    let last = timed.results.last().copied().unwrap_or(0);
    results.push(result_of(QueryKind::Services, &path, timed, last, None));

    let path = format!("/api/v1/services/{}/operations", encode(&plan.anchor_service));
    let timed = time_requests(client, &repeated(path.clone()), |_, a| check_operations(a, &plan.operations)).await?;
    let last = timed.results.last().copied().unwrap_or(0);
    results.push(result_of(QueryKind::Operations, &path, timed, last, None));

    for (kind, ids) in [(QueryKind::TraceById, &plan.trace_ids), (QueryKind::TraceByIdTimeRange, &plan.other_trace_ids)]
    {
        let paths: Vec<String> = ids.iter().map(|id| format!("/api/v1/traces/{id}")).collect();
        let timed = time_requests(client, &paths, |i, a| check_trace(a, &ids[i])).await?;
        let complete = timed.results.iter().sum();
        results.push(result_of(kind, &paths[0], timed, complete, None));
    }

    for search in &plan.searches {
        let timed =
            time_requests(client, &repeated(search.path.clone()), |_, a| check_search(a, &search.newest)).await?;
        let last = timed.results.last().copied().unwrap_or(0);
        results.push(result_of(search.kind, &search.path, timed, last, Some(search.matching)));
    }
    Ok(results)
}

// ---- the run ----

/// With `--endpoint-query` the load happened at some earlier time: the workload's end is
/// found from where the server has the anchor trace (all start times move together).
async fn align_to_server(
    client: &mut HttpClient,
    params: WorkloadParams,
    anchor: u64,
) -> anyhow::Result<WorkloadParams> {
    let source = TraceSource::new(params);
    let spans = source.trace(anchor);
    let (generated_start, _) = trace_bounds(&spans);
    let trace_id = hex::encode(&spans[0].1.trace_id);
    let answer = client.get(&format!("/api/v1/traces/{trace_id}")).await?;
    if answer.status == 404 {
        bail!(
            "the server does not hold trace {trace_id} of this workload: was it loaded with the same --seed, \
             --traces and --days?"
        );
    }
    let value = json_of(&answer).map_err(|e| anyhow::anyhow!("trace {trace_id}: {e}"))?;
    let stored_start = otlp_spans(&value)
        .iter()
        .filter_map(|s| s["startTimeUnixNano"].as_str()?.parse::<u64>().ok())
        .min()
        .with_context(|| format!("trace {trace_id} came back without span start times"))?;
    let end = params.end_unix_nanos as i128 + stored_start as i128 - generated_start as i128;
    let end_unix_nanos = u64::try_from(end).context("the stored trace starts before the workload could")?;
    Ok(WorkloadParams { end_unix_nanos, ..params })
}

async fn resolve(endpoint: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(endpoint)
        .await
        .with_context(|| format!("resolving {endpoint}"))?
        .next()
        .with_context(|| format!("{endpoint} resolves to no address"))
}

/// What `/metrics` says about where the spans are.
async fn data_summary(client: &mut HttpClient, queried: &'static str) -> anyhow::Result<DataSummary> {
    let answer = client.get("/metrics").await?;
    let text = answer.text();
    let value = |name| metric_value(&text, name).map(|v| v as u64);
    Ok(DataSummary {
        queried,
        blocks: value("sextant_blocks"),
        head_spans: value("sextant_head_spans"),
        block_bytes: value("sextant_block_bytes"),
    })
}

/// Waits until the server's compaction planner finds nothing left to do and every block's
/// footer and index is loaded: the queries then measure the server as it runs, not its start.
async fn wait_for_compaction(server: &ServerProcess) -> anyhow::Result<()> {
    let deadline = Instant::now() + COMPACTION_TIMEOUT;
    // The first round starts a second after the restart; its gauge is set when it ends.
    tokio::time::sleep(Duration::from_secs(2)).await;
    loop {
        let text = server.metrics().await?;
        let gauge = |name| metric_value(&text, name).with_context(|| format!("/metrics has no {name}"));
        if gauge("sextant_compaction_pending_jobs")? == 0.0 && gauge("sextant_blocks_cold")? == 0.0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("compaction was still running after {COMPACTION_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The spawned server and what loading it cost.
struct Loaded {
    server: ServerProcess,
    load: LoadSummary,
}

/// Loads the workload into a server on `data_dir` with `settings`; then, unless `head`, stops
/// it with SIGTERM and starts it again on the same directory.
async fn load(
    params: &WorkloadParams,
    args: &QueryArgs,
    data_dir: &Path,
    settings: &[(&str, String)],
) -> anyhow::Result<(Loaded, WorkloadSummary)> {
    let (workload, workload_summary) = generate(params);
    let workload = Arc::new(workload);
    let executable = std::env::current_exe().context("finding the sextant executable")?;
    let (mut server, outcome, _) = start_and_load(&executable, data_dir, &workload, args.load, settings).await?;
    drop(workload);
    if outcome.spans_acknowledged < workload_summary.spans {
        bail!(
            "the server acknowledged {} of {} spans ({}); the answers could not be checked",
            outcome.spans_acknowledged,
            workload_summary.spans,
            outcome.first_error.as_deref().unwrap_or("no error reported")
        );
    }
    let (mut stop_seconds, mut restart_seconds, mut compaction_seconds) = (None, None, None);
    if !args.head {
        eprintln!("stopping the server (the head is flushed to a block) and starting it again…");
        stop_seconds = Some(server.stop().await?.as_secs_f64());
        let started = Instant::now();
        // Compaction rounds back to back, so the queries see blocks as a server that has run
        // a while has them.
        let mut restart_settings = settings.to_vec();
        restart_settings.push(("SEXTANT_STORAGE_COMPACTION_INTERVAL", "1s".to_string()));
        server = ServerProcess::spawn(&executable, data_dir, &data_dir.with_extension("log"), &restart_settings)?;
        server.wait_ready(READY_TIMEOUT).await?;
        restart_seconds = Some(started.elapsed().as_secs_f64());
        eprintln!("waiting for compaction to finish…");
        let started = Instant::now();
        wait_for_compaction(&server).await?;
        compaction_seconds = Some(started.elapsed().as_secs_f64());
    }
    let load = LoadSummary { ingest: IngestSummary::from(&outcome), stop_seconds, restart_seconds, compaction_seconds };
    Ok((Loaded { server, load }, workload_summary))
}

pub async fn run(args: &QueryArgs) -> anyhow::Result<QueryReport> {
    let threads = Machine::this().cpus;
    let mut params = workload_params(&args.workload);
    let samples = Samples::draw(&params, args.trace_ids);
    // With --head, nothing may leave the head while the queries run.
    let own_settings: Vec<(&str, String)> =
        if args.head { keep_in_head(params.num_spans()).to_vec() } else { Vec::new() };
    let server_settings: BTreeMap<String, String> = match args.endpoint_query {
        Some(_) => BTreeMap::new(),
        None => passed_through_settings()
            .into_iter()
            .chain(own_settings.iter().map(|(name, value)| (name.to_string(), value.clone())))
            .collect(),
    };
    // Declared before the server so that it is removed after the server is stopped.
    let root;
    let (address, loaded, workload_summary, queried) = match &args.endpoint_query {
        Some(endpoint) => {
            let address = resolve(endpoint).await?;
            params = align_to_server(&mut HttpClient::new(address, QUERY_TIMEOUT), params, samples.anchor()).await?;
            (address, None, None, "endpoint")
        }
        None => {
            root = DataRoot::prepare(args.data_dir.as_deref(), args.keep_data)?;
            let (loaded, summary) = load(&params, args, &root.path.join("query"), &own_settings).await?;
            (loaded.server.query_address, Some(loaded), Some(summary), if args.head { "head" } else { "blocks" })
        }
    };
    eprintln!("computing the expected answers from the workload…");
    let plan = plan(&TraceSource::new(params), &samples, args.limit, threads)?;

    let mut client = HttpClient::new(address, QUERY_TIMEOUT);
    let data = data_summary(&mut client, queried).await?;
    let peak_reset = loaded.as_ref().map(|l| l.server.reset_peak_rss().is_ok());
    let rss_before = loaded.as_ref().map(|l| l.server.rss_bytes()).transpose()?;
    let cpu_before = loaded.as_ref().map(|l| l.server.cpu_seconds()).transpose()?;
    eprintln!("querying {address}…");
    let started = Instant::now();
    let mut queries = run_queries(&mut client, &plan, args.repetitions).await?;
    if let Some(tempo) = loaded.as_ref().map(|l| l.server.tempo_address) {
        queries.extend(run_traceql(&mut HttpClient::new(tempo, QUERY_TIMEOUT), &plan, args.repetitions).await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let data_after = data_summary(&mut client, queried).await?;
    let (server, load) = match loaded {
        Some(Loaded { server, load }) => {
            let summary = QueryServerSummary {
                rss_before_queries_bytes: rss_before.unwrap_or_default(),
                peak_rss_bytes: server.peak_rss_bytes()?,
                peak_rss_since: if peak_reset == Some(true) { "queries" } else { "start" },
                cpu_seconds: server.cpu_seconds()? - cpu_before.unwrap_or_default(),
                seconds,
            };
            server.kill().await?;
            (Some(summary), Some(load))
        }
        None => (None, None),
    };
    let w = &args.workload;
    let report = QueryReport {
        benchmark: "query",
        sextant_version: env!("CARGO_PKG_VERSION"),
        parameters: QueryParameters {
            run: Parameters::of(w, args.load, args.endpoint_query.as_deref(), server_settings),
            repetitions: args.repetitions,
            trace_ids: args.trace_ids,
            limit: args.limit,
        },
        machine: Machine::this(),
        workload: workload_summary,
        load,
        data,
        data_after,
        server,
        queries,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sextant_model::TraceId;

    use super::*;
    use crate::api::native::parse_search;
    use crate::bench::workload::{Shape, generate};

    const END: u64 = 1_750_000_000_000_000_000;

    fn params(num_traces: u64) -> WorkloadParams {
        WorkloadParams { shape: Shape::Random, seed: 3, num_traces, days: 10, batch_spans: 1000, end_unix_nanos: END }
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn query_pairs(path: &str) -> Vec<(String, String)> {
        let query = path.strip_prefix("/api/v1/search?").expect("a search path");
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    #[test]
    fn encodes_query_components() {
        assert_eq!(encode("GET /order"), "GET%20%2Forder");
        assert_eq!(encode("a-b_c.d~9"), "a-b_c.d~9");
        assert_eq!(encode("x&y=z+é"), "x%26y%3Dz%2B%C3%A9");
        assert_eq!(percent_decode(&encode("x&y=z+é /")), "x&y=z+é /");
    }

    #[test]
    fn samples_are_distinct_deterministic_and_in_range() {
        let p = params(1000);
        let samples = Samples::draw(&p, 200);
        assert_eq!(samples, Samples::draw(&p, 200));
        for sample in [&samples.trace_ids, &samples.other_trace_ids] {
            assert_eq!(sample.len(), 200);
            assert_eq!(sample.iter().collect::<BTreeSet<_>>().len(), 200);
            assert!(sample.iter().all(|&i| i < 1000));
        }
        assert_ne!(samples.trace_ids, samples.other_trace_ids);
        // More IDs asked than traces: every trace once.
        let all = Samples::draw(&params(50), 200);
        assert_eq!(all.trace_ids.iter().copied().collect::<BTreeSet<_>>(), (0..50).collect());
    }

    /// The expected answers, computed with the storage's own matching on the workload's
    /// spans as the server stores them, and the API's own parser for the parameters.
    #[test]
    fn expected_answers_follow_the_api_semantics() {
        // Random services per span: most traces have a span of the service.
        expected_answers_for(params(400), 201..=400, 2..=60);
        // Tracegen: one service per trace, in turn; durations alike, so a wider share of
        // traces is in the range.
        expected_answers_for(WorkloadParams { shape: Shape::Tracegen, ..params(400) }, 40..=40, 40..=300);
    }

    fn expected_answers_for(
        p: WorkloadParams,
        service_matches: std::ops::RangeInclusive<u64>,
        duration_matches: std::ops::RangeInclusive<u64>,
    ) {
        let workload = generate(&p, 2);
        let mut traces: HashMap<TraceId, Vec<sextant_model::Span>> = HashMap::new();
        for batch in &workload.batches {
            for span in sextant_codec::decode_spans(&batch.body).unwrap() {
                traces.entry(span.trace_id).or_default().push(span);
            }
        }
        assert_eq!(traces.len(), 400);

        let source = TraceSource::new(p);
        let samples = Samples::draw(&p, 30);
        let limit = 5;
        let plan = plan(&source, &samples, limit, 2).unwrap();
        assert_eq!(plan.searches.len(), 6);
        assert_eq!(plan.services.len(), 10);
        assert!(!plan.operations.is_empty());
        assert_eq!(plan.trace_ids.len(), 30);
        assert!(plan.trace_ids.iter().all(|id| traces.contains_key(&TraceId::parse_hex(id).unwrap())));

        let mut seen_sizes = Vec::new();
        for search in &plan.searches {
            let path = search.spec.path(&source, limit);
            assert_eq!(path, search.path);
            let query = parse_search(&query_pairs(&path)).unwrap_or_else(|e| panic!("{path}: {}", e.message));
            assert_eq!(query.limit, limit as usize);
            let mut matching: Vec<(u64, TraceId)> = traces
                .iter()
                .filter(|(id, spans)| {
                    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap();
                    let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap();
                    spans.iter().any(|s| query.span_matches(s)) && query.trace_matches(start, end, id)
                })
                .map(|(id, spans)| (spans.iter().map(|s| s.start_unix_nanos).min().unwrap(), *id))
                .collect();
            matching.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(search.matching, matching.len() as u64, "{:?} {path}", search.kind);
            assert!(search.matching >= 1, "the anchor matches {:?}", search.kind);
            let newest: Vec<String> = matching.iter().take(limit as usize).map(|(_, id)| id.to_hex()).collect();
            assert_eq!(search.newest, newest, "{:?}", search.kind);
            seen_sizes.push(search.matching);
        }
        // Service alone matches most traces; the duration range a few percent.
        let by_kind = |kind| plan.searches.iter().find(|s| s.kind == kind).unwrap().matching;
        assert!(service_matches.contains(&by_kind(QueryKind::SearchService)), "{seen_sizes:?}");
        assert!(duration_matches.contains(&by_kind(QueryKind::SearchDuration)), "{seen_sizes:?}");
        assert!(by_kind(QueryKind::SearchAll) <= by_kind(QueryKind::SearchAttribute));

        // TraceQL: the same evaluator on the spans as the server decodes them from the requests.
        assert_eq!(plan.traceql.len(), 5);
        for planned in &plan.traceql {
            let compiled = sextant_traceql::Compiled::new(&sextant_traceql::parse(&planned.query).unwrap()).unwrap();
            let mut matching: Vec<(u64, TraceId)> = traces
                .iter()
                .filter(|(_, spans)| compiled.matches(spans).unwrap())
                .map(|(id, spans)| (spans.iter().map(|s| s.start_unix_nanos).min().unwrap(), *id))
                .collect();
            matching.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(planned.matching, matching.len() as u64, "{}", planned.query);
            assert!(planned.matching >= 1, "the anchor matches {}", planned.query);
            let newest: Vec<String> = matching
                .iter()
                .take(limit as usize)
                .map(|(_, id)| id.to_hex().trim_start_matches('0').to_string())
                .collect();
            assert_eq!(planned.newest, newest, "{}", planned.query);
            assert!(
                planned.path.starts_with("/api/search?q=%7B%20") && planned.path.ends_with(&format!("&limit={limit}"))
            );
        }
    }

    #[test]
    fn checks_answers_against_the_plan() {
        let ok = |body: &str| Answer { status: 200, body: body.as_bytes().to_vec() };
        let services: BTreeSet<String> = ["a", "b"].map(String::from).into();
        assert_eq!(check_services(&ok(r#"{"services":["a","b"]}"#), &services), Ok(2));
        assert!(check_services(&ok(r#"{"services":["a"]}"#), &services).is_err());
        assert!(
            check_services(&Answer { status: 500, body: b"boom".to_vec() }, &services).unwrap_err().contains("500")
        );

        let id = "0123456789abcdef0123456789abcdef";
        let span = format!(r#"{{"traceId":"{id}","spanId":"01"}}"#);
        let trace = |n: usize| {
            let spans = vec![span.as_str(); n].join(",");
            ok(&format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#))
        };
        assert_eq!(check_trace(&trace(SPANS_PER_TRACE), id), Ok(1));
        assert!(check_trace(&trace(SPANS_PER_TRACE - 1), id).unwrap_err().contains("9 spans"));
        assert!(check_trace(&Answer { status: 404, body: vec![] }, id).is_err());

        let expected = vec!["aa".to_string(), "bb".to_string()];
        let search = |ids: &[&str], count: u64| {
            let traces: Vec<String> =
                ids.iter().map(|i| format!(r#"{{"traceId":"{i}","spanCount":{count}}}"#)).collect();
            ok(&format!(r#"{{"traces":[{}],"nextCursor":null}}"#, traces.join(",")))
        };
        assert_eq!(check_search(&search(&["aa", "bb"], 10), &expected), Ok(2));
        assert!(check_search(&search(&["bb", "aa"], 10), &expected).unwrap_err().contains("position 0"));
        assert!(check_search(&search(&["aa"], 10), &expected).is_err());
        assert!(check_search(&search(&["aa", "bb"], 9), &expected).unwrap_err().contains("spanCount"));
    }
}
