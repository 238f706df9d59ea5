//! Upstream wire protocols, dispatched in one place.
//!
//! [`upstream_codec`] maps every [`ProviderKind`] to the [`UpstreamCodec`] of the protocol it
//! speaks; the server only ever talks to that trait, so a new upstream protocol is a codec
//! module plus one arm here (and its URL/auth in `providers::dialect`), with no server edit.
//! Framing (SSE or AWS event stream) is part of the codec's stream decoder for the same reason.

use crate::codec::bedrock_converse::{EventMessage, EventStreamDecoder};
use crate::codec::openai_chat::ParsedEmbeddingsRequest;
use crate::codec::{anthropic_messages, bedrock_converse, gemini, openai_chat};
use crate::sse::SseDecoder;
use crate::translate::TranslateError;
use crate::{
    ChatRequest, ChatResponse, DecodeError, EmbeddingsResponse, StreamEvent, Unsupported,
    UpstreamError, UpstreamStreamError,
};
use http::HeaderMap;
use switchyard_types::{ProviderKind, TokenUsage};

/// `max_tokens` sent to protocols that require it when the client gave none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The codec of the wire protocol `kind` speaks. Exhaustive on purpose: a new kind does not
/// compile until it names its protocol.
pub fn upstream_codec(kind: ProviderKind) -> &'static dyn UpstreamCodec {
    match kind {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            &OpenAiChat
        }
        ProviderKind::Anthropic => &AnthropicMessages,
        ProviderKind::Bedrock => &BedrockConverse,
        ProviderKind::Gemini => &Google(Surface::GeminiApi),
        ProviderKind::Vertex => &Google(Surface::Vertex),
    }
}

/// Everything the gateway does with one upstream wire protocol, as pure functions.
pub trait UpstreamCodec: Send + Sync {
    /// The protocol's name, as in [`Unsupported`] errors.
    fn name(&self) -> &'static str;

    /// Whether the protocol is the OpenAI chat shape, so an OpenAI client's body (and the
    /// answer) can pass through with only `model` replaced.
    fn is_openai_shaped(&self) -> bool;

    /// Whether a `client` body can go to this protocol as it came (only `model` replaced)
    /// and the complete answer come back as it came: the client speaks this protocol.
    fn speaks(&self, client: crate::client::ClientProtocol) -> bool;

    /// A canonical chat request → the upstream body for `upstream_model`.
    fn encode_request(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported>;

    /// The output cap this protocol's requests carry when the client set none (Anthropic
    /// requires one), so the most an uncapped request can produce there.
    fn default_output_cap(&self) -> Option<u32> {
        None
    }

    /// Whether the protocol continues a trailing assistant message (a prefill) rather than
    /// answering after it: the default of a deployment's `accepts_prefill`.
    fn accepts_prefill(&self) -> bool {
        false
    }

    /// The body that continues `req`'s answer, whose last message is the assistant text
    /// delivered so far (see [`accepts_prefill`](UpstreamCodec::accepts_prefill)).
    fn encode_continuation(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        self.encode_request(req, upstream_model)
    }

    /// The tool `encode_request` sends `req`'s JSON response format as, when this protocol
    /// has no native way to say it to `upstream_model`: its call is the answer text (see
    /// [`structured`](crate::codec::structured)).
    fn answer_tool<'a>(&self, _req: &'a ChatRequest, _upstream_model: &str) -> Option<&'a str> {
        None
    }

    /// A complete (non-streamed) chat answer → canonical.
    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, DecodeError>;

    /// A fresh decoder for one streamed answer, framing included.
    fn stream_decoder(&self) -> Box<dyn UpstreamStream>;

    /// The media type of the protocol's streams (the `accept` of a streaming call).
    fn stream_media_type(&self) -> &'static str;

    /// An error answer (status, headers, body) → kind and message.
    fn decode_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError;

    /// The upstream bodies of one embeddings request, one call each (Bedrock Titan takes one
    /// input per call).
    fn encode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
    ) -> Result<Vec<Vec<u8>>, Unsupported>;

    /// The answers to [`encode_embeddings`](UpstreamCodec::encode_embeddings)' bodies, in
    /// order → the OpenAI client's answer.
    fn decode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
        answers: &[UpstreamAnswer<'_>],
    ) -> Result<ClientAnswer, DecodeError>;

    // Token counting: most protocols have none, so that is the default; the ones that
    // count override all three.

    /// Whether the protocol has a token-counting endpoint.
    fn counts_tokens(&self) -> bool {
        false
    }

    /// The body of a token count for `req`.
    fn encode_count_tokens(
        &self,
        _req: &ChatRequest,
        _upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        Err(Unsupported::new(self.name(), "token counting"))
    }

    /// A token count answer → the input tokens.
    fn decode_count_tokens(&self, _body: &[u8]) -> Result<u64, DecodeError> {
        Err(DecodeError::new(format!(
            "the {} protocol has no token counting",
            self.name()
        )))
    }
}

