#![allow(clippy::unwrap_used)]

use super::*;
use crate::canonical::*;
use crate::codec::test_support::{self, assemble, assembled, Caps};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message as Frame};
use serde_json::{json, Value};
use switchyard_types::{ErrorKind, TokenUsage};

fn frame(headers: &[(&str, &str)], payload: Value) -> Vec<u8> {
    let mut msg = Frame::new(payload.to_string());
    for (k, v) in headers {
        msg = msg.add_header(Header::new(
            k.to_string(),
            HeaderValue::String(v.to_string().into()),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&msg, &mut out).unwrap();
    out
}

/// An event frame as Bedrock sends it, `p` padding included.
fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    payload["p"] = json!("abcdefgh");
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

fn decode_frames(
    bytes: &[u8],
    step: usize,
) -> (Vec<StreamEvent>, StreamDecoder, Option<crate::DecodeError>) {
    let mut es = EventStreamDecoder::new();
    let mut dec = StreamDecoder::new();
    let mut got = Vec::new();
    let mut err = None;
    for chunk in bytes.chunks(step.max(1)) {
        es.push(chunk);
        while let Some(msg) = es.next_message().unwrap() {
            match dec.decode(&msg) {
                Ok(evs) => got.extend(evs),
                Err(e) => err = Some(e),
            }
        }
    }
    assert!(!es.has_partial_frame());
    (got, dec, err)
}

// === Requests ===

#[test]
fn encode_request_writes_the_converse_shape() {
    let v: Value =
        serde_json::from_slice(&encode_request(&test_support::rich_request()).unwrap()).unwrap();
    insta::assert_json_snapshot!("encode_request", v);
}

#[test]
fn encode_request_maps_tool_choice_and_merges_turns() {
    let tool = Tool {
        name: "f".into(),
        description: None,
        parameters: Value::Null,
        strict: None,
    };
    let base = ChatRequest {
        messages: vec![Message::text(Role::User, "x")],
        tools: vec![tool],
        ..ChatRequest::default()
    };
    let choice = |c| {
        let v: Value = serde_json::from_slice(
            &encode_request(&ChatRequest {
                tool_choice: c,
                ..base.clone()
            })
            .unwrap(),
        )
        .unwrap();
        v["toolConfig"].clone()
    };
    assert_eq!(choice(None)["toolChoice"], Value::Null);
    assert_eq!(
        choice(Some(ToolChoice::Auto))["toolChoice"],
        json!({"auto": {}})
    );
    assert_eq!(
        choice(Some(ToolChoice::Required))["toolChoice"],
        json!({"any": {}})
    );
    assert_eq!(
        choice(Some(ToolChoice::Function("f".into())))["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    assert_eq!(choice(Some(ToolChoice::None)), Value::Null);
    assert_eq!(
        choice(None)["tools"][0]["toolSpec"]["inputSchema"],
        json!({"json": {"type": "object"}})
    );

    let req = ChatRequest {
        messages: vec![
            Message::text(Role::User, "a"),
            Message::text(Role::User, "b"),
            Message {
                tool_calls: vec![ToolCall {
                    id: "t".into(),
                    name: "f".into(),
                    arguments: "".into(),
                }],
                ..Message::text(Role::Assistant, "")
            },
            Message::text(Role::User, "c"),
            Message {
                tool_call_id: Some("t".into()),
                is_error: true,
                ..Message::text(Role::Tool, "failed")
            },
        ],
        user: Some("u".into()),
        ..base.clone()
    };
    for (refused, feature) in [
        (
            ChatRequest {
                seed: Some(1),
                ..req.clone()
            },
            "`seed`",
        ),
        (
            ChatRequest {
                parallel_tool_calls: Some(false),
                ..req.clone()
            },
            "`parallel_tool_calls: false` (one tool call per turn)",
        ),
    ] {
        assert_eq!(encode_request(&refused).unwrap_err().feature, feature);
    }
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(v["requestMetadata"], json!({"user": "u"}));
    assert_eq!(
        v["messages"][0]["content"],
        json!([{"text": "a"}, {"text": "b"}])
    );
    assert_eq!(
        v["messages"][1]["content"][0]["toolUse"]["input"],
        json!({})
    );
    assert_eq!(
        v["messages"][2]["content"],
        json!([{"toolResult": {"toolUseId": "t", "content": [{"text": "failed"}], "status": "error"}}, {"text": "c"}])
    );
    assert!(v.get("inferenceConfig").is_none());
}

#[test]
fn encode_request_rejects_what_converse_cannot_express() {
    let base = ChatRequest {
        messages: vec![Message::text(Role::User, "x")],
        ..ChatRequest::default()
    };
    let image = |src| {
        ContentPart::Image(Image {
            source: src,
            detail: None,
        })
    };
    let url = image(ImageSource::Url("https://x/y.png".into()));
    let tiff = image(ImageSource::Base64 {
        media_type: "image/tiff".into(),
        data: "AA".into(),
    });
    let used_tools = vec![
        Message {
            tool_calls: vec![ToolCall {
                id: "t".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            ..Message::text(Role::Assistant, "")
        },
        Message {
            tool_call_id: Some("t".into()),
            ..Message::text(Role::Tool, "r")
        },
    ];
    let cases = [
        (
            ChatRequest {
                n: Some(3),
                ..base.clone()
            },
            "`n` > 1",
        ),
        (
            ChatRequest {
                response_format: Some(ResponseFormat::JsonObject),
                tools: vec![Tool {
                    name: "json_answer".into(),
                    description: None,
                    parameters: Value::Null,
                    strict: None,
                }],
                ..base.clone()
            },
            "alongside a tool of the same name (`json_answer`)",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    content: vec![url],
                    ..Message::text(Role::User, "")
                }],
                ..base.clone()
            },
            "images given by URL",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    content: vec![tiff],
                    ..Message::text(Role::User, "")
                }],
                ..base.clone()
            },
            "images of type image/tiff",
        ),
        (
            ChatRequest {
                messages: used_tools,
                tool_choice: Some(ToolChoice::None),
                ..base.clone()
            },
            "tool_choice: none",
        ),
    ];
    for (req, feature) in cases {
        let err = encode_request(&req).unwrap_err();
        assert!(err.feature.contains(feature), "{err}");
        assert_eq!(err.protocol, "bedrock");
    }
}

