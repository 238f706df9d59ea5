//! One keep-alive HTTP/1.1 connection and one timed request on it.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go and what they carry besides the body.
#[derive(Debug)]
pub struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// Path and query sent in the request line.
    path: Uri,
    /// Headers sent with every request.
    headers: HeaderMap,
}

/// Why a target could not be built.
#[derive(Debug)]
pub struct BadTarget(pub String);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadTarget {}

impl Target {
    /// Parses an `http://host:port/path` URL; `key` becomes a bearer token, `extra` are
    /// `Name: value` headers.
    pub fn new(url: &str, key: Option<&str>, extra: &[String]) -> Result<Self, BadTarget> {
        let bad = |why: &str| BadTarget(format!("{url}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = format!("{}:{port}", authority.host());
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| bad("bad path"))?;
        let mut headers = HeaderMap::new();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| bad("bad header value"));
        headers.insert(HOST, value(authority.as_str())?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = key {
            headers.insert(AUTHORIZATION, value(&format!("Bearer {key}"))?);
        }
        for h in extra {
            let (name, v) = h
                .split_once(':')
                .ok_or_else(|| bad("header must be 'Name: value'"))?;
            let name: hyper::header::HeaderName =
                name.trim().parse().map_err(|_| bad("bad header name"))?;
            headers.insert(name, value(v.trim())?);
        }
        Ok(Self {
            addr,
            path,
            headers,
        })
    }

    /// Opens a keep-alive connection (Nagle off) and spawns its driver task.
    pub async fn connect(&self) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|_| Failure::Connect)?;
        tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes; either is fine.
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// A request that did not produce a usable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// TCP connect or HTTP handshake failed.
    Connect,
    /// The answer had a non-2xx status.
    Status(u16),
    /// The keep-alive connection was closed by the peer before this request was sent
    /// (nothing was sent; the caller reconnects and retries).
    Closed,
    /// The connection broke while sending or receiving.
    Io,
    /// A stream ended without `data: [DONE]`.
    Incomplete,
    /// No complete answer within the request timeout.
    Timeout,
}

impl Failure {
    /// A short name for the error counts in the output.
    pub fn name(self) -> String {
        match self {
            Self::Connect => "connect".into(),
            Self::Status(code) => format!("status_{code}"),
            Self::Closed => "closed".into(),
            Self::Io => "io".into(),
            Self::Incomplete => "incomplete_stream".into(),
            Self::Timeout => "timeout".into(),
        }
    }

    /// Whether the connection must be replaced after this failure.
    pub fn breaks_connection(self) -> bool {
        !matches!(self, Self::Status(_))
    }
}

/// Timings of one successful request, measured from `start`.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Response headers received.
    pub headers: Duration,
    /// First body byte received (the first event of a stream).
    pub ttfb: Duration,
    /// Whole body received.
    pub total: Duration,
    /// Body bytes received.
    pub bytes: u64,
}

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Sends one POST and reads the whole answer; times are measured from `start`, which may
    /// lie before the call (open-loop replay counts queueing as latency).
    pub async fn send(
        &mut self,
        target: &Target,
        body: Bytes,
        stream: bool,
        start: Instant,
    ) -> Result<Sample, Failure> {
        if self.sender.is_closed() {
            return Err(Failure::Closed);
        }
        self.sender.ready().await.map_err(|_| Failure::Closed)?;
        let resp = self
            .sender
            .send_request(target.request(body))
            .await
            .map_err(|_| Failure::Io)?;
        let headers = start.elapsed();
        let status = resp.status();
        let mut body = resp.into_body();
        let mut ttfb = None;
        let mut bytes = 0u64;
        // The last bytes seen, enough to find the `[DONE]` marker at a stream's end.
        let mut tail = Vec::with_capacity(64);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Failure::Io)?;
            if let Some(data) = frame.data_ref() {
                if data.is_empty() {
                    continue;
                }
                ttfb.get_or_insert_with(|| start.elapsed());
                bytes += data.len() as u64;
                if stream {
                    tail.extend_from_slice(&data[data.len().saturating_sub(32)..]);
                    let excess = tail.len().saturating_sub(32);
                    tail.drain(..excess);
                }
            }
        }
        let total = start.elapsed();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        if stream && !tail.windows(6).any(|w| w == b"[DONE]") {
            return Err(Failure::Incomplete);
        }
        Ok(Sample {
            headers,
            ttfb: ttfb.unwrap_or(total),
            total,
            bytes,
        })
    }
}
