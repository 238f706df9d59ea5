//! Chat requests: client body → canonical (with strict, field-naming validation), canonical →
//! upstream body, and the pass-through rewrite that keeps the client's bytes.

use super::wire::{
    ContentOut, FunctionCallOut, FunctionDefOut, ImageUrlOut, MessageOut, PartOut, RequestOut,
    StreamOptionsOut, ToolCallOut, ToolOut,
};
use crate::canonical::{
    ChatRequest, ContentPart, Image, ImageSource, Message, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice,
};
use crate::json::{self, Members, Path, RawObject};
use crate::DecodeError;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// A decoded client request plus what's needed to pass its body through with minimal rewriting.
#[derive(Debug, Clone)]
pub struct ParsedChatRequest {
    /// The canonical request.
    pub request: ChatRequest,
    /// The body as received (validated UTF-8) and its top-level members in document order.
    members: Members,
    /// Top-level members the canonical request does not carry (`logprobs`,
    /// `frequency_penalty`, `reasoning_effort`, ...): passed through to OpenAI-shaped
    /// upstreams, refused by translation.
    pub untranslated: Vec<String>,
}

/// The members [`decode_request`] translates (and the gateway's own extension).
const MAPPED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "temperature",
    "top_p",
    "max_completion_tokens",
    "max_tokens",
    "stop",
    "seed",
    "n",
    "stream",
    "stream_options",
    "user",
    GATEWAY_EXTENSION,
];

/// Defaults that ask for nothing beyond what every upstream does.
const NEUTRAL: &[(&str, &str)] = &[
    ("service_tier", "\"auto\""),
    ("service_tier", "\"default\""),
];

/// Parses and validates a client's chat-completions body.
pub fn decode_request(body: &[u8]) -> Result<ParsedChatRequest, DecodeError> {
    let (text, top) = json::body_object(body)?;
    let request = request_from_object(&top)?;
    Ok(ParsedChatRequest {
        request,
        untranslated: crate::codec::untranslated(&top, MAPPED, NEUTRAL),
        members: Members::new(text, &top)?,
    })
}

impl ParsedChatRequest {
    /// The body to send to an OpenAI-shaped upstream: the original top-level fields in order, byte-for-byte,
    /// except `model` set to `upstream_model`, and, when streaming and `force_usage` is true,
    /// `stream_options.include_usage` set to true (other stream_options members kept).
    pub fn passthrough_body(&self, upstream_model: &str, force_usage: bool) -> Vec<u8> {
        let force_usage = force_usage && self.request.stream;
        let mut out = Vec::with_capacity(self.members.body_len() + upstream_model.len() + 40);
        out.push(b'{');
        let mut saw_stream_options = false;
        let mut first = true;
        for (key, raw) in self.members.iter() {
            // The gateway's own routing extension is for us, not for the upstream.
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
                "stream_options" if force_usage => {
                    saw_stream_options = true;
                    write_stream_options_with_usage(&mut out, raw);
                }
                _ => out.extend_from_slice(raw.as_bytes()),
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

    /// The raw JSON text of top-level member `key` as the client sent it, if present.
    pub fn raw_field(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, raw)| raw)
    }
}

/// The top-level member carrying the gateway's own per-request routing preferences; it is
/// never passed upstream.
pub const GATEWAY_EXTENSION: &str = "switchyard";

