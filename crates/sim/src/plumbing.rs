//! Shared request plumbing: reading requests, the fault gate, error shapes and the stream driver.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::controls::{Faults, LastRequest, SimControls};
use crate::SimProtocol;

/// The largest request body the simulator reads.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// One simulated provider's identity and state, shared by its handlers.
#[derive(Debug)]
pub(crate) struct SimCtx {
    pub name: String,
    pub protocol: SimProtocol,
    pub api_key: Option<String>,
    pub controls: SimControls,
    /// The secret access key SigV4 signatures are checked with (Bedrock).
    pub aws_secret: String,
    /// Access tokens issued by the token endpoint, with their expiry (Vertex).
    pub tokens: Mutex<HashMap<String, tokio::time::Instant>>,
    seq: AtomicU64,
}

/// Shared handle on a [`SimCtx`].
pub(crate) type Sim = Arc<SimCtx>;

impl SimCtx {
    pub fn new(
        name: String,
        protocol: SimProtocol,
        api_key: Option<String>,
        controls: SimControls,
        aws_secret: String,
    ) -> Self {
        Self {
            name,
            protocol,
            api_key,
            controls,
            aws_secret,
            tokens: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// The name replies speak with: the `speaker` fault when set, else the provider's name.
    pub fn speaker<'a>(&'a self, faults: &'a Faults) -> &'a str {
        faults.speaker.as_deref().unwrap_or(&self.name)
    }

    /// A fresh id with the given prefix, unique within this provider (e.g. `chatcmpl-sim3a`).
    pub fn next_id(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let h = crate::rules::hash_id(&[&self.name, &n.to_string()]);
        format!("{prefix}{}", &h[..20])
    }

    /// Counts the request, applies latency, hang and injected failures.
    ///
    /// Returns the faults in force (for the stream driver) or the response to send instead.
    pub async fn gate(
        &self,
        inb: &Inbound,
        model: Option<&str>,
        stream: bool,
        shape: &dyn ErrorShape,
    ) -> Result<Faults, Response> {
        let adm = self.controls.admit(inb.last_request(), model, stream);
        if adm.faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(adm.faults.latency_ms)).await;
        }
        if adm.fail {
            let status = StatusCode::from_u16(adm.faults.fail_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = shape.error(
                status,
                "injected failure from switchyard sim",
                adm.faults.retry_after_s,
            );
            if let Some(s) = adm.faults.retry_after_s {
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
            }
            return Err(resp);
        }
        if adm.faults.hang {
            // Dropped when the client disconnects or the simulator shuts down.
            std::future::pending::<()>().await;
        }
        Ok(adm.faults)
    }
}

/// A request read whole, with its JSON body when it has one.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub method: http::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub params: HashMap<String, String>,
    pub bytes: Bytes,
    pub json: Option<Value>,
}

