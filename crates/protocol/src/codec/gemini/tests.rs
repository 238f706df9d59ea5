#![allow(clippy::unwrap_used)]

use super::*;
use crate::canonical::*;
use crate::codec::test_support::{self, assemble, assembled, Caps};
use crate::sse::SseDecoder;
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_types::{ErrorKind, TokenUsage};

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

// === Requests ===

#[test]
fn encode_request_writes_the_generate_content_shape() {
    let mut req = test_support::rich_request();
    req.seed = Some(7);
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: Some(true),
    });
    req.messages[1].content.push(ContentPart::Image(Image {
        source: ImageSource::Url("https://img.example/cat.JPG?x=1".into()),
        detail: None,
    }));
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    insta::assert_json_snapshot!("encode_request", v);
}

#[test]
fn encode_request_maps_tool_choice_results_and_formats() {
    let base = ChatRequest {
        messages: vec![Message::text(Role::User, "x")],
        ..ChatRequest::default()
    };
    let cfg = |c| {
        let v: Value = serde_json::from_slice(
            &encode_request(&ChatRequest {
                tool_choice: Some(c),
                ..base.clone()
            })
            .unwrap(),
        )
        .unwrap();
        v["toolConfig"]["functionCallingConfig"].clone()
    };
    assert_eq!(cfg(ToolChoice::Auto), json!({"mode": "AUTO"}));
    assert_eq!(cfg(ToolChoice::None), json!({"mode": "NONE"}));
    assert_eq!(cfg(ToolChoice::Required), json!({"mode": "ANY"}));
    assert_eq!(
        cfg(ToolChoice::Function("f".into())),
        json!({"mode": "ANY", "allowedFunctionNames": ["f"]})
    );

    let v: Value = serde_json::from_slice(
        &encode_request(&ChatRequest {
            response_format: Some(ResponseFormat::JsonObject),
            ..base.clone()
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );

    let req = ChatRequest {
        messages: vec![
            Message {
                tool_calls: vec![
                    ToolCall {
                        id: "a".into(),
                        name: "f".into(),
                        arguments: "{\"q\":1}".into(),
                    },
                    ToolCall {
                        id: "b".into(),
                        name: "g".into(),
                        arguments: "oops".into(),
                    },
                ],
                ..Message::text(Role::Assistant, "")
            },
            Message {
                tool_call_id: Some("b".into()),
                is_error: true,
                ..Message::text(Role::Tool, "failed")
            },
            Message {
                tool_call_id: Some("a".into()),
                ..Message::text(Role::Tool, "ok")
            },
        ],
        ..base.clone()
    };
    let v: Value = serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(v["contents"][0]["role"], "model");
    assert_eq!(
        v["contents"][0]["parts"][1]["functionCall"],
        json!({"name": "g", "args": {}})
    );
    assert_eq!(
        v["contents"][1],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "g", "response": {"error": "failed"}}},
            {"functionResponse": {"name": "f", "response": {"content": "ok"}}}
        ]})
    );
}

#[test]
fn encode_request_rejects_what_gemini_cannot_express() {
    let base = ChatRequest {
        messages: vec![Message::text(Role::User, "x")],
        ..ChatRequest::default()
    };
    let img = ContentPart::Image(Image {
        source: ImageSource::Url("u".into()),
        detail: None,
    });
    let cases = [
        (
            ChatRequest {
                n: Some(2),
                ..base.clone()
            },
            "`n` > 1",
        ),
        (
            ChatRequest {
                seed: Some(i64::MAX),
                ..base.clone()
            },
            "32-bit",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    tool_call_id: Some("zz".into()),
                    ..Message::text(Role::Tool, "r")
                }],
                ..base.clone()
            },
            "matches no earlier tool call",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    content: vec![img.clone()],
                    ..Message::text(Role::Developer, "")
                }],
                ..base.clone()
            },
            "images in system messages",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    content: vec![img],
                    ..Message::text(Role::Assistant, "")
                }],
                ..base.clone()
            },
            "images in assistant messages",
        ),
    ];
    for (req, feature) in cases {
        let err = encode_request(&req).unwrap_err();
        assert!(err.feature.contains(feature), "{err}");
        assert_eq!(err.protocol, "gemini");
    }
}

// === Responses ===

