//! The web UI on the query port: the built assets of `ui/` (`ui/dist`, committed and rebuilt
//! by `npm ci && npm run build`), embedded in the binary with `rust-embed`.
//!
//! It is the router's fallback, so every API route keeps precedence:
//!
//! - `GET`/`HEAD` of a file in `ui/dist` answers it. Files under `assets/` carry a content hash
//!   in their name (Vite's output), so they are cached for a year as immutable; the others
//!   (`index.html`) must be revalidated, with the embedded file's SHA-256 as `ETag`.
//! - `GET`/`HEAD` of any other path outside `/api` and `/metrics` answers `index.html`: the UI
//!   routes in the browser (`/trace/{id}`, `/search?…`), so a deep link or a reload works.
//! - Everything else (an unknown `/api/…` path, another method) answers the API's JSON 404.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::{EmbeddedFile, RustEmbed};

#[derive(RustEmbed)]
#[folder = "../../ui/dist"]
struct Assets;

const INDEX: &str = "index.html";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The router's fallback: a UI file, the UI's `index.html`, or the API's 404.
pub async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    if !matches!(*request.method(), Method::GET | Method::HEAD) || is_api_path(path) {
        return super::not_found(request).await.into_response();
    }
    let name = path.trim_start_matches('/');
    let (name, file) = match Assets::get(name).filter(|_| !name.is_empty()) {
        Some(file) => (name, file),
        None => match Assets::get(INDEX) {
            Some(file) => (INDEX, file),
            None => return super::not_found(request).await.into_response(),
        },
    };
    respond(&request, name, file)
}

/// Paths the UI never answers: the APIs' and the metrics'.
fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics" || path.starts_with("/metrics/")
}

fn respond(request: &Request, name: &str, file: EmbeddedFile) -> Response {
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let cache = if name.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
    let not_modified = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if request.method() == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// The media type of the file kinds Vite writes.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_and_metrics_paths_are_not_the_uis() {
        for path in ["/api", "/api/v1/nothing", "/api/traces/x", "/metrics", "/metrics/x"] {
            assert!(is_api_path(path), "{path}");
        }
        for path in ["/", "/search", "/trace/abc", "/apis", "/metricsfoo", "/assets/index-1.js"] {
            assert!(!is_api_path(path), "{path}");
        }
    }

    #[test]
    fn the_built_ui_has_an_index() {
        let index = Assets::get(INDEX).expect("ui/dist/index.html is embedded");
        assert!(String::from_utf8_lossy(&index.data).contains("<div id=\"app\">"));
        assert_eq!(content_type("assets/index-abc.js"), "text/javascript; charset=utf-8");
    }
}
