//! Canonical → `generateContent` request body (Gemini API and Vertex AI alike; the model and
//! the streaming choice are in the URL).

use super::PROTOCOL;
use crate::canonical::{
    ChatRequest, ContentPart, ImageSource, Message, ResponseFormat, Role, ToolChoice,
};
use crate::codec::turns::turn;
use crate::json::{self, ArgsObject};
use crate::Unsupported;
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestOut<'a> {
    contents: Vec<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfigOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfigOut<'a>>,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    role: &'static str,
    parts: Vec<PartOut<'a>>,
}

#[derive(Serialize)]
struct SystemOut<'a> {
    parts: Vec<PartOut<'a>>,
}

/// A part: an object with one member named after its kind.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum PartOut<'a> {
    Text(&'a str),
    InlineData(InlineDataOut<'a>),
    FileData(FileDataOut<'a>),
    FunctionCall(FunctionCallOut<'a>),
    FunctionResponse(FunctionResponseOut<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineDataOut<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileDataOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'static str>,
    file_uri: &'a str,
}

#[derive(Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    args: ArgsObject<'a>,
}

#[derive(Serialize)]
struct FunctionResponseOut<'a> {
    name: &'a str,
    response: ResultOut,
}

/// The function's result as `{"content": text}`, or `{"error": text}` when the tool failed
/// (Gemini's documented convention for the free-form `response` object).
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ResultOut {
    Content(String),
    Error(String),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolsOut<'a> {
    function_declarations: Vec<FunctionDeclarationOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclarationOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// Full JSON Schema (`parameters` takes only Google's OpenAPI subset, which rejects
    /// common client schemas with `additionalProperties` or `$defs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfigOut<'a> {
    function_calling_config: FunctionCallingConfigOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfigOut<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<&'a str>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfigOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a Value>,
}

/// The media type of an image URL, from its extension, when it is a common one.
fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        _ => return None,
    })
}

type Turn<'a> = crate::codec::turns::Turn<PartOut<'a>>;

/// Text and image parts of a user turn.
fn user_parts(m: &Message) -> Vec<PartOut<'_>> {
    m.content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text(t) if t.is_empty() => None,
            ContentPart::Text(t) => Some(PartOut::Text(t)),
            ContentPart::Image(img) => Some(match &img.source {
                ImageSource::Base64 { media_type, data } => PartOut::InlineData(InlineDataOut {
                    mime_type: media_type,
                    data,
                }),
                ImageSource::Url(url) => PartOut::FileData(FileDataOut {
                    mime_type: mime_from_url(url),
                    file_uri: url,
                }),
            }),
        })
        .collect()
}

/// Canonical → `generateContent` body.
///
/// Roles become `user` and `model`; system and developer messages become
/// `systemInstruction`; a tool result becomes a `functionResponse` part in a user turn,
/// named after the earlier tool call with its id (Gemini matches results by name);
/// consecutive same-role turns are merged, function responses first; empty text parts and
/// empty turns are dropped. URL images become `fileData`. `json_object` becomes
/// `responseMimeType: application/json`; `json_schema` adds `responseJsonSchema`.
/// Image `detail`, names and tool `strict` are dropped. `n` > 1, `user` (the Gemini API has
/// no end-user field), `parallel_tool_calls: false`, images in system, assistant or tool
/// messages, a seed outside 32 bits, and a tool result with no matching call are
/// [`Unsupported`].
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, Unsupported> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(Unsupported::new(PROTOCOL, "`n` > 1"));
    }
    if req.user.is_some() {
        return Err(Unsupported::new(PROTOCOL, "`user`"));
    }
    crate::codec::reject_serial_tool_calls(req, PROTOCOL)?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => {
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => system.push(PartOut::Text(t)),
                        ContentPart::Image(_) => {
                            return Err(Unsupported::new(PROTOCOL, "images in system messages"))
                        }
                    }
                }
            }
            Role::User => {
                let parts = user_parts(m);
                turn(&mut turns, "user").others.extend(parts);
            }
            Role::Assistant => {
                let mut parts = Vec::with_capacity(m.content.len() + m.tool_calls.len());
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => parts.push(PartOut::Text(t)),
                        ContentPart::Image(_) => {
                            return Err(Unsupported::new(PROTOCOL, "images in assistant messages"))
                        }
                    }
                }
                parts.extend(m.tool_calls.iter().map(|c| {
                    PartOut::FunctionCall(FunctionCallOut {
                        name: &c.name,
                        args: json::arguments_object(&c.arguments),
                    })
                }));
                turn(&mut turns, "model").others.extend(parts);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = req
                    .messages
                    .iter()
                    .flat_map(|m| &m.tool_calls)
                    .find(|c| c.id == id)
                    .map(|c| c.name.as_str())
                    .ok_or_else(|| {
                        Unsupported::new(
                            PROTOCOL,
                            format!(
                                "a tool result whose tool_call_id '{}' matches no earlier tool \
                                 call (Gemini identifies results by function name)",
                                json::truncate(id, 40)
                            ),
                        )
                    })?;
                if m.content.iter().any(|p| matches!(p, ContentPart::Image(_))) {
                    return Err(Unsupported::new(PROTOCOL, "images in tool results"));
                }
                let text = m.joined_text();
                let response = if m.is_error {
                    ResultOut::Error(text)
                } else {
                    ResultOut::Content(text)
                };
                turn(&mut turns, "user")
                    .results
                    .push(PartOut::FunctionResponse(FunctionResponseOut {
                        name,
                        response,
                    }));
            }
        }
    }
    let contents = turns
        .into_iter()
        .filter_map(|mut t| {
            t.results.append(&mut t.others);
            (!t.results.is_empty()).then_some(ContentOut {
                role: t.role,
                parts: t.results,
            })
        })
        .collect();

    let tools = if req.tools.is_empty() {
        Vec::new()
    } else {
        vec![ToolsOut {
            function_declarations: req
                .tools
                .iter()
                .map(|t| FunctionDeclarationOut {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters_json_schema: (!t.parameters.is_null()).then_some(&t.parameters),
                })
                .collect(),
        }]
    };
    let tool_config = req.tool_choice.as_ref().map(|c| {
        let (mode, allowed) = match c {
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Required => ("ANY", Vec::new()),
            ToolChoice::Function(name) => ("ANY", vec![name.as_str()]),
        };
        ToolConfigOut {
            function_calling_config: FunctionCallingConfigOut {
                mode,
                allowed_function_names: allowed,
            },
        }
    });
    let seed = req
        .seed
        .map(i32::try_from)
        .transpose()
        .map_err(|_| Unsupported::new(PROTOCOL, "a `seed` outside the 32-bit range"))?;
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => (
            Some("application/json"),
            (!schema.is_null()).then_some(schema),
        ),
    };
    let generation = GenerationConfigOut {
        max_output_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
        seed,
        response_mime_type,
        response_json_schema,
    };
    let has_generation = generation.max_output_tokens.is_some()
        || generation.temperature.is_some()
        || generation.top_p.is_some()
        || !generation.stop_sequences.is_empty()
        || generation.seed.is_some()
        || generation.response_mime_type.is_some();
    let body = RequestOut {
        contents,
        system_instruction: (!system.is_empty()).then_some(SystemOut { parts: system }),
        tools,
        tool_config,
        generation_config: has_generation.then_some(generation),
    };
    let mut out = Vec::with_capacity(256);
    json::write_json(&mut out, &body);
    Ok(out)
}
