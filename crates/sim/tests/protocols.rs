//! End-to-end checks of every protocol and fault kind against a `RunningSim` on port 0.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use serde_json::{json, Value};
use switchyard_sim::{Faults, RunningSim, SimProtocol, SimSpec};

mod common;

const KEY: &str = "k1";

async fn start(name: &str, protocol: SimProtocol) -> RunningSim {
    let spec = SimSpec {
        name: name.into(),
        protocol,
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
    };
    RunningSim::start(spec).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello sim world"}]})
}

/// `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn openai_non_stream_stream_and_tools() {
    let sim = start("oa", SimProtocol::OpenAi).await;
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let r = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "oa says: hello sim world"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    assert_eq!(v["service_tier"], "default");

    let body = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.iter().all(|c| c["obfuscation"].is_string()));
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["usage"].is_null()));
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);

    // A raw body: `json!` would sort the properties, and their order matters here.
    let tools = r#"{"model": "m", "messages": [{"role": "user", "content": "Paris now"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}}}]}"#;
    let req = client()
        .post(&url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(tools);
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"q":"Paris","n":42}"#
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    let r = client()
        .post(&url)
        .bearer_auth("bad")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(sim.controls().stats().requests, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_compatible_has_no_obfuscation() {
    let sim = start("vl", SimProtocol::OpenAiCompatible).await;
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let body = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("obfuscation") && !body.contains("service_tier"));
    sim.shutdown().await;
}

#[tokio::test]
async fn azure_routes_and_api_version() {
    let sim = start("az", SimProtocol::AzureOpenAi).await;
    let base = format!("{}/openai/deployments/dep/chat/completions", sim.base_url());
    let r = client()
        .post(&base)
        .header("api-key", KEY)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"code": "404", "message": "Resource not found"}})
    );
    let url = format!("{base}?api-version=2024-10-21");
    let v: Value = client()
        .post(&url)
        .header("api-key", KEY)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["model"], "dep-2024-08-06");
    assert!(v["prompt_filter_results"].is_array());
    let body = client()
        .post(&url)
        .header("api-key", KEY)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first: Value = serde_json::from_str(&sse_data(&body)[0]).unwrap();
    assert_eq!(
        (
            first["object"].as_str(),
            first["choices"].as_array().map(Vec::len)
        ),
        (Some(""), Some(0))
    );
    assert_eq!(sim.controls().stats().by_model.get("dep"), Some(&2));
    sim.shutdown().await;
}

#[tokio::test]
async fn anthropic_validation_and_stream_order() {
    let sim = start("an", SimProtocol::Anthropic).await;
    let url = format!("{}/v1/messages", sim.base_url());
    let msg = json!({"model": "c", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi there"}]});
    let r = client()
        .post(&url)
        .header("x-api-key", KEY)
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("invalid_request_error"))
    );
    let no_max = json!({"model": "c", "messages": []});
    let r = client()
        .post(&url)
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&no_max)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = client()
        .post(&url)
        .bearer_auth(KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&msg)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    let want = [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(events, want);
    sim.shutdown().await;
}

/// A Bedrock request signed with the simulator's test credentials.
fn signed(url: &str, body: &Value) -> reqwest::Request {
    common::signed_post(
        url,
        body,
        KEY,
        switchyard_sim::SIM_AWS_SECRET_ACCESS_KEY,
        std::time::SystemTime::now(),
    )
}

