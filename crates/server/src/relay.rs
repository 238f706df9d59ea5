//! Relaying an upstream stream to the client.
//!
//! The [`Relay`] owns the plumbing every stream shares (timeouts, first-event commit, client
//! disconnects, the end-of-request record); a [`Translator`] from
//! `switchyard_protocol::translate` turns upstream bytes into client bytes, so this module
//! knows no protocol. A stream that breaks after its first event ends with an error event in
//! the client's protocol and never with a clean end marker, so no client mistakes half an
//! answer for a whole one.

use crate::metrics::Meters;
use crate::observe;
use crate::request::{Context, Outcome, RequestEnd, Served};
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::Admission;
use switchyard_protocol::translate::{TranslateError, Translator};
use switchyard_providers::{AttemptError, ProviderSpec, Sent};
use switchyard_router::Permit;
use switchyard_types::ErrorKind;
use tokio::time::Instant;

/// A translation failure as the attempt's error, naming the provider.
fn attempt_error(e: TranslateError, provider: &str) -> AttemptError {
    match e {
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

/// Seconds since the Unix epoch, for protocols that send no creation time.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
        result.map_err(|e| attempt_error(e, &self.provider.id))
    }

    /// The client-facing byte stream. Dropping it (client gone) drops the upstream response,
    /// which closes that connection and so cancels the upstream call.
    #[expect(
        clippy::too_many_arguments,
        reason = "what a stream settles when it ends; to be grouped with the relay's rewrite"
    )]
    pub fn into_stream(
        self,
        ctx: Context,
        meters: Arc<Meters>,
        served: Served,
        permit: Permit,
        admission: Option<Admission>,
        unpriced: bool,
        rate_cooldown: Duration,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let state = Forwarding {
            relay: self,
            ctx,
            meters,
            served,
            permit: Some(permit),
            admission,
            unpriced,
            rate_cooldown,
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
                    if let Some(p) = s.permit.as_mut() {
                        p.stream_completed();
                    }
                    continue;
                }
                let by = Instant::now() + s.relay.stall;
                if let Err(e) = s.relay.fill(by).await {
                    tracing::warn!(request_id = ?s.ctx.request_id, kind = %e.kind, error = %e.message, "stream broke after it started");
                    s.relay
                        .translator
                        .fail(e.kind, &e.message, &mut s.relay.out);
                    s.outcome = Some(Outcome::Failed(e.kind));
                    if let Some(p) = s.permit.as_mut() {
                        p.stream_broke(&e, s.rate_cooldown);
                    }
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
    /// The rest after a mid-stream 429 without Retry-After (the policy's).
    rate_cooldown: Duration,
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
            cost,
            usage_estimated: estimated,
            ttft: self.ttft,
            outcome,
            unpriced: self.unpriced,
        };
        observe::emit(&end, &self.meters);
    }
}