/// Rewrites a `stream_options` value so `include_usage` is true, keeping other members in order.
fn write_stream_options_with_usage(out: &mut Vec<u8>, raw: &str) {
    // Validation already proved this is an object or null; anything else is replaced.
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

// === Decoding ===

const ROOT: Path<'static> = Path::Root;

fn request_from_object(top: &RawObject<'_>) -> Result<ChatRequest, DecodeError> {
    let model: String = json::required(top, "model", &ROOT, "a string")?;
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
    let messages = items
        .iter()
        .enumerate()
        .map(|(i, raw)| message(raw, &messages_path.index(i)))
        .collect::<Result<Vec<_>, _>>()?;

    let tools = match top.get_non_null("tools") {
        None => Vec::new(),
        Some(raw) => {
            let path = ROOT.key("tools");
            json::array(raw, &path)?
                .iter()
                .enumerate()
                .map(|(i, raw)| tool(raw, &path.index(i)))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let tool_choice = top
        .get_non_null("tool_choice")
        .map(tool_choice)
        .transpose()?;
    let response_format = top
        .get_non_null("response_format")
        .map(response_format)
        .transpose()?;

    let max_completion_tokens: Option<u32> = json::opt(
        top,
        "max_completion_tokens",
        &ROOT,
        "a non-negative integer",
    )?;
    let max_tokens: Option<u32> = json::opt(top, "max_tokens", &ROOT, "a non-negative integer")?;

    let stop = match top.get_non_null("stop") {
        None => Vec::new(),
        Some(raw) if raw.get().starts_with('"') => vec![json::string(raw, &ROOT.key("stop"))?],
        Some(raw) => json::typed(raw, &ROOT.key("stop"), "a string or an array of strings")?,
    };

    let stream: Option<bool> = json::opt(top, "stream", &ROOT, "a boolean")?;
    let include_usage = match top.get_non_null("stream_options") {
        None => false,
        Some(raw) => {
            let path = ROOT.key("stream_options");
            let opts = json::object(raw, &path)?;
            json::opt::<bool>(&opts, "include_usage", &path, "a boolean")?.unwrap_or(false)
        }
    };

    Ok(ChatRequest {
        model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: json::opt(top, "parallel_tool_calls", &ROOT, "a boolean")?,
        response_format,
        temperature: json::opt(top, "temperature", &ROOT, "a number")?,
        top_p: json::opt(top, "top_p", &ROOT, "a number")?,
        // The newer name wins: OpenAI's SDK sends it, and reasoning models reject the older.
        max_tokens: max_completion_tokens.or(max_tokens),
        stop,
        seed: json::opt(top, "seed", &ROOT, "an integer")?,
        n: json::opt(top, "n", &ROOT, "a positive integer")?,
        stream: stream.unwrap_or(false),
        include_usage,
        user: json::opt(top, "user", &ROOT, "a string")?,
    })
}

fn role(raw: &RawValue, path: &Path<'_>) -> Result<Role, DecodeError> {
    let name: Cow<'_, str> = json::typed(raw, path, "a string")?;
    Ok(match name.as_ref() {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(DecodeError::at(
                path,
                format!(
                "unknown role '{}' in {path}; supported: system, developer, user, assistant, tool",
                json::truncate(other, 40)
            ),
            ))
        }
    })
}

fn message(raw: &RawValue, path: &Path<'_>) -> Result<Message, DecodeError> {
    let obj = json::object(raw, path)?;
    let role_raw = obj.get_non_null("role").ok_or_else(|| {
        let p = path.key("role");
        DecodeError::at(p, format!("missing required parameter '{p}'"))
    })?;
    let role = role(role_raw, &path.key("role"))?;

    let content_path = path.key("content");
    let content = match obj.get_non_null("content") {
        None => None,
        Some(raw) => Some(content(raw, &content_path)?),
    };
    let tool_calls = match obj.get_non_null("tool_calls") {
        None => Vec::new(),
        Some(raw) => {
            let p = path.key("tool_calls");
            json::array(raw, &p)?
                .iter()
                .enumerate()
                .map(|(i, raw)| tool_call(raw, &p.index(i)))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let tool_call_id: Option<String> = json::opt(&obj, "tool_call_id", path, "a string")?;
    let name: Option<String> = json::opt(&obj, "name", path, "a string")?;

    let role_name = role_name(role);
    match role {
        Role::Assistant => {
            if content.as_ref().is_none_or(Vec::is_empty) && tool_calls.is_empty() {
                return Err(DecodeError::at(
                    content_path,
                    format!("{path} (role 'assistant') must have 'content' or 'tool_calls'"),
                ));
            }
        }
        _ => match &content {
            None => {
                return Err(DecodeError::at(
                    content_path,
                    format!("missing required parameter '{content_path}' (role '{role_name}')"),
                ))
            }
            Some(parts) if parts.is_empty() => {
                return Err(DecodeError::at(
                    content_path,
                    format!("'{content_path}' must not be an empty array"),
                ))
            }
            Some(_) => {}
        },
    }
    if role == Role::Tool && tool_call_id.is_none() {
        let p = path.key("tool_call_id");
        return Err(DecodeError::at(
            p,
            format!("missing required parameter '{p}' (role 'tool')"),
        ));
    }

    Ok(Message {
        role,
        content: content.unwrap_or_default(),
        tool_calls,
        tool_call_id,
        name,
        is_error: false,
    })
}

fn content(raw: &RawValue, path: &Path<'_>) -> Result<Vec<ContentPart>, DecodeError> {
    match raw.get().as_bytes().first() {
        Some(b'"') => Ok(vec![ContentPart::Text(json::string(raw, path)?)]),
        Some(b'[') => json::array(raw, path)?
            .iter()
            .enumerate()
            .map(|(i, raw)| content_part(raw, &path.index(i)))
            .collect(),
        _ => Err(DecodeError::at(
            path,
            format!(
                "invalid '{path}': expected a string or an array of content parts, got {}",
                json::describe(raw)
            ),
        )),
    }
}

fn content_part(raw: &RawValue, path: &Path<'_>) -> Result<ContentPart, DecodeError> {
    let obj = json::object(raw, path)?;
    let kind: Cow<'_, str> = json::required(&obj, "type", path, "a string")?;
    match kind.as_ref() {
        "text" => Ok(ContentPart::Text(json::required(
            &obj, "text", path, "a string",
        )?)),
        "image_url" => {
            let p = path.key("image_url");
            let raw = obj
                .get_non_null("image_url")
                .ok_or_else(|| DecodeError::at(p, format!("missing required parameter '{p}'")))?;
            // Older clients send the URL as a bare string.
            let (url, detail) = if raw.get().starts_with('"') {
                (json::string(raw, &p)?, None)
            } else {
                let img = json::object(raw, &p)?;
                (
                    json::required::<String>(&img, "url", &p, "a string")?,
                    json::opt::<String>(&img, "detail", &p, "a string")?,
                )
            };
            Ok(ContentPart::Image(Image {
                source: image_source(url),
                detail,
            }))
        }
        other => Err(DecodeError::at(
            path.key("type"),
            format!(
                "unsupported content part type '{}' in {path}; supported: text, image_url",
                json::truncate(other, 40)
            ),
        )),
    }
}

/// A `data:<media type>;base64,<data>` URL becomes inline data; anything else stays a URL.
fn image_source(url: String) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            if let Some(media_type) = meta.strip_suffix(";base64") {
                return ImageSource::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                };
            }
        }
    }
    ImageSource::Url(url)
}

