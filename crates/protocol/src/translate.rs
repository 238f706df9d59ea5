//! Stream translation: upstream bytes in, client bytes out, with no I/O.
//!
//! A [`Translator`] is what the server's relay drives. [`OpenAiPassthrough`] (an OpenAI-shaped
//! upstream to an OpenAI client) forwards events unchanged, capturing usage on the way,
//! dropping Azure's prompt-filter preamble and the usage chunk the client did not ask for.
//! [`Translate`] covers every other pair: the upstream codec's stream decoder turns frames into
//! canonical events, and the client protocol's encoder writes them.
//!
//! A broken stream can be continued on another upstream: the translator keeps the text it
//! delivered ([`Translator::delivered`]), and [`Translator::resume`] splices the new upstream's
//! continuation into the same client stream, with no second start and no repeated text.

use crate::client::{ClientEncoder, StreamIdentity};
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
    /// The bytes the client's stream ends with: once [`done`](Translator::done), the output
    /// written last ends with them (see [`insert_before_end`]).
    fn end_marker(&self) -> &'static [u8];
    /// Usage the current upstream reported so far.
    fn usage(&self) -> Option<TokenUsage>;
    /// Content deltas the current upstream sent so far: the output-token estimate when a
    /// stream breaks before the upstream reports usage (providers stream about one token per
    /// delta).
    fn deltas(&self) -> u64;
    /// Malformed upstream events skipped so far (see [`Malformed::Skip`]).
    fn skipped(&self) -> u32;
    /// The answer text the client has received, when the translator keeps it
    /// ([`Options::keep_text`]) and the answer is plain text (a tool call cannot be continued).
    fn delivered(&self) -> Option<&str>;
    /// Continues the answer from another upstream, whose stream `upstream` decodes: its start
    /// is not repeated, whitespace the client already has is not doubled, and the usage the
    /// client sees counts the output of every part. Returns the translator to use from now
    /// on when this one cannot continue in place (a pass-through becomes a translation).
    fn resume(&mut self, upstream: Box<dyn UpstreamStream>) -> Option<Box<dyn Translator>>;
}

/// Puts `insert` (an SSE comment, say) just before the end marker `marker` that ends `out`;
/// `false`, leaving `out` as it was, when `out` does not end with it.
pub fn insert_before_end(out: &mut Vec<u8>, marker: &[u8], insert: &[u8]) -> bool {
    if marker.is_empty() || !out.ends_with(marker) {
        return false;
    }
    let at = out.len() - marker.len();
    out.splice(at..at, insert.iter().copied());
    true
}

/// What to do with an event that cannot be read inside an otherwise valid stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Malformed {
    /// Drop it, count it ([`Translator::skipped`]) and go on.
    #[default]
    Skip,
    /// End the stream with an error.
    Fail,
}

/// How a translator is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Unreadable events.
    pub malformed: Malformed,
    /// Keep the delivered text, so a broken stream can be continued elsewhere.
    pub keep_text: bool,
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
    malformed: Malformed,
    /// The current upstream's usage, as it reported it.
    usage: Option<TokenUsage>,
    /// The current upstream's content deltas.
    deltas: u64,
    /// Output tokens of earlier upstreams (a resumed stream), added to what the client sees.
    carried_output: u64,
    skipped: u32,
    /// The delivered text, when kept.
    text: Option<String>,
    /// A tool call reached the client.
    tool_call: bool,
    /// A resumed stream drops its upstream's start and, when the client's text already ends
    /// in whitespace, the continuation's leading whitespace (prefills are sent trimmed).
    resumed: bool,
    trim_leading: bool,
    /// A finish reason arrived.
    finished: bool,
    /// The client has the complete answer.
    done: bool,
}

impl Seen {
    fn new(options: Options) -> Seen {
        Seen {
            malformed: options.malformed,
            text: options.keep_text.then(String::new),
            ..Seen::default()
        }
    }

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

