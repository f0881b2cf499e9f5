//! Alert rules and alerts on the query port.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/alert-rules` | `{"rules": [rule + "source"]}`, config rules first |
//! | `GET /api/v1/alert-rules/{name}` | the rule with its `source`; 404 |
//! | `POST /api/v1/alert-rules` | 201 and the rule; 400 naming the invalid field; 409 if the name exists |
//! | `PUT /api/v1/alert-rules/{name}` | 200 and the rule; 404 unknown; 403 for a config rule |
//! | `DELETE /api/v1/alert-rules/{name}` | 204; 404 unknown; 403 for a config rule |
//! | `GET /api/alerts` | `{"alerts": [...]}`: pending, firing and recently resolved alerts |
//!
//! Every endpoint answers 501 `alerting_disabled` when alerting (or the span metrics it reads)
//! is turned off. Errors are the native API's `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, ApiState};
use crate::alerting::notify::rfc3339;
use crate::alerting::rule::Rule;
use crate::alerting::{Alert, Alerting, AlertingError, RuleSource};

fn alerting(state: &ApiState) -> Result<&Arc<Alerting>, ApiError> {
    state.alerting_opt.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        code: "alerting_disabled",
        message: "alerting is disabled (alerting.enabled or metrics.enabled is false)".into(),
    })
}

impl From<AlertingError> for ApiError {
    fn from(error: AlertingError) -> ApiError {
        let message = error.to_string();
        match error {
            AlertingError::Invalid(_) => ApiError::bad_request("invalid_rule", message),
            AlertingError::Duplicate(_) => ApiError { status: StatusCode::CONFLICT, code: "rule_exists", message },
            AlertingError::NotFound(_) => ApiError::not_found("rule_not_found", message),
            AlertingError::ReadOnly(_) => ApiError { status: StatusCode::FORBIDDEN, code: "rule_read_only", message },
            AlertingError::Store(_) => {
                tracing::error!(%message, "cannot store alert rules");
                ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "storage_error", message }
            }
        }
    }
}

/// Parses a rule, naming the field at fault: `expr.metric: unknown variant …`.
fn parse_rule(body: &[u8]) -> Result<Rule, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let rule: Rule = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let message = if path == "." { message } else { format!("{path}: {message}") };
        ApiError::bad_request("invalid_rule", message)
    })?;
    deserializer.end().map_err(|e| ApiError::bad_request("invalid_rule", e.to_string()))?;
    Ok(rule)
}

fn rule_json(rule: &Rule, source: RuleSource) -> Value {
    let mut value = serde_json::to_value(rule).expect("a rule serializes");
    value["source"] = json!(source.name());
    value
}

pub async fn list_rules(State(state): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let rules = alerting(&state)?.rules().await;
    let rules: Vec<Value> = rules.iter().map(|(rule, source)| rule_json(rule, *source)).collect();
    Ok(Json(json!({ "rules": rules })))
}

pub async fn get_rule(State(state): State<Arc<ApiState>>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let (rule, source) = alerting(&state)?.rule(&name).await.ok_or(AlertingError::NotFound(name))?;
    Ok(Json(rule_json(&rule, source)))
}

pub async fn create_rule(State(state): State<Arc<ApiState>>, body: Bytes) -> Result<Response, ApiError> {
    let alerting = alerting(&state)?;
    let rule = parse_rule(&body)?;
    alerting.create(rule.clone()).await?;
    Ok((StatusCode::CREATED, Json(rule_json(&rule, RuleSource::Api))).into_response())
}

pub async fn update_rule(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let alerting = alerting(&state)?;
    let rule = parse_rule(&body)?;
    alerting.update(&name, rule.clone()).await?;
    Ok(Json(rule_json(&rule, RuleSource::Api)))
}

pub async fn delete_rule(State(state): State<Arc<ApiState>>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    alerting(&state)?.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn alert_json(alert: &Alert) -> Value {
    let rule = &alert.rule;
    let status = &alert.status;
    let traces: Vec<Value> = alert
        .example_traces
        .iter()
        .map(|id| json!({ "traceId": id.to_hex(), "link": format!("/api/v1/traces/{}", id.to_hex()) }))
        .collect();
    json!({
        "name": rule.name,
        "state": status.state,
        "metric": rule.expr.metric.name(),
        "value": status.value_opt,
        "op": rule.op.symbol(),
        "threshold": rule.threshold,
        "forSeconds": rule.for_seconds,
        "labels": rule.alert_labels(),
        "annotations": rule.annotations,
        "activeAt": status.active_at_unix_nanos_opt.map(rfc3339),
        "firedAt": status.fired_at_unix_nanos_opt.map(rfc3339),
        "resolvedAt": status.resolved_at_unix_nanos_opt.map(rfc3339),
        "exampleTraces": traces,
    })
}

pub async fn alerts(State(state): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let alerts: Vec<Value> = alerting(&state)?.alerts().iter().map(alert_json).collect();
    Ok(Json(json!({ "alerts": alerts })))
}
