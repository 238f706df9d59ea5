//! Streamed chat responses: a cheap probe for passed-through chunks, upstream chunks →
//! canonical events, and canonical events → the exact OpenAI chunk sequence.

use super::error::{stream_error, UpstreamStreamError};
use super::wire::{
    finish_reason_from_wire, finish_reason_to_wire, ChunkChoiceOut, ChunkIn, ChunkOut,
    ChunkProbeIn, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut, UsageOut,
};
use crate::canonical::{FinishReason, StreamEvent};
use crate::json;
use crate::DecodeError;
use std::borrow::Cow;
use switchyard_types::{ErrorKind, TokenUsage};

/// The last bytes of a complete stream.
pub const END_MARKER: &[u8] = b"data: [DONE]\n\n";

/// What the gateway needs to know about one upstream `data:` payload in a passed-through stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkInfo<'a> {
    /// The chunk's `usage`, when not null.
    pub usage: Option<TokenUsage>,
    /// `choices` is empty or absent (the usage chunk, Azure's preamble, an error).
    pub choices_empty: bool,
    /// `object == ""` and no choices: Azure's `prompt_filter_results` chunk.
    pub azure_preamble: bool,
    /// The first non-null `finish_reason` among the choices.
    pub finish_reason: Option<FinishReason>,
    /// An `{"error": {...}}` event.
    pub error: Option<UpstreamStreamError>,
    /// Choice 0's text delta, for continuing a broken stream elsewhere.
    pub text: Option<Cow<'a, str>>,
    /// Choice 0's delta calls a tool.
    pub tool_call: bool,
    /// The chunk's `id`, `model` and `created`, when it names them.
    pub id: Option<Cow<'a, str>>,
    /// See `id`.
    pub model: Option<Cow<'a, str>>,
    /// See `id`.
    pub created: Option<u64>,
}

/// Reads only `id`, `model`, `created`, `object`, `choices[].finish_reason`, choice 0's delta
/// text, `usage` and `error` of one chunk; borrowed, so the pass-through path allocates nothing
/// for the text it forwards.
///
/// `[DONE]` is not JSON: callers check for it before calling this.
pub fn inspect_chunk(data: &[u8]) -> Result<ChunkInfo<'_>, DecodeError> {
    let probe: ChunkProbeIn<'_> = serde_json::from_slice(data)
        .map_err(|e| DecodeError::new(format!("invalid upstream stream chunk: {e}")))?;
    let choices = probe.choices.unwrap_or_default();
    let choices_empty = choices.is_empty();
    let finish_reason = choices
        .iter()
        .find_map(|c| c.finish_reason.as_deref())
        .map(finish_reason_from_wire);
    let delta = choices
        .into_iter()
        .find(|c| c.index == 0)
        .and_then(|c| c.delta);
    let (text, tool_call) = match delta {
        Some(d) => (d.content, d.tool_calls.is_some()),
        None => (None, false),
    };
    Ok(ChunkInfo {
        usage: probe.usage.map(|u| u.to_usage()),
        choices_empty,
        azure_preamble: choices_empty && probe.object.as_deref() == Some(""),
        finish_reason,
        error: probe.error.as_ref().map(stream_error),
        text: text.filter(|t| !t.is_empty()),
        tool_call,
        id: probe.id,
        model: probe.model,
        created: probe.created,
    })
}

/// Upstream stream → canonical events (for translating to other client protocols).
///
/// Only choice 0 is followed (the canonical stream has one answer). `refusal` deltas are
/// reported as text, like [`super::decode_response`] does.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    /// Indices of tool calls whose start was already reported.
    tool_calls_started: Vec<u32>,
    error: Option<UpstreamStreamError>,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one `data:` payload. `[DONE]` gives no events and marks the stream done.
    ///
    /// An upstream `{"error": ...}` event is returned as an error whose message is the
    /// upstream's; [`StreamDecoder::upstream_error`] then gives its kind.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, DecodeError> {
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let chunk: ChunkIn = serde_json::from_slice(data)
            .map_err(|e| DecodeError::new(format!("invalid upstream stream chunk: {e}")))?;
        if let Some(e) = &chunk.error {
            let e = stream_error(e);
            let message = format!("upstream stream error: {}", e.message);
            self.error = Some(e);
            return Err(DecodeError::new(message));
        }
        let mut events = Vec::new();
        let choices = chunk.choices.unwrap_or_default();
        let preamble = choices.is_empty() && chunk.object.as_deref() == Some("");
        if !self.started && !preamble {
            self.started = true;
            events.push(StreamEvent::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
                created: chunk.created.unwrap_or(0),
            });
        }
        for choice in choices.into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            if let Some(delta) = choice.delta {
                for text in [delta.content, delta.refusal].into_iter().flatten() {
                    if !text.is_empty() {
                        events.push(StreamEvent::TextDelta(text));
                    }
                }
                for (pos, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    // Some compatible servers omit `index` when sending one call per delta.
                    let index = call.index.unwrap_or(pos as u32);
                    let (name, arguments) = match call.function {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    if !self.tool_calls_started.contains(&index)
                        && (call.id.is_some() || name.is_some())
                    {
                        self.tool_calls_started.push(index);
                        events.push(StreamEvent::ToolCallStart {
                            index,
                            id: call.id.unwrap_or_else(|| format!("call_{index}")),
                            name: name.unwrap_or_default(),
                        });
                    }
                    if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                        events.push(StreamEvent::ToolCallDelta { index, arguments });
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                events.push(StreamEvent::Finish(finish_reason_from_wire(&reason)));
            }
        }
        // Usage comes last: vLLM may put it on the finish chunk, and consumers expect it after.
        if let Some(usage) = chunk.usage {
            events.push(StreamEvent::Usage(usage.to_usage()));
        }
        Ok(events)
    }

    /// Whether `[DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The upstream's mid-stream error, once [`StreamDecoder::decode`] has returned it.
    pub fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        self.error.as_ref()
    }
}

