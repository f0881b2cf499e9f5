//! Zipkin v2 receiver: `POST /api/v2/spans` with a JSON array of spans (optionally gzip),
//! answered `202 Accepted` as Zipkin does. Invalid spans are dropped and counted, the rest are
//! kept; the answer then carries a JSON body saying how many were rejected and why.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::body::{media_type, read_body, reserved_bytes};
use super::otlp_http::{status_of, with_retry_after};
use super::{IngestError, Outcome, Pipeline, Protocol};

pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new().route("/api/v2/spans", post(spans)).with_state(pipeline)
}

async fn spans(State(pipeline): State<Arc<Pipeline>>, headers: HeaderMap, body: Body) -> Response {
    match receive(&pipeline, &headers, body).await {
        Ok(outcome) if outcome.rejected == 0 => StatusCode::ACCEPTED.into_response(),
        Ok(outcome) => {
            let body = serde_json::json!({
                "accepted": outcome.accepted,
                "rejected": outcome.rejected,
                "message": outcome.message,
            });
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(error) => {
            pipeline.count_rejected_request(Protocol::Zipkin, &error);
            let (status, _) = status_of(&error);
            with_retry_after((status, error.to_string()).into_response(), &error)
        }
    }
}

async fn receive(pipeline: &Pipeline, headers: &HeaderMap, body: Body) -> Result<Outcome, IngestError> {
    match media_type(headers).as_deref() {
        None | Some("application/json") | Some("text/plain") => {}
        Some(other) => {
            return Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Type {other:?}: Zipkin spans are accepted as application/json (v2)"
            )));
        }
    }
    let _permit = pipeline.admit(reserved_bytes(headers, pipeline.max_request_bytes())).await?;
    let bytes = read_body(headers, body, pipeline.max_request_bytes()).await?;
    let decoded =
        pipeline.decode(bytes.len(), move |limits, now| sextant_codec::decode_zipkin_json(&bytes, limits, now)).await?;
    pipeline.ingest(Protocol::Zipkin, decoded, None).await
}
