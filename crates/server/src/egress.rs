//! What one attempt sends upstream and how its answer becomes the client's: pass-through when
//! client and upstream speak the same shape, translation through the canonical types otherwise.

use crate::relay::{
    unix_now, ClientEncoder, OpenAiPassthrough, Translate, Translator, UpstreamDecoder,
};
use crate::request::Dialect;
use bytes::Bytes;
use switchyard_protocol::codec::openai_chat::{self, ParsedChatRequest, ParsedEmbeddingsRequest};
use switchyard_protocol::codec::{anthropic_messages, bedrock_converse, gemini};
use switchyard_protocol::{ChatRequest, ChatResponse, DecodeError, Unsupported};
use switchyard_providers::{AttemptError, Operation, Timeouts, Upstream};
use switchyard_router::Deployment;
use switchyard_types::{ErrorKind, ProviderKind, TokenUsage};

/// `max_tokens` sent to protocols that require it when the client gave none.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Largest upstream answer buffered for a non-streaming call.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Whether `d`'s protocol can count a request's tokens.
pub(crate) fn counts_tokens(d: &Deployment) -> bool {
    matches!(
        d.kind(),
        ProviderKind::Anthropic | ProviderKind::Gemini | ProviderKind::Vertex
    )
}

/// A decoded client chat request, in the form its front door produced.
pub(crate) enum IngressRequest {
    /// From the OpenAI front door; its raw body is kept for pass-through.
    OpenAi(ParsedChatRequest),
    /// From the Anthropic front door.
    Anthropic(ChatRequest),
}

impl IngressRequest {
    /// The canonical request.
    pub fn canonical(&self) -> &ChatRequest {
        match self {
            IngressRequest::OpenAi(p) => &p.request,
            IngressRequest::Anthropic(r) => r,
        }
    }

    /// The client's protocol.
    pub fn dialect(&self) -> Dialect {
        match self {
            IngressRequest::OpenAi(_) => Dialect::OpenAi,
            IngressRequest::Anthropic(_) => Dialect::Anthropic,
        }
    }

    /// Whether `d` can take this request's body as it came.
    fn passes_through(&self, d: &Deployment) -> bool {
        matches!(self, IngressRequest::OpenAi(_)) && d.kind().is_openai_shaped()
    }

    /// The body of one attempt on `d`.
    pub fn upstream_body(&self, d: &Deployment) -> Result<Bytes, AttemptError> {
        if let IngressRequest::OpenAi(p) = self {
            if self.passes_through(d) {
                return Ok(Bytes::from(
                    p.passthrough_body(&d.upstream_model, p.request.stream),
                ));
            }
        }
        let req = self.canonical();
        let body = match d.kind() {
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
                Ok(openai_chat::encode_request(req, &d.upstream_model))
            }
            ProviderKind::Anthropic => {
                anthropic_messages::encode_request(req, &d.upstream_model, DEFAULT_MAX_TOKENS)
            }
            ProviderKind::Bedrock => bedrock_converse::encode_request(req),
            ProviderKind::Gemini | ProviderKind::Vertex => gemini::encode_request(req),
        };
        body.map(Bytes::from).map_err(|e| inexpressible(d, &e))
    }

    /// A complete upstream answer, as the client's body plus the usage it reports.
    pub fn client_body(
        &self,
        d: &Deployment,
        upstream: Bytes,
    ) -> Result<(Bytes, Option<TokenUsage>), AttemptError> {
        if self.passes_through(d) {
            let usage = openai_chat::usage_from_response(&upstream);
            return Ok((upstream, usage));
        }
        let mut response = decode_response(d, &upstream)?;
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
        let body = match self.dialect() {
            Dialect::OpenAi => openai_chat::encode_response(&response),
            Dialect::Anthropic => anthropic_messages::encode_response(&response),
        };
        Ok((Bytes::from(body), Some(response.usage)))
    }

    /// The stream translator for one attempt on `d`.
    pub fn translator(&self, d: &Deployment) -> Result<Box<dyn Translator>, AttemptError> {
        let include_usage = self.canonical().include_usage;
        if self.passes_through(d) {
            return Ok(Box::new(OpenAiPassthrough::new(include_usage)));
        }
        let client = ClientEncoder::new(
            self.dialect(),
            include_usage,
            generated_id(),
            d.upstream_model.clone(),
        );
        Ok(Box::new(Translate::new(
            UpstreamDecoder::for_kind(d.kind()),
            client,
        )))
    }
}

/// An upstream's complete answer in its own protocol → canonical.
fn decode_response(d: &Deployment, body: &[u8]) -> Result<ChatResponse, AttemptError> {
    let decoded: Result<ChatResponse, DecodeError> = match d.kind() {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            openai_chat::decode_response(body)
        }
        ProviderKind::Anthropic => anthropic_messages::decode_response(body),
        ProviderKind::Bedrock => bedrock_converse::decode_response(body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::decode_response(body),
    };
    decoded.map_err(|e| {
        AttemptError::new(
            ErrorKind::UpstreamProtocol,
            format!(
                "provider '{}' sent a response that could not be read: {}",
                d.provider.id, e.message
            ),
        )
    })
}

/// The request asks for something `d`'s protocol cannot express: the client's 400.
fn inexpressible(d: &Deployment, e: &Unsupported) -> AttemptError {
    AttemptError::new(
        ErrorKind::InvalidRequest,
        format!("deployment '{}': {e}", d.id),
    )
}