impl Inbound {
    /// Reads the request body (capped) and parses it as JSON when possible.
    pub async fn read(req: Request) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response())?;
        let params = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        Ok(Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            params,
            json: serde_json::from_slice(&bytes).ok(),
            bytes,
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer` header.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    }

    /// The JSON body, or `null` when there is none.
    pub fn body(&self) -> &Value {
        self.json.as_ref().unwrap_or(&Value::Null)
    }

    /// A record of this request for the stats.
    pub fn last_request(&self) -> LastRequest {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &self.headers {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers
                .entry(k.as_str().to_owned())
                .and_modify(|e| *e = format!("{e}, {v}"))
                .or_insert(v);
        }
        LastRequest {
            method: self.method.to_string(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers,
            body: self.json.clone(),
        }
    }
}

/// How one protocol renders errors, mid-stream errors and malformed frames.
pub(crate) trait ErrorShape: Send + Sync {
    /// An HTTP error response in the protocol's own shape.
    fn error(&self, status: StatusCode, message: &str, retry_after: Option<u32>) -> Response;
    /// The bytes of a mid-stream error event for this status.
    fn stream_error(&self, status: StatusCode, message: &str) -> Bytes;
    /// The bytes of a frame a parser must reject.
    fn malformed(&self) -> Bytes;
    /// A well-framed event whose payload is not valid JSON; `first` when no token frame preceded
    /// it (the Gemini JSON array needs its element separator on the other side then).
    fn garbage(&self, first: bool) -> Bytes;
    /// The protocol's answer to `input` tokens over a context window of `window`.
    fn context_length(&self, input: u64, window: u64) -> Response;
    /// The protocol's content-policy refusal of a prompt, when it is an HTTP error (`None`
    /// where the protocol refuses in-band, with a 200 and a block reason).
    fn content_filter(&self) -> Option<Response>;
}

impl SimCtx {
    /// Applies the content faults to a chat request of `input` tokens: the response to send
    /// instead, if one applies.
    pub fn content_gate(
        &self,
        faults: &Faults,
        input: u64,
        shape: &dyn ErrorShape,
    ) -> Option<Response> {
        let refusal = match faults.context_window {
            Some(window) if input > window => Some(shape.context_length(input, window)),
            _ if faults.content_filter => shape.content_filter(),
            _ => None,
        };
        if refusal.is_some() {
            self.controls.count_content_error();
        }
        refusal
    }
}

/// The assistant prefill a request ends with: the text of its last message when that message
/// (the last element of `body[list]`) has the protocol's assistant `role`.
pub(crate) fn trailing_prefill(
    body: &Value,
    list: &str,
    role: &str,
    conv: &crate::rules::Conversation,
) -> Option<String> {
    let last_role = body
        .get(list)
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    conv.trailing_text().filter(|_| last_role == Some(role))
}

/// A JSON response with extra headers.
pub(crate) fn json_response(
    status: StatusCode,
    body: &Value,
    headers: &[(&str, String)],
) -> Response {
    let mut resp = (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    add_headers(&mut resp, headers);
    resp
}

/// Adds headers, skipping any whose name or value is invalid.
pub(crate) fn add_headers(resp: &mut Response, headers: &[(&str, String)]) {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An SSE event with only a `data:` line, ended by `\n\n`.
pub(crate) fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// An SSE event with an `event:` name and a `data:` line.
pub(crate) fn sse_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// One piece of a streamed body; `tokens > 0` marks frames that carry output.
#[derive(Debug)]
pub(crate) struct Frame {
    pub bytes: Bytes,
    pub tokens: u32,
    /// The protocol's end sentinel (`data: [DONE]`, `message_stop`), left out by `omit_end_marker`.
    pub end: bool,
}

impl Frame {
    /// A frame that carries output tokens.
    pub fn token(bytes: Bytes) -> Self {
        Self {
            bytes,
            tokens: 1,
            end: false,
        }
    }

    /// A structural frame (start, stop, usage).
    pub fn meta(bytes: Bytes) -> Self {
        Self {
            bytes,
            tokens: 0,
            end: false,
        }
    }

    /// The end sentinel, after which a complete stream has nothing more to say.
    pub fn end(bytes: Bytes) -> Self {
        Self {
            bytes,
            tokens: 0,
            end: true,
        }
    }
}

/// State of a stream being written.
struct Driver {
    frames: VecDeque<Frame>,
    faults: Faults,
    controls: SimControls,
    error_frame: Bytes,
    malformed: Bytes,
    /// Garbage events for the first position and for later ones.
    garbage: [Bytes; 2],
    garbage_sent: bool,
    sent: u32,
    started: bool,
    abort: bool,
}

/// What the driver does next.
enum Step {
    Send(Bytes),
    Abort,
    Stall,
    End,
}

impl Driver {
    async fn step(&mut self) -> Step {
        if self.abort {
            return Step::Abort;
        }
        let Some(frame) = self.frames.pop_front() else {
            return Step::End;
        };
        if frame.end && self.faults.omit_end_marker {
            return Step::End;
        }
        if frame.tokens > 0 {
            let reached = |k: Option<u32>| k.is_some_and(|k| self.sent >= k);
            if reached(self.faults.drop_after_tokens) {
                self.controls.count_dropped();
                return Step::Abort;
            }
            if reached(self.faults.malformed_after_tokens) {
                self.controls.count_dropped();
                self.abort = true;
                return Step::Send(self.malformed.clone());
            }
            if reached(self.faults.error_after_tokens) {
                self.controls.count_stream_error();
                self.frames.clear();
                return Step::Send(self.error_frame.clone());
            }
            if reached(self.faults.garbage_after_tokens) && !self.garbage_sent {
                self.controls.count_garbage();
                self.garbage_sent = true;
                let garbage = self.garbage[usize::from(self.sent > 0)].clone();
                // The token frame goes out next, after the garbage.
                self.frames.push_front(frame);
                return Step::Send(garbage);
            }
            if reached(self.faults.stall_after_tokens) {
                self.controls.count_stalled();
                return Step::Stall;
            }
            let delay = if self.started {
                self.faults.token_delay_ms
            } else {
                self.faults.ttft_ms
            };
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            self.started = true;
            self.sent += frame.tokens;
        }
        Step::Send(frame.bytes)
    }
}

/// A streamed response that writes `frames` with the stream faults applied.
pub(crate) fn stream_response(
    ctx: &SimCtx,
    faults: Faults,
    content_type: &str,
    frames: Vec<Frame>,
    shape: &dyn ErrorShape,
    headers: &[(&str, String)],
) -> Response {
    let status =
        StatusCode::from_u16(faults.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let driver = Driver {
        frames: frames.into(),
        error_frame: shape.stream_error(status, "injected mid-stream error from switchyard sim"),
        malformed: shape.malformed(),
        garbage: [shape.garbage(true), shape.garbage(false)],
        garbage_sent: false,
        faults,
        controls: ctx.controls.clone(),
        sent: 0,
        started: false,
        abort: false,
    };
    let stream = futures_util::stream::unfold(Some(driver), |state| async move {
        let mut d = state?;
        match d.step().await {
            Step::Send(b) => Some((Ok::<Bytes, std::io::Error>(b), Some(d))),
            Step::Abort => {
                // Return Pending once so hyper flushes what was already written before the cut.
                tokio::task::yield_now().await;
                Some((
                    Err(std::io::Error::other(
                        "switchyard sim: connection dropped by fault",
                    )),
                    None,
                ))
            }
            Step::Stall => {
                // Nothing more, ever: the body ends when the client disconnects or the sim stops.
                std::future::pending::<()>().await;
                None
            }
            Step::End => None,
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    add_headers(
        &mut resp,
        &[
            ("content-type", content_type.to_owned()),
            ("cache-control", "no-cache".to_owned()),
        ],
    );
    add_headers(&mut resp, headers);
    resp
}
