//! Nothing silently dropped: for each front door × upstream protocol, every request field the
//! front door knows either reaches the upstream (read back from the simulator's record of the
//! last request, in the upstream's own form) or is refused with a 400 in the client's format
//! naming it, before anything is sent upstream.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{RunningSim, SimProtocol};

/// What one field must do on one upstream protocol.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Reaches the upstream at this JSON pointer of its body.
    At(&'static str),
    /// Is refused with a 400 whose message contains this.
    Refused(&'static str),
}
use Want::{At, Refused};

/// The upstream protocols of the matrix and the column of the tables below each one reads.
const UPSTREAMS: [(SimProtocol, &str, usize); 6] = [
    (SimProtocol::OpenAi, "gpt-4o", 0),
    (SimProtocol::AzureOpenAi, "gpt4o-prod", 0),
    (SimProtocol::OpenAiCompatible, "llama-3.1-70b", 0),
    (SimProtocol::Anthropic, "claude-sonnet-4", 1),
    (
        SimProtocol::Bedrock,
        "anthropic.claude-3-haiku-20240307-v1:0",
        2,
    ),
    (SimProtocol::Gemini, "gemini-2.0-flash", 3),
];

fn openai_tools() -> Value {
    json!([{"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}])
}

fn anthropic_tools() -> Value {
    json!([{"name": "f", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}])
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false})
}

/// OpenAI front door fields; columns: OpenAI-shaped (pass-through), Anthropic, Bedrock, Gemini.
fn openai_fields() -> Vec<(&'static str, Value, [Want; 4])> {
    let refused_but_openai = |name: &'static str, v: Value| {
        (
            name,
            v,
            [At(""), Refused(name), Refused(name), Refused(name)],
        )
    };
    let mut fields = vec![
        (
            "temperature",
            json!({"temperature": 0.5}),
            [
                At("/temperature"),
                At("/temperature"),
                At("/inferenceConfig/temperature"),
                At("/generationConfig/temperature"),
            ],
        ),
        (
            "top_p",
            json!({"top_p": 0.9}),
            [
                At("/top_p"),
                At("/top_p"),
                At("/inferenceConfig/topP"),
                At("/generationConfig/topP"),
            ],
        ),
        (
            "max_tokens",
            json!({"max_tokens": 50}),
            [
                At("/max_tokens"),
                At("/max_tokens"),
                At("/inferenceConfig/maxTokens"),
                At("/generationConfig/maxOutputTokens"),
            ],
        ),
        (
            "max_completion_tokens",
            json!({"max_completion_tokens": 50}),
            [
                At("/max_completion_tokens"),
                At("/max_tokens"),
                At("/inferenceConfig/maxTokens"),
                At("/generationConfig/maxOutputTokens"),
            ],
        ),
        (
            "stop",
            json!({"stop": ["zzz"]}),
            [
                At("/stop"),
                At("/stop_sequences"),
                At("/inferenceConfig/stopSequences"),
                At("/generationConfig/stopSequences"),
            ],
        ),
        (
            "seed",
            json!({"seed": 7}),
            [
                At("/seed"),
                Refused("`seed`"),
                Refused("`seed`"),
                At("/generationConfig/seed"),
            ],
        ),
        (
            "n",
            json!({"n": 2}),
            [
                At("/n"),
                Refused("`n` > 1"),
                Refused("`n` > 1"),
                Refused("`n` > 1"),
            ],
        ),
        (
            "tools",
            json!({"tools": openai_tools()}),
            [
                At("/tools"),
                At("/tools/0/name"),
                At("/toolConfig/tools/0/toolSpec/name"),
                At("/tools/0/functionDeclarations/0/name"),
            ],
        ),
        (
            "tool_choice",
            json!({"tools": openai_tools(), "tool_choice": "required"}),
            [
                At("/tool_choice"),
                At("/tool_choice/type"),
                At("/toolConfig/toolChoice/any"),
                At("/toolConfig/functionCallingConfig/mode"),
            ],
        ),
        (
            "parallel_tool_calls",
            json!({"tools": openai_tools(), "parallel_tool_calls": false}),
            [
                At("/parallel_tool_calls"),
                At("/tool_choice/disable_parallel_tool_use"),
                Refused("parallel_tool_calls"),
                Refused("parallel_tool_calls"),
            ],
        ),
        (
            "response_format json_schema",
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema()}}}),
            [
                At("/response_format/json_schema"),
                At("/tool_choice/name"),
                At("/toolConfig/toolChoice/tool/name"),
                At("/generationConfig/responseJsonSchema"),
            ],
        ),
        (
            "response_format json_object",
            json!({"response_format": {"type": "json_object"}}),
            [
                At("/response_format/type"),
                At("/tool_choice/name"),
                At("/toolConfig/toolChoice/tool/name"),
                At("/generationConfig/responseMimeType"),
            ],
        ),
        (
            "user",
            json!({"user": "u1"}),
            [
                At("/user"),
                At("/metadata/user_id"),
                At("/requestMetadata/user"),
                Refused("`user`"),
            ],
        ),
    ];
    for (name, v) in [
        ("frequency_penalty", json!({"frequency_penalty": 0.5})),
        ("presence_penalty", json!({"presence_penalty": 0.5})),
        ("logprobs", json!({"logprobs": true, "top_logprobs": 2})),
        ("logit_bias", json!({"logit_bias": {"50256": -100}})),
        ("reasoning_effort", json!({"reasoning_effort": "low"})),
        ("store", json!({"store": true})),
        (
            "x_vendor_extension",
            json!({"x_vendor_extension": {"a": 1}}),
        ),
    ] {
        fields.push(refused_but_openai(name, v));
    }
    fields
}

