//! Every front door × every upstream protocol × {non-streaming, streaming, tool round trip},
//! through the running gateway against the simulator: text, tool name and arguments, finish
//! reason and usage are checked exactly against the simulator's rules (crates/sim/README.md).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{RunningSim, SimProtocol};

/// What a client saw, normalised across protocols.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    text: String,
    tool_calls: Vec<(String, String, Value)>,
    finish: String,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Clone, Copy, Debug)]
enum FrontDoor {
    OpenAi,
    Anthropic,
}

/// One simulated upstream and the gateway config that routes model `m` to it.
async fn setup(
    protocol: SimProtocol,
    model_override: Option<&str>,
) -> (RunningSim, Gateway, tempfile::TempDir) {
    let name = protocol.as_str();
    let sim = sim(name, protocol).await;
    let dir = tempfile::tempdir().unwrap();
    let url = sim.base_url();
    let (provider, upstream_model) = match protocol {
        SimProtocol::OpenAi => (format!("kind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key = \"{UPSTREAM_KEY}\"\n"), "gpt-4o"),
        SimProtocol::AzureOpenAi => (
            format!("kind = \"azure_openai\"\nbase_url = \"{url}\"\napi_key = \"{UPSTREAM_KEY}\"\napi_version = \"2024-10-21\"\n"),
            "gpt4o-prod",
        ),
        SimProtocol::OpenAiCompatible => (
            format!("kind = \"openai_compatible\"\nbase_url = \"{url}/v1\"\napi_key = \"{UPSTREAM_KEY}\"\n"),
            "llama-3.1-70b",
        ),
        SimProtocol::Anthropic => (
            format!("kind = \"anthropic\"\nbase_url = \"{url}\"\napi_key = \"{UPSTREAM_KEY}\"\n"),
            "claude-sonnet-4",
        ),
        SimProtocol::Bedrock => (
            format!(
                "kind = \"bedrock\"\nbase_url = \"{url}\"\naws_access_key_id = \"{UPSTREAM_KEY}\"\naws_secret_access_key = \"sim-secret\"\n"
            ),
            "anthropic.claude-3-haiku-20240307-v1:0",
        ),
        SimProtocol::Gemini => (
            format!("kind = \"gemini\"\nbase_url = \"{url}\"\napi_key = \"{UPSTREAM_KEY}\"\n"),
            "gemini-2.0-flash",
        ),
        SimProtocol::Vertex => {
            let key_file = dir.path().join("service-account.json");
            let key = json!({
                "type": "service_account",
                "project_id": "sim-project",
                "private_key_id": "test",
                "private_key": include_str!("../../providers/tests/fixtures/test-only-key.pem"),
                "client_email": "gateway@sim-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": format!("{url}/token"),
            });
            std::fs::write(&key_file, key.to_string()).unwrap();
            (
                format!(
                    "kind = \"vertex\"\nbase_url = \"{url}\"\ngcp_project = \"sim-project\"\ngcp_location = \"europe-west4\"\ncredentials_file = \"{}\"\n",
                    key_file.display()
                ),
                "gemini-2.0-flash",
            )
        }
    };
    let upstream_model = model_override.unwrap_or(upstream_model);
    let config = format!(
        "{}[providers.up]\n{provider}cloud = \"gcp\"\nregion = \"us-east-1\"\njurisdiction = \"us\"\n\n{}[models.m]\ndeployments = [\"d\"]\n",
        server_toml(""),
        deployment_toml("d", "up", upstream_model),
    );
    let gw = Gateway::start(&config);
    (sim, gw, dir)
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}])
}

