//! The one error type of this crate: a request body that cannot be decoded at all.
//!
//! A body that decodes but holds invalid spans is *not* an error: those spans are rejected one
//! by one (see [`crate::Rejection`]) and the rest of the batch is kept. `DecodeError` is for
//! bodies with nothing to keep — malformed protobuf, malformed or mistyped JSON — and its message
//! says where the problem is: the protobuf field path (worded as prost words it), or the JSON
//! path, line and column.

/// A body that could not be decoded; the whole request is refused (HTTP 400 / gRPC
/// `INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// OTLP protobuf (or a WAL payload) that is not valid protobuf for its message (exactly the
    /// bodies prost refuses), or a WAL payload whose IDs have the wrong length.
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(String),
    /// OTLP/JSON that is not JSON or does not have the OTLP shape.
    #[error("invalid OTLP/JSON: {0}")]
    Json(String),
    /// Zipkin v2 JSON that is not JSON or does not have the Zipkin shape.
    #[error("invalid Zipkin JSON: {0}")]
    Zipkin(String),
}

impl DecodeError {
    /// The message without the format prefix, e.g. for an OTLP partial-success text.
    pub fn detail(&self) -> &str {
        match self {
            DecodeError::Protobuf(m) | DecodeError::Json(m) | DecodeError::Zipkin(m) => m,
        }
    }
}

/// Parses `body` as JSON into `T`. The fast path deserializes directly; only when that fails is
/// the body parsed again while tracking the path, so the error names the field that is wrong
/// (`resourceSpans[0].scopeSpans[0].spans[2].startTimeUnixNano: invalid type: ... at line 9
/// column 31`) without slowing down valid requests.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(fast_error) => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let traced: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
            match traced {
                Err(error) => {
                    let path = error.path().to_string();
                    if path.is_empty() || path == "." {
                        Err(error.into_inner().to_string())
                    } else {
                        Err(format!("{path}: {}", error.into_inner()))
                    }
                }
                // Only trailing characters can make the fast path fail while this one succeeds.
                Ok(_) => Err(fast_error.to_string()),
            }
        }
    }
}
