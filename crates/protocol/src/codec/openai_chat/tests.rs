#![allow(clippy::unwrap_used)]

use super::*;
use crate::canonical::*;
use crate::sse::SseDecoder;
use serde_json::{json, Value};
use switchyard_types::{ErrorKind, TokenUsage};

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn decode_err(v: Value) -> DecodeErrorView {
    decode_raw_err(&body(v))
}

fn decode_raw_err(bytes: &[u8]) -> DecodeErrorView {
    match decode_request(bytes) {
        Ok(_) => panic!("expected an error for {}", String::from_utf8_lossy(bytes)),
        Err(e) => DecodeErrorView {
            message: e.message,
            param: e.param,
        },
    }
}

#[derive(Debug)]
struct DecodeErrorView {
    message: String,
    param: Option<String>,
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn with(extra: Value) -> Value {
    let mut base = json!({"model": "gpt-4o", "messages": [user("hi")]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

// === Request validation ===

#[test]
fn every_validation_error_names_its_field() {
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (json!([1, 2]), None, "must be a JSON object"),
        (json!("x"), None, "must be a JSON object"),
        (json!({"messages": [user("hi")]}), Some("model"), "missing required parameter 'model'"),
        (json!({"model": 5, "messages": [user("hi")]}), Some("model"), "expected a string, got the number 5"),
        (json!({"model": "m"}), Some("messages"), "missing required parameter 'messages'"),
        (json!({"model": "m", "messages": {}}), Some("messages"), "expected an array, got an object"),
        (json!({"model": "m", "messages": []}), Some("messages"), "at least one message"),
        (with(json!({"temperature": "hot"})), Some("temperature"), "expected a number, got the string \"hot\""),
        (with(json!({"top_p": true})), Some("top_p"), "expected a number"),
        (with(json!({"max_tokens": -5})), Some("max_tokens"), "expected a non-negative integer, got the number -5"),
        (with(json!({"max_completion_tokens": 1.5})), Some("max_completion_tokens"), "non-negative integer"),
        (with(json!({"n": "2"})), Some("n"), "positive integer"),
        (with(json!({"seed": "x"})), Some("seed"), "an integer"),
        (with(json!({"stream": "yes"})), Some("stream"), "a boolean"),
        (with(json!({"stream_options": 1})), Some("stream_options"), "expected an object"),
        (with(json!({"stream_options": {"include_usage": "y"}})), Some("stream_options.include_usage"), "a boolean"),
        (with(json!({"stop": 5})), Some("stop"), "a string or an array of strings"),
        (with(json!({"stop": ["a", 1]})), Some("stop"), "a string or an array of strings"),
        (with(json!({"user": 1})), Some("user"), "a string"),
        (with(json!({"parallel_tool_calls": "no"})), Some("parallel_tool_calls"), "a boolean"),
        (with(json!({"messages": ["hi"]})), Some("messages[0]"), "expected an object, got the string"),
        (with(json!({"messages": [{"content": "x"}]})), Some("messages[0].role"), "missing required parameter 'messages[0].role'"),
        (
            with(json!({"messages": [user("a"), {"role": "wizard", "content": "x"}]})),
            Some("messages[1].role"),
            "unknown role 'wizard' in messages[1].role; supported: system, developer, user, assistant, tool",
        ),
        (with(json!({"messages": [{"role": "user"}]})), Some("messages[0].content"), "missing required parameter 'messages[0].content' (role 'user')"),
        (with(json!({"messages": [{"role": "system", "content": null}]})), Some("messages[0].content"), "(role 'system')"),
        (with(json!({"messages": [{"role": "developer", "content": []}]})), Some("messages[0].content"), "must not be an empty array"),
        (with(json!({"messages": [{"role": "user", "content": 7}]})), Some("messages[0].content"), "expected a string or an array of content parts"),
        (with(json!({"messages": [{"role": "assistant"}]})), Some("messages[0].content"), "must have 'content' or 'tool_calls'"),
        (with(json!({"messages": [{"role": "assistant", "content": null, "tool_calls": []}]})), Some("messages[0].content"), "must have 'content' or 'tool_calls'"),
        (with(json!({"messages": [{"role": "tool", "content": "42"}]})), Some("messages[0].tool_call_id"), "missing required parameter 'messages[0].tool_call_id' (role 'tool')"),
        (with(json!({"messages": [{"role": "tool", "content": "42", "tool_call_id": 3}]})), Some("messages[0].tool_call_id"), "a string"),
        (
            with(json!({"messages": [user("a"), user("b"), {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})),
            Some("messages[2].content[0].type"),
            "unsupported content part type 'input_audio' in messages[2].content[0]; supported: text, image_url",
        ),
        (with(json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})), Some("messages[0].content[0].type"), "missing required parameter"),
        (with(json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]})), Some("messages[0].content[0].text"), "missing required parameter"),
        (with(json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})), Some("messages[0].content[0].image_url"), "missing required parameter"),
        (with(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})), Some("messages[0].content[0].image_url.url"), "missing required parameter"),
        (with(json!({"messages": [{"role": "user", "content": ["x"]}]})), Some("messages[0].content[0]"), "expected an object"),
        (
            with(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}]})),
            Some("messages[0].tool_calls[0].type"),
            "unsupported tool call type 'custom' in messages[0].tool_calls[0]; supported: function",
        ),
        (with(json!({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]})), Some("messages[0].tool_calls[0].id"), "missing required parameter"),
        (with(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]})), Some("messages[0].tool_calls[0].function"), "missing required parameter"),
        (with(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]}]})), Some("messages[0].tool_calls[0].function.arguments"), "a JSON string"),
        (with(json!({"messages": [{"role": "assistant", "tool_calls": {}}]})), Some("messages[0].tool_calls"), "expected an array"),
        (with(json!({"tools": {}})), Some("tools"), "expected an array"),
        (with(json!({"tools": [{"type": "web_search"}]})), Some("tools[0].type"), "unsupported tool type 'web_search' in tools[0]; supported: function"),
        (with(json!({"tools": [{"type": "function"}]})), Some("tools[0].function"), "missing required parameter"),
        (with(json!({"tools": [{"type": "function", "function": {"description": "d"}}]})), Some("tools[0].function.name"), "missing required parameter"),
        (with(json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]})), Some("tools[0].function.parameters"), "expected an object"),
        (with(json!({"tool_choice": "sometimes"})), Some("tool_choice"), "invalid 'tool_choice'"),
        (with(json!({"tool_choice": 1})), Some("tool_choice"), "invalid 'tool_choice'"),
        (with(json!({"tool_choice": {"type": "allowed_tools"}})), Some("tool_choice"), "invalid 'tool_choice'"),
        (with(json!({"tool_choice": {"type": "function"}})), Some("tool_choice.function"), "missing required parameter"),
        (with(json!({"tool_choice": {"type": "function", "function": {}}})), Some("tool_choice.function.name"), "missing required parameter"),
        (with(json!({"response_format": "json"})), Some("response_format"), "expected an object"),
        (with(json!({"response_format": {}})), Some("response_format.type"), "missing required parameter"),
        (with(json!({"response_format": {"type": "yaml"}})), Some("response_format.type"), "supported: text, json_object, json_schema"),
        (with(json!({"response_format": {"type": "json_schema"}})), Some("response_format.json_schema"), "missing required parameter"),
        (with(json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}})), Some("response_format.json_schema.name"), "missing required parameter"),
    ];
    for (input, param, message) in cases {
        let err = decode_err(input.clone());
        assert_eq!(err.param.as_deref(), param, "param for {input}: {err:?}");
        assert!(
            err.message.contains(message),
            "message for {input}: {:?} lacks {message:?}",
            err.message
        );
    }
}

