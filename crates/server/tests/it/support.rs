//! Shared test helpers: an in-process server on ephemeral ports, span builders for the
//! OpenTelemetry SDK exporters, HTTP helpers.

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::Value;
use sextant_server::config::{ADDRESS_VARIABLES, Overrides, RawConfig};
use sextant_server::serve::Server;

/// Starts a server on 127.0.0.1 ephemeral ports with its data in `dir`.
pub async fn start_server(dir: &Path) -> Server {
    start_server_with(dir, &[]).await
}

/// Same, with extra `SEXTANT_*`-style settings, e.g. `("SEXTANT_RECEIVERS_MAX_REQUEST_BYTES", "1000")`.
pub async fn start_server_with(dir: &Path, settings: &[(&str, &str)]) -> Server {
    let mut env: Vec<(String, String)> =
        ADDRESS_VARIABLES.iter().map(|name| (name.to_string(), "127.0.0.1:0".to_string())).collect();
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let overrides = Overrides { data_dir: Some(dir.to_path_buf()), log_level: None };
    let config = RawConfig::load(None, env, &overrides).unwrap().resolve().unwrap();
    Server::start(config).await.unwrap()
}

/// A generated OTLP TraceService client connected to `address`.
pub async fn grpc_client(
    address: std::net::SocketAddr,
) -> sextant_codec::proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient<
    tonic::transport::Channel,
> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    sextant_codec::proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel)
}

/// Sends an OTLP/HTTP JSON body and checks that every span was accepted (`{}`: no partial
/// success).
pub async fn post_otlp_json(server: &Server, body: &Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/traces", server.otlp_http_address))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!((status.as_u16(), text.as_str()), (200, "{}"), "every span accepted");
}

pub fn query_url(server: &Server, path: &str) -> String {
    format!("http://{}{}", server.query_address, path)
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} answered non-JSON ({e}): {text}"));
    (status, value)
}

pub async fn metrics_text(server: &Server) -> String {
    reqwest::get(query_url(server, "/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of a metric sample whose line starts with `prefix` (name and labels), or 0.
pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A span as the OpenTelemetry SDK hands it to exporters.
pub fn span_data(trace: u128, span: u64, parent: u64, name: &str, start: SystemTime, duration: Duration) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: false,
        span_kind: if parent == 0 { SpanKind::Server } else { SpanKind::Client },
        name: Cow::Owned(name.to_string()),
        start_time: start,
        end_time: start + duration,
        attributes: vec![KeyValue::new("http.route", name.to_string()), KeyValue::new("retry.count", 2i64)],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("sextant-tests").with_version("1.0").build(),
    }
}

pub fn resource(service: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", service.to_string()),
            KeyValue::new("cloud.region", "eu-west-1"),
        ])
        .build()
}

pub fn hex_trace(trace: u128) -> String {
    format!("{trace:032x}")
}

/// Finds every span in an OTLP/JSON trace answer.
pub fn otlp_spans(trace: &Value) -> Vec<&Value> {
    trace["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
        .collect()
}

/// The real `sextant` binary running `serve` in a child process on fixed loopback ports.
pub struct ChildServer {
    pub child: std::process::Child,
    pub grpc_port: u16,
    pub query_port: u16,
}

/// Ports free right now on 127.0.0.1 (bound then released).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl ChildServer {
    pub fn spawn(data_dir: &Path, ports: &[u16]) -> ChildServer {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["serve", "--log-level", "warn", "--data-dir"])
            .arg(data_dir)
            .envs(ADDRESS_VARIABLES.iter().zip(ports).map(|(name, port)| (name, format!("127.0.0.1:{port}"))))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("starting the sextant binary");
        ChildServer { child, grpc_port: ports[0], query_port: ports[3] }
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.query_port, path)
    }

    /// Waits until the query API answers (the WAL has been replayed by then).
    pub async fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(self.query_url("/api/v1/services")).await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sextant exited early with {status}");
            }
            assert!(std::time::Instant::now() < deadline, "sextant did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
