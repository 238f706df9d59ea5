//! `streamGenerateContent?alt=sse` chunks → canonical events.

use super::error::stream_error;
use super::response::{call_id, finish_reason_from_wire, pieces, ResponseIn, UsageIn};
use crate::canonical::StreamEvent;
use crate::{DecodeError, UpstreamStreamError};

/// Gemini SSE `data:` chunks → canonical events.
///
/// Each chunk is a whole response holding only the new text. A function call arrives whole,
/// so it becomes `ToolCallStart` plus one `ToolCallDelta` with all its arguments; ids are
/// `call_<n>` over the whole answer, as [`super::decode_response`] numbers them.
/// `usageMetadata` comes in every chunk and the last is final, so a `Usage` event is sent
/// whenever it changes (consumers keep the last).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    finished: bool,
    tool_calls: u32,
    usage: Option<UsageIn>,
    error: Option<UpstreamStreamError>,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one `data:` payload. An `{"error": ...}` chunk is returned as an error;
    /// [`StreamDecoder::upstream_error`] then gives its kind.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, DecodeError> {
        let text = std::str::from_utf8(data)
            .map_err(|_| DecodeError::new("invalid upstream Gemini chunk: not UTF-8"))?;
        let chunk: ResponseIn<'_> = serde_json::from_str(text)
            .map_err(|e| DecodeError::new(format!("invalid upstream Gemini chunk: {e}")))?;
        if let Some(e) = &chunk.error {
            let e = stream_error(e);
            let message = format!("upstream stream error: {}", e.message);
            self.error = Some(e);
            return Err(DecodeError::new(message));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
                created: 0,
            });
        }
        let blocked = chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        let p = pieces(chunk.candidates);
        if let Some(t) = p.text.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::TextDelta(t));
        }
        for (id, name, arguments) in p.calls {
            let index = self.tool_calls;
            self.tool_calls += 1;
            out.push(StreamEvent::ToolCallStart {
                index,
                id: call_id(id, index as usize),
                name,
            });
            out.push(StreamEvent::ToolCallDelta { index, arguments });
        }
        if !self.finished {
            let reason = match p.finish.as_deref() {
                Some(r) => Some(finish_reason_from_wire(r, self.tool_calls > 0)),
                None if blocked => Some(crate::canonical::FinishReason::ContentFilter),
                None => None,
            };
            if let Some(reason) = reason {
                self.finished = true;
                out.push(StreamEvent::Finish(reason));
            }
        }
        if let Some(u) = chunk.usage_metadata.filter(|u| Some(*u) != self.usage) {
            self.usage = Some(u);
            out.push(StreamEvent::Usage(u.to_usage()));
        }
        Ok(out)
    }

    /// Whether a chunk with a finish reason was seen (Gemini has no end marker).
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// The upstream's mid-stream error, once [`StreamDecoder::decode`] has returned it.
    pub fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        self.error.as_ref()
    }
}
