//! A tiny HTTP/1.0 client for the monitoring endpoints: enough to read a
//! status, the headers and a body, with bounded waits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status code, lower-cased headers, body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, or a panic showing it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET `path` (with its query) from 127.0.0.1:`port`; `None` if nothing listens.
pub fn try_get(port: u16, path: &str) -> Option<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// GET `path`, panicking if the server does not answer.
pub fn get(port: u16, path: &str) -> Response {
    try_get(port, path).unwrap_or_else(|| panic!("no answer from 127.0.0.1:{port}{path}"))
}

/// GET `path` until it answers `status`, or panic after `limit`.
pub async fn wait_for_status(port: u16, path: &str, status: u16, limit: Duration) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let owned = path.to_string();
        let got = tokio::task::spawn_blocking(move || try_get(port, &owned))
            .await
            .unwrap();
        if let Some(r) = got {
            if r.status == status {
                return r;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
