//! Storage hot paths on a workload shaped like the reference one: WAL append, head insert,
//! block build, trace lookup in a block, and search over a block.
//! Run with `cargo bench -p sextant-storage`.

#[path = "../../codec/benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sextant_storage::block::{BlockStore, BlockStoreOptions};
use sextant_storage::engine::{Engine, EngineMetrics, EngineOptions};
use sextant_storage::head::Head;
use sextant_storage::search::{AttributeFilter, SearchQuery};
use sextant_storage::wal::{Wal, WalOptions};
use tokio::runtime::Runtime;

const BATCH_SPANS: usize = 1000;
const BLOCK_SPANS: usize = 10_000;
const LARGE_BLOCK_SPANS: usize = 100_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn wal_append(c: &mut Criterion) {
    let rt = runtime();
    let payload = Bytes::from(sextant_codec::encode_spans(&common::spans(1, BATCH_SPANS)));
    let mut group = c.benchmark_group("wal_append");
    group.throughput(Throughput::Elements(BATCH_SPANS as u64));
    for (name, fsync, samples, seconds) in [("fsync_off", false, 10, 2), ("fsync_on", true, 10, 3)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = WalOptions { fsync, ..WalOptions::default() };
        let (wal, _replay) = Wal::open(dir.path(), options, Default::default()).expect("opens the WAL");
        group
            .sample_size(samples)
            .measurement_time(Duration::from_secs(seconds))
            .warm_up_time(Duration::from_millis(500));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    rt.block_on(wal.append(payload.clone())).expect("appends");
                }
                let elapsed = started.elapsed();
                // Keep the temp directory small: drop the segments written so far, untimed.
                let next = rt.block_on(wal.rotate()).expect("rotates");
                wal.remove_segments_before(next).expect("removes segments");
                elapsed
            })
        });
        rt.block_on(wal.close()).expect("closes the WAL");
    }
    group.finish();
}

fn head_insert(c: &mut Criterion) {
    let spans = common::spans(2, BATCH_SPANS);
    let mut group = c.benchmark_group("head");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(BATCH_SPANS as u64));
    group.bench_function("insert", |b| {
        b.iter_batched(
            || (Head::default(), spans.clone()),
            |(mut head, spans)| {
                head.insert(spans);
                head
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn block_build(c: &mut Criterion) {
    let rt = runtime();
    let spans = common::spans(3, BLOCK_SPANS);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlockStore::local(dir.path()).expect("block store");
    let mut group = c.benchmark_group("block");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BLOCK_SPANS as u64));
    group.bench_function("write_block_10k", |b| {
        b.iter_batched(
            || spans.clone(),
            |spans| rt.block_on(store.write_block(spans, 0)).expect("writes the block"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A trace lookup decodes one data page of every column, so it is timed for several page
/// sizes; each block's size is printed, since smaller pages compress a little worse.
fn trace_lookup(c: &mut Criterion) {
    let rt = runtime();
    let spans = common::spans(4, LARGE_BLOCK_SPANS);
    let trace_ids: Vec<_> = spans.iter().step_by(common::SPANS_PER_TRACE).map(|span| span.trace_id).collect();
    let mut group = c.benchmark_group("block");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(1));
    for page_rows in [8_192, 2_048, 1_024] {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = BlockStoreOptions { page_rows, ..BlockStoreOptions::default() };
        let store = BlockStore::local_with_options(dir.path(), options).expect("block store");
        let meta = rt.block_on(store.write_block(spans.clone(), 0)).expect("writes the block");
        let found = rt.block_on(store.read_trace(&meta, trace_ids[0])).expect("reads the trace");
        assert_eq!(found.len(), common::SPANS_PER_TRACE);
        eprintln!("pages of {page_rows} rows: {:.1} bytes/span", meta.size_bytes as f64 / meta.num_spans as f64);
        let mut rng = common::Rng::new(5);
        group.bench_function(format!("read_trace_100k/pages_{page_rows}"), |b| {
            b.iter(|| {
                let trace_id = trace_ids[rng.below(trace_ids.len() as u64) as usize];
                rt.block_on(store.read_trace(&meta, black_box(trace_id))).expect("reads the trace")
            })
        });
    }
    group.finish();
}

fn search(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = EngineOptions::new(dir.path());
    options.wal.fsync = false;
    let engine: Arc<Engine> = rt.block_on(async {
        let engine = Engine::open(options, EngineMetrics::default()).await.expect("opens the engine");
        let spans = common::spans(6, LARGE_BLOCK_SPANS);
        for chunk in spans.chunks(BATCH_SPANS) {
            engine.append(chunk.to_vec()).await.expect("appends");
        }
        engine.flush().await.expect("flushes");
        engine
    });
    let manifest = engine.manifest_snapshot();
    assert_eq!(manifest.blocks.len(), 1);
    assert_eq!(manifest.num_spans(), LARGE_BLOCK_SPANS as u64);

    let by_service = SearchQuery { service: Some(common::service_name(3)), limit: 20, ..SearchQuery::default() };
    let by_attribute = SearchQuery {
        attributes: vec![AttributeFilter { key: common::key(1), value: common::value(123) }],
        limit: 20,
        ..SearchQuery::default()
    };
    for query in [&by_service, &by_attribute] {
        let result = rt.block_on(engine.search(query)).expect("searches");
        assert!(!result.traces.is_empty());
    }

    let mut group = c.benchmark_group("search_100k");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(LARGE_BLOCK_SPANS as u64));
    group.bench_function("service", |b| {
        b.iter(|| rt.block_on(engine.search(black_box(&by_service))).expect("searches"))
    });
    group.bench_function("attribute", |b| {
        b.iter(|| rt.block_on(engine.search(black_box(&by_attribute))).expect("searches"))
    });
    group.finish();
    rt.block_on(engine.shutdown()).expect("shuts down");
}

criterion_group!(benches, wal_append, head_insert, block_build, trace_lookup, search);
criterion_main!(benches);
