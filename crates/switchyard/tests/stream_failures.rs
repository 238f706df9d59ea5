//! Stream honesty: a stream that breaks after its first event (cut, stalled, malformed, or an
//! upstream error event) and that no other deployment can continue (here the spare is an
//! OpenAI deployment, which takes no prefill) ends with the client protocol's error event,
//! never with a clean end marker, with no second upstream call; and what was consumed is
//! still metered. `stream_recovery.rs` covers the continued ones.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{RunningSim, SimProtocol};

#[derive(Clone, Copy, Debug)]
enum Door {
    OpenAi,
    Anthropic,
}

/// A model served by `protocol` first and by a spare OpenAI provider second, with a short
/// inter-token (stall) timeout.
async fn setup(protocol: SimProtocol) -> (RunningSim, RunningSim, Gateway) {
    let first = sim("first", protocol).await;
    let spare = sim("spare", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}{}[models.m]\ndeployments = [\"d1\", \"d2\"]\n",
        server_toml("[server.timeouts]\nstall_ms = 300\n"),
        provider_toml("first", &first, protocol),
        provider_toml("spare", &spare, SimProtocol::OpenAi),
        deployment_toml("d1", "first", "model-one"),
        deployment_toml("d2", "spare", "model-two"),
    );
    let gw = Gateway::start(&config);
    (first, spare, gw)
}

/// Streams "one two three four five six" and returns the raw SSE text.
async fn stream(gw: &Gateway, door: Door) -> String {
    let prompt = "one two three four five six";
    let response = match door {
        Door::OpenAi => {
            let mut body = chat("m", prompt);
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
            gw.post("/v1/chat/completions", &body).await
        }
        Door::Anthropic => client()
            .post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(
                json!({"model": "m", "max_tokens": 100, "stream": true,
                "messages": [{"role": "user", "content": prompt}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap(),
    };
    assert_eq!(
        response.status(),
        200,
        "the stream had started before it broke"
    );
    response.text().await.unwrap()
}

/// Asserts the stream ended with the protocol's error event and no end marker.
fn assert_ends_with_error(door: Door, text: &str) {
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    let last = events.last().unwrap();
    match door {
        Door::OpenAi => {
            assert!(!text.contains("data: [DONE]"), "{text}");
            let data: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
            assert!(data["error"]["message"].is_string(), "{text}");
            assert!(data["error"]["type"].is_string(), "{text}");
        }
        Door::Anthropic => {
            assert!(!text.contains("event: message_stop"), "{text}");
            assert!(last.starts_with("event: error\n"), "{text}");
            let data: Value =
                serde_json::from_str(last.lines().nth(1).unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], "error", "{text}");
            assert!(data["error"]["type"].is_string(), "{text}");
        }
    }
    // Some content arrived before the break.
    assert!(text.contains("first "), "{text}");
}

async fn check(door: Door, protocol: SimProtocol, faults: Value) -> Value {
    let (first, spare, mut gw) = setup(protocol).await;
    set_faults(&first, faults.clone()).await;
    let text = stream(&gw, door).await;
    assert_ends_with_error(door, &text);
    assert_eq!(
        stats(&spare).await["requests"],
        0,
        "{door:?} {protocol:?} {faults}: no second upstream call"
    );
    assert_eq!(stats(&first).await["requests"], 1);
    let end = gw.wait_for_log("request finished");
    assert_ne!(end["fields"]["outcome"], "ok", "{end}");
    end["fields"].clone()
}

#[tokio::test]
async fn cut_stalled_and_malformed_streams_end_with_an_error_for_both_front_doors() {
    for door in [Door::OpenAi, Door::Anthropic] {
        for protocol in [
            SimProtocol::OpenAi,
            SimProtocol::Anthropic,
            SimProtocol::Bedrock,
            SimProtocol::Gemini,
        ] {
            check(door, protocol, json!({"drop_after_tokens": 2})).await;
            check(door, protocol, json!({"malformed_after_tokens": 2})).await;
            // The stall timeout is 300 ms; the third token comes 5 s after the second.
            let stalled = check(
                door,
                protocol,
                json!({"token_delay_ms": 5000, "ttft_ms": 0}),
            )
            .await;
            assert_eq!(
                stalled["outcome"], "upstream_timeout",
                "{door:?} {protocol:?}: {stalled}"
            );
        }
    }
}

#[tokio::test]
async fn a_mid_stream_exception_is_an_error_event_and_consumption_is_still_metered() {
    // Bedrock reports usage only in its final metadata frame, so everything is estimated.
    let end = check(
        Door::OpenAi,
        SimProtocol::Bedrock,
        json!({"error_after_tokens": 2, "fail_status": 503}),
    )
    .await;
    assert_eq!(end["outcome"], "overloaded", "{end}");
    assert_eq!(end["output_tokens"], 2, "{end}");
    assert!(end["input_tokens"].as_u64().unwrap() > 0, "{end}");
    assert_eq!(end["usage_estimated"], true, "{end}");

    // Anthropic reports input tokens in message_start: they are exact, output is estimated.
    let end = check(
        Door::Anthropic,
        SimProtocol::Anthropic,
        json!({"drop_after_tokens": 3}),
    )
    .await;
    assert_eq!(end["input_tokens"], 7, "6 words + 1 for the message: {end}");
    assert_eq!(end["output_tokens"], 3, "{end}");
    assert_eq!(end["usage_estimated"], true, "{end}");
}