fn weather_tool_anthropic() -> Value {
    json!([{"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}])
}

async fn openai_call(gw: &Gateway, mut body: Value, stream: bool) -> Seen {
    body["model"] = json!("m");
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let r = gw.post("/v1/chat/completions", &body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let mut seen = Seen::default();
    if !stream {
        let v: Value = serde_json::from_str(&text).unwrap();
        let choice = &v["choices"][0];
        seen.text = choice["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for c in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let args: Value =
                serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
            seen.tool_calls.push((
                c["id"].as_str().unwrap().into(),
                c["function"]["name"].as_str().unwrap().into(),
                args,
            ));
        }
        seen.finish = choice["finish_reason"].as_str().unwrap().into();
        seen.input_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
        seen.output_tokens = v["usage"]["completion_tokens"].as_u64().unwrap();
        return seen;
    }
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let mut args: Vec<String> = Vec::new();
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e).unwrap();
        if let Some(u) = chunk["usage"].as_object() {
            seen.input_tokens = u["prompt_tokens"].as_u64().unwrap();
            seen.output_tokens = u["completion_tokens"].as_u64().unwrap();
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        seen.text
            .push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        if let Some(f) = choice["finish_reason"].as_str() {
            seen.finish = f.into();
        }
        for d in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = d["index"].as_u64().unwrap() as usize;
            if i == seen.tool_calls.len() {
                seen.tool_calls.push((
                    d["id"].as_str().unwrap().into(),
                    d["function"]["name"].as_str().unwrap().into(),
                    Value::Null,
                ));
                args.push(String::new());
            }
            args[i].push_str(d["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    for (call, a) in seen.tool_calls.iter_mut().zip(args) {
        call.2 = serde_json::from_str(&a).unwrap();
    }
    seen
}

async fn anthropic_call(gw: &Gateway, mut body: Value, stream: bool) -> Seen {
    body["model"] = json!("m");
    body["max_tokens"] = json!(256);
    body["stream"] = json!(stream);
    let r = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let mut seen = Seen::default();
    if !stream {
        let v: Value = serde_json::from_str(&text).unwrap();
        for block in v["content"].as_array().unwrap() {
            match block["type"].as_str().unwrap() {
                "text" => seen.text.push_str(block["text"].as_str().unwrap()),
                "tool_use" => seen.tool_calls.push((
                    block["id"].as_str().unwrap().into(),
                    block["name"].as_str().unwrap().into(),
                    block["input"].clone(),
                )),
                other => panic!("unexpected block {other}"),
            }
        }
        seen.finish = v["stop_reason"].as_str().unwrap().into();
        seen.input_tokens = v["usage"]["input_tokens"].as_u64().unwrap();
        seen.output_tokens = v["usage"]["output_tokens"].as_u64().unwrap();
        return seen;
    }
    let mut names = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut last = String::new();
    // Comment-only blocks (the gateway's cost line) are no events, as in every SSE client.
    let events = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.lines().all(|l| l.starts_with(':')));
    for event in events {
        let name = event
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or_default();
        let data: Value = serde_json::from_str(
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["type"], name, "{event}");
        last = name.to_string();
        names.push(name.to_string());
        match name {
            "message_start" => {
                seen.input_tokens = data["message"]["usage"]["input_tokens"].as_u64().unwrap()
            }
            "content_block_start" if data["content_block"]["type"] == "tool_use" => {
                let b = &data["content_block"];
                seen.tool_calls.push((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    Value::Null,
                ));
                args.push(String::new());
            }
            "content_block_delta" => match data["delta"]["type"].as_str().unwrap() {
                "text_delta" => seen.text.push_str(data["delta"]["text"].as_str().unwrap()),
                "input_json_delta" => args
                    .last_mut()
                    .unwrap()
                    .push_str(data["delta"]["partial_json"].as_str().unwrap()),
                other => panic!("unexpected delta {other}"),
            },
            "message_delta" => {
                seen.finish = data["delta"]["stop_reason"].as_str().unwrap().into();
                seen.output_tokens = data["usage"]["output_tokens"].as_u64().unwrap();
                if let Some(input) = data["usage"]["input_tokens"].as_u64() {
                    seen.input_tokens = input;
                }
            }
            _ => {}
        }
    }
    assert_eq!(last, "message_stop", "{names:?}");
    assert_eq!(
        names.first().map(String::as_str),
        Some("message_start"),
        "{names:?}"
    );
    for (call, a) in seen.tool_calls.iter_mut().zip(args) {
        call.2 = serde_json::from_str(&a).unwrap();
    }
    seen
}

async fn run_matrix(door: FrontDoor, protocol: SimProtocol) {
    let (sim, gw, _dir) = setup(protocol, None).await;
    let name = protocol.as_str();
    let (stop, tool_stop) = match door {
        FrontDoor::OpenAi => ("stop", "tool_calls"),
        FrontDoor::Anthropic => ("end_turn", "tool_use"),
    };
    let call = |body: Value, stream: bool| {
        let gw = &gw;
        async move {
            match door {
                FrontDoor::OpenAi => openai_call(gw, body, stream).await,
                FrontDoor::Anthropic => anthropic_call(gw, body, stream).await,
            }
        }
    };
    let plain = match door {
        FrontDoor::OpenAi => {
            json!({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello matrix world"}]})
        }
        FrontDoor::Anthropic => {
            json!({"system": "be brief", "messages": [{"role": "user", "content": "hello matrix world"}]})
        }
    };
    let expected = Seen {
        text: format!("{name} says: hello matrix world"),
        tool_calls: vec![],
        finish: stop.into(),
        input_tokens: 7,
        output_tokens: 5,
    };
    for stream in [false, true] {
        let seen = call(plain.clone(), stream).await;
        assert_eq!(seen, expected, "{door:?} → {name}, stream={stream}");
    }

    for stream in [false, true] {
        let ask = match door {
            FrontDoor::OpenAi => {
                json!({"messages": [{"role": "user", "content": "Paris weather"}], "tools": weather_tool_openai()})
            }
            FrontDoor::Anthropic => {
                json!({"messages": [{"role": "user", "content": "Paris weather"}], "tools": weather_tool_anthropic()})
            }
        };
        let seen = call(ask, stream).await;
        assert_eq!(
            seen.finish, tool_stop,
            "{door:?} → {name}, stream={stream}: {seen:?}"
        );
        assert_eq!(seen.tool_calls.len(), 1, "{seen:?}");
        let (id, tool, args) = seen.tool_calls[0].clone();
        assert_eq!(tool, "get_weather");
        assert_eq!(args, json!({"city": "Paris", "days": 42}));
        assert_eq!(
            (seen.input_tokens, seen.output_tokens),
            (3, 2),
            "{door:?} → {name}, stream={stream}"
        );
        assert_eq!(seen.text, "");

        let answer = match door {
            FrontDoor::OpenAi => json!({"tools": weather_tool_openai(), "messages": [
                {"role": "user", "content": "Paris weather"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"days\":42}"}}]},
                {"role": "tool", "tool_call_id": id, "content": "sunny"}]}),
            FrontDoor::Anthropic => json!({"tools": weather_tool_anthropic(), "messages": [
                {"role": "user", "content": "Paris weather"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Paris", "days": 42}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny"}]}]}),
        };
        let seen = call(answer, stream).await;
        let expected = Seen {
            text: format!("{name} got: sunny"),
            tool_calls: vec![],
            finish: stop.into(),
            // user 2+1, assistant call (one-word arguments)+1, tool result 1+1
            input_tokens: 7,
            output_tokens: 3,
        };
        assert_eq!(
            seen, expected,
            "{door:?} → {name} tool result, stream={stream}"
        );
    }
    assert_eq!(stats(&sim).await["requests"], 6);
}

macro_rules! matrix {
    ($($test:ident: $door:ident, $protocol:ident;)*) => {$(
        #[tokio::test]
        async fn $test() {
            run_matrix(FrontDoor::$door, SimProtocol::$protocol).await;
        }
    )*};
}

matrix! {
    openai_to_openai: OpenAi, OpenAi;
    openai_to_azure: OpenAi, AzureOpenAi;
    openai_to_openai_compatible: OpenAi, OpenAiCompatible;
    openai_to_anthropic: OpenAi, Anthropic;
    openai_to_bedrock: OpenAi, Bedrock;
    openai_to_gemini: OpenAi, Gemini;
    openai_to_vertex: OpenAi, Vertex;
    anthropic_to_openai: Anthropic, OpenAi;
    anthropic_to_azure: Anthropic, AzureOpenAi;
    anthropic_to_openai_compatible: Anthropic, OpenAiCompatible;
    anthropic_to_anthropic: Anthropic, Anthropic;
    anthropic_to_bedrock: Anthropic, Bedrock;
    anthropic_to_gemini: Anthropic, Gemini;
    anthropic_to_vertex: Anthropic, Vertex;
}

/// `/v1/embeddings` reaches every protocol that has embeddings, in float and base64.
#[tokio::test]
async fn embeddings_through_every_protocol() {
    use base64::Engine as _;
    let cases = [
        (SimProtocol::OpenAi, "text-embedding-3-small"),
        (SimProtocol::AzureOpenAi, "embed-prod"),
        (SimProtocol::OpenAiCompatible, "bge-m3"),
        (SimProtocol::Bedrock, "amazon.titan-embed-text-v2:0"),
        (SimProtocol::Bedrock, "cohere.embed-v4:0"),
        (SimProtocol::Gemini, "gemini-embedding-001"),
        (SimProtocol::Vertex, "text-embedding-005"),
    ];
    let inputs = ["alpha beta", "gamma"];
    for (protocol, upstream_model) in cases {
        let (_sim, gw, _dir) = setup(protocol, Some(upstream_model)).await;
        for base64 in [false, true] {
            let mut body = json!({"model": "m", "input": inputs, "dimensions": 4});
            if base64 {
                body["encoding_format"] = json!("base64");
            }
            let r = gw.post("/v1/embeddings", &body).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 200, "{protocol:?} {upstream_model}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let data = v["data"].as_array().unwrap();
            assert_eq!(data.len(), 2, "{text}");
            for (item, input) in data.iter().zip(inputs) {
                let got: Vec<f32> = if base64 {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(item["embedding"].as_str().unwrap())
                        .unwrap();
                    raw.chunks(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                } else {
                    item["embedding"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                };
                let want = switchyard_sim::rules::embedding(input, 4);
                assert_eq!(got.len(), 4, "{protocol:?}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - *w).abs() < 1e-5,
                        "{protocol:?} {upstream_model}: {got:?} vs {want:?}"
                    );
                }
            }
            // Every protocol but the Gemini API reports input tokens: 2 + 1 words.
            if protocol != SimProtocol::Gemini {
                assert_eq!(
                    v["usage"]["prompt_tokens"], 3,
                    "{protocol:?} {upstream_model}: {text}"
                );
            }
        }
    }
}

/// A feature the upstream protocol cannot express is a 400 naming the feature and the deployment.
#[tokio::test]
async fn inexpressible_requests_are_rejected_with_the_feature_and_deployment() {
    let (sim, gw, _dir) = setup(SimProtocol::Anthropic, None).await;
    let mut body = chat("m", "give me two");
    body["n"] = json!(2);
    let r = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deployment 'd'") && message.contains("`n` > 1"),
        "{message}"
    );
    assert_eq!(
        stats(&sim).await["requests"],
        0,
        "nothing was sent upstream"
    );
}
