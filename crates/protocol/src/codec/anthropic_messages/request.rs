//! Messages requests: client body → canonical (strict, field-naming validation, as the
//! Anthropic front door), and canonical → upstream body (as the `anthropic` provider).

use super::wire::{
    BlockOut, ImageSourceOut, MessageOut, MetadataOut, OutputConfigOut, OutputFormatOut,
    RequestOut, ToolChoiceOut, ToolOut,
};
use super::PROTOCOL;
use crate::canonical::{
    ChatRequest, ContentPart, Image, ImageSource, Message, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice,
};
use crate::codec::openai_chat::GATEWAY_EXTENSION;
use crate::codec::structured::{self, Choice};
use crate::codec::turns::turn;
use crate::json::{self, Members, Path, RawObject};
use crate::{DecodeError, Unsupported};
use serde_json::value::RawValue;
use std::borrow::Cow;

const ROOT: Path<'static> = Path::Root;

/// A decoded Messages request plus what passing its body through needs.
#[derive(Debug, Clone)]
pub struct ParsedMessagesRequest {
    /// The canonical request.
    pub request: ChatRequest,
    /// The body as received and its top-level members in document order.
    members: Members,
    /// What the canonical request does not carry (`thinking`, `top_k`, `output_config.effort`,
    /// content blocks of type `document`, server tools, ...): passed through to Anthropic
    /// upstreams, refused by translation.
    pub untranslated: Vec<String>,
}

impl ParsedMessagesRequest {
    /// The body for an Anthropic upstream: the client's members in order, byte for byte,
    /// except `model` set to `upstream_model` and the gateway's own `switchyard` member left out.
    pub fn passthrough_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.members.body_len() + upstream_model.len());
        out.push(b'{');
        let mut first = true;
        for (key, raw) in self.members.iter() {
            if key == GATEWAY_EXTENSION {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            Members::write_key(&mut out, key);
            out.push(b':');
            match key {
                "model" => json::write_str(&mut out, upstream_model),
                _ => out.extend_from_slice(raw.as_bytes()),
            }
        }
        out.push(b'}');
        out
    }
}

/// The top-level members [`decode_request`] translates (and the gateway's own extension).
const MAPPED: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "stop_sequences",
    "temperature",
    "top_p",
    "stream",
    "metadata",
    "output_config",
    "output_format",
    GATEWAY_EXTENSION,
];

/// Defaults that ask for nothing beyond what every upstream does.
const NEUTRAL: &[(&str, &str)] = &[
    ("service_tier", "\"auto\""),
    ("thinking", r#"{"type":"disabled"}"#),
];

/// Parses and validates a client's Messages body (`max_tokens` required, as Anthropic does).
///
/// `system` becomes a leading `System` message; `tool_result` blocks become `Tool` messages
/// (one per result, in order, splitting the user turn around them); `tool_use` blocks become
/// assistant tool calls whose arguments are the compact JSON text of `input`;
/// `metadata.user_id` becomes `user`; `tool_choice.disable_parallel_tool_use: true` becomes
/// `parallel_tool_calls: false`; `output_config.format` (or the beta `output_format`) of type
/// `json_schema` becomes a `json_schema` response format. A stream always carries usage, so
/// `include_usage == stream`. Everything else is listed in
/// [`untranslated`](ParsedMessagesRequest::untranslated) and left out of the canonical form.
pub fn decode_request(body: &[u8]) -> Result<ParsedMessagesRequest, DecodeError> {
    let (text, top) = json::body_object(body)?;
    let mut untranslated = crate::codec::untranslated(&top, MAPPED, NEUTRAL);
    let request = decode(&top, true, &mut untranslated)?;
    Ok(ParsedMessagesRequest {
        request,
        members: Members::new(text, &top)?,
        untranslated,
    })
}

/// Parses a `count_tokens` body: the same as [`decode_request`] but `max_tokens` is optional,
/// and what the canonical form cannot carry is a 400 (a count without it would be wrong).
pub fn decode_count_tokens_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    let (_, top) = json::body_object(body)?;
    let mut untranslated = Vec::new();
    let request = decode(&top, false, &mut untranslated)?;
    match untranslated.first() {
        None => Ok(request),
        Some(what) => Err(DecodeError::new(format!(
            "token counting does not support {what}"
        ))),
    }
}

