//! Stream translation: upstream bytes in, client bytes out, with no I/O.
//!
//! A [`Translator`] is what the server's relay drives. [`OpenAiPassthrough`] (an OpenAI-shaped
//! upstream to an OpenAI client) forwards events unchanged, capturing usage on the way,
//! dropping Azure's prompt-filter preamble and the usage chunk the client did not ask for.
//! [`Translate`] covers every other pair: the upstream codec's stream decoder turns frames into
//! canonical events, and the client protocol's encoder writes them.

use crate::client::ClientEncoder;
use crate::codec::openai_chat;
use crate::sse::{self, SseDecoder};
use crate::upstream::{Frame, UpstreamStream};
use crate::StreamEvent;
use switchyard_types::{ErrorKind, TokenUsage};

/// Turns an upstream byte stream into the client's byte stream.
pub trait Translator: Send {
    /// Consumes upstream bytes, appending what the client should receive to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError>;
    /// The upstream closed the stream; `Ok` only if the answer was complete.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError>;
    /// Writes the client protocol's error event; nothing may follow it.
    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>);
    /// Whether the client has received the complete answer.
    fn done(&self) -> bool;
    /// Usage reported so far.
    fn usage(&self) -> Option<TokenUsage>;
    /// Content deltas forwarded so far: the output-token estimate when a stream breaks before
    /// the upstream reports usage (providers stream about one token per delta).
    fn deltas(&self) -> u64;
}

/// Why a stream could not be translated.
#[derive(Debug, Clone, PartialEq)]
pub enum TranslateError {
    /// The upstream sent bytes that are not its protocol.
    Malformed(String),
    /// The upstream reported an error inside the stream.
    Upstream(ErrorKind, String),
    /// The upstream closed the stream before the end.
    Truncated,
}

/// What a translator has seen of the answer so far.
#[derive(Debug, Default)]
struct Seen {
    usage: Option<TokenUsage>,
    deltas: u64,
    /// A finish reason arrived.
    finished: bool,
    /// The client has the complete answer.
    done: bool,
}

impl Seen {
    /// The upstream closed the stream. Without its end marker (OpenAI's `[DONE]`,
    /// Anthropic's `message_stop`, …) the answer is still whole when its finish reason and
    /// its usage both arrived — some providers never send the marker, and it would add
    /// nothing — so `write_end` gives the client its own; otherwise the stream was cut.
    fn close(&mut self, write_end: impl FnOnce()) -> Result<(), TranslateError> {
        if !self.done && self.finished && self.usage.is_some() {
            write_end();
            self.done = true;
        }
        if self.done {
            Ok(())
        } else {
            Err(TranslateError::Truncated)
        }
    }
}

/// OpenAI-shaped upstream → OpenAI client, event by event.
pub struct OpenAiPassthrough {
    decoder: SseDecoder,
    include_usage: bool,
    seen: Seen,
}

impl OpenAiPassthrough {
    /// A pass-through for a client that did or did not ask for the usage chunk.
    pub fn new(include_usage: bool) -> Self {
        OpenAiPassthrough {
            decoder: SseDecoder::new(),
            include_usage,
            seen: Seen::default(),
        }
    }

    fn process(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.seen.done {
            return Ok(());
        }
        if data == b"[DONE]" {
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.seen.done = true;
            return Ok(());
        }
        let info =
            openai_chat::inspect_chunk(data).map_err(|e| TranslateError::Malformed(e.message))?;
        if let Some(error) = info.error {
            return Err(TranslateError::Upstream(error.kind, error.message));
        }
        if info.azure_preamble {
            return Ok(());
        }
        if !info.choices_empty && info.finish_reason.is_none() {
            self.seen.deltas += 1;
        }
        self.seen.finished |= info.finish_reason.is_some();
        if let Some(usage) = info.usage {
            self.seen.usage = Some(usage);
            if info.choices_empty && !self.include_usage {
                return Ok(());
            }
        }
        sse::write_event(out, None, data);
        Ok(())
    }
}

impl Translator for OpenAiPassthrough {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        self.decoder.push(chunk);
        while let Some(event) = self
            .decoder
            .next_event()
            .map_err(|e| TranslateError::Malformed(e.message))?
        {
            self.process(event.data.as_bytes(), out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if let Some(event) = self.decoder.finish() {
            self.process(event.data.as_bytes(), out)?;
        }
        self.seen
            .close(|| out.extend_from_slice(b"data: [DONE]\n\n"))
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        let body = openai_chat::encode_error(kind, message, None, None);
        sse::write_event(out, None, &body);
    }

    fn done(&self) -> bool {
        self.seen.done
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.seen.usage
    }

    fn deltas(&self) -> u64 {
        // The first chunk only announces the assistant's role.
        self.seen.deltas.saturating_sub(1)
    }
}

/// Any upstream protocol → any client protocol, through the canonical stream events.
pub struct Translate {
    upstream: Box<dyn UpstreamStream>,
    client: ClientEncoder,
    seen: Seen,
}

impl Translate {
    /// A translator from `upstream` (see [`UpstreamCodec::stream_decoder`](crate::upstream::UpstreamCodec::stream_decoder)) to `client`.
    pub fn new(upstream: Box<dyn UpstreamStream>, client: ClientEncoder) -> Self {
        Translate {
            upstream,
            client,
            seen: Seen::default(),
        }
    }

