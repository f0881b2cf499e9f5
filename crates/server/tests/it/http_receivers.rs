//! HTTP details browser and Node SDKs rely on: CORS preflight, chunked bodies.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_allows_browser_sdks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    for url in [
        format!("http://{}/v1/traces", server.otlp_http_address),
        format!("http://{}/api/v2/spans", server.zipkin_address),
    ] {
        let response = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "http://localhost:3000")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{url}: {}", response.status());
        assert_eq!(response.headers()["access-control-allow-origin"], "*", "{url}");
        let methods = response.headers()["access-control-allow-methods"].to_str().unwrap().to_string();
        assert!(methods.contains("POST"), "{methods}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_json_body_without_content_length_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"browser"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"6B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"click","kind":1,"startTimeUnixNano":{},"endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        now - 1_000_000,
        now
    );
    let (first, second) = body.split_at(body.len() / 2);
    let mut request = String::from(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for chunk in [first, second] {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(server.otlp_http_address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, trace) = get_json(&query_url(&server, "/api/v1/traces/6b8efff798038103d269b633813fc60c")).await;
    assert_eq!(status, 200, "uppercase hex IDs and a number timestamp were accepted: {trace}");
    assert_eq!(otlp_spans(&trace)[0]["spanId"], "eee19b7ec3c1b174");
    server.shutdown().await.unwrap();
}