// === Responses and errors ===

#[test]
fn decode_response_reads_blocks_stop_reasons_and_usage() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
            {"text": "a"}, {"text": "b"},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"x": [1, 2]}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 40, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 5},
        "metrics": {"latencyMs": 10}
    });
    let r = decode_response(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(r.content.as_deref(), Some("ab"));
    assert_eq!(
        r.tool_calls[0],
        ToolCall {
            id: "tooluse_1".into(),
            name: "f".into(),
            arguments: r#"{"x":[1,2]}"#.into()
        }
    );
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 35,
            output: 5,
            cached_input: 20,
            cache_write: 5,
            reasoning: 0
        }
    );
    for (wire, reason) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("guardrail_intervened", FinishReason::ContentFilter),
        ("content_filtered", FinishReason::ContentFilter),
        ("model_context_window_exceeded", FinishReason::Length),
    ] {
        let r =
            decode_response(&serde_json::to_vec(&json!({"stopReason": wire})).unwrap()).unwrap();
        assert_eq!(r.finish_reason, reason, "{wire}");
    }
}

#[test]
fn decode_error_maps_error_types() {
    let cases = [
        (
            429,
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ErrorKind::RateLimited,
        ),
        (400, "ServiceQuotaExceededException", ErrorKind::RateLimited),
        (503, "ServiceUnavailableException", ErrorKind::Overloaded),
        (429, "ModelNotReadyException", ErrorKind::Overloaded),
        (500, "InternalServerException", ErrorKind::UpstreamServer),
        (424, "ModelErrorException", ErrorKind::UpstreamServer),
        (408, "ModelTimeoutException", ErrorKind::UpstreamTimeout),
        (400, "ValidationException", ErrorKind::InvalidRequest),
        (403, "AccessDeniedException", ErrorKind::UpstreamRejected),
        (
            403,
            "UnrecognizedClientException",
            ErrorKind::UpstreamRejected,
        ),
        (
            403,
            "InvalidSignatureException",
            ErrorKind::UpstreamRejected,
        ),
        (
            404,
            "ResourceNotFoundException",
            ErrorKind::UpstreamRejected,
        ),
        (503, "SomethingNewException", ErrorKind::UpstreamServer),
    ];
    for (status, name, kind) in cases {
        let e = decode_error(status, Some(name), br#"{"message":"it failed"}"#);
        assert_eq!(e.kind, kind, "{name}");
        assert_eq!(e.message, "it failed");
        assert_eq!(e.code.as_deref(), name.split(':').next());
    }
    let e = decode_error(
        400,
        None,
        br#"{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}"#,
    );
    assert_eq!(
        (e.kind, e.message.as_str(), e.code.as_deref()),
        (
            ErrorKind::InvalidRequest,
            "bad",
            Some("ValidationException")
        )
    );
    let e = decode_error(429, None, b"");
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(e.message.contains("empty body"));
}

// === Streams ===

fn sample_stream() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(event("messageStart", json!({"role": "assistant"})));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    b.extend(event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "f"}}})));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
    b.extend(event("contentBlockStart", json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_2", "name": "g"}}})));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 2})));
    b.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    b.extend(event("metadata", json!({"usage": {"inputTokens": 7, "outputTokens": 9, "totalTokens": 16, "cacheReadInputTokens": 3}, "metrics": {"latencyMs": 5}})));
    b
}

#[test]
fn stream_decoder_follows_a_converse_stream_split_anywhere() {
    let bytes = sample_stream();
    for step in [1, 3, 7, 64, bytes.len()] {
        let (events, dec, err) = decode_frames(&bytes, step);
        assert!(err.is_none());
        assert!(dec.is_done());
        let a = assemble(&events);
        assert_eq!(a.text, "Hello");
        assert_eq!(
            a.calls,
            vec![
                ("tooluse_1".into(), "f".into(), "{\"a\":1}".into()),
                ("tooluse_2".into(), "g".into(), "{}".into())
            ]
        );
        assert_eq!(a.finish, Some(FinishReason::ToolCalls));
        assert_eq!(
            a.usage,
            Some(TokenUsage {
                input: 10,
                output: 9,
                cached_input: 3,
                cache_write: 0,
                reasoning: 0
            })
        );
    }
}

#[test]
fn exception_frames_are_errors_with_their_kind() {
    let mut bytes = event("messageStart", json!({"role": "assistant"}));
    bytes.extend(frame(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": "Too many requests"}),
    ));
    let (_, dec, err) = decode_frames(&bytes, 5);
    assert!(err.unwrap().message.contains("Too many requests"));
    let e = dec.upstream_error().unwrap();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::RateLimited, "Too many requests")
    );
    for (name, kind) in [
        ("serviceUnavailableException", ErrorKind::Overloaded),
        ("internalServerException", ErrorKind::UpstreamServer),
        ("modelStreamErrorException", ErrorKind::UpstreamServer),
        ("validationException", ErrorKind::InvalidRequest),
    ] {
        let b = frame(
            &[(":exception-type", name), (":message-type", "exception")],
            json!({"message": "m"}),
        );
        let (_, dec, _) = decode_frames(&b, 100);
        assert_eq!(dec.upstream_error().unwrap().kind, kind, "{name}");
    }
}

