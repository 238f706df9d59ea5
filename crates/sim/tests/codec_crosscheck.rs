//! Property: for generated canonical requests, every upstream codec's encoding is understood
//! by the simulator (an independent parser of each wire format) as the same conversation —
//! the same messages, tools, tool choice, token limit and stop sequences.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchyard_protocol::codec::{anthropic_messages, bedrock_converse, gemini, openai_chat};
use switchyard_protocol::{ChatRequest, ContentPart, Message, Role, Tool, ToolCall, ToolChoice};
use switchyard_sim::parse;

fn words() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,8}", 1..6).prop_map(|w| w.join(" "))
}

#[derive(Debug, Clone)]
enum Turn {
    /// A user question and the assistant's text answer.
    Text(String, String),
    /// A user question, an assistant tool call, the tool's result, then the assistant's answer.
    Tool(String, usize, String, String),
}

fn turn(tools: usize) -> impl Strategy<Value = Turn> {
    prop_oneof![
        (words(), words()).prop_map(|(q, a)| Turn::Text(q, a)),
        (words(), 0..tools, words(), words()).prop_map(|(q, t, r, a)| Turn::Tool(q, t, r, a)),
    ]
}

fn tool_def() -> impl Strategy<Value = Vec<(String, &'static str)>> {
    prop::collection::vec(
        (
            "[a-z]{1,6}",
            prop::sample::select(vec!["string", "integer", "number", "boolean"]),
        ),
        0..4,
    )
    .prop_map(|mut props| {
        // Property names are unique in a schema.
        props.sort_by(|a, b| a.0.cmp(&b.0));
        props.dedup_by(|a, b| a.0 == b.0);
        props
    })
}

fn schema(props: &[(String, &'static str)]) -> Value {
    let mut properties = Map::new();
    for (name, ty) in props {
        properties.insert(name.clone(), json!({"type": ty}));
    }
    json!({"type": "object", "properties": properties})
}

fn text_message(role: Role, text: &str) -> Message {
    Message::text(role, text)
}

prop_compose! {
    fn request()(
        tools in prop::collection::vec(tool_def(), 1..3),
        system in prop::option::of(words()),
        turns in prop::collection::vec(turn(2), 0..3),
        last in words(),
        choice in 0..3usize,
        max_tokens in prop::option::of(1..200u32),
        stop in prop::collection::vec("[a-z]{2,6}", 0..3),
    ) -> ChatRequest {
        let tools: Vec<Tool> = tools.iter().enumerate().map(|(i, props)| Tool {
            name: format!("tool{i}"),
            description: Some(format!("tool number {i}")),
            parameters: schema(props),
            strict: None,
        }).collect();
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(text_message(Role::System, &s));
        }
        for (i, t) in turns.into_iter().enumerate() {
            match t {
                Turn::Text(q, a) => {
                    messages.push(text_message(Role::User, &q));
                    messages.push(text_message(Role::Assistant, &a));
                }
                Turn::Tool(q, tool, result, a) => {
                    let tool = tool % tools.len();
                    messages.push(text_message(Role::User, &q));
                    let id = format!("call_{i}");
                    messages.push(Message {
                        role: Role::Assistant,
                        content: vec![],
                        tool_calls: vec![ToolCall { id: id.clone(), name: tools[tool].name.clone(), arguments: "{\"x\":1}".into() }],
                        tool_call_id: None,
                        name: None,
                        is_error: false,
                    });
                    messages.push(Message {
                        role: Role::Tool,
                        content: vec![ContentPart::Text(result)],
                        tool_calls: vec![],
                        tool_call_id: Some(id),
                        name: None,
                        is_error: false,
                    });
                    messages.push(text_message(Role::Assistant, &a));
                }
            }
        }
        messages.push(text_message(Role::User, &last));
        let tool_choice = match choice {
            0 => Some(ToolChoice::Auto),
            1 => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Function(tools[0].name.clone())),
        };
        ChatRequest {
            model: "m".into(),
            messages,
            tools,
            tool_choice,
            max_tokens,
            stop,
            ..ChatRequest::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_codec_says_the_same_thing_to_the_simulator(req in request()) {
        let reference = parse::openai_chat(&openai_chat::encode_request(&req, "m")).unwrap();
        prop_assert_eq!(reference.messages.len(), req.messages.len());

        let anthropic = anthropic_messages::encode_request(&req, "m", 4096).unwrap();
        let mut seen = parse::anthropic_messages(&anthropic).unwrap();
        if req.max_tokens.is_none() {
            // Anthropic requires max_tokens: the codec sends the documented default.
            prop_assert_eq!(seen.max_tokens, Some(4096));
            seen.max_tokens = None;
        }
        prop_assert_eq!(&seen, &reference, "anthropic");

        let bedrock = bedrock_converse::encode_request(&req).unwrap();
        prop_assert_eq!(&parse::bedrock_converse(&bedrock).unwrap(), &reference, "bedrock");

        let gemini = gemini::encode_request(&req).unwrap();
        prop_assert_eq!(&parse::gemini_generate_content(&gemini).unwrap(), &reference, "gemini");
    }
}
