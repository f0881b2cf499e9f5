//! What the Zipkin and Tempo APIs share: errors answered as plain text with their status, as
//! those systems answer them, and reading query parameters.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sextant_storage::engine::EngineError;

/// An error answered as a status and a plain-text message.
#[derive(Debug)]
pub struct PlainError(pub StatusCode, pub String);

impl PlainError {
    pub fn bad_request(message: impl Into<String>) -> PlainError {
        PlainError(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn not_found(message: impl Into<String>) -> PlainError {
        PlainError(StatusCode::NOT_FOUND, message.into())
    }
}

impl IntoResponse for PlainError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<EngineError> for PlainError {
    fn from(error: EngineError) -> Self {
        PlainError(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

/// Query parameters in their order, repeats kept.
pub type Params = Query<Vec<(String, String)>>;

/// The last non-empty value of parameter `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
}

/// Parameter `name` as a non-negative integer, if given.
pub fn number(params: &[(String, String)], name: &str) -> Result<Option<u64>, PlainError> {
    param(params, name)
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| PlainError::bad_request(format!("{name} must be a non-negative integer, got {text:?}")))
        })
        .transpose()
}
