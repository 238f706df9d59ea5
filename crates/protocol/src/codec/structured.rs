//! Structured outputs on protocols without a JSON response mode: the requested format becomes
//! a tool the model is made to call (the *answer tool*), and that call's input becomes the
//! answer text, in whole answers ([`answer_from_tool`]) and streams ([`AnswerStream`]).
//! Anthropic (on models without native structured outputs) and Bedrock Converse go this way;
//! docs/translation.md says which protocol goes which way.

use crate::canonical::{ChatRequest, ChatResponse, FinishReason, ResponseFormat, StreamEvent};
use crate::translate::TranslateError;
use crate::upstream::{Frame, UpstreamStream};
use crate::Unsupported;
use serde_json::Value;

/// The answer tool's name for `json_object` (any JSON object), which has no name of its own.
const JSON_OBJECT_TOOL: &str = "json_answer";

/// The answer tool's name when the schema's name is not a valid tool name.
const FALLBACK_TOOL: &str = "structured_output";

/// Tells the model what the answer tool is for.
const DESCRIPTION: &str =
    "Give your final answer by calling this tool; its input is the answer, in the required format.";

/// The tool a JSON response format becomes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AnswerTool<'a> {
    /// The tool's name: the schema's name when it is a valid tool name.
    pub name: &'a str,
    /// What the tool is for, for the model.
    pub description: &'static str,
    /// The schema the input (the answer) must follow.
    pub schema: &'a Value,
}

/// How the model should choose among the tools once the answer tool is among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice<'a> {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Function(&'a str),
}

/// The tools one request sends: the client's, the answer tool when there is one, and the
/// choice among them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolPlan<'a> {
    /// Appended after the client's tools.
    pub answer: Option<AnswerTool<'a>>,
    /// The effective choice (`None` when the request gave none and there is no answer tool).
    pub choice: Option<Choice<'a>>,
}

/// Whether `name` is a tool name every protocol accepts (Anthropic's and OpenAI's rule).
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The name of the answer tool `req` asks for, if its response format is JSON.
pub fn answer_tool_name(req: &ChatRequest) -> Option<&str> {
    match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(JSON_OBJECT_TOOL),
        Some(ResponseFormat::JsonSchema { name, .. }) if valid_tool_name(name) => Some(name),
        Some(ResponseFormat::JsonSchema { .. }) => Some(FALLBACK_TOOL),
    }
}

/// The tools and choice `req` sends to `protocol` when its JSON response format goes as an
/// answer tool.
///
/// With no tools of the client's, or `tool_choice: none`, the answer tool is forced. With
/// client tools and an `auto` (or no) choice, some tool is required: the model calls one of
/// the client's or answers through the answer tool, as an OpenAI model would call a tool or
/// answer in the format. A `required` or named choice makes the model call a client tool,
/// so no answer tool is offered. A client tool named like the answer tool is [`Unsupported`].
pub(crate) fn tool_plan<'a>(
    req: &'a ChatRequest,
    protocol: &'static str,
) -> Result<ToolPlan<'a>, Unsupported> {
    use crate::canonical::ToolChoice;
    let client_choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => Choice::Auto,
        ToolChoice::None => Choice::None,
        ToolChoice::Required => Choice::Required,
        ToolChoice::Function(f) => Choice::Function(f),
    });
    let Some(name) = answer_tool_name(req) else {
        return Ok(ToolPlan {
            answer: None,
            choice: client_choice,
        });
    };
    if req.tools.iter().any(|t| t.name == name) {
        return Err(Unsupported::new(
            protocol,
            format!(
                "a `response_format` alongside a tool of the same name (`{name}`): the format \
                 is sent as a tool"
            ),
        ));
    }
    static ANY_OBJECT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let schema = match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => crate::codec::schema_or_empty(schema),
        _ => ANY_OBJECT.get_or_init(|| serde_json::json!({"type": "object"})),
    };
    let answer = AnswerTool {
        name,
        description: DESCRIPTION,
        schema,
    };
    let choice = match client_choice {
        Some(Choice::Required | Choice::Function(_)) => {
            return Ok(ToolPlan {
                answer: None,
                choice: client_choice,
            })
        }
        Some(Choice::None) => Choice::Function(name),
        None | Some(Choice::Auto) if req.tools.is_empty() => Choice::Function(name),
        None | Some(Choice::Auto) => Choice::Required,
    };
    Ok(ToolPlan {
        answer: Some(answer),
        choice: Some(choice),
    })
}

/// A complete answer whose call of the answer tool `name` becomes its content: the call's
/// arguments (JSON text) replace any text the model wrote around it, and the finish reason is
/// `Stop` unless other tool calls remain.
pub fn answer_from_tool(response: &mut ChatResponse, name: &str) {
    let Some(at) = response.tool_calls.iter().position(|c| c.name == name) else {
        return;
    };
    let call = response.tool_calls.remove(at);
    response.content = Some(call.arguments);
    if response.tool_calls.is_empty() && response.finish_reason == FinishReason::ToolCalls {
        response.finish_reason = FinishReason::Stop;
    }
}

/// An upstream stream whose call of the answer tool becomes text deltas: its start is
/// dropped, its argument fragments are the answer text, later calls are renumbered to close
/// the gap, and `Finish(ToolCalls)` becomes `Finish(Stop)` when no other call was made.
pub struct AnswerStream {
    inner: Box<dyn UpstreamStream>,
    name: String,
    /// The answer tool call's index in the upstream's numbering, once it started.
    answer: Option<u32>,
    /// A client tool was called too.
    other_calls: bool,
}

impl AnswerStream {
    /// Wraps `inner`, whose request sent its response format as the tool `name`.
    pub fn new(inner: Box<dyn UpstreamStream>, name: impl Into<String>) -> Self {
        AnswerStream {
            inner,
            name: name.into(),
            answer: None,
            other_calls: false,
        }
    }

    /// A later call's index as the client sees it: one less after the answer call.
    fn renumber(&self, index: u32) -> u32 {
        match self.answer {
            Some(a) if index > a => index - 1,
            _ => index,
        }
    }

    fn rewrite(&mut self, frame: Frame) -> Frame {
        let events = frame?;
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            match ev {
                StreamEvent::ToolCallStart { index, name, .. }
                    if self.answer.is_none() && name == self.name =>
                {
                    self.answer = Some(index);
                }
                StreamEvent::ToolCallStart { index, id, name } => {
                    self.other_calls = true;
                    out.push(StreamEvent::ToolCallStart {
                        index: self.renumber(index),
                        id,
                        name,
                    });
                }
                StreamEvent::ToolCallDelta { index, arguments } if Some(index) == self.answer => {
                    if !arguments.is_empty() {
                        out.push(StreamEvent::TextDelta(arguments));
                    }
                }
                StreamEvent::ToolCallDelta { index, arguments } => {
                    out.push(StreamEvent::ToolCallDelta {
                        index: self.renumber(index),
                        arguments,
                    });
                }
                StreamEvent::Finish(FinishReason::ToolCalls)
                    if self.answer.is_some() && !self.other_calls =>
                {
                    out.push(StreamEvent::Finish(FinishReason::Stop));
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

impl UpstreamStream for AnswerStream {
    fn push(&mut self, chunk: &[u8]) {
        self.inner.push(chunk);
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, TranslateError> {
        Ok(self.inner.next_frame()?.map(|f| self.rewrite(f)))
    }

    fn finish(&mut self) -> Option<Frame> {
        let frame = self.inner.finish()?;
        Some(self.rewrite(frame))
    }

    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
}

#[cfg(test)]
#[path = "structured_tests.rs"]
mod tests;
