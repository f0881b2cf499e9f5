//! OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf` or
//! `application/json` bodies, optionally gzip-compressed, answered in the request's encoding
//! as the OTLP specification says: `ExportTraceServiceResponse` (with `partial_success` when
//! spans were rejected) on success, a `google.rpc.Status` on failure.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use sextant_codec::proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};

use super::body::{media_type, read_body, reserved_bytes};
use super::{IngestError, Outcome, Pipeline, Protocol, RETRY_AFTER};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status`, the error body of OTLP/HTTP.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new().route("/v1/traces", post(export)).with_state(pipeline)
}

async fn export(State(pipeline): State<Arc<Pipeline>>, headers: HeaderMap, body: Body) -> Response {
    let encoding = match media_type(&headers).as_deref() {
        Some(PROTOBUF) => Encoding::Protobuf,
        Some(JSON) => Encoding::Json,
        other => {
            let error = IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Type {:?}: use {PROTOBUF} or {JSON}",
                other.unwrap_or("(none)")
            ));
            pipeline.count_rejected_request(Protocol::OtlpHttp, &error);
            return error_response(Encoding::Json, &error);
        }
    };
    match receive(&pipeline, &headers, body, encoding).await {
        Ok(outcome) => success_response(encoding, &outcome),
        Err(error) => {
            pipeline.count_rejected_request(Protocol::OtlpHttp, &error);
            error_response(encoding, &error)
        }
    }
}

async fn receive(
    pipeline: &Pipeline,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Outcome, IngestError> {
    let _permit = pipeline.admit(reserved_bytes(headers, pipeline.max_request_bytes())).await?;
    let bytes = read_body(headers, body, pipeline.max_request_bytes()).await?;
    // A protobuf body (gunzipped) may serve as the WAL record; JSON is always re-encoded.
    let protobuf_body = (encoding == Encoding::Protobuf).then(|| bytes.clone());
    let decoded = pipeline
        .decode(bytes.len(), move |limits, now| match encoding {
            Encoding::Protobuf => sextant_codec::decode_otlp_protobuf(&bytes, limits, now),
            Encoding::Json => sextant_codec::decode_otlp_json(&bytes, limits, now),
        })
        .await?;
    pipeline.ingest(Protocol::OtlpHttp, decoded, protobuf_body).await
}

fn success_response(encoding: Encoding, outcome: &Outcome) -> Response {
    let response = ExportTraceServiceResponse {
        partial_success: (outcome.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: outcome.rejected as i64,
            error_message: outcome.message.clone().unwrap_or_default(),
        }),
    };
    match encoding {
        Encoding::Protobuf => ([(header::CONTENT_TYPE, PROTOBUF)], response.encode_to_vec()).into_response(),
        Encoding::Json => {
            // OTLP/JSON omits fields with default values: a full success is `{}`.
            let body = match response.partial_success {
                None => b"{}".to_vec(),
                Some(_) => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
            };
            ([(header::CONTENT_TYPE, JSON)], body).into_response()
        }
    }
}

/// The HTTP status and gRPC code for an ingest error (shared with the Zipkin receiver).
pub fn status_of(error: &IngestError) -> (StatusCode, tonic::Code) {
    match error {
        IngestError::Decode(_) | IngestError::BadBody(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
        IngestError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::ResourceExhausted),
        IngestError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, tonic::Code::InvalidArgument),
        IngestError::Overloaded => (StatusCode::TOO_MANY_REQUESTS, tonic::Code::ResourceExhausted),
        IngestError::StorageFull(_) => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::ResourceExhausted),
        IngestError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
        IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, tonic::Code::Internal),
    }
}

/// Adds `Retry-After` to answers a client should retry.
pub fn with_retry_after(mut response: Response, error: &IngestError) -> Response {
    if error.is_retryable() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
    }
    response
}

fn error_response(encoding: Encoding, error: &IngestError) -> Response {
    let (status, code) = status_of(error);
    let rpc = RpcStatus { code: code as i32, message: error.to_string() };
    let response = match encoding {
        Encoding::Protobuf => (status, [(header::CONTENT_TYPE, PROTOBUF)], rpc.encode_to_vec()).into_response(),
        Encoding::Json => {
            let body = serde_json::json!({ "code": rpc.code, "message": rpc.message });
            (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
        }
    };
    with_retry_after(response, error)
}