/// One upstream answer: its headers and complete body.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamAnswer<'a> {
    /// The response headers (some protocols report usage there).
    pub headers: &'a HeaderMap,
    /// The response body.
    pub body: &'a [u8],
}

/// What the client receives for a translated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientAnswer {
    /// The client's body; `None` to forward the (single) upstream body as it came.
    pub body: Option<Vec<u8>>,
    /// The usage reported, when the upstream reports any.
    pub usage: Option<TokenUsage>,
}

/// One frame's canonical events, or why the frame could not be read (an upstream error event
/// already mapped to its kind).
pub type Frame = Result<Vec<StreamEvent>, TranslateError>;

/// An upstream stream decoder: bytes in, canonical events out, one frame at a time.
pub trait UpstreamStream: Send {
    /// Buffers bytes as they arrive.
    fn push(&mut self, chunk: &[u8]);
    /// The next complete frame; `Ok(None)` when more bytes are needed, `Err` when the
    /// framing itself is broken.
    fn next_frame(&mut self) -> Result<Option<Frame>, TranslateError>;
    /// At the end of the body: a last frame that had no terminator, if any.
    fn finish(&mut self) -> Option<Frame>;
    /// Whether the upstream's answer is complete.
    fn is_done(&self) -> bool;
}

/// A decode failure becomes the upstream's own error when it reported one in the stream.
fn frame_error(e: DecodeError, upstream: Option<&UpstreamStreamError>) -> TranslateError {
    match upstream {
        Some(u) => TranslateError::Upstream(u.kind, u.message.clone()),
        None => TranslateError::Malformed(e.message),
    }
}

/// The event decoding of an SSE-framed protocol.
trait SseEvents: Send {
    fn decode(&mut self, event: Option<&str>, data: &[u8])
        -> Result<Vec<StreamEvent>, DecodeError>;
    fn upstream_error(&self) -> Option<&UpstreamStreamError>;
    fn is_done(&self) -> bool;
}

impl SseEvents for openai_chat::StreamDecoder {
    fn decode(&mut self, _: Option<&str>, data: &[u8]) -> Result<Vec<StreamEvent>, DecodeError> {
        openai_chat::StreamDecoder::decode(self, data)
    }
    fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        openai_chat::StreamDecoder::upstream_error(self)
    }
    fn is_done(&self) -> bool {
        openai_chat::StreamDecoder::is_done(self)
    }
}

impl SseEvents for anthropic_messages::StreamDecoder {
    fn decode(
        &mut self,
        event: Option<&str>,
        data: &[u8],
    ) -> Result<Vec<StreamEvent>, DecodeError> {
        anthropic_messages::StreamDecoder::decode(self, event, data)
    }
    fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        anthropic_messages::StreamDecoder::upstream_error(self)
    }
    fn is_done(&self) -> bool {
        anthropic_messages::StreamDecoder::is_done(self)
    }
}

impl SseEvents for gemini::StreamDecoder {
    fn decode(&mut self, _: Option<&str>, data: &[u8]) -> Result<Vec<StreamEvent>, DecodeError> {
        gemini::StreamDecoder::decode(self, data)
    }
    fn upstream_error(&self) -> Option<&UpstreamStreamError> {
        gemini::StreamDecoder::upstream_error(self)
    }
    fn is_done(&self) -> bool {
        gemini::StreamDecoder::is_done(self)
    }
}

/// An SSE-framed stream.
struct SseStream<D> {
    frames: SseDecoder,
    events: D,
}

impl<D: SseEvents> SseStream<D> {
    fn decode(&mut self, event: Option<&str>, data: &[u8]) -> Frame {
        self.events
            .decode(event, data)
            .map_err(|e| frame_error(e, self.events.upstream_error()))
    }
}

