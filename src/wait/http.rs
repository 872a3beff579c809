//! The HTTP condition and the small HTTP/1.1 client it needs (one request per
//! connection, `Connection: close`, chunked bodies decoded).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::port::Port;

type BodyCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Waits for an HTTP answer on a published port; made by
/// [`WaitFor::http`](crate::WaitFor::http).
///
/// ```
/// let w = dockhand::WaitFor::http(8080)
///     .path("/health")
///     .method("HEAD")
///     .status(200)
///     .body(|b| b.contains("ok"));
/// assert_eq!(w.to_string(), "HTTP HEAD /health on port 8080/tcp to answer 200 with a matching body");
/// ```
#[derive(Clone)]
pub struct HttpWait {
    pub(crate) port: Port,
    path: String,
    method: String,
    status: Option<u16>,
    body: Option<BodyCheck>,
}

impl fmt::Debug for HttpWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWait")
            .field("port", &self.port)
            .field("path", &self.path)
            .field("method", &self.method)
            .field("status", &self.status)
            .field("body", &self.body.as_ref().map(|_| "<predicate>"))
            .finish()
    }
}

impl HttpWait {
    pub(crate) fn new(port: Port) -> Self {
        HttpWait {
            port,
            path: "/".into(),
            method: "GET".into(),
            status: None,
            body: None,
        }
    }

    /// The request path (default `/`).
    ///
    /// ```
    /// let w = dockhand::WaitFor::http(80).path("/ready");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self
    }

    /// The request method (default `GET`).
    ///
    /// ```
    /// let w = dockhand::WaitFor::http(80).method("HEAD");
    /// ```
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into().to_ascii_uppercase();
        self
    }

    /// The status that means ready (default: any 2xx).
    ///
    /// ```
    /// let w = dockhand::WaitFor::http(80).status(404);
    /// ```
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The body must satisfy `check` too.
    ///
    /// ```
    /// let w = dockhand::WaitFor::http(80).body(|b| b.contains("UP"));
    /// ```
    pub fn body(mut self, check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.body = Some(Arc::new(check));
        self
    }

    /// One attempt: Ok(true) ready, Ok(false) answered but not as wanted (with
    /// why), Err when no answer came.
    pub(crate) async fn attempt(&self, host: &str, host_port: u16) -> Result<(), String> {
        let response = request(host, host_port, &self.method, &self.path, Duration::from_secs(2)).await?;
        let status_ok = match self.status {
            Some(s) => response.status == s,
            None => (200..300).contains(&response.status),
        };
        if !status_ok {
            return Err(format!("answered {}", response.status));
        }
        if let Some(check) = &self.body
            && !check(&response.body)
        {
            return Err(format!("answered {} but the body did not match", response.status));
        }
        Ok(())
    }
}

impl fmt::Display for HttpWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} {} on port {} to answer ",
            self.method, self.path, self.port
        )?;
        match self.status {
            Some(s) => write!(f, "{s}")?,
            None => f.write_str("2xx")?,
        }
        if self.body.is_some() {
            f.write_str(" with a matching body")?;
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

async fn request(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    limit: Duration,
) -> Result<Response, String> {
    let exchange = async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: dockhand\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse_response(&raw, method == "HEAD")
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("no answer within {limit:?}"))?
}

pub(crate) fn parse_response(raw: &[u8], head_only: bool) -> Result<Response, String> {
    if raw.is_empty() {
        return Err("the connection closed without an answer".into());
    }
    let split = find(raw, b"\r\n\r\n").ok_or("the answer has no complete header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or("truncated chunked body")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>hi</h1>";
        assert_eq!(
            parse_response(plain, false).unwrap(),
            Response {
                status: 200,
                body: "<h1>hi</h1>".into()
            }
        );
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwait\r\n3;x=y\r\ning\r\n0\r\n\r\n";
        let r = parse_response(chunked, false).unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "waiting"));
    }

    #[test]
    fn rejects_what_is_not_http() {
        assert!(parse_response(b"", false).unwrap_err().contains("closed"));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false)
            .unwrap_err()
            .contains("not an HTTP answer"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", false).is_err());
    }

    #[test]
    fn path_gets_a_slash() {
        let w = HttpWait::new(Port::tcp(80)).path("health");
        assert!(w.to_string().contains("GET /health"));
    }
}
