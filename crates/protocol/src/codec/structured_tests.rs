#![allow(clippy::unwrap_used)]

use super::*;
use crate::canonical::{Message, Role, Tool, ToolCall, ToolChoice};
use crate::codec::{anthropic_messages, bedrock_converse};
use crate::upstream::upstream_codec;
use serde_json::json;
use switchyard_types::{ProviderKind, TokenUsage};

fn person_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name", "age"], "additionalProperties": false})
}

fn structured(strict: Option<bool>) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "Ada, 36")],
        response_format: Some(ResponseFormat::JsonSchema {
            name: "person".into(),
            schema: person_schema(),
            strict,
        }),
        ..ChatRequest::default()
    }
}

fn weather() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
    }
}

fn anthropic(req: &ChatRequest, model: &str) -> Value {
    serde_json::from_slice(&anthropic_messages::encode_request(req, model, 100).unwrap()).unwrap()
}

fn bedrock(req: &ChatRequest) -> Value {
    serde_json::from_slice(&bedrock_converse::encode_request(req).unwrap()).unwrap()
}

#[test]
fn anthropic_gets_a_forced_answer_tool_on_older_models_and_for_non_strict_schemas() {
    let v = anthropic(&structured(None), "claude-sonnet-4-5");
    insta::assert_json_snapshot!("anthropic_forced_tool", v);
    assert!(v.get("output_config").is_none());
    let older = anthropic(&structured(Some(true)), "claude-sonnet-4-20250514");
    assert_eq!(
        older["tool_choice"],
        json!({"type": "tool", "name": "person"})
    );
    assert_eq!(older["tools"][0]["input_schema"], person_schema());
    let req = structured(None);
    assert_eq!(
        anthropic_messages::answer_tool(&req, "claude-sonnet-4-5"),
        Some("person")
    );
}

#[test]
fn anthropic_gets_native_output_config_for_strict_schemas_on_claude_4_5_and_later() {
    let req = structured(Some(true));
    let v = anthropic(&req, "claude-sonnet-4-5-20250929");
    insta::assert_json_snapshot!("anthropic_native_output_config", v);
    assert!(v.get("tools").is_none() && v.get("tool_choice").is_none());
    assert_eq!(
        anthropic_messages::answer_tool(&req, "claude-sonnet-4-5-20250929"),
        None
    );
}

#[test]
fn native_structured_outputs_reads_model_versions() {
    for (id, native) in [
        ("claude-sonnet-4-5", true),
        ("claude-sonnet-4-5-20250929", true),
        ("claude-opus-4-5-20251101", true),
        ("claude-haiku-4-5", true),
        ("claude-opus-4-6", true),
        ("claude-sonnet-5", true),
        ("claude-sonnet-4", false),
        ("claude-sonnet-4-20250514", false),
        ("claude-opus-4-1", false),
        ("claude-3-5-haiku-latest", false),
        ("claude-3-7-sonnet-20250219", false),
        ("my-fine-tune", false),
        ("claude-instant", false),
    ] {
        assert_eq!(
            anthropic_messages::native_structured_outputs(id),
            native,
            "{id}"
        );
    }
}

#[test]
fn client_tools_with_a_format_require_some_tool_and_named_choices_offer_no_answer_tool() {
    let mut req = structured(None);
    req.tools = vec![weather()];
    let v = anthropic(&req, "claude-sonnet-4");
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "person"]);
    assert_eq!(v["tool_choice"], json!({"type": "any"}));
    let b = bedrock(&req);
    assert_eq!(b["toolConfig"]["toolChoice"], json!({"any": {}}));

    req.tool_choice = Some(ToolChoice::None);
    let v = anthropic(&req, "claude-sonnet-4");
    assert_eq!(v["tool_choice"], json!({"type": "tool", "name": "person"}));
    // Bedrock keeps its toolConfig (the answer tool needs it) instead of leaving tools out.
    let b = bedrock(&req);
    assert_eq!(
        b["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "person"}})
    );

    req.tool_choice = Some(ToolChoice::Function("get_weather".into()));
    let v = anthropic(&req, "claude-sonnet-4");
    assert_eq!(v["tools"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
}

#[test]
fn bedrock_gets_a_forced_answer_tool() {
    let v = bedrock(&structured(Some(true)));
    insta::assert_json_snapshot!("bedrock_forced_tool", v);
    let json_object = ChatRequest {
        response_format: Some(ResponseFormat::JsonObject),
        ..structured(None)
    };
    let v = bedrock(&json_object);
    assert_eq!(
        v["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object"})
    );
    assert_eq!(
        v["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "json_answer"}})
    );
    let codec = upstream_codec(ProviderKind::Bedrock);
    assert_eq!(codec.answer_tool(&json_object, "x"), Some("json_answer"));
    // Without a JSON format nothing changes.
    assert_eq!(codec.answer_tool(&ChatRequest::default(), "x"), None);
}

#[test]
fn answer_tool_names_are_valid_tool_names() {
    let mut req = structured(None);
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "has spaces".into(),
        schema: person_schema(),
        strict: None,
    });
    assert_eq!(answer_tool_name(&req), Some("structured_output"));
    req.response_format = Some(ResponseFormat::Text);
    assert_eq!(answer_tool_name(&req), None);
}

