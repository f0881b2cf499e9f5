//! The reference workload (DESIGN.md, "Benchmark workload and targets"), deterministic from a
//! seed, encoded to OTLP protobuf requests before any clock starts.
//!
//! Every trace has [`SPANS_PER_TRACE`] spans and there are [`NUM_SERVICES`] services, each a
//! resource; child spans carry [`ATTRIBUTES_PER_SPAN`] attributes from [`NUM_KEYS`] keys and
//! [`NUM_VALUES`] values; random non-zero 128-bit trace IDs and 64-bit span IDs. Two shapes:
//!
//! - [`Shape::Tracegen`], the default: the spans the published benchmark loaded, as Jaeger's
//!   `tracegen` makes them (`-traces N/days -spans 9 -services 10`, one run per day, oldest day
//!   first, each run with the clock set back to its day). Trace `i` of a run belongs to service
//!   `i mod 10` (`tracegen-00` …): a root `lets-go` (server) with `peer.service` and
//!   `peer.host.ipv4`, and nine children `child-span-00` … `child-span-08` (client) one after
//!   the other, each with 11 attributes `attr_NN = val_NN` whose key and value numbers count
//!   up (modulo 97 and 1000) across the run. Traces follow each other every
//!   [`TRACEGEN_TRACE_NANOS`] (the published 52,129 spans/s from one generator), so the spans
//!   arrive in time order; children last a few microseconds.
//! - [`Shape::Random`], harder for storage and search: spans of a trace in random services with
//!   [`OPERATIONS_PER_SERVICE`] names each and kinds server, client and internal, parents chosen
//!   at random inside the trace; attribute keys drawn uniformly (distinct within a span), values
//!   uniformly, and one key in [`INT_KEY_EVERY`] holding an integer; root durations log-uniform
//!   from 1 ms to 10 s; [`ERROR_PERCENT`] % errors; trace starts uniform over `days`, so every
//!   request holds spans from the whole period.
//!
//! No span ends after `end_unix_nanos`. Determinism: trace `i` is drawn from its own stream
//! `(seed, i)`, so any request can be built alone and the requests are built in parallel with
//! the same bytes as a sequential build. Request `k` holds spans `k × batch_spans ..` of the
//! sequence trace 0 span 0, trace 0 span 1, …, grouped by service into one `ResourceSpans` each
//! (a trace may straddle two requests).

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_codec::proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use sextant_codec::proto::tonic::resource::v1::Resource;
use sextant_codec::proto::tonic::trace::v1::span::SpanKind;
use sextant_codec::proto::tonic::trace::v1::status::StatusCode;
use sextant_codec::proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::rng::SplitMix64;

pub const SPANS_PER_TRACE: usize = 10;
pub const NUM_SERVICES: usize = 10;
pub const OPERATIONS_PER_SERVICE: usize = 5;
pub const ATTRIBUTES_PER_SPAN: usize = 11;
pub const NUM_KEYS: usize = 97;
pub const NUM_VALUES: usize = 1000;
/// Keys whose index is a multiple of this hold integers ([`Shape::Random`]).
pub const INT_KEY_EVERY: usize = 8;
pub const ERROR_PERCENT: u64 = 2;
/// Time between the starts of consecutive traces of a [`Shape::Tracegen`] run.
pub const TRACEGEN_TRACE_NANOS: u64 = 192_000;
const MIN_ROOT_DURATION_NANOS: f64 = 1e6;
const MAX_ROOT_DURATION_NANOS: f64 = 1e10;
const MIN_DURATION_NANOS: u64 = 1_000;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;
/// Seed of the value strings: the same 1000 values whatever `--seed`.
const VOCABULARY_SEED: u64 = 0x5e47_a4b7;

/// What the spans look like (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// As Jaeger's tracegen made them for the published benchmark: time order, one service per
    /// trace, attribute keys and values counting up.
    Tracegen,
    /// Random services, parents, attributes and durations; starts in random order over the days.
    Random,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shape::Tracegen => "tracegen",
            Shape::Random => "random",
        })
    }
}

