//! Block tests through a real object store (in memory or a temporary directory): round
//! trips, trace and time-range reads, manifest commits, compaction, and a reader outside
//! Sextant (pyarrow). Shared helpers live here.

mod attrs;
mod compaction;
mod interop;
mod manifest;
mod reads;
mod roundtrip;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use sextant_model::{AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

use super::clusters::Clusters;
use super::reader::ReadPlan;
use super::writer::sort_key;
use super::*;

pub(super) fn memory_store(options: BlockStoreOptions) -> BlockStore {
    BlockStore::with_options(Arc::new(InMemory::new()), Path::from("tenant-a"), options)
}

pub(super) fn small_row_groups() -> BlockStoreOptions {
    BlockStoreOptions { row_group_rows: 50, page_rows: 10, ..Default::default() }
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Block order of distinct spans, computed independently of the writer: each trace in the
/// cluster of its earliest span's service, clusters by name, then by trace and start.
pub(super) fn in_block_order(mut spans: Vec<Span>) -> Vec<Span> {
    let mut earliest: BTreeMap<TraceId, (u64, SpanId, SpanKind, String)> = BTreeMap::new();
    for s in &spans {
        let candidate = (s.start_unix_nanos, s.span_id, s.kind, s.service_name().to_owned());
        let entry = earliest.entry(s.trace_id).or_insert_with(|| candidate.clone());
        if candidate < *entry {
            *entry = candidate;
        }
    }
    spans.sort_by_key(|s| (earliest[&s.trace_id].3.clone(), s.trace_id, s.start_unix_nanos, s.span_id, s.kind));
    spans
}

pub(super) fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![KeyValue::string("service.name", service), KeyValue::string("host.name", "h1")],
        dropped_attributes_count: 0,
    })
}

/// `num_traces` traces of `spans_per_trace` spans, three services, starts spread over time.
pub(super) fn simple_spans(num_traces: u32, spans_per_trace: u32) -> Vec<Span> {
    let resources = [resource("cart"), resource("checkout"), resource("db")];
    let mut spans = Vec::new();
    for t in 0..num_traces {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&(t.wrapping_mul(2_654_435_761) | 1).to_be_bytes());
        trace[15] = 1;
        for s in 0..spans_per_trace {
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(t * 100 + s + 1).to_be_bytes());
            let start = 1_000_000 * (t as u64) + 1_000 * s as u64;
            let mut span = Span::new(TraceId(trace), SpanId(span_id), format!("op-{}", s % 3), start, start + 500);
            span.resource = resources[(s % 3) as usize].clone();
            span.attributes.push(KeyValue::new("i", AnyValue::Int(s as i64)));
            spans.push(span);
        }
    }
    spans
}
