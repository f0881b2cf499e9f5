//! The reference workload (DESIGN.md, "Benchmark workload and targets"), deterministic from a
//! seed, encoded to OTLP protobuf requests before any clock starts.
//!
//! Shape, scaled by the number of traces:
//! - every trace has [`SPANS_PER_TRACE`] spans: one root and children whose parent is the root
//!   or an earlier child, all inside their parent's time range;
//! - [`NUM_SERVICES`] services, each a resource (`service.name`, `host.name`, …) with
//!   [`OPERATIONS_PER_SERVICE`] span names; kinds server, client and internal;
//! - [`ATTRIBUTES_PER_SPAN`] distinct attribute keys per span, drawn from [`NUM_KEYS`] keys;
//!   values come from [`NUM_VALUES`] strings, and one key in [`INT_KEY_EVERY`] holds an integer
//!   below [`NUM_VALUES`] instead;
//! - durations log-uniform from 1 ms to 10 s for roots (most are short, a few take seconds);
//! - trace starts uniform over `days` ending at `end_unix_nanos`; no span ends later;
//! - [`ERROR_PERCENT`] % of spans have status ERROR;
//! - random non-zero 128-bit trace IDs and 64-bit span IDs.
//!
//! Determinism: trace `i` is drawn from its own stream `(seed, i)`, so any request can be built
//! alone and the requests are built in parallel with the same bytes as a sequential build.
//! Request `k` holds spans `k × batch_spans ..` of the sequence trace 0 span 0, trace 0 span 1,
//! …, grouped by service into one `ResourceSpans` each (a trace may straddle two requests).

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
/// Keys whose index is a multiple of this hold integers.
pub const INT_KEY_EVERY: usize = 8;
pub const ERROR_PERCENT: u64 = 2;
const MIN_ROOT_DURATION_NANOS: f64 = 1e6;
const MAX_ROOT_DURATION_NANOS: f64 = 1e10;
const MIN_DURATION_NANOS: u64 = 1_000;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;
/// Seed of the value strings: the same 1000 values whatever `--seed`.
const VOCABULARY_SEED: u64 = 0x5e47_a4b7;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadParams {
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

/// `service.name` of service `index`.
pub fn service_name(index: usize) -> String {
    format!("service-{index}")
}

/// Names, keys and values shared by all traces.
struct Vocabulary {
    resources: Vec<Resource>,
    operations: Vec<[String; OPERATIONS_PER_SERVICE]>,
    keys: Vec<String>,
    values: Vec<String>,
    scope: InstrumentationScope,
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

impl Vocabulary {
    fn new() -> Vocabulary {
        let resources = (0..NUM_SERVICES)
            .map(|s| Resource {
                attributes: vec![
                    key_value("service.name", string_value(service_name(s))),
                    key_value("service.version", string_value(format!("1.{s}.0"))),
                    key_value("host.name", string_value(format!("host-{s}"))),
                    key_value("deployment.environment.name", string_value("production")),
                    key_value("cloud.region", string_value(REGIONS[s % REGIONS.len()])),
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
        Vocabulary { resources, operations, keys, values, scope }
    }
}

/// One trace's spans, each with the index of its service.
fn generate_trace(vocab: &Vocabulary, params: &WorkloadParams, trace_index: u64) -> Vec<(usize, Span)> {
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
        TraceSource { vocab: Vocabulary::new(), params }
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
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Builds and encodes every request on `threads` threads.
pub fn generate(params: &WorkloadParams, threads: usize) -> Workload {
    assert!(params.batch_spans > 0 && params.days > 0, "batch size and days must be positive");
    let vocab = Vocabulary::new();
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
        WorkloadParams { seed, num_traces: 300, days: 10, batch_spans: 7 * 13, end_unix_nanos: END }
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
        let one = generate(&params(7), 1);
        let four = generate(&params(7), 4);
        assert_eq!(one.batches.len(), four.batches.len());
        assert!(one.batches.iter().zip(&four.batches).all(|(a, b)| a.body == b.body));
        let other = generate(&params(8), 2);
        assert_ne!(one.batches[0].body, other.batches[0].body, "another seed gives other spans");
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
        let p = params(4);
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
                assert_eq!(sent[&span.span_id], (service_name(service), span));
                assert_eq!(source.resource_attributes(service)[0].key, "service.name");
                rebuilt += 1;
            }
        }
        assert_eq!(rebuilt, sent.len());
    }
}