    /// An unreadable event: skipped or fatal, as configured.
    fn unreadable(&mut self, e: TranslateError) -> Result<(), TranslateError> {
        match (&e, self.malformed) {
            (TranslateError::Malformed(_), Malformed::Skip) => {
                self.skipped += 1;
                Ok(())
            }
            _ => Err(e),
        }
    }

    fn text(&mut self, t: &str) {
        self.deltas += 1;
        if let Some(kept) = &mut self.text {
            kept.push_str(t);
        }
    }

    fn delivered(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| !self.tool_call)
    }

    /// The usage the client sees: the current upstream's, plus the output of earlier parts.
    fn client_usage(&self, mut u: TokenUsage) -> TokenUsage {
        u.output += self.carried_output;
        u
    }

    /// A new upstream takes over the answer.
    fn resume(&mut self) {
        self.carried_output += self
            .usage
            .map_or(self.deltas, |u| u.output.max(self.deltas));
        self.usage = None;
        self.deltas = 0;
        self.finished = false;
        self.resumed = true;
        self.trim_leading = self
            .text
            .as_deref()
            .and_then(|t| t.chars().last())
            .is_some_and(char::is_whitespace);
    }
}

/// OpenAI-shaped upstream → OpenAI client, event by event.
pub struct OpenAiPassthrough {
    decoder: SseDecoder,
    include_usage: bool,
    seen: Seen,
    /// The stream's id, model and creation time, kept (with the text) for a continuation.
    identity: Option<StreamIdentity>,
}

