//! A deterministic workload shaped like the reference one of `sextant bench ingest`: traces of
//! 10 spans, 10 services, 11 attributes per span drawn from 97 keys and 1000 values (one key in
//! eight holds an integer), 2% errors. Shared by the codec and storage benchmarks.

use std::sync::Arc;

use sextant_model::{AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

pub const SPANS_PER_TRACE: usize = 10;
pub const NUM_SERVICES: usize = 10;
pub const ATTRIBUTES_PER_SPAN: usize = 11;
pub const NUM_KEYS: usize = 97;
pub const NUM_VALUES: usize = 1000;
/// 2026-01-01T00:00:00Z: every span starts within the following day.
pub const BASE_UNIX_NANOS: u64 = 1_767_225_600_000_000_000;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    fn nonzero_u64(&mut self) -> u64 {
        self.next_u64().max(1)
    }
}

pub fn key(index: usize) -> String {
    format!("attr.key_{index:02}")
}

pub fn value(index: usize) -> String {
    format!("value-{index:04}-{:08x}", (index as u64).wrapping_mul(0x9e37_79b9) as u32)
}

pub fn service_name(index: usize) -> String {
    format!("service-{index}")
}

/// `num_spans` spans (a multiple of [`SPANS_PER_TRACE`]), the same for the same seed.
pub fn spans(seed: u64, num_spans: usize) -> Vec<Span> {
    let keys: Vec<String> = (0..NUM_KEYS).map(key).collect();
    let values: Vec<String> = (0..NUM_VALUES).map(value).collect();
    let resources: Vec<Arc<Resource>> = (0..NUM_SERVICES)
        .map(|s| {
            Arc::new(Resource {
                attributes: vec![
                    KeyValue::string("service.name", service_name(s)),
                    KeyValue::string("service.version", format!("1.{s}.0")),
                    KeyValue::string("host.name", format!("host-{s}")),
                ],
                dropped_attributes_count: 0,
            })
        })
        .collect();
    let scope = Arc::new(Scope { name: "bench".into(), version: "1.0".into(), ..Scope::default() });
    let mut rng = Rng::new(seed);
    let mut spans = Vec::with_capacity(num_spans);
    while spans.len() < num_spans {
        let trace_id = TraceId(((rng.nonzero_u64() as u128) << 64 | rng.next_u64() as u128).to_be_bytes());
        let trace_start = BASE_UNIX_NANOS + rng.below(NANOS_PER_DAY);
        let mut ids: Vec<SpanId> = Vec::with_capacity(SPANS_PER_TRACE);
        for i in 0..SPANS_PER_TRACE.min(num_spans - spans.len()) {
            let span_id = SpanId(rng.nonzero_u64().to_be_bytes());
            let service = rng.below(NUM_SERVICES as u64) as usize;
            let start = trace_start + i as u64 * 1_000_000;
            let end = start + 1_000 + rng.below(1_000_000_000);
            let mut span = Span::new(trace_id, span_id, format!("op-{}", rng.below(5)), start, end);
            span.parent_span_id = (i > 0).then(|| ids[rng.below(i as u64) as usize]);
            span.kind = [SpanKind::Server, SpanKind::Client, SpanKind::Internal][rng.below(3) as usize];
            if rng.below(100) < 2 {
                span.status_code = StatusCode::Error;
            }
            // Distinct keys: a random start and a stride coprime with 97.
            let first = rng.below(NUM_KEYS as u64) as usize;
            span.attributes = (0..ATTRIBUTES_PER_SPAN)
                .map(|a| {
                    let k = (first + a * 7) % NUM_KEYS;
                    let v = rng.below(NUM_VALUES as u64) as usize;
                    let value = if k.is_multiple_of(8) {
                        AnyValue::Int(v as i64)
                    } else {
                        AnyValue::String(values[v].as_str().into())
                    };
                    KeyValue::new(keys[k].clone(), value)
                })
                .collect();
            span.resource = resources[service].clone();
            span.scope = scope.clone();
            ids.push(span_id);
            spans.push(span);
        }
    }
    spans
}