#[test]
fn corrupt_frames_are_errors_that_stick() {
    let mut bytes = sample_stream();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    let mut es = EventStreamDecoder::new();
    es.push(&bytes);
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(es.next_message());
    }
    assert!(results.iter().any(Result::is_err));
    assert!(results.last().unwrap().is_err());

    let mut es = EventStreamDecoder::new();
    es.push(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0]);
    assert!(es
        .next_message()
        .unwrap_err()
        .message
        .contains("out of range"));
    let mut es = EventStreamDecoder::new();
    es.push(&sample_stream()[..10]);
    assert_eq!(es.next_message().unwrap(), None);
    assert!(es.has_partial_frame());
}

// === Embeddings ===

#[test]
fn titan_embeddings_take_one_call_per_input() {
    let req = EmbeddingsRequest {
        model: "e".into(),
        input: vec!["a".into(), "b".into()],
        token_input: None,
        dimensions: Some(256),
        base64: false,
    };
    let bodies = encode_embeddings_request("amazon.titan-embed-text-v2:0", &req).unwrap();
    let bodies: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"inputText": "a", "dimensions": 256}),
            json!({"inputText": "b", "dimensions": 256})
        ]
    );
    let answers: [&[u8]; 2] = [
        br#"{"embedding":[0.5,1.0],"inputTextTokenCount":3}"#,
        br#"{"embedding":[2.0,0.25],"inputTextTokenCount":4}"#,
    ];
    let r = decode_embeddings_response("amazon.titan-embed-text-v2:0", &answers).unwrap();
    assert_eq!(r.vectors, vec![vec![0.5, 1.0], vec![2.0, 0.25]]);
    assert_eq!(r.input_tokens, 7);
}

