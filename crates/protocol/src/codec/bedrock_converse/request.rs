//! Canonical → Converse request body. The model id goes in the URL, never in the body, and
//! streaming is chosen by the path (`/converse-stream`), so neither appears here.

use super::PROTOCOL;
use crate::canonical::{ChatRequest, ContentPart, ImageSource, Role};
use crate::codec::structured::{self, Choice};
use crate::codec::turns::turn;
use crate::json::{self, ArgsObject};
use crate::Unsupported;
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemOut<'a>>,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<InferenceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfigOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_metadata: Option<RequestMetadataOut<'a>>,
}

#[derive(Serialize)]
struct RequestMetadataOut<'a> {
    user: &'a str,
}

#[derive(Serialize)]
struct SystemOut<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Vec<BlockOut<'a>>,
}

/// A content block: an object with exactly one member named after the block kind.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum BlockOut<'a> {
    Text(&'a str),
    Image(ImageOut<'a>),
    ToolUse(ToolUseOut<'a>),
    ToolResult(ToolResultOut<'a>),
}

#[derive(Serialize)]
struct ImageOut<'a> {
    format: &'static str,
    source: BytesOut<'a>,
}

/// Bytes travel as base64 in JSON, which the canonical inline image already is.
#[derive(Serialize)]
struct BytesOut<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseOut<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: ArgsObject<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResultOut<'a> {
    tool_use_id: &'a str,
    content: Vec<ResultPartOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ResultPartOut<'a> {
    Text(&'a str),
    Image(ImageOut<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfigOut<'a> {
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolOut<'a> {
    tool_spec: ToolSpecOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpecOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: SchemaOut<'a>,
}

#[derive(Serialize)]
struct SchemaOut<'a> {
    json: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolChoiceOut<'a> {
    Auto(Empty),
    Any(Empty),
    Tool(NameOut<'a>),
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

/// Bedrock's image `format` for a media type.
fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn image(source: &ImageSource) -> Result<ImageOut<'_>, Unsupported> {
    match source {
        ImageSource::Base64 { media_type, data } => Ok(ImageOut {
            format: image_format(media_type).ok_or_else(|| {
                Unsupported::new(PROTOCOL, format!("images of type {media_type}"))
            })?,
            source: BytesOut { bytes: data },
        }),
        // Converse takes bytes or an S3 location, never an HTTP URL, and the gateway does not
        // fetch on the caller's behalf.
        ImageSource::Url(_) => Err(Unsupported::new(PROTOCOL, "images given by URL")),
    }
}

type Turn<'a> = crate::codec::turns::Turn<BlockOut<'a>>;

/// Canonical → Converse body.
///
/// System and developer messages become `system`; tool results become `toolResult` blocks
/// in a user turn (`status: "error"` when the tool failed); consecutive same-role turns are
/// merged with tool results first; empty text parts and empty turns are dropped (Bedrock
/// rejects blank text). A JSON response format becomes an answer tool with a forced
/// `toolChoice` ([`structured`](crate::codec::structured)), whose call the response decoding
/// turns back into text. `user` becomes `requestMetadata.user` (for invocation-log filters).
/// Image `detail`, names and tool `strict` are dropped. `n` > 1, `seed`,
/// `parallel_tool_calls: false`, URL images, images outside user and tool turns, and
/// `tool_choice: none` in a conversation that already used tools are [`Unsupported`].
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, Unsupported> {
    crate::codec::reject_choices(req, PROTOCOL)?;
    crate::codec::reject_seed(req, PROTOCOL)?;
    crate::codec::reject_serial_tool_calls(req, PROTOCOL)?;
    let plan = structured::tool_plan(req, PROTOCOL)?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    let mut uses_tools = false;
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => {
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(text) => system.push(SystemOut { text }),
                        ContentPart::Image(_) => {
                            return Err(Unsupported::new(PROTOCOL, "images in system messages"))
                        }
                    }
                }
            }
            Role::User => {
                let mut blocks = Vec::with_capacity(m.content.len());
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => blocks.push(BlockOut::Text(t)),
                        ContentPart::Image(img) => {
                            blocks.push(BlockOut::Image(image(&img.source)?))
                        }
                    }
                }
                turn(&mut turns, "user").others.extend(blocks);
            }
            Role::Tool => {
                uses_tools = true;
                let mut content = Vec::with_capacity(m.content.len());
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) => content.push(ResultPartOut::Text(t)),
                        ContentPart::Image(img) => {
                            content.push(ResultPartOut::Image(image(&img.source)?))
                        }
                    }
                }
                let block = BlockOut::ToolResult(ToolResultOut {
                    tool_use_id: m.tool_call_id.as_deref().unwrap_or_default(),
                    content,
                    status: m.is_error.then_some("error"),
                });
                turn(&mut turns, "user").results.push(block);
            }
            Role::Assistant => {
                let mut blocks = Vec::with_capacity(m.content.len() + m.tool_calls.len());
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => blocks.push(BlockOut::Text(t)),
                        ContentPart::Image(_) => {
                            return Err(Unsupported::new(PROTOCOL, "images in assistant messages"))
                        }
                    }
                }
                uses_tools |= !m.tool_calls.is_empty();
                blocks.extend(m.tool_calls.iter().map(|c| {
                    BlockOut::ToolUse(ToolUseOut {
                        tool_use_id: &c.id,
                        name: &c.name,
                        input: json::arguments_object(&c.arguments),
                    })
                }));
                turn(&mut turns, "assistant").others.extend(blocks);
            }
        }
    }
    let messages = turns
        .into_iter()
        .filter_map(|mut t| {
            t.results.append(&mut t.others);
            (!t.results.is_empty()).then_some(MessageOut {
                role: t.role,
                content: t.results,
            })
        })
        .collect();

    let tool_choice = match plan.choice {
        None => None,
        Some(Choice::Auto) => Some(ToolChoiceOut::Auto(Empty {})),
        Some(Choice::Required) => Some(ToolChoiceOut::Any(Empty {})),
        Some(Choice::Function(name)) => Some(ToolChoiceOut::Tool(NameOut { name })),
        // Converse has no "none"; leaving the tools out says the same, unless the history
        // holds tool blocks, which Bedrock only accepts alongside a toolConfig.
        Some(Choice::None) if uses_tools => {
            return Err(Unsupported::new(
                PROTOCOL,
                "`tool_choice: none` in a conversation that already used tools",
            ))
        }
        Some(Choice::None) => None,
    };
    let send_tools =
        plan.answer.is_some() || (!req.tools.is_empty() && plan.choice != Some(Choice::None));
    let tool_config = send_tools.then(|| ToolConfigOut {
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                tool_spec: ToolSpecOut {
                    name: &t.name,
                    description: t.description.as_deref(),
                    input_schema: SchemaOut {
                        json: crate::codec::schema_or_empty(&t.parameters),
                    },
                },
            })
            .chain(plan.answer.as_ref().map(|a| ToolOut {
                tool_spec: ToolSpecOut {
                    name: a.name,
                    description: Some(a.description),
                    input_schema: SchemaOut { json: a.schema },
                },
            }))
            .collect(),
        tool_choice,
    });
    let inference = InferenceOut {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
    };
    let has_inference = inference.max_tokens.is_some()
        || inference.temperature.is_some()
        || inference.top_p.is_some()
        || !inference.stop_sequences.is_empty();
    let body = RequestOut {
        system,
        messages,
        inference_config: has_inference.then_some(inference),
        tool_config,
        request_metadata: req.user.as_deref().map(|user| RequestMetadataOut { user }),
    };
    let mut out = Vec::with_capacity(256);
    json::write_json(&mut out, &body);
    Ok(out)
}