fn tool_call(raw: &RawValue, path: &Path<'_>) -> Result<ToolCall, DecodeError> {
    let obj = json::object(raw, path)?;
    check_function_type(&obj, path, "tool call")?;
    let id: String = json::required(&obj, "id", path, "a string")?;
    let fpath = path.key("function");
    let fraw = obj
        .get_non_null("function")
        .ok_or_else(|| DecodeError::at(fpath, format!("missing required parameter '{fpath}'")))?;
    let f = json::object(fraw, &fpath)?;
    Ok(ToolCall {
        id,
        name: json::required(&f, "name", &fpath, "a string")?,
        arguments: json::opt::<String>(&f, "arguments", &fpath, "a JSON string")?
            .unwrap_or_default(),
    })
}

/// `type` must be `function` when present (OpenAI's SDK always sends it).
fn check_function_type(
    obj: &RawObject<'_>,
    path: &Path<'_>,
    what: &str,
) -> Result<(), DecodeError> {
    let kind: Option<Cow<'_, str>> = json::opt(obj, "type", path, "a string")?;
    match kind.as_deref() {
        None | Some("function") => Ok(()),
        Some(other) => Err(DecodeError::at(
            path.key("type"),
            format!(
                "unsupported {what} type '{}' in {path}; supported: function",
                json::truncate(other, 40)
            ),
        )),
    }
}