#[test]
fn cohere_embeddings_batch_inputs() {
    let input: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let req = EmbeddingsRequest {
        model: "e".into(),
        input,
        token_input: None,
        dimensions: None,
        base64: true,
    };
    let bodies = encode_embeddings_request("us.cohere.embed-english-v3", &req).unwrap();
    assert_eq!(bodies.len(), 2);
    let first: Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(first["texts"].as_array().unwrap().len(), 96);
    assert_eq!(first["input_type"], "search_document");
    let answers: [&[u8]; 2] = [
        br#"{"embeddings":[[1.0],[2.0]],"id":"x","response_type":"embeddings_floats"}"#,
        br#"{"embeddings":{"float":[[3.0]]}}"#,
    ];
    let r = decode_embeddings_response("cohere.embed-english-v3", &answers).unwrap();
    assert_eq!(r.vectors, vec![vec![1.0], vec![2.0], vec![3.0]]);

    let dims = EmbeddingsRequest {
        dimensions: Some(256),
        ..req.clone()
    };
    assert!(encode_embeddings_request("cohere.embed-english-v3", &dims).is_err());
    assert!(encode_embeddings_request("cohere.embed-v4:0", &dims).is_ok());
    let tokens = EmbeddingsRequest {
        token_input: Some(vec![vec![1]]),
        ..req.clone()
    };
    assert!(encode_embeddings_request("cohere.embed-v4:0", &tokens)
        .unwrap_err()
        .feature
        .contains("pre-tokenized"));
    assert!(encode_embeddings_request("meta.llama3", &req)
        .unwrap_err()
        .feature
        .contains("supported"));
    assert_eq!(embeddings_family("arn:aws:bedrock:x"), None);
}

// === Properties ===

mod props {
    use super::*;
    use crate::codec::test_support::{
        conversation, split, tool_calls, tool_choice, tools, unit_float, usage,
    };
    use proptest::prelude::*;

    const CAPS: Caps = Caps {
        url_images: false,
        tool_choice_none: false,
    };

