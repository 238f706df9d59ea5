//! Shared test fixtures for the codecs: a rich request for snapshots, proptest strategies for
//! requests and responses each protocol can express, and stream reassembly.

#![allow(clippy::unwrap_used)]

use crate::canonical::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_types::TokenUsage;

/// A request with everything the snapshot tests show: system, image, tools, a tool round
/// trip, stop sequences, max tokens.
pub(crate) fn rich_request() -> ChatRequest {
    ChatRequest {
        model: "fast".into(),
        messages: vec![
            Message::text(Role::System, "Be brief."),
            Message {
                content: vec![
                    ContentPart::Text("What is in this picture, and the weather?".into()),
                    ContentPart::Image(Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("low".into()),
                    }),
                ],
                ..Message::text(Role::User, "")
            },
            Message {
                content: vec![ContentPart::Text("Let me check.".into())],
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Paris","days":2}"#.into(),
                }],
                ..Message::text(Role::Assistant, "")
            },
            Message {
                tool_call_id: Some("call_1".into()),
                ..Message::text(Role::Tool, "sunny, 21 C")
            },
            Message::text(Role::User, "Thanks. And tomorrow?"),
        ],
        tools: vec![Tool {
            name: "weather".into(),
            description: Some("Weather forecast for a city".into()),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"]
            }),
            strict: None,
        }],
        tool_choice: Some(ToolChoice::Auto),
        temperature: Some(0.5),
        top_p: Some(0.9),
        max_tokens: Some(256),
        stop: vec!["END".into()],
        ..ChatRequest::default()
    }
}

/// A response with text and two tool calls.
pub(crate) fn tool_response() -> ChatResponse {
    ChatResponse {
        id: "msg_01".into(),
        model: "claude-x".into(),
        created: 0,
        content: Some("Checking both.".into()),
        tool_calls: vec![
            ToolCall {
                id: "toolu_a".into(),
                name: "weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
            ToolCall {
                id: "toolu_b".into(),
                name: "time".into(),
                arguments: "{}".into(),
            },
        ],
        finish_reason: FinishReason::ToolCalls,
        stop_sequence: None,
        usage: TokenUsage {
            input: 120,
            output: 30,
            cached_input: 100,
            cache_write: 5,
            reasoning: 0,
        },
    }
}

/// What a client reassembles from a stream, or reads from a whole response.
#[derive(Debug, PartialEq, Default, Clone)]
pub(crate) struct Assembled {
    pub id: String,
    pub model: String,
    pub text: String,
    /// `(id, name, arguments)`, in call order.
    pub calls: Vec<(String, String, String)>,
    pub finish: Option<FinishReason>,
    pub stop_sequence: Option<String>,
    pub usage: Option<TokenUsage>,
}

/// Folds canonical stream events the way a client does (later usage replaces earlier).
pub(crate) fn assemble(events: &[StreamEvent]) -> Assembled {
    let mut a = Assembled::default();
    let mut index: Vec<u32> = Vec::new();
    for ev in events {
        match ev {
            StreamEvent::Start { id, model, .. } => {
                a.id = id.clone();
                a.model = model.clone();
            }
            StreamEvent::TextDelta(t) => a.text.push_str(t),
            StreamEvent::ToolCallStart { index: i, id, name } => {
                index.push(*i);
                a.calls.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta {
                index: i,
                arguments,
            } => {
                if let Some(pos) = index.iter().position(|x| x == i) {
                    a.calls[pos].2.push_str(arguments);
                }
            }
            StreamEvent::StopSequence(s) => a.stop_sequence = Some(s.clone()),
            StreamEvent::Finish(r) => a.finish = Some(*r),
            StreamEvent::Usage(u) => a.usage = Some(*u),
        }
    }
    a
}

/// The same view of a whole response.
pub(crate) fn assembled(resp: &ChatResponse) -> Assembled {
    Assembled {
        id: resp.id.clone(),
        model: resp.model.clone(),
        text: resp.content.clone().unwrap_or_default(),
        calls: resp
            .tool_calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
            .collect(),
        finish: Some(resp.finish_reason),
        stop_sequence: resp.stop_sequence.clone(),
        usage: Some(resp.usage),
    }
}

/// Splits `bytes` at the given cut points (sorted, deduplicated, in range).
pub(crate) fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(&bytes[last..p]);
        last = p;
    }
    out
}

/// Non-empty text with quotes, backslashes, newlines and non-ASCII.
pub(crate) fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é\"\\\\\n{}]{1,12}"
}

/// Tool arguments as compact JSON object text. Keys are sorted because the test-only codecs
/// go through `serde_json::Value`, which sorts them; the codecs themselves keep member order
/// (unit-tested separately).
pub(crate) fn args() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            "[a-z]{1,5}",
            prop_oneof![
                "[a-z é\"]{0,6}".prop_map(Value::from),
                (0i64..1000).prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
            ],
        ),
        0..4,
    )
    .prop_map(|mut members| {
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::from("{");
        let mut seen = Vec::new();
        for (k, v) in members {
            if seen.contains(&k) {
                continue;
            }
            if !seen.is_empty() {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(&k).unwrap());
            out.push(':');
            out.push_str(&serde_json::to_string(&v).unwrap());
            seen.push(k);
        }
        out.push('}');
        out
    })
}

/// Floats that survive JSON text exactly.
pub(crate) fn unit_float() -> impl Strategy<Value = f64> {
    (0u32..=100).prop_map(|k| f64::from(k) / 100.0)
}

/// What a protocol can carry, for generating requests it round-trips.
#[derive(Clone, Copy)]
pub(crate) struct Caps {
    /// URL images in user turns.
    pub url_images: bool,
    /// `ToolChoice::None`.
    pub tool_choice_none: bool,
}

