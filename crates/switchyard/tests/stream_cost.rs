//! A streamed answer reports its cost as an SSE comment just before the client's end marker
//! (`: x-switchyard-cost-usd=…` before `data: [DONE]` or Anthropic's `message_stop`), equal to
//! the cost the ledger records, for pass-through and translated streams alike.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::SimProtocol;

const OPENAI_END: &str = "data: [DONE]\n\n";
const ANTHROPIC_END: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// The cost comment's value, asserting it sits right before `end`, which ends the stream.
fn cost_before_end(raw: &str, end: &str) -> String {
    let body = raw
        .strip_suffix(end)
        .unwrap_or_else(|| panic!("the stream does not end with {end:?}: {raw}"));
    let (_, comment) = body
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("{raw}"));
    let value = comment
        .strip_prefix(": x-switchyard-cost-usd=")
        .unwrap_or_else(|| panic!("no cost comment before the end marker: {raw}"));
    assert!(
        body.ends_with("\n\n"),
        "the comment is its own block: {raw}"
    );
    assert_eq!(raw.matches("x-switchyard-cost-usd").count(), 1, "{raw}");
    value.to_owned()
}

async fn openai_stream(gw: &Gateway, model: &str) -> String {
    let body = json!({"model": model, "stream": true,
        "messages": [{"role": "user", "content": "what does it cost"}]});
    let r = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

async fn anthropic_stream(gw: &Gateway, model: &str) -> String {
    let body = json!({"model": model, "stream": true, "max_tokens": 100,
        "messages": [{"role": "user", "content": "what does it cost"}]});
    let r = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn streams_end_with_their_cost_as_a_comment_matching_the_ledger() {
    let openai = sim("oa", SimProtocol::OpenAi).await;
    let anthropic = sim("an", SimProtocol::Anthropic).await;
    let config = format!(
        "{}{}{}{}{}[models.gpt]\ndeployments = [\"d_oa\"]\n\n[models.claude]\ndeployments = [\"d_an\"]\n",
        server_toml(""),
        provider_toml("oa", &openai, SimProtocol::OpenAi),
        provider_toml("an", &anthropic, SimProtocol::Anthropic),
        deployment_toml("d_oa", "oa", "gpt-4o"),
        deployment_toml("d_an", "an", "claude-sonnet-4"),
    );
    let mut gw = Gateway::start(&config);
    let costs = [
        cost_before_end(&openai_stream(&gw, "gpt").await, OPENAI_END), // pass-through
        cost_before_end(&openai_stream(&gw, "claude").await, OPENAI_END), // translated
        cost_before_end(&anthropic_stream(&gw, "claude").await, ANTHROPIC_END),
        cost_before_end(&anthropic_stream(&gw, "gpt").await, ANTHROPIC_END),
    ];
    gw.stop();
    let records = gw.ledger().await;
    let recorded: Vec<String> = records.iter().map(|r| r.record.cost.to_string()).collect();
    assert_eq!(recorded, costs);
    assert!(records.iter().all(|r| r.record.cost.0 > 0), "{recorded:?}");
}

#[tokio::test]
async fn a_broken_stream_carries_no_cost_comment() {
    let openai = sim("oa", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}[models.gpt]\ndeployments = [\"d_oa\"]\n",
        server_toml(""),
        provider_toml("oa", &openai, SimProtocol::OpenAi),
        deployment_toml("d_oa", "oa", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    set_faults(&openai, json!({"error_after_tokens": 2})).await;
    let raw = openai_stream(&gw, "gpt").await;
    assert!(!raw.contains("x-switchyard-cost-usd"), "{raw}");
    assert!(!raw.ends_with(OPENAI_END), "{raw}");
    let last: Value = serde_json::from_str(
        raw.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert!(last.get("error").is_some(), "{raw}");
}
