//! Relaying an upstream answer to the client, and the end-of-request record.
//!
//! Streams are passed through event by event (OpenAI-shaped upstream to an OpenAI client):
//! usage is captured on the way, Azure's prompt-filter preamble and the usage chunk the
//! client did not ask for are dropped, and every other event is forwarded unchanged. A stream
//! that breaks after its first event ends with an error event and never with `[DONE]`, so
//! no client mistakes half an answer for a whole one.

use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchyard_protocol::codec::openai_chat;
use switchyard_protocol::sse::{self, SseDecoder};
use switchyard_providers::{AttemptError, ProviderSpec, Sent};
use switchyard_router::{AttemptLog, Deployment};
use switchyard_types::{ErrorKind, TokenUsage};
use tokio::time::Instant;

/// Who asked for what, for the end-of-request record.
pub(crate) struct Context {
    pub request_id: HeaderValue,
    pub key: Arc<str>,
    pub model: Arc<str>,
    pub started: Instant,
}

/// Which deployment served a request, after which attempts.
#[derive(Clone)]
pub(crate) struct Served {
    pub deployment: Arc<Deployment>,
    pub attempts: AttemptLog,
}

impl Served {
    /// Transparency headers: where the request ran and how many attempts it took.
    pub fn write_headers(&self, h: &mut HeaderMap) {
        let d = &self.deployment;
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        put("x-switchyard-deployment", &d.id);
        put("x-switchyard-provider", &d.provider.id);
        put("x-switchyard-cloud", d.provider.cloud.as_str());
        put("x-switchyard-region", &d.provider.region);
        put("x-switchyard-attempts", &self.attempts.len().to_string());
    }
}

/// Records how a served request ended (the ledger issue turns this into a durable record).
pub(crate) fn finished(ctx: &Context, served: &Served, usage: Option<TokenUsage>, outcome: &str) {
    let usage = usage.unwrap_or_default();
    tracing::info!(
        request_id = ?ctx.request_id,
        key = %ctx.key,
        model = %ctx.model,
        deployment = %served.deployment.id,
        provider = %served.deployment.provider.id,
        attempts = served.attempts.len(),
        input_tokens = usage.input,
        output_tokens = usage.output,
        cached_tokens = usage.cached_input,
        latency_ms = ctx.started.elapsed().as_millis() as u64,
        outcome,
        "request finished"
    );
}

/// An upstream SSE stream being passed through.
pub(crate) struct Relay {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    provider: Arc<ProviderSpec>,
    decoder: SseDecoder,
    out: Vec<u8>,
    include_usage: bool,
    usage: Option<TokenUsage>,
    stall: Duration,
    deadline: Instant,
    done: bool,
}

impl Relay {
    /// Starts relaying and waits for the first event, so that an upstream failing before
    /// its first event can still be failed over.
    pub async fn open(
        sent: Sent,
        provider: Arc<ProviderSpec>,
        include_usage: bool,
        stall: Duration,
    ) -> Result<Relay, AttemptError> {
        let first_event_by = sent.first_byte_deadline;
        let mut relay = Relay {
            body: sent.response.bytes_stream().boxed(),
            provider,
            decoder: SseDecoder::new(),
            out: Vec::with_capacity(1024),
            include_usage,
            usage: None,
            stall,
            deadline: sent.deadline,
            done: false,
        };
        while relay.out.is_empty() && !relay.done {
            relay.fill(first_event_by).await?;
        }
        Ok(relay)
    }

    /// Reads one network chunk (before `by`) and processes the events it completes.
    async fn fill(&mut self, by: Instant) -> Result<(), AttemptError> {
        let by = by.min(self.deadline);
        let next = match tokio::time::timeout_at(by, self.body.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(AttemptError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "provider '{}' stopped sending the stream in time",
                        self.provider.id
                    ),
                ))
            }
        };
        match next {
            Some(Ok(chunk)) => {
                self.decoder.push(&chunk);
                loop {
                    let event = self
                        .decoder
                        .next_event()
                        .map_err(|e| self.malformed(&e.message))?;
                    match event {
                        Some(event) => self.process(event.data.as_bytes())?,
                        None => return Ok(()),
                    }
                }
            }
            Some(Err(e)) => Err(AttemptError::from_reqwest(&self.provider.id, &e)),
            None => {
                if let Some(event) = self.decoder.finish() {
                    self.process(event.data.as_bytes())?;
                }
                if self.done {
                    Ok(())
                } else {
                    Err(AttemptError::new(
                        ErrorKind::UpstreamProtocol,
                        format!(
                            "provider '{}' ended the stream before it was complete",
                            self.provider.id
                        ),
                    ))
                }
            }
        }
    }

    fn malformed(&self, why: &str) -> AttemptError {
        AttemptError::new(
            ErrorKind::UpstreamProtocol,
            format!(
                "provider '{}' sent a malformed stream event: {why}",
                self.provider.id
            ),
        )
    }

    fn process(&mut self, data: &[u8]) -> Result<(), AttemptError> {
        if self.done {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.out.extend_from_slice(b"data: [DONE]\n\n");
            self.done = true;
            return Ok(());
        }
        let info = openai_chat::inspect_chunk(data).map_err(|e| self.malformed(&e.message))?;
        if let Some(error) = info.error {
            return Err(AttemptError::new(
                error.kind,
                format!(
                    "provider '{}' failed mid-stream: {}",
                    self.provider.id, error.message
                ),
            ));
        }
        if info.azure_preamble {
            return Ok(());
        }
        if let Some(usage) = info.usage {
            self.usage = Some(usage);
            if info.choices_empty && !self.include_usage {
                return Ok(());
            }
        }
        sse::write_event(&mut self.out, None, data);
        Ok(())
    }

    /// The client-facing byte stream. Dropping it (client gone) drops the upstream response,
    /// which closes that connection and so cancels the upstream call.
    pub fn into_stream(
        self,
        ctx: Context,
        served: Served,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let state = Forwarding {
            relay: self,
            ctx,
            served,
            outcome: None,
        };
        futures_util::stream::unfold(state, |mut s| async move {
            loop {
                if !s.relay.out.is_empty() {
                    let bytes = Bytes::from(std::mem::take(&mut s.relay.out));
                    return Some((Ok(bytes), s));
                }
                if s.outcome.is_some() {
                    return None;
                }
                if s.relay.done {
                    s.outcome = Some("ok");
                    continue;
                }
                let by = Instant::now() + s.relay.stall;
                if let Err(e) = s.relay.fill(by).await {
                    tracing::warn!(request_id = ?s.ctx.request_id, kind = %e.kind, error = %e.message, "stream broke after it started");
                    let body = openai_chat::encode_error(e.kind, &e.message, None, None);
                    sse::write_event(&mut s.relay.out, None, &body);
                    s.outcome = Some(e.kind.as_str());
                }
            }
        })
    }
}

/// A stream in flight; records the request when it ends, however it ends.
struct Forwarding {
    relay: Relay,
    ctx: Context,
    served: Served,
    outcome: Option<&'static str>,
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or("client_disconnected");
        finished(&self.ctx, &self.served, self.relay.usage, outcome);
    }
}
