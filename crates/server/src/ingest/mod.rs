//! Receivers and the pipeline they share.
//!
//! ```text
//! OTLP/gRPC :4317 ──raw message──decode (codec)─┐
//! OTLP/HTTP :4318 ──read_body────decode (codec)─┼─> Pipeline::ingest ──> Engine::append{,_encoded} ──> ack
//! Zipkin    :9411 ──read_body────decode (codec)─┘    (count, validate)    (WAL commit)
//!                                                                          │ committed
//!                                                                          └──> DerivedMetrics::submit
//! ```
//!
//! With `metrics.enabled`, the accepted spans of a committed request also feed the span
//! metrics and service graph aggregators ([`crate::derived`]): before the commit the pipeline
//! reserves room in their queue and copies what they read of the spans (the engine takes the
//! spans themselves); after it, the copy is queued. Ingest never waits for them: a request
//! that finds the queue full is acknowledged as usual and counted in
//! `sextant_metrics_dropped_{batches,spans}_total`; a request whose commit fails is not
//! aggregated.
//!
//! The WAL record is the OTLP protobuf request body itself when decoding changed nothing
//! ([`Decoded::unchanged`]): the body already is a `TracesData` message that replays to exactly
//! the accepted spans, so it is written as received (`Engine::append_encoded`). Otherwise (some
//! span refused, anything dropped or truncated, and for OTLP/JSON and Zipkin bodies) the
//! accepted spans are encoded anew (`Engine::append`).
//!
//! | failure                        | gRPC                 | HTTP                          | counted as                     |
//! |--------------------------------|----------------------|-------------------------------|--------------------------------|
//! | some spans invalid             | OK + partial_success | 200 + partial_success         | `spans_rejected{reason}`       |
//! | body not decodable             | INVALID_ARGUMENT     | 400 + Status message          | `requests_rejected{decode}`    |
//! | body too large                 | RESOURCE_EXHAUSTED   | 413                           | `requests_rejected{too_large}` |
//! | unsupported content type/enc.  | (n/a)                | 415                           | `requests_rejected{unsupported_media_type}` |
//! | in-flight bytes over the limit | RESOURCE_EXHAUSTED   | 429 + Retry-After             | `requests_rejected{overloaded}` |
//! | head full (flush behind)       | RESOURCE_EXHAUSTED   | 503 + Retry-After             | `spans_rejected{overloaded}`   |
//! | WAL write failed               | UNAVAILABLE          | 503 + Retry-After             | `spans_rejected{storage}`      |
//!
//! Memory stays bounded: a request holds a permit for its size from a semaphore of
//! `max_inflight_bytes` while it is read, decoded and written; when none is free the
//! request is refused at once rather than queued.

pub mod body;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod zipkin;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sextant_codec::{DecodeError, Decoded, Limits};
use sextant_storage::engine::{Engine, EngineError, now_unix_nanos};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use crate::derived::DerivedMetrics;
use crate::metrics::{IngestMetrics, ProtocolLabels, RejectLabels};

/// How long clients are told to wait after an overload answer.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a request waits for room in the in-flight budget before it is refused.
const ADMIT_WAIT: Duration = Duration::from_secs(1);
/// Bodies larger than this are decoded on the blocking pool rather than the async runtime.
/// Smaller ones (an SDK's export of 512 spans is about 150 KB; a 1,000-span request of the
/// benchmark workload is 292 KB and decodes in about 3 ms) are decoded where they arrive: the
/// trip to the blocking pool and back costs two wake-ups of other threads, which on busy cores
/// wait for one, and more threads running decodes than there are cores slow each of them. On
/// one connection without flushes (3M spans, eight requests in flight), decoding these
/// requests in place instead of on the blocking pool raised ingest from 266,000–361,000 to
/// 273,000–437,000 spans/s and cut the cores' idle share from 26–31% to 15–22% (four
/// alternated pairs; see docs/BENCHMARKS.md). A larger body would hold a worker for longer
/// than a query should wait, and its decode is long enough that the trip costs little.
const DECODE_INLINE_MAX_BYTES: usize = 512 * 1024;
/// Semaphore permits are counted in KiB so a u32 covers any sane limit.
const PERMIT_UNIT_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::OtlpHttp => "otlp_http",
            Protocol::Zipkin => "zipkin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    BadBody(String),
    #[error("request body of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("server overloaded: too many request bytes in flight, retry later")]
    Overloaded,
    #[error("server overloaded: {0}, retry later")]
    StorageFull(String),
    #[error("storage unavailable: {0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Decode(_) | IngestError::BadBody(_) => "decode",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::Overloaded | IngestError::StorageFull(_) => "overloaded",
            IngestError::Storage(_) => "storage",
            IngestError::Internal(_) => "internal",
        }
    }

    /// Whether a client should retry the same request later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::Overloaded | IngestError::StorageFull(_) | IngestError::Storage(_))
    }
}

/// What happened to the spans of an accepted request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub accepted: usize,
    pub rejected: usize,
    pub message: Option<String>,
}

/// Shared by all receivers: limits, admission, counting, the engine.
pub struct Pipeline {
    engine: Arc<Engine>,
    limits: Limits,
    max_request_bytes: usize,
    inflight: Arc<Semaphore>,
    metrics: IngestMetrics,
    /// The span metrics and service graph aggregators, when enabled.
    derived_opt: Option<Arc<DerivedMetrics>>,
}

