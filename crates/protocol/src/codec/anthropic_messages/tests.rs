#![allow(clippy::unwrap_used)]

use super::*;
use crate::canonical::*;
use crate::codec::test_support::{self, assemble, assembled, Caps};
use crate::sse::SseDecoder;
use serde_json::{json, Value};
use switchyard_types::{ErrorKind, TokenUsage};

/// The canonical request of a client body (most tests need only that).
fn decode_request(body: &[u8]) -> Result<ChatRequest, crate::DecodeError> {
    super::decode_request(body).map(|p| p.request)
}

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn with(extra: Value) -> Value {
    let mut base = json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn msgs(m: Value) -> Value {
    with(json!({ "messages": m }))
}

// === Ingress: request validation ===

#[test]
fn every_validation_error_names_its_field() {
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            Some("max_tokens"),
            "missing required parameter 'max_tokens'",
        ),
        (
            json!({"max_tokens": 1, "messages": []}),
            Some("model"),
            "missing required parameter 'model'",
        ),
        (
            with(json!({"max_tokens": -1})),
            Some("max_tokens"),
            "positive integer",
        ),
        (
            with(json!({"messages": []})),
            Some("messages"),
            "at least one message",
        ),
        (
            msgs(json!([{"role": "system", "content": "x"}])),
            Some("messages[0].role"),
            "unknown role 'system' in messages[0].role; supported: user, assistant",
        ),
        (
            msgs(json!([{"role": "user"}])),
            Some("messages[0].content"),
            "missing required parameter",
        ),
        (
            msgs(json!([{"role": "user", "content": []}])),
            Some("messages[0].content"),
            "must not be empty",
        ),
        (
            msgs(json!([{"role": "user", "content": 5}])),
            Some("messages[0].content"),
            "a string or an array of content blocks",
        ),
        (
            msgs(
                json!([{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]),
            ),
            Some("messages[0].content[0].type"),
            "only allowed in assistant messages",
        ),
        (
            msgs(
                json!([{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]),
            ),
            Some("messages[0].content[0].type"),
            "only text and tool_use",
        ),
        (
            msgs(
                json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}]}]),
            ),
            Some("messages[0].content[0].input"),
            "expected an object",
        ),
        (
            msgs(
                json!([{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]),
            ),
            Some("messages[0].content[0].id"),
            "missing required parameter",
        ),
        (
            msgs(json!([{"role": "user", "content": [{"type": "tool_result"}]}])),
            Some("messages[0].content[0].tool_use_id"),
            "missing required parameter",
        ),
        (
            msgs(
                json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}]),
            ),
            Some("messages[0].content[0].content[0].type"),
            "only text and image blocks",
        ),
        (
            msgs(
                json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]),
            ),
            Some("messages[0].content[0].source.type"),
            "supported: base64, url",
        ),
        (
            msgs(json!([{"role": "user", "content": [{"type": "image"}]}])),
            Some("messages[0].content[0].source"),
            "missing required parameter",
        ),
        (
            with(json!({"system": 5})),
            Some("system"),
            "a string or an array of text blocks",
        ),
        (
            with(json!({"system": [{"type": "image", "source": {"type": "url", "url": "u"}}]})),
            Some("system[0].type"),
            "only text blocks",
        ),
        (
            with(json!({"tools": [{"name": "f"}]})),
            Some("tools[0].input_schema"),
            "missing required parameter",
        ),
        (
            with(json!({"tool_choice": {"type": "sometimes"}})),
            Some("tool_choice.type"),
            "supported: auto, any, none, tool",
        ),
        (
            with(json!({"tool_choice": {"type": "tool"}})),
            Some("tool_choice.name"),
            "missing required parameter",
        ),
        (
            with(json!({"stop_sequences": "END"})),
            Some("stop_sequences"),
            "an array of strings",
        ),
        (
            with(json!({"metadata": {"user_id": 5}})),
            Some("metadata.user_id"),
            "a string",
        ),
        (
            with(json!({"temperature": "hot"})),
            Some("temperature"),
            "a number",
        ),
    ];
    for (input, param, message) in cases {
        let err = decode_request(&body(input.clone())).unwrap_err();
        assert_eq!(err.param.as_deref(), param, "param for {input}: {err:?}");
        assert!(
            err.message.contains(message),
            "message for {input}: {:?} lacks {message:?}",
            err.message
        );
    }
}