/// Anthropic front door fields; columns: OpenAI-shaped, Anthropic (pass-through), Bedrock, Gemini.
fn anthropic_fields() -> Vec<(&'static str, Value, [Want; 4])> {
    let only_anthropic = |name: &'static str, at: &'static str, v: Value| {
        (
            name,
            v,
            [Refused(name), At(at), Refused(name), Refused(name)],
        )
    };
    let mut fields = vec![
        (
            "temperature",
            json!({"temperature": 0.5}),
            [
                At("/temperature"),
                At("/temperature"),
                At("/inferenceConfig/temperature"),
                At("/generationConfig/temperature"),
            ],
        ),
        (
            "top_p",
            json!({"top_p": 0.9}),
            [
                At("/top_p"),
                At("/top_p"),
                At("/inferenceConfig/topP"),
                At("/generationConfig/topP"),
            ],
        ),
        (
            "max_tokens",
            json!({"max_tokens": 50}),
            [
                At("/max_completion_tokens"),
                At("/max_tokens"),
                At("/inferenceConfig/maxTokens"),
                At("/generationConfig/maxOutputTokens"),
            ],
        ),
        (
            "stop_sequences",
            json!({"stop_sequences": ["zzz"]}),
            [
                At("/stop"),
                At("/stop_sequences"),
                At("/inferenceConfig/stopSequences"),
                At("/generationConfig/stopSequences"),
            ],
        ),
        (
            "system",
            json!({"system": "be brief"}),
            [
                At("/messages/1"),
                At("/system"),
                At("/system/0/text"),
                At("/systemInstruction/parts/0/text"),
            ],
        ),
        (
            "tools",
            json!({"tools": anthropic_tools()}),
            [
                At("/tools/0/function/name"),
                At("/tools/0/name"),
                At("/toolConfig/tools/0/toolSpec/name"),
                At("/tools/0/functionDeclarations/0/name"),
            ],
        ),
        (
            "tool_choice",
            json!({"tools": anthropic_tools(), "tool_choice": {"type": "any"}}),
            [
                At("/tool_choice"),
                At("/tool_choice/type"),
                At("/toolConfig/toolChoice/any"),
                At("/toolConfig/functionCallingConfig/mode"),
            ],
        ),
        (
            "disable_parallel_tool_use",
            json!({"tools": anthropic_tools(), "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}),
            [
                At("/parallel_tool_calls"),
                At("/tool_choice/disable_parallel_tool_use"),
                Refused("parallel_tool_calls"),
                Refused("parallel_tool_calls"),
            ],
        ),
        (
            "metadata",
            json!({"metadata": {"user_id": "u1"}}),
            [
                At("/user"),
                At("/metadata/user_id"),
                At("/requestMetadata/user"),
                Refused("`user`"),
            ],
        ),
        (
            "output_config",
            json!({"output_config": {"format": {"type": "json_schema", "schema": schema()}}}),
            [
                At("/response_format/json_schema/schema"),
                At("/output_config/format"),
                At("/toolConfig/toolChoice/tool/name"),
                At("/generationConfig/responseJsonSchema"),
            ],
        ),
    ];
    for (name, at, v) in [
        ("top_k", "", json!({"top_k": 5})),
        (
            "thinking",
            "",
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}}),
        ),
        ("service_tier", "", json!({"service_tier": "standard_only"})),
        (
            "x_vendor_extension",
            "",
            json!({"x_vendor_extension": {"a": 1}}),
        ),
        (
            "content blocks of type `document`",
            "/messages/0/content/1/source",
            json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}]}]}),
        ),
        (
            "tools of type `web_search_20250305`",
            "/tools/0/type",
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ),
    ] {
        fields.push(only_anthropic(name, at, v));
    }
    fields
}