#[test]
fn decode_response_reads_candidates_calls_and_usage() {
    let r = decode_response(&body(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": true},
            {"text": "a"},
            {"functionCall": {"name": "f", "args": {"b": 1}}},
            {"functionCall": {"id": "given", "name": "g"}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10, "thoughtsTokenCount": 5, "cachedContentTokenCount": 60, "totalTokenCount": 115},
        "modelVersion": "gemini-2.5-flash", "responseId": "r1"
    })))
    .unwrap();
    assert_eq!(
        (r.id.as_str(), r.model.as_str()),
        ("r1", "gemini-2.5-flash")
    );
    assert_eq!(r.content.as_deref(), Some("a"));
    assert_eq!(
        r.tool_calls[0],
        ToolCall {
            id: "call_0".into(),
            name: "f".into(),
            arguments: r#"{"b":1}"#.into()
        }
    );
    assert_eq!(
        r.tool_calls[1],
        ToolCall {
            id: "given".into(),
            name: "g".into(),
            arguments: "{}".into()
        }
    );
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 100,
            output: 15,
            cached_input: 60,
            cache_write: 0,
            reasoning: 5
        }
    );

    for (wire, reason) in [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        ("OTHER", FinishReason::Stop),
    ] {
        let r = decode_response(&body(json!({"candidates": [{"finishReason": wire}]}))).unwrap();
        assert_eq!(r.finish_reason, reason, "{wire}");
    }
    let blocked =
        decode_response(&body(json!({"promptFeedback": {"blockReason": "SAFETY"}}))).unwrap();
    assert_eq!(
        (blocked.finish_reason, blocked.content),
        (FinishReason::ContentFilter, None)
    );
}

// === Errors ===

#[test]
fn decode_error_maps_google_rpc_statuses() {
    let err = |status: u16, code: &str| {
        decode_error(
            status,
            &body(json!({"error": {"code": status, "message": "m", "status": code}})),
        )
    };
    for (status, code, kind) in [
        (429, "RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
        (503, "UNAVAILABLE", ErrorKind::Overloaded),
        (400, "INVALID_ARGUMENT", ErrorKind::InvalidRequest),
        (401, "UNAUTHENTICATED", ErrorKind::UpstreamRejected),
        (403, "PERMISSION_DENIED", ErrorKind::UpstreamRejected),
        (404, "NOT_FOUND", ErrorKind::UpstreamRejected),
        (500, "INTERNAL", ErrorKind::UpstreamServer),
        (504, "DEADLINE_EXCEEDED", ErrorKind::UpstreamTimeout),
        (418, "SOMETHING_NEW", ErrorKind::UpstreamRejected),
    ] {
        let e = err(status, code);
        assert_eq!(e.kind, kind, "{code}");
        assert_eq!(
            (e.message.as_str(), e.code.as_deref(), e.retry_after),
            ("m", Some(code), None)
        );
    }
    let e = decode_error(
        429,
        &body(
            json!([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}
            ]}}]),
        ),
    );
    assert_eq!(
        (e.kind, e.retry_after),
        (ErrorKind::RateLimited, Some(Duration::from_millis(12_500)))
    );
    let e = decode_error(
        400,
        &body(
            json!({"error": {"code": 400, "message": "API key not valid", "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]}}),
        ),
    );
    assert_eq!(e.kind, ErrorKind::UpstreamRejected);
    assert_eq!(
        decode_error(503, b"unavailable").kind,
        ErrorKind::UpstreamServer
    );
}

#[test]
fn durations_parse_like_protobuf_json() {
    use super::error::parse_duration;
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("0.250s"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("1.000000001s"), Some(Duration::new(1, 1)));
    for bad in ["", "s", "5", "-1s", "1.x s", "1.0000000001s"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

// === Streams ===

fn decode_sse(bytes: &[u8]) -> (Vec<StreamEvent>, StreamDecoder, Option<crate::DecodeError>) {
    let mut sse = SseDecoder::new();
    let mut dec = StreamDecoder::new();
    sse.push(bytes);
    let mut got = Vec::new();
    let mut err = None;
    let mut events = Vec::new();
    while let Some(ev) = sse.next_event().unwrap() {
        events.push(ev);
    }
    events.extend(sse.finish());
    for ev in events {
        match dec.decode(ev.data.as_bytes()) {
            Ok(evs) => got.extend(evs),
            Err(e) => err = Some(e),
        }
    }
    (got, dec, err)
}

#[test]
fn stream_decoder_follows_a_crlf_stream_with_a_function_call() {
    let chunks = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}], "usageMetadata": {"promptTokenCount": 9}, "modelVersion": "gemini-x", "responseId": "r"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}, "index": 0}], "usageMetadata": {"promptTokenCount": 9}}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}}),
    ];
    let mut bytes = Vec::new();
    for c in &chunks {
        bytes.extend_from_slice(format!("data: {c}\r\n\r\n").as_bytes());
    }
    let (events, dec, err) = decode_sse(&bytes);
    assert!(err.is_none());
    assert!(dec.is_done());
    let a = assemble(&events);
    assert_eq!(
        (a.id.as_str(), a.model.as_str(), a.text.as_str()),
        ("r", "gemini-x", "Hello")
    );
    assert_eq!(
        a.calls,
        vec![("call_0".into(), "f".into(), "{\"a\":1}".into())]
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        a.usage,
        Some(TokenUsage {
            input: 9,
            output: 4,
            ..TokenUsage::default()
        })
    );
    // Usage is repeated in every chunk but reported only when it changes.
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Usage(_)))
            .count(),
        2
    );
}