#[test]
fn what_the_canonical_form_cannot_carry_is_listed_and_passes_through_untouched() {
    let raw = json!({
        "model": "claude", "max_tokens": 100, "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "service_tier": "auto", "temperature": null, "switchyard": {"sort": "price"},
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "document", "source": {}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": "c"}
        ]
    });
    let parsed = super::decode_request(&body(raw.clone())).unwrap();
    assert_eq!(
        parsed.untranslated,
        [
            // Document order (`json!` sorts members).
            "thinking",
            "top_k",
            "content blocks of type `document`",
            "content blocks of type `thinking`",
            "tools of type `web_search_20250305`",
            "output_config.effort",
        ]
    );
    // The schema is the canonical response format; the blocks it cannot hold are left out.
    assert!(matches!(
        parsed.request.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    assert!(parsed.request.tools.is_empty());
    assert_eq!(parsed.request.messages[1].joined_text(), "b");
    // Passed through: every member but the gateway's own, in order, with the model replaced.
    let pass: Value = serde_json::from_slice(&parsed.passthrough_body("claude-up")).unwrap();
    let mut want = raw;
    want["model"] = json!("claude-up");
    want.as_object_mut().unwrap().remove("switchyard");
    assert_eq!(pass, want);
    // Neutral defaults ask for nothing.
    let neutral =
        with(json!({"thinking": {"type": "disabled"}, "service_tier": "auto", "top_k": null}));
    assert!(super::decode_request(&body(neutral))
        .unwrap()
        .untranslated
        .is_empty());
    // A count cannot leave blocks out.
    let counted = msgs(json!([{"role": "user", "content": [{"type": "document", "source": {}}]}]));
    let err = decode_count_tokens_request(&body(counted)).unwrap_err();
    assert!(
        err.message.contains("content blocks of type `document`"),
        "{err:?}"
    );
}

#[test]
fn a_full_request_decodes_to_the_canonical_form() {
    let req = decode_request(&body(json!({
        "model": "claude-sonnet",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"z": 1, "a": [1, 2], "s": "x y"}},
                {"type": "tool_use", "id": "toolu_2", "name": "put", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "no"}], "is_error": true},
                {"type": "text", "text": "after"}
            ]}
        ],
        "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "stream": true,
        "metadata": {"user_id": "u-1"},
        "thinking": null
    })))
    .unwrap();
    let system = Message {
        content: vec![ContentPart::Text("a".into()), ContentPart::Text("b".into())],
        ..Message::text(Role::System, "")
    };
    assert_eq!(req.messages[0], system);
    assert_eq!(req.messages[1].content.len(), 3);
    assert_eq!(
        req.messages[1].content[2],
        ContentPart::Image(Image {
            source: ImageSource::Url("https://x/y.png".into()),
            detail: None
        })
    );
    let a = &req.messages[2];
    assert_eq!(a.role, Role::Assistant);
    assert_eq!(a.joined_text(), "calling");
    // (`json!` sorts keys; member order is kept, see the next test.)
    assert_eq!(a.tool_calls[0].arguments, r#"{"a":[1,2],"s":"x y","z":1}"#);
    assert_eq!(a.tool_calls[1].arguments, "{}");
    let roles: Vec<Role> = req.messages[3..].iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Tool, Role::Tool, Role::User]);
    assert_eq!(req.messages[4].tool_call_id.as_deref(), Some("toolu_1"));
    assert!(!req.messages[4].is_error);
    assert!(req.messages[5].is_error);
    assert_eq!(req.messages[6].joined_text(), "after");
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.stop, ["END"]);
    assert_eq!(req.max_tokens, Some(512));
    assert!(req.stream && req.include_usage);
    assert_eq!(req.user.as_deref(), Some("u-1"));
}