fn tool(raw: &RawValue, path: &Path<'_>) -> Result<Tool, DecodeError> {
    let obj = json::object(raw, path)?;
    check_function_type(&obj, path, "tool")?;
    let fpath = path.key("function");
    let fraw = obj
        .get_non_null("function")
        .ok_or_else(|| DecodeError::at(fpath, format!("missing required parameter '{fpath}'")))?;
    let f = json::object(fraw, &fpath)?;
    let parameters = match f.get_non_null("parameters") {
        None => Value::Null,
        Some(raw) => {
            let p = fpath.key("parameters");
            json::object(raw, &p)?;
            json::typed(raw, &p, "a JSON Schema object")?
        }
    };
    Ok(Tool {
        name: json::required(&f, "name", &fpath, "a string")?,
        description: json::opt(&f, "description", &fpath, "a string")?,
        parameters,
        strict: json::opt(&f, "strict", &fpath, "a boolean")?,
    })
}

fn tool_choice(raw: &RawValue) -> Result<ToolChoice, DecodeError> {
    let invalid = || {
        DecodeError::at(
            "tool_choice",
            format!(
                "invalid 'tool_choice': expected \"auto\", \"none\", \"required\" or \
                 {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, got {}",
                json::describe(raw)
            ),
        )
    };
    let path = ROOT.key("tool_choice");
    match raw.get().as_bytes().first() {
        Some(b'"') => match json::string(raw, &path)?.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(invalid()),
        },
        Some(b'{') => {
            let obj = json::object(raw, &path)?;
            let kind: Option<Cow<'_, str>> = json::opt(&obj, "type", &path, "a string")?;
            if kind.as_deref() != Some("function") {
                return Err(invalid());
            }
            let fpath = path.key("function");
            let f = obj.get_non_null("function").ok_or_else(|| {
                DecodeError::at(fpath, format!("missing required parameter '{fpath}'"))
            })?;
            let f = json::object(f, &fpath)?;
            Ok(ToolChoice::Function(json::required(
                &f, "name", &fpath, "a string",
            )?))
        }
        _ => Err(invalid()),
    }
}

fn response_format(raw: &RawValue) -> Result<ResponseFormat, DecodeError> {
    let path = ROOT.key("response_format");
    let obj = json::object(raw, &path)?;
    let kind: Cow<'_, str> = json::required(&obj, "type", &path, "a string")?;
    match kind.as_ref() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let spath = path.key("json_schema");
            let s = obj.get_non_null("json_schema").ok_or_else(|| {
                DecodeError::at(spath, format!("missing required parameter '{spath}'"))
            })?;
            let s = json::object(s, &spath)?;
            Ok(ResponseFormat::JsonSchema {
                name: json::required(&s, "name", &spath, "a string")?,
                schema: json::opt(&s, "schema", &spath, "a JSON Schema object")?
                    .unwrap_or(Value::Null),
                strict: json::opt(&s, "strict", &spath, "a boolean")?,
            })
        }
        other => Err(DecodeError::at(
            path.key("type"),
            format!(
                "invalid 'response_format.type': '{}'; supported: text, json_object, json_schema",
                json::truncate(other, 40)
            ),
        )),
    }
}

