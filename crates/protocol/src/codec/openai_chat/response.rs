//! Non-streamed chat responses: upstream body → canonical, canonical → client body.

use super::request::tool_call_out;
use super::wire::{
    finish_reason_from_wire, finish_reason_to_wire, ChoiceOut, ResponseIn, ResponseMessageOut,
    ResponseOut, UsageOnlyIn, UsageOut,
};
use crate::canonical::{ChatResponse, FinishReason, ToolCall};
use crate::json;
use crate::DecodeError;
use switchyard_types::TokenUsage;

/// Upstream non-streamed body → canonical.
///
/// Tolerates Azure's extra members, `content: null`, and missing usage or usage details (they
/// count as zero). With several choices, the one with index 0 is used. A `refusal` with no
/// content becomes the content, since the canonical response has no separate refusal. A
/// missing `finish_reason` counts as `stop`.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let wire: ResponseIn = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("invalid upstream chat response: {e}")))?;
    let mut choices = wire.choices.unwrap_or_default();
    let pick = choices
        .iter()
        .position(|c| c.index.unwrap_or(0) == 0)
        .ok_or_else(|| DecodeError::at("choices", "upstream chat response has no choices"))?;
    let choice = choices.swap_remove(pick);
    let (content, tool_calls) = match choice.message {
        None => (None, Vec::new()),
        Some(m) => {
            let tool_calls = m
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let f = c.function.unwrap_or(super::wire::FunctionCallIn {
                        name: None,
                        arguments: None,
                    });
                    ToolCall {
                        id: c.id.unwrap_or_else(|| format!("call_{i}")),
                        name: f.name.unwrap_or_default(),
                        arguments: f.arguments.unwrap_or_default(),
                    }
                })
                .collect();
            (m.content.or(m.refusal), tool_calls)
        }
    };
    Ok(ChatResponse {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        created: wire.created.unwrap_or(0),
        content,
        tool_calls,
        finish_reason: choice
            .finish_reason
            .as_deref()
            .map_or(FinishReason::Stop, finish_reason_from_wire),
        stop_sequence: None,
        usage: wire.usage.map(|u| u.to_usage()).unwrap_or_default(),
    })
}

/// Canonical → OpenAI `chat.completion` JSON, with every member the SDK models (usage details,
/// `refusal: null`, `annotations: []`, `logprobs: null`, `system_fingerprint` and
/// `service_tier` as `null`).
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let body = ResponseOut {
        id: &resp.id,
        object: "chat.completion",
        created: resp.created,
        model: &resp.model,
        choices: [ChoiceOut {
            index: 0,
            message: ResponseMessageOut {
                role: "assistant",
                content: resp.content.as_deref(),
                refusal: None,
                annotations: [],
                tool_calls: resp.tool_calls.iter().map(tool_call_out).collect(),
            },
            logprobs: None,
            finish_reason: finish_reason_to_wire(resp.finish_reason),
        }],
        usage: UsageOut::from_usage(&resp.usage),
        system_fingerprint: None,
        service_tier: None,
    };
    let mut out = Vec::with_capacity(256 + resp.content.as_ref().map_or(0, String::len));
    json::write_json(&mut out, &body);
    out
}

/// The usage of a non-streamed body, reading nothing else; `None` if absent or unparsable.
pub fn usage_from_response(body: &[u8]) -> Option<TokenUsage> {
    serde_json::from_slice::<UsageOnlyIn>(body)
        .ok()?
        .usage
        .map(|u| u.to_usage())
}