impl Pipeline {
    pub fn new(
        engine: Arc<Engine>,
        limits: Limits,
        max_request_bytes: usize,
        max_inflight_bytes: usize,
        metrics: IngestMetrics,
        derived_opt: Option<Arc<DerivedMetrics>>,
    ) -> Pipeline {
        let permits = (max_inflight_bytes / PERMIT_UNIT_BYTES).clamp(1, Semaphore::MAX_PERMITS);
        Pipeline {
            engine,
            limits,
            max_request_bytes,
            inflight: Arc::new(Semaphore::new(permits)),
            metrics,
            derived_opt,
        }
    }

    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Reserves room for a request of `size_bytes` (capped at the request limit), waiting a
    /// short while for other requests to finish; refuses it when none frees up.
    pub async fn admit(&self, size_bytes: usize) -> Result<OwnedSemaphorePermit, IngestError> {
        let units = size_bytes.min(self.max_request_bytes).div_ceil(PERMIT_UNIT_BYTES).max(1) as u32;
        match tokio::time::timeout(ADMIT_WAIT, self.inflight.clone().acquire_many_owned(units)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(IngestError::Overloaded),
        }
    }

    /// Counts a request refused whole. Refusals by storage are already counted per span by
    /// [`Pipeline::ingest`].
    pub fn count_rejected_request(&self, protocol: Protocol, error: &IngestError) {
        if matches!(error, IngestError::StorageFull(_) | IngestError::Storage(_)) {
            return;
        }
        self.metrics
            .requests_rejected
            .get_or_create(&RejectLabels { protocol: protocol.as_str(), reason: error.reason() })
            .inc();
        if !error.is_retryable() {
            warn!(protocol = protocol.as_str(), %error, "rejected request");
        }
    }

    /// Runs a decoder, on the blocking pool for large bodies.
    pub async fn decode<F>(&self, size_bytes: usize, decode: F) -> Result<Decoded, IngestError>
    where
        F: FnOnce(&Limits, u64) -> Result<Decoded, DecodeError> + Send + 'static,
    {
        let limits = self.limits.clone();
        let now = now_unix_nanos();
        if size_bytes <= DECODE_INLINE_MAX_BYTES {
            return Ok(decode(&limits, now)?);
        }
        match tokio::task::spawn_blocking(move || decode(&limits, now)).await {
            Ok(result) => Ok(result?),
            Err(join_error) => Err(IngestError::Internal(format!("decoder failed: {join_error}"))),
        }
    }

    /// Counts the decoded spans and writes the valid ones. Returns once they are durable.
    ///
    /// `protobuf_body` is the OTLP protobuf body `decoded` was decoded from, if it was one
    /// (`None` for OTLP/JSON and Zipkin): when `decoded.unchanged`, it is written as the WAL
    /// record instead of encoding the spans again.
    pub async fn ingest(
        &self,
        protocol: Protocol,
        decoded: Decoded,
        protobuf_body: Option<Bytes>,
    ) -> Result<Outcome, IngestError> {
        let labels = ProtocolLabels { protocol: protocol.as_str() };
        let num_valid = decoded.spans.len();
        let num_rejected = decoded.rejected.len();
        self.metrics.spans_received.get_or_create(&labels).inc_by((num_valid + num_rejected) as u64);
        if decoded.truncated_values > 0 {
            self.metrics.values_truncated.get_or_create(&labels).inc_by(decoded.truncated_values);
        }
        for rejection in &decoded.rejected {
            self.metrics
                .spans_rejected
                .get_or_create(&RejectLabels { protocol: protocol.as_str(), reason: rejection.reason.as_str() })
                .inc();
        }
        let message = decoded.partial_success_message();
        let (spans, derived_batch_opt) = match &self.derived_opt {
            Some(derived) => {
                let (spans, batch) = derived.prepare_owned(decoded.spans).await;
                (spans, Some(batch))
            }
            None => (decoded.spans, None),
        };
        let appended = match protobuf_body.filter(|_| decoded.unchanged) {
            Some(payload) => self.engine.append_encoded(spans, payload).await,
            None => self.engine.append(spans).await,
        };
        match appended {
            Ok(()) => {
                self.metrics.spans_accepted.get_or_create(&labels).inc_by(num_valid as u64);
                if let (Some(derived), Some(batch)) = (&self.derived_opt, derived_batch_opt) {
                    derived.submit(batch, num_valid);
                }
                Ok(Outcome { accepted: num_valid, rejected: num_rejected, message })
            }
            Err(error) => {
                let (reason, ingest_error) = match &error {
                    EngineError::Overloaded { .. } => ("overloaded", IngestError::StorageFull(error.to_string())),
                    _ => ("storage", IngestError::Storage(error.to_string())),
                };
                warn!(protocol = protocol.as_str(), %error, num_spans = num_valid, "could not store spans");
                self.metrics
                    .spans_rejected
                    .get_or_create(&RejectLabels { protocol: protocol.as_str(), reason })
                    .inc_by(num_valid as u64);
                Err(ingest_error)
            }
        }
    }
}