fn decode(
    top: &RawObject<'_>,
    require_max_tokens: bool,
    untranslated: &mut Vec<String>,
) -> Result<ChatRequest, DecodeError> {
    let model: String = json::required(top, "model", &ROOT, "a string")?;
    let max_tokens: Option<u32> = json::opt(top, "max_tokens", &ROOT, "a positive integer")?;
    if require_max_tokens && max_tokens.is_none() {
        return Err(DecodeError::at(
            "max_tokens",
            "missing required parameter 'max_tokens' (the Messages API requires it)",
        ));
    }
    let messages_raw = top
        .get_non_null("messages")
        .ok_or_else(|| DecodeError::at("messages", "missing required parameter 'messages'"))?;
    let messages_path = ROOT.key("messages");
    let items = json::array(messages_raw, &messages_path)?;
    if items.is_empty() {
        return Err(DecodeError::at(
            "messages",
            "'messages' must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(items.len() + 1);
    if let Some(raw) = top.get_non_null("system") {
        messages.push(Message {
            content: system(raw)?,
            ..Message::text(Role::System, "")
        });
    }
    for (i, raw) in items.iter().enumerate() {
        message(raw, &messages_path.index(i), &mut messages, untranslated)?;
    }

    let mut tools = Vec::new();
    if let Some(raw) = top.get_non_null("tools") {
        let path = ROOT.key("tools");
        for (i, raw) in json::array(raw, &path)?.iter().enumerate() {
            match tool(raw, &path.index(i))? {
                Ok(t) => tools.push(t),
                Err(kind) => note(untranslated, format!("tools of type `{kind}`")),
            }
        }
    }
    let (tool_choice, parallel_tool_calls) = match top.get_non_null("tool_choice") {
        None => (None, None),
        Some(raw) => tool_choice(raw)?,
    };
    let user = match top.get_non_null("metadata") {
        None => None,
        Some(raw) => {
            let path = ROOT.key("metadata");
            let meta = json::object(raw, &path)?;
            json::opt(&meta, "user_id", &path, "a string")?
        }
    };
    let mut response_format = None;
    if let Some(raw) = top.get_non_null("output_format") {
        response_format = Some(output_format(
            raw,
            &ROOT.key("output_format"),
            untranslated,
        )?);
    }
    if let Some(raw) = top.get_non_null("output_config") {
        let path = ROOT.key("output_config");
        let config = json::object(raw, &path)?;
        for (key, value) in &config.0 {
            match key.as_ref() {
                "format" if !json::is_null(value) => {
                    response_format = Some(output_format(value, &path.key("format"), untranslated)?)
                }
                "format" => {}
                other => {
                    let one = RawObject(vec![(Cow::Borrowed(other), *value)]);
                    for k in crate::codec::untranslated(&one, &[], &[]) {
                        note(untranslated, format!("output_config.{k}"));
                    }
                }
            }
        }
    }
    let stream = json::opt::<bool>(top, "stream", &ROOT, "a boolean")?.unwrap_or(false);
    Ok(ChatRequest {
        model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        temperature: json::opt(top, "temperature", &ROOT, "a number")?,
        top_p: json::opt(top, "top_p", &ROOT, "a number")?,
        max_tokens,
        stop: json::opt(top, "stop_sequences", &ROOT, "an array of strings")?.unwrap_or_default(),
        seed: None,
        n: None,
        stream,
        include_usage: stream,
        user,
    })
}

/// Records `what` as untranslated, once.
fn note(untranslated: &mut Vec<String>, what: String) {
    if !untranslated.contains(&what) {
        untranslated.push(what);
    }
}

/// An `output_config.format` (or beta `output_format`): `{type: json_schema, schema}` is a
/// `json_schema` response format (named `output`: Anthropic's has no name); other types are
/// untranslated.
fn output_format(
    raw: &RawValue,
    path: &Path<'_>,
    untranslated: &mut Vec<String>,
) -> Result<ResponseFormat, DecodeError> {
    let obj = json::object(raw, path)?;
    let kind: Cow<'_, str> = json::required(&obj, "type", path, "a string")?;
    if kind != "json_schema" {
        note(
            untranslated,
            format!("{path} of type `{}`", json::truncate(&kind, 40)),
        );
        return Ok(ResponseFormat::Text);
    }
    let spath = path.key("schema");
    let schema = obj
        .get_non_null("schema")
        .ok_or_else(|| DecodeError::at(spath, format!("missing required parameter '{spath}'")))?;
    json::object(schema, &spath)?;
    Ok(ResponseFormat::JsonSchema {
        name: "output".into(),
        schema: json::typed(schema, &spath, "a JSON Schema object")?,
        strict: None,
    })
}

/// `system`: a string or an array of text blocks.
fn system(raw: &RawValue) -> Result<Vec<ContentPart>, DecodeError> {
    let path = ROOT.key("system");
    if raw.get().starts_with('"') {
        return Ok(vec![ContentPart::Text(json::string(raw, &path)?)]);
    }
    let blocks = json::array(raw, &path).map_err(|_| {
        DecodeError::at(
            path,
            format!(
                "invalid 'system': expected a string or an array of text blocks, got {}",
                json::describe(raw)
            ),
        )
    })?;
    blocks
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let p = path.index(i);
            match block(raw, &p)? {
                Block::Part(part @ ContentPart::Text(_)) => Ok(part),
                _ => Err(DecodeError::at(
                    p.key("type"),
                    format!("only text blocks are allowed in 'system' ({p})"),
                )),
            }
        })
        .collect()
}

/// One content block, before it is placed in a message.
enum Block {
    /// A block type the canonical form has no place for (`thinking`, `document`, ...).
    Native(String),
    Part(ContentPart),
    ToolUse(ToolCall),
    ToolResult {
        id: String,
        content: Vec<ContentPart>,
        is_error: bool,
    },
}

fn message(
    raw: &RawValue,
    path: &Path<'_>,
    out: &mut Vec<Message>,
    untranslated: &mut Vec<String>,
) -> Result<(), DecodeError> {
    let obj = json::object(raw, path)?;
    let role_path = path.key("role");
    let role_name: Cow<'_, str> = json::required(&obj, "role", path, "a string")?;
    let role = match role_name.as_ref() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(DecodeError::at(
                role_path,
                format!(
                    "unknown role '{}' in {role_path}; supported: user, assistant",
                    json::truncate(other, 40)
                ),
            ))
        }
    };
    let content_path = path.key("content");
    let raw_content = obj.get_non_null("content").ok_or_else(|| {
        DecodeError::at(
            content_path,
            format!("missing required parameter '{content_path}'"),
        )
    })?;
    let blocks: Vec<Block> = if raw_content.get().starts_with('"') {
        vec![Block::Part(ContentPart::Text(json::string(
            raw_content,
            &content_path,
        )?))]
    } else if raw_content.get().starts_with('[') {
        json::array(raw_content, &content_path)?
            .iter()
            .enumerate()
            .map(|(i, raw)| block(raw, &content_path.index(i)))
            .collect::<Result<_, _>>()?
    } else {
        return Err(DecodeError::at(
            content_path,
            format!(
                "invalid '{content_path}': expected a string or an array of content blocks, got {}",
                json::describe(raw_content)
            ),
        ));
    };
    if blocks.is_empty() {
        return Err(DecodeError::at(
            content_path,
            format!("'{content_path}' must not be empty"),
        ));
    }

    if role == Role::Assistant {
        let mut msg = Message::text(Role::Assistant, "");
        msg.content.clear();
        for (i, b) in blocks.into_iter().enumerate() {
            match b {
                Block::Part(ContentPart::Text(t)) => msg.content.push(ContentPart::Text(t)),
                Block::ToolUse(call) => msg.tool_calls.push(call),
                Block::Native(kind) => {
                    note(untranslated, format!("content blocks of type `{kind}`"))
                }
                Block::Part(ContentPart::Image(_)) | Block::ToolResult { .. } => {
                    let item = content_path.index(i);
                    let p = item.key("type");
                    return Err(DecodeError::at(
                        p,
                        format!("{p}: assistant messages may hold only text and tool_use blocks"),
                    ));
                }
            }
        }
        out.push(msg);
        return Ok(());
    }

    // A user turn: tool results become Tool messages, the other blocks user messages between
    // them, keeping the order.
    let mut pending: Vec<ContentPart> = Vec::new();
    for (i, b) in blocks.into_iter().enumerate() {
        match b {
            Block::Part(part) => pending.push(part),
            Block::Native(kind) => note(untranslated, format!("content blocks of type `{kind}`")),
            Block::ToolUse(_) => {
                let item = content_path.index(i);
                let p = item.key("type");
                return Err(DecodeError::at(
                    p,
                    format!("{p}: tool_use blocks are only allowed in assistant messages"),
                ));
            }
            Block::ToolResult {
                id,
                content,
                is_error,
            } => {
                if !pending.is_empty() {
                    out.push(user_message(std::mem::take(&mut pending)));
                }
                out.push(Message {
                    role: Role::Tool,
                    content,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(id),
                    name: None,
                    is_error,
                });
            }
        }
    }
    if !pending.is_empty() {
        out.push(user_message(pending));
    }
    Ok(())
}