// === Encoding ===

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Canonical → OpenAI request body for `upstream_model`.
///
/// Always writes `max_completion_tokens` (not the deprecated `max_tokens`), and when streaming,
/// `stream_options: {"include_usage": true}`, because the gateway needs usage for every request.
/// A request continuing its trailing assistant message, with the extension vLLM and SGLang
/// understand (`continue_final_message`, no new generation prompt): OpenAI's own API has no
/// prefill, so only servers that take these are configured to get continuations.
pub fn encode_continuation(req: &ChatRequest, upstream_model: &str) -> Vec<u8> {
    let body = encode_request(req, upstream_model);
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body) {
        Ok(mut map) => {
            map.insert("continue_final_message".into(), true.into());
            map.insert("add_generation_prompt".into(), false.into());
            serde_json::to_vec(&map).unwrap_or(body)
        }
        Err(_) => body,
    }
}

pub fn encode_request(req: &ChatRequest, upstream_model: &str) -> Vec<u8> {
    let body = RequestOut {
        model: upstream_model,
        messages: req.messages.iter().map(message_out).collect(),
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                kind: "function",
                function: FunctionDefOut {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: &t.parameters,
                    strict: t.strict,
                },
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().map(tool_choice_out),
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: req.response_format.as_ref().map(response_format_out),
        temperature: req.temperature,
        top_p: req.top_p,
        max_completion_tokens: req.max_tokens,
        stop: &req.stop,
        seed: req.seed,
        n: req.n,
        stream: req.stream,
        stream_options: req.stream.then_some(StreamOptionsOut {
            include_usage: true,
        }),
        user: req.user.as_deref(),
    };
    let mut out = Vec::with_capacity(256);
    json::write_json(&mut out, &body);
    out
}

fn message_out(m: &Message) -> MessageOut<'_> {
    let content = match m.content.as_slice() {
        [] if m.role == Role::Assistant => None,
        [] => Some(ContentOut::Text("")),
        // A lone text part is sent as a plain string, the form every OpenAI-compatible server
        // accepts (some reject part arrays for system or tool messages).
        [ContentPart::Text(t)] => Some(ContentOut::Text(t)),
        parts => Some(ContentOut::Parts(parts.iter().map(part_out).collect())),
    };
    MessageOut {
        role: role_name(m.role),
        content,
        name: m.name.as_deref(),
        tool_calls: m.tool_calls.iter().map(tool_call_out).collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

fn part_out(p: &ContentPart) -> PartOut<'_> {
    match p {
        ContentPart::Text(text) => PartOut::Text { text },
        ContentPart::Image(img) => PartOut::ImageUrl {
            image_url: ImageUrlOut {
                url: match &img.source {
                    ImageSource::Url(u) => Cow::Borrowed(u.as_str()),
                    ImageSource::Base64 { media_type, data } => {
                        Cow::Owned(format!("data:{media_type};base64,{data}"))
                    }
                },
                detail: img.detail.as_deref(),
            },
        },
    }
}

pub(super) fn tool_call_out(c: &ToolCall) -> ToolCallOut<'_> {
    ToolCallOut {
        id: &c.id,
        kind: "function",
        function: FunctionCallOut {
            name: &c.name,
            arguments: &c.arguments,
        },
    }
}

fn tool_choice_out(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => Value::from("auto"),
        ToolChoice::None => Value::from("none"),
        ToolChoice::Required => Value::from("required"),
        ToolChoice::Function(name) => {
            serde_json::json!({"type": "function", "function": {"name": name}})
        }
    }
}

fn response_format_out(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => serde_json::json!({"type": "text"}),
        ResponseFormat::JsonObject => serde_json::json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut s = serde_json::Map::new();
            s.insert("name".into(), Value::from(name.as_str()));
            if !schema.is_null() {
                s.insert("schema".into(), schema.clone());
            }
            if let Some(strict) = strict {
                s.insert("strict".into(), Value::from(*strict));
            }
            serde_json::json!({"type": "json_schema", "json_schema": s})
        }
    }
}
