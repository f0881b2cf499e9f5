//! The query port (:16686): the native HTTP API (`/api/v1/*`, with the span metrics and
//! service graph of [`derived_metrics`] and the consistency analysis of [`consistency`]),
//! the Jaeger query API (`/api/*` without `v1`, see [`jaeger`], with its metrics endpoints
//! `/api/metrics/*`), Jaeger's api_v3 (`/api/v3/*`)
//! alert rules and alerts ([`alerting`]: `/api/v1/alert-rules`, `/api/alerts`),
//! `/metrics` ([`exposition`]), the endpoints only the web UI needs ([`native_traceql`]:
//! TraceQL search and parse checks, attribute keys and values) and the web UI itself
//! ([`ui`]: every other GET outside `/api` and `/metrics`), business processes and trace
//! links ([`processes`]: `/api/v1/processes*`, `/api/v1/traces/{id}/links`).
//!
//! `router(state)` builds everything so tests can drive it without a socket. Errors of the
//! native API are mapped to HTTP in one place, [`ApiError`], and always answer
//! `{"error": {"code", "message"}}`; the Jaeger API answers errors in Jaeger's own shape
//! ([`jaeger::JaegerError`]).

pub mod alerting;
pub mod consistency;
pub mod dependencies;
pub mod derived_metrics;
pub mod exposition;
pub mod jaeger;
pub mod jaeger_v3;
pub mod native;
pub mod native_traceql;
pub mod params;
pub mod plain;
pub mod processes;
pub mod tempo;
pub mod tempo_metrics;
pub mod traceql_search;
pub mod ui;
pub mod zipkin;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use sextant_storage::engine::{Engine, EngineError};

use crate::alerting::Alerting;
use crate::derived::DerivedMetrics;
use crate::metrics::{EndpointLabels, QueryMetrics};

/// What the API handlers share.
pub struct ApiState {
    pub engine: Arc<Engine>,
    pub registry: Arc<Mutex<Registry>>,
    pub metrics: QueryMetrics,
    /// The span metrics and service graph; `None` when `metrics.enabled` is false.
    pub derived_opt: Option<Arc<DerivedMetrics>>,
    /// Alert rules and alerts; `None` when alerting or the span metrics are disabled.
    pub alerting_opt: Option<Arc<Alerting>>,
    /// The attribute keys of a business process ID (`processes.keys`).
    pub process_keys: Vec<String>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/traces/{trace_id}", get(native::trace))
        .route("/api/v1/search", get(native::search))
        .route("/api/v1/traces/{trace_id}/links", get(processes::links))
        .route("/api/v1/processes", get(processes::processes))
        .route("/api/v1/processes/{id}", get(processes::process))
        .route("/api/v1/services", get(native::services))
        .route("/api/v1/services/{service}/operations", get(native::operations))
        .route("/api/services", get(jaeger::services))
        .route("/api/services/{service}/operations", get(jaeger::service_operations))
        .route("/api/operations", get(jaeger::operations))
        .route("/api/traces", get(jaeger::traces))
        .route("/api/traces/{trace_id}", get(jaeger::trace))
        .route("/api/v1/span-metrics", get(derived_metrics::span_metrics))
        .route("/api/v1/service-graph", get(derived_metrics::service_graph))
        .route("/api/v1/consistency/stale-reads", get(consistency::stale_reads))
        .route("/api/v1/consistency/replication-lag", get(consistency::replication_lag))
        .route("/api/v1/consistency/conflicts", get(consistency::conflicts))
        .route("/api/v1/consistency/levels", get(consistency::levels))
        .route("/api/dependencies", get(jaeger::dependencies))
        .route("/api/metrics/latencies", get(jaeger::spm::latencies))
        .route("/api/metrics/calls", get(jaeger::spm::calls))
        .route("/api/metrics/errors", get(jaeger::spm::errors))
        .route("/api/metrics/minstep", get(jaeger::spm::min_step))
        .route("/api/v1/alert-rules", get(alerting::list_rules).post(alerting::create_rule))
        .route(
            "/api/v1/alert-rules/{name}",
            get(alerting::get_rule).put(alerting::update_rule).delete(alerting::delete_rule),
        )
        .route("/api/alerts", get(alerting::alerts))
        .route("/metrics", get(exposition::metrics))
        .merge(jaeger_v3::router())
        .merge(native_traceql::router())
        .fallback(ui::fallback)
        .layer(middleware::from_fn_with_state(state.clone(), record_latency))
        .with_state(state)
}

/// An API error: an HTTP status, a stable machine-readable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code, message: message.into() }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        tracing::error!(%error, "query failed");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "storage_error", message: error.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found("not_found", format!("no such endpoint: {} {}", request.method(), request.uri().path()))
}

async fn record_latency(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    if endpoint != "/metrics" {
        state
            .metrics
            .duration_seconds
            .get_or_create(&EndpointLabels { endpoint })
            .observe(started.elapsed().as_secs_f64());
    }
    response
}
