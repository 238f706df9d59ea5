//! Relaying an upstream stream to the client.
//!
//! The [`Relay`] owns the plumbing every stream shares (timeouts, first-event commit, client
//! disconnects, the end-of-request record); a [`Translator`] turns upstream bytes into client
//! bytes. The pass-through translator (OpenAI-shaped upstream to an OpenAI client) forwards
//! events unchanged, capturing usage on the way, dropping Azure's prompt-filter preamble and
//! the usage chunk the client did not ask for. A stream that breaks after its first event ends
//! with an error event in the client's protocol and never with a clean end marker, so no
//! client mistakes half an answer for a whole one.

use crate::metrics::Meters;
use crate::observe;
use crate::request::{Context, Dialect, Outcome, RequestEnd, Served};
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::Admission;
use switchyard_protocol::codec::{anthropic_messages, bedrock_converse, gemini, openai_chat};
use switchyard_protocol::sse::{self, SseDecoder};
use switchyard_protocol::{DecodeError, StreamEvent};
use switchyard_providers::{AttemptError, ProviderSpec, Sent};
use switchyard_router::Permit;
use switchyard_types::{ErrorKind, ProviderKind, TokenUsage};
use tokio::time::Instant;

/// Turns an upstream byte stream into the client's byte stream.
pub(crate) trait Translator: Send {
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
#[derive(Debug)]
pub(crate) enum TranslateError {
    /// The upstream sent bytes that are not its protocol.
    Malformed(String),
    /// The upstream reported an error inside the stream.
    Upstream(ErrorKind, String),
    /// The upstream closed the stream before the end.
    Truncated,
}

impl TranslateError {
    fn into_attempt_error(self, provider: &str) -> AttemptError {
        match self {
            TranslateError::Malformed(why) => AttemptError::new(
                ErrorKind::UpstreamProtocol,
                format!("provider '{provider}' sent a malformed stream event: {why}"),
            ),
            TranslateError::Upstream(kind, message) => AttemptError::new(
                kind,
                format!("provider '{provider}' failed mid-stream: {message}"),
            ),
            TranslateError::Truncated => AttemptError::new(
                ErrorKind::UpstreamProtocol,
                format!("provider '{provider}' ended the stream before it was complete"),
            ),
        }
    }
}

/// OpenAI-shaped upstream → OpenAI client, event by event.
pub(crate) struct OpenAiPassthrough {
    decoder: SseDecoder,
    include_usage: bool,
    usage: Option<TokenUsage>,
    deltas: u64,
    done: bool,
}

impl OpenAiPassthrough {
    /// A pass-through for a client that did or did not ask for the usage chunk.
    pub fn new(include_usage: bool) -> Self {
        OpenAiPassthrough {
            decoder: SseDecoder::new(),
            include_usage,
            usage: None,
            deltas: 0,
            done: false,
        }
    }

