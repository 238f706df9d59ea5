//! Non-streamed Messages responses: canonical → client body, upstream body → canonical, and
//! the `count_tokens` answer.

use super::wire::{
    finish_reason_from_wire, finish_reason_to_wire, BlockOut, ResponseIn, ResponseOut, UsageOut,
};
use crate::canonical::{ChatResponse, FinishReason, ToolCall};
use crate::json;
use crate::DecodeError;

/// Canonical → Anthropic `message` JSON: a text block (when there is text), then one
/// `tool_use` block per call whose `input` is the parsed arguments (arguments that are not a
/// JSON object become `{}`, and the answer is still sent). The id gets a `msg_` prefix if it
/// lacks one, since SDKs and logs expect it.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let id = message_id(&resp.id);
    let mut content = Vec::with_capacity(1 + resp.tool_calls.len());
    if let Some(text) = resp.content.as_deref().filter(|t| !t.is_empty()) {
        content.push(BlockOut::Text { text });
    }
    content.extend(resp.tool_calls.iter().map(|c| BlockOut::ToolUse {
        id: &c.id,
        name: &c.name,
        input: json::arguments_object(&c.arguments),
    }));
    let stop_sequence = resp
        .stop_sequence
        .as_deref()
        .filter(|_| resp.finish_reason == FinishReason::Stop);
    let body = ResponseOut {
        id: &id,
        kind: "message",
        role: "assistant",
        model: &resp.model,
        content,
        stop_reason: Some(finish_reason_to_wire(
            resp.finish_reason,
            stop_sequence.is_some(),
        )),
        stop_sequence,
        usage: UsageOut::from_usage(&resp.usage),
    };
    let mut out = Vec::with_capacity(256 + resp.content.as_ref().map_or(0, String::len));
    json::write_json(&mut out, &body);
    out
}

/// `id` as a Messages id: unchanged if it starts with `msg_`, else prefixed.
pub(super) fn message_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.starts_with("msg_") {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(format!("msg_{id}"))
    }
}

/// Upstream `message` body → canonical. Text blocks are joined; `tool_use` blocks become tool
/// calls with the compact JSON text of `input`; other blocks (`thinking`, server tool blocks)
/// are skipped. Anthropic has no `created`, so it is 0 (the caller stamps the time).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DecodeError::new("invalid upstream Anthropic response: not UTF-8"))?;
    let wire: ResponseIn<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("invalid upstream Anthropic response: {e}")))?;
    let mut content: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in wire.content.unwrap_or_default() {
        match block.kind.as_deref() {
            Some("text") => content
                .get_or_insert_with(String::new)
                .push_str(block.text.as_deref().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block
                    .id
                    .unwrap_or_else(|| format!("toolu_{}", tool_calls.len())),
                name: block.name.unwrap_or_default(),
                arguments: json::arguments_text(block.input),
            }),
            _ => {}
        }
    }
    let finish_reason = wire
        .stop_reason
        .as_deref()
        .map_or(FinishReason::Stop, finish_reason_from_wire);
    Ok(ChatResponse {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        created: 0,
        content,
        tool_calls,
        finish_reason,
        stop_sequence: wire
            .stop_sequence
            .filter(|_| finish_reason == FinishReason::Stop),
        usage: wire.usage.unwrap_or_default().to_usage(),
    })
}

/// The `count_tokens` answer: `{"input_tokens": n}`.
pub fn encode_count_tokens_response(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}