impl<D: SseEvents> UpstreamStream for SseStream<D> {
    fn push(&mut self, chunk: &[u8]) {
        self.frames.push(chunk);
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, TranslateError> {
        let next = self
            .frames
            .next_event()
            .map_err(|e| TranslateError::Malformed(e.message))?;
        Ok(next.map(|ev| self.decode(ev.event.as_deref(), ev.data.as_bytes())))
    }

    fn finish(&mut self) -> Option<Frame> {
        let ev = self.frames.finish()?;
        Some(self.decode(ev.event.as_deref(), ev.data.as_bytes()))
    }

    fn is_done(&self) -> bool {
        self.events.is_done()
    }
}

/// An SSE-framed stream decoded by `events`.
fn sse<D: SseEvents + 'static>(events: D) -> Box<dyn UpstreamStream> {
    Box::new(SseStream {
        frames: SseDecoder::new(),
        events,
    })
}

/// A Bedrock ConverseStream: AWS event-stream frames.
struct EventStream {
    frames: EventStreamDecoder,
    events: bedrock_converse::StreamDecoder,
}

impl EventStream {
    fn decode(&mut self, msg: &EventMessage) -> Frame {
        self.events
            .decode(msg)
            .map_err(|e| frame_error(e, self.events.upstream_error()))
    }
}

impl UpstreamStream for EventStream {
    fn push(&mut self, chunk: &[u8]) {
        self.frames.push(chunk);
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, TranslateError> {
        let next = self
            .frames
            .next_message()
            .map_err(|e| TranslateError::Malformed(e.message))?;
        Ok(next.map(|msg| self.decode(&msg)))
    }

    fn finish(&mut self) -> Option<Frame> {
        // Binary frames carry their length: a partial one at the end is simply truncation.
        None
    }

    fn is_done(&self) -> bool {
        self.events.is_done()
    }
}

const SSE: &str = "text/event-stream";

/// A canonical embeddings answer → the OpenAI client's body; unknown counts (the Gemini API
/// reports none) stay unknown rather than zero.
fn embeddings_answer(
    parsed: &ParsedEmbeddingsRequest,
    upstream_model: &str,
    mut response: EmbeddingsResponse,
) -> ClientAnswer {
    if response.model.is_empty() {
        response.model = upstream_model.to_owned();
    }
    let usage = (response.input_tokens > 0).then(|| TokenUsage {
        input: response.input_tokens,
        ..TokenUsage::default()
    });
    ClientAnswer {
        body: Some(openai_chat::encode_embeddings_response(
            &response,
            parsed.request.base64,
        )),
        usage,
    }
}

/// The single answer of a protocol that makes one call per request.
fn only_answer<'a>(answers: &[UpstreamAnswer<'a>]) -> Result<&'a [u8], DecodeError> {
    match answers {
        [one] => Ok(one.body),
        _ => Err(DecodeError::new(format!(
            "expected one upstream answer, got {}",
            answers.len()
        ))),
    }
}

/// Reads a count from a JSON answer's top-level `field`.
fn count_field(body: &[u8], field: &str) -> Result<u64, DecodeError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::new(e.to_string()))?;
    v.get(field)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| DecodeError::new("no token count in the answer"))
}

/// OpenAI chat completions: OpenAI, Azure OpenAI and OpenAI-compatible servers.
struct OpenAiChat;

impl UpstreamCodec for OpenAiChat {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn is_openai_shaped(&self) -> bool {
        true
    }

    fn speaks(&self, client: crate::client::ClientProtocol) -> bool {
        client == crate::client::ClientProtocol::OpenAiChat
    }

    fn encode_request(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        Ok(openai_chat::encode_request(req, upstream_model))
    }

    fn encode_continuation(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        Ok(openai_chat::encode_continuation(req, upstream_model))
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, DecodeError> {
        openai_chat::decode_response(body)
    }

    fn stream_decoder(&self) -> Box<dyn UpstreamStream> {
        sse(openai_chat::StreamDecoder::new())
    }

    fn stream_media_type(&self) -> &'static str {
        SSE
    }

    fn decode_error(&self, status: u16, _: &HeaderMap, body: &[u8]) -> UpstreamError {
        openai_chat::decode_error(status, body)
    }