    /// A test-only Converse request reader (the simulator has its own; the lead cross-checks).
    fn decode_request(body: &[u8]) -> ChatRequest {
        let v: Value = serde_json::from_slice(body).unwrap();
        let mut messages = Vec::new();
        if let Some(system) = v["system"].as_array() {
            messages.push(Message {
                content: system
                    .iter()
                    .map(|b| ContentPart::Text(b["text"].as_str().unwrap().into()))
                    .collect(),
                ..Message::text(Role::System, "")
            });
        }
        for m in v["messages"].as_array().unwrap() {
            let assistant = m["role"] == "assistant";
            let mut pending = Message {
                content: vec![],
                ..Message::text(
                    if assistant {
                        Role::Assistant
                    } else {
                        Role::User
                    },
                    "",
                )
            };
            for b in m["content"].as_array().unwrap() {
                if let Some(t) = b["text"].as_str() {
                    pending.content.push(ContentPart::Text(t.into()));
                } else if let Some(img) = b.get("image") {
                    let media_type = format!("image/{}", img["format"].as_str().unwrap());
                    let data = img["source"]["bytes"].as_str().unwrap().into();
                    pending.content.push(ContentPart::Image(Image {
                        source: ImageSource::Base64 { media_type, data },
                        detail: None,
                    }));
                } else if let Some(u) = b.get("toolUse") {
                    pending.tool_calls.push(ToolCall {
                        id: u["toolUseId"].as_str().unwrap().into(),
                        name: u["name"].as_str().unwrap().into(),
                        arguments: serde_json::to_string(&u["input"]).unwrap(),
                    });
                } else if let Some(r) = b.get("toolResult") {
                    messages.push(Message {
                        tool_call_id: Some(r["toolUseId"].as_str().unwrap().into()),
                        is_error: r["status"] == "error",
                        content: r["content"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| ContentPart::Text(c["text"].as_str().unwrap().into()))
                            .collect(),
                        ..Message::text(Role::Tool, "")
                    });
                }
            }
            if !pending.content.is_empty() || !pending.tool_calls.is_empty() {
                messages.push(pending);
            }
        }
        let inf = &v["inferenceConfig"];
        let tc = &v["toolConfig"];
        ChatRequest {
            messages,
            tools: tc["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Tool {
                    name: t["toolSpec"]["name"].as_str().unwrap().into(),
                    description: t["toolSpec"]["description"].as_str().map(Into::into),
                    parameters: t["toolSpec"]["inputSchema"]["json"].clone(),
                    strict: None,
                })
                .collect(),
            tool_choice: tc.get("toolChoice").map(|c| {
                if c.get("auto").is_some() {
                    ToolChoice::Auto
                } else if c.get("any").is_some() {
                    ToolChoice::Required
                } else {
                    ToolChoice::Function(c["tool"]["name"].as_str().unwrap().into())
                }
            }),
            max_tokens: inf["maxTokens"].as_u64().map(|n| n as u32),
            temperature: inf["temperature"].as_f64(),
            top_p: inf["topP"].as_f64(),
            stop: inf["stopSequences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap().into())
                .collect(),
            ..ChatRequest::default()
        }
    }

    fn request() -> impl Strategy<Value = ChatRequest> {
        (conversation(CAPS), tools()).prop_flat_map(|(messages, tools)| {
            let has_tools = !tools.is_empty();
            (
                Just(messages),
                Just(tools),
                tool_choice(CAPS, has_tools),
                proptest::option::of(unit_float()),
                proptest::option::of(unit_float()),
                proptest::option::of(1u32..100_000),
                proptest::collection::vec(test_support::text(), 0..3),
            )
                .prop_map(
                    |(messages, tools, tool_choice, temperature, top_p, max_tokens, stop)| {
                        ChatRequest {
                            messages,
                            tools,
                            tool_choice,
                            temperature,
                            top_p,
                            max_tokens,
                            stop,
                            ..ChatRequest::default()
                        }
                    },
                )
        })
    }

    fn response() -> impl Strategy<Value = ChatResponse> {
        (
            proptest::option::of("[a-zA-Z é\n\"]{1,30}"),
            tool_calls(|i| format!("tooluse_{i}")),
            prop_oneof![
                Just(FinishReason::Stop),
                Just(FinishReason::Length),
                Just(FinishReason::ToolCalls),
                Just(FinishReason::ContentFilter)
            ],
            usage(true, false),
        )
            .prop_map(|(content, tool_calls, finish_reason, usage)| ChatResponse {
                id: String::new(),
                model: String::new(),
                created: 0,
                content,
                tool_calls,
                finish_reason,
                stop_sequence: None,
                usage,
            })
    }