impl OpenAiPassthrough {
    /// A pass-through for a client that did or did not ask for the usage chunk.
    pub fn new(include_usage: bool, options: Options) -> Self {
        OpenAiPassthrough {
            decoder: SseDecoder::new(),
            include_usage,
            seen: Seen::new(options),
            identity: None,
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
        let info = match openai_chat::inspect_chunk(data) {
            Ok(info) => info,
            Err(e) => return self.seen.unreadable(TranslateError::Malformed(e.message)),
        };
        if let Some(error) = info.error {
            return Err(TranslateError::Upstream(error.kind, error.message));
        }
        if info.azure_preamble {
            return Ok(());
        }
        if let Some(text) = &info.text {
            self.seen.text(text);
        }
        if info.tool_call {
            self.seen.deltas += 1;
            self.seen.tool_call = true;
        }
        if self.seen.text.is_some() && self.identity.is_none() {
            if let Some(id) = info.id.as_deref().filter(|id| !id.is_empty()) {
                self.identity = Some(StreamIdentity {
                    id: id.to_owned(),
                    model: info.model.as_deref().unwrap_or_default().to_owned(),
                    created: info.created.unwrap_or_default(),
                });
            }
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

    fn end_marker(&self) -> &'static [u8] {
        openai_chat::END_MARKER
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.seen.usage
    }

    fn deltas(&self) -> u64 {
        self.seen.deltas
    }

    fn skipped(&self) -> u32 {
        self.seen.skipped
    }

    fn delivered(&self) -> Option<&str> {
        self.seen.delivered()
    }

    fn resume(&mut self, upstream: Box<dyn UpstreamStream>) -> Option<Box<dyn Translator>> {
        // The continuation comes from a foreign stream, so it is written by the encoder, under
        // the id, model and time the client already has.
        let identity = self.identity.take().unwrap_or_else(|| StreamIdentity {
            id: String::new(),
            model: String::new(),
            created: 0,
        });
        let client = ClientEncoder::openai_resumed(self.include_usage, identity);
        let mut t = Translate {
            upstream,
            client,
            seen: std::mem::take(&mut self.seen),
        };
        t.seen.resume();
        Some(Box::new(t))
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
    pub fn new(upstream: Box<dyn UpstreamStream>, client: ClientEncoder, options: Options) -> Self {
        Translate {
            upstream,
            client,
            seen: Seen::new(options),
        }
    }

    fn emit(&mut self, decoded: Frame, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        // Whatever follows the end of the answer (even an undecodable frame) is ignored.
        if self.seen.done {
            return Ok(());
        }
        let events = match decoded {
            Ok(events) => events,
            Err(e) => return self.seen.unreadable(e),
        };
        for mut ev in events {
            match &mut ev {
                // A continuation's start would open a second answer.
                StreamEvent::Start { .. } if self.seen.resumed => continue,
                StreamEvent::Usage(u) => {
                    self.seen.usage = Some(*u);
                    *u = self.seen.client_usage(*u);
                }
                StreamEvent::TextDelta(t) => {
                    if self.seen.trim_leading {
                        let trimmed = t.trim_start();
                        if trimmed.is_empty() {
                            continue;
                        }
                        self.seen.trim_leading = false;
                        *t = trimmed.to_owned();
                    }
                    self.seen.text(t);
                }
                StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. } => {
                    self.seen.deltas += 1;
                    self.seen.tool_call = true;
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

    fn end_marker(&self) -> &'static [u8] {
        self.client.end_marker()
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.seen.usage
    }

    fn deltas(&self) -> u64 {
        self.seen.deltas
    }

    fn skipped(&self) -> u32 {
        self.seen.skipped
    }

    fn delivered(&self) -> Option<&str> {
        self.seen.delivered()
    }

    fn resume(&mut self, upstream: Box<dyn UpstreamStream>) -> Option<Box<dyn Translator>> {
        self.upstream = upstream;
        self.seen.resume();
        None
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
        let mut t = OpenAiPassthrough::new(include_usage, Options::default());
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
        let translate = |chunks: &[&str]| {
            let mut t = to_anthropic(false, Options::default());
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

    fn openai_decoder() -> Box<dyn UpstreamStream> {
        crate::upstream::upstream_codec(switchyard_types::ProviderKind::OpenAi).stream_decoder()
    }

    /// An OpenAI upstream translated for an Anthropic client.
    fn to_anthropic(include_usage: bool, options: Options) -> Translate {
        let client = crate::client::ClientProtocol::AnthropicMessages.stream_encoder(
            include_usage,
            StreamIdentity {
                id: "msg_1".into(),
                model: "m".into(),
                created: 1,
            },
        );
        Translate::new(openai_decoder(), client, options)
    }

    fn text_chunk(t: &str) -> String {
        serde_json::json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]})
        .to_string()
    }

    /// The text and the role announcements of an OpenAI client stream.
    fn openai_text(stream: &str) -> (String, usize, Vec<String>) {
        let mut text = String::new();
        let mut roles = 0;
        let mut ids = Vec::new();
        for line in stream.lines() {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            let delta = &v["choices"][0]["delta"];
            roles += usize::from(delta.get("role").is_some());
            text.push_str(delta["content"].as_str().unwrap_or_default());
        }
        (text, roles, ids)
    }

    fn keep() -> Options {
        Options {
            keep_text: true,
            ..Options::default()
        }
    }

    #[test]
    fn a_malformed_event_is_skipped_and_counted_unless_configured_to_fail() {
        let body = sse(&[ROLE, TEXT, "{\"choices\":[{", STOP, USAGE, "[DONE]"]);
        let (t, text, end) = run(true, &body);
        assert_eq!(end, Ok(()));
        assert_eq!(t.skipped(), 1);
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

        let mut t = OpenAiPassthrough::new(
            true,
            Options {
                malformed: Malformed::Fail,
                ..Options::default()
            },
        );
        let err = t.feed(&body, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, TranslateError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn a_translated_stream_skips_a_malformed_frame() {
        let mut t = to_anthropic(false, Options::default());
        let mut out = Vec::new();
        t.feed(&sse(&[ROLE, TEXT, "not json", STOP, USAGE]), &mut out)
            .unwrap();
        assert_eq!(t.end(&mut out), Ok(()));
        assert_eq!(t.skipped(), 1);
        assert!(String::from_utf8(out).unwrap().contains("message_stop"));
    }

    #[test]
    fn a_passthrough_resumed_elsewhere_reads_as_one_answer() {
        let mut t: Box<dyn Translator> = Box::new(OpenAiPassthrough::new(false, keep()));
        let mut out = Vec::new();
        let first = [ROLE, &text_chunk("Hello "), &text_chunk("wor")];
        t.feed(&sse(&first), &mut out).unwrap();
        assert_eq!(t.end(&mut out), Err(TranslateError::Truncated));
        assert_eq!(t.delivered(), Some("Hello wor"));
        assert_eq!(t.deltas(), 2);

        let mut t = t.resume(openai_decoder()).unwrap();
        let other_role = ROLE.replace("\"c1\"", "\"c2\"");
        let usage = r#"{"id":"c2","object":"chat.completion.chunk","created":2,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#;
        let rest = [&other_role, &text_chunk("ld!"), STOP, usage, "[DONE]"];
        t.feed(&sse(&rest), &mut out).unwrap();
        assert_eq!(t.end(&mut out), Ok(()));
        assert!(t.done());
        assert_eq!(t.delivered(), Some("Hello world!"));
        let out = String::from_utf8(out).unwrap();
        let (text, roles, ids) = openai_text(&out);
        assert_eq!(text, "Hello world!");
        assert_eq!(roles, 1, "{out}");
        assert!(ids.iter().all(|id| id == "c1"), "{out}");
        assert_eq!(out.matches("[DONE]").count(), 1, "{out}");
        // The usage the current upstream reported, for its own cost.
        assert_eq!(t.usage().unwrap().output, 1);
    }

    #[test]
    fn a_resumed_translation_drops_the_second_start_and_doubled_whitespace() {
        let mut t: Box<dyn Translator> = Box::new(to_anthropic(true, keep()));
        let mut out = Vec::new();
        t.feed(
            &sse(&[ROLE, &text_chunk("one "), &text_chunk("two ")]),
            &mut out,
        )
        .unwrap();
        assert_eq!(t.delivered(), Some("one two "));
        assert!(t.resume(openai_decoder()).is_none());
        let rest = [ROLE, &text_chunk(" three"), STOP, USAGE, "[DONE]"];
        t.feed(&sse(&rest), &mut out).unwrap();
        assert_eq!(t.end(&mut out), Ok(()));
        assert_eq!(t.delivered(), Some("one two three"));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("event: message_start").count(), 1, "{out}");
        assert_eq!(out.matches("event: message_stop").count(), 1, "{out}");
        // Two deltas before the break plus the continuation's one output token.
        assert!(out.contains("\"output_tokens\":3"), "{out}");
    }

    #[test]
    fn a_tool_call_is_not_continued() {
        let call = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#;
        let mut t = OpenAiPassthrough::new(false, keep());
        t.feed(&sse(&[ROLE, call]), &mut Vec::new()).unwrap();
        assert_eq!(t.delivered(), None);
        // Text is not kept unless asked for.
        let mut t = OpenAiPassthrough::new(false, Options::default());
        t.feed(&sse(&[ROLE, TEXT]), &mut Vec::new()).unwrap();
        assert_eq!(t.delivered(), None);
    }
}

#[cfg(test)]
mod insert_tests {
    use super::insert_before_end;

    #[test]
    fn inserts_only_before_the_marker_that_ends_the_output() {
        let mut out = b"data: {}\n\ndata: [DONE]\n\n".to_vec();
        assert!(insert_before_end(&mut out, b"data: [DONE]\n\n", b": c\n\n"));
        assert_eq!(out, b"data: {}\n\n: c\n\ndata: [DONE]\n\n");
        let mut cut = b"data: {}\n\n".to_vec();
        assert!(!insert_before_end(
            &mut cut,
            b"data: [DONE]\n\n",
            b": c\n\n"
        ));
        assert_eq!(cut, b"data: {}\n\n");
    }
}
