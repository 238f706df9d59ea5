//! The canonical request, response and stream-event types: the hub every codec translates to
//! and from. They carry everything the supported protocols carry; a codec that cannot express
//! a field says so with an error rather than dropping it silently.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_types::TokenUsage;

/// One chat request, independent of the protocol it arrived in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The logical model name the client asked for.
    pub model: String,
    /// The conversation, system and developer instructions included, in order.
    pub messages: Vec<Message>,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// How the model should choose among `tools`.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may emit several tool calls in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// The required shape of the answer.
    pub response_format: Option<ResponseFormat>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    pub seed: Option<i64>,
    /// Number of choices; only 1 is portable.
    pub n: Option<u32>,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// Whether the client wants usage at the end of a stream.
    pub include_usage: bool,
    /// The caller's end-user identifier, if given.
    pub user: Option<String>,
}

impl ChatRequest {
    /// A rough input-token count before any upstream has counted: four bytes of text per
    /// token plus four per message (role and framing). Used for budget reservations and for
    /// metering a stream that broke before the upstream reported usage.
    pub fn estimate_input_tokens(&self) -> u64 {
        let mut bytes = 0usize;
        for m in &self.messages {
            for part in &m.content {
                if let ContentPart::Text(t) = part {
                    bytes += t.len();
                }
            }
            for call in &m.tool_calls {
                bytes += call.name.len() + call.arguments.len();
            }
        }
        for tool in &self.tools {
            bytes += tool.name.len()
                + tool.description.as_ref().map_or(0, String::len)
                + tool.parameters.to_string().len();
        }
        (bytes as u64).div_ceil(4) + 4 * self.messages.len() as u64
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator instructions.
    System,
    /// OpenAI's newer name for operator instructions (kept distinct for faithful passthrough).
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text and images, in order. Empty for an assistant turn that only calls tools.
    pub content: Vec<ContentPart>,
    /// Tool calls made by an assistant turn.
    pub tool_calls: Vec<ToolCall>,
    /// For a `Tool` message: the id of the call this answers.
    pub tool_call_id: Option<String>,
    /// An optional participant name.
    pub name: Option<String>,
    /// For a `Tool` message: the tool reported a failure (Anthropic `is_error`, Bedrock
    /// `status: "error"`, Gemini's `error` response member). OpenAI cannot say it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl Message {
    /// A message with only text content.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: vec![ContentPart::Text(text.into())],
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            is_error: false,
        }
    }

    /// All text parts joined, for protocols (and token estimates) that want one string.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text(t) = part {
                out.push_str(t);
            }
        }
        out
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text(String),
    /// An image, by URL or inline data.
    Image(Image),
}

/// An image given to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Where the image is.
    pub source: ImageSource,
    /// OpenAI's `detail` hint (`auto`, `low`, `high`), if given.
    pub detail: Option<String>,
}

/// Where an image's bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// A URL the provider fetches.
    Url(String),
    /// Inline base64 data with its media type (from a `data:` URL or a base64 block).
    Base64 {
        /// For example `image/png`.
        media_type: String,
        /// Base64 text, without the `data:` prefix.
        data: String,
    },
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// JSON Schema of its arguments.
    pub parameters: Value,
    /// OpenAI strict mode.
    pub strict: Option<bool>,
}

/// How the model should use tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function must be called.
    Function(String),
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, echoed by the tool result.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments as JSON text (OpenAI's form; object-based protocols serialize).
    pub arguments: String,
}

/// The required shape of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// OpenAI strict mode.
        strict: Option<bool>,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Hit the token limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// A safety filter stopped it.
    ContentFilter,
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The upstream's response id.
    pub id: String,
    /// The model that answered, as the upstream names it.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// The answer text, if any.
    pub content: Option<String>,
    /// Tool calls, if any.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// The stop sequence that ended the answer, when the upstream says which one matched
    /// (Anthropic does; OpenAI, Bedrock and Gemini do not). Implies `finish_reason == Stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: TokenUsage,
}

/// One event of a streamed answer, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer begins.
    Start {
        /// The upstream's response id.
        id: String,
        /// The model that answers.
        model: String,
        /// Unix seconds.
        created: u64,
    },
    /// More answer text.
    TextDelta(String),
    /// A tool call begins.
    ToolCallStart {
        /// Position of the call in this answer (0-based).
        index: u32,
        /// The call id.
        id: String,
        /// The function name.
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallDelta {
        /// Which call.
        index: u32,
        /// The next fragment of the arguments' JSON text.
        arguments: String,
    },
    /// The stop sequence that matched; sent just before `Finish(Stop)` by upstreams that name
    /// it (Anthropic). A separate event so `Finish` stays a plain reason for most consumers.
    StopSequence(String),
    /// The model stopped.
    Finish(FinishReason),
    /// Token counts (may come once, at the end; later values replace earlier ones).
    Usage(TokenUsage),
}

/// An embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// The logical model name.
    pub model: String,
    /// The texts to embed. Empty when the client sent pre-tokenized input (`token_input`).
    pub input: Vec<String>,
    /// Pre-tokenized input (OpenAI's `int[]` or `int[][]`), one token list per item. Only
    /// OpenAI-shaped upstreams can take it; other codecs must reject a request that has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_input: Option<Vec<Vec<u32>>>,
    /// Requested vector size, if the model supports it.
    pub dimensions: Option<u32>,
    /// Whether the client wants base64 (little-endian f32) rather than float arrays.
    pub base64: bool,
}

/// An embeddings answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// The model that answered.
    pub model: String,
    /// One vector per input, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens.
    pub input_tokens: u64,
}