    fn stop_reason(r: FinishReason) -> &'static str {
        match r {
            FinishReason::Stop => "end_turn",
            FinishReason::Length => "max_tokens",
            FinishReason::ToolCalls => "tool_use",
            FinishReason::ContentFilter => "content_filtered",
        }
    }

    fn usage_json(u: &TokenUsage) -> Value {
        json!({
            "inputTokens": u.input - u.cached_input - u.cache_write,
            "outputTokens": u.output,
            "totalTokens": u.input + u.output,
            "cacheReadInputTokens": u.cached_input,
            "cacheWriteInputTokens": u.cache_write,
        })
    }

    /// A test-only Converse encoder: the non-streamed body.
    fn whole(resp: &ChatResponse) -> Vec<u8> {
        let mut content: Vec<Value> = resp.content.iter().map(|t| json!({"text": t})).collect();
        for c in &resp.tool_calls {
            let input: Value = serde_json::from_str(&c.arguments).unwrap();
            content.push(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": input}}));
        }
        serde_json::to_vec(&json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(resp.finish_reason),
            "usage": usage_json(&resp.usage),
            "metrics": {"latencyMs": 1},
        }))
        .unwrap()
    }

    /// A test-only ConverseStream encoder: event-stream frames.
    fn frames(resp: &ChatResponse, pieces: usize) -> Vec<u8> {
        let mut b = event("messageStart", json!({"role": "assistant"}));
        let mut block = 0;
        if let Some(t) = &resp.content {
            let chars: Vec<char> = t.chars().collect();
            for piece in chars.chunks(pieces) {
                let piece: String = piece.iter().collect();
                b.extend(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                ));
            }
            b.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
            block += 1;
        }
        for c in &resp.tool_calls {
            b.extend(event("contentBlockStart", json!({"contentBlockIndex": block, "start": {"toolUse": {"toolUseId": c.id, "name": c.name}}})));
            let chars: Vec<char> = c.arguments.chars().collect();
            for piece in chars.chunks(pieces) {
                let piece: String = piece.iter().collect();
                b.extend(event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}}),
                ));
            }
            b.extend(event(
                "contentBlockStop",
                json!({"contentBlockIndex": block}),
            ));
            block += 1;
        }
        b.extend(event(
            "messageStop",
            json!({"stopReason": stop_reason(resp.finish_reason)}),
        ));
        b.extend(event(
            "metadata",
            json!({"usage": usage_json(&resp.usage), "metrics": {"latencyMs": 1}}),
        ));
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_request_then_decode_is_identity(req in request()) {
            let back = decode_request(&encode_request(&req).unwrap());
            prop_assert_eq!(back, req);
        }

        #[test]
        fn streamed_answers_reassemble_to_the_non_streamed_one(
            resp in response(),
            pieces in 1usize..6,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let bytes = frames(&resp, pieces);
            let mut es = EventStreamDecoder::new();
            let mut dec = StreamDecoder::new();
            let mut got = Vec::new();
            for chunk in split(&bytes, &cuts) {
                es.push(chunk);
                while let Some(msg) = es.next_message().unwrap() {
                    got.extend(dec.decode(&msg).unwrap());
                }
            }
            prop_assert!(!es.has_partial_frame());
            prop_assert!(dec.is_done());
            let whole = decode_response(&whole(&resp)).unwrap();
            prop_assert_eq!(&whole, &resp);
            prop_assert_eq!(assemble(&got), assembled(&whole));
        }
    }
}

#[test]
fn decode_error_knows_the_context_window() {
    for message in [
        "Input is too long for requested model.",
        "The model returned the following errors: too many input tokens",
        "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
    ] {
        let raw = serde_json::json!({ "message": message }).to_string();
        let e = decode_error(400, Some("ValidationException"), raw.as_bytes());
        assert_eq!(e.kind, ErrorKind::ContextLengthExceeded, "{message}");
        assert_eq!(e.code.as_deref(), Some("ValidationException"));
    }
    let e = decode_error(400, Some("ValidationException"), br#"{"message":"bad"}"#);
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}
