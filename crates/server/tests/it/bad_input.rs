//! Bad input gets its documented answer, is counted in /metrics, and the server keeps
//! serving.

use std::io::Write;

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

/// Sends one gRPC message by hand (HTTP/2 with prior knowledge) and returns the grpc-status
/// code and message of the answer.
async fn grpc_call(address: std::net::SocketAddr, message: &[u8]) -> (i32, String) {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client
        .post(format!("http://{address}/opentelemetry.proto.collector.trace.v1.TraceService/Export"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(framed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "gRPC answers errors inside HTTP 200");
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let code = header("grpc-status").map(|c| c.parse().unwrap()).unwrap_or(0);
    let message = header("grpc-message").unwrap_or_default();
    (code, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_garbage_and_oversized_messages_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(dir.path(), &[("SEXTANT_RECEIVERS_MAX_REQUEST_BYTES", "4096")]).await;

    let (code, message) = grpc_call(server.otlp_grpc_address, &[0x0a, 0xff, 0xff, 0x01, 0x02]).await;
    assert_eq!(code, tonic::Code::InvalidArgument as i32, "{message}");
    assert!(message.contains("protobuf"), "{message}");

    let (code, message) = grpc_call(server.otlp_grpc_address, &vec![0u8; 10_000]).await;
    assert!(
        code == tonic::Code::ResourceExhausted as i32 || code == tonic::Code::OutOfRange as i32,
        "oversized message: {code} {message}"
    );

    // A valid, empty request still works on the same server.
    let mut client = grpc_client(server.otlp_grpc_address).await;
    let empty = client
        .export(sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(empty.into_inner(), ExportTraceServiceResponse { partial_success: None });

    let metrics = metrics_text(&server).await;
    let rejected = |reason: &str| {
        metric_value(
            &metrics,
            &format!("sextant_requests_rejected_total{{protocol=\"otlp_grpc\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("decode"), 1.0, "{metrics}");
    assert_eq!(rejected("too_large"), 1.0, "{metrics}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_with_retry_after_and_recovers() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_with(
        dir.path(),
        &[("SEXTANT_RECEIVERS_MAX_REQUEST_BYTES", "65536"), ("SEXTANT_RECEIVERS_MAX_INFLIGHT_BYTES", "65536")],
    )
    .await;
    // A slow client announces a full-size body and sends one byte: it holds every in-flight byte.
    let mut slow = tokio::net::TcpStream::connect(server.otlp_http_address).await.unwrap();
    slow.write_all(
        b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 65536\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let otlp = format!("http://{}/v1/traces", server.otlp_http_address);
    let body = request_with(vec![valid_json_span("5b8efff798038103d269b633813fc60e", "eee19b7ec3c1b177")]);
    let response = post(&otlp, "application/json", None, body.clone().into_bytes()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");

    let mut client = grpc_client(server.otlp_grpc_address).await;
    let status = client
        .export(sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    use tonic_types::StatusExt;
    let retry = status.get_details_retry_info().expect("RetryInfo tells OTLP clients to retry");
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));

    // The slow client goes away; its permit is released and requests are served again.
    drop(slow);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let response = post(&otlp, "application/json", None, body.into_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric_value(&metrics, "sextant_requests_rejected_total{protocol=\"otlp_http\",reason=\"overloaded\"}"),
        1.0,
        "{metrics}"
    );
    server.shutdown().await.unwrap();
}
