//! Streamed Messages: upstream SSE events → canonical events, and canonical events → the exact
//! Anthropic event sequence for clients (PROTOCOLS.md section 3).

use super::error::{error_body, status_and_type, stream_error};
use super::response::message_id;
use super::wire::{finish_reason_from_wire, finish_reason_to_wire, EventIn, UsageIn, UsageOut};
use crate::canonical::{FinishReason, StreamEvent};
use crate::json;
use crate::sse;
use crate::{DecodeError, UpstreamStreamError};
use serde::Serialize;
use switchyard_types::{ErrorKind, TokenUsage};

/// The last bytes of a complete stream: the `message_stop` event.
pub const END_MARKER: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// What an upstream content block turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Text,
    /// A tool call: its canonical index and whether any argument text arrived.
    Tool {
        call: u32,
        has_args: bool,
    },
    /// `thinking`, server tool blocks and future kinds: skipped.
    Other,
}

/// Upstream Anthropic SSE → canonical events.
///
/// Usage is combined, never summed: `message_start` gives input and cache counts, each
/// `message_delta` gives cumulative counts, and every member seen replaces the earlier value.
/// A `Usage` event follows `message_start` (so a stream that breaks early still has its input
/// counted) and each `message_delta`.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    /// Upstream block index → what it is.
    blocks: Vec<(u32, BlockKind)>,
    tool_calls: u32,
    usage: UsageIn,
    error: Option<UpstreamStreamError>,
}