    fn encode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
    ) -> Result<Vec<Vec<u8>>, Unsupported> {
        Ok(vec![parsed.passthrough_body(upstream_model)])
    }

    fn decode_embeddings(
        &self,
        _: &ParsedEmbeddingsRequest,
        _: &str,
        answers: &[UpstreamAnswer<'_>],
    ) -> Result<ClientAnswer, DecodeError> {
        // The client speaks this shape too: the answer passes through.
        Ok(ClientAnswer {
            body: None,
            usage: openai_chat::embeddings_usage(only_answer(answers)?),
        })
    }
}

/// Anthropic Messages.
struct AnthropicMessages;

impl UpstreamCodec for AnthropicMessages {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn is_openai_shaped(&self) -> bool {
        false
    }

    fn speaks(&self, client: crate::client::ClientProtocol) -> bool {
        client == crate::client::ClientProtocol::AnthropicMessages
    }

    fn encode_request(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        anthropic_messages::encode_request(req, upstream_model, DEFAULT_MAX_TOKENS)
    }

    fn accepts_prefill(&self) -> bool {
        true
    }

    fn default_output_cap(&self) -> Option<u32> {
        Some(DEFAULT_MAX_TOKENS)
    }

    fn answer_tool<'a>(&self, req: &'a ChatRequest, upstream_model: &str) -> Option<&'a str> {
        anthropic_messages::answer_tool(req, upstream_model)
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, DecodeError> {
        anthropic_messages::decode_response(body)
    }

    fn stream_decoder(&self) -> Box<dyn UpstreamStream> {
        sse(anthropic_messages::StreamDecoder::new())
    }

    fn stream_media_type(&self) -> &'static str {
        SSE
    }

    fn decode_error(&self, status: u16, _: &HeaderMap, body: &[u8]) -> UpstreamError {
        anthropic_messages::decode_error(status, body)
    }

    fn encode_embeddings(
        &self,
        _: &ParsedEmbeddingsRequest,
        _: &str,
    ) -> Result<Vec<Vec<u8>>, Unsupported> {
        Err(Unsupported::new(self.name(), "embeddings"))
    }

    fn decode_embeddings(
        &self,
        _: &ParsedEmbeddingsRequest,
        _: &str,
        _: &[UpstreamAnswer<'_>],
    ) -> Result<ClientAnswer, DecodeError> {
        Err(DecodeError::new("the anthropic protocol has no embeddings"))
    }

    fn counts_tokens(&self) -> bool {
        true
    }

    fn encode_count_tokens(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        let encoded = self.encode_request(req, upstream_model)?;
        let mut body: serde_json::Value = match serde_json::from_slice(&encoded) {
            Ok(v) => v,
            Err(_) => return Ok(encoded),
        };
        // count_tokens takes the messages request without its generation settings.
        if let Some(o) = body.as_object_mut() {
            for k in [
                "max_tokens",
                "stream",
                "temperature",
                "top_p",
                "stop_sequences",
                "metadata",
            ] {
                o.remove(k);
            }
        }
        Ok(body.to_string().into_bytes())
    }

    fn decode_count_tokens(&self, body: &[u8]) -> Result<u64, DecodeError> {
        count_field(body, "input_tokens")
    }
}

/// Bedrock Converse (chat) and InvokeModel (Titan and Cohere embeddings).
struct BedrockConverse;

impl UpstreamCodec for BedrockConverse {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn is_openai_shaped(&self) -> bool {
        false
    }

    fn speaks(&self, client: crate::client::ClientProtocol) -> bool {
        let _ = client;
        false
    }

    fn encode_request(&self, req: &ChatRequest, _: &str) -> Result<Vec<u8>, Unsupported> {
        // The model id goes in the URL.
        bedrock_converse::encode_request(req)
    }

