//! Converse responses and Bedrock HTTP errors.

use crate::canonical::{ChatResponse, FinishReason, ToolCall};
use crate::error::{body_excerpt, kind_for_status};
use crate::json;
use crate::{DecodeError, UpstreamError};
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_types::{ErrorKind, TokenUsage};

#[derive(Deserialize)]
struct ResponseIn<'a> {
    #[serde(default, borrow)]
    output: Option<OutputIn<'a>>,
    #[serde(default, rename = "stopReason")]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct OutputIn<'a> {
    #[serde(default, borrow)]
    message: Option<MessageIn<'a>>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    content: Vec<BlockIn<'a>>,
}

#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, rename = "toolUse", borrow)]
    tool_use: Option<ToolUseIn<'a>>,
}

#[derive(Deserialize)]
struct ToolUseIn<'a> {
    #[serde(default, rename = "toolUseId")]
    tool_use_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

/// Converse usage. `inputTokens` excludes cache reads and writes, which have their own
/// members (as in Anthropic's API); the canonical `input` includes them.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageIn {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

impl UsageIn {
    pub(super) fn to_usage(self) -> TokenUsage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_write_input_tokens.unwrap_or(0);
        TokenUsage {
            input: self.input_tokens.unwrap_or(0) + read + write,
            output: self.output_tokens.unwrap_or(0),
            cached_input: read,
            cache_write: write,
            reasoning: 0,
        }
    }
}

/// Converse `stopReason` → canonical; unknown reasons count as a natural stop.
pub(super) fn finish_reason_from_wire(s: &str) -> FinishReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Converse body → canonical. Text blocks are joined; `toolUse` blocks become tool calls with
/// the compact JSON text of `input`; other blocks (`reasoningContent`, ...) are skipped.
/// Converse names neither the response nor the model in the body and has no timestamp, so
/// `id` and `model` are empty and `created` is 0: the caller fills them in (the request id
/// header, the deployment's model, the clock).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DecodeError::new("invalid upstream Converse response: not UTF-8"))?;
    let wire: ResponseIn<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("invalid upstream Converse response: {e}")))?;
    let blocks = wire
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let mut content: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.text {
            content.get_or_insert_with(String::new).push_str(&t);
        } else if let Some(u) = block.tool_use {
            tool_calls.push(ToolCall {
                id: u
                    .tool_use_id
                    .unwrap_or_else(|| format!("tooluse_{}", tool_calls.len())),
                name: u.name.unwrap_or_default(),
                arguments: json::arguments_text(u.input),
            });
        }
    }
    Ok(ChatResponse {
        id: String::new(),
        model: String::new(),
        created: 0,
        content,
        tool_calls,
        finish_reason: wire
            .stop_reason
            .as_deref()
            .map_or(FinishReason::Stop, finish_reason_from_wire),
        stop_sequence: None,
        usage: wire.usage.unwrap_or_default().to_usage(),
    })
}

/// The kind a Bedrock error name gives (HTTP `x-amzn-ErrorType` names and the camelCase
/// stream exception names alike), if the gateway knows it.
pub(super) fn kind_for_name(name: &str) -> Option<ErrorKind> {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    Some(
        if is("ThrottlingException") || is("ServiceQuotaExceededException") {
            ErrorKind::RateLimited
        } else if is("ServiceUnavailableException") || is("ModelNotReadyException") {
            ErrorKind::Overloaded
        } else if is("InternalServerException")
            || is("ModelErrorException")
            || is("ModelStreamErrorException")
        {
            ErrorKind::UpstreamServer
        } else if is("ModelTimeoutException") {
            ErrorKind::UpstreamTimeout
        } else if is("ValidationException") {
            ErrorKind::InvalidRequest
        } else if is("AccessDeniedException")
            || is("UnrecognizedClientException")
            || is("InvalidSignatureException")
            || is("IncompleteSignatureException")
            || is("MissingAuthenticationTokenException")
            || is("ExpiredTokenException")
            || is("ResourceNotFoundException")
        {
            // The gateway's credentials, signature or model id: not the client's to fix.
            ErrorKind::UpstreamRejected
        } else {
            return None;
        },
    )
}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(default, alias = "Message")]
    message: Option<String>,
    /// Some AWS front ends put the error name in the body.
    #[serde(default, rename = "__type")]
    kind: Option<String>,
}

/// Whether a ValidationException's message says the input exceeds the context window.
fn input_too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "input is too long",
        "too many input tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Bedrock HTTP error → kind and message. Never fails.
///
/// `error_type` is the `x-amzn-ErrorType` header (`Name:namespace`; everything from the first
/// `:` is dropped, as botocore does). The name decides: ThrottlingException and
/// ServiceQuotaExceededException → `RateLimited`; ServiceUnavailableException and
/// ModelNotReadyException → `Overloaded`; InternalServerException, ModelErrorException →
/// `UpstreamServer`; ModelTimeoutException → `UpstreamTimeout`; ValidationException →
/// `InvalidRequest`; AccessDenied, UnrecognizedClient, signature and token exceptions,
/// ResourceNotFoundException → `UpstreamRejected`. Unknown names fall back to the status.
/// A ValidationException about the input's length ("Input is too long for requested model",
/// "too many input tokens", Claude's "prompt is too long") is `ContextLengthExceeded`.
pub fn decode_error(status: u16, error_type: Option<&str>, body: &[u8]) -> UpstreamError {
    let parsed = serde_json::from_slice::<ErrorIn>(body).ok();
    let (message, body_type) = match parsed {
        Some(e) => (e.message, e.kind),
        None => (None, None),
    };
    let name = error_type
        .or(body_type.as_deref())
        .map(|n| n.split(':').next().unwrap_or_default().trim())
        // `__type` may be namespaced with `#` (`com.amazon...#ValidationException`).
        .map(|n| n.rsplit('#').next().unwrap_or_default())
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_excerpt(status, body));
    let mut kind = name
        .as_deref()
        .and_then(kind_for_name)
        .unwrap_or_else(|| kind_for_status(status));
    if kind == ErrorKind::InvalidRequest && input_too_long(&message) {
        kind = ErrorKind::ContextLengthExceeded;
    }
    UpstreamError {
        kind,
        message,
        code: name,
        retry_after: None,
    }
}