#[test]
fn tool_use_input_keeps_member_order_and_is_compacted() {
    let raw = br#"{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[
        {"type":"tool_use","id":"t","name":"f","input":{ "z" : 1,
        "a" : "x y\" }" }}]}]}"#;
    let req = decode_request(raw).unwrap();
    assert_eq!(
        req.messages[0].tool_calls[0].arguments,
        r#"{"z":1,"a":"x y\" }"}"#
    );
    let up = br#"{"content":[{"type":"tool_use","id":"t","name":"f","input":{"b": 1, "a": 2}}]}"#;
    assert_eq!(
        decode_response(up).unwrap().tool_calls[0].arguments,
        r#"{"b":1,"a":2}"#
    );
}

#[test]
fn count_tokens_does_not_require_max_tokens() {
    let b = body(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    assert!(decode_request(&b).is_err());
    let req = decode_count_tokens_request(&b).unwrap();
    assert_eq!(req.max_tokens, None);
    assert_eq!(encode_count_tokens_response(17), br#"{"input_tokens":17}"#);
}

// === Egress: requests ===

#[test]
fn encode_request_writes_the_anthropic_shape() {
    let v: Value = serde_json::from_slice(
        &encode_request(&test_support::rich_request(), "claude-up", 1024).unwrap(),
    )
    .unwrap();
    insta::assert_json_snapshot!("encode_request", v);
}

#[test]
fn encode_request_merges_turns_and_applies_defaults() {
    let req = ChatRequest {
        messages: vec![
            Message::text(Role::Developer, "d"),
            Message::text(Role::User, "a"),
            Message::text(Role::User, ""),
            Message::text(Role::User, "b"),
            Message {
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "not json".into(),
                }],
                ..Message::text(Role::Assistant, "")
            },
            Message::text(Role::User, "text first"),
            Message {
                tool_call_id: Some("c".into()),
                ..Message::text(Role::Tool, "r")
            },
        ],
        tools: vec![Tool {
            name: "f".into(),
            description: None,
            parameters: Value::Null,
            strict: None,
        }],
        parallel_tool_calls: Some(false),
        n: Some(1),
        user: Some("u".into()),
        ..ChatRequest::default()
    };
    let seeded = ChatRequest {
        seed: Some(3),
        ..req.clone()
    };
    assert_eq!(
        encode_request(&seeded, "up", 99).unwrap_err().feature,
        "`seed`"
    );
    let v: Value = serde_json::from_slice(&encode_request(&req, "up", 99).unwrap()).unwrap();
    assert_eq!(v["max_tokens"], 99);
    assert_eq!(v["system"], json!([{"type": "text", "text": "d"}]));
    assert_eq!(
        v["messages"][0]["content"],
        json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    );
    assert_eq!(v["messages"][1]["content"][0]["input"], json!({}));
    // The tool result leads the merged user turn.
    assert_eq!(v["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(v["messages"][2]["content"][1]["text"], "text first");
    assert_eq!(v["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(
        v["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(v["metadata"], json!({"user_id": "u"}));
    assert!(v.get("seed").is_none());
}

#[test]
fn encode_request_rejects_what_anthropic_cannot_express() {
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
                response_format: Some(ResponseFormat::JsonSchema {
                    name: "f".into(),
                    schema: json!({}),
                    strict: None,
                }),
                tools: vec![Tool {
                    name: "f".into(),
                    description: None,
                    parameters: Value::Null,
                    strict: None,
                }],
                ..base.clone()
            },
            "alongside a tool of the same name (`f`)",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    content: vec![img.clone()],
                    ..Message::text(Role::System, "")
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
        let err = encode_request(&req, "m", 10).unwrap_err();
        assert!(err.feature.contains(feature), "{err}");
        assert!(
            err.to_string()
                .starts_with("the deployment's protocol (anthropic) cannot express"),
            "{err}"
        );
    }
    assert!(encode_request(
        &ChatRequest {
            response_format: Some(ResponseFormat::Text),
            ..base
        },
        "m",
        1
    )
    .is_ok());
}

// === Responses ===

#[test]
fn encode_response_text_with_stop_sequence_and_tool_use() {
    let text = ChatResponse {
        id: "chatcmpl-9".into(),
        content: Some("Hello".into()),
        tool_calls: vec![],
        finish_reason: FinishReason::Stop,
        stop_sequence: Some("END".into()),
        ..test_support::tool_response()
    };
    let v: Value = serde_json::from_slice(&encode_response(&text)).unwrap();
    insta::assert_json_snapshot!("encode_response_text", v);
    let v: Value =
        serde_json::from_slice(&encode_response(&test_support::tool_response())).unwrap();
    insta::assert_json_snapshot!("encode_response_tool_use", v);
}

#[test]
fn encode_response_maps_every_finish_reason_and_survives_bad_arguments() {
    for (reason, wire) in [
        (FinishReason::Stop, "end_turn"),
        (FinishReason::Length, "max_tokens"),
        (FinishReason::ToolCalls, "tool_use"),
        (FinishReason::ContentFilter, "refusal"),
    ] {
        let resp = ChatResponse {
            finish_reason: reason,
            ..test_support::tool_response()
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
        assert_eq!(v["stop_reason"], wire);
        assert_eq!(v["stop_sequence"], Value::Null);
    }
    let mut resp = test_support::tool_response();
    resp.tool_calls[0].arguments = "{\"city\": \"Par".into();
    resp.tool_calls[1].arguments = "[1]".into();
    let v: Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
    assert_eq!(v["content"][1]["input"], json!({}));
    assert_eq!(v["content"][2]["input"], json!({}));
}

#[test]
fn decode_response_reads_blocks_stop_reasons_and_usage() {
    let b = body(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "a", "citations": null},
            {"type": "text", "text": "b"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"b": 1,  "a": "x"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 20, "output_tokens": 7, "service_tier": "standard"}
    }));
    let r = decode_response(&b).unwrap();
    assert_eq!(r.content.as_deref(), Some("ab"));
    assert_eq!(r.tool_calls[0].arguments, r#"{"a":"x","b":1}"#);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 33,
            output: 7,
            cached_input: 20,
            cache_write: 3,
            reasoning: 0
        }
    );

    for (wire, reason) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Stop),
        ("model_context_window_exceeded", FinishReason::Length),
    ] {
        let r = decode_response(&body(
            json!({"content": [], "stop_reason": wire, "stop_sequence": "X"}),
        ))
        .unwrap();
        assert_eq!(r.finish_reason, reason, "{wire}");
        assert_eq!(
            r.stop_sequence.is_some(),
            reason == FinishReason::Stop,
            "{wire}"
        );
    }
    assert!(decode_response(b"not json").is_err());
}

