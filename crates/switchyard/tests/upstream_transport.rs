//! Transport behaviour towards upstreams that the simulator cannot show: the gateway closes
//! the upstream connection when its client goes away, and speaks h2c when configured to.
//! The upstreams here are minimal servers written in the test, standing where a cloud would be.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn config_for(upstream: &str, extra_provider: &str) -> String {
    format!(
        "{}[providers.raw]\nkind = \"openai\"\nbase_url = \"{upstream}/v1\"\napi_key = \"k\"\n{extra_provider}cloud = \"self_hosted\"\nregion = \"lab\"\njurisdiction = \"us\"\n\n{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        deployment_toml("d", "raw", "upstream-model"),
    )
}

/// Reads one HTTP/1.1 request head and body (by Content-Length) from `stream`.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a full request arrived");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

/// Waits until the peer closes the connection (read returns 0 or fails); bounded.
async fn wait_for_close(stream: &mut tokio::net::TcpStream) {
    let mut chunk = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the gateway kept the upstream connection open after its client left"
    );
}

#[tokio::test]
async fn a_client_leaving_mid_stream_cancels_the_upstream_call() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", upstream.local_addr().unwrap());
    let gw = Gateway::start(&config_for(&url, ""));

    let server = tokio::spawn(async move {
        let (mut conn, _) = upstream.accept().await.unwrap();
        let request = read_request(&mut conn).await;
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "upstream-model",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "first"}, "finish_reason": null}]});
        let event = format!("data: {chunk}\n\n");
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
            .await
            .unwrap();
        // The answer never finishes: only the client's departure can end this call.
        wait_for_close(&mut conn).await;
        request
    });

    let mut req = chat("m", "a long story please");
    req["stream"] = json!(true);
    let response = gw.post("/v1/chat/completions", &req).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    drop(body);

    let request = server.await.unwrap();
    assert!(
        request.contains("\"model\":\"upstream-model\""),
        "{request}"
    );
}

#[tokio::test]
async fn a_client_leaving_a_pending_call_cancels_the_upstream_call() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", upstream.local_addr().unwrap());
    let gw = Gateway::start(&config_for(&url, ""));
    let server = tokio::spawn(async move {
        let (mut conn, _) = upstream.accept().await.unwrap();
        read_request(&mut conn).await;
        wait_for_close(&mut conn).await;
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let result = impatient
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(chat("m", "never answered").to_string())
        .send()
        .await;
    assert!(
        result.is_err(),
        "the upstream never answers, so the client times out"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn h2c_upstreams_are_spoken_to_in_http2() {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", upstream.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (conn, _) = upstream.accept().await.unwrap();
        let tx = std::sync::Mutex::new(Some(tx));
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(req.version());
            }
            async move {
                let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "upstream-model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "over h2"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}});
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(bytes::Bytes::from(body.to_string())))
                        .unwrap(),
                )
            }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(conn), service)
            .await;
    });
    let gw = Gateway::start(&config_for(&url, "http2_prior_knowledge = true\n"));
    let response = gw.post("/v1/chat/completions", &chat("m", "hi")).await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "over h2");
    assert_eq!(rx.await.unwrap(), hyper::Version::HTTP_2);
}