impl Shape {
    /// `service.name` of service `index`.
    pub fn service_name(self, index: usize) -> String {
        match self {
            Shape::Tracegen => format!("tracegen-{index:02}"),
            Shape::Random => format!("service-{index}"),
        }
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadParams {
    pub shape: Shape,
    pub seed: u64,
    pub num_traces: u64,
    pub days: u64,
    pub batch_spans: usize,
    /// No span ends after this.
    pub end_unix_nanos: u64,
}

impl WorkloadParams {
    pub fn num_spans(&self) -> u64 {
        self.num_traces * SPANS_PER_TRACE as u64
    }

    pub fn num_batches(&self) -> usize {
        self.num_spans().div_ceil(self.batch_spans as u64) as usize
    }

    /// The tracegen run trace `index` belongs to: `(day, index in the run, traces in the run)`,
    /// day 0 the oldest. Each of the `days` runs has `num_traces / days` traces, the last also the
    /// remainder.
    fn tracegen_run(&self, index: u64) -> (u64, u64, u64) {
        let per_day = self.num_traces / self.days;
        let last = self.days - 1;
        let day = index.checked_div(per_day).map_or(last, |day| day.min(last));
        let in_run = if day == last { self.num_traces - per_day * last } else { per_day };
        (day, index - day * per_day, in_run)
    }
}

/// One pre-encoded `ExportTraceServiceRequest`.
#[derive(Clone, Debug)]
pub struct Batch {
    pub body: Bytes,
    pub num_spans: usize,
}

/// Every request of a run, in order.
#[derive(Debug)]
pub struct Workload {
    pub batches: Vec<Batch>,
    pub num_spans: u64,
    pub encoded_bytes: u64,
}

/// Names, keys and values shared by all traces.
struct Vocabulary {
    shape: Shape,
    resources: Vec<Resource>,
    /// [`Shape::Random`]: the span names of each service.
    operations: Vec<[String; OPERATIONS_PER_SERVICE]>,
    /// [`Shape::Tracegen`]: the names of the children, by position.
    child_names: Vec<String>,
    /// [`Shape::Tracegen`]: the attributes of every root.
    root_attributes: Vec<KeyValue>,
    keys: Vec<String>,
    values: Vec<String>,
    scope: InstrumentationScope,
    schema_url: String,
}

const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];
const VERBS: [&str; OPERATIONS_PER_SERVICE] = ["GET", "POST", "PUT", "query", "publish"];
const NOUNS: [&str; 16] = [
    "order", "cart", "user", "payment", "invoice", "stock", "shipment", "price", "session", "review", "coupon",
    "address", "catalog", "report", "email", "token",
];
/// Keys from the OpenTelemetry semantic conventions; the rest of the [`NUM_KEYS`] are made up.
const SEMCONV_KEYS: [&str; 24] = [
    "http.request.method",
    "http.response.status_code",
    "http.route",
    "url.path",
    "url.scheme",
    "server.address",
    "server.port",
    "client.address",
    "network.protocol.version",
    "user_agent.original",
    "db.system.name",
    "db.operation.name",
    "db.collection.name",
    "db.namespace",
    "db.query.text",
    "messaging.system",
    "messaging.destination.name",
    "messaging.operation.type",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "error.type",
    "thread.name",
    "code.function.name",
];
const FIELDS: [&str; 6] = ["id", "kind", "state", "source", "tier", "count"];

fn string_value(value: impl Into<String>) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(value.into())) }
}

fn key_value(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(value), ..Default::default() }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    key_value(key, string_value(value))
}

impl Vocabulary {
    fn new(shape: Shape) -> Vocabulary {
        match shape {
            Shape::Tracegen => Vocabulary::tracegen(),
            Shape::Random => Vocabulary::random(),
        }
    }