#[test]
fn invalid_json_reports_line_and_column() {
    let err = decode_raw_err(b"{\"model\": \"m\",\n  \"messages\": [}");
    assert!(
        err.message.starts_with("request body is not valid JSON"),
        "{err:?}"
    );
    assert!(err.message.contains("line 2 column"), "{err:?}");
    assert_eq!(err.param, None);
}

#[test]
fn invalid_utf8_and_empty_bodies_are_rejected() {
    let err = decode_raw_err(b"{\"model\": \"\xFF\"}");
    assert!(err.message.contains("not valid UTF-8"), "{err:?}");
    let err = decode_raw_err(b"   ");
    assert!(err.message.contains("empty"), "{err:?}");
    let err = decode_raw_err(b"{\"model\": \"m\", \"messages\": [] } trailing");
    assert!(err.message.contains("not valid JSON"), "{err:?}");
}

#[test]
fn a_full_request_decodes_to_the_canonical_form() {
    let req = decode_request(&body(json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": "https://old/form.png"}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"q\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"}
        ],
        "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "get"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
        "temperature": 0.5,
        "top_p": 1,
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "stop": "END",
        "seed": -3,
        "n": 2,
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "u-1",
        "metadata": {"unknown": "kept"},
        "logit_bias": null
    })))
    .unwrap()
    .request;
    assert_eq!(req.model, "gpt-4o");
    assert_eq!(req.messages.len(), 5);
    assert_eq!(req.messages[0], Message::text(Role::Developer, "be brief"));
    assert_eq!(req.messages[1].joined_text(), "ab");
    let parts = &req.messages[2].content;
    assert_eq!(req.messages[2].name.as_deref(), Some("ann"));
    assert_eq!(
        parts[1],
        ContentPart::Image(Image {
            source: ImageSource::Url("https://x/y.png".into()),
            detail: Some("low".into())
        })
    );
    assert_eq!(
        parts[2],
        ContentPart::Image(Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            },
            detail: None
        })
    );
    assert_eq!(
        parts[3],
        ContentPart::Image(Image {
            source: ImageSource::Url("https://old/form.png".into()),
            detail: None
        })
    );
    assert_eq!(
        req.messages[3].tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "get".into(),
            arguments: "{\"q\":1}".into()
        }]
    );
    assert!(req.messages[3].content.is_empty());
    assert_eq!(req.messages[4].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(req.tools[0].strict, Some(true));
    assert_eq!(req.tool_choice, Some(ToolChoice::Function("get".into())));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert!(
        matches!(req.response_format, Some(ResponseFormat::JsonSchema { ref name, strict: Some(true), .. }) if name == "s")
    );
    assert_eq!(req.temperature, Some(0.5));
    assert_eq!(req.top_p, Some(1.0));
    assert_eq!(req.max_tokens, Some(20), "max_completion_tokens wins");
    assert_eq!(req.stop, vec!["END".to_owned()]);
    assert_eq!(req.seed, Some(-3));
    assert_eq!(req.n, Some(2));
    assert!(req.stream && req.include_usage);
    assert_eq!(req.user.as_deref(), Some("u-1"));
}

#[test]
fn nulls_count_as_absent_and_max_tokens_is_the_fallback() {
    let req = decode_request(&body(with(json!({
        "temperature": null, "tools": null, "tool_choice": null, "stop": ["a", "b"],
        "max_tokens": 7, "stream_options": null, "response_format": {"type": "json_object"},
        "tool_choice": "required"
    }))))
    .unwrap()
    .request;
    assert_eq!(req.temperature, None);
    assert!(req.tools.is_empty());
    assert_eq!(req.stop, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(req.max_tokens, Some(7));
    assert!(!req.stream && !req.include_usage);
    assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
}

// === Pass-through ===

fn passthrough(raw: &str, force: bool) -> String {
    let parsed = decode_request(raw.as_bytes()).unwrap();
    String::from_utf8(parsed.passthrough_body("gpt-4o-2024-08-06", force)).unwrap()
}

#[test]
fn passthrough_rewrites_only_the_model() {
    let raw = r#"{ "messages" : [ {"role":"user","content":"h\u00e9 \"x\""} ],
        "model":"fast", "temperature": 0.70, "x-custom": {"a" : [1, 2]} }"#;
    insta::assert_snapshot!("passthrough_model_only", passthrough(raw, true));
}

#[test]
fn passthrough_adds_stream_options_when_streaming() {
    let raw = r#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    insta::assert_snapshot!("passthrough_adds_stream_options", passthrough(raw, true));
    // Without force, nothing is added.
    assert_eq!(
        passthrough(raw, false),
        r#"{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"hi"}],"stream":true}"#
    );
}

#[test]
fn passthrough_sets_include_usage_and_keeps_other_stream_options() {
    let raw = r#"{"stream_options":{"include_obfuscation":false,"include_usage":false},"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    insta::assert_snapshot!(
        "passthrough_rewrites_stream_options",
        passthrough(raw, true)
    );
    let raw = r#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":null}"#;
    insta::assert_snapshot!(
        "passthrough_replaces_null_stream_options",
        passthrough(raw, true)
    );
    let raw = r#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_obfuscation":false}}"#;
    insta::assert_snapshot!("passthrough_appends_include_usage", passthrough(raw, true));
}

#[test]
fn passthrough_leaves_non_streaming_requests_alone() {
    let raw = r#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":false}}"#;
    assert_eq!(
        passthrough(raw, true),
        r#"{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":false}}"#
    );
}