/// Canonical events → client-facing SSE bytes: `data: {chunk}\n\n` per chunk, then
/// `data: [DONE]\n\n`, in exactly OpenAI's sequence (PROTOCOLS.md section 1).
///
/// The role is announced lazily with the first content: `{role, content: ""}` before text, or
/// `role` and `content: null` on the first tool-call delta, as OpenAI does. Usage is held back
/// and sent as the final `choices: []` chunk only when `include_usage`.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    role_sent: bool,
    usage: Option<TokenUsage>,
    /// After `finish` or `error` nothing more is written.
    closed: bool,
}

impl StreamEncoder {
    /// An encoder for one response; `id`, `model` and `created` go on every chunk.
    pub fn new(id: String, model: String, created: u64, include_usage: bool) -> Self {
        StreamEncoder {
            id,
            model,
            created,
            include_usage,
            role_sent: false,
            usage: None,
            closed: false,
        }
    }

    /// An encoder continuing a stream whose first chunks (the role among them) the client
    /// already has.
    pub fn resumed(id: String, model: String, created: u64, include_usage: bool) -> Self {
        StreamEncoder {
            role_sent: true,
            ..StreamEncoder::new(id, model, created, include_usage)
        }
    }

    /// Appends the chunks for one event to `out` (none for `Start` and `Usage`).
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match ev {
            // The encoder's own id/model/created are the client-facing ones.
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta(text) => {
                self.ensure_role(out);
                self.write_delta(
                    out,
                    DeltaOut {
                        content: Some(Some(text)),
                        ..DeltaOut::default()
                    },
                    None,
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let first = !self.role_sent;
                self.role_sent = true;
                self.write_delta(
                    out,
                    DeltaOut {
                        role: first.then_some("assistant"),
                        content: first.then_some(None),
                        tool_calls: Some([ToolCallDeltaOut {
                            index: *index,
                            id: Some(id),
                            kind: Some("function"),
                            function: FunctionDeltaOut {
                                name: Some(name),
                                arguments: "",
                            },
                        }]),
                    },
                    None,
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.ensure_role(out);
                self.write_delta(
                    out,
                    DeltaOut {
                        tool_calls: Some([ToolCallDeltaOut {
                            index: *index,
                            id: None,
                            kind: None,
                            function: FunctionDeltaOut {
                                name: None,
                                arguments,
                            },
                        }]),
                        ..DeltaOut::default()
                    },
                    None,
                );
            }
            StreamEvent::Finish(reason) => {
                self.ensure_role(out);
                self.write_delta(
                    out,
                    DeltaOut::default(),
                    Some(finish_reason_to_wire(*reason)),
                );
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            // OpenAI's `finish_reason: "stop"` covers a stop sequence without naming it.
            StreamEvent::StopSequence(_) => {}
        }
    }

    /// Ends the stream: the usage chunk if wanted and known, then `data: [DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let (true, Some(usage)) = (self.include_usage, self.usage) {
            self.write_chunk(out, &[], Some(Some(UsageOut::from_usage(&usage))));
        }
        out.extend_from_slice(END_MARKER);
    }

    /// Ends the stream with `data: {"error": {...}}` and no `[DONE]`, as OpenAI does.
    pub fn error(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.closed = true;
        out.extend_from_slice(b"data: ");
        let body = super::encode_error(kind, message, None, None);
        // Sanity: the body is one line of JSON, so it is one SSE data line.
        debug_assert!(!body.contains(&b'\n'));
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\n\n");
    }

    /// The usage seen so far (the last `Usage` event).
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.write_delta(
                out,
                DeltaOut {
                    role: Some("assistant"),
                    content: Some(Some("")),
                    ..DeltaOut::default()
                },
                None,
            );
        }
    }

    fn write_delta(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&'static str>) {
        let choices = [ChunkChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
        self.write_chunk(out, &choices, self.include_usage.then_some(None));
    }

    fn write_chunk(
        &self,
        out: &mut Vec<u8>,
        choices: &[ChunkChoiceOut<'_>],
        usage: Option<Option<UsageOut>>,
    ) {
        out.extend_from_slice(b"data: ");
        json::write_json(
            out,
            &ChunkOut {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                system_fingerprint: None,
                choices,
                usage,
            },
        );
        out.extend_from_slice(b"\n\n");
    }
}