#[test]
fn a_whole_answer_takes_the_answer_tool_input_as_its_content() {
    let call = |id: &str, name: &str, args: &str| ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    };
    let mut r = ChatResponse {
        id: "msg".into(),
        model: "m".into(),
        created: 0,
        content: None,
        tool_calls: vec![call("t1", "person", r#"{"name":"Ada","age":36}"#)],
        finish_reason: FinishReason::ToolCalls,
        stop_sequence: None,
        usage: TokenUsage::default(),
    };
    answer_from_tool(&mut r, "person");
    assert_eq!(r.content.as_deref(), Some(r#"{"name":"Ada","age":36}"#));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);

    // Alongside a client tool call, that call stays and so does the finish reason.
    r.content = None;
    r.finish_reason = FinishReason::ToolCalls;
    r.tool_calls = vec![
        call("t0", "get_weather", "{}"),
        call("t1", "person", r#"{"name":"x"}"#),
    ];
    answer_from_tool(&mut r, "person");
    assert_eq!(r.content.as_deref(), Some(r#"{"name":"x"}"#));
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

/// An upstream stream replaying canned frames.
struct Canned(std::collections::VecDeque<Vec<StreamEvent>>);

impl UpstreamStream for Canned {
    fn push(&mut self, _: &[u8]) {}
    fn next_frame(&mut self) -> Result<Option<Frame>, TranslateError> {
        Ok(self.0.pop_front().map(Ok))
    }
    fn finish(&mut self) -> Option<Frame> {
        None
    }
    fn is_done(&self) -> bool {
        self.0.is_empty()
    }
}

fn drain(s: &mut dyn UpstreamStream) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    while let Some(frame) = s.next_frame().unwrap() {
        out.extend(frame.unwrap());
    }
    out
}

#[test]
fn a_stream_turns_the_answer_call_into_text_and_renumbers_later_calls() {
    let start = |index: u32, name: &str| StreamEvent::ToolCallStart {
        index,
        id: format!("t{index}"),
        name: name.into(),
    };
    let delta = |index: u32, a: &str| StreamEvent::ToolCallDelta {
        index,
        arguments: a.into(),
    };
    let frames = vec![
        vec![start(0, "person"), delta(0, ""), delta(0, "{\"name\":")],
        vec![delta(0, "\"Ada\"}")],
        vec![start(1, "get_weather"), delta(1, "{}")],
        vec![StreamEvent::Finish(FinishReason::ToolCalls)],
    ];
    let mut s = AnswerStream::new(Box::new(Canned(frames.into())), "person");
    assert_eq!(
        drain(&mut s),
        vec![
            StreamEvent::TextDelta("{\"name\":".into()),
            StreamEvent::TextDelta("\"Ada\"}".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "t1".into(),
                name: "get_weather".into()
            },
            delta(0, "{}"),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
    let only = vec![
        vec![start(0, "person"), delta(0, "{}")],
        vec![StreamEvent::Finish(FinishReason::ToolCalls)],
    ];
    let mut s = AnswerStream::new(Box::new(Canned(only.into())), "person");
    assert_eq!(
        drain(&mut s),
        vec![
            StreamEvent::TextDelta("{}".into()),
            StreamEvent::Finish(FinishReason::Stop)
        ]
    );
}

#[test]
fn an_anthropic_tool_use_stream_becomes_content_deltas() {
    let sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"person\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"name\\\":\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Ada\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let inner = upstream_codec(ProviderKind::Anthropic).stream_decoder();
    let mut s = AnswerStream::new(inner, "person");
    s.push(sse.as_bytes());
    let events = drain(&mut s);
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, r#"{"name":"Ada"}"#);
    assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
    assert!(!events.iter().any(|e| matches!(
        e,
        StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. }
    )));
    assert!(s.is_done());
}

#[test]
fn strict_tools_are_anthropic_strict_tool_use_on_claude_4_5_only() {
    let req = ChatRequest {
        messages: vec![Message::text(Role::User, "x")],
        tools: vec![Tool {
            strict: Some(true),
            ..weather()
        }],
        ..ChatRequest::default()
    };
    assert_eq!(
        anthropic(&req, "claude-sonnet-4-5")["tools"][0]["strict"],
        true
    );
    assert!(anthropic(&req, "claude-sonnet-4")["tools"][0]
        .get("strict")
        .is_none());
}
