//! Serde structs for the Anthropic Messages wire format.
//!
//! Outgoing structs borrow from canonical values; incoming structs name only the members the
//! gateway reads, so unknown members (`service_tier`, `citations`, `cache_control`) are skipped.

use crate::canonical::FinishReason;
use crate::json::ArgsObject;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use switchyard_types::TokenUsage;

// === Outgoing: request ===

/// A Messages request body.
#[derive(Serialize)]
pub(super) struct RequestOut<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<BlockOut<'a>>,
    pub messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfigOut<'a>>,
}

/// `output_config`: native structured outputs (`format: {type: json_schema, schema}`).
#[derive(Serialize)]
pub(super) struct OutputConfigOut<'a> {
    pub format: OutputFormatOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutputFormatOut<'a> {
    JsonSchema { schema: &'a Value },
}

#[derive(Serialize)]
pub(super) struct MetadataOut<'a> {
    pub user_id: &'a str,
}

#[derive(Serialize)]
pub(super) struct MessageOut<'a> {
    pub role: &'static str,
    pub content: Vec<BlockOut<'a>>,
}

/// A content block in requests and responses.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSourceOut<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: ArgsObject<'a>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<BlockOut<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ImageSourceOut<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
pub(super) struct ToolOut<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: &'a Value,
    /// Strict tool use (schema-validated inputs), on models with structured outputs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ToolChoiceOut<'a> {
    Auto {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
}

// === Outgoing: response and stream ===

#[derive(Serialize)]
pub(super) struct ResponseOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<BlockOut<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: UsageOut,
}

/// Anthropic usage: `input_tokens` excludes cache reads and writes, which have their own
/// members (the canonical `input` includes them).
#[derive(Serialize, Clone, Copy)]
pub(super) struct UsageOut {
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
}

impl UsageOut {
    pub(super) fn from_usage(u: &TokenUsage) -> Self {
        UsageOut {
            input_tokens: u.input.saturating_sub(u.cached_input + u.cache_write),
            cache_creation_input_tokens: u.cache_write,
            cache_read_input_tokens: u.cached_input,
            output_tokens: u.output,
        }
    }
}

#[derive(Serialize)]
pub(super) struct ErrorEnvelopeOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: ErrorOut<'a>,
}

#[derive(Serialize)]
pub(super) struct ErrorOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: &'a str,
}

// === Incoming (upstream) ===

#[derive(Deserialize)]
pub(super) struct ResponseIn<'a> {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, borrow)]
    pub content: Option<Vec<BlockIn<'a>>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
}

/// Any content block; which members matter depends on `type`.
#[derive(Deserialize)]
pub(super) struct BlockIn<'a> {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
}

/// Usage members; in a stream each present member replaces the value seen so far.
#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct UsageIn {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl UsageIn {
    /// Overwrites the members `newer` has (stream usage is cumulative, never additive).
    pub(super) fn update(&mut self, newer: &UsageIn) {
        let pick = |old: Option<u64>, new: Option<u64>| new.or(old);
        self.input_tokens = pick(self.input_tokens, newer.input_tokens);
        self.output_tokens = pick(self.output_tokens, newer.output_tokens);
        self.cache_creation_input_tokens = pick(
            self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        self.cache_read_input_tokens =
            pick(self.cache_read_input_tokens, newer.cache_read_input_tokens);
    }

    pub(super) fn to_usage(self) -> TokenUsage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        TokenUsage {
            input: self.input_tokens.unwrap_or(0) + read + write,
            output: self.output_tokens.unwrap_or(0),
            cached_input: read,
            cache_write: write,
            reasoning: 0,
        }
    }
}

/// One SSE `data` object of an upstream stream; members by event type.
#[derive(Deserialize)]
pub(super) struct EventIn<'a> {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<MessageStartIn>,
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default, borrow)]
    pub content_block: Option<BlockIn<'a>>,
    #[serde(default)]
    pub delta: Option<DeltaIn>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
    #[serde(default)]
    pub error: Option<ErrorIn>,
}

#[derive(Deserialize)]
pub(super) struct MessageStartIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
}

#[derive(Deserialize)]
pub(super) struct DeltaIn {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub partial_json: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// `{"type": "error", "error": {"type", "message"}}`, as a body or a stream event.
#[derive(Deserialize)]
pub(super) struct ErrorEnvelopeIn {
    #[serde(default)]
    pub error: Option<ErrorIn>,
}

#[derive(Deserialize)]
pub(super) struct ErrorIn {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

// === Finish reasons ===

/// Anthropic's `stop_reason` → canonical. `pause_turn` (a server tool paused) counts as a
/// natural stop; `model_context_window_exceeded` as the length limit; unknown values as stop.
pub(super) fn finish_reason_from_wire(s: &str) -> FinishReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Canonical → Anthropic's `stop_reason`; `stop_sequence` when the matched sequence is known.
pub(super) fn finish_reason_to_wire(r: FinishReason, stop_sequence: bool) -> &'static str {
    match r {
        FinishReason::Stop if stop_sequence => "stop_sequence",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}