#[test]
fn stream_decoder_reports_error_chunks() {
    let bytes = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\ndata: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n";
    let (_, dec, err) = decode_sse(bytes);
    assert!(err.unwrap().message.contains("overloaded"));
    assert_eq!(dec.upstream_error().unwrap().kind, ErrorKind::Overloaded);
    let (_, dec, _) = decode_sse(b"data: {\"error\":{\"code\":429,\"message\":\"x\"}}\n\n");
    assert_eq!(dec.upstream_error().unwrap().kind, ErrorKind::RateLimited);
}

// === Embeddings ===

#[test]
fn embeddings_always_batch_and_vertex_uses_predict() {
    let req = EmbeddingsRequest {
        model: "e".into(),
        input: vec!["a".into()],
        token_input: None,
        dimensions: Some(768),
        base64: false,
    };
    let body = encode_embeddings_request("gemini-embedding-001", &req).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 768}]})
    );

    let many = EmbeddingsRequest {
        input: vec!["a".into(), "b".into()],
        dimensions: None,
        ..req.clone()
    };
    let body = encode_embeddings_request("models/gemini-embedding-001", &many).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["requests"][1],
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}})
    );

    let predict = encode_vertex_embeddings_request(&req).unwrap();
    let v: Value = serde_json::from_slice(&predict).unwrap();
    assert_eq!(
        v,
        json!({"instances": [{"content": "a"}], "parameters": {"outputDimensionality": 768}})
    );
    let answer = decode_vertex_embeddings_response(
        br#"{"predictions":[{"embeddings":{"values":[0.25],"statistics":{"token_count":3,"truncated":false}}},{"embeddings":{"values":[1]}}]}"#,
    )
    .unwrap();
    assert_eq!(answer.vectors, vec![vec![0.25], vec![1.0]]);
    assert_eq!(answer.input_tokens, 3);
    assert!(decode_vertex_embeddings_response(b"{}").is_err());

    let one = decode_embeddings_response(br#"{"embedding":{"values":[0.5,1.5]}}"#).unwrap();
    assert_eq!(one.vectors, vec![vec![0.5, 1.5]]);
    let both = decode_embeddings_response(
        br#"{"embeddings":[{"values":[1]},{"values":[2]}],"usageMetadata":{"promptTokenCount":4}}"#,
    )
    .unwrap();
    assert_eq!((both.vectors.len(), both.input_tokens), (2, 4));
    assert!(decode_embeddings_response(b"{}").is_err());
    let tokens = EmbeddingsRequest {
        token_input: Some(vec![vec![1]]),
        ..req
    };
    assert!(encode_embeddings_request("m", &tokens).is_err());
}

// === Properties ===

mod props {
    use super::*;
    use crate::codec::test_support::{
        conversation, split, tool_calls, tool_choice, tools, unit_float, usage,
    };
    use proptest::prelude::*;

    const CAPS: Caps = Caps {
        url_images: true,
        tool_choice_none: true,
    };

