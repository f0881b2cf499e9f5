//! OTLP/gRPC receiver: the `TraceService/Export` method, gzip accepted, with a configurable
//! maximum message size (tonic refuses larger messages before decoding them).

use std::sync::Arc;

use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use sextant_codec::proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::otlp_http::status_of;
use super::{IngestError, Pipeline, Protocol, RETRY_AFTER};

pub struct OtlpGrpc {
    pipeline: Arc<Pipeline>,
}

/// The tonic service, ready to add to a server.
pub fn service(pipeline: Arc<Pipeline>) -> TraceServiceServer<OtlpGrpc> {
    let max = pipeline.max_request_bytes();
    TraceServiceServer::new(OtlpGrpc { pipeline })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max)
}

fn to_status(error: &IngestError) -> Status {
    let (_, code) = status_of(error);
    let mut status = Status::new(code, error.to_string());
    if error.is_retryable()
        && let Ok(value) = RETRY_AFTER.as_secs().to_string().parse()
    {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let request = request.into_inner();
        let size_bytes = request.encoded_len();
        let result = async {
            let _permit = self.pipeline.admit(size_bytes)?;
            let decoded = self
                .pipeline
                .decode(size_bytes, move |limits, now| Ok(sextant_codec::from_otlp_request(request, limits, now)))
                .await?;
            self.pipeline.ingest(Protocol::OtlpGrpc, decoded).await
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
                self.pipeline.count_rejected_request(Protocol::OtlpGrpc, &error);
                Err(to_status(&error))
            }
        }
    }
}