    fn process(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        if data == b"[DONE]" {
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.done = true;
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
            self.deltas += 1;
        }
        if let Some(usage) = info.usage {
            self.usage = Some(usage);
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
        if self.done {
            Ok(())
        } else {
            Err(TranslateError::Truncated)
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        let body = openai_chat::encode_error(kind, message, None, None);
        sse::write_event(out, None, &body);
    }

    fn done(&self) -> bool {
        self.done
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    fn deltas(&self) -> u64 {
        // The first chunk only announces the assistant's role.
        self.deltas.saturating_sub(1)
    }
}

/// Any upstream protocol → any client protocol, through the canonical stream events.
pub(crate) struct Translate {
    framing: Framing,
    upstream: UpstreamDecoder,
    client: ClientEncoder,
    usage: Option<TokenUsage>,
    deltas: u64,
    done: bool,
}

/// How an upstream's stream is cut into events.
enum Framing {
    Sse(SseDecoder),
    EventStream(bedrock_converse::EventStreamDecoder),
}

/// Reads one upstream protocol's stream events.
pub(crate) enum UpstreamDecoder {
    /// OpenAI-shaped SSE chunks.
    OpenAi(openai_chat::StreamDecoder),
    /// Anthropic named SSE events.
    Anthropic(anthropic_messages::StreamDecoder),
    /// Bedrock ConverseStream event-stream frames.
    Bedrock(bedrock_converse::StreamDecoder),
    /// Gemini / Vertex SSE chunks.
    Gemini(gemini::StreamDecoder),
}

impl UpstreamDecoder {
    /// The decoder for a provider kind's streams.
    pub fn for_kind(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
                UpstreamDecoder::OpenAi(openai_chat::StreamDecoder::new())
            }
            ProviderKind::Anthropic => {
                UpstreamDecoder::Anthropic(anthropic_messages::StreamDecoder::new())
            }
            ProviderKind::Bedrock => {
                UpstreamDecoder::Bedrock(bedrock_converse::StreamDecoder::new())
            }
            ProviderKind::Gemini | ProviderKind::Vertex => {
                UpstreamDecoder::Gemini(gemini::StreamDecoder::new())
            }
        }
    }

    fn framing(&self) -> Framing {
        match self {
            UpstreamDecoder::Bedrock(_) => {
                Framing::EventStream(bedrock_converse::EventStreamDecoder::new())
            }
            _ => Framing::Sse(SseDecoder::new()),
        }
    }

    fn decode_sse(
        &mut self,
        event: Option<&str>,
        data: &[u8],
    ) -> Result<Vec<StreamEvent>, DecodeError> {
        match self {
            UpstreamDecoder::OpenAi(d) => d.decode(data),
            UpstreamDecoder::Anthropic(d) => d.decode(event, data),
            UpstreamDecoder::Gemini(d) => d.decode(data),
            UpstreamDecoder::Bedrock(_) => Err(DecodeError::new("Bedrock streams are not SSE")),
        }
    }

    /// Turns a decode failure into an upstream error event when the upstream reported one.
    fn error(&self, e: DecodeError) -> TranslateError {
        let upstream = match self {
            UpstreamDecoder::OpenAi(d) => d.upstream_error(),
            UpstreamDecoder::Anthropic(d) => d.upstream_error(),
            UpstreamDecoder::Bedrock(d) => d.upstream_error(),
            UpstreamDecoder::Gemini(d) => d.upstream_error(),
        };
        match upstream {
            Some(u) => TranslateError::Upstream(u.kind, u.message.clone()),
            None => TranslateError::Malformed(e.message),
        }
    }

    /// Whether the upstream's answer is complete.
    fn is_done(&self) -> bool {
        match self {
            UpstreamDecoder::OpenAi(d) => d.is_done(),
            UpstreamDecoder::Anthropic(d) => d.is_done(),
            UpstreamDecoder::Bedrock(d) => d.is_done(),
            UpstreamDecoder::Gemini(d) => d.is_done(),
        }
    }
}

/// Writes one client protocol's stream.
pub(crate) struct ClientEncoder {
    dialect: Dialect,
    include_usage: bool,
    /// Used when the upstream names no id or model (Bedrock).
    fallback_id: String,
    fallback_model: String,
    inner: Option<Encoder>,
}

enum Encoder {
    OpenAi(openai_chat::StreamEncoder),
    Anthropic(anthropic_messages::StreamEncoder),
}

impl ClientEncoder {
    /// An encoder for `dialect`; `include_usage` matters to OpenAI clients only.
    pub fn new(
        dialect: Dialect,
        include_usage: bool,
        fallback_id: String,
        fallback_model: String,
    ) -> Self {
        ClientEncoder {
            dialect,
            include_usage,
            fallback_id,
            fallback_model,
            inner: None,
        }
    }

    /// The encoder, created at the upstream's start event (it needs the id and model).
    fn get(&mut self, start: Option<(&str, &str, u64)>) -> &mut Encoder {
        let (dialect, include_usage) = (self.dialect, self.include_usage);
        let (fallback_id, fallback_model) = (&self.fallback_id, &self.fallback_model);
        self.inner.get_or_insert_with(|| {
            let (id, model, created) = match start {
                Some((id, model, created)) if !id.is_empty() => (id, model, created),
                _ => (fallback_id.as_str(), fallback_model.as_str(), 0),
            };
            let model = if model.is_empty() {
                fallback_model.as_str()
            } else {
                model
            };
            let created = if created == 0 { unix_now() } else { created };
            match dialect {
                Dialect::OpenAi => Encoder::OpenAi(openai_chat::StreamEncoder::new(
                    id.to_string(),
                    model.to_string(),
                    created,
                    include_usage,
                )),
                Dialect::Anthropic => Encoder::Anthropic(anthropic_messages::StreamEncoder::new(
                    id,
                    model.to_string(),
                )),
            }
        })
    }

    fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        let start = match ev {
            StreamEvent::Start { id, model, created } => {
                Some((id.as_str(), model.as_str(), *created))
            }
            _ => None,
        };
        match self.get(start) {
            Encoder::OpenAi(e) => e.encode(ev, out),
            Encoder::Anthropic(e) => e.encode(ev, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self.get(None) {
            Encoder::OpenAi(e) => e.finish(out),
            Encoder::Anthropic(e) => e.finish(out),
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        match self.get(None) {
            Encoder::OpenAi(e) => e.error(kind, message, out),
            Encoder::Anthropic(e) => e.error(kind, message, out),
        }
    }
}

/// Seconds since the Unix epoch, for protocols that send no creation time.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Translate {
    /// A translator from `upstream` to `client`.
    pub fn new(upstream: UpstreamDecoder, client: ClientEncoder) -> Self {
        Translate {
            framing: upstream.framing(),
            upstream,
            client,
            usage: None,
            deltas: 0,
            done: false,
        }
    }

    fn emit(
        &mut self,
        decoded: Result<Vec<StreamEvent>, DecodeError>,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        if self.done {
            return Ok(());
        }
        for ev in decoded.map_err(|e| self.upstream.error(e))? {
            match &ev {
                StreamEvent::Usage(u) => self.usage = Some(*u),
                StreamEvent::TextDelta(_) | StreamEvent::ToolCallDelta { .. } => self.deltas += 1,
                _ => {}
            }
            self.client.encode(&ev, out);
        }
        if self.upstream.is_done() {
            self.client.finish(out);
            self.done = true;
        }
        Ok(())
    }
}

impl Translator for Translate {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        match &mut self.framing {
            Framing::Sse(d) => d.push(chunk),
            Framing::EventStream(d) => d.push(chunk),
        }
        loop {
            let decoded = match &mut self.framing {
                Framing::Sse(d) => match d
                    .next_event()
                    .map_err(|e| TranslateError::Malformed(e.message))?
                {
                    Some(ev) => self
                        .upstream
                        .decode_sse(ev.event.as_deref(), ev.data.as_bytes()),
                    None => return Ok(()),
                },
                Framing::EventStream(d) => match d
                    .next_message()
                    .map_err(|e| TranslateError::Malformed(e.message))?
                {
                    Some(msg) => match &mut self.upstream {
                        UpstreamDecoder::Bedrock(b) => b.decode(&msg),
                        _ => Err(DecodeError::new(
                            "event-stream frames from a non-Bedrock upstream",
                        )),
                    },
                    None => return Ok(()),
                },
            };
            self.emit(decoded, out)?;
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        if let Framing::Sse(d) = &mut self.framing {
            if let Some(ev) = d.finish() {
                let decoded = self
                    .upstream
                    .decode_sse(ev.event.as_deref(), ev.data.as_bytes());
                self.emit(decoded, out)?;
            }
        }
        if self.done {
            Ok(())
        } else {
            Err(TranslateError::Truncated)
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        self.client.fail(kind, message, out);
    }

    fn done(&self) -> bool {
        self.done
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    fn deltas(&self) -> u64 {
        self.deltas
    }
}

/// An upstream stream being relayed.
pub(crate) struct Relay {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    provider: Arc<ProviderSpec>,
    translator: Box<dyn Translator>,
    out: Vec<u8>,
    stall: Duration,
    deadline: Instant,
}

impl Relay {
    /// Starts relaying and waits for the first client-visible bytes, so that an upstream
    /// failing before its first event can still be failed over.
    pub async fn open(
        sent: Sent,
        provider: Arc<ProviderSpec>,
        translator: Box<dyn Translator>,
        stall: Duration,
    ) -> Result<Relay, AttemptError> {
        let first_event_by = sent.first_byte_deadline;
        let mut relay = Relay {
            body: sent.response.bytes_stream().boxed(),
            provider,
            translator,
            out: Vec::with_capacity(1024),
            stall,
            deadline: sent.deadline,
        };
        while relay.out.is_empty() && !relay.translator.done() {
            relay.fill(first_event_by).await?;
        }
        Ok(relay)
    }

    /// Reads one network chunk (before `by`) and translates it.
    async fn fill(&mut self, by: Instant) -> Result<(), AttemptError> {
        let by = by.min(self.deadline);
        let next = tokio::time::timeout_at(by, self.body.next())
            .await
            .map_err(|_| {
                AttemptError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "provider '{}' stopped sending the stream in time",
                        self.provider.id
                    ),
                )
            })?;
        let result = match next {
            Some(Ok(chunk)) => self.translator.feed(&chunk, &mut self.out),
            Some(Err(e)) => return Err(AttemptError::from_reqwest(&self.provider.id, &e)),
            None => self.translator.end(&mut self.out),
        };
        result.map_err(|e| e.into_attempt_error(&self.provider.id))
    }

