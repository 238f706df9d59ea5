//! The client-facing edge: the accept loop and each connection's life, built on hyper's own
//! connection builder so its header-read timeout and HTTP/2 handling apply. It bounds what a
//! client can hold: open connections (`max_connections`, one more is answered 503 and
//! closed), requests in flight (`max_in_flight`, one more is shed with 503 and Retry-After in
//! the client's own error format), the time to send headers (`header_read`) and a body
//! (`body_read`), and idle connections (`idle`). A handler that panics answers 500 in the
//! client's format instead of dropping the connection.
//!
//! Shutdown stops accepting, closes every connection with no request in flight at once (idle
//! keep-alive and half-sent requests alike), lets the others finish their requests for up to
//! `drain`, then cuts what is left, so a slow or malicious client cannot hold the process.

use crate::config::ConnectionSettings;
use crate::error::ApiError;
use crate::request::ClientProtocol;
use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use switchyard_types::ErrorKind;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// File descriptors kept free of client connections: upstream pools, databases, logs.
const FD_HEADROOM: u64 = 256;

/// How long the accept loop pauses after an accept error such as EMFILE, so it does not spin
/// while descriptors are exhausted.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// What a shed request is told to wait before retrying.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A request body that did not arrive within `body_read`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub(crate) struct BodyTimeout(pub(crate) Duration);

/// State every connection of one listener shares.
struct Shared {
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    in_flight: Arc<Semaphore>,
    limits: ConnectionSettings,
    /// Cancelled when shutdown starts: connections close once no request is in flight.
    stop: CancellationToken,
    /// Cancelled when the drain deadline passes: every connection closes at once.
    cut: CancellationToken,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module docs).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ConnectionSettings {
        max_connections: descriptor_bound(limits.max_connections),
        ..limits
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let shared = Arc::new(Shared {
        app,
        builder,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        limits,
        stop: CancellationToken::new(),
        cut: CancellationToken::new(),
    });
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusal = refusal();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Per-connection errors (the peer reset before accept) need no pause; running
                // out of descriptors does.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // A fresh socket's send buffer is empty, so this write does not block; a client
            // that cannot take it only misses the explanation.
            let _ = tcp.try_write(&refusal);
            crate::metrics::connection_refused();
            continue;
        };
        // Streams are written event by event: without TCP_NODELAY, Nagle holds small events.
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection(tcp, shared.clone(), permit));
    }
    drop(listener);
    tracker.close();
    shared.stop.cancel();
    tracing::info!(
        connections = tracker.len(),
        "stopped accepting connections; draining requests in flight"
    );
    if tokio::time::timeout(limits.drain, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            drain_ms = limits.drain.as_millis() as u64,
            "drain deadline passed: cutting connections with requests in flight"
        );
        shared.cut.cancel();
        tracker.wait().await;
    }
}

/// `max_connections`, lowered if the process may not open that many descriptors (after
/// raising its soft limit as far as the hard limit allows), so accepting never fails with
/// EMFILE: past the bound a client gets a clean 503 instead.
fn descriptor_bound(max_connections: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let wanted = max_connections as u64 + FD_HEADROOM;
    let limit = getrlimit(Resource::Nofile);
    let mut current = limit.current.unwrap_or(u64::MAX);
    if current < wanted {
        let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
        if setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        )
        .is_ok()
        {
            current = raised;
        }
    }
    if current >= wanted {
        return max_connections;
    }
    let bound = current.saturating_sub(FD_HEADROOM).max(1) as usize;
    tracing::warn!(
        max_connections,
        bound,
        descriptors = current,
        "the open-file limit is too low for server.max_connections; raise `ulimit -n`"
    );
    bound
}