/// A response id for protocols that send none.
fn generated_id() -> String {
    format!("chatcmpl-sy{:024x}", rand::random::<u128>() >> 32)
}

/// One embeddings attempt on `d`: the OpenAI-shaped body passes through; other protocols are
/// translated (Bedrock InvokeModel takes one call per Titan input or Cohere batch).
pub(crate) async fn embeddings_attempt(
    upstream: &Upstream,
    parsed: &ParsedEmbeddingsRequest,
    d: &Deployment,
    timeouts: Timeouts,
) -> Result<(Bytes, Option<TokenUsage>), AttemptError> {
    let req = &parsed.request;
    let send = |body: Vec<u8>| {
        upstream.send(
            &d.provider,
            &d.endpoints,
            Operation::Embeddings,
            Bytes::from(body),
            timeouts,
        )
    };
    let mut response = match d.kind() {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            let sent = send(parsed.passthrough_body(&d.upstream_model)).await?;
            let body = sent.body(&d.provider, MAX_RESPONSE_BYTES).await?;
            let usage = openai_chat::embeddings_usage(&body);
            return Ok((body, usage));
        }
        ProviderKind::Bedrock => {
            let bodies = bedrock_converse::encode_embeddings_request(&d.upstream_model, req)
                .map_err(|e| inexpressible(d, &e))?;
            let mut answers = Vec::with_capacity(bodies.len());
            let mut header_tokens = 0;
            for body in bodies {
                let sent = send(body).await?;
                // Cohere on Bedrock reports its input tokens only in this header.
                header_tokens += sent
                    .response
                    .headers()
                    .get("x-amzn-bedrock-input-token-count")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                answers.push(sent.body(&d.provider, MAX_RESPONSE_BYTES).await?);
            }
            let slices: Vec<&[u8]> = answers.iter().map(|b| b.as_ref()).collect();
            let mut response =
                bedrock_converse::decode_embeddings_response(&d.upstream_model, &slices)
                    .map_err(|e| unreadable(d, &e))?;
            if response.input_tokens == 0 {
                response.input_tokens = header_tokens;
            }
            response
        }
        ProviderKind::Gemini => {
            let body = gemini::encode_embeddings_request(&d.upstream_model, req)
                .map_err(|e| inexpressible(d, &e))?;
            let answer = send(body)
                .await?
                .body(&d.provider, MAX_RESPONSE_BYTES)
                .await?;
            gemini::decode_embeddings_response(&answer).map_err(|e| unreadable(d, &e))?
        }
        ProviderKind::Vertex => {
            let body =
                gemini::encode_vertex_embeddings_request(req).map_err(|e| inexpressible(d, &e))?;
            let answer = send(body)
                .await?
                .body(&d.provider, MAX_RESPONSE_BYTES)
                .await?;
            gemini::decode_vertex_embeddings_response(&answer).map_err(|e| unreadable(d, &e))?
        }
        ProviderKind::Anthropic => {
            return Err(AttemptError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "deployment '{}': the anthropic protocol has no embeddings endpoint",
                    d.id
                ),
            ))
        }
    };
    if response.model.is_empty() {
        response.model = d.upstream_model.clone();
    }
    let usage = TokenUsage {
        input: response.input_tokens,
        ..TokenUsage::default()
    };
    // Unknown counts (the Gemini API reports none) stay unknown rather than zero.
    let usage = (response.input_tokens > 0).then_some(usage);
    Ok((
        Bytes::from(openai_chat::encode_embeddings_response(
            &response, req.base64,
        )),
        usage,
    ))
}

fn unreadable(d: &Deployment, e: &DecodeError) -> AttemptError {
    AttemptError::new(
        ErrorKind::UpstreamProtocol,
        format!(
            "provider '{}' sent a response that could not be read: {}",
            d.provider.id, e.message
        ),
    )
}

/// The body of a token count on `d` (Anthropic's `count_tokens`, Gemini's `countTokens`).
pub(crate) fn count_tokens_body(req: &ChatRequest, d: &Deployment) -> Result<Bytes, AttemptError> {
    let encoded = match d.kind() {
        ProviderKind::Anthropic => {
            anthropic_messages::encode_request(req, &d.upstream_model, DEFAULT_MAX_TOKENS)
        }
        _ => gemini::encode_request(req),
    }
    .map_err(|e| inexpressible(d, &e))?;
    let mut body: serde_json::Value = serde_json::from_slice(&encoded)
        .map_err(|e| unreadable(d, &DecodeError::new(e.to_string())))?;
    let body = match (d.kind(), body.as_object_mut()) {
        // count_tokens takes the messages request without its generation settings.
        (ProviderKind::Anthropic, Some(o)) => {
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
            body
        }
        // countTokens wraps a whole generateContent request with its model.
        (_, Some(o)) => {
            o.insert(
                "model".into(),
                format!("models/{}", d.upstream_model).into(),
            );
            serde_json::json!({ "generateContentRequest": body })
        }
        (_, None) => body,
    };
    Ok(Bytes::from(body.to_string()))
}

/// Reads a token count answer: `{input_tokens}` or `{totalTokens}`.
pub(crate) fn count_tokens_answer(d: &Deployment, body: &[u8]) -> Result<u64, AttemptError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| unreadable(d, &DecodeError::new(e.to_string())))?;
    v.get("input_tokens")
        .or_else(|| v.get("totalTokens"))
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| unreadable(d, &DecodeError::new("no token count in the answer")))
}
