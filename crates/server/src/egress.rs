//! What one attempt sends upstream and how its answer becomes the client's: pass-through when
//! client and upstream speak the same shape, translation through the canonical types otherwise.
//! Every protocol decision is `switchyard_protocol`'s (`upstream_codec`, `ClientProtocol`);
//! this module adds deployment names to errors and does the sending.

use crate::request::ClientProtocol;
use bytes::Bytes;
use switchyard_protocol::client::StreamIdentity;
use switchyard_protocol::codec::anthropic_messages::ParsedMessagesRequest;
use switchyard_protocol::codec::openai_chat::{self, ParsedChatRequest, ParsedEmbeddingsRequest};
use switchyard_protocol::codec::structured::{self, AnswerStream};
use switchyard_protocol::translate::{OpenAiPassthrough, Options, Translate, Translator};
use switchyard_protocol::upstream::{
    upstream_codec, UpstreamAnswer, UpstreamCodec, UpstreamStream,
};
use switchyard_protocol::{ChatRequest, DecodeError, Message, Role, Unsupported};
use switchyard_providers::{AttemptError, Operation, Timeouts, Upstream};
use switchyard_router::Deployment;
use switchyard_types::{ErrorKind, ProviderKind, TokenUsage};

pub(crate) use switchyard_protocol::upstream::DEFAULT_MAX_TOKENS;

/// Largest upstream answer buffered for a non-streaming call.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A decoded client chat request, in the form its front door produced.
pub(crate) enum IngressRequest {
    /// From the OpenAI front door; its raw body is kept for pass-through.
    OpenAi(ParsedChatRequest),
    /// From the Anthropic front door; its raw body is kept for pass-through.
    Anthropic(ParsedMessagesRequest),
}

/// The codec of `d`'s protocol.
fn codec(d: &Deployment) -> &'static dyn UpstreamCodec {
    upstream_codec(d.kind())
}

impl IngressRequest {
    /// The canonical request.
    pub fn canonical(&self) -> &ChatRequest {
        match self {
            IngressRequest::OpenAi(p) => &p.request,
            IngressRequest::Anthropic(p) => &p.request,
        }
    }

    /// What the client asked for that the canonical request does not carry.
    fn untranslated(&self) -> &[String] {
        match self {
            IngressRequest::OpenAi(p) => &p.untranslated,
            IngressRequest::Anthropic(p) => &p.untranslated,
        }
    }