    /// The client-facing byte stream. Dropping it (client gone) drops the upstream response,
    /// which closes that connection and so cancels the upstream call.
    pub fn into_stream(
        self,
        ctx: Context,
        meters: Arc<Meters>,
        served: Served,
        permit: Permit,
        admission: Option<Admission>,
        unpriced: bool,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let state = Forwarding {
            relay: self,
            ctx,
            meters,
            served,
            permit: Some(permit),
            admission,
            unpriced,
            ttft: None,
            outcome: None,
        };
        futures_util::stream::unfold(state, |mut s| async move {
            loop {
                if !s.relay.out.is_empty() {
                    if s.ttft.is_none() {
                        s.ttft = Some(s.ctx.started.elapsed());
                    }
                    let bytes = Bytes::from(std::mem::take(&mut s.relay.out));
                    return Some((Ok(bytes), s));
                }
                if s.outcome.is_some() {
                    return None;
                }
                if s.relay.translator.done() {
                    s.outcome = Some(Outcome::Ok);
                    continue;
                }
                let by = Instant::now() + s.relay.stall;
                if let Err(e) = s.relay.fill(by).await {
                    tracing::warn!(request_id = ?s.ctx.request_id, kind = %e.kind, error = %e.message, "stream broke after it started");
                    s.relay
                        .translator
                        .fail(e.kind, &e.message, &mut s.relay.out);
                    s.outcome = Some(Outcome::Failed(e.kind));
                }
            }
        })
    }
}

/// A stream in flight; records the request when it ends, however it ends.
struct Forwarding {
    relay: Relay,
    ctx: Context,
    meters: Arc<Meters>,
    served: Served,
    /// The deployment's capacity, held until the stream ends, then settled with its usage.
    permit: Option<Permit>,
    /// The budget reservation, settled with the real cost when the stream ends.
    admission: Option<Admission>,
    /// The deployment has no known price.
    unpriced: bool,
    ttft: Option<Duration>,
    outcome: Option<Outcome>,
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or(Outcome::ClientDisconnected);
        let reported = self.relay.translator.usage();
        let (usage, estimated) = if outcome == Outcome::Ok {
            (reported, false)
        } else {
            // A broken stream was still consumed upstream: meter what we know, estimating
            // what the upstream never got to report.
            let mut u = reported.unwrap_or_default();
            let mut estimated = false;
            if u.input == 0 {
                u.input = self.ctx.input_estimate;
                estimated = true;
            }
            let deltas = self.relay.translator.deltas();
            if u.output < deltas {
                u.output = deltas;
                estimated = true;
            }
            (Some(u), estimated)
        };
        let spent = usage.unwrap_or_default();
        let cost = match self.permit.take() {
            Some(permit) => permit.settle(&spent).cost,
            None => self.served.deployment.prices.cost(&spent),
        };
        // On a tracked task: the budget learns the real cost even when the client went away.
        if let Some(admission) = self.admission.take() {
            admission.settle_detached(spent, cost);
        }
        let end = RequestEnd {
            ctx: &self.ctx,
            served: Some(&self.served),
            failed_attempts: &[],
            usage,
            usage_estimated: estimated,
            ttft: self.ttft,
            outcome,
            unpriced: self.unpriced,
        };
        observe::emit(&end, &self.meters);
    }
}