    fn answer_tool<'a>(&self, req: &'a ChatRequest, _: &str) -> Option<&'a str> {
        crate::codec::structured::answer_tool_name(req)
    }

    fn accepts_prefill(&self) -> bool {
        // Converse continues a trailing assistant message (Claude models do; others may not,
        // which `accepts_prefill = false` on the deployment says).
        true
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, DecodeError> {
        bedrock_converse::decode_response(body)
    }

    fn stream_decoder(&self) -> Box<dyn UpstreamStream> {
        Box::new(EventStream {
            frames: EventStreamDecoder::new(),
            events: bedrock_converse::StreamDecoder::new(),
        })
    }

    fn stream_media_type(&self) -> &'static str {
        "application/vnd.amazon.eventstream"
    }

    fn decode_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
        let error_type = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok());
        bedrock_converse::decode_error(status, error_type, body)
    }

    fn encode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
    ) -> Result<Vec<Vec<u8>>, Unsupported> {
        bedrock_converse::encode_embeddings_request(upstream_model, &parsed.request)
    }

    fn decode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
        answers: &[UpstreamAnswer<'_>],
    ) -> Result<ClientAnswer, DecodeError> {
        let bodies: Vec<&[u8]> = answers.iter().map(|a| a.body).collect();
        let mut response = bedrock_converse::decode_embeddings_response(upstream_model, &bodies)?;
        if response.input_tokens == 0 {
            // Cohere on Bedrock reports its input tokens only in this header.
            response.input_tokens = answers
                .iter()
                .filter_map(|a| a.headers.get("x-amzn-bedrock-input-token-count"))
                .filter_map(|v| v.to_str().ok()?.parse::<u64>().ok())
                .sum();
        }
        Ok(embeddings_answer(parsed, upstream_model, response))
    }
}

/// Which of Google's two surfaces of `generateContent`; they differ only for embeddings.
#[derive(Debug, Clone, Copy)]
enum Surface {
    /// The Gemini API: `batchEmbedContents`.
    GeminiApi,
    /// Vertex AI: text-embedding models through `predict`.
    Vertex,
}

/// Google `generateContent`: the Gemini API and Vertex AI.
struct Google(Surface);

impl UpstreamCodec for Google {
    fn name(&self) -> &'static str {
        match self.0 {
            Surface::GeminiApi => "gemini",
            Surface::Vertex => "vertex",
        }
    }

    fn is_openai_shaped(&self) -> bool {
        false
    }

    fn speaks(&self, client: crate::client::ClientProtocol) -> bool {
        let _ = client;
        false
    }

    fn encode_request(&self, req: &ChatRequest, _: &str) -> Result<Vec<u8>, Unsupported> {
        // The model goes in the URL.
        gemini::encode_request(req)
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, DecodeError> {
        gemini::decode_response(body)
    }

    fn stream_decoder(&self) -> Box<dyn UpstreamStream> {
        sse(gemini::StreamDecoder::new())
    }

    fn stream_media_type(&self) -> &'static str {
        SSE
    }

    fn decode_error(&self, status: u16, _: &HeaderMap, body: &[u8]) -> UpstreamError {
        gemini::decode_error(status, body)
    }

    fn encode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
    ) -> Result<Vec<Vec<u8>>, Unsupported> {
        let body = match self.0 {
            Surface::GeminiApi => {
                gemini::encode_embeddings_request(upstream_model, &parsed.request)
            }
            Surface::Vertex => gemini::encode_vertex_embeddings_request(&parsed.request),
        }?;
        Ok(vec![body])
    }

    fn decode_embeddings(
        &self,
        parsed: &ParsedEmbeddingsRequest,
        upstream_model: &str,
        answers: &[UpstreamAnswer<'_>],
    ) -> Result<ClientAnswer, DecodeError> {
        let body = only_answer(answers)?;
        let response = match self.0 {
            Surface::GeminiApi => gemini::decode_embeddings_response(body),
            Surface::Vertex => gemini::decode_vertex_embeddings_response(body),
        }?;
        Ok(embeddings_answer(parsed, upstream_model, response))
    }

    fn counts_tokens(&self) -> bool {
        true
    }

    fn encode_count_tokens(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> Result<Vec<u8>, Unsupported> {
        let encoded = gemini::encode_request(req)?;
        let mut body: serde_json::Value = match serde_json::from_slice(&encoded) {
            Ok(v) => v,
            Err(_) => return Ok(encoded),
        };
        // countTokens wraps a whole generateContent request with its model.
        let Some(o) = body.as_object_mut() else {
            return Ok(encoded);
        };
        o.insert("model".into(), format!("models/{upstream_model}").into());
        Ok(serde_json::json!({ "generateContentRequest": body })
            .to_string()
            .into_bytes())
    }

    fn decode_count_tokens(&self, body: &[u8]) -> Result<u64, DecodeError> {
        count_field(body, "totalTokens")
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
