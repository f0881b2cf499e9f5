//! A small HTTP/1.1 client for the query API: `GET` only, one connection kept alive between
//! requests (as a browser or an API client would), bodies sized by `Content-Length` or
//! chunked. Small enough that the time measured is the server's and the loopback's, not a
//! client library's.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bodies are read through a buffer this large.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// An answer: its status and its whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct HttpClient {
    address: SocketAddr,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    /// A client of `address`; every request fails after `timeout`.
    pub fn new(address: SocketAddr, timeout: Duration) -> HttpClient {
        HttpClient { address, timeout, connection: None }
    }

    /// `GET path` (path and query, already encoded).
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.get_untimed(path))
            .await
            .with_context(|| format!("GET {path}: no answer within {timeout:?}"))?
            .with_context(|| format!("GET {path}"))
    }

    async fn get_untimed(&mut self, path: &str) -> anyhow::Result<Answer> {
        // A kept connection the server has closed meanwhile fails at once: one more try on a
        // new connection (a GET may be repeated).
        if self.connection.is_some()
            && let Ok(answer) = self.exchange(path).await
        {
            return Ok(answer);
        }
        self.exchange(path).await
    }

    async fn exchange(&mut self, path: &str) -> anyhow::Result<Answer> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                let stream = TcpStream::connect(self.address)
                    .await
                    .with_context(|| format!("connecting to {}", self.address))?;
                stream.set_nodelay(true)?;
                self.connection.insert(BufReader::with_capacity(READ_BUFFER_BYTES, stream))
            }
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n", self.address);
        let result = match connection.get_mut().write_all(request.as_bytes()).await {
            Ok(()) => read_answer(connection).await,
            Err(error) => Err(error.into()),
        };
        match result {
            Ok((answer, true)) => Ok(answer),
            Ok((answer, false)) => {
                self.connection = None;
                Ok(answer)
            }
            Err(error) => {
                self.connection = None;
                Err(error)
            }
        }
    }
}

/// One request on a new connection, closed afterwards: status and body as text.
pub async fn get_once(address: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let answer = HttpClient::new(address, timeout).get(path).await?;
    Ok((answer.status, answer.text()))
}

/// Reads one answer; whether the connection may carry another request.
async fn read_answer<R: AsyncBufRead + Unpin>(reader: &mut R) -> anyhow::Result<(Answer, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        bail!("the connection was closed before an answer");
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {:?}", line.trim_end()))?;
    let (mut length, mut chunked, mut close) = (None, false, version != "HTTP/1.1");
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the connection was closed inside the header");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { bail!("bad header line {header:?}") };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse::<usize>().with_context(|| format!("Content-Length {value}"))?)
            }
            "transfer-encoding" => chunked = value.split(',').any(|v| v.trim() == "chunked"),
            "connection" => close |= value.split(',').any(|v| v.trim() == "close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size_text = line.trim_end().split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).with_context(|| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).await?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    } else {
        reader.read_to_end(&mut body).await?;
        close = true;
    }
    Ok((Answer { status, body }, !close))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(text: &str) -> anyhow::Result<(Answer, bool)> {
        let mut bytes = text.as_bytes();
        read_answer(&mut bytes).await
    }

    #[tokio::test]
    async fn reads_sized_chunked_and_closing_answers() {
        let (answer, keep) =
            read("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhelloEXTRA").await.unwrap();
        assert_eq!((answer.status, answer.body.as_slice(), keep), (200, &b"hello"[..], true));

        let chunked =
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
        let (answer, keep) = read(chunked).await.unwrap();
        assert_eq!((answer.status, answer.text().as_str(), keep), (404, "abc0123456789", true));

        let (answer, keep) = read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
        assert_eq!((answer.text().as_str(), keep), ("ok", false));
        let (answer, keep) = read("HTTP/1.0 200 OK\r\n\r\nuntil the end").await.unwrap();
        assert_eq!((answer.text().as_str(), keep), ("until the end", false));
    }

    #[tokio::test]
    async fn refuses_broken_answers() {
        assert!(read("").await.is_err());
        assert!(read("HTTP/1.1 abc OK\r\n\r\n").await.is_err());
        assert!(read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await.is_err());
        assert!(read("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").await.is_err());
    }

    #[tokio::test]
    async fn keeps_one_connection_for_many_requests() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Answers every request of the first connection, then refuses to accept another.
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut served = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    return served;
                }
                let path = line.split(' ').nth(1).unwrap().to_string();
                while {
                    line.clear();
                    reader.read_line(&mut line).await.unwrap();
                    line != "\r\n"
                } {}
                let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}", path.len());
                reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
                served += 1;
            }
        });
        let mut client = HttpClient::new(address, Duration::from_secs(10));
        for path in ["/a", "/bb", "/api/v1/search?x=1"] {
            let answer = client.get(path).await.unwrap();
            assert_eq!(answer.text(), path);
        }
        drop(client);
        assert_eq!(server.await.unwrap(), 3, "all three requests on one connection");
    }
}