    /// What the OpenTelemetry Go SDK of tracegen sends: its resource detectors' attributes and
    /// tracegen's names (`attr_%02d`, `val_%02d`, `child-span-%02d`).
    fn tracegen() -> Vocabulary {
        let resources = (0..NUM_SERVICES)
            .map(|s| Resource {
                attributes: vec![
                    string_attribute("service.name", &Shape::Tracegen.service_name(s)),
                    string_attribute("telemetry.sdk.language", "go"),
                    string_attribute("telemetry.sdk.name", "opentelemetry"),
                    string_attribute("telemetry.sdk.version", "1.38.0"),
                    string_attribute("host.name", "bench-host"),
                    string_attribute("os.type", "linux"),
                ],
                ..Default::default()
            })
            .collect();
        Vocabulary {
            shape: Shape::Tracegen,
            resources,
            operations: Vec::new(),
            child_names: (0..SPANS_PER_TRACE - 1).map(|c| format!("child-span-{c:02}")).collect(),
            root_attributes: vec![
                string_attribute("peer.service", "tracegen-server"),
                string_attribute("peer.host.ipv4", "1.1.1.1"),
            ],
            keys: (0..NUM_KEYS).map(|k| format!("attr_{k:02}")).collect(),
            values: (0..NUM_VALUES).map(|v| format!("val_{v:02}")).collect(),
            scope: InstrumentationScope { name: "tracegen".to_string(), ..Default::default() },
            schema_url: "https://opentelemetry.io/schemas/1.37.0".to_string(),
        }
    }

    fn random() -> Vocabulary {
        let resources = (0..NUM_SERVICES)
            .map(|s| Resource {
                attributes: vec![
                    string_attribute("service.name", &Shape::Random.service_name(s)),
                    string_attribute("service.version", &format!("1.{s}.0")),
                    string_attribute("host.name", &format!("host-{s}")),
                    string_attribute("deployment.environment.name", "production"),
                    string_attribute("cloud.region", REGIONS[s % REGIONS.len()]),
                ],
                ..Default::default()
            })
            .collect();
        let operations = (0..NUM_SERVICES)
            .map(|s| std::array::from_fn(|k| format!("{} /{}", VERBS[k], NOUNS[(s + k * 3) % NOUNS.len()])))
            .collect();
        let mut keys: Vec<String> = SEMCONV_KEYS.iter().map(|k| k.to_string()).collect();
        let mut made_up = 0;
        while keys.len() < NUM_KEYS {
            keys.push(format!("app.{}.{}", NOUNS[made_up / FIELDS.len()], FIELDS[made_up % FIELDS.len()]));
            made_up += 1;
        }
        let mut rng = SplitMix64::new(VOCABULARY_SEED);
        let values = (0..NUM_VALUES)
            .map(|n| {
                let a = NOUNS[rng.below(NOUNS.len() as u64) as usize];
                let b = NOUNS[rng.below(NOUNS.len() as u64) as usize];
                format!("{a}-{b}-{n:03x}{:x}", rng.next_u64() >> 40)
            })
            .collect();
        let scope = InstrumentationScope {
            name: "sextant-bench".to_string(),
            version: "1.0".to_string(),
            ..Default::default()
        };
        Vocabulary {
            shape: Shape::Random,
            resources,
            operations,
            child_names: Vec::new(),
            root_attributes: Vec::new(),
            keys,
            values,
            scope,
            schema_url: String::new(),
        }
    }
}

/// One trace's spans, root first, each with the index of its service.
fn generate_trace(vocab: &Vocabulary, params: &WorkloadParams, trace_index: u64) -> Vec<(usize, Span)> {
    match vocab.shape {
        Shape::Tracegen => tracegen_trace(vocab, params, trace_index),
        Shape::Random => random_trace(vocab, params, trace_index),
    }
}

