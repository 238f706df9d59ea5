//! `generateContent` responses → canonical; shared by the stream decoder, since every
//! streamed chunk is a whole (partial) response.

use super::error::ErrorIn;
use crate::canonical::{ChatResponse, FinishReason, ToolCall};
use crate::json;
use crate::DecodeError;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_types::TokenUsage;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResponseIn<'a> {
    #[serde(default, borrow)]
    pub candidates: Option<Vec<CandidateIn<'a>>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageIn>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedbackIn>,
    /// Set on an error event inside a stream.
    #[serde(default)]
    pub error: Option<ErrorIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CandidateIn<'a> {
    #[serde(default, borrow)]
    pub content: Option<ContentIn<'a>>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Deserialize)]
pub(super) struct ContentIn<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<PartIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PartIn<'a> {
    #[serde(default)]
    pub text: Option<String>,
    /// A thought summary, not answer text.
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, borrow)]
    pub function_call: Option<FunctionCallIn<'a>>,
}

#[derive(Deserialize)]
pub(super) struct FunctionCallIn<'a> {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, borrow)]
    pub args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedbackIn {
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// `usageMetadata`. `promptTokenCount` includes cached tokens; `candidatesTokenCount`
/// excludes thinking tokens, which `thoughtsTokenCount` counts.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageIn {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<u64>,
}

impl UsageIn {
    pub(super) fn to_usage(self) -> TokenUsage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        TokenUsage {
            input: self.prompt_token_count.unwrap_or(0)
                + self.tool_use_prompt_token_count.unwrap_or(0),
            output: self.candidates_token_count.unwrap_or(0) + thoughts,
            cached_input: self.cached_content_token_count.unwrap_or(0),
            cache_write: 0,
            reasoning: thoughts,
        }
    }
}

/// Gemini's `finishReason` → canonical. Safety, recitation, blocklist and other policy stops
/// are `ContentFilter`; `STOP` after function calls is `ToolCalls` (Gemini has no separate
/// reason); unknown reasons count as a natural stop.
pub(super) fn finish_reason_from_wire(s: &str, called_tools: bool) -> FinishReason {
    match s {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "PROHIBITED_CONTENT"
        | "BLOCKLIST"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The id given to the `n`-th function call of an answer when Gemini sends none:
/// `call_<n>`, deterministic so streamed and non-streamed answers agree.
pub(super) fn call_id(given: Option<String>, n: usize) -> String {
    given
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{n}"))
}

/// The pieces of candidate 0 of one response or chunk.
pub(super) struct Pieces {
    pub text: Option<String>,
    /// `(id if given, name, compact args)`.
    pub calls: Vec<(Option<String>, String, String)>,
    pub finish: Option<String>,
}

/// Candidate 0's answer text (thought summaries skipped), function calls and finish reason.
pub(super) fn pieces(candidates: Option<Vec<CandidateIn<'_>>>) -> Pieces {
    let mut out = Pieces {
        text: None,
        calls: Vec::new(),
        finish: None,
    };
    let Some(c) = candidates
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.index.unwrap_or(0) == 0)
    else {
        return out;
    };
    out.finish = c.finish_reason;
    for part in c.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(f) = part.function_call {
            out.calls.push((
                f.id,
                f.name.unwrap_or_default(),
                json::arguments_text(f.args),
            ));
        } else if let Some(t) = part.text.filter(|_| part.thought != Some(true)) {
            out.text.get_or_insert_with(String::new).push_str(&t);
        }
    }
    out
}

/// `generateContent` body → canonical, from candidate 0.
///
/// Function calls get the id Gemini sent or `call_<n>` (see [`call_id`]) and the compact JSON
/// text of `args`. A prompt blocked before any candidate (`promptFeedback.blockReason`) is
/// an empty answer with `ContentFilter`. `created` is 0 (Gemini sends no timestamp).
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DecodeError::new("invalid upstream Gemini response: not UTF-8"))?;
    let wire: ResponseIn<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("invalid upstream Gemini response: {e}")))?;
    let blocked = wire
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    let p = pieces(wire.candidates);
    let called = !p.calls.is_empty();
    let finish_reason = match p.finish.as_deref() {
        Some(r) => finish_reason_from_wire(r, called),
        None if blocked => FinishReason::ContentFilter,
        None => finish_reason_from_wire("STOP", called),
    };
    Ok(ChatResponse {
        id: wire.response_id.unwrap_or_default(),
        model: wire.model_version.unwrap_or_default(),
        created: 0,
        content: p.text,
        tool_calls: p
            .calls
            .into_iter()
            .enumerate()
            .map(|(n, (id, name, arguments))| ToolCall {
                id: call_id(id, n),
                name,
                arguments,
            })
            .collect(),
        finish_reason,
        stop_sequence: None,
        usage: wire
            .usage_metadata
            .map(UsageIn::to_usage)
            .unwrap_or_default(),
    })
}