#[tokio::test]
async fn bedrock_auth_and_event_stream() {
    let sim = start("br", SimProtocol::Bedrock).await;
    let url = format!(
        "{}/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        sim.base_url()
    );
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi there"}]}]});
    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("MissingAuthenticationTokenException"));
    let r = client().execute(signed(&url, &body)).await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut bytes = r.bytes().await.unwrap();
    let mut dec = MessageFrameDecoder::new();
    let mut names = Vec::new();
    while let DecodedFrame::Complete(m) = dec.decode_frame(&mut bytes).unwrap() {
        let h = m
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .unwrap();
        names.push(h.value().as_string().unwrap().as_str().to_owned());
    }
    assert_eq!(
        names,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert_eq!(
        sim.controls()
            .stats()
            .by_model
            .get("us.anthropic.claude-3-haiku-20240307-v1:0"),
        Some(&2)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn gemini_sse_and_json_array_streams() {
    let sim = start("ge", SimProtocol::Gemini).await;
    let base = format!("{}/v1beta/models/gemini-2.5-flash", sim.base_url());
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]});
    let sse = client()
        .post(format!("{base}:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sse.ends_with("\r\n\r\n"));
    let chunks: Vec<Value> = sse
        .split("\r\n\r\n")
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::from_str(&s[6..]).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[3]["usageMetadata"]["candidatesTokenCount"], 4);
    let arr = client()
        .post(format!("{base}:streamGenerateContent?key={KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed: Vec<Value> = serde_json::from_str(&arr).unwrap();
    assert_eq!(parsed.len(), 4);
    let r = client()
        .post(format!("{base}:generateContent"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "PERMISSION_DENIED"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn vertex_adds_create_time_and_traffic_type() {
    let sim = start("vx", SimProtocol::Vertex).await;
    let url = format!(
        "{}/v1beta1/projects/p/locations/us-central1/publishers/google/models/g:generateContent",
        sim.base_url()
    );
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let v: Value = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "vx says: hi"
    );
    assert!(v["createTime"].is_string());
    assert_eq!(v["usageMetadata"]["trafficType"], "ON_DEMAND");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_latency_fail_drop_error_and_control_api() {
    let sim = start("oa", SimProtocol::OpenAi).await;
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let faults_url = format!("{}/_sim/faults", sim.base_url());
    let f = json!({"latency_ms": 50, "fail_next": 1, "fail_status": 429, "retry_after_s": 2});
    assert!(client()
        .post(&faults_url)
        .json(&f)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let t = Instant::now();
    let r = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );
    assert_eq!(
        client()
            .post(&url)
            .bearer_auth(KEY)
            .json(&chat_body(false))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    sim.controls().set_faults(Faults {
        drop_after_tokens: Some(2),
        ..Faults::default()
    });
    let r = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut r = r;
    let mut got = Vec::new();
    let ended = loop {
        match r.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(ended.is_err(), "a dropped stream must not end cleanly");
    let got = String::from_utf8(got).unwrap();
    assert!(got.contains("\"oa \"") && !got.contains("[DONE]"), "{got}");

    sim.controls().set_faults(Faults {
        error_after_tokens: Some(1),
        ..Faults::default()
    });
    let body = client()
        .post(&url)
        .bearer_auth(KEY)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("[DONE]"));
    assert!(body.contains("\"server_error\""));

    client().delete(&faults_url).send().await.unwrap();
    let stats: Value = client()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["failures_injected"], 1);
    assert_eq!(stats["streams_dropped"], 1);
    assert_eq!(stats["stream_errors_injected"], 1);
    assert_eq!(stats["by_path"]["/v1/chat/completions"], 4);
    assert_eq!(stats["last_request"]["body"]["stream"], true);
    client()
        .post(format!("{}/_sim/stats/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.controls().stats().requests, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_ends_on_client_timeout_and_shutdown() {
    let sim = start("an", SimProtocol::Anthropic).await;
    sim.controls().set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let url = format!("{}/v1/messages", sim.base_url());
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = short.post(&url).json(&json!({})).send().await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(sim.controls().stats().hangs, 1);
    // A hung request still open at shutdown is closed, not leaked.
    let pending = tokio::spawn(client().post(url).json(&json!({})).send());
    while sim.controls().stats().hangs < 2 {
        tokio::task::yield_now().await;
    }
    sim.shutdown().await;
    assert!(pending.await.unwrap().is_err());
}

#[tokio::test]
async fn malformed_frame_fault_on_bedrock() {
    let sim = start("br", SimProtocol::Bedrock).await;
    sim.controls().set_faults(Faults {
        malformed_after_tokens: Some(1),
        ..Faults::default()
    });
    let url = format!("{}/model/m/converse-stream", sim.base_url());
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi there"}]}]});
    let r = client().execute(signed(&url, &body)).await.unwrap();
    // The body is cut after the bad frame; whatever arrived, decoding it must fail.
    let bytes = r.bytes().await.unwrap_or_default();
    let mut buf = bytes.clone();
    let mut dec = MessageFrameDecoder::new();
    let mut failed = bytes.is_empty();
    loop {
        match dec.decode_frame(&mut buf) {
            Ok(DecodedFrame::Complete(_)) => continue,
            Ok(DecodedFrame::Incomplete) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
    assert_eq!(sim.controls().stats().streams_dropped, 1);
    sim.shutdown().await;
}

/// The content faults answer with each protocol's real error, which the gateway's codecs read
/// as the matching kind; Bedrock and Gemini refuse content in-band, so there the filter fault
/// does nothing.
#[tokio::test]
async fn context_window_and_content_filter_faults_speak_each_protocol() {
    use switchyard_protocol::upstream::upstream_codec;
    use switchyard_types::{ErrorKind, ProviderKind};
    let cases = [
        (
            SimProtocol::OpenAi,
            ProviderKind::OpenAi,
            Some("content_filter"),
        ),
        (
            SimProtocol::AzureOpenAi,
            ProviderKind::AzureOpenAi,
            Some("content_filter"),
        ),
        (
            SimProtocol::Anthropic,
            ProviderKind::Anthropic,
            Some("invalid_request_error"),
        ),
        (SimProtocol::Bedrock, ProviderKind::Bedrock, None),
        (SimProtocol::Gemini, ProviderKind::Gemini, None),
    ];
    for (protocol, kind, filter_code) in cases {
        let sim = start("s", protocol).await;
        let base = sim.base_url();
        let send = || async {
            let text = json!([{"text": "one two three four"}]);
            let request = match protocol {
                SimProtocol::OpenAi => client()
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&chat_body(false))
                    .build()
                    .unwrap(),
                SimProtocol::AzureOpenAi => client()
                    .post(format!(
                        "{base}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
                    ))
                    .header("api-key", KEY)
                    .json(&chat_body(false))
                    .build()
                    .unwrap(),
                SimProtocol::Anthropic => client()
                    .post(format!("{base}/v1/messages"))
                    .header("x-api-key", KEY)
                    .header("anthropic-version", "2023-06-01")
                    .json(&json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "one two three four"}]}))
                    .build()
                    .unwrap(),
                SimProtocol::Bedrock => signed(
                    &format!("{base}/model/amazon.nova-lite-v1%3A0/converse"),
                    &json!({"messages": [{"role": "user", "content": text}]}),
                ),
                _ => client()
                    .post(format!(
                        "{base}/v1beta/models/gemini-2.5-flash:generateContent?key={KEY}"
                    ))
                    .json(&json!({"contents": [{"role": "user", "parts": text}]}))
                    .build()
                    .unwrap(),
            };
            let r = client().execute(request).await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.unwrap();
            (
                status,
                upstream_codec(kind).decode_error(status, &headers, &body),
            )
        };
        sim.controls().set_faults(Faults {
            context_window: Some(2),
            ..Faults::default()
        });
        let (status, e) = send().await;
        assert_eq!(
            (status, e.kind),
            (400, ErrorKind::ContextLengthExceeded),
            "{protocol:?}: {e:?}"
        );
        sim.controls().set_faults(Faults {
            content_filter: true,
            ..Faults::default()
        });
        let (status, e) = send().await;
        match filter_code {
            Some(code) => {
                assert_eq!(
                    (status, e.kind),
                    (400, ErrorKind::ContentFilter),
                    "{protocol:?}"
                );
                assert_eq!(e.code.as_deref(), Some(code));
            }
            None => assert_eq!(status, 200, "{protocol:?}"),
        }
        assert_eq!(
            sim.controls().stats().content_errors_injected,
            1 + u64::from(filter_code.is_some())
        );
    }
}
