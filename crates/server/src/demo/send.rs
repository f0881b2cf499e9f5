//! Sends the demo's spans to a server as OTLP/gRPC export requests, one request in flight:
//! the simulation waits for each acknowledgement, so a server that is slower than the demo
//! slows the demo down instead of queueing spans in memory.
//!
//! The connection and the export call are the benchmark's ([`crate::bench::ingest`]);
//! `RESOURCE_EXHAUSTED` and `UNAVAILABLE` are retried with the same backoff and limit, any
//! other error ends the run.

use anyhow::bail;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_model::Span;
use tonic::Code;
use tonic::transport::Channel;

use crate::bench::ingest::{FIRST_BACKOFF, MAX_BACKOFF, MAX_RETRIES, connect, export};

/// Spans per export request at most.
pub const MAX_SPANS_PER_REQUEST: usize = 1_000;

/// What the server answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendCounts {
    pub requests: u64,
    pub spans_acknowledged: u64,
    pub spans_rejected: u64,
    pub retries: u64,
}

pub struct Sender {
    client: tonic::client::Grpc<Channel>,
    pub counts: SendCounts,
}

impl Sender {
    pub async fn connect(address: &str) -> anyhow::Result<Sender> {
        Ok(Sender { client: tonic::client::Grpc::new(connect(address).await?), counts: SendCounts::default() })
    }

    /// Exports `spans` in requests of at most [`MAX_SPANS_PER_REQUEST`], each acknowledged
    /// before the next is sent.
    pub async fn send(&mut self, spans: &[Span]) -> anyhow::Result<()> {
        for chunk in spans.chunks(MAX_SPANS_PER_REQUEST) {
            let request = ExportTraceServiceRequest { resource_spans: sextant_codec::to_resource_spans(chunk) };
            let body = bytes::Bytes::from(request.encode_to_vec());
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 0;
            let response = loop {
                match export(&mut self.client, body.clone()).await {
                    Err(status)
                        if matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
                            && attempt < MAX_RETRIES =>
                    {
                        attempt += 1;
                        self.counts.retries += 1;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(status) => bail!("export failed: {:?}: {}", status.code(), status.message()),
                    Ok(response) => break response,
                }
            };
            let rejected =
                response.partial_success.map_or(0, |p| p.rejected_spans.max(0) as u64).min(chunk.len() as u64);
            self.counts.requests += 1;
            self.counts.spans_rejected += rejected;
            self.counts.spans_acknowledged += chunk.len() as u64 - rejected;
        }
        Ok(())
    }
}
