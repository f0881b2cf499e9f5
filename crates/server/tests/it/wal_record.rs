//! Which WAL record a request becomes: an OTLP protobuf body that decoding left unchanged is
//! written as received (gRPC and HTTP, also after gzip); a body with a refused span, and
//! OTLP/JSON, are written as the re-encoded accepted spans. Either way a restart on the WAL
//! replays exactly the spans the server acknowledged.

use std::io::Write;
use std::path::Path;

use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use sextant_codec::proto::tonic::common::v1 as pc;
use sextant_codec::proto::tonic::resource::v1 as pr;
use sextant_codec::proto::tonic::trace::v1 as pt;
use sextant_model::{Span, TraceId};

use crate::support::*;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn string_kv(key: &str, value: &str) -> pc::KeyValue {
    pc::KeyValue {
        key: key.into(),
        value: Some(pc::AnyValue { value: Some(pc::any_value::Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

fn proto_span(trace: u8, span: u8) -> pt::Span {
    let now = now_nanos();
    pt::Span {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        name: format!("op {span}"),
        kind: 2,
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        attributes: vec![string_kv("http.route", "/cart")],
        ..Default::default()
    }
}

/// A request whose schema URLs the model does not keep: its body differs from the
/// re-encoding of its spans, so the WAL shows which of the two was written.
fn request(spans: Vec<pt::Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(pr::Resource {
                attributes: vec![string_kv("service.name", "wal-record")],
                ..Default::default()
            }),
            scope_spans: vec![pt::ScopeSpans {
                scope: Some(pc::InstrumentationScope { name: "tests".into(), ..Default::default() }),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn post_protobuf(url: &str, body: Vec<u8>, gzipped: bool) -> ExportTraceServiceResponse {
    let mut request = reqwest::Client::new().post(url).header("content-type", "application/x-protobuf");
    let body = if gzipped {
        request = request.header("content-encoding", "gzip");
        gzip(&body)
    } else {
        body
    };
    let response = request.body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap()
}

/// Every WAL segment of a data directory, concatenated.
fn wal_bytes(data_dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data_dir.join("wal")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wal") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// A data directory holding a copy of `data_dir`'s WAL segments, for a second server to replay
/// (the first keeps its directory locked).
fn wal_copy(data_dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir(copy.path().join("wal")).unwrap();
    for entry in std::fs::read_dir(data_dir.join("wal")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wal") {
            std::fs::copy(&path, copy.path().join("wal").join(path.file_name().unwrap())).unwrap();
        }
    }
    copy
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

async fn trace(server: &sextant_server::serve::Server, trace: u8) -> Vec<Span> {
    server.engine.trace(TraceId([trace; 16])).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_protobuf_bodies_are_the_wal_records_and_replay_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let http = format!("http://{}/v1/traces", server.otlp_http_address);

    // gRPC, gzip-compressed: unchanged.
    let over_grpc = request(vec![proto_span(1, 1), proto_span(1, 2)]);
    let response = grpc_client(server.otlp_grpc_address)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .export(over_grpc.clone())
        .await
        .unwrap();
    assert_eq!(response.into_inner().partial_success, None);

    // HTTP protobuf, plain and gzip-compressed: unchanged.
    let over_http = request(vec![proto_span(2, 1)]);
    assert_eq!(post_protobuf(&http, over_http.encode_to_vec(), false).await.partial_success, None);
    let over_http_gzip = request(vec![proto_span(3, 1), proto_span(3, 2)]);
    assert_eq!(post_protobuf(&http, over_http_gzip.encode_to_vec(), true).await.partial_success, None);

    // HTTP protobuf with a refused span: the accepted span is re-encoded.
    let mut refused = proto_span(4, 2);
    refused.trace_id = vec![0; 16];
    let with_refusal = request(vec![proto_span(4, 1), refused]);
    let answer = post_protobuf(&http, with_refusal.encode_to_vec(), false).await;
    assert_eq!(answer.partial_success.map(|p| p.rejected_spans), Some(1));

    // OTLP/JSON of the same kind of request: re-encoded.
    let json_spans = trace(&server, 2).await.into_iter().map(|mut span| {
        span.trace_id = TraceId([5; 16]);
        span
    });
    let json = serde_json::to_vec(&sextant_codec::otlp_json(&json_spans.collect::<Vec<_>>())).unwrap();
    let response = reqwest::Client::new()
        .post(&http)
        .header("content-type", "application/json")
        .body(json.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let wal = wal_bytes(dir.path());
    assert!(contains(&wal, &over_grpc.encode_to_vec()), "the gRPC message is the record");
    assert!(contains(&wal, &over_http.encode_to_vec()), "the HTTP body is the record");
    assert!(contains(&wal, &over_http_gzip.encode_to_vec()), "the gunzipped HTTP body is the record");
    assert!(!contains(&wal, &with_refusal.encode_to_vec()), "a body with a refused span is not written");
    assert!(!contains(&wal, &json), "JSON is not written");
    let schema_url = b"https://opentelemetry.io/schemas/1.26.0";
    let schema_urls = wal.windows(schema_url.len()).filter(|window| window == schema_url).count();
    assert_eq!(schema_urls, 3 * 2, "only the three unchanged bodies keep their schema URLs");

    let copy = wal_copy(dir.path());
    let replayed = start_server(copy.path()).await;
    for (id, num_spans) in [(1, 2), (2, 1), (3, 2), (4, 1), (5, 1)] {
        let acknowledged = trace(&server, id).await;
        assert_eq!(acknowledged.len(), num_spans, "trace {id}");
        assert_eq!(trace(&replayed, id).await, acknowledged, "trace {id} replays as it was acknowledged");
    }
    replayed.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}

/// Bodies over the size decoded in place (512 KiB) are decoded on the blocking pool: a large
/// request over gRPC and over HTTP is stored whole, written to the WAL as received, and
/// replayed exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_decoded_off_the_runtime_are_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let large = |trace: u8| {
        let spans = (1..=3_000u64).map(|i| pt::Span {
            span_id: i.to_be_bytes().to_vec(),
            attributes: vec![string_kv("payload", &format!("{i:0>200}"))],
            ..proto_span(trace, 0)
        });
        request(spans.collect())
    };
    let (over_grpc, over_http) = (large(6), large(7));
    assert!(over_grpc.encoded_len() > 512 * 1024 && over_http.encoded_len() > 512 * 1024);

    let response = grpc_client(server.otlp_grpc_address).await.export(over_grpc.clone()).await.unwrap();
    assert_eq!(response.into_inner().partial_success, None);
    let http = format!("http://{}/v1/traces", server.otlp_http_address);
    assert_eq!(post_protobuf(&http, over_http.encode_to_vec(), false).await.partial_success, None);

    let wal = wal_bytes(dir.path());
    assert!(contains(&wal, &over_grpc.encode_to_vec()), "the gRPC message is the record");
    assert!(contains(&wal, &over_http.encode_to_vec()), "the HTTP body is the record");
    let copy = wal_copy(dir.path());
    let replayed = start_server(copy.path()).await;
    for id in [6, 7] {
        let acknowledged = trace(&server, id).await;
        assert_eq!(acknowledged.len(), 3_000, "trace {id}");
        assert_eq!(trace(&replayed, id).await, acknowledged, "trace {id} replays as it was acknowledged");
    }
    replayed.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}
