//! Traces and logs: a request that fails over once exports a server span with two client
//! attempt spans (GenAI attributes) to an OTLP/HTTP receiver, and every log line of the
//! request carries its request id.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use switchyard_sim::SimProtocol;
use tokio::net::TcpListener;

/// A minimal OTLP/HTTP (JSON) trace receiver: keeps every exported span.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                                for span in ss["spans"].as_array().into_iter().flatten() {
                                    sink.lock().unwrap().push(span.clone());
                                }
                            }
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            bytes::Bytes::from_static(b"{}"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), service)
                    .await;
            });
        }
    });
    (url, spans)
}

fn attr(span: &Value, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            v["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["intValue"].as_str().map(str::to_string))
                .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
                .unwrap_or_else(|| v.to_string())
        })
}

// Multi-threaded: the receiver must keep answering while the test thread waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_exports_a_request_span_with_two_attempt_spans_and_logs_carry_the_request_id() {
    let (endpoint, spans) = receiver().await;
    let p1 = sim("p1", SimProtocol::OpenAi).await;
    let p2 = sim("p2", SimProtocol::OpenAi).await;
    let config = format!(
        // A 500 fails over at once under this table (the default retries it in place first).
        "{}{}{}{}{}[models.m]\ndeployments = [\"d1\", \"d2\"]\nretry = {{ on = {{ server_error = \"failover\" }} }}\n",
        server_toml(""),
        provider_toml("p1", &p1, SimProtocol::OpenAi),
        provider_toml("p2", &p2, SimProtocol::OpenAi),
        deployment_toml("d1", "p1", "gpt-4o"),
        deployment_toml("d2", "p2", "gpt-4o"),
    );
    let mut gw = Gateway::start_with_env(
        tempfile::tempdir().unwrap(),
        &config,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    set_faults(&p1, json!({"fail_next": 1, "fail_status": 500})).await;
    let r = gw
        .post("/v1/chat/completions", &chat("m", "hello world"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    r.bytes().await.unwrap();
    // Shutdown flushes the exporter.
    assert_eq!(gw.stop(), Some(0));

    let spans = spans.lock().unwrap().clone();
    let request = spans
        .iter()
        .find(|s| attr(s, "request_id").as_deref() == Some(&request_id))
        .unwrap_or_else(|| panic!("no request span for {request_id} in {spans:#?}"));
    assert_eq!(request["name"], "chat m");
    assert_eq!(
        attr(request, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    assert_eq!(attr(request, "gen_ai.request.model").as_deref(), Some("m"));
    assert_eq!(
        attr(request, "gen_ai.provider.name").as_deref(),
        Some("openai")
    );
    assert_eq!(
        attr(request, "gen_ai.usage.input_tokens").as_deref(),
        Some("3")
    );
    assert_eq!(
        attr(request, "gen_ai.usage.output_tokens").as_deref(),
        Some("4")
    );
    assert_eq!(attr(request, "switchyard.attempts").as_deref(), Some("2"));
    assert_eq!(
        attr(request, "switchyard.deployment").as_deref(),
        Some("d2")
    );

    let mut attempts: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == request["spanId"])
        .collect();
    attempts.sort_by_key(|s| {
        s["startTimeUnixNano"]
            .as_str()
            .unwrap_or_default()
            .parse::<u128>()
            .unwrap_or(0)
    });
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    assert_eq!(attempts[0]["traceId"], request["traceId"]);
    assert_eq!(
        attr(attempts[0], "switchyard.deployment").as_deref(),
        Some("d1")
    );
    assert_eq!(
        attr(attempts[0], "error.type").as_deref(),
        Some("upstream_server")
    );
    assert_eq!(
        attr(attempts[1], "switchyard.deployment").as_deref(),
        Some("d2")
    );
    assert_eq!(attr(attempts[1], "error.type"), None);
    assert_eq!(attempts[1]["name"], "chat gpt-4o");

    // Every log line about this request names it.
    let logs = gw.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("attempt failed") || l.contains("request finished"))
        .collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in lines {
        assert!(
            line.contains(&request_id),
            "a log line without the request id: {line}"
        );
    }
}
