//! Evaluation of compiled queries over many small traces, the way a search scans a block, and
//! of metrics queries over the same traces (20 steps of 1 ms). Run with
//! `cargo bench -p sextant-traceql`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sextant_model::{AnyValue, KeyValue, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};
use sextant_traceql::{Compiled, MetricsEvaluator, MetricsRequest, parse};

const TRACES: usize = 1000;
const SPANS_PER_TRACE: usize = 20;

/// Traces of 20 spans over 4 services: a tree where each span's parent is an earlier span,
/// with a few attributes, some errors.
fn traces() -> Vec<Vec<Span>> {
    let services: Vec<Arc<Resource>> = (0..4)
        .map(|s| {
            Arc::new(Resource {
                attributes: vec![KeyValue::string("service.name", format!("svc-{s}"))],
                ..Resource::default()
            })
        })
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..TRACES)
        .map(|t| {
            let mut spans: Vec<Span> = Vec::with_capacity(SPANS_PER_TRACE);
            for i in 0..SPANS_PER_TRACE {
                let start = 1_000_000_000 + i as u64 * 1_000_000;
                let r = next();
                let mut span = Span::new(
                    TraceId([(t % 250) as u8 + 1; 16]),
                    SpanId([1, (i + 1) as u8, (t % 250) as u8, 0, 0, 0, 0, 0]),
                    ["GET /", "db.query", "cache.get", "render"][(r % 4) as usize],
                    start,
                    start + (r >> 8) % 50_000_000,
                );
                if i > 0 {
                    span.parent_span_id = Some(spans[(r >> 16) as usize % i].span_id);
                }
                span.kind = SpanKind::from_i32(1 + (r >> 24) as i32 % 5);
                span.status_code = if (r >> 32) % 17 == 0 { StatusCode::Error } else { StatusCode::Unset };
                span.resource = Arc::clone(&services[(r >> 40) as usize % 4]);
                span.attributes = vec![
                    KeyValue::string("http.method", ["GET", "POST"][(r >> 44) as usize % 2]),
                    KeyValue::new("http.status_code", AnyValue::Int(200 + (r >> 48) as i64 % 4 * 100)),
                ];
                spans.push(span);
            }
            spans
        })
        .collect()
}

fn eval(c: &mut Criterion) {
    let traces = traces();
    let queries = [
        ("filter", r#"{ resource.service.name = "svc-1" && span.http.status_code >= 500 }"#),
        ("regex", r#"{ name =~ "db\\..*" && duration > 10ms }"#),
        ("structural", r#"{ kind = server } >> { status = error }"#),
        ("pipeline", "{ } | by(resource.service.name) | count() > 4"),
        ("aggregate", "{ kind = client } | avg(duration) > 20ms"),
    ];
    let mut group = c.benchmark_group("eval");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(TRACES as u64));
    for (name, text) in queries {
        let compiled = Compiled::new(&parse(text).expect("parses")).expect("compiles");
        group.bench_function(name, |b| {
            b.iter(|| traces.iter().filter(|trace| compiled.matches(black_box(trace)).expect("runs")).count())
        });
    }
    group.finish();
}

fn metrics(c: &mut Criterion) {
    let traces = traces();
    let queries = [
        ("rate_by_service", "{ } | rate() by (resource.service.name)"),
        ("quantile_by_name", "{ kind = server } | quantile_over_time(duration, .5, .99) by (name)"),
        ("compare", "{ } | compare({ status = error })"),
    ];
    let request = MetricsRequest {
        start_unix_nanos: 1_000_000_000,
        end_unix_nanos: 1_020_000_000,
        step_nanos: 1_000_000,
        instant: false,
        max_exemplars: 100,
    };
    let mut group = c.benchmark_group("metrics");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(TRACES as u64));
    for (name, text) in queries {
        let query = parse(text).expect("parses");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut evaluator = MetricsEvaluator::new(&query, &request).expect("compiles");
                for trace in &traces {
                    evaluator.observe(black_box(trace)).expect("runs");
                }
                evaluator.finish().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, eval, metrics);
criterion_main!(benches);