fn user_message(content: Vec<ContentPart>) -> Message {
    Message {
        content,
        ..Message::text(Role::User, "")
    }
}

fn block(raw: &RawValue, path: &Path<'_>) -> Result<Block, DecodeError> {
    let obj = json::object(raw, path)?;
    let kind: Cow<'_, str> = json::required(&obj, "type", path, "a string")?;
    match kind.as_ref() {
        "text" => Ok(Block::Part(ContentPart::Text(json::required(
            &obj, "text", path, "a string",
        )?))),
        "image" => Ok(Block::Part(ContentPart::Image(image(&obj, path)?))),
        "tool_use" => {
            let input_path = path.key("input");
            let input = obj.get_non_null("input").ok_or_else(|| {
                DecodeError::at(
                    input_path,
                    format!("missing required parameter '{input_path}'"),
                )
            })?;
            json::object(input, &input_path)?;
            Ok(Block::ToolUse(ToolCall {
                id: json::required(&obj, "id", path, "a string")?,
                name: json::required(&obj, "name", path, "a string")?,
                arguments: json::compact(input.get()),
            }))
        }
        "tool_result" => {
            let content_path = path.key("content");
            let content = match obj.get_non_null("content") {
                None => Vec::new(),
                Some(raw) if raw.get().starts_with('"') => {
                    vec![ContentPart::Text(json::string(raw, &content_path)?)]
                }
                Some(raw) => json::array(raw, &content_path)?
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| {
                        let p = content_path.index(i);
                        match block(raw, &p)? {
                            Block::Part(part) => Ok(part),
                            _ => Err(DecodeError::at(
                                p.key("type"),
                                format!("{p}: a tool_result may hold only text and image blocks"),
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            };
            Ok(Block::ToolResult {
                id: json::required(&obj, "tool_use_id", path, "a string")?,
                content,
                is_error: json::opt(&obj, "is_error", path, "a boolean")?.unwrap_or(false),
            })
        }
        other => Ok(Block::Native(json::truncate(other, 40).to_string())),
    }
}

fn image(obj: &RawObject<'_>, path: &Path<'_>) -> Result<Image, DecodeError> {
    let spath = path.key("source");
    let raw = obj
        .get_non_null("source")
        .ok_or_else(|| DecodeError::at(spath, format!("missing required parameter '{spath}'")))?;
    let src = json::object(raw, &spath)?;
    let kind: Cow<'_, str> = json::required(&src, "type", &spath, "a string")?;
    let source = match kind.as_ref() {
        "base64" => ImageSource::Base64 {
            media_type: json::required(&src, "media_type", &spath, "a string")?,
            data: json::required(&src, "data", &spath, "a string")?,
        },
        "url" => ImageSource::Url(json::required(&src, "url", &spath, "a string")?),
        other => {
            return Err(DecodeError::at(
                spath.key("type"),
                format!(
                    "unsupported image source type '{}' in {spath}; supported: base64, url",
                    json::truncate(other, 40)
                ),
            ))
        }
    };
    Ok(Image {
        source,
        detail: None,
    })
}

/// A client tool, or (`Err`) the type of a server tool (`web_search_20250305`, `bash_20250124`,
/// ...), which runs inside Anthropic and cannot be served by other providers.
fn tool(raw: &RawValue, path: &Path<'_>) -> Result<Result<Tool, String>, DecodeError> {
    let obj = json::object(raw, path)?;
    let kind: Option<Cow<'_, str>> = json::opt(&obj, "type", path, "a string")?;
    if let Some(kind) = kind.filter(|k| k != "custom") {
        return Ok(Err(json::truncate(&kind, 40).to_string()));
    }
    let spath = path.key("input_schema");
    let schema = obj
        .get_non_null("input_schema")
        .ok_or_else(|| DecodeError::at(spath, format!("missing required parameter '{spath}'")))?;
    json::object(schema, &spath)?;
    Ok(Ok(Tool {
        name: json::required(&obj, "name", path, "a string")?,
        description: json::opt(&obj, "description", path, "a string")?,
        parameters: json::typed(schema, &spath, "a JSON Schema object")?,
        strict: json::opt(&obj, "strict", path, "a boolean")?,
    }))
}

fn tool_choice(raw: &RawValue) -> Result<(Option<ToolChoice>, Option<bool>), DecodeError> {
    let path = ROOT.key("tool_choice");
    let obj = json::object(raw, &path)?;
    let kind: Cow<'_, str> = json::required(&obj, "type", &path, "a string")?;
    let choice = match kind.as_ref() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Function(json::required(&obj, "name", &path, "a string")?),
        other => {
            return Err(DecodeError::at(
                path.key("type"),
                format!(
                    "invalid 'tool_choice.type': '{}'; supported: auto, any, none, tool",
                    json::truncate(other, 40)
                ),
            ))
        }
    };
    let disable: Option<bool> = json::opt(&obj, "disable_parallel_tool_use", &path, "a boolean")?;
    Ok((Some(choice), disable.filter(|d| *d).map(|_| false)))
}

// === Encoding (upstream) ===

/// Canonical → Anthropic Messages body for `upstream_model`.
///
/// System and developer messages (wherever they are) become the top-level `system` blocks;
/// tool results become `tool_result` blocks in a user turn; consecutive turns of the same
/// role are merged, tool results first (Anthropic requires them to lead the turn); empty text
/// parts and turns left empty are dropped (Anthropic rejects empty text blocks).
/// `max_tokens` falls back to `default_max_tokens`. A strict `json_schema` response format
/// on a model with native structured outputs ([`native_structured_outputs`]) becomes
/// `output_config.format`; any other JSON format becomes a forced answer tool
/// ([`structured`]), whose call the response decoding turns back into text
/// ([`answer_tool`]). Tool `strict: true` is Anthropic's strict tool use on those same models.
/// Image `detail`, participant names and tool `strict` on older models are dropped; `n` > 1,
/// `seed` and images outside user turns are [`Unsupported`].
pub fn encode_request(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, Unsupported> {
    crate::codec::reject_choices(req, PROTOCOL)?;
    crate::codec::reject_seed(req, PROTOCOL)?;
    let native = native_format(req, upstream_model);
    let plan = if native.is_some() {
        structured::ToolPlan {
            answer: None,
            choice: req.tool_choice.as_ref().map(|c| match c {
                ToolChoice::Auto => Choice::Auto,
                ToolChoice::None => Choice::None,
                ToolChoice::Required => Choice::Required,
                ToolChoice::Function(f) => Choice::Function(f),
            }),
        }
    } else {
        structured::tool_plan(req, PROTOCOL)?
    };

    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => {
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(text) => system.push(BlockOut::Text { text }),
                        ContentPart::Image(_) => {
                            return Err(Unsupported::new(PROTOCOL, "images in system messages"))
                        }
                    }
                }
            }
            Role::User => {
                let blocks = parts(&m.content, "user")?;
                turn(&mut turns, "user").others.extend(blocks);
            }
            Role::Tool => {
                let block = BlockOut::ToolResult {
                    tool_use_id: m.tool_call_id.as_deref().unwrap_or_default(),
                    content: parts(&m.content, "tool")?,
                    is_error: m.is_error,
                };
                turn(&mut turns, "user").results.push(block);
            }
            Role::Assistant => {
                let mut blocks = parts(&m.content, "assistant")?;
                blocks.extend(m.tool_calls.iter().map(|c| BlockOut::ToolUse {
                    id: &c.id,
                    name: &c.name,
                    input: json::arguments_object(&c.arguments),
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

    let disable_parallel = req.parallel_tool_calls == Some(false);
    let tool_choice = match plan.choice {
        Some(Choice::Auto) => Some(ToolChoiceOut::Auto {
            disable_parallel_tool_use: disable_parallel,
        }),
        Some(Choice::Required) => Some(ToolChoiceOut::Any {
            disable_parallel_tool_use: disable_parallel,
        }),
        Some(Choice::Function(name)) => Some(ToolChoiceOut::Tool {
            name,
            disable_parallel_tool_use: disable_parallel,
        }),
        Some(Choice::None) => Some(ToolChoiceOut::None),
        None if disable_parallel && !req.tools.is_empty() => Some(ToolChoiceOut::Auto {
            disable_parallel_tool_use: true,
        }),
        None => None,
    };
    let strict_tools = native_structured_outputs(upstream_model);
    let body = RequestOut {
        model: upstream_model,
        max_tokens: req.max_tokens.unwrap_or(default_max_tokens),
        system,
        messages,
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                name: &t.name,
                description: t.description.as_deref(),
                input_schema: crate::codec::schema_or_empty(&t.parameters),
                strict: strict_tools && t.strict == Some(true),
            })
            .chain(plan.answer.as_ref().map(|a| ToolOut {
                name: a.name,
                description: Some(a.description),
                input_schema: a.schema,
                strict: false,
            }))
            .collect(),
        tool_choice,
        stop_sequences: &req.stop,
        temperature: req.temperature,
        top_p: req.top_p,
        stream: req.stream,
        metadata: req.user.as_deref().map(|user_id| MetadataOut { user_id }),
        output_config: native.map(|schema| OutputConfigOut {
            format: OutputFormatOut::JsonSchema { schema },
        }),
    };
    let mut out = Vec::with_capacity(256);
    json::write_json(&mut out, &body);
    Ok(out)
}

type Turn<'a> = crate::codec::turns::Turn<BlockOut<'a>>;

/// The schema `req` sends as native structured output to `upstream_model`: a strict
/// `json_schema` format (strict schemas are the subset Anthropic's constrained decoding takes)
/// on a model that has it.
fn native_format<'a>(req: &'a ChatRequest, upstream_model: &str) -> Option<&'a serde_json::Value> {
    match &req.response_format {
        Some(ResponseFormat::JsonSchema {
            schema,
            strict: Some(true),
            ..
        }) if native_structured_outputs(upstream_model) => Some(schema),
        _ => None,
    }
}

/// The answer tool whose call is the answer, when [`encode_request`] sends `req`'s response
/// format to `upstream_model` as one.
pub fn answer_tool<'a>(req: &'a ChatRequest, upstream_model: &str) -> Option<&'a str> {
    if native_format(req, upstream_model).is_some() {
        return None;
    }
    structured::answer_tool_name(req)
}