/// A trace as tracegen makes it (see the module documentation).
fn tracegen_trace(vocab: &Vocabulary, params: &WorkloadParams, trace_index: u64) -> Vec<(usize, Span)> {
    let mut rng = SplitMix64::for_stream(params.seed, trace_index);
    let trace_id = rng.nonzero_u128().to_be_bytes().to_vec();
    let (day, in_run, run_traces) = params.tracegen_run(trace_index);
    let service = (in_run % NUM_SERVICES as u64) as usize;
    let run_end = params.end_unix_nanos - (params.days - 1 - day) * NANOS_PER_DAY;
    // The slot leaves room for the longest trace below: 8 + 9 × (4 + 14) + 5 µs.
    let root_start = run_end - (run_traces - in_run) * TRACEGEN_TRACE_NANOS + rng.below(8_000);
    let root_span_id = rng.nonzero_u64().to_be_bytes().to_vec();
    let mut spans = Vec::with_capacity(SPANS_PER_TRACE);
    let mut clock = root_start;
    for (c, name) in vocab.child_names.iter().enumerate() {
        let start = clock + 1_000 + rng.below(3_000);
        clock = start + 2_000 + rng.below(12_000);
        // tracegen's key and value counters run on across the spans of a run.
        let first_slot = (in_run * (SPANS_PER_TRACE as u64 - 1) + c as u64) * ATTRIBUTES_PER_SPAN as u64;
        let attributes = (first_slot..first_slot + ATTRIBUTES_PER_SPAN as u64)
            .map(|slot| {
                string_attribute(
                    &vocab.keys[(slot % NUM_KEYS as u64) as usize],
                    &vocab.values[(slot % NUM_VALUES as u64) as usize],
                )
            })
            .collect();
        let span = Span {
            trace_id: trace_id.clone(),
            span_id: rng.nonzero_u64().to_be_bytes().to_vec(),
            parent_span_id: root_span_id.clone(),
            flags: 1,
            name: name.clone(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: clock,
            attributes,
            ..Default::default()
        };
        spans.push((service, span));
    }
    let root = Span {
        trace_id,
        span_id: root_span_id,
        flags: 1,
        name: "lets-go".to_string(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: root_start,
        end_time_unix_nano: clock + 1_000 + rng.below(4_000),
        attributes: vocab.root_attributes.clone(),
        ..Default::default()
    };
    spans.insert(0, (service, root));
    spans
}

/// A trace of [`Shape::Random`].
fn random_trace(vocab: &Vocabulary, params: &WorkloadParams, trace_index: u64) -> Vec<(usize, Span)> {
    let mut rng = SplitMix64::for_stream(params.seed, trace_index);
    let trace_id = rng.nonzero_u128().to_be_bytes().to_vec();
    let window_nanos = params.days * NANOS_PER_DAY;
    let root_duration = rng.log_uniform(MIN_ROOT_DURATION_NANOS, MAX_ROOT_DURATION_NANOS) as u64;
    let root_start = params.end_unix_nanos - window_nanos + rng.below(window_nanos - root_duration);
    let mut spans: Vec<(usize, Span)> = Vec::with_capacity(SPANS_PER_TRACE);
    for position in 0..SPANS_PER_TRACE {
        let service = rng.below(NUM_SERVICES as u64) as usize;
        let (parent_span_id, start, duration, kind) = if position == 0 {
            (Vec::new(), root_start, root_duration, SpanKind::Server)
        } else {
            let parent = &spans[rng.below(position as u64) as usize].1;
            let parent_duration = parent.end_time_unix_nano - parent.start_time_unix_nano;
            let start = parent.start_time_unix_nano + rng.below(parent_duration / 2 + 1);
            let room = parent.end_time_unix_nano - start;
            let duration = ((room as f64 * rng.uniform(0.1, 0.9)) as u64).clamp(MIN_DURATION_NANOS.min(room), room);
            let kind = [SpanKind::Server, SpanKind::Client, SpanKind::Internal][rng.below(3) as usize];
            (parent.span_id.clone(), start, duration, kind)
        };
        let status = (rng.below(100) < ERROR_PERCENT)
            .then(|| Status { code: StatusCode::Error as i32, message: "internal error".to_string() });
        let span = Span {
            trace_id: trace_id.clone(),
            span_id: rng.nonzero_u64().to_be_bytes().to_vec(),
            parent_span_id,
            flags: 1,
            name: vocab.operations[service][rng.below(OPERATIONS_PER_SERVICE as u64) as usize].clone(),
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            attributes: attributes(vocab, &mut rng),
            status,
            ..Default::default()
        };
        spans.push((service, span));
    }
    spans
}

/// [`ATTRIBUTES_PER_SPAN`] attributes with distinct keys.
fn attributes(vocab: &Vocabulary, rng: &mut SplitMix64) -> Vec<KeyValue> {
    let mut chosen = [usize::MAX; ATTRIBUTES_PER_SPAN];
    for slot in 0..ATTRIBUTES_PER_SPAN {
        let mut key = rng.below(NUM_KEYS as u64) as usize;
        while chosen[..slot].contains(&key) {
            key = rng.below(NUM_KEYS as u64) as usize;
        }
        chosen[slot] = key;
    }
    chosen
        .iter()
        .map(|&key| {
            let index = rng.below(NUM_VALUES as u64) as usize;
            let value = if key % INT_KEY_EVERY == 0 {
                AnyValue { value: Some(any_value::Value::IntValue(index as i64)) }
            } else {
                string_value(vocab.values[index].as_str())
            };
            key_value(&vocab.keys[key], value)
        })
        .collect()
}

/// Rebuilds single traces of a workload, the same spans its requests carry: what the query
/// benchmark asks for and checks the answers against.
pub struct TraceSource {
    vocab: Vocabulary,
    pub params: WorkloadParams,
}

impl TraceSource {
    pub fn new(params: WorkloadParams) -> TraceSource {
        TraceSource { vocab: Vocabulary::new(params.shape), params }
    }

    /// The spans of trace `index` (below `params.num_traces`), root first, each with the
    /// index of its service.
    pub fn trace(&self, index: u64) -> Vec<(usize, Span)> {
        generate_trace(&self.vocab, &self.params, index)
    }

    /// The resource attributes of service `service`.
    pub fn resource_attributes(&self, service: usize) -> &[KeyValue] {
        &self.vocab.resources[service].attributes
    }

    /// `service.name` of service `service`.
    pub fn service_name(&self, service: usize) -> String {
        self.params.shape.service_name(service)
    }
}

/// The request holding spans `batch_index × batch_spans ..`, not yet encoded.
fn build_request(vocab: &Vocabulary, params: &WorkloadParams, batch_index: usize) -> ExportTraceServiceRequest {
    let first_span = batch_index as u64 * params.batch_spans as u64;
    let end_span = (first_span + params.batch_spans as u64).min(params.num_spans());
    let per_trace = SPANS_PER_TRACE as u64;
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); NUM_SERVICES];
    for trace_index in first_span / per_trace..end_span.div_ceil(per_trace) {
        for (position, (service, span)) in generate_trace(vocab, params, trace_index).into_iter().enumerate() {
            let span_index = trace_index * per_trace + position as u64;
            if (first_span..end_span).contains(&span_index) {
                by_service[service].push(span);
            }
        }
    }
    let resource_spans = by_service
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(service, spans)| ResourceSpans {
            resource: Some(vocab.resources[service].clone()),
            scope_spans: vec![ScopeSpans { scope: Some(vocab.scope.clone()), spans, schema_url: String::new() }],
            schema_url: vocab.schema_url.clone(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Builds and encodes every request on `threads` threads.
pub fn generate(params: &WorkloadParams, threads: usize) -> Workload {
    assert!(params.batch_spans > 0 && params.days > 0, "batch size and days must be positive");
    let vocab = Vocabulary::new(params.shape);
    let num_batches = params.num_batches();
    let next = AtomicUsize::new(0);
    let mut numbered: Vec<(usize, Batch)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= num_batches {
                            return done;
                        }
                        let request = build_request(&vocab, params, index);
                        let num_spans =
                            request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
                        done.push((index, Batch { body: Bytes::from(request.encode_to_vec()), num_spans }));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a workload thread panicked")).collect()
    });
    numbered.sort_unstable_by_key(|(index, _)| *index);
    let batches: Vec<Batch> = numbered.into_iter().map(|(_, batch)| batch).collect();
    Workload {
        num_spans: batches.iter().map(|b| b.num_spans as u64).sum(),
        encoded_bytes: batches.iter().map(|b| b.body.len() as u64).sum(),
        batches,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const END: u64 = 1_750_000_000_000_000_000;

    fn params(seed: u64) -> WorkloadParams {
        // 7 is not a divisor of 10: traces straddle requests.
        WorkloadParams {
            shape: Shape::Random,
            seed,
            num_traces: 300,
            days: 10,
            batch_spans: 7 * 13,
            end_unix_nanos: END,
        }
    }

    fn tracegen_params(seed: u64) -> WorkloadParams {
        // 304 traces over 3 days: runs of 101, 101 and 102 traces.
        WorkloadParams { shape: Shape::Tracegen, num_traces: 304, days: 3, ..params(seed) }
    }

    fn decode(workload: &Workload) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for batch in &workload.batches {
            let request = ExportTraceServiceRequest::decode(batch.body.clone()).unwrap();
            assert_eq!(
                batch.num_spans,
                request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum::<usize>()
            );
            for rs in request.resource_spans {
                let resource = rs.resource.unwrap();
                let Some(any_value::Value::StringValue(service)) = resource.attributes[0].value.clone().unwrap().value
                else {
                    panic!("service.name is not a string")
                };
                assert_eq!(resource.attributes[0].key, "service.name");
                for ss in rs.scope_spans {
                    spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
                }
            }
        }
        spans
    }

    #[test]
    fn same_seed_same_bytes_whatever_the_threads() {
        for params in [params, tracegen_params] {
            let one = generate(&params(7), 1);
            let four = generate(&params(7), 4);
            assert_eq!(one.batches.len(), four.batches.len());
            assert!(one.batches.iter().zip(&four.batches).all(|(a, b)| a.body == b.body));
            let other = generate(&params(8), 2);
            assert_ne!(one.batches[0].body, other.batches[0].body, "another seed gives other spans");
        }
    }

    fn string_of(kv: &KeyValue) -> &str {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s,
            other => panic!("{} is not a string: {other:?}", kv.key),
        }
    }

    #[test]
    fn tracegen_shape_is_what_tracegen_sends() {
        let p = tracegen_params(2);
        let spans = decode(&generate(&p, 2));
        assert_eq!(spans.len(), 3040);
        let mut by_id: BTreeMap<Vec<u8>, Vec<(String, Span)>> = BTreeMap::new();
        for (service, span) in spans {
            by_id.entry(span.trace_id.clone()).or_default().push((service, span));
        }
        let mut traces: Vec<_> = by_id.into_iter().collect();
        assert_eq!(traces.len(), 304);
        // In the order of their start, which is the order of the trace numbers.
        traces.sort_by_key(|(_, spans)| spans.iter().map(|(_, s)| s.start_time_unix_nano).min());
        let runs = [(0u64, 101u64), (101, 101), (202, 102)];
        let mut previous_end = 0;
        for (index, (_, spans)) in traces.iter().enumerate() {
            let index = index as u64;
            let (day, first) = runs.iter().enumerate().rev().find(|(_, (first, _))| index >= *first).unwrap();
            let in_run = index - first.0;
            let run_end = END - (2 - day as u64) * NANOS_PER_DAY;
            let services: BTreeSet<_> = spans.iter().map(|(s, _)| s.clone()).collect();
            assert_eq!(services, BTreeSet::from([format!("tracegen-{:02}", in_run % 10)]));
            let root = &spans.iter().find(|(_, s)| s.parent_span_id.is_empty()).unwrap().1;
            assert_eq!((root.name.as_str(), root.kind), ("lets-go", SpanKind::Server as i32));
            assert_eq!(
                root.attributes.iter().map(|kv| (kv.key.as_str(), string_of(kv))).collect::<Vec<_>>(),
                [("peer.service", "tracegen-server"), ("peer.host.ipv4", "1.1.1.1")]
            );
            // Time order within a run, each run inside its day, traces never overlapping.
            assert!(root.start_time_unix_nano > previous_end);
            assert!(
                root.end_time_unix_nano <= run_end
                    && root.start_time_unix_nano >= run_end - first.1 * TRACEGEN_TRACE_NANOS
            );
            previous_end = root.end_time_unix_nano;
            let children: Vec<&Span> = spans.iter().map(|(_, s)| s).filter(|s| !s.parent_span_id.is_empty()).collect();
            assert_eq!(children.len(), 9);
            let mut clock = root.start_time_unix_nano;
            for (c, child) in children.iter().enumerate() {
                assert_eq!(child.parent_span_id, root.span_id);
                assert_eq!((child.name.clone(), child.kind), (format!("child-span-{c:02}"), SpanKind::Client as i32));
                assert!(child.start_time_unix_nano > clock && child.end_time_unix_nano > child.start_time_unix_nano);
                clock = child.end_time_unix_nano;
                // The counters of tracegen: slot n of a run holds attr_(n mod 97) = val_(n mod 1000).
                for (a, kv) in child.attributes.iter().enumerate() {
                    let slot = (in_run * 9 + c as u64) * 11 + a as u64;
                    assert_eq!(
                        (kv.key.clone(), string_of(kv)),
                        (format!("attr_{:02}", slot % 97), format!("val_{:02}", slot % 1000).as_str())
                    );
                }
            }
            assert!(root.end_time_unix_nano > clock);
        }
    }

    #[test]
    fn workload_has_the_reference_shape() {
        let p = params(1);
        let workload = generate(&p, 2);
        assert_eq!(workload.num_spans, 3000);
        assert_eq!(workload.batches.len(), 3000usize.div_ceil(91));
        assert!(workload.batches[..workload.batches.len() - 1].iter().all(|b| b.num_spans == 91));
        let spans = decode(&workload);
        assert_eq!(spans.len(), 3000);

        let mut traces: BTreeMap<Vec<u8>, Vec<&Span>> = BTreeMap::new();
        let (mut keys, mut strings, mut ints, mut services) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut errors = 0;
        for (service, span) in &spans {
            assert!(span.trace_id.len() == 16 && span.trace_id.iter().any(|&b| b != 0));
            assert!(span.span_id.len() == 8 && span.span_id.iter().any(|&b| b != 0));
            assert!(span.start_time_unix_nano <= span.end_time_unix_nano && span.end_time_unix_nano <= END);
            assert!(span.start_time_unix_nano >= END - p.days * NANOS_PER_DAY);
            assert_eq!(span.attributes.len(), ATTRIBUTES_PER_SPAN);
            let span_keys: BTreeSet<_> = span.attributes.iter().map(|kv| kv.key.clone()).collect();
            assert_eq!(span_keys.len(), ATTRIBUTES_PER_SPAN, "keys repeat within a span");
            for kv in &span.attributes {
                match kv.value.clone().unwrap().value.unwrap() {
                    any_value::Value::StringValue(s) => strings.insert(s),
                    any_value::Value::IntValue(i) => ints.insert(i),
                    other => panic!("unexpected value {other:?}"),
                };
            }
            keys.extend(span_keys);
            services.insert(service.clone());
            errors += span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32) as u32;
            traces.entry(span.trace_id.clone()).or_default().push(span);
        }
        assert_eq!(traces.len(), 300);
        assert!(keys.len() <= NUM_KEYS && keys.len() > NUM_KEYS * 9 / 10, "{} keys", keys.len());
        assert!(strings.len() <= NUM_VALUES && strings.len() > 500, "{} string values", strings.len());
        assert!(!ints.is_empty() && ints.len() <= NUM_VALUES);
        assert_eq!(services, (0..NUM_SERVICES).map(|s| format!("service-{s}")).collect());
        assert!((15..=120).contains(&errors), "{errors} errors in 3000 spans, expected about 2%");

        for spans in traces.values() {
            assert_eq!(spans.len(), SPANS_PER_TRACE);
            let roots: Vec<_> = spans.iter().filter(|s| s.parent_span_id.is_empty()).collect();
            assert_eq!(roots.len(), 1, "one root per trace");
            for span in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
                let parent = spans.iter().find(|p| p.span_id == span.parent_span_id).expect("parent in the trace");
                assert!(parent.start_time_unix_nano <= span.start_time_unix_nano);
                assert!(span.end_time_unix_nano <= parent.end_time_unix_nano);
            }
        }
    }

    #[test]
    fn trace_source_rebuilds_the_spans_of_the_requests() {
        for p in [params(4), tracegen_params(4)] {
            rebuilds_the_spans_of_the_requests(p);
        }
    }

    fn rebuilds_the_spans_of_the_requests(p: WorkloadParams) {
        let sent: BTreeMap<Vec<u8>, (String, Span)> = decode(&generate(&p, 2))
            .into_iter()
            .map(|(service, span)| (span.span_id.clone(), (service, span)))
            .collect();
        let source = TraceSource::new(p);
        let mut rebuilt = 0;
        for index in 0..p.num_traces {
            let spans = source.trace(index);
            assert!(spans[0].1.parent_span_id.is_empty(), "the root comes first");
            for (service, span) in spans {
                assert_eq!(sent[&span.span_id], (source.service_name(service), span));
                assert_eq!(source.resource_attributes(service)[0].key, "service.name");
                rebuilt += 1;
            }
        }
        assert_eq!(rebuilt, sent.len());
    }
}
