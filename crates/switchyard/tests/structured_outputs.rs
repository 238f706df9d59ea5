//! Structured outputs through the running gateway on every upstream protocol: an OpenAI
//! client's `response_format: json_schema` comes back as JSON content that follows the schema,
//! streamed and not, whether the upstream has a native JSON mode (OpenAI, Azure, Gemini,
//! Anthropic's `output_config` on Claude 4.5+) or gets a forced answer tool (Anthropic on older
//! models, Bedrock), and the upstream received the request in its own form.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{RunningSim, SimProtocol};

/// One simulated upstream and a gateway routing model `m` to `upstream_model` on it.
async fn setup(protocol: SimProtocol, upstream_model: &str) -> (RunningSim, Gateway) {
    let sim = sim("up", protocol).await;
    let config = format!(
        "{}{}{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        provider_toml("up", &sim, protocol),
        deployment_toml("d", "up", upstream_model),
    );
    (sim, Gateway::start(&config))
}

fn person_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name", "age"], "additionalProperties": false})
}

/// What the simulator answers for "Ada is 36" under `person_schema`.
fn expected_person() -> Value {
    json!({"name": "Ada", "age": 42})
}

fn request(stream: bool) -> Value {
    let mut body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Ada is 36"}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "person", "schema": person_schema(), "strict": true}},
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The answer's content parsed as JSON and its finish reason; fails on any tool call.
async fn structured_answer(gw: &Gateway, stream: bool) -> (Value, String) {
    let r = gw.post("/v1/chat/completions", &request(stream)).await;
    let status = r.status();
    if !stream {
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(status, 200, "{v}");
        let choice = &v["choices"][0];
        assert!(
            choice["message"]
                .get("tool_calls")
                .is_none_or(Value::is_null),
            "{v}"
        );
        let content = choice["message"]["content"].as_str().unwrap();
        let parsed = serde_json::from_str(content).unwrap_or_else(|e| panic!("{content}: {e}"));
        return (parsed, choice["finish_reason"].as_str().unwrap().into());
    }
    assert_eq!(status, 200);
    let events = sse_data(r).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let (mut content, mut finish) = (String::new(), String::new());
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e).unwrap();
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        assert!(choice["delta"].get("tool_calls").is_none(), "{e}");
        content.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.into();
        }
    }
    let parsed = serde_json::from_str(&content).unwrap_or_else(|e| panic!("{content}: {e}"));
    (parsed, finish)
}

/// The body the simulator last received.
async fn upstream_body(sim: &RunningSim) -> Value {
    stats(sim).await["last_request"]["body"].clone()
}

/// Both ways (whole and streamed) give the schema's JSON with finish `stop`; returns the
/// upstream bodies of the two calls.
async fn check(protocol: SimProtocol, upstream_model: &str) -> [Value; 2] {
    let (sim, gw) = setup(protocol, upstream_model).await;
    let mut bodies = [Value::Null, Value::Null];
    for (i, stream) in [false, true].into_iter().enumerate() {
        let (answer, finish) = structured_answer(&gw, stream).await;
        assert_eq!(answer, expected_person(), "{protocol} stream={stream}");
        assert_eq!(finish, "stop", "{protocol} stream={stream}");
        bodies[i] = upstream_body(&sim).await;
    }
    bodies
}

#[tokio::test]
async fn openai_shaped_upstreams_get_the_format_as_sent() {
    for (protocol, model) in [
        (SimProtocol::OpenAi, "gpt-4o"),
        (SimProtocol::AzureOpenAi, "gpt4o-prod"),
        (SimProtocol::OpenAiCompatible, "llama-3.1-70b"),
    ] {
        for body in check(protocol, model).await {
            assert_eq!(
                body["response_format"]["json_schema"]["schema"],
                person_schema()
            );
        }
    }
}

#[tokio::test]
async fn anthropic_before_claude_4_5_gets_a_forced_answer_tool() {
    for body in check(SimProtocol::Anthropic, "claude-sonnet-4-20250514").await {
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": "person"}),
            "{body}"
        );
        assert_eq!(body["tools"][0]["input_schema"], person_schema());
        assert!(body.get("output_config").is_none(), "{body}");
    }
}

#[tokio::test]
async fn anthropic_claude_4_5_gets_native_output_config() {
    for body in check(SimProtocol::Anthropic, "claude-sonnet-4-5").await {
        assert_eq!(
            body["output_config"]["format"]["type"], "json_schema",
            "{body}"
        );
        assert_eq!(body["output_config"]["format"]["schema"], person_schema());
        assert!(body.get("tools").is_none(), "{body}");
    }
}

#[tokio::test]
async fn bedrock_gets_a_forced_answer_tool() {
    let model = "anthropic.claude-3-haiku-20240307-v1:0";
    for body in check(SimProtocol::Bedrock, model).await {
        let config = &body["toolConfig"];
        assert_eq!(
            config["toolChoice"],
            json!({"tool": {"name": "person"}}),
            "{body}"
        );
        assert_eq!(
            config["tools"][0]["toolSpec"]["inputSchema"]["json"],
            person_schema()
        );
    }
}

#[tokio::test]
async fn gemini_gets_a_response_json_schema() {
    for body in check(SimProtocol::Gemini, "gemini-2.0-flash").await {
        let config = &body["generationConfig"];
        assert_eq!(config["responseMimeType"], "application/json", "{body}");
        assert_eq!(config["responseJsonSchema"], person_schema());
    }
}

#[tokio::test]
async fn an_answer_tool_alongside_client_tools_lets_the_model_call_them() {
    let (sim, gw) = setup(
        SimProtocol::Bedrock,
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    .await;
    let mut body = request(false);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    let r = gw.post("/v1/chat/completions", &body).await;
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    // The simulator calls the first tool when any is required: the client's, which it gets.
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup", "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sent = upstream_body(&sim).await;
    assert_eq!(
        sent["toolConfig"]["toolChoice"],
        json!({"any": {}}),
        "{sent}"
    );
    let names: Vec<&str> = sent["toolConfig"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["toolSpec"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup", "person"]);
}

#[tokio::test]
async fn an_anthropic_clients_output_config_reaches_bedrock_as_an_answer_tool_and_returns_text() {
    let (sim, gw) = setup(
        SimProtocol::Bedrock,
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    .await;
    for stream in [false, true] {
        let body = json!({"model": "m", "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": "Ada is 36"}],
            "output_config": {"format": {"type": "json_schema", "schema": person_schema()}}});
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
        let raw = r.text().await.unwrap();
        let (text, stop_reason) = if stream {
            let mut text = String::new();
            let mut stop = String::new();
            for data in raw
                .split("\n\n")
                .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            {
                let ev: Value = serde_json::from_str(data).unwrap();
                assert_ne!(ev["content_block"]["type"], "tool_use", "{raw}");
                text.push_str(ev["delta"]["text"].as_str().unwrap_or_default());
                if let Some(s) = ev["delta"]["stop_reason"].as_str() {
                    stop = s.into();
                }
            }
            (text, stop)
        } else {
            let v: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(v["content"].as_array().unwrap().len(), 1, "{v}");
            assert_eq!(v["content"][0]["type"], "text", "{v}");
            (
                v["content"][0]["text"].as_str().unwrap().to_owned(),
                v["stop_reason"].as_str().unwrap().to_owned(),
            )
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            expected_person(),
            "{raw}"
        );
        assert_eq!(stop_reason, "end_turn");
        let sent = upstream_body(&sim).await;
        assert_eq!(
            sent["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "output"}})
        );
    }
}
