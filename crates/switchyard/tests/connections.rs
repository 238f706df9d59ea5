//! Connection hygiene against the real binary: slow and silent clients, connection and
//! in-flight limits with load shedding in the client's format, and a shutdown that keeps
//! its drain deadline whatever clients hold open.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard_sim::{RunningSim, SimProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway with one OpenAI model `m` and `server` settings.
async fn setup(server: &str) -> (RunningSim, Gateway) {
    let upstream = sim("up", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(server),
        provider_toml("up", &upstream, SimProtocol::OpenAi),
        deployment_toml("d", "up", "model-up"),
    );
    (upstream, Gateway::start(&config))
}

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// Raises this process's open-file limit to its hard limit (the gateway inherits it).
fn raise_fd_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < needed) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|c| c >= needed),
        "this test needs {needed} open files; the hard limit allows {now:?}"
    );
}

/// The value of an unlabelled gauge or counter in `/metrics`.
async fn metric(gw: &Gateway, name: &str) -> f64 {
    let text = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `/metrics` (at most 30 s) until `name` is at least `value`.
async fn wait_metric_at_least(gw: &Gateway, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = metric(gw, name).await;
        if now >= value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {now}, below {value}"
        );
        tokio::task::yield_now().await;
    }
}

/// SIGTERM without waiting.
fn sigterm(gw: &Gateway) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the gateway to exit (at most `limit`) and returns how long it took.
fn exit_within(gw: &mut Gateway, limit: Duration) -> Duration {
    let started = Instant::now();
    let code = gw.wait_exit(limit);
    assert_eq!(code, Some(0), "{}", gw.logs());
    started.elapsed()
}

/// A stream whose upstream stalls after its first token, so it stays in flight; returns the
/// open response once its first bytes arrived.
async fn stalled_stream(gw: &Gateway, upstream: &RunningSim) -> reqwest::Response {
    set_faults(upstream, json!({"stall_after_tokens": 1})).await;
    let mut body = chat("m", "one two three four five six");
    body["stream"] = json!(true);
    let mut response = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    response
}

/// Reads from `tcp` until the peer closes it; true if it closed within `limit`.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_header_flood_neither_starves_clients_nor_holds_shutdown() {
    const FLOOD: usize = 2_000;
    raise_fd_limit(FLOOD as u64 + 512);
    // Headers may take a minute, so the flood stays open for the whole test: what keeps the
    // gateway serving is that no connection can hold anything but its own descriptor.
    let (upstream, mut gw) =
        setup("header_read_timeout_ms = 60000\nidle_timeout_ms = 60000\ndrain_timeout_ms = 2000\n")
            .await;
    let address = addr(&gw);
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut tcp = TcpStream::connect(&address).await.unwrap();
        tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
            .await
            .unwrap();
        flood.push(tcp);
    }
    // Every flood connection is accepted and held by the gateway, not queued in the backlog.
    wait_metric_at_least(&gw, "switchyard_open_connections", FLOOD as f64).await;

    let started = Instant::now();
    let response = gw.post("/v1/chat/completions", &chat("m", "hello")).await;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let took = started.elapsed();
    assert!(answer["choices"][0]["message"]["content"].is_string());
    assert!(
        took < Duration::from_secs(1),
        "a legitimate request took {took:?} beside {FLOOD} partial-header connections"
    );

    // A stream in flight holds the drain until its deadline; the flood holds nothing.
    let stream = stalled_stream(&gw, &upstream).await;
    sigterm(&gw);
    let took = exit_within(&mut gw, Duration::from_secs(3));
    assert!(
        took < Duration::from_secs(3),
        "SIGTERM took {took:?} with a 2 s drain deadline"
    );
    drop(stream);
    for tcp in &mut flood {
        assert!(closed_within(tcp, Duration::from_secs(5)).await);
    }
    // The stream cut at the deadline still has its record, beside the answered request.
    let records = gw.ledger().await;
    assert_eq!(records.len(), 2, "{records:?}");
}

#[tokio::test]
async fn silent_and_partial_connections_are_closed_after_the_header_deadline() {
    let (_upstream, gw) = setup("header_read_timeout_ms = 300\nidle_timeout_ms = 60000\n").await;
    let mut silent = TcpStream::connect(addr(&gw)).await.unwrap();
    let mut partial = TcpStream::connect(addr(&gw)).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(10)).await);
    // A prompt client on a fresh connection is unaffected.
    let r = client()
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (_upstream, gw) = setup("idle_timeout_ms = 300\n").await;
    let mut tcp = TcpStream::connect(addr(&gw)).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut tcp, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused() {
    let (_upstream, gw) = setup("body_read_timeout_ms = 300\n").await;
    let mut tcp = TcpStream::connect(addr(&gw)).await.unwrap();
    tcp.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            response.extend_from_slice(&buf[..n]);
            if n == 0 || response.windows(4).any(|w| w == b"}}\n\n") || response.ends_with(b"}}") {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn requests_over_max_in_flight_are_shed_in_the_clients_format() {
    // A short stall limit ends the held stream once its client is gone.
    let (upstream, gw) = setup("max_in_flight = 1\n[server.timeouts]\nstall_ms = 1000\n").await;
    let stream = stalled_stream(&gw, &upstream).await;

    let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    let r = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(
            json!({"model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");

    // Probes and scrapes are never shed.
    let r = client()
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(metric(&gw, "switchyard_requests_shed_total{front_door=\"openai\"}").await >= 1.0);

    // The place frees once the stream is over: the stall limit ends it with an error event.
    let rest = stream.text().await.unwrap();
    assert!(rest.contains("error"), "{rest}");
    let deadline = Instant::now() + Duration::from_secs(30);
    set_faults(&upstream, json!({})).await;
    loop {
        let r = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "the shed place was never freed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn connections_over_max_connections_get_a_503_and_are_closed() {
    let (_upstream, gw) = setup("max_connections = 2\nidle_timeout_ms = 60000\n").await;
    // Two kept-alive connections, each known accepted because it was answered.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(addr(&gw)).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(tcp);
    }
    let mut third = TcpStream::connect(addr(&gw)).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(text.contains("too_many_connections"), "{text}");
    // Closing one frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A refused connection may also be reset before its 503 is read.
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", gw.url))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's place was never freed"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn sigterm_stops_accepting_closes_idle_connections_and_finishes_requests_in_flight() {
    // A long drain deadline: the gateway must exit as soon as the request in flight is done,
    // not when the half-open connection's deadline would pass.
    let (upstream, mut gw) =
        setup("drain_timeout_ms = 30000\nheader_read_timeout_ms = 60000\n").await;
    let mut half_open = TcpStream::connect(addr(&gw)).await.unwrap();
    half_open.write_all(b"GET /heal").await.unwrap();
    set_faults(&upstream, json!({"token_delay_ms": 100})).await;
    let mut body = chat("m", "one two three four five six seven eight");
    body["stream"] = json!(true);
    let mut response = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let mut text = String::from_utf8(response.chunk().await.unwrap().unwrap().to_vec()).unwrap();

    let started = Instant::now();
    sigterm(&gw);
    gw.wait_for_log("stopped accepting connections");
    assert!(closed_within(&mut half_open, Duration::from_secs(10)).await);
    assert!(
        TcpStream::connect(addr(&gw)).await.is_err(),
        "the gateway still accepts connections after SIGTERM"
    );
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");
    exit_within(&mut gw, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the gateway waited for its drain deadline"
    );
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served_through_the_same_listener() {
    let (_upstream, gw) = setup("max_in_flight = 4\n").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(chat("m", "hello").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string());
}