/// The bytes a connection over `max_connections` gets before it is closed: a 503 in the
/// OpenAI format (the request, and so its front door, is not read).
fn refusal() -> Vec<u8> {
    let (status, body) = ClientProtocol::OpenAiChat.encode_error(
        ErrorKind::NoCapacity,
        "The gateway has too many open connections; retry shortly.",
        None,
        Some("too_many_connections"),
    );
    let mut out = format!(
        "HTTP/1.1 {status} Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        SHED_RETRY_AFTER.as_secs(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// One client connection, from accept to close.
async fn connection(tcp: TcpStream, shared: Arc<Shared>, _slot: OwnedSemaphorePermit) {
    let _open = crate::metrics::OpenConnection::new();
    // Requests of this connection in flight, response bodies included.
    let (busy_tx, mut busy) = watch::channel(0usize);
    let busy_tx = Arc::new(busy_tx);
    let service = {
        let shared = shared.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = Busy::enter(&busy_tx);
            handle(shared.clone(), req, guard)
        })
    };
    let conn = shared.builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let limits = &shared.limits;
    let mut draining = false;
    let mut served = false;
    let mut idle_since = Instant::now();
    loop {
        let idle = *busy.borrow_and_update() == 0;
        // Until its first request a connection has `header_read` to send one (hyper's own
        // timer starts only once HTTP/1 is detected, and a silent client sends nothing).
        let wait = if served {
            limits.idle
        } else {
            limits.header_read
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = busy.changed() => {
                if changed.is_err() {
                    // The service is gone, so the connection is ending on its own.
                    let _ = conn.as_mut().await;
                    return;
                }
                served = true;
                if *busy.borrow() == 0 {
                    if draining {
                        return;
                    }
                    idle_since = Instant::now();
                }
            }
            () = tokio::time::sleep_until(idle_since + wait), if idle => return,
            () = shared.stop.cancelled(), if !draining => {
                if idle {
                    return;
                }
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = shared.cut.cancelled() => return,
        }
    }
}

/// Counts a request in its connection's in-flight count until dropped (with its response
/// body).
struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    fn enter(tx: &Arc<watch::Sender<usize>>) -> Busy {
        tx.send_modify(|n| *n += 1);
        Busy(tx.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The front door whose error format a path answers in.
fn dialect_of(path: &str) -> ClientProtocol {
    if path.starts_with("/v1/messages") {
        ClientProtocol::AnthropicMessages
    } else {
        ClientProtocol::OpenAiChat
    }
}

/// Paths never shed: probes and scrapes must still answer while the gateway is saturated.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// One request: shed it past `max_in_flight`, bound its body's arrival, run the routes and
/// turn a panic into a 500; the response body holds the request's place until it is sent.
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    busy: Busy,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let dialect = dialect_of(path);
    let permit = if exempt(path) {
        None
    } else {
        match shared.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                crate::metrics::shed(dialect);
                let mut error = ApiError::new(
                    ErrorKind::NoCapacity,
                    "The gateway is at its limit of requests in flight; retry shortly.",
                )
                .with_code("overloaded");
                error.retry_after = Some(SHED_RETRY_AFTER);
                return Ok(error.render(dialect));
            }
        }
    };
    let req = req.map(|body| Deadline::new(body, shared.limits.body_read));
    let mut app = shared.app.clone();
    let routed = AssertUnwindSafe(tower_service::Service::call(&mut app, req))
        .catch_unwind()
        .await;
    let response = match routed {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a request handler panicked");
            ApiError::new(
                ErrorKind::Internal,
                "The gateway failed while serving this request.",
            )
            .with_code("internal_error")
            .render(dialect)
        }
    };
    Ok(response.map(|body| {
        Body::new(Held {
            body,
            _busy: busy,
            _permit: permit,
        })
    }))
}

/// A response body that keeps its request counted (per connection and in flight) until hyper
/// has sent it and dropped it.
struct Held {
    body: Body,
    _busy: Busy,
    _permit: Option<OwnedSemaphorePermit>,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyTimeout`] if it is not complete within its limit
/// from the request's arrival.
pub(crate) struct Deadline<B> {
    body: B,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B: HttpBody> Deadline<B> {
    /// Starts the clock now; an empty body needs none.
    pub(crate) fn new(body: B, limit: Duration) -> Deadline<B> {
        let timer = (!body.is_end_stream()).then(|| Box::pin(tokio::time::sleep(limit)));
        Deadline { body, limit, timer }
    }
}

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let expired = this
                    .timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::routing::post;

    /// Serves `app` on a free port until the test ends.
    async fn start(app: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(
            listener,
            app,
            ConnectionSettings::default(),
            std::future::pending(),
        ));
        url
    }

    async fn boom() -> &'static str {
        panic!("handler bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_clients_format_and_the_server_goes_on() {
        let app = Router::new()
            .route("/v1/messages", post(boom))
            .route("/v1/chat/completions", post(boom))
            .route("/ok", post(|| async { "fine" }));
        let url = start(app).await;
        let client = reqwest::Client::new();
        let anthropic = client
            .post(format!("{url}/v1/messages"))
            .send()
            .await
            .unwrap();
        assert_eq!(anthropic.status(), 500);
        let body: serde_json::Value =
            serde_json::from_slice(&anthropic.bytes().await.unwrap()).unwrap();
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "api_error", "{body}");
        let openai = client
            .post(format!("{url}/v1/chat/completions"))
            .send()
            .await
            .unwrap();
        assert_eq!(openai.status(), 500);
        let body: serde_json::Value =
            serde_json::from_slice(&openai.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
        // The same pooled connection still serves.
        let ok = client.post(format!("{url}/ok")).send().await.unwrap();
        assert_eq!(ok.status(), 200);
    }
}