impl std::fmt::Debug for UsageIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_usage())
    }
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one SSE event (`event:` name and `data:`). The `type` inside `data` decides;
    /// the name is the fallback. `ping` and unknown events give nothing.
    ///
    /// An `error` event is returned as an error with the upstream's message;
    /// [`StreamDecoder::upstream_error`] then gives its kind.
    pub fn decode(
        &mut self,
        event: Option<&str>,
        data: &[u8],
    ) -> Result<Vec<StreamEvent>, DecodeError> {
        let text = std::str::from_utf8(data)
            .map_err(|_| DecodeError::new("invalid upstream Anthropic event: not UTF-8"))?;
        let ev: EventIn<'_> = serde_json::from_str(text)
            .map_err(|e| DecodeError::new(format!("invalid upstream Anthropic event: {e}")))?;
        let kind = ev.kind.as_deref().or(event).unwrap_or_default();
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                let msg = ev.message;
                if let Some(u) = msg.as_ref().and_then(|m| m.usage.as_ref()) {
                    self.usage.update(u);
                }
                if !self.started {
                    self.started = true;
                    let (id, model) = msg.map(|m| (m.id, m.model)).unwrap_or_default();
                    out.push(StreamEvent::Start {
                        id: id.unwrap_or_default(),
                        model: model.unwrap_or_default(),
                        created: 0,
                    });
                }
                out.push(StreamEvent::Usage(self.usage.to_usage()));
            }
            "content_block_start" => {
                let index = ev.index.unwrap_or(self.blocks.len() as u32);
                let block = ev.content_block;
                let block_kind = block.as_ref().and_then(|b| b.kind.as_deref());
                let kind = match block_kind {
                    Some("text") => {
                        if let Some(t) = block.and_then(|b| b.text).filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t));
                        }
                        BlockKind::Text
                    }
                    Some("tool_use") => {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        let (id, name, input) =
                            block.map(|b| (b.id, b.name, b.input)).unwrap_or_default();
                        out.push(StreamEvent::ToolCallStart {
                            index: call,
                            id: id.unwrap_or_else(|| format!("toolu_{call}")),
                            name: name.unwrap_or_default(),
                        });
                        // Anthropic starts with `input: {}` and streams the real input; a
                        // non-empty start input is kept rather than lost.
                        let start_args = json::arguments_text(input);
                        let has_args = start_args != "{}";
                        if has_args {
                            out.push(StreamEvent::ToolCallDelta {
                                index: call,
                                arguments: start_args,
                            });
                        }
                        BlockKind::Tool { call, has_args }
                    }
                    _ => BlockKind::Other,
                };
                self.blocks.push((index, kind));
            }
            "content_block_delta" => {
                let index = ev.index.unwrap_or(0);
                let Some(delta) = ev.delta else {
                    return Ok(out);
                };
                match (delta.kind.as_deref(), self.block(index)) {
                    (Some("text_delta"), _) => {
                        if let Some(t) = delta.text.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t));
                        }
                    }
                    (Some("input_json_delta"), Some(BlockKind::Tool { call, .. })) => {
                        if let Some(arguments) = delta.partial_json.filter(|a| !a.is_empty()) {
                            self.set_has_args(index);
                            out.push(StreamEvent::ToolCallDelta {
                                index: call,
                                arguments,
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                // A tool call with no input at all: `{}`, as the non-streamed `input` says.
                if let Some(BlockKind::Tool {
                    call,
                    has_args: false,
                }) = self.block(ev.index.unwrap_or(0))
                {
                    self.set_has_args(ev.index.unwrap_or(0));
                    out.push(StreamEvent::ToolCallDelta {
                        index: call,
                        arguments: "{}".to_owned(),
                    });
                }
            }
            "message_delta" => {
                if let Some(delta) = ev.delta {
                    if let Some(reason) = delta.stop_reason {
                        let reason = finish_reason_from_wire(&reason);
                        if let Some(seq) =
                            delta.stop_sequence.filter(|_| reason == FinishReason::Stop)
                        {
                            out.push(StreamEvent::StopSequence(seq));
                        }
                        out.push(StreamEvent::Finish(reason));
                    }
                }
                if let Some(u) = &ev.usage {
                    self.usage.update(u);
                    out.push(StreamEvent::Usage(self.usage.to_usage()));
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let e = stream_error(ev.error.as_ref());
                let message = format!("upstream stream error: {}", e.message);
                self.error = Some(e);
                return Err(DecodeError::new(message));
            }
            _ => {}
        }
        Ok(out)
    }

    fn block(&self, index: u32) -> Option<BlockKind> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| *k)
    }

    fn set_has_args(&mut self, index: u32) {
        if let Some((_, BlockKind::Tool { has_args, .. })) =
            self.blocks.iter_mut().rev().find(|(i, _)| *i == index)
        {
            *has_args = true;
        }
    }

    /// Whether `message_stop` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The usage combined so far.
    pub fn usage(&self) -> TokenUsage {
        self.usage.to_usage()
    }

    /// The upstream's mid-stream error, once [`StreamDecoder::decode`] has returned it.
    pub fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        self.error.as_ref()
    }
}

/// The block open in the client stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Tool(u32),
}

/// Canonical events → client-facing Anthropic SSE.
///
/// `message_start` is written lazily with the first content (or at the end), so usage that
/// arrives before any content (an Anthropic upstream's input count) is in it. Each text run
/// and each tool call is one content block; `message_delta` (stop reason and cumulative
/// usage) and `message_stop` are written by [`StreamEncoder::finish`].
///
/// Tool-call fragments are written while their block is open; a fragment for a call whose
/// block was already closed (interleaved calls, which no supported upstream sends) is dropped.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    /// The next block index.
    next_block: u32,
    tool_calls: bool,
    finish: Option<FinishReason>,
    stop_sequence: Option<String>,
    usage: Option<TokenUsage>,
    /// After `finish` or `error` nothing more is written.
    closed: bool,
}

#[derive(Serialize)]
struct MessageStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct BlockStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: BlockStart<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Text {
        text: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: serde_json::Map<String, serde_json::Value>,
    },
}

