//! ConverseStream events → canonical events.

use super::eventstream::EventMessage;
use super::response::{finish_reason_from_wire, kind_for_name, UsageIn};
use crate::canonical::StreamEvent;
use crate::{DecodeError, UpstreamStreamError};
use serde::Deserialize;
use switchyard_types::ErrorKind;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventIn {
    #[serde(default)]
    content_block_index: Option<u32>,
    #[serde(default)]
    start: Option<StartIn>,
    #[serde(default)]
    delta: Option<DeltaIn>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn {
    #[serde(default)]
    tool_use: Option<ToolUseStartIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStartIn {
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaIn {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseDeltaIn>,
}

#[derive(Deserialize)]
struct ToolUseDeltaIn {
    #[serde(default)]
    input: Option<String>,
}

/// ConverseStream messages (from [`super::EventStreamDecoder`]) → canonical events.
///
/// Text blocks have no `contentBlockStart`, so a delta for an unknown block is text. A tool
/// block that streamed no input gets `{}`, as the non-streamed `input` would be. Exception
/// frames (`:message-type: exception`) and `error` frames are returned as errors;
/// [`StreamDecoder::upstream_error`] gives their kind.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    /// Block index → (canonical call index, whether input arrived), for tool blocks.
    tools: Vec<(u32, u32, bool)>,
    tool_calls: u32,
    error: Option<UpstreamStreamError>,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one message; unknown event types give nothing.
    pub fn decode(&mut self, msg: &EventMessage) -> Result<Vec<StreamEvent>, DecodeError> {
        match msg.message_type.as_str() {
            "event" => {}
            "exception" => {
                let name = msg.exception_type.as_deref().unwrap_or_default();
                let message = serde_json::from_slice::<EventIn>(&msg.payload)
                    .ok()
                    .and_then(|e| e.message);
                return Err(self.fail(name, message));
            }
            _ => {
                let name = msg.error_code.as_deref().unwrap_or_default();
                return Err(self.fail(name, msg.error_message.clone()));
            }
        }
        let ev: EventIn = serde_json::from_slice(&msg.payload)
            .map_err(|e| DecodeError::new(format!("invalid upstream Converse event: {e}")))?;
        let mut out = Vec::new();
        let block = ev.content_block_index.unwrap_or(0);
        match msg.event_type.as_deref().unwrap_or_default() {
            "messageStart" if !self.started => {
                self.started = true;
                out.push(StreamEvent::Start {
                    id: String::new(),
                    model: String::new(),
                    created: 0,
                });
            }
            "contentBlockStart" => {
                if let Some(t) = ev.start.and_then(|s| s.tool_use) {
                    let call = self.tool_calls;
                    self.tool_calls += 1;
                    self.tools.push((block, call, false));
                    out.push(StreamEvent::ToolCallStart {
                        index: call,
                        id: t.tool_use_id.unwrap_or_else(|| format!("tooluse_{call}")),
                        name: t.name.unwrap_or_default(),
                    });
                }
            }
            "contentBlockDelta" => {
                let delta = ev.delta;
                let (text, tool) = delta.map(|d| (d.text, d.tool_use)).unwrap_or_default();
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(text));
                } else if let Some(input) = tool.and_then(|t| t.input).filter(|i| !i.is_empty()) {
                    if let Some(entry) = self.tools.iter_mut().rev().find(|t| t.0 == block) {
                        entry.2 = true;
                        out.push(StreamEvent::ToolCallDelta {
                            index: entry.1,
                            arguments: input,
                        });
                    }
                }
            }
            "contentBlockStop" => {
                if let Some(entry) = self.tools.iter_mut().rev().find(|t| t.0 == block) {
                    if !entry.2 {
                        entry.2 = true;
                        out.push(StreamEvent::ToolCallDelta {
                            index: entry.1,
                            arguments: "{}".to_owned(),
                        });
                    }
                }
            }
            "messageStop" => {
                if let Some(reason) = ev.stop_reason {
                    out.push(StreamEvent::Finish(finish_reason_from_wire(&reason)));
                }
            }
            "metadata" => {
                self.done = true;
                if let Some(u) = ev.usage {
                    out.push(StreamEvent::Usage(u.to_usage()));
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn fail(&mut self, name: &str, message: Option<String>) -> DecodeError {
        let e = UpstreamStreamError {
            kind: kind_for_name(name).unwrap_or(ErrorKind::UpstreamServer),
            message: message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("upstream stream exception {name}")),
        };
        let err = DecodeError::new(format!("upstream stream error: {}", e.message));
        self.error = Some(e);
        err
    }

    /// Whether the final `metadata` event was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The upstream's mid-stream exception, once [`StreamDecoder::decode`] has returned it.
    pub fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        self.error.as_ref()
    }
}
