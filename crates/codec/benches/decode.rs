//! Decoding and encoding of a 1000-span OTLP request shaped like the reference workload.
//! Run with `cargo bench -p sextant-codec`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sextant_codec::{Limits, decode_otlp_json, decode_otlp_protobuf, decode_spans, encode_spans, otlp_json};

const SPANS: usize = 1000;
/// Later than every span of the workload, so none is "in the future".
const NOW_UNIX_NANOS: u64 = common::BASE_UNIX_NANOS + 2 * 86_400 * 1_000_000_000;

fn codec(c: &mut Criterion) {
    let spans = common::spans(42, SPANS);
    // `TracesData` and `ExportTraceServiceRequest` share their wire format.
    let protobuf = encode_spans(&spans);
    let json = serde_json::to_vec(&otlp_json(&spans)).expect("serializes");
    let limits = Limits::default();
    for body in [&protobuf[..], &json[..]] {
        let decoded = if body[0] == b'{' {
            decode_otlp_json(body, &limits, NOW_UNIX_NANOS)
        } else {
            decode_otlp_protobuf(body, &limits, NOW_UNIX_NANOS)
        }
        .expect("decodes");
        assert_eq!(decoded.spans.len(), SPANS);
        assert!(decoded.rejected.is_empty());
    }

    let mut group = c.benchmark_group("codec");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("decode_otlp_protobuf", |b| {
        b.iter(|| decode_otlp_protobuf(black_box(&protobuf), &limits, NOW_UNIX_NANOS).expect("decodes"))
    });
    group.bench_function("decode_otlp_json", |b| {
        b.iter(|| decode_otlp_json(black_box(&json), &limits, NOW_UNIX_NANOS).expect("decodes"))
    });
    group.bench_function("decode_spans", |b| b.iter(|| decode_spans(black_box(&protobuf)).expect("decodes")));
    group.bench_function("encode_spans", |b| b.iter(|| encode_spans(black_box(&spans))));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
