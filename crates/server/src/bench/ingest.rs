//! Sends a pre-encoded [`Workload`] over OTLP/gRPC and counts what the server acknowledged.
//!
//! `concurrency` tokio tasks take requests from one queue (an index into the batches), so that
//! many requests are in flight at once; they share `connections` HTTP/2 connections, task `i`
//! sending on connection `i % connections`. The client codec
//! writes the encoded bytes as they are, the mirror image of the server's raw codec, so the
//! sender spends its CPU on the network and not on protobuf.
//!
//! Counting, per request:
//! | answer | counted as |
//! |---|---|
//! | OK | its spans acknowledged, less `partial_success.rejected_spans` (counted rejected) |
//! | `RESOURCE_EXHAUSTED`, `UNAVAILABLE` | retried after a backoff, up to [`MAX_RETRIES`] times |
//! | any other error, or retries exhausted | a failed request; its spans are not acknowledged |
//!
//! After the first failed request no new request is started: the numbers of a run against a
//! failing server mean nothing, and a dead one would otherwise cost every request its retries.
//! The clock runs from the first send to the last answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::server_process::process_cpu_seconds;
use super::workload::Workload;
use crate::ingest::otlp_grpc::EXPORT_PATH;

/// Retries of one request answered `RESOURCE_EXHAUSTED` or `UNAVAILABLE`.
pub const MAX_RETRIES: u32 = 20;
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(20);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// HTTP/2 flow-control windows large enough for several 1000-span requests in flight.
const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// What the server answered, over a whole run.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    pub requests: u64,
    pub spans_sent: u64,
    pub spans_acknowledged: u64,
    pub spans_rejected: u64,
    pub failed_requests: u64,
    pub retries: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Time of each successful export, retries included, sorted.
    pub latencies: Vec<Duration>,
    pub first_error: Option<String>,
    /// CPU time this process used meanwhile, all threads (the load generator's cost).
    pub client_cpu_seconds: Option<f64>,
}

impl IngestOutcome {
    pub fn spans_per_second(&self) -> f64 {
        self.spans_acknowledged as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency below which `quantile` (0 to 1) of the successful exports finished.
    pub fn latency_quantile(&self, quantile: f64) -> Option<Duration> {
        super::report::quantile(&self.latencies, quantile)
    }

    fn merge(&mut self, other: IngestOutcome) {
        self.requests += other.requests;
        self.spans_sent += other.spans_sent;
        self.spans_acknowledged += other.spans_acknowledged;
        self.spans_rejected += other.spans_rejected;
        self.failed_requests += other.failed_requests;
        self.retries += other.retries;
        self.latencies.extend(other.latencies);
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// How the load is sent.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Load {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// HTTP/2 connections the requests in flight share (as many services, or collectors,
    /// each export on their own); at most `--concurrency`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub connections: u64,
}

impl Load {
    /// Requests in flight, and connections (never more than requests in flight, at least one).
    pub fn shape(&self) -> (usize, usize) {
        let concurrency = self.concurrency.max(1) as usize;
        (concurrency, (self.connections as usize).clamp(1, concurrency))
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (concurrency, connections) = self.shape();
        let plural = if connections == 1 { "" } else { "s" };
        write!(f, "{concurrency} requests in flight on {connections} connection{plural}")
    }
}

/// Sends every batch of `workload` to `address` (`host:port`) as `load` says.
pub async fn send(workload: Arc<Workload>, address: &str, load: Load) -> anyhow::Result<IngestOutcome> {
    let (concurrency, connections) = load.shape();
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(connect(address).await?);
    }
    let queue = Arc::new(Queue { next: AtomicUsize::new(0), failed: AtomicBool::new(false) });
    let cpu_before = process_cpu_seconds("self").ok();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        tasks.spawn(sender(channels[task % connections].clone(), workload.clone(), queue.clone()));
    }
    let mut outcome = IngestOutcome::default();
    while let Some(joined) = tasks.join_next().await {
        outcome.merge(joined?);
    }
    outcome.elapsed = started.elapsed();
    outcome.client_cpu_seconds = cpu_before.zip(process_cpu_seconds("self").ok()).map(|(before, after)| after - before);
    outcome.latencies.sort_unstable();
    Ok(outcome)
}

/// An HTTP/2 connection to the OTLP/gRPC receiver at `address` (`host:port`).
pub(crate) async fn connect(address: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(format!("http://{address}"))?
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to OTLP/gRPC at {address}: {e}"))
}

/// The work shared by the senders.
struct Queue {
    /// Index of the next batch to send.
    next: AtomicUsize,
    /// Set by the first failed request: no new request starts.
    failed: AtomicBool,
}