#[test]
fn parsed_requests_are_static_and_send() {
    fn assert_send_static<T: Send + Sync + 'static>() {}
    assert_send_static::<ParsedChatRequest>();
    assert_send_static::<ParsedEmbeddingsRequest>();
    let parsed =
        decode_request(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":1}"#)
            .unwrap();
    assert_eq!(parsed.raw_field("seed"), Some("1"));
}

// === Encoding requests ===

#[test]
fn encode_request_writes_the_openai_shape() {
    let req = ChatRequest {
        model: "fast".into(),
        messages: vec![
            Message::text(Role::System, "s"),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text("look".into()),
                    ContentPart::Image(Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "AAAA".into(),
                        },
                        detail: Some("high".into()),
                    }),
                ],
                tool_calls: vec![],
                tool_call_id: None,
                name: None,
                is_error: false,
            },
            Message {
                role: Role::Assistant,
                content: vec![],
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                }],
                tool_call_id: None,
                name: None,
                is_error: false,
            },
        ],
        max_tokens: Some(5),
        stream: true,
        stop: vec!["x".into()],
        tool_choice: Some(ToolChoice::Auto),
        ..ChatRequest::default()
    };
    let v: Value = serde_json::from_slice(&encode_request(&req, "gpt-4o")).unwrap();
    insta::assert_json_snapshot!("encode_request", v);
}

// === Responses ===

fn sample_usage() -> TokenUsage {
    TokenUsage {
        input: 12,
        output: 30,
        cached_input: 4,
        cache_write: 0,
        reasoning: 10,
    }
}

#[test]
fn encode_response_text_and_tool_calls() {
    let text = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        created: 1_700_000_000,
        content: Some("Hello!".into()),
        tool_calls: vec![],
        finish_reason: FinishReason::Stop,
        stop_sequence: None,
        usage: sample_usage(),
    };
    let v: Value = serde_json::from_slice(&encode_response(&text)).unwrap();
    insta::assert_json_snapshot!("encode_response_text", v);

    let tools = ChatResponse {
        content: None,
        tool_calls: vec![
            ToolCall {
                id: "call_a".into(),
                name: "weather".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "time".into(),
                arguments: "{}".into(),
            },
        ],
        finish_reason: FinishReason::ToolCalls,
        ..text
    };
    let v: Value = serde_json::from_slice(&encode_response(&tools)).unwrap();
    insta::assert_json_snapshot!("encode_response_tool_calls", v);
}

#[test]
fn decode_response_reads_openai_and_azure_bodies() {
    let openai = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                  "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 2}},
        "system_fingerprint": "fp", "service_tier": "default"
    });
    let r = decode_response(&body(openai)).unwrap();
    assert_eq!(r.content.as_deref(), Some("hi"));
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 3,
            output: 4,
            cached_input: 1,
            cache_write: 0,
            reasoning: 2
        }
    );

    let azure = json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 6, "model": "gpt-4o-2024-08-06",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
        "choices": [{"index": 0, "content_filter_results": {}, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    });
    let r = decode_response(&body(azure)).unwrap();
    assert_eq!(r.model, "gpt-4o-2024-08-06");
    assert_eq!(r.content, None);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls[0].name, "f");
    assert_eq!(r.usage.input, 9);
    assert_eq!(r.usage.cached_input, 0);
}

