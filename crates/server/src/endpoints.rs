//! The endpoints the pipeline serves: what each decoded request asks for and what one
//! upstream attempt does. Bodies and answers are built in `egress`, streams relayed in
//! `relay`; the phases around them are the pipeline's.

use crate::egress::{self, IngressRequest, DEFAULT_MAX_TOKENS, MAX_RESPONSE_BYTES};
use crate::error::ApiError;
use crate::pipeline::{Answer, Ask, AttemptLimits, Endpoint};
use crate::relay::Relay;
use crate::AppState;
use bytes::Bytes;
use std::sync::Arc;
use switchyard_protocol::codec::anthropic_messages;
use switchyard_protocol::codec::openai_chat::ParsedEmbeddingsRequest;
use switchyard_protocol::upstream::upstream_codec;
use switchyard_protocol::ChatRequest;
use switchyard_providers::{AttemptError, Operation};
use switchyard_router::{Deployment, Estimate, Model, Plan};
use switchyard_types::{ErrorKind, ProviderKind};

/// A chat request from either front door, streamed or not.
pub(crate) struct Chat {
    /// The decoded request (shared with the stream, which may continue it elsewhere).
    pub request: Arc<IngressRequest>,
    /// The body's `switchyard` routing extension, raw JSON.
    pub extension: Option<String>,
}

impl Endpoint for Chat {
    fn ask(&self) -> Ask<'_> {
        let req = self.request.canonical();
        Ask {
            model: &req.model,
            stream: req.stream,
            estimate: Estimate {
                input_tokens: req.estimate_input_tokens(),
                max_output_tokens: u64::from(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
            },
            free: false,
            output_cap: req.max_tokens.map(u64::from),
            choices: u64::from(req.n.unwrap_or(1).max(1)),
            extension: self.extension.as_deref(),
        }
    }

    fn continuation(&self) -> Option<Arc<IngressRequest>> {
        Some(self.request.clone())
    }

    async fn attempt(
        &self,
        state: &Arc<AppState>,
        d: Arc<Deployment>,
        limits: AttemptLimits,
    ) -> Result<Answer, AttemptError> {
        let stream = self.request.canonical().stream;
        let op = Operation::Chat { stream };
        let body = self.request.upstream_body(&d)?;
        let sent = state
            .upstream
            .send(&d.provider, &d.endpoints, op, body, limits.timeouts)
            .await?;
        if stream {
            let translator = self.request.translator(&d, limits.translate)?;
            let relay = Relay::open(sent, d.provider.clone(), translator, limits.stall).await?;
            return Ok(Answer::Stream(relay));
        }
        let upstream = sent.body(&d.provider, MAX_RESPONSE_BYTES).await?;
        let (body, usage) = self.request.client_body(&d, upstream)?;
        Ok(Answer::Complete { body, usage })
    }
}

/// An embeddings request (OpenAI front door).
pub(crate) struct Embeddings {
    /// The decoded request, with its raw body for pass-through.
    pub parsed: ParsedEmbeddingsRequest,
}

impl Endpoint for Embeddings {
    fn ask(&self) -> Ask<'_> {
        let req = &self.parsed.request;
        Ask {
            model: &req.model,
            stream: false,
            estimate: Estimate {
                input_tokens: req.input.iter().map(|t| t.len() as u64 / 4 + 1).sum(),
                max_output_tokens: 0,
            },
            free: false,
            output_cap: Some(0),
            choices: 1,
            extension: None,
        }
    }

    async fn attempt(
        &self,
        state: &Arc<AppState>,
        d: Arc<Deployment>,
        limits: AttemptLimits,
    ) -> Result<Answer, AttemptError> {
        let (body, usage) =
            egress::embeddings_attempt(&state.upstream, &self.parsed, &d, limits.timeouts).await?;
        Ok(Answer::Complete { body, usage })
    }
}

/// A token count (Anthropic front door): answered by the first of the model's deployments
/// whose protocol can count; free, so it reserves and settles no cost.
pub(crate) struct CountTokens {
    /// The decoded request.
    pub request: ChatRequest,
}

impl Endpoint for CountTokens {
    fn ask(&self) -> Ask<'_> {
        Ask {
            model: &self.request.model,
            stream: false,
            estimate: Estimate {
                input_tokens: self.request.estimate_input_tokens(),
                max_output_tokens: 0,
            },
            free: true,
            output_cap: Some(0),
            choices: 1,
            extension: None,
        }
    }

    fn check(&self, model: &Model) -> Result<(), ApiError> {
        if model.deployments.iter().any(|d| egress::counts_tokens(d)) {
            return Ok(());
        }
        let counting: Vec<&str> = ProviderKind::ALL
            .into_iter()
            .filter(|&k| upstream_codec(k).counts_tokens())
            .map(ProviderKind::as_str)
            .collect();
        Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "count_tokens is not supported for model '{}': none of its deployments speaks a protocol that counts tokens ({})",
                model.name,
                counting.join(", ")
            ),
        ))
    }

    fn narrow(&self, plan: &mut Plan) {
        plan.candidates
            .retain(|c| egress::counts_tokens(&c.deployment));
    }

    async fn attempt(
        &self,
        state: &Arc<AppState>,
        d: Arc<Deployment>,
        limits: AttemptLimits,
    ) -> Result<Answer, AttemptError> {
        let body = egress::count_tokens_body(&self.request, &d)?;
        let sent = state
            .upstream
            .send(
                &d.provider,
                &d.endpoints,
                Operation::CountTokens,
                body,
                limits.timeouts,
            )
            .await?;
        let answer = sent.body(&d.provider, 1024 * 1024).await?;
        let tokens = egress::count_tokens_answer(&d, &answer)?;
        Ok(Answer::Complete {
            body: Bytes::from(anthropic_messages::encode_count_tokens_response(tokens)),
            // Counting consumes nothing.
            usage: None,
        })
    }
}