    /// Refuses, naming them, the fields a translation to `d` would lose.
    fn check_translatable(&self, d: &Deployment) -> Result<(), AttemptError> {
        match self.untranslated() {
            [] => Ok(()),
            fields => {
                // Member names get backticks; described items ("content blocks of type
                // `document`") already name theirs.
                let named: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        if f.contains(' ') {
                            f.clone()
                        } else {
                            format!("`{f}`")
                        }
                    })
                    .collect();
                Err(inexpressible(
                    d,
                    &Unsupported::new(codec(d).name(), named.join(", ")),
                ))
            }
        }
    }

    /// The client's protocol.
    pub fn dialect(&self) -> ClientProtocol {
        match self {
            IngressRequest::OpenAi(_) => ClientProtocol::OpenAiChat,
            IngressRequest::Anthropic(_) => ClientProtocol::AnthropicMessages,
        }
    }

    /// Whether `d` takes the client's body as it came (the client speaks its protocol).
    fn passthrough(&self, d: &Deployment) -> bool {
        codec(d).speaks(self.dialect())
    }

    /// The body of one attempt on `d`: the client's own (only `model` replaced, and for
    /// OpenAI streams usage forced on) when `d` speaks its protocol, else the translation,
    /// which refuses what it cannot carry.
    pub fn upstream_body(&self, d: &Deployment) -> Result<Bytes, AttemptError> {
        if self.passthrough(d) {
            return Ok(Bytes::from(match self {
                IngressRequest::OpenAi(p) => {
                    p.passthrough_body(&d.upstream_model, p.request.stream)
                }
                IngressRequest::Anthropic(p) => p.passthrough_body(&d.upstream_model),
            }));
        }
        self.check_translatable(d)?;
        codec(d)
            .encode_request(self.canonical(), &d.upstream_model)
            .map(Bytes::from)
            .map_err(|e| inexpressible(d, &e))
    }

    /// A complete upstream answer, as the client's body plus the usage it reports.
    pub fn client_body(
        &self,
        d: &Deployment,
        upstream: Bytes,
    ) -> Result<(Bytes, Option<TokenUsage>), AttemptError> {
        if self.passthrough(d) {
            let usage = match self {
                IngressRequest::OpenAi(_) => openai_chat::usage_from_response(&upstream),
                // Forwarded as it came (thinking blocks, citations and all); read for usage.
                IngressRequest::Anthropic(_) => Some(
                    codec(d)
                        .decode_response(&upstream)
                        .map_err(|e| unreadable(d, &e))?
                        .usage,
                ),
            };
            return Ok((upstream, usage));
        }
        let mut response = codec(d)
            .decode_response(&upstream)
            .map_err(|e| unreadable(d, &e))?;
        if let Some(tool) = self.answer_tool(d) {
            structured::answer_from_tool(&mut response, tool);
        }
        // Bedrock names neither; Anthropic and Gemini send no creation time.
        if response.id.is_empty() {
            response.id = generated_id();
        }
        if response.model.is_empty() {
            response.model = d.upstream_model.clone();
        }
        if response.created == 0 {
            response.created = unix_now();
        }
        let body = self.dialect().encode_response(&response);
        Ok((Bytes::from(body), Some(response.usage)))
    }

    /// The body that continues, on `d`, an answer of which the client already has
    /// `delivered` (`spent` output tokens): the request with that text as a trailing
    /// assistant message, and its output cap less what was spent. With nothing delivered it
    /// is the request itself, in `d`'s protocol.
    pub fn continuation_body(
        &self,
        d: &Deployment,
        delivered: &str,
        spent: u64,
    ) -> Result<Bytes, AttemptError> {
        // Anthropic refuses a prefill that ends in whitespace; the translator drops the
        // continuation's leading whitespace when the client's text already ends in some.
        let prefill = delivered.trim_end();
        // The continuation is a translation: it must not lose what the client asked for.
        self.check_translatable(d)?;
        if prefill.is_empty() {
            return codec(d)
                .encode_request(self.canonical(), &d.upstream_model)
                .map(Bytes::from)
                .map_err(|e| inexpressible(d, &e));
        }
        let mut req = self.canonical().clone();
        req.messages.push(Message::text(Role::Assistant, prefill));
        if let Some(max) = req.max_tokens {
            let left = u64::from(max).saturating_sub(spent).max(1);
            req.max_tokens = Some(u32::try_from(left).unwrap_or(max));
        }
        codec(d)
            .encode_continuation(&req, &d.upstream_model)
            .map(Bytes::from)
            .map_err(|e| inexpressible(d, &e))
    }

    /// The stream translator for one attempt on `d`.
    pub fn translator(
        &self,
        d: &Deployment,
        options: Options,
    ) -> Result<Box<dyn Translator>, AttemptError> {
        let include_usage = self.canonical().include_usage;
        // An Anthropic pass-through's stream is still translated (event for event the same
        // shape), which keeps its continuation on another deployment possible.
        if let (true, IngressRequest::OpenAi(_)) = (self.passthrough(d), self) {
            return Ok(Box::new(OpenAiPassthrough::new(include_usage, options)));
        }
        let client = self.dialect().stream_encoder(
            include_usage,
            StreamIdentity {
                id: generated_id(),
                model: d.upstream_model.clone(),
                created: unix_now(),
            },
        );
        let mut upstream = codec(d).stream_decoder();
        if let Some(tool) = self.answer_tool(d) {
            upstream = Box::new(AnswerStream::new(upstream, tool));
        }
        Ok(Box::new(Translate::new(upstream, client, options)))
    }

    /// The tool `d`'s protocol gets this request's JSON response format as, whose call is
    /// the answer text; `None` when the format goes natively (or there is none).
    pub fn answer_tool(&self, d: &Deployment) -> Option<&str> {
        if self.passthrough(d) {
            return None;
        }
        codec(d).answer_tool(self.canonical(), &d.upstream_model)
    }
}