/// One in-flight slot: takes the next batch until none is left or a request failed.
async fn sender(channel: Channel, workload: Arc<Workload>, queue: Arc<Queue>) -> IngestOutcome {
    let mut client = tonic::client::Grpc::new(channel);
    let mut outcome = IngestOutcome::default();
    loop {
        if queue.failed.load(Ordering::Relaxed) {
            return outcome;
        }
        let index = queue.next.fetch_add(1, Ordering::Relaxed);
        let Some(batch) = workload.batches.get(index) else { return outcome };
        outcome.requests += 1;
        outcome.spans_sent += batch.num_spans as u64;
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        let answer = loop {
            let answer = export(&mut client, batch.body.clone()).await;
            match &answer {
                Err(status)
                    if matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
                        && attempt < MAX_RETRIES =>
                {
                    attempt += 1;
                    outcome.retries += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                _ => break answer,
            }
        };
        match answer {
            Ok(response) => {
                let rejected = response.partial_success.map_or(0, |p| p.rejected_spans.max(0) as u64);
                let rejected = rejected.min(batch.num_spans as u64);
                outcome.spans_rejected += rejected;
                outcome.spans_acknowledged += batch.num_spans as u64 - rejected;
                outcome.latencies.push(started.elapsed());
            }
            Err(status) => {
                queue.failed.store(true, Ordering::Relaxed);
                outcome.failed_requests += 1;
                outcome.first_error.get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }
}

pub(crate) async fn export(
    client: &mut tonic::client::Grpc<Channel>,
    body: Bytes,
) -> Result<ExportTraceServiceResponse, Status> {
    client.ready().await.map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
    let path = PathAndQuery::from_static(EXPORT_PATH);
    Ok(client.unary(tonic::Request::new(body), path, ExportCodec).await?.into_inner())
}

/// Writes request bytes as they are; decodes the response with prost.
#[derive(Clone, Copy, Default)]
struct ExportCodec;

impl Codec for ExportCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding the export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;
    use crate::bench::workload::{Batch, Shape, WorkloadParams, generate};
    use crate::config::{Overrides, RawConfig};
    use crate::serve::Server;

    async fn start_server(dir: &std::path::Path) -> Server {
        let env = crate::config::ADDRESS_VARIABLES.map(|name| (name.to_string(), "127.0.0.1:0".to_string()));
        let overrides = Overrides { data_dir: Some(dir.to_path_buf()), log_level: None };
        Server::start(RawConfig::load(None, env, &overrides).unwrap().resolve().unwrap()).await.unwrap()
    }

    fn workload(batches: Vec<Batch>) -> Arc<Workload> {
        let num_spans = batches.iter().map(|b| b.num_spans as u64).sum();
        Arc::new(Workload { num_spans, encoded_bytes: 0, batches })
    }

    fn load(concurrency: u64, connections: u64) -> Load {
        Load { concurrency, connections }
    }

    fn valid_batches(count: usize) -> Vec<Batch> {
        let end_unix_nanos = crate::bench::now_unix_nanos() - 60_000_000_000;
        let params = WorkloadParams {
            shape: Shape::Tracegen,
            seed: 5,
            num_traces: 10 * count as u64,
            days: 1,
            batch_spans: 100,
            end_unix_nanos,
        };
        generate(&params, 1).batches
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_acknowledged_and_partially_rejected_spans() {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let mut batches = valid_batches(3);
        // Two spans of the last request end a day in the future: refused, the rest accepted.
        let mut request = ExportTraceServiceRequest::decode(batches[2].body.clone()).unwrap();
        for span in request.resource_spans[0].scope_spans[0].spans.iter_mut().take(2) {
            span.end_time_unix_nano += 86_400_000_000_000;
        }
        batches[2].body = Bytes::from(request.encode_to_vec());
        let address = server.otlp_grpc_address.to_string();
        let outcome = send(workload(batches), &address, load(2, 1)).await.unwrap();
        assert_eq!((outcome.requests, outcome.spans_sent), (3, 300));
        assert_eq!((outcome.spans_acknowledged, outcome.spans_rejected), (298, 2));
        assert_eq!((outcome.failed_requests, outcome.retries), (0, 0));
        assert_eq!(outcome.latencies.len(), 3);
        assert!(outcome.client_cpu_seconds.is_some());
        server.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stops_after_the_first_failed_request() {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let mut batches = valid_batches(5);
        batches[1] = Batch { body: Bytes::from_static(b"\xff\xff not protobuf"), num_spans: 100 };
        let address = server.otlp_grpc_address.to_string();
        let outcome = send(workload(batches), &address, load(1, 1)).await.unwrap();
        assert_eq!(outcome.requests, 2, "nothing is sent after the failure");
        assert_eq!((outcome.spans_acknowledged, outcome.failed_requests, outcome.retries), (100, 1, 0));
        assert!(outcome.first_error.unwrap().starts_with("InvalidArgument"));
        server.shutdown().await.unwrap();
    }

    /// A TCP relay in front of the server counts the bytes each connection carried to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spreads_the_requests_over_the_connections() {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let target = server.otlp_grpc_address;
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = relay.local_addr().unwrap().to_string();
        let (carried_tx, mut carried_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = relay.accept().await {
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                let carried_tx = carried_tx.clone();
                tokio::spawn(async move {
                    let copied = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    carried_tx.send(copied.map_or(0, |(to_server, _)| to_server)).unwrap();
                });
            }
        });
        let outcome = send(workload(valid_batches(6)), &address, load(3, 2)).await.unwrap();
        assert_eq!((outcome.requests, outcome.spans_acknowledged, outcome.failed_requests), (6, 600, 0));
        // The connections close when the sender is done; each carried export requests (about
        // 30 KB each), not only the HTTP/2 preface.
        let mut carried = Vec::new();
        while carried.len() < 2 {
            carried.push(tokio::time::timeout(Duration::from_secs(10), carried_rx.recv()).await.unwrap().unwrap());
        }
        assert!(carried.iter().all(|&bytes| bytes > 20_000), "bytes per connection: {carried:?}");
        assert!(carried_rx.try_recv().is_err(), "a third connection");
        // Never more connections than requests in flight.
        assert_eq!(load(2, 5).shape(), (2, 2));
        assert_eq!(load(2, 5).to_string(), "2 requests in flight on 2 connections");
        server.shutdown().await.unwrap();
    }

    #[test]
    fn quantiles_pick_from_sorted_latencies() {
        let outcome = IngestOutcome { latencies: (1..=100).map(Duration::from_millis).collect(), ..Default::default() };
        assert_eq!(outcome.latency_quantile(0.5), Some(Duration::from_millis(51)));
        assert_eq!(outcome.latency_quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(outcome.latency_quantile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(IngestOutcome::default().latency_quantile(0.5), None);
    }
}