/// A user turn's parts: non-empty texts and images.
fn user_parts(caps: Caps) -> impl Strategy<Value = Vec<ContentPart>> {
    let image_b64 = (
        prop_oneof![Just("image/png"), Just("image/jpeg")],
        "[A-Za-z0-9+/]{4,12}",
    )
        .prop_map(|(m, data)| {
            ContentPart::Image(Image {
                source: ImageSource::Base64 {
                    media_type: m.into(),
                    data,
                },
                detail: None,
            })
        });
    let url = "[a-z]{1,8}".prop_map(|u| {
        ContentPart::Image(Image {
            source: ImageSource::Url(format!("https://img.example/{u}.png")),
            detail: None,
        })
    });
    let part = if caps.url_images {
        prop_oneof![3 => text().prop_map(ContentPart::Text), 1 => image_b64, 1 => url].boxed()
    } else {
        prop_oneof![3 => text().prop_map(ContentPart::Text), 1 => image_b64].boxed()
    };
    proptest::collection::vec(part, 1..4)
}

/// One exchange: a user turn, an assistant turn, and a result per tool call.
type Exchange = (
    Vec<ContentPart>,
    Vec<String>,
    Vec<(String, String, String, bool)>,
);

fn exchange(caps: Caps) -> impl Strategy<Value = Exchange> {
    (
        user_parts(caps),
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(("[a-z_]{1,8}", args(), text(), any::<bool>()), 0..3),
    )
        .prop_filter("assistant turn must say something", |(_, t, c)| {
            !t.is_empty() || !c.is_empty()
        })
}

/// A conversation: optional system, then exchanges; tool ids `call_<k>` over the whole
/// conversation (Gemini has no ids, so its test decoder renumbers the same way).
pub(crate) fn conversation(caps: Caps) -> impl Strategy<Value = Vec<Message>> {
    (
        proptest::option::of(proptest::collection::vec(text(), 1..3)),
        proptest::collection::vec(exchange(caps), 1..4),
        proptest::option::of(user_parts(caps)),
    )
        .prop_map(|(system, exchanges, last)| {
            let mut out = Vec::new();
            if let Some(parts) = system {
                out.push(Message {
                    content: parts.into_iter().map(ContentPart::Text).collect(),
                    ..Message::text(Role::System, "")
                });
            }
            let mut k = 0;
            for (user, texts, calls) in exchanges {
                out.push(Message {
                    content: user,
                    ..Message::text(Role::User, "")
                });
                let calls: Vec<_> = calls
                    .into_iter()
                    .map(|c| {
                        k += 1;
                        (format!("call_{}", k - 1), c)
                    })
                    .collect();
                out.push(Message {
                    content: texts.into_iter().map(ContentPart::Text).collect(),
                    tool_calls: calls
                        .iter()
                        .map(|(id, (name, arguments, _, _))| ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: arguments.clone(),
                        })
                        .collect(),
                    ..Message::text(Role::Assistant, "")
                });
                for (id, (_, _, result, is_error)) in calls {
                    out.push(Message {
                        tool_call_id: Some(id),
                        is_error,
                        ..Message::text(Role::Tool, result)
                    });
                }
            }
            if let Some(parts) = last {
                out.push(Message {
                    content: parts,
                    ..Message::text(Role::User, "")
                });
            }
            // A user turn right after tool results merges with them upstream; the decoders
            // split it again (results first), which is this same order.
            out
        })
}

/// Tools with non-null schemas (a null schema is sent as `{"type": "object"}`).
pub(crate) fn tools() -> impl Strategy<Value = Vec<Tool>> {
    proptest::collection::vec(
        ("[a-z_]{1,8}", proptest::option::of(text())).prop_map(|(name, description)| Tool {
            name,
            description,
            parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            strict: None,
        }),
        0..3,
    )
}

/// A tool choice, only when there are tools (without tools some protocols drop it).
pub(crate) fn tool_choice(caps: Caps, has_tools: bool) -> BoxedStrategy<Option<ToolChoice>> {
    if !has_tools {
        return Just(None).boxed();
    }
    let mut choices = vec![
        Just(ToolChoice::Auto).boxed(),
        Just(ToolChoice::Required).boxed(),
        "[a-z]{1,6}".prop_map(ToolChoice::Function).boxed(),
    ];
    if caps.tool_choice_none {
        choices.push(Just(ToolChoice::None).boxed());
    }
    proptest::option::of(proptest::strategy::Union::new(choices)).boxed()
}

/// Usage with consistent parts (cached and written input within input).
pub(crate) fn usage(cache_write: bool, reasoning: bool) -> impl Strategy<Value = TokenUsage> {
    (0u64..5000, 0u64..5000, 0u64..500, 0u64..500, 0u64..500).prop_map(
        move |(fresh, output, cached, write, thoughts)| {
            let write = if cache_write { write } else { 0 };
            let thoughts = if reasoning { thoughts } else { 0 };
            TokenUsage {
                input: fresh + cached + write,
                output: output + thoughts,
                cached_input: cached,
                cache_write: write,
                reasoning: thoughts,
            }
        },
    )
}

/// Tool calls with ids from `id` and compact JSON arguments.
pub(crate) fn tool_calls(id: fn(usize) -> String) -> impl Strategy<Value = Vec<ToolCall>> {
    proptest::collection::vec(("[a-z_]{1,8}", args()), 0..3).prop_map(move |calls| {
        calls
            .into_iter()
            .enumerate()
            .map(|(i, (name, arguments))| ToolCall {
                id: id(i),
                name,
                arguments,
            })
            .collect()
    })
}