#[test]
fn responses_round_trip_through_encode_and_decode() {
    let resp = test_support::tool_response();
    assert_eq!(decode_response(&encode_response(&resp)).unwrap(), resp);
}

// === Errors ===

#[test]
fn encode_error_per_kind() {
    let expected = [
        (ErrorKind::InvalidRequest, 400, "invalid_request_error"),
        (ErrorKind::ContentFilter, 400, "invalid_request_error"),
        (ErrorKind::Authentication, 401, "authentication_error"),
        (ErrorKind::PermissionDenied, 403, "permission_error"),
        (ErrorKind::NotFound, 404, "not_found_error"),
        (ErrorKind::PayloadTooLarge, 413, "request_too_large"),
        (ErrorKind::RateLimited, 429, "rate_limit_error"),
        (ErrorKind::Overloaded, 529, "overloaded_error"),
        (ErrorKind::NoCapacity, 503, "overloaded_error"),
        (ErrorKind::UpstreamTimeout, 504, "timeout_error"),
        (ErrorKind::Internal, 500, "api_error"),
        (ErrorKind::UpstreamServer, 502, "api_error"),
        (ErrorKind::UpstreamRejected, 502, "api_error"),
        (ErrorKind::UpstreamProtocol, 502, "api_error"),
        (ErrorKind::UpstreamConnect, 502, "api_error"),
    ];
    for (kind, status, name) in expected {
        let (s, b) = encode_error(kind, "boom \"x\"");
        assert_eq!(s, status, "{kind:?}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": name, "message": "boom \"x\""}})
        );
    }
}