/// Whether the Anthropic model `id` has native structured outputs (`output_config.format`):
/// Claude 4.5 and later (Sonnet 4.5, Opus 4.5, Haiku 4.5, the 4.6 models, ...). Read from the
/// id's version numbers, both namings (`claude-sonnet-4-5-20250929`, `claude-3-5-haiku`);
/// an id it cannot read (an alias, a fine-tune) gets the answer tool, which every model takes.
pub fn native_structured_outputs(id: &str) -> bool {
    let Some(rest) = id.find("claude-").map(|i| &id[i + "claude-".len()..]) else {
        return false;
    };
    // The version is the first short number and the one right after it; dates (`20250929`)
    // are not version numbers.
    let version = |p: &str| {
        (!p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    let parts: Vec<&str> = rest.split(['-', '.', '@']).collect();
    let Some(at) = parts.iter().position(|p| version(p).is_some()) else {
        return false;
    };
    let major = version(parts[at]).unwrap_or(0);
    let minor = parts.get(at + 1).and_then(|p| version(p)).unwrap_or(0);
    (major, minor) >= (4, 5)
}

/// Text and image parts as blocks; images only where Anthropic takes them (user, tool).
fn parts<'a>(content: &'a [ContentPart], role: &str) -> Result<Vec<BlockOut<'a>>, Unsupported> {
    let mut out = Vec::with_capacity(content.len());
    for part in content {
        match part {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(text) => out.push(BlockOut::Text { text }),
            ContentPart::Image(_) if role == "assistant" => {
                return Err(Unsupported::new(PROTOCOL, "images in assistant messages"))
            }
            ContentPart::Image(img) => out.push(BlockOut::Image {
                source: match &img.source {
                    ImageSource::Url(url) => ImageSourceOut::Url { url },
                    ImageSource::Base64 { media_type, data } => {
                        ImageSourceOut::Base64 { media_type, data }
                    }
                },
            }),
        }
    }
    Ok(out)
}
