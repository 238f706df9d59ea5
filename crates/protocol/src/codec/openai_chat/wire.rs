//! Serde structs for the OpenAI wire format.
//!
//! Outgoing structs borrow from canonical values so encoding allocates only the output buffer.
//! Incoming structs name only the fields the gateway reads; serde skips the rest, which is what
//! makes Azure's `content_filter_results` and OpenAI's `obfuscation` padding harmless.

use crate::canonical::FinishReason;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_types::TokenUsage;

// === Outgoing: request ===

/// A chat request body.
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    pub model: &'a str,
    pub messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptionsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct StreamOptionsOut {
    pub include_usage: bool,
}

#[derive(Serialize)]
pub(super) struct MessageOut<'a> {
    pub role: &'static str,
    /// `None` writes `null` (an assistant turn with only tool calls).
    pub content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ContentOut<'a> {
    Text(&'a str),
    Parts(Vec<PartOut<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum PartOut<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrlOut<'a> },
}

#[derive(Serialize)]
pub(super) struct ImageUrlOut<'a> {
    pub url: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct ToolOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDefOut<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionDefOut<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A complete tool call, in requests and non-streamed responses.
#[derive(Serialize)]
pub(super) struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionCallOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

// === Outgoing: response ===

#[derive(Serialize)]
pub(super) struct ResponseOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [ChoiceOut<'a>; 1],
    pub usage: UsageOut,
    pub system_fingerprint: Option<&'a str>,
    pub service_tier: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct ChoiceOut<'a> {
    pub index: u32,
    pub message: ResponseMessageOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub(super) struct ResponseMessageOut<'a> {
    pub role: &'static str,
    pub content: Option<&'a str>,
    pub refusal: Option<&'a str>,
    pub annotations: [(); 0],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
}

/// OpenAI's usage object with every detail member it documents.
#[derive(Serialize)]
pub(super) struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetailsOut,
    pub completion_tokens_details: CompletionDetailsOut,
}

#[derive(Serialize)]
pub(super) struct PromptDetailsOut {
    pub cached_tokens: u64,
    pub audio_tokens: u64,
}

#[derive(Serialize)]
pub(super) struct CompletionDetailsOut {
    pub reasoning_tokens: u64,
    pub audio_tokens: u64,
    pub accepted_prediction_tokens: u64,
    pub rejected_prediction_tokens: u64,
}

impl UsageOut {
    pub(super) fn from_usage(u: &TokenUsage) -> Self {
        UsageOut {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.total(),
            prompt_tokens_details: PromptDetailsOut {
                cached_tokens: u.cached_input,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetailsOut {
                reasoning_tokens: u.reasoning,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

// === Outgoing: stream ===

#[derive(Serialize)]
pub(super) struct ChunkOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: Option<&'a str>,
    pub choices: &'a [ChunkChoiceOut<'a>],
    /// Absent without `include_usage`; `null` on ordinary chunks with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageOut>>,
}

#[derive(Serialize)]
pub(super) struct ChunkChoiceOut<'a> {
    pub index: u32,
    pub delta: DeltaOut<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
pub(super) struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Absent, `null` (`Some(None)`) or text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Serialize)]
pub(super) struct ToolCallDeltaOut<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDeltaOut<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

// === Outgoing: errors ===

#[derive(Serialize)]
pub(super) struct ErrorEnvelopeOut<'a> {
    pub error: ErrorOut<'a>,
}

#[derive(Serialize)]
pub(super) struct ErrorOut<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

// === Incoming ===

/// A non-streamed upstream response; only what the canonical response needs.
#[derive(Deserialize)]
pub(super) struct ResponseIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
}

#[derive(Deserialize)]
pub(super) struct ChoiceIn {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub message: Option<ResponseMessageIn>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ResponseMessageIn {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallIn>>,
}

#[derive(Deserialize)]
pub(super) struct ToolCallIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCallIn>,
}

#[derive(Deserialize)]
pub(super) struct FunctionCallIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// OpenAI usage; every member optional because OpenAI-compatible servers vary.
#[derive(Deserialize, Default)]
pub(super) struct UsageIn {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetailsIn>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetailsIn>,
}

#[derive(Deserialize)]
pub(super) struct PromptDetailsIn {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct CompletionDetailsIn {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl UsageIn {
    pub(super) fn to_usage(&self) -> TokenUsage {
        TokenUsage {
            input: self.prompt_tokens.unwrap_or(0),
            output: self.completion_tokens.unwrap_or(0),
            cached_input: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write: 0,
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// Only the `usage` member of a body.
#[derive(Deserialize)]
pub(super) struct UsageOnlyIn {
    #[serde(default)]
    pub usage: Option<UsageIn>,
}

/// One streamed chunk (or an `{"error": ...}` event).
#[derive(Deserialize)]
pub(super) struct ChunkIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub choices: Option<Vec<ChunkChoiceIn>>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
    #[serde(default, deserialize_with = "error_field")]
    pub error: Option<ErrorIn>,
}

#[derive(Deserialize)]
pub(super) struct ChunkChoiceIn {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub delta: Option<DeltaIn>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DeltaIn {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDeltaIn>>,
}

#[derive(Deserialize)]
pub(super) struct ToolCallDeltaIn {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCallIn>,
}

/// What `inspect_chunk` reads: the same members as [`ChunkIn`] minus the deltas, so the
/// pass-through path never allocates the text it forwards.
#[derive(Deserialize)]
pub(super) struct ChunkProbeIn<'a> {
    #[serde(default, borrow)]
    pub object: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub choices: Option<Vec<ChoiceProbeIn<'a>>>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
    #[serde(default, deserialize_with = "error_field")]
    pub error: Option<ErrorIn>,
}

#[derive(Deserialize)]
pub(super) struct ChoiceProbeIn<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub finish_reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub delta: Option<DeltaProbeIn<'a>>,
}

/// A delta's text (borrowed unless it has escapes) and whether it calls a tool.
#[derive(Deserialize)]
pub(super) struct DeltaProbeIn<'a> {
    #[serde(default, borrow)]
    pub content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub tool_calls: Option<serde::de::IgnoredAny>,
}

/// `{"error": {...}}` in OpenAI, Azure and vLLM flavours.
#[derive(Deserialize)]
pub(super) struct ErrorEnvelopeIn {
    #[serde(default, deserialize_with = "error_field")]
    pub error: Option<ErrorIn>,
    /// vLLM and some proxies put the message at the top level.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
}

/// `error` as an object, or as a bare string (Ollama and some proxies send `{"error": "..."}`).
fn error_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorIn>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorField {
        Object(ErrorIn),
        Text(String),
    }
    Ok(match Option::<ErrorField>::deserialize(d)? {
        None => None,
        Some(ErrorField::Object(e)) => Some(e),
        Some(ErrorField::Text(message)) => Some(ErrorIn {
            message: Some(message),
            kind: None,
            code: None,
        }),
    })
}

#[derive(Deserialize)]
pub(super) struct ErrorIn {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// A string in OpenAI, often the status as a string in Azure, a number in some servers.
    #[serde(default)]
    pub code: Option<Value>,
}

impl ErrorIn {
    pub(super) fn code_string(&self) -> Option<String> {
        code_to_string(self.code.as_ref())
    }
}

pub(super) fn code_to_string(code: Option<&Value>) -> Option<String> {
    match code? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Maps OpenAI's finish reasons (and a few compatible servers' extras) to the canonical one.
/// Unknown reasons count as a natural stop: the answer is complete as far as we can tell.
pub(super) fn finish_reason_from_wire(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The wire name of a canonical finish reason.
pub(super) fn finish_reason_to_wire(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}