#[test]
fn decode_error_maps_status_and_types() {
    let e = |status, t: &str| {
        decode_error(
            status,
            &body(json!({"type": "error", "error": {"type": t, "message": "m"}})),
        )
        .kind
    };
    assert_eq!(e(529, "overloaded_error"), ErrorKind::Overloaded);
    assert_eq!(e(500, "overloaded_error"), ErrorKind::Overloaded);
    assert_eq!(e(429, "rate_limit_error"), ErrorKind::RateLimited);
    assert_eq!(e(400, "invalid_request_error"), ErrorKind::InvalidRequest);
    assert_eq!(e(401, "authentication_error"), ErrorKind::UpstreamRejected);
    assert_eq!(e(403, "permission_error"), ErrorKind::UpstreamRejected);
    assert_eq!(e(404, "not_found_error"), ErrorKind::UpstreamRejected);
    assert_eq!(e(402, "billing_error"), ErrorKind::UpstreamRejected);
    assert_eq!(e(413, "request_too_large"), ErrorKind::PayloadTooLarge);
    assert_eq!(e(500, "api_error"), ErrorKind::UpstreamServer);
    assert_eq!(e(504, "timeout_error"), ErrorKind::UpstreamTimeout);
    let d = decode_error(
        429,
        &body(json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})),
    );
    assert_eq!(
        (d.message.as_str(), d.code.as_deref(), d.retry_after),
        ("slow", Some("rate_limit_error"), None)
    );
    let d = decode_error(502, b"<html>bad gateway</html>");
    assert_eq!(
        (d.kind, d.message.as_str()),
        (ErrorKind::UpstreamServer, "<html>bad gateway</html>")
    );
}

// === Streams ===

fn encode_all(events: &[StreamEvent]) -> String {
    let mut enc = StreamEncoder::new("01", "claude-x".into());
    let mut out = Vec::new();
    for ev in events {
        enc.encode(ev, &mut out);
    }
    enc.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "up".into(),
        model: "m".into(),
        created: 1,
    }
}

#[test]
fn stream_encoder_text() {
    let events = [
        start(),
        StreamEvent::TextDelta("Hel".into()),
        StreamEvent::TextDelta("".into()),
        StreamEvent::TextDelta("lo".into()),
        StreamEvent::StopSequence("END".into()),
        StreamEvent::Finish(FinishReason::Stop),
        StreamEvent::Usage(TokenUsage {
            input: 12,
            output: 3,
            cached_input: 2,
            cache_write: 0,
            reasoning: 0,
        }),
    ];
    insta::assert_snapshot!("stream_text", encode_all(&events));
}