#[test]
fn decode_response_edge_cases() {
    let r = decode_response(br#"{"choices":[{"message":{"refusal":"no"}}]}"#).unwrap();
    assert_eq!(r.content.as_deref(), Some("no"));
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.usage, TokenUsage::default());
    let err = decode_response(br#"{"choices":[]}"#).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("choices"));
    assert!(decode_response(b"not json").is_err());
    let r = decode_response(
        br#"{"choices":[{"index":1,"message":{"content":"b"}},{"index":0,"message":{"content":"a"}}]}"#,
    )
    .unwrap();
    assert_eq!(r.content.as_deref(), Some("a"));
}

#[test]
fn encode_then_decode_response_is_identity() {
    let resp = ChatResponse {
        id: "x".into(),
        model: "m".into(),
        created: 1,
        content: Some("hé\n\"".into()),
        tool_calls: vec![ToolCall {
            id: "i".into(),
            name: "n".into(),
            arguments: "{\"a\":[1]}".into(),
        }],
        finish_reason: FinishReason::ContentFilter,
        stop_sequence: None,
        usage: TokenUsage {
            cache_write: 0,
            ..sample_usage()
        },
    };
    assert_eq!(decode_response(&encode_response(&resp)).unwrap(), resp);
}

#[test]
fn usage_from_response_reads_only_usage() {
    assert_eq!(
        usage_from_response(br#"{"choices":[{"weird":[1,{"x":null}]}],"usage":{"prompt_tokens":5,"completion_tokens":6,"completion_tokens_details":null}}"#),
        Some(TokenUsage { input: 5, output: 6, ..TokenUsage::default() })
    );
    assert_eq!(usage_from_response(br#"{"id":"x"}"#), None);
    assert_eq!(usage_from_response(br#"{"usage":null}"#), None);
    assert_eq!(usage_from_response(b"garbage"), None);
}

// === Errors ===

const ALL_KINDS: [ErrorKind; 15] = [
    ErrorKind::InvalidRequest,
    ErrorKind::Authentication,
    ErrorKind::PermissionDenied,
    ErrorKind::NotFound,
    ErrorKind::PayloadTooLarge,
    ErrorKind::RateLimited,
    ErrorKind::ContentFilter,
    ErrorKind::Overloaded,
    ErrorKind::UpstreamServer,
    ErrorKind::UpstreamRejected,
    ErrorKind::UpstreamProtocol,
    ErrorKind::UpstreamConnect,
    ErrorKind::UpstreamTimeout,
    ErrorKind::NoCapacity,
    ErrorKind::Internal,
];

#[test]
fn encode_error_per_kind() {
    let all: serde_json::Map<String, Value> = ALL_KINDS
        .iter()
        .map(|k| {
            let v: Value = serde_json::from_slice(&encode_error(*k, "msg", None, None)).unwrap();
            (k.as_str().to_owned(), v)
        })
        .collect();
    insta::assert_json_snapshot!("encode_error_per_kind", all);
}

#[test]
fn encode_error_takes_param_and_code_overrides() {
    let v: Value = serde_json::from_slice(&encode_error(
        ErrorKind::Authentication,
        "Incorrect API key provided",
        None,
        Some("invalid_api_key"),
    ))
    .unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let v: Value = serde_json::from_slice(&encode_error(
        ErrorKind::InvalidRequest,
        "bad",
        Some("messages[0].role"),
        None,
    ))
    .unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "messages[0].role", "code": null}})
    );
}

#[test]
fn decode_error_maps_status_and_codes() {
    /// Status, body, expected kind, message and code.
    type Case<'a> = (u16, &'a [u8], ErrorKind, &'a str, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (400, br#"{"error":{"message":"bad field","type":"invalid_request_error","param":"x","code":null}}"#, ErrorKind::InvalidRequest, "bad field", None),
        (400, br#"{"error":{"code":"content_filter","message":"filtered","param":"prompt","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#, ErrorKind::ContentFilter, "filtered", Some("content_filter")),
        (401, br#"{"error":{"code":"401","message":"Access denied due to invalid subscription key."}}"#, ErrorKind::UpstreamRejected, "Access denied due to invalid subscription key.", Some("401")),
        (403, br#"{"error":{"message":"forbidden","type":"request_forbidden"}}"#, ErrorKind::UpstreamRejected, "forbidden", None),
        (404, br#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#, ErrorKind::UpstreamRejected, "The API deployment for this resource does not exist.", Some("DeploymentNotFound")),
        (404, br#"{"error":{"code":"404","message":"Resource not found"}}"#, ErrorKind::UpstreamRejected, "Resource not found", Some("404")),
        (408, b"", ErrorKind::UpstreamTimeout, "upstream returned HTTP 408 with an empty body", None),
        (429, br#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded the rate limit."}}"#, ErrorKind::RateLimited, "Requests to the ChatCompletions_Create Operation have exceeded the rate limit.", Some("429")),
        (429, br#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#, ErrorKind::RateLimited, "quota", Some("insufficient_quota")),
        (500, br#"{"error":{"message":"oops","type":"server_error","code":null}}"#, ErrorKind::UpstreamServer, "oops", None),
        (503, b"<html>Service Unavailable</html>", ErrorKind::UpstreamServer, "<html>Service Unavailable</html>", None),
        (400, br#"{"object":"error","message":"vllm says no","type":"BadRequestError","code":400}"#, ErrorKind::InvalidRequest, "vllm says no", Some("400")),
        (409, br#"{"error":{"message":"conflict"}}"#, ErrorKind::UpstreamRejected, "conflict", None),
        (404, br#"{"error":"model 'llama9' not found"}"#, ErrorKind::UpstreamRejected, "model 'llama9' not found", None),
        (200, br#"{"error":{"message":"odd"}}"#, ErrorKind::UpstreamProtocol, "odd", None),
    ];
    for (status, raw, kind, message, code) in cases {
        let e = decode_error(status, raw);
        assert_eq!(e.kind, kind, "{status} {}", String::from_utf8_lossy(raw));
        assert_eq!(e.message, message);
        assert_eq!(e.code.as_deref(), code);
    }
}

#[test]
fn decode_error_excerpt_is_at_most_200_bytes() {
    let long = "é".repeat(300);
    let e = decode_error(502, long.as_bytes());
    assert!(e.message.len() <= 200);
    assert!(e.message.chars().all(|c| c == 'é'));
}

// === Stream probing and decoding ===

#[test]
fn inspect_chunk_recognises_each_chunk_kind() {
    let azure = br#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#;
    let info = inspect_chunk(azure).unwrap();
    assert!(info.azure_preamble && info.choices_empty && info.usage.is_none());

    let content = br#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"xyz"}"#;
    let info = inspect_chunk(content).unwrap();
    assert_eq!(info.text.as_deref(), Some("hi"));
    assert_eq!(
        (info.id.as_deref(), info.model.as_deref(), info.created),
        (Some("c"), Some("m"), Some(1))
    );
    assert!(!info.tool_call && info.usage.is_none() && info.finish_reason.is_none());
    let call = br#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#;
    assert!(inspect_chunk(call).unwrap().tool_call);

    let finish = br#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
    assert_eq!(
        inspect_chunk(finish).unwrap().finish_reason,
        Some(FinishReason::ToolCalls)
    );

    let usage = br#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
    let info = inspect_chunk(usage).unwrap();
    assert!(info.choices_empty && !info.azure_preamble);
    assert_eq!(
        info.usage,
        Some(TokenUsage {
            input: 1,
            output: 2,
            ..TokenUsage::default()
        })
    );

    let error = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
    let info = inspect_chunk(error).unwrap();
    assert_eq!(
        info.error,
        Some(UpstreamStreamError {
            message: "Rate limit reached".into(),
            kind: ErrorKind::RateLimited
        })
    );
    let info = inspect_chunk(br#"{"error":{"message":"boom","type":"server_error"}}"#).unwrap();
    assert_eq!(info.error.unwrap().kind, ErrorKind::UpstreamServer);

    let info = inspect_chunk(br#"{"error":"model crashed"}"#).unwrap();
    assert_eq!(info.error.unwrap().message, "model crashed");

    assert!(inspect_chunk(b"[DONE]").is_err());
    assert!(inspect_chunk(b"{").is_err());
}

#[test]
fn stream_decoder_follows_an_azure_tool_call_stream() {
    let chunks: [&[u8]; 8] = [
        br#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]},"content_filter_results":{},"finish_reason":null}]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]},"finish_reason":null}]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":null}]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":null}]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        br#"{"id":"c1","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        b"[DONE]",
    ];
    let mut dec = StreamDecoder::new();
    let mut events = Vec::new();
    for c in chunks {
        events.extend(dec.decode(c).unwrap());
    }
    assert!(dec.is_done());
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "c1".into(),
                model: "gpt-4o".into(),
                created: 9
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\"".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_b".into(),
                name: "g".into()
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{}".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: ":1}".into()
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(TokenUsage {
                input: 5,
                output: 7,
                ..TokenUsage::default()
            }),
        ]
    );
}

#[test]
fn stream_decoder_reports_upstream_errors_with_their_kind() {
    let mut dec = StreamDecoder::new();
    let err = dec
        .decode(br#"{"error":{"message":"overloaded","type":"overloaded_error"}}"#)
        .unwrap_err();
    assert!(err.message.contains("overloaded"));
    assert_eq!(dec.upstream_error().unwrap().kind, ErrorKind::Overloaded);
    assert!(dec.decode(b"{oops").is_err());
}

// === Stream encoding ===

fn encode_all(events: &[StreamEvent], include_usage: bool) -> String {
    let mut enc = StreamEncoder::new(
        "chatcmpl-gw".into(),
        "gpt-4o".into(),
        1_700_000_000,
        include_usage,
    );
    let mut out = Vec::new();
    for ev in events {
        enc.encode(ev, &mut out);
    }
    enc.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn text_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "up".into(),
            model: "up-model".into(),
            created: 1,
        },
        StreamEvent::TextDelta("Hel".into()),
        StreamEvent::TextDelta("lo".into()),
        StreamEvent::Usage(TokenUsage {
            input: 3,
            output: 2,
            ..TokenUsage::default()
        }),
        StreamEvent::Finish(FinishReason::Stop),
    ]
}

#[test]
fn stream_encoder_text_with_usage() {
    insta::assert_snapshot!("stream_text_with_usage", encode_all(&text_events(), true));
}

#[test]
fn stream_encoder_text_without_usage() {
    insta::assert_snapshot!(
        "stream_text_without_usage",
        encode_all(&text_events(), false)
    );
}

#[test]
fn stream_encoder_two_parallel_tool_calls() {
    let events = vec![
        StreamEvent::Start {
            id: "up".into(),
            model: "m".into(),
            created: 1,
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_a".into(),
            name: "weather".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{\"city\":".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_b".into(),
            name: "time".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "\"Paris\"}".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            arguments: "{}".into(),
        },
        StreamEvent::Finish(FinishReason::ToolCalls),
        StreamEvent::Usage(TokenUsage {
            input: 10,
            output: 20,
            cached_input: 2,
            reasoning: 5,
            cache_write: 0,
        }),
    ];
    insta::assert_snapshot!("stream_two_tool_calls", encode_all(&events, true));
}

#[test]
fn stream_encoder_error_ends_without_done() {
    let mut enc = StreamEncoder::new("chatcmpl-gw".into(), "gpt-4o".into(), 1, false);
    let mut out = Vec::new();
    enc.encode(&StreamEvent::TextDelta("partial".into()), &mut out);
    enc.error(
        ErrorKind::UpstreamServer,
        "provider failed mid-stream",
        &mut out,
    );
    enc.finish(&mut out);
    enc.encode(&StreamEvent::TextDelta("late".into()), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("[DONE]") && !text.contains("late"));
    insta::assert_snapshot!("stream_error", text);
}

#[test]
fn stream_encoder_finish_without_content_still_announces_the_role() {
    let text = encode_all(&[StreamEvent::Finish(FinishReason::Length)], false);
    let mut sse = SseDecoder::new();
    sse.push(text.as_bytes());
    let first = sse.next_event().unwrap().unwrap();
    let v: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(
        v["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(v.get("usage").is_none());
}

// === Embeddings ===

#[test]
fn embeddings_request_forms() {
    let parse = |v: Value| decode_embeddings_request(&body(v)).map(|p| p.request);
    let r = parse(json!({"model": "e", "input": "one"})).unwrap();
    assert_eq!(
        (r.input, r.token_input, r.base64),
        (vec!["one".to_owned()], None, false)
    );
    let r = parse(
        json!({"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8}),
    )
    .unwrap();
    assert_eq!((r.input.len(), r.base64, r.dimensions), (2, true, Some(8)));
    let r = parse(json!({"model": "e", "input": [1, 2, 3]})).unwrap();
    assert_eq!(
        (r.input.len(), r.token_input),
        (0, Some(vec![vec![1, 2, 3]]))
    );
    let r = parse(json!({"model": "e", "input": [[1], [2, 3]]})).unwrap();
    assert_eq!(r.token_input, Some(vec![vec![1], vec![2, 3]]));

    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"input": "x"}),
            "model",
            "missing required parameter 'model'",
        ),
        (
            json!({"model": "e"}),
            "input",
            "missing required parameter 'input'",
        ),
        (
            json!({"model": "e", "input": []}),
            "input",
            "must not be empty",
        ),
        (
            json!({"model": "e", "input": 5}),
            "input",
            "expected a string, an array of strings",
        ),
        (
            json!({"model": "e", "input": ["a", 1]}),
            "input[1]",
            "a string",
        ),
        (
            json!({"model": "e", "input": [1, "a"]}),
            "input",
            "array of token ids",
        ),
        (
            json!({"model": "e", "input": [[1], ["a"]]}),
            "input[1]",
            "an array of token ids",
        ),
        (
            json!({"model": "e", "input": "x", "encoding_format": "hex"}),
            "encoding_format",
            "supported: float, base64",
        ),
        (
            json!({"model": "e", "input": "x", "dimensions": -1}),
            "dimensions",
            "positive integer",
        ),
    ];
    for (input, param, message) in cases {
        let err = decode_embeddings_request(&body(input.clone())).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{input}: {err:?}");
        assert!(err.message.contains(message), "{input}: {err:?}");
    }
}

#[test]
fn embeddings_passthrough_keeps_token_arrays() {
    let raw = br#"{"input":[[1,2],[3]],"model":"small","encoding_format":"base64"}"#;
    let parsed = decode_embeddings_request(raw).unwrap();
    assert_eq!(
        String::from_utf8(parsed.passthrough_body("text-embedding-3-small")).unwrap(),
        r#"{"input":[[1,2],[3]],"model":"text-embedding-3-small","encoding_format":"base64"}"#
    );
}

#[test]
fn embeddings_responses_round_trip_in_both_encodings() {
    let resp = EmbeddingsResponse {
        model: "text-embedding-3-small".into(),
        vectors: vec![vec![0.5, -1.25, 3.0e-8], vec![1.0]],
        input_tokens: 7,
    };
    let floats = encode_embeddings_response(&resp, false);
    let v: Value = serde_json::from_slice(&floats).unwrap();
    insta::assert_json_snapshot!("embeddings_float", v);
    assert_eq!(decode_embeddings_response(&floats).unwrap(), resp);

    let b64 = encode_embeddings_response(&resp, true);
    let v: Value = serde_json::from_slice(&b64).unwrap();
    assert_eq!(v["data"][1]["embedding"], "AACAPw==");
    assert_eq!(decode_embeddings_response(&b64).unwrap(), resp);
    assert_eq!(
        embeddings_usage(&b64),
        Some(TokenUsage {
            input: 7,
            ..TokenUsage::default()
        })
    );

    let err =
        decode_embeddings_response(br#"{"data":[{"index":0,"embedding":"AAA="}]}"#).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("data[0].embedding"));
    let out_of_order =
        br#"{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}],"model":"m"}"#;
    assert_eq!(
        decode_embeddings_response(out_of_order).unwrap().vectors,
        vec![vec![1.0], vec![2.0]]
    );
}

// === Properties ===

mod props {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 é\"\\\\\n{}]{0,12}"
    }

    fn part() -> impl Strategy<Value = ContentPart> {
        prop_oneof![
            3 => text().prop_map(ContentPart::Text),
            1 => ("[a-z]{1,8}", proptest::option::of(prop_oneof![Just("low".to_owned()), Just("high".to_owned())]))
                .prop_map(|(u, detail)| ContentPart::Image(Image { source: ImageSource::Url(format!("https://img/{u}.png")), detail })),
            1 => "[A-Za-z0-9+/]{4,12}".prop_map(|data| ContentPart::Image(Image {
                source: ImageSource::Base64 { media_type: "image/jpeg".into(), data },
                detail: None,
            })),
        ]
    }

    fn tool_call() -> impl Strategy<Value = ToolCall> {
        ("call_[a-z0-9]{1,6}", "[a-z_]{1,8}", text()).prop_map(|(id, name, arguments)| ToolCall {
            id,
            name,
            arguments,
        })
    }

    /// Only messages OpenAI can carry: required content present and non-empty, a tool-call
    /// id exactly on tool messages, tool calls only on assistant messages.
    fn message() -> impl Strategy<Value = Message> {
        let parts = || proptest::collection::vec(part(), 1..4);
        let name = || proptest::option::of("[a-z]{1,6}");
        prop_oneof![
            (
                prop_oneof![Just(Role::System), Just(Role::Developer), Just(Role::User)],
                parts(),
                name()
            )
                .prop_map(|(role, content, name)| Message {
                    role,
                    content,
                    tool_calls: vec![],
                    tool_call_id: None,
                    name,
                    is_error: false,
                }),
            (
                proptest::collection::vec(part(), 0..3),
                proptest::collection::vec(tool_call(), 1..3),
                name()
            )
                .prop_map(|(content, tool_calls, name)| Message {
                    role: Role::Assistant,
                    content,
                    tool_calls,
                    tool_call_id: None,
                    name,
                    is_error: false,
                }),
            (parts(), name()).prop_map(|(content, name)| Message {
                role: Role::Assistant,
                content,
                tool_calls: vec![],
                tool_call_id: None,
                name,
                is_error: false,
            }),
            (parts(), "call_[a-z0-9]{1,6}").prop_map(|(content, id)| Message {
                role: Role::Tool,
                content,
                tool_calls: vec![],
                tool_call_id: Some(id),
                name: None,
                is_error: false,
            }),
        ]
    }

    fn tool() -> impl Strategy<Value = Tool> {
        (
            "[a-z_]{1,8}",
            proptest::option::of(text()),
            prop_oneof![
                Just(Value::Null),
                Just(json!({"type": "object", "properties": {"q": {"type": "string"}}}))
            ],
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(name, description, parameters, strict)| Tool {
                name,
                description,
                parameters,
                strict,
            })
    }

    /// Floats that survive JSON text exactly (serde_json's fast path is exact for these).
    fn unit_float() -> impl Strategy<Value = f64> {
        (0u32..=200).prop_map(|k| f64::from(k) / 100.0)
    }

    prop_compose! {
        fn chat_request()(
            model in "[a-z0-9-]{1,10}",
            messages in proptest::collection::vec(message(), 1..5),
            tools in proptest::collection::vec(tool(), 0..3),
            tool_choice in proptest::option::of(prop_oneof![
                Just(ToolChoice::Auto), Just(ToolChoice::None), Just(ToolChoice::Required),
                "[a-z]{1,6}".prop_map(ToolChoice::Function),
            ]),
            parallel_tool_calls in proptest::option::of(any::<bool>()),
            response_format in proptest::option::of(prop_oneof![
                Just(ResponseFormat::Text), Just(ResponseFormat::JsonObject),
                ("[a-z]{1,6}", prop_oneof![Just(Value::Null), Just(json!({"type": "object"}))], proptest::option::of(any::<bool>()))
                    .prop_map(|(name, schema, strict)| ResponseFormat::JsonSchema { name, schema, strict }),
            ]),
            temperature in proptest::option::of(unit_float()),
            top_p in proptest::option::of(unit_float()),
            max_tokens in proptest::option::of(any::<u32>()),
            stop in proptest::collection::vec(text(), 0..4),
            seed in proptest::option::of(any::<i64>()),
            n in proptest::option::of(1u32..4),
            stream in any::<bool>(),
            user in proptest::option::of("[a-z0-9-]{1,8}"),
        ) -> ChatRequest {
            ChatRequest {
                model, messages, tools, tool_choice, parallel_tool_calls, response_format,
                temperature, top_p, max_tokens, stop, seed, n, stream,
                // OpenAI cannot say "usage" without streaming, and encode_request always asks
                // for it when streaming, so the only value that survives is `stream`.
                include_usage: stream,
                user,
            }
        }
    }

    fn stream_events() -> impl Strategy<Value = Vec<StreamEvent>> {
        // Text, then tool calls (each started before its deltas), then finish and usage.
        let texts = proptest::collection::vec("[a-z é\n\"]{1,8}", 0..5);
        let calls = proptest::collection::vec(
            (
                "call_[a-z]{1,4}",
                "[a-z]{1,5}",
                proptest::collection::vec("[{}a-z:\"]{1,6}", 0..3),
            ),
            0..3,
        );
        let finish = prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::Length),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::ContentFilter),
        ];
        let usage = proptest::option::of((0u64..10_000, 0u64..10_000, 0u64..100, 0u64..100));
        (texts, calls, finish, usage).prop_map(|(texts, calls, finish, usage)| {
            let mut ev = vec![StreamEvent::Start {
                id: "up".into(),
                model: "m".into(),
                created: 1,
            }];
            ev.extend(texts.into_iter().map(StreamEvent::TextDelta));
            for (i, (id, name, frags)) in calls.into_iter().enumerate() {
                let index = i as u32;
                ev.push(StreamEvent::ToolCallStart { index, id, name });
                ev.extend(
                    frags
                        .into_iter()
                        .map(|arguments| StreamEvent::ToolCallDelta { index, arguments }),
                );
            }
            ev.push(StreamEvent::Finish(finish));
            if let Some((input, output, cached, reasoning)) = usage {
                ev.push(StreamEvent::Usage(TokenUsage {
                    input: input + cached,
                    output: output + reasoning,
                    cached_input: cached,
                    cache_write: 0,
                    reasoning,
                }));
            }
            ev
        })
    }

    /// What a client reassembles from a stream: text, calls by index, finish, usage.
    #[derive(Debug, PartialEq, Default)]
    struct Assembled {
        text: String,
        calls: Vec<(u32, String, String, String)>,
        finish: Option<FinishReason>,
        usage: Option<TokenUsage>,
    }

    fn assemble(events: &[StreamEvent]) -> Assembled {
        let mut a = Assembled::default();
        for ev in events {
            match ev {
                StreamEvent::Start { .. } => {}
                StreamEvent::TextDelta(t) => a.text.push_str(t),
                StreamEvent::ToolCallStart { index, id, name } => {
                    a.calls
                        .push((*index, id.clone(), name.clone(), String::new()))
                }
                StreamEvent::ToolCallDelta { index, arguments } => {
                    if let Some(c) = a.calls.iter_mut().find(|c| c.0 == *index) {
                        c.3.push_str(arguments);
                    }
                }
                StreamEvent::Finish(r) => a.finish = Some(*r),
                StreamEvent::StopSequence(_) => {}
                StreamEvent::Usage(u) => a.usage = Some(*u),
            }
        }
        a
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_request_then_decode_request_is_identity(req in chat_request()) {
            let bytes = encode_request(&req, &req.model);
            let back = decode_request(&bytes).unwrap().request;
            prop_assert_eq!(back, req);
        }

        #[test]
        fn passthrough_of_an_encoded_request_decodes_to_the_same_request(req in chat_request()) {
            let parsed = decode_request(&encode_request(&req, "client-name")).unwrap();
            let upstream = parsed.passthrough_body("upstream-name", true);
            let back = decode_request(&upstream).unwrap().request;
            prop_assert_eq!(back.model.as_str(), "upstream-name");
            prop_assert_eq!(back.messages, req.messages);
            prop_assert_eq!(back.include_usage, req.stream);
        }

        #[test]
        fn stream_encoder_output_decodes_back_to_the_same_answer(
            events in stream_events(),
            include_usage in any::<bool>(),
            cut in 1usize..64,
        ) {
            let mut enc = StreamEncoder::new("chatcmpl-x".into(), "m".into(), 1, include_usage);
            let mut bytes = Vec::new();
            for ev in &events {
                enc.encode(ev, &mut bytes);
            }
            enc.finish(&mut bytes);

            let mut sse = SseDecoder::new();
            let mut dec = StreamDecoder::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                sse.push(chunk);
                while let Some(ev) = sse.next_event().unwrap() {
                    got.extend(dec.decode(ev.data.as_bytes()).unwrap());
                }
            }
            prop_assert!(sse.finish().is_none());
            prop_assert!(dec.is_done());
            let mut expected = assemble(&events);
            if !include_usage {
                expected.usage = None;
            }
            prop_assert_eq!(assemble(&got), expected);
            prop_assert!(
                matches!(got.first(), Some(StreamEvent::Start { id, .. }) if id == "chatcmpl-x"),
                "stream must start with Start"
            );
        }
    }
}

// === Fuzz target bodies, exercised on stable ===

mod fuzz_bodies {
    use crate::fuzzing;
    use proptest::prelude::*;

    /// Bytes that look like what each target sees, mixed with noise.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "[{}\\[\\]\":,a-z0-9 \\\\nul]{0,200}".prop_map(String::into_bytes),
            proptest::sample::select(vec![
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"a":1}}"#,
                r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f"}}]}]}"#,
                r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"x"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}"#,
                r#"{"choices":[{"message":{"content":null,"tool_calls":[{}]}}],"usage":{}}"#,
                r#"{"data":[{"embedding":"AAAAAA=="}],"usage":{"prompt_tokens":1}}"#,
                r#"{"error":{"code":429,"message":"x"}}"#,
            ])
            .prop_flat_map(|s| {
                let len = s.len();
                (Just(s), 0..=len, any::<u8>())
            })
            .prop_map(|(s, at, b)| {
                // Corrupt one byte so targets see near-valid input too.
                let mut v = s.as_bytes().to_vec();
                if at < v.len() {
                    v[at] = b;
                }
                v
            }),
        ]
    }

    fn sseish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(
                proptest::sample::select(vec![
                    &b"data: "[..],
                    b"data:",
                    b"event: x",
                    b": c",
                    b"\n",
                    b"\r\n",
                    b"\r",
                    b"{}",
                    b"\xC3\xA9",
                    b"\xFF",
                    b"id: 1",
                ]),
                0..40,
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn sse_decoder_never_panics(data in sseish()) {
            fuzzing::sse_decoder(&data);
        }

        #[test]
        fn openai_decode_request_never_panics(data in jsonish()) {
            fuzzing::openai_decode_request(&data);
        }

        #[test]
        fn openai_inspect_chunk_never_panics(data in jsonish()) {
            fuzzing::openai_inspect_chunk(&data);
        }

        #[test]
        fn openai_decode_response_never_panics(data in jsonish()) {
            fuzzing::openai_decode_response(&data);
        }
    }
}

/// Pass-through and usage extraction against oracles: the pre-`Members` pass-through (kept here
/// verbatim over a fresh parse), a `serde_json::Value` model of what pass-through means, and a
/// full parse of the answer for usage.
mod passthrough_props {
    use super::*;
    use crate::json::{self, RawObject};
    use proptest::prelude::*;
    use serde_json::value::RawValue;
    use std::borrow::Cow;

    /// The pass-through as it was before keys were kept as ranges (the oracle).
    fn old_passthrough_body(body: &[u8], upstream_model: &str, force_usage: bool) -> Vec<u8> {
        let parsed = decode_request(body).unwrap();
        let force_usage = force_usage && parsed.request.stream;
        let (text, top) = json::body_object(body).unwrap();
        let mut out = Vec::with_capacity(text.len() + upstream_model.len() + 40);
        out.push(b'{');
        let mut saw_stream_options = false;
        let mut first = true;
        for (key, raw) in &top.0 {
            if key.as_ref() == GATEWAY_EXTENSION {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            json::write_str(&mut out, key);
            out.push(b':');
            match key.as_ref() {
                "model" => json::write_str(&mut out, upstream_model),
                "stream_options" if force_usage => {
                    saw_stream_options = true;
                    old_write_stream_options_with_usage(&mut out, raw.get());
                }
                _ => out.extend_from_slice(raw.get().as_bytes()),
            }
        }
        if force_usage && !saw_stream_options {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }

    fn old_write_stream_options_with_usage(out: &mut Vec<u8>, raw: &str) {
        let members: Vec<(Cow<'_, str>, &RawValue)> = serde_json::from_str::<RawObject<'_>>(raw)
            .map(|o| o.0)
            .unwrap_or_default();
        out.push(b'{');
        let mut wrote_usage = false;
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, k);
            out.push(b':');
            if k == "include_usage" {
                out.extend_from_slice(b"true");
                wrote_usage = true;
            } else {
                out.extend_from_slice(v.get().as_bytes());
            }
        }
        if !wrote_usage {
            if !members.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""include_usage":true"#);
        }
        out.push(b'}');
    }

    /// What pass-through means, on values: drop the extension, set `model`, and for forced
    /// streams make `stream_options` an object with `include_usage: true`.
    fn model_of_passthrough(body: &[u8], upstream_model: &str, force: bool, stream: bool) -> Value {
        let mut v: Value = serde_json::from_slice(body).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove(GATEWAY_EXTENSION);
        o.insert("model".into(), Value::String(upstream_model.into()));
        if force && stream {
            let mut so = match o.remove("stream_options") {
                Some(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            so.insert("include_usage".into(), Value::Bool(true));
            o.insert("stream_options".into(), Value::Object(so));
        }
        v
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 é\"\\\\/\n\t\u{1}\u{7f}\u{2028}😀-]{0,16}"
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n  "), 1 => Just("\t")]
    }

    /// A member key, sometimes written with a needless escape (`"\u006dodel"`).
    fn key(k: &'static str) -> impl Strategy<Value = String> {
        any::<bool>().prop_map(move |escape| {
            if escape {
                let mut chars = k.chars();
                let first = chars.next().unwrap_or('x');
                format!("\"\\u{:04x}{}\"", first as u32, chars.as_str())
            } else {
                format!("\"{k}\"")
            }
        })
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            name().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn stream_options() -> impl Strategy<Value = Option<String>> {
        let member = |k: &'static str| {
            prop::option::of((key(k), any::<bool>()).prop_map(|(k, b)| format!("{k}:{b}")))
        };
        prop_oneof![
            2 => Just(None),
            1 => Just(Some("null".to_owned())),
            4 => (member("include_usage"), member("include_obfuscation"), any::<bool>()).prop_map(
                |(u, o, flip)| {
                    let mut m: Vec<String> = [u, o].into_iter().flatten().collect();
                    if flip {
                        m.reverse();
                    }
                    Some(format!("{{{}}}", m.join(" , ")))
                }
            ),
        ]
    }

    /// A chat body as text: members in a random order, random whitespace, escaped keys.
    fn chat_body() -> impl Strategy<Value = String> {
        (
            key("model"),
            name(),
            prop::option::of(any::<bool>()),
            stream_options(),
            prop::option::of(json_value()),
            prop::option::of(("[a-z]{1,6}", json_value())),
            ws(),
            any::<u64>(),
        )
            .prop_map(|(mkey, model, stream, so, ext, extra, ws, order)| {
                let mut members = vec![
                    format!("{mkey}{ws}:{ws}{}", serde_json::to_string(&model).unwrap()),
                    r#""messages":[{"role":"user","content":"hi"}]"#.to_owned(),
                ];
                if let Some(s) = stream {
                    members.push(format!("\"stream\":{ws}{s}"));
                }
                if let Some(so) = so {
                    members.push(format!("\"stream_options\":{so}"));
                }
                if let Some(ext) = ext {
                    members.push(format!("\"{GATEWAY_EXTENSION}\":{ext}"));
                }
                if let Some((k, v)) = extra {
                    members.push(format!("\"x-{k}\":{v}"));
                }
                // A deterministic shuffle driven by `order`.
                let mut o = order;
                for i in (1..members.len()).rev() {
                    members.swap(i, (o % (i as u64 + 1)) as usize);
                    o /= i as u64 + 1;
                }
                format!("{ws}{{{ws}{}{ws}}}", members.join(&format!("{ws},{ws}")))
            })
    }

    fn usage_body() -> impl Strategy<Value = String> {
        let n = || {
            prop::option::of(prop_oneof![
                Just(json!(null)),
                any::<u32>().prop_map(|n| json!(n))
            ])
        };
        let details = |k: &'static str| {
            prop::option::of(prop_oneof![
                Just(json!(null)),
                prop::option::of(any::<u32>()).prop_map(move |v| match v {
                    Some(v) => json!({ k: v, "other": [1, {"x": null}] }),
                    None => json!({}),
                }),
            ])
        };
        (
            prop::option::of((
                n(),
                n(),
                n(),
                details("cached_tokens"),
                details("reasoning_tokens"),
            )),
            json_value(),
            any::<bool>(),
        )
            .prop_map(|(usage, noise, usage_first)| {
                let usage = usage.map(|(p, c, t, pd, cd)| {
                    let mut m = serde_json::Map::new();
                    for (k, v) in [
                        ("prompt_tokens", p),
                        ("completion_tokens", c),
                        ("total_tokens", t),
                        ("prompt_tokens_details", pd),
                        ("completion_tokens_details", cd),
                    ] {
                        if let Some(v) = v {
                            m.insert(k.into(), v);
                        }
                    }
                    Value::Object(m)
                });
                let noise = format!(r#""choices":[{}],"data":{noise}"#, json!({"weird": noise}));
                match (usage, usage_first) {
                    (None, _) => format!("{{{noise}}}"),
                    (Some(u), true) => format!(r#"{{"usage":{u},{noise}}}"#),
                    (Some(u), false) => format!(r#"{{{noise},"usage" : {u}}}"#),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn chat_passthrough_matches_the_old_rebuild_and_the_value_model(
            body in chat_body(),
            upstream in name(),
            force in any::<bool>(),
        ) {
            // Only bodies the decoder accepts are passed through.
            let parsed = decode_request(body.as_bytes());
            prop_assume!(parsed.is_ok());
            let parsed = parsed.unwrap();
            let got = parsed.passthrough_body(&upstream, force);
            prop_assert_eq!(
                String::from_utf8(got.clone()).unwrap(),
                String::from_utf8(old_passthrough_body(body.as_bytes(), &upstream, force)).unwrap()
            );
            let value: Value = serde_json::from_slice(&got).unwrap();
            prop_assert_eq!(
                value,
                model_of_passthrough(body.as_bytes(), &upstream, force, parsed.request.stream)
            );
            // And it is a request the decoder accepts again, for the upstream model.
            let again = decode_request(&got).unwrap();
            prop_assert_eq!(again.request.model, upstream);
        }

        #[test]
        fn embeddings_passthrough_replaces_only_the_model(
            mkey in key("model"),
            model in name(),
            upstream in name(),
            extra in prop::option::of(json_value()),
            ws in ws(),
            model_last in any::<bool>(),
        ) {
            let m = format!("{mkey}{ws}:{ws}{}", serde_json::to_string(&model).unwrap());
            let input = r#""input" : ["a", "b"]"#.to_owned();
            let mut members = if model_last { vec![input, m] } else { vec![m, input] };
            if let Some(e) = extra {
                members.push(format!("\"x-extra\":{e}"));
            }
            let body = format!("{{{ws}{}{ws}}}", members.join(","));
            let parsed = decode_embeddings_request(body.as_bytes()).unwrap();
            let got: Value = serde_json::from_slice(&parsed.passthrough_body(&upstream)).unwrap();
            let mut want: Value = serde_json::from_str(&body).unwrap();
            want["model"] = Value::String(upstream);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn usage_extraction_equals_a_full_parse(body in usage_body()) {
            let full: Value = serde_json::from_str(&body).unwrap();
            let want = match full.get("usage") {
                None | Some(Value::Null) => None,
                Some(u) => serde_json::from_value::<super::super::wire::UsageIn>(u.clone())
                    .ok()
                    .map(|u| u.to_usage()),
            };
            prop_assert_eq!(usage_from_response(body.as_bytes()), want);
            let want_embeddings = match full.get("usage") {
                None | Some(Value::Null) => None,
                Some(u) => Some(TokenUsage {
                    input: u["prompt_tokens"]
                        .as_u64()
                        .or(u["total_tokens"].as_u64())
                        .unwrap_or(0),
                    ..TokenUsage::default()
                }),
            };
            prop_assert_eq!(embeddings_usage(body.as_bytes()), want_embeddings);
        }
    }
}

#[test]
fn decode_error_knows_the_context_window() {
    let openai = br#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let e = decode_error(400, openai);
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            ErrorKind::ContextLengthExceeded,
            Some("context_length_exceeded")
        )
    );
    // vLLM sends OpenAI's words without the code.
    let vllm = br#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","code":400}"#;
    assert_eq!(
        decode_error(400, vllm).kind,
        ErrorKind::ContextLengthExceeded
    );
    let v: serde_json::Value = serde_json::from_slice(&encode_error(
        ErrorKind::ContextLengthExceeded,
        "too long",
        None,
        None,
    ))
    .unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[test]
fn members_translation_cannot_carry_are_listed_unless_they_ask_for_nothing() {
    let parsed = decode_request(&body(with(json!({
        "frequency_penalty": 0.5, "logprobs": true, "presence_penalty": 0, "service_tier": "auto",
        "reasoning_effort": "low", "store": false, "metadata": {}, "top_logprobs": null,
        "switchyard": {"sort": "price"}, "temperature": 0.2, "n": 1
    }))))
    .unwrap();
    assert_eq!(
        parsed.untranslated,
        ["frequency_penalty", "logprobs", "reasoning_effort"]
    );
    let plain = decode_request(&body(with(json!({"service_tier": "default"})))).unwrap();
    assert!(plain.untranslated.is_empty());
}
