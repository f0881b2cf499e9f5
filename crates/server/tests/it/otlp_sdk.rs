//! Spans sent by the OpenTelemetry SDK's OTLP exporters (gRPC, HTTP protobuf, HTTP JSON),
//! read back through the native API.

use std::time::{Duration, SystemTime};

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

use crate::support::*;

/// A root and two children; start times a millisecond apart.
fn three_spans(trace: u128) -> Vec<SpanData> {
    let start = SystemTime::now() - Duration::from_secs(5);
    vec![
        span_data(trace, 1, 0, "GET /cart", start, Duration::from_millis(120)),
        span_data(trace, 2, 1, "SELECT cart", start + Duration::from_millis(1), Duration::from_millis(30)),
        span_data(trace, 3, 1, "GET /price", start + Duration::from_millis(2), Duration::from_millis(60)),
    ]
}

async fn assert_trace_stored(server: &sextant_server::serve::Server, trace: u128, service: &str) {
    let (status, body) = get_json(&query_url(server, &format!("/api/v1/traces/{}", hex_trace(trace)))).await;
    assert_eq!(status, 200, "{body}");
    let spans = otlp_spans(&body);
    assert_eq!(spans.len(), 3, "{body}");
    let root = spans.iter().find(|s| s["name"] == "GET /cart").expect("root span");
    assert_eq!(root["traceId"], hex_trace(trace));
    assert_eq!(root["spanId"], "0000000000000001");
    assert_eq!(root["kind"], 2, "server kind as a number");
    let child = spans.iter().find(|s| s["name"] == "SELECT cart").unwrap();
    assert_eq!(child["parentSpanId"], "0000000000000001");
    let retry = child["attributes"].as_array().unwrap().iter().find(|kv| kv["key"] == "retry.count").unwrap();
    assert_eq!(retry["value"]["intValue"], "2", "typed int attribute survives");
    let resource = &body["resourceSpans"][0]["resource"]["attributes"];
    assert!(
        resource
            .as_array()
            .unwrap()
            .iter()
            .any(|kv| kv["key"] == "service.name" && kv["value"]["stringValue"] == service),
        "{resource}"
    );
    let scope = &body["resourceSpans"][0]["scopeSpans"][0]["scope"];
    assert_eq!(scope["name"], "sextant-tests");

    let (status, found) = get_json(&query_url(server, &format!("/api/v1/search?service={service}"))).await;
    assert_eq!(status, 200);
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{found}");
    assert_eq!(traces[0]["traceId"], hex_trace(trace));
    assert_eq!(traces[0]["rootName"], "GET /cart");
    assert_eq!(traces[0]["spanCount"], 3);
    assert_eq!(traces[0]["durationNanos"], "120000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_with_gzip_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{}", server.otlp_grpc_address))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .unwrap();
    exporter.set_resource(&resource("checkout-grpc"));
    exporter.export(three_spans(0xa1)).await.expect("export acknowledged");
    assert_trace_stored(&server, 0xa1, "checkout-grpc").await;
    let metrics = metrics_text(&server).await;
    assert_eq!(metric_value(&metrics, "sextant_spans_accepted_total{protocol=\"otlp_grpc\"}"), 3.0, "{metrics}");
    server.shutdown().await.unwrap();
}

fn http_export(endpoint: String, protocol: Protocol, service: &'static str, trace: u128, gzip: bool) {
    let mut builder =
        opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(endpoint).with_protocol(protocol);
    if gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    let mut exporter = builder.build().unwrap();
    exporter.set_resource(&resource(service));
    futures::executor::block_on(exporter.export(three_spans(trace))).expect("export acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_and_json_exporters_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let endpoint = format!("http://{}/v1/traces", server.otlp_http_address);
    let e = endpoint.clone();
    tokio::task::spawn_blocking(move || http_export(e, Protocol::HttpBinary, "checkout-proto", 0xb1, false))
        .await
        .unwrap();
    assert_trace_stored(&server, 0xb1, "checkout-proto").await;
    let e = endpoint.clone();
    tokio::task::spawn_blocking(move || http_export(e, Protocol::HttpJson, "checkout-json", 0xb2, false))
        .await
        .unwrap();
    assert_trace_stored(&server, 0xb2, "checkout-json").await;
    tokio::task::spawn_blocking(move || http_export(endpoint, Protocol::HttpBinary, "checkout-gzip", 0xb3, true))
        .await
        .unwrap();
    assert_trace_stored(&server, 0xb3, "checkout-gzip").await;
    let metrics = metrics_text(&server).await;
    assert_eq!(metric_value(&metrics, "sextant_spans_accepted_total{protocol=\"otlp_http\"}"), 9.0, "{metrics}");
    server.shutdown().await.unwrap();
}