#[test]
fn stream_encoder_tool_use() {
    let events = [
        start(),
        StreamEvent::Usage(TokenUsage {
            input: 40,
            output: 1,
            ..TokenUsage::default()
        }),
        StreamEvent::TextDelta("Checking.".into()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_a".into(),
            name: "weather".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{\"city\":".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "\"Paris\"}".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "toolu_b".into(),
            name: "time".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            arguments: "{}".into(),
        },
        StreamEvent::Finish(FinishReason::ToolCalls),
        StreamEvent::Usage(TokenUsage {
            input: 40,
            output: 25,
            ..TokenUsage::default()
        }),
    ];
    insta::assert_snapshot!("stream_tool_use", encode_all(&events));
}

#[test]
fn stream_encoder_error_ends_the_stream() {
    let mut enc = StreamEncoder::new("msg_1", "m".into());
    let mut out = Vec::new();
    enc.encode(&StreamEvent::TextDelta("partial".into()), &mut out);
    enc.error(ErrorKind::Overloaded, "upstream overloaded", &mut out);
    enc.encode(&StreamEvent::TextDelta("more".into()), &mut out);
    enc.finish(&mut out);
    insta::assert_snapshot!("stream_error", String::from_utf8(out).unwrap());
}

fn decode_sse(bytes: &[u8]) -> (Vec<StreamEvent>, StreamDecoder, Option<crate::DecodeError>) {
    let mut sse = SseDecoder::new();
    let mut dec = StreamDecoder::new();
    sse.push(bytes);
    let mut got = Vec::new();
    let mut err = None;
    while let Some(ev) = sse.next_event().unwrap() {
        match dec.decode(ev.event.as_deref(), ev.data.as_bytes()) {
            Ok(evs) => got.extend(evs),
            Err(e) => err = Some(e),
        }
    }
    (got, dec, err)
}

#[test]
fn stream_decoder_combines_usage_without_double_counting() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":20,\"cache_creation_input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"g\",\"input\":{}}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let (events, dec, err) = decode_sse(stream.as_bytes());
    assert!(err.is_none());
    assert!(dec.is_done());
    let a = assemble(&events);
    assert_eq!(
        (a.id.as_str(), a.model.as_str(), a.text.as_str()),
        ("msg_1", "claude-x", "Hi")
    );
    assert_eq!(
        a.calls,
        vec![
            ("toolu_1".into(), "f".into(), "{\"a\":1}".into()),
            ("toolu_2".into(), "g".into(), "{}".into())
        ]
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
    let final_usage = TokenUsage {
        input: 33,
        output: 15,
        cached_input: 20,
        cache_write: 3,
        reasoning: 0,
    };
    assert_eq!(a.usage, Some(final_usage));
    // Input was already known after message_start.
    assert!(matches!(
        events[1],
        StreamEvent::Usage(TokenUsage {
            input: 33,
            output: 1,
            ..
        })
    ));
    assert_eq!(dec.usage(), final_usage);
}

#[test]
fn stream_decoder_reports_error_events_and_stop_sequences() {
    let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":5}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (_, dec, err) = decode_sse(stream.as_bytes());
    assert!(err.unwrap().message.contains("Overloaded"));
    let e = dec.upstream_error().unwrap();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Overloaded, "Overloaded")
    );
    assert_eq!(dec.usage().input, 5);

    let stream = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\"},\"usage\":{\"output_tokens\":2}}\n\n";
    let (events, _, _) = decode_sse(stream.as_bytes());
    assert_eq!(events[0], StreamEvent::StopSequence("END".into()));
    assert_eq!(events[1], StreamEvent::Finish(FinishReason::Stop));
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

    fn request() -> impl Strategy<Value = ChatRequest> {
        (conversation(CAPS), tools()).prop_flat_map(|(messages, tools)| {
            let has_tools = !tools.is_empty();
            (
                Just(messages),
                Just(tools),
                tool_choice(CAPS, has_tools),
                prop_oneof![Just(None), Just(Some(false))],
                proptest::option::of(unit_float()),
                proptest::option::of(unit_float()),
                1u32..100_000,
                proptest::collection::vec(test_support::text(), 0..3),
                any::<bool>(),
                proptest::option::of("[a-z0-9-]{1,8}"),
            )
                .prop_map(
                    |(
                        messages,
                        tools,
                        tool_choice,
                        parallel_tool_calls,
                        temperature,
                        top_p,
                        max,
                        stop,
                        stream,
                        user,
                    )| ChatRequest {
                        model: "claude-up".into(),
                        messages,
                        tools,
                        tool_choice,
                        parallel_tool_calls,
                        temperature,
                        top_p,
                        max_tokens: Some(max),
                        stop,
                        stream,
                        include_usage: stream,
                        user,
                        ..ChatRequest::default()
                    },
                )
        })
    }

    /// What survives encode → decode: `parallel_tool_calls: false` rides on `tool_choice`
    /// (`disable_parallel_tool_use`), which `none` cannot carry and which, without a choice,
    /// is sent as `auto`.
    fn normalise(mut req: ChatRequest) -> ChatRequest {
        if req.parallel_tool_calls == Some(false) {
            match req.tool_choice {
                Some(ToolChoice::None) => req.parallel_tool_calls = None,
                None if !req.tools.is_empty() => req.tool_choice = Some(ToolChoice::Auto),
                None => req.parallel_tool_calls = None,
                _ => {}
            }
        }
        req
    }

    fn response() -> impl Strategy<Value = ChatResponse> {
        (
            "[a-z0-9]{1,8}",
            proptest::option::of("[a-zA-Z é\n\"]{1,30}"),
            tool_calls(|i| format!("toolu_{i}")),
            prop_oneof![
                Just(FinishReason::Stop),
                Just(FinishReason::Length),
                Just(FinishReason::ToolCalls),
                Just(FinishReason::ContentFilter)
            ],
            proptest::option::of("[A-Z]{1,4}"),
            usage(true, false),
        )
            .prop_map(|(id, content, tool_calls, finish_reason, stop, usage)| {
                ChatResponse {
                    id: format!("msg_{id}"),
                    model: "claude-x".into(),
                    created: 0,
                    content,
                    tool_calls,
                    finish_reason,
                    stop_sequence: stop.filter(|_| finish_reason == FinishReason::Stop),
                    usage,
                }
            })
    }

    /// A response as an upstream stream: the encoder's events, with pings between them.
    fn stream_events(resp: &ChatResponse, pieces: usize) -> Vec<StreamEvent> {
        let mut ev = vec![StreamEvent::Start {
            id: resp.id.clone(),
            model: resp.model.clone(),
            created: 0,
        }];
        ev.push(StreamEvent::Usage(TokenUsage {
            output: 1,
            ..resp.usage
        }));
        if let Some(t) = &resp.content {
            let chars: Vec<char> = t.chars().collect();
            for chunk in chars.chunks(pieces.max(1)) {
                ev.push(StreamEvent::TextDelta(chunk.iter().collect()));
            }
        }
        for (i, c) in resp.tool_calls.iter().enumerate() {
            let index = i as u32;
            ev.push(StreamEvent::ToolCallStart {
                index,
                id: c.id.clone(),
                name: c.name.clone(),
            });
            let mut mid = c.arguments.len() / 2;
            while !c.arguments.is_char_boundary(mid) {
                mid -= 1;
            }
            let (a, b) = c.arguments.split_at(mid);
            for frag in [a, b] {
                ev.push(StreamEvent::ToolCallDelta {
                    index,
                    arguments: frag.to_owned(),
                });
            }
        }
        if let Some(s) = &resp.stop_sequence {
            ev.push(StreamEvent::StopSequence(s.clone()));
        }
        ev.push(StreamEvent::Finish(resp.finish_reason));
        ev.push(StreamEvent::Usage(resp.usage));
        ev
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_request_then_decode_request_is_identity(req in request()) {
            let bytes = encode_request(&req, "claude-up", 4096).unwrap();
            let back = decode_request(&bytes).unwrap();
            prop_assert_eq!(back, normalise(req));
        }

        #[test]
        fn streamed_answers_reassemble_to_the_non_streamed_one(
            resp in response(),
            pieces in 1usize..6,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let mut enc = StreamEncoder::new(&resp.id, resp.model.clone());
            let mut bytes = Vec::new();
            for (i, ev) in stream_events(&resp, pieces).iter().enumerate() {
                if i % 3 == 1 {
                    bytes.extend_from_slice(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
                }
                enc.encode(ev, &mut bytes);
            }
            enc.finish(&mut bytes);

            let mut sse = SseDecoder::new();
            let mut dec = StreamDecoder::new();
            let mut got = Vec::new();
            for chunk in split(&bytes, &cuts) {
                sse.push(chunk);
                while let Some(ev) = sse.next_event().unwrap() {
                    got.extend(dec.decode(ev.event.as_deref(), ev.data.as_bytes()).unwrap());
                }
            }
            prop_assert!(sse.finish().is_none());
            prop_assert!(dec.is_done());
            let whole = decode_response(&encode_response(&resp)).unwrap();
            prop_assert_eq!(&whole, &resp);
            prop_assert_eq!(assemble(&got), assembled(&whole));
        }
    }
}

#[test]
fn decode_error_knows_the_context_window_and_the_content_filter() {
    let d = decode_error(
        400,
        &body(
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 208310 tokens > 200000 maximum"}}),
        ),
    );
    assert_eq!(
        (d.kind, d.code.as_deref()),
        (
            ErrorKind::ContextLengthExceeded,
            Some("invalid_request_error")
        )
    );
    let d = decode_error(
        400,
        &body(
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Output blocked by content filtering policy"}}),
        ),
    );
    assert_eq!(d.kind, ErrorKind::ContentFilter);
    assert_eq!(
        encode_error(ErrorKind::ContextLengthExceeded, "too long").0,
        400
    );
}