    fn emit(&mut self, decoded: Frame, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        // Whatever follows the end of the answer (even an undecodable frame) is ignored.
        if self.seen.done {
            return Ok(());
        }
        for ev in decoded? {
            match &ev {
                StreamEvent::Usage(u) => self.seen.usage = Some(*u),
                StreamEvent::TextDelta(_) | StreamEvent::ToolCallDelta { .. } => {
                    self.seen.deltas += 1
                }
                StreamEvent::Finish(_) => self.seen.finished = true,
                _ => {}
            }
            self.client.encode(&ev, out);
        }
        if self.upstream.is_done() {
            self.client.finish(out);
            self.seen.done = true;
        }
        Ok(())
    }
}

impl Translator for Translate {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        self.upstream.push(chunk);
        while let Some(frame) = self.upstream.next_frame()? {
            self.emit(frame, out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if let Some(frame) = self.upstream.finish() {
            self.emit(frame, out)?;
        }
        let client = &mut self.client;
        self.seen.close(|| client.finish(out))
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        self.client.fail(kind, message, out);
    }

    fn done(&self) -> bool {
        self.seen.done
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.seen.usage
    }

    fn deltas(&self) -> u64 {
        self.seen.deltas
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ROLE: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const TEXT: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    const STOP: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
    const AZURE_PREAMBLE: &str = r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#;

    fn sse(chunks: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            sse::write_event(&mut out, None, c.as_bytes());
        }
        out
    }

    fn run(
        include_usage: bool,
        body: &[u8],
    ) -> (OpenAiPassthrough, String, Result<(), TranslateError>) {
        let mut t = OpenAiPassthrough::new(include_usage);
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in body.chunks(9) {
            result = t.feed(chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = t.end(&mut out);
        }
        (t, String::from_utf8(out).unwrap(), result)
    }

    #[test]
    fn passthrough_drops_the_usage_chunk_the_client_did_not_ask_for() {
        let body = sse(&[AZURE_PREAMBLE, ROLE, TEXT, STOP, USAGE, "[DONE]"]);
        let (t, text, end) = run(false, &body);
        assert_eq!(end, Ok(()));
        assert!(t.done());
        assert_eq!(t.usage().unwrap().input, 3);
        assert_eq!(t.deltas(), 1);
        assert!(!text.contains("prompt_tokens"), "{text}");
        assert!(!text.contains("prompt_filter_results"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

        let (_, text, _) = run(true, &body);
        assert!(text.contains("prompt_tokens"), "{text}");
    }

    #[test]
    fn passthrough_without_done_is_truncated() {
        let (t, _, end) = run(true, &sse(&[ROLE, TEXT]));
        assert_eq!(end, Err(TranslateError::Truncated));
        assert!(!t.done());
        // A finish reason without the usage that should follow it is still a cut stream.
        let (_, _, end) = run(true, &sse(&[ROLE, TEXT, STOP]));
        assert_eq!(end, Err(TranslateError::Truncated));
    }

    #[test]
    fn a_stream_with_finish_and_usage_but_no_done_is_complete() {
        for include_usage in [false, true] {
            let (t, text, end) = run(include_usage, &sse(&[ROLE, TEXT, STOP, USAGE]));
            assert_eq!(end, Ok(()));
            assert!(t.done());
            assert_eq!(t.usage().unwrap().output, 1);
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            assert_eq!(text.matches("[DONE]").count(), 1, "{text}");
        }
    }

    #[test]
    fn a_translated_stream_with_finish_and_usage_but_no_done_is_complete() {
        use crate::client::{ClientProtocol, StreamIdentity};
        use crate::upstream::upstream_codec;
        let translate = |chunks: &[&str]| {
            let client = ClientProtocol::AnthropicMessages.stream_encoder(
                false,
                StreamIdentity {
                    id: "msg_1".into(),
                    model: "m".into(),
                    created: 1,
                },
            );
            let mut t = Translate::new(
                upstream_codec(switchyard_types::ProviderKind::OpenAi).stream_decoder(),
                client,
            );
            let mut out = Vec::new();
            let fed = t.feed(&sse(chunks), &mut out);
            let end = fed.and_then(|()| t.end(&mut out));
            (end, String::from_utf8(out).unwrap())
        };
        let (end, text) = translate(&[ROLE, TEXT, STOP, USAGE]);
        assert_eq!(end, Ok(()));
        assert!(text.contains("event: message_stop"), "{text}");
        let (end, text) = translate(&[ROLE, TEXT]);
        assert_eq!(end, Err(TranslateError::Truncated));
        assert!(!text.contains("message_stop"), "{text}");
    }

    #[test]
    fn passthrough_errors_are_upstream_errors() {
        let error = r#"{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#;
        let (_, _, end) = run(true, &sse(&[ROLE, error]));
        assert!(matches!(end, Err(TranslateError::Upstream(_, m)) if m == "slow down"));
    }
}
