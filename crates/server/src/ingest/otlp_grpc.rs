//! OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! The service is written against tonic's server plumbing with a codec that hands the raw
//! message bytes to `sextant-codec`, rather than tonic's generated service, so that:
//! - an undecodable message is answered `INVALID_ARGUMENT` with the codec's precise message
//!   and counted like on the other receivers;
//! - refusals tonic makes before the handler runs (message over the size limit, unknown
//!   compression) are counted too.
//!
//! gzip is accepted and sent; messages over `max_request_bytes` (after decompression) are
//! refused by tonic with `RESOURCE_EXHAUSTED` before they are buffered whole.
//!
//! The message bytes (after decompression) are kept until the spans are committed: when
//! decoding changed nothing they are the WAL record (see [`super::Pipeline::ingest`]).
//!
//! Memory: a call reserves `max_request_bytes` of the in-flight budget before tonic reads
//! the message (its size is not known earlier), and holds it until the spans are committed.
//! Overload is answered `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` detail, which the
//! OTLP specification requires for clients to retry it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::otlp_http::status_of;
use super::{IngestError, Pipeline, Protocol, RETRY_AFTER};

/// The gRPC path of the only method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The tonic service, ready to add to a `tonic::transport::Server`.
#[derive(Clone)]
pub struct OtlpGrpcService {
    pipeline: Arc<Pipeline>,
}

pub fn service(pipeline: Arc<Pipeline>) -> OtlpGrpcService {
    OtlpGrpcService { pipeline }
}

impl NamedService for OtlpGrpcService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tonic::codegen::Service<http::Request<B>> for OtlpGrpcService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                Ok(Status::unimplemented("only TraceService/Export is served here").into_http())
            });
        }
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            let _permit = match pipeline.admit(pipeline.max_request_bytes()).await {
                Ok(permit) => permit,
                Err(error) => {
                    pipeline.count_rejected_request(Protocol::OtlpGrpc, &error);
                    return Ok(to_status(&error).into_http());
                }
            };
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(pipeline.max_request_bytes()), None);
            let reached = Arc::new(AtomicBool::new(false));
            let method = Export { pipeline: pipeline.clone(), reached: reached.clone() };
            let response = grpc.unary(method, request).await;
            if !reached.load(Ordering::Relaxed) {
                count_refusal_before_handler(&pipeline, &response);
            }
            Ok(response)
        })
    }
}

/// Counts a request tonic refused before the handler ran, from the status it answered.
fn count_refusal_before_handler(pipeline: &Pipeline, response: &http::Response<tonic::body::Body>) {
    let Some(status) = Status::from_header_map(response.headers()) else { return };
    let error = match status.code() {
        tonic::Code::Ok => return,
        tonic::Code::ResourceExhausted | tonic::Code::OutOfRange => IngestError::TooLarge {
            size_bytes: pipeline.max_request_bytes() + 1,
            max_bytes: pipeline.max_request_bytes(),
        },
        tonic::Code::Unimplemented => IngestError::UnsupportedMediaType(status.message().to_string()),
        _ => IngestError::BadBody(status.message().to_string()),
    };
    pipeline.count_rejected_request(Protocol::OtlpGrpc, &error);
}

fn to_status(error: &IngestError) -> Status {
    let (_, code) = status_of(error);
    if error.is_retryable() {
        Status::with_error_details(code, error.to_string(), ErrorDetails::with_retry_info(Some(RETRY_AFTER)))
    } else {
        Status::new(code, error.to_string())
    }
}

/// The `Export` method.
struct Export {
    pipeline: Arc<Pipeline>,
    reached: Arc<AtomicBool>,
}

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<ExportTraceServiceResponse>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.reached.store(true, Ordering::Relaxed);
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            let body = request.into_inner();
            let result = async {
                let size_bytes = body.len();
                let message = body.clone();
                let decoded = pipeline
                    .decode(size_bytes, move |limits, now| sextant_codec::decode_otlp_protobuf(&message, limits, now))
                    .await?;
                pipeline.ingest(Protocol::OtlpGrpc, decoded, Some(body)).await
            }
            .await;
            match result {
                Ok(outcome) => Ok(Response::new(ExportTraceServiceResponse {
                    partial_success: (outcome.rejected > 0).then(|| ExportTracePartialSuccess {
                        rejected_spans: outcome.rejected as i64,
                        error_message: outcome.message.unwrap_or_default(),
                    }),
                })),
                Err(error) => {
                    pipeline.count_rejected_request(Protocol::OtlpGrpc, &error);
                    Err(to_status(&error))
                }
            }
        })
    }
}

/// Passes request messages through as bytes; encodes responses with prost.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}