/// One gateway with a simulated upstream per protocol, model `m<i>` on the i-th.
async fn fleet() -> (Vec<RunningSim>, Gateway) {
    let mut sims = Vec::new();
    let mut config = server_toml("");
    for (i, (protocol, model, _)) in UPSTREAMS.iter().enumerate() {
        let sim = sim(&format!("p{i}"), *protocol).await;
        config.push_str(&provider_toml(&format!("p{i}"), &sim, *protocol));
        config.push_str(&deployment_toml(&format!("d{i}"), &format!("p{i}"), model));
        config.push_str(&format!("[models.m{i}]\ndeployments = [\"d{i}\"]\n\n"));
        sims.push(sim);
    }
    (sims, Gateway::start(&config))
}

async fn send(gw: &Gateway, anthropic: bool, body: &Value) -> (u16, Value) {
    let r = if anthropic {
        client()
            .post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    } else {
        gw.post("/v1/chat/completions", body).await
    };
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

async fn check_front_door(anthropic: bool, fields: Vec<(&'static str, Value, [Want; 4])>) {
    let (sims, gw) = fleet().await;
    for (i, (protocol, _, column)) in UPSTREAMS.iter().enumerate() {
        for (name, extra, wants) in &fields {
            let mut body =
                json!({"model": format!("m{i}"), "messages": [{"role": "user", "content": "hi"}]});
            if anthropic {
                body["max_tokens"] = json!(64);
            }
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let before = stats(&sims[i]).await["requests"].as_u64().unwrap();
            let (status, answer) = send(&gw, anthropic, &body).await;
            let upstream = stats(&sims[i]).await;
            let sent = upstream["requests"].as_u64().unwrap() - before;
            let case = format!(
                "{} client, {protocol} upstream, {name}",
                if anthropic { "anthropic" } else { "openai" }
            );
            match wants[*column] {
                At(pointer) => {
                    assert_eq!(status, 200, "{case}: {answer}");
                    assert_eq!(sent, 1, "{case}");
                    let got = &upstream["last_request"]["body"];
                    // A pass-through sends the client's member under its own name.
                    let pointer = if pointer.is_empty() {
                        format!("/{name}")
                    } else {
                        pointer.to_string()
                    };
                    let value = got.pointer(&pointer).filter(|v| !v.is_null());
                    assert!(value.is_some(), "{case}: {pointer} missing from {got}");
                }
                Refused(what) => {
                    assert_eq!(status, 400, "{case}: {answer}");
                    assert_eq!(sent, 0, "{case}: sent upstream anyway");
                    if anthropic {
                        assert_eq!(answer["type"], "error", "{case}");
                        assert_eq!(answer["error"]["type"], "invalid_request_error", "{case}");
                    } else {
                        assert_eq!(answer["error"]["type"], "invalid_request_error", "{case}");
                    }
                    let message = answer["error"]["message"].as_str().unwrap();
                    assert!(
                        message.contains(what),
                        "{case}: {message:?} does not name {what:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn every_openai_field_reaches_each_upstream_or_is_refused_by_name() {
    check_front_door(false, openai_fields()).await;
}

#[tokio::test]
async fn every_anthropic_field_reaches_each_upstream_or_is_refused_by_name() {
    check_front_door(true, anthropic_fields()).await;
}