#[derive(Serialize)]
struct BlockDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: Delta<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockStopOut {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct MessageDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopOut<'a>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct StopOut<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

impl StreamEncoder {
    /// An encoder for one response; `id` (given a `msg_` prefix if needed) and `model` go in
    /// `message_start`.
    pub fn new(id: &str, model: String) -> Self {
        StreamEncoder {
            id: message_id(id).into_owned(),
            model,
            started: false,
            open: None,
            next_block: 0,
            tool_calls: false,
            finish: None,
            stop_sequence: None,
            usage: None,
            closed: false,
        }
    }

    /// Appends the events for one canonical event to `out`.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match ev {
            StreamEvent::Start { .. } => {}
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::StopSequence(s) => self.stop_sequence = Some(s.clone()),
            StreamEvent::Finish(r) => self.finish = Some(*r),
            StreamEvent::TextDelta(text) => {
                if text.is_empty() {
                    return;
                }
                self.ensure_started(out);
                if self.open != Some(Open::Text) {
                    self.close_block(out);
                    self.open_block(out, Open::Text, BlockStart::Text { text: "" });
                }
                self.write_delta(out, Delta::TextDelta { text });
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.close_block(out);
                self.tool_calls = true;
                self.open_block(
                    out,
                    Open::Tool(*index),
                    BlockStart::ToolUse {
                        id,
                        name,
                        input: serde_json::Map::new(),
                    },
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if self.open == Some(Open::Tool(*index)) && !arguments.is_empty() {
                    self.write_delta(
                        out,
                        Delta::InputJsonDelta {
                            partial_json: arguments,
                        },
                    );
                }
            }
        }
    }

    /// Ends the stream: closes the open block, then `message_delta` with the stop reason
    /// (`tool_use` if tool calls were made and no reason came, else `end_turn`) and the
    /// cumulative usage, then `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.ensure_started(out);
        self.close_block(out);
        self.closed = true;
        let reason = self.finish.unwrap_or(if self.tool_calls {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
        let stop_sequence = self
            .stop_sequence
            .as_deref()
            .filter(|_| reason == FinishReason::Stop);
        write(
            out,
            "message_delta",
            &MessageDeltaOut {
                kind: "message_delta",
                delta: StopOut {
                    stop_reason: finish_reason_to_wire(reason, stop_sequence.is_some()),
                    stop_sequence,
                },
                usage: UsageOut::from_usage(&self.usage.unwrap_or_default()),
            },
        );
        out.extend_from_slice(END_MARKER);
    }

    /// Ends the stream with `event: error` and Anthropic's error shape; nothing follows.
    pub fn error(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.closed = true;
        let (_, kind_name) = status_and_type(kind);
        sse::write_event(out, Some("error"), &error_body(kind_name, message));
    }

    /// The usage seen so far (the last `Usage` event).
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = UsageOut::from_usage(&self.usage.unwrap_or_default());
        write(
            out,
            "message_start",
            &MessageStartOut {
                kind: "message_start",
                message: MessageOut {
                    id: &self.id,
                    kind: "message",
                    role: "assistant",
                    model: &self.model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage,
                },
            },
        );
    }

    fn open_block(&mut self, out: &mut Vec<u8>, open: Open, start: BlockStart<'_>) {
        write(
            out,
            "content_block_start",
            &BlockStartOut {
                kind: "content_block_start",
                index: self.next_block,
                content_block: start,
            },
        );
        self.open = Some(open);
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            write(
                out,
                "content_block_stop",
                &BlockStopOut {
                    kind: "content_block_stop",
                    index: self.next_block,
                },
            );
            self.next_block += 1;
        }
    }

    fn write_delta(&self, out: &mut Vec<u8>, delta: Delta<'_>) {
        write(
            out,
            "content_block_delta",
            &BlockDeltaOut {
                kind: "content_block_delta",
                index: self.next_block,
                delta,
            },
        );
    }
}

/// Writes `event: <name>` and the JSON of `data` (one line: JSON escapes line breaks).
fn write<T: Serialize>(out: &mut Vec<u8>, name: &str, data: &T) {
    let mut body = Vec::with_capacity(96);
    json::write_json(&mut body, data);
    sse::write_event(out, Some(name), &body);
}