/// Seconds since the Unix epoch, for protocols that send no creation time.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh stream decoder for `kind`'s protocol (a continuation's).
pub(crate) fn stream_decoder(kind: ProviderKind) -> Box<dyn UpstreamStream> {
    upstream_codec(kind).stream_decoder()
}

/// The request asks for something `d`'s protocol cannot express: the client's 400.
fn inexpressible(d: &Deployment, e: &Unsupported) -> AttemptError {
    AttemptError::new(
        ErrorKind::InvalidRequest,
        format!("deployment '{}': {e}", d.id),
    )
}

/// `d`'s provider sent an answer that is not its protocol.
fn unreadable(d: &Deployment, e: &DecodeError) -> AttemptError {
    AttemptError::new(
        ErrorKind::UpstreamProtocol,
        format!(
            "provider '{}' sent a response that could not be read: {}",
            d.provider.id, e.message
        ),
    )
}

/// A response id for protocols that send none.
fn generated_id() -> String {
    format!("chatcmpl-sy{:024x}", rand::random::<u128>() >> 32)
}

/// One embeddings attempt on `d`: one upstream call per body the codec asks for (Bedrock
/// InvokeModel takes one per Titan input), then the codec's answer for the OpenAI client.
pub(crate) async fn embeddings_attempt(
    upstream: &Upstream,
    parsed: &ParsedEmbeddingsRequest,
    d: &Deployment,
    timeouts: Timeouts,
) -> Result<(Bytes, Option<TokenUsage>), AttemptError> {
    let codec = codec(d);
    let bodies = codec
        .encode_embeddings(parsed, &d.upstream_model)
        .map_err(|e| inexpressible(d, &e))?;
    let mut answers = Vec::with_capacity(bodies.len());
    for body in bodies {
        let sent = upstream
            .send(
                &d.provider,
                &d.endpoints,
                Operation::Embeddings,
                Bytes::from(body),
                timeouts,
            )
            .await?;
        // Some protocols report usage in headers (Cohere on Bedrock).
        let headers = sent.response.headers().clone();
        answers.push((headers, sent.body(&d.provider, MAX_RESPONSE_BYTES).await?));
    }
    let views: Vec<UpstreamAnswer<'_>> = answers
        .iter()
        .map(|(headers, body)| UpstreamAnswer { headers, body })
        .collect();
    let answer = codec
        .decode_embeddings(parsed, &d.upstream_model, &views)
        .map_err(|e| unreadable(d, &e))?;
    let body = match answer.body {
        Some(body) => Bytes::from(body),
        // Forwarded as it came: the one upstream answer.
        None => answers
            .pop()
            .map(|(_, body)| body)
            .ok_or_else(|| unreadable(d, &DecodeError::new("no answer")))?,
    };
    Ok((body, answer.usage))
}

/// The output cap every request to `d` carries when the client set none.
pub(crate) fn default_output_cap(d: &Deployment) -> Option<u32> {
    codec(d).default_output_cap()
}

/// Whether `d` can answer a token count (Anthropic's `count_tokens`, Gemini's `countTokens`).
pub(crate) fn counts_tokens(d: &Deployment) -> bool {
    codec(d).counts_tokens()
}

/// The body of a token count on `d`.
pub(crate) fn count_tokens_body(req: &ChatRequest, d: &Deployment) -> Result<Bytes, AttemptError> {
    codec(d)
        .encode_count_tokens(req, &d.upstream_model)
        .map(Bytes::from)
        .map_err(|e| inexpressible(d, &e))
}

/// Reads `d`'s token count answer.
pub(crate) fn count_tokens_answer(d: &Deployment, body: &[u8]) -> Result<u64, AttemptError> {
    codec(d)
        .decode_count_tokens(body)
        .map_err(|e| unreadable(d, &e))
}
