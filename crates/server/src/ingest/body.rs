//! Reading HTTP request bodies for the HTTP receivers: media type, size limit (also after
//! decompression, so a small gzip bomb cannot inflate past it), `Content-Encoding: gzip`,
//! chunked bodies (no `Content-Length`).

use std::io::Read;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::IngestError;

/// The media type of a request, lowercased and without parameters; `None` when absent.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// The declared `Content-Length`, if any.
pub fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The in-flight bytes to reserve before reading a body: its declared length when it is not
/// compressed, otherwise the most it may inflate to.
pub fn reserved_bytes(headers: &HeaderMap, max_bytes: usize) -> usize {
    let compressed = headers.get(CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    match content_length(headers) {
        Some(length) if !compressed => length.min(max_bytes),
        _ => max_bytes,
    }
}

/// Reads the whole body, refusing more than `max_bytes` before and after decompression.
pub async fn read_body(headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<Bytes, IngestError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("invalid").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(encoding.as_str(), "" | "identity" | "gzip") {
        return Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {encoding:?}: use gzip or none"
        )));
    }
    if let Some(size_bytes) = content_length(headers).filter(|len| *len > max_bytes) {
        return Err(IngestError::TooLarge { size_bytes, max_bytes });
    }
    let raw = match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(IngestError::TooLarge { size_bytes: max_bytes + 1, max_bytes });
        }
        Err(error) => {
            return Err(IngestError::BadBody(format!("cannot read body: {error}")));
        }
    };
    if encoding == "gzip" { gunzip(&raw, max_bytes) } else { Ok(raw) }
}

/// Decompresses gzip, stopping past `max_bytes` of output.
pub fn gunzip(compressed: &[u8], max_bytes: usize) -> Result<Bytes, IngestError> {
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(max_bytes as u64 + 1);
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(max_bytes));
    decoder.read_to_end(&mut out).map_err(|error| IngestError::BadBody(format!("invalid gzip body: {error}")))?;
    if out.len() > max_bytes {
        return Err(IngestError::TooLarge { size_bytes: out.len(), max_bytes });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_bomb_is_stopped_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(gunzip(&bomb, 1024 * 1024), Err(IngestError::TooLarge { .. })));
    }

    #[test]
    fn garbage_gzip_is_a_decode_error() {
        let err = gunzip(b"definitely not gzip", 1024).unwrap_err();
        assert!(err.to_string().contains("invalid gzip body"), "{err}");
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert_eq!(media_type(&headers).as_deref(), Some("application/json"));
    }
}