    /// A test-only `generateContent` request reader. Gemini carries no call ids, so calls are
    /// numbered `call_<k>` over the conversation (as the generator numbers them) and each
    /// function response answers the earliest unanswered call with its name.
    fn decode_request(body: &[u8]) -> ChatRequest {
        let v: Value = serde_json::from_slice(body).unwrap();
        let mut messages = Vec::new();
        if let Some(parts) = v["systemInstruction"]["parts"].as_array() {
            messages.push(Message {
                content: parts
                    .iter()
                    .map(|p| ContentPart::Text(p["text"].as_str().unwrap().into()))
                    .collect(),
                ..Message::text(Role::System, "")
            });
        }
        let mut pending_calls: Vec<(String, String)> = Vec::new();
        let mut k = 0;
        for c in v["contents"].as_array().unwrap() {
            let model = c["role"] == "model";
            let mut m = Message {
                content: vec![],
                ..Message::text(if model { Role::Assistant } else { Role::User }, "")
            };
            for p in c["parts"].as_array().unwrap() {
                if let Some(t) = p["text"].as_str() {
                    m.content.push(ContentPart::Text(t.into()));
                } else if let Some(d) = p.get("inlineData") {
                    m.content.push(ContentPart::Image(Image {
                        source: ImageSource::Base64 {
                            media_type: d["mimeType"].as_str().unwrap().into(),
                            data: d["data"].as_str().unwrap().into(),
                        },
                        detail: None,
                    }));
                } else if let Some(f) = p.get("fileData") {
                    m.content.push(ContentPart::Image(Image {
                        source: ImageSource::Url(f["fileUri"].as_str().unwrap().into()),
                        detail: None,
                    }));
                } else if let Some(f) = p.get("functionCall") {
                    let id = format!("call_{k}");
                    k += 1;
                    let name = f["name"].as_str().unwrap().to_owned();
                    pending_calls.push((id.clone(), name.clone()));
                    m.tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments: serde_json::to_string(&f["args"]).unwrap(),
                    });
                } else if let Some(r) = p.get("functionResponse") {
                    let pos = pending_calls
                        .iter()
                        .position(|(_, n)| n == r["name"].as_str().unwrap())
                        .unwrap();
                    let (id, _) = pending_calls.remove(pos);
                    let (text, is_error) = match r["response"].get("error") {
                        Some(e) => (e.as_str().unwrap(), true),
                        None => (r["response"]["content"].as_str().unwrap(), false),
                    };
                    messages.push(Message {
                        tool_call_id: Some(id),
                        is_error,
                        ..Message::text(Role::Tool, text)
                    });
                }
            }
            if !m.content.is_empty() || !m.tool_calls.is_empty() {
                messages.push(m);
            }
        }
        let g = &v["generationConfig"];
        let fcc = &v["toolConfig"]["functionCallingConfig"];
        ChatRequest {
            messages,
            tools: v["tools"][0]["functionDeclarations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| Tool {
                    name: f["name"].as_str().unwrap().into(),
                    description: f["description"].as_str().map(Into::into),
                    parameters: f["parametersJsonSchema"].clone(),
                    strict: None,
                })
                .collect(),
            tool_choice: fcc["mode"].as_str().map(|mode| {
                match (mode, fcc["allowedFunctionNames"][0].as_str()) {
                    ("AUTO", _) => ToolChoice::Auto,
                    ("NONE", _) => ToolChoice::None,
                    ("ANY", Some(name)) => ToolChoice::Function(name.into()),
                    _ => ToolChoice::Required,
                }
            }),
            response_format: g["responseMimeType"].as_str().map(|_| {
                match g.get("responseJsonSchema") {
                    Some(schema) => ResponseFormat::JsonSchema {
                        name: "response".into(),
                        schema: schema.clone(),
                        strict: None,
                    },
                    None => ResponseFormat::JsonObject,
                }
            }),
            max_tokens: g["maxOutputTokens"].as_u64().map(|n| n as u32),
            temperature: g["temperature"].as_f64(),
            top_p: g["topP"].as_f64(),
            seed: g["seed"].as_i64(),
            stop: g["stopSequences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap().into())
                .collect(),
            ..ChatRequest::default()
        }
    }

    /// Tool results carry one text part (Gemini joins a result's text into one string).
    fn request() -> impl Strategy<Value = ChatRequest> {
        (conversation(CAPS), tools()).prop_flat_map(|(messages, tools)| {
            let has_tools = !tools.is_empty();
            (
                Just(messages),
                Just(tools),
                tool_choice(CAPS, has_tools),
                proptest::option::of(prop_oneof![
                    Just(ResponseFormat::JsonObject),
                    Just(ResponseFormat::JsonSchema {
                        name: "response".into(),
                        schema: json!({"type": "object"}),
                        strict: None
                    }),
                ]),
                proptest::option::of(unit_float()),
                proptest::option::of(unit_float()),
                proptest::option::of(1u32..100_000),
                proptest::collection::vec(test_support::text(), 0..3),
                proptest::option::of(any::<i32>().prop_map(i64::from)),
            )
                .prop_map(
                    |(
                        messages,
                        tools,
                        tool_choice,
                        response_format,
                        temperature,
                        top_p,
                        max_tokens,
                        stop,
                        seed,
                    )| ChatRequest {
                        messages,
                        tools,
                        tool_choice,
                        response_format,
                        temperature,
                        top_p,
                        max_tokens,
                        stop,
                        seed,
                        ..ChatRequest::default()
                    },
                )
        })
    }

    fn response() -> impl Strategy<Value = ChatResponse> {
        (
            "[a-z0-9]{1,8}",
            proptest::option::of("[a-zA-Z é\n\"]{1,30}"),
            tool_calls(|i| format!("call_{i}")),
            prop_oneof![
                Just(FinishReason::Stop),
                Just(FinishReason::Length),
                Just(FinishReason::ContentFilter)
            ],
            usage(false, true),
        )
            .prop_map(|(id, content, tool_calls, finish, usage)| ChatResponse {
                id,
                model: "gemini-x".into(),
                created: 0,
                content,
                finish_reason: if finish == FinishReason::Stop && !tool_calls.is_empty() {
                    FinishReason::ToolCalls
                } else {
                    finish
                },
                tool_calls,
                stop_sequence: None,
                usage,
            })
    }

    fn finish_wire(r: FinishReason) -> &'static str {
        match r {
            FinishReason::Length => "MAX_TOKENS",
            FinishReason::ContentFilter => "SAFETY",
            FinishReason::Stop | FinishReason::ToolCalls => "STOP",
        }
    }

    fn usage_json(u: &TokenUsage, last: bool) -> Value {
        if !last {
            return json!({"promptTokenCount": u.input});
        }
        json!({
            "promptTokenCount": u.input,
            "candidatesTokenCount": u.output - u.reasoning,
            "thoughtsTokenCount": u.reasoning,
            "cachedContentTokenCount": u.cached_input,
            "totalTokenCount": u.input + u.output,
        })
    }

    fn chunk(resp: &ChatResponse, parts: Vec<Value>, finish: Option<&str>, last: bool) -> Value {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = json!(f);
        }
        json!({"candidates": [cand], "usageMetadata": usage_json(&resp.usage, last), "modelVersion": resp.model, "responseId": resp.id})
    }

    fn call_parts(resp: &ChatResponse) -> Vec<Value> {
        resp.tool_calls
            .iter()
            .map(|c| json!({"functionCall": {"name": c.name, "args": serde_json::from_str::<Value>(&c.arguments).unwrap()}}))
            .collect()
    }

    /// A test-only non-streamed encoder.
    fn whole(resp: &ChatResponse) -> Vec<u8> {
        let mut parts: Vec<Value> = resp.content.iter().map(|t| json!({"text": t})).collect();
        parts.extend(call_parts(resp));
        serde_json::to_vec(&chunk(
            resp,
            parts,
            Some(finish_wire(resp.finish_reason)),
            true,
        ))
        .unwrap()
    }

    /// A test-only SSE encoder: text in pieces, calls whole, then the finish chunk; CRLF.
    fn sse(resp: &ChatResponse, pieces: usize) -> Vec<u8> {
        let mut chunks = Vec::new();
        if let Some(t) = &resp.content {
            let chars: Vec<char> = t.chars().collect();
            for piece in chars.chunks(pieces) {
                chunks.push(chunk(
                    resp,
                    vec![json!({"text": piece.iter().collect::<String>()})],
                    None,
                    false,
                ));
            }
        }
        if !resp.tool_calls.is_empty() {
            chunks.push(chunk(resp, call_parts(resp), None, false));
        }
        chunks.push(chunk(
            resp,
            vec![json!({"text": ""})],
            Some(finish_wire(resp.finish_reason)),
            true,
        ));
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(format!("data: {c}\r\n\r\n").as_bytes());
        }
        out
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
            let bytes = sse(&resp, pieces);
            let mut dec_sse = SseDecoder::new();
            let mut dec = StreamDecoder::new();
            let mut got = Vec::new();
            for piece in split(&bytes, &cuts) {
                dec_sse.push(piece);
                while let Some(ev) = dec_sse.next_event().unwrap() {
                    got.extend(dec.decode(ev.data.as_bytes()).unwrap());
                }
            }
            prop_assert!(dec_sse.finish().is_none());
            prop_assert!(dec.is_done());
            let whole = decode_response(&whole(&resp)).unwrap();
            prop_assert_eq!(&whole, &resp);
            prop_assert_eq!(assemble(&got), assembled(&whole));
        }
    }
}

#[test]
fn decode_error_knows_the_context_window() {
    let e = decode_error(
        400,
        &body(
            json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}),
        ),
    );
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::ContextLengthExceeded, Some("INVALID_ARGUMENT"))
    );
}
