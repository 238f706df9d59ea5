//! Relaying an upstream stream to the client.
//!
//! The [`Relay`] owns the plumbing every stream shares (timeouts, first-event commit, client
//! disconnects, the end-of-request record); a [`Translator`] from
//! `switchyard_protocol::translate` turns upstream bytes into client bytes, so this module
//! knows no protocol.
//!
//! A stream that breaks after its first event (cut, stalled, unreadable, an error event) is
//! continued on the next eligible deployment when its model allows it ([`Recovery`]): the
//! text already delivered goes there as an assistant prefill and the continuation is spliced
//! into the same client stream. When nothing can continue it, the stream ends with an error
//! event in the client's protocol and never with a clean end marker, so no client mistakes
//! half an answer for a whole one.

use crate::egress::IngressRequest;
use crate::metrics::{self, Meters};
use crate::observe;
use crate::request::{Context, Outcome, Part, RequestEnd, Served};
use crate::{AppState, Snapshot};
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::Admission;
use switchyard_protocol::translate::{self, Options, TranslateError, Translator};
use switchyard_providers::{AttemptError, Operation, ProviderSpec, Sent};
use switchyard_router::{Budget, Permit, Plan};
use switchyard_types::{ErrorKind, Money, TokenUsage};
use tokio::time::Instant;

/// The name in the SSE comment that carries a stream's cost (README, "Streams").
pub(crate) const COST_COMMENT: &str = "x-switchyard-cost-usd";

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

/// An upstream stream being relayed.
pub(crate) struct Relay {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    provider: Arc<ProviderSpec>,
    translator: Box<dyn Translator>,
    out: Vec<u8>,
    stall: Duration,
    deadline: Instant,
    /// Until the current upstream's first event, its first-byte deadline replaces the stall
    /// limit (a continuation starts with a fresh request).
    first_event_by: Option<Instant>,
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
            first_event_by: None,
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

    /// Hands the answer to a new upstream stream (a continuation on `provider`).
    fn switch(&mut self, sent: Sent, provider: Arc<ProviderSpec>) {
        let decoder = crate::egress::stream_decoder(provider.kind);
        if let Some(next) = self.translator.resume(decoder) {
            self.translator = next;
        }
        self.body = sent.response.bytes_stream().boxed();
        self.provider = provider;
        self.deadline = sent.deadline;
        self.first_event_by = Some(sent.first_byte_deadline);
    }

    /// The client-facing byte stream. Dropping it (client gone) drops the upstream response,
    /// which closes that connection and so cancels the upstream call.
    pub fn into_stream(self, f: Forwarding) -> impl Stream<Item = Result<Bytes, Infallible>> {
        let mut state = f;
        state.relay = Some(self);
        futures_util::stream::unfold(state, |mut s| async move {
            let bytes = s.next().await?;
            Some((Ok(bytes), s))
        })
    }
}

/// What a broken stream needs to be continued on another deployment.
pub(crate) struct Recovery {
    /// Upstream connections and deployment health.
    pub state: Arc<AppState>,
    /// The client's request, to build the continuation from.
    pub request: Arc<IngressRequest>,
    /// The request's plan: continuations go to its other candidates.
    pub plan: Plan,
    /// The config the request runs under (continuation time limits, prices).
    pub snapshot: Arc<Snapshot>,
    /// The request's attempt and time budget (continuations spend from it).
    pub budget: Budget,
    /// How continuation streams are read.
    pub translate: Options,
}

/// A stream in flight; records the request when it ends, however it ends.
pub(crate) struct Forwarding {
    relay: Option<Relay>,
    ctx: Context,
    meters: Arc<Meters>,
    served: Served,
    /// The current deployment's capacity, held until its part of the stream ends, then
    /// settled with its usage.
    permit: Option<Permit>,
    /// The budget reservation, settled with the real cost when the stream ends.
    admission: Option<Admission>,
    /// The deployment has no known price.
    unpriced: bool,
    recovery: Option<Recovery>,
    /// Parts of the answer served by deployments whose streams broke, already settled.
    parts: Vec<Part>,
    ttft: Option<Duration>,
    outcome: Option<Outcome>,
    /// The cost comment went out before the end marker.
    cost_sent: bool,
    /// The record was written (durable mode writes it before the end marker goes out).
    recorded: bool,
}

impl Forwarding {
    /// The state of a stream about to be relayed.
    pub fn new(
        ctx: Context,
        meters: Arc<Meters>,
        served: Served,
        permit: Permit,
        admission: Option<Admission>,
        unpriced: bool,
        recovery: Option<Recovery>,
    ) -> Forwarding {
        Forwarding {
            relay: None,
            ctx,
            meters,
            served,
            permit: Some(permit),
            admission,
            unpriced,
            recovery,
            parts: Vec::new(),
            ttft: None,
            outcome: None,
            cost_sent: false,
            recorded: false,
        }
    }

    /// Once the answer is complete, writes its cost as an SSE comment just before the
    /// client's end marker: `: x-switchyard-cost-usd=<dollars>` (every part of a continued
    /// stream included). The `x-switchyard-cost` header cannot say it: headers go out before
    /// the usage is known. SSE clients ignore comments, so the official SDKs see the stream
    /// they expect.
    fn write_cost(&mut self) {
        let complete = self.relay.as_ref().is_some_and(|r| r.translator.done());
        if self.cost_sent || !complete {
            return;
        }
        self.cost_sent = true;
        let (usage, _) = self.part_usage(true);
        let cost = self
            .parts
            .iter()
            .fold(self.served.deployment.prices.cost(&usage), |sum, p| {
                sum + p.cost
            });
        if let Some(relay) = self.relay.as_mut() {
            let comment = format!(": {COST_COMMENT}={cost}\n\n");
            let marker = relay.translator.end_marker();
            translate::insert_before_end(&mut relay.out, marker, comment.as_bytes());
        }
    }

    /// The next bytes for the client, or `None` at the end.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            self.write_cost();
            if self.ctx.ledger.durable() && !self.recorded {
                let done = self.relay.as_ref().is_some_and(|r| r.translator.done());
                if done {
                    // Durable mode: the end marker goes out once the record is committed.
                    if let Some(p) = self.permit.as_mut() {
                        p.stream_completed();
                    }
                    self.outcome = Some(Outcome::Ok);
                    let durable = self.record();
                    observe::kept(durable, &self.ctx.request_id).await;
                }
            }
            let relay = self.relay.as_mut()?;
            if !relay.out.is_empty() {
                if self.ttft.is_none() {
                    self.ttft = Some(self.ctx.started.elapsed());
                }
                relay.first_event_by = None;
                return Some(Bytes::from(std::mem::take(&mut relay.out)));
            }
            if self.outcome.is_some() {
                return None;
            }
            if relay.translator.done() {
                if self.outcome.is_none() {
                    if let Some(p) = self.permit.as_mut() {
                        p.stream_completed();
                    }
                    self.outcome = Some(Outcome::Ok);
                }
                continue;
            }
            let by = relay
                .first_event_by
                .unwrap_or_else(|| Instant::now() + relay.stall);
            if let Err(e) = relay.fill(by).await {
                tracing::warn!(request_id = ?self.ctx.request_id, kind = %e.kind, error = %e.message, "stream broke after it started");
                let cooldown = self.recovery.as_ref().map_or(Duration::ZERO, |r| {
                    r.snapshot.catalog.policy().rate_limit_cooldown
                });
                if let Some(p) = self.permit.as_mut() {
                    p.stream_broke(&e, cooldown);
                }
                if self.recover(&e).await {
                    continue;
                }
                let relay = self.relay.as_mut()?;
                // The client's error event says what kind of failure, not which provider or
                // what it said (that is in the warning above and the ledger).
                relay
                    .translator
                    .fail(e.kind, crate::error::stable_message(e.kind), &mut relay.out);
                self.outcome = Some(Outcome::Failed(e.kind));
            }
        }
    }

    /// What the current part consumed: the usage its upstream reported, or an estimate for
    /// what it never got to report.
    fn part_usage(&self, complete: bool) -> (TokenUsage, bool) {
        let Some(relay) = &self.relay else {
            return (TokenUsage::default(), false);
        };
        let reported = relay.translator.usage();
        if complete {
            if let Some(u) = reported {
                return (u, false);
            }
        }
        // A broken stream was still consumed upstream: meter what we know, estimating what
        // the upstream never got to report.
        let mut u = reported.unwrap_or_default();
        let mut estimated = false;
        if u.input == 0 {
            u.input = self.ctx.input_estimate;
            estimated = true;
        }
        let deltas = relay.translator.deltas();
        if u.output < deltas {
            u.output = deltas;
            estimated = true;
        }
        (u, estimated || reported.is_none())
    }

    /// Ends the current part: settles its permit with its usage and keeps its account.
    fn close_part(&mut self, complete: bool) -> Option<Part> {
        let permit = self.permit.take()?;
        let (usage, estimated) = self.part_usage(complete);
        let cost = permit.settle(&usage).cost;
        let skipped = self.relay.as_ref().map_or(0, |r| r.translator.skipped());
        let previous: u32 = self.parts.iter().map(|p| p.malformed_events).sum();
        Some(Part {
            attempt: self.served.attempts.len().saturating_sub(1),
            usage,
            cost,
            estimated,
            malformed_events: skipped.saturating_sub(previous),
        })
    }

    /// Continues the answer on another deployment after `error` broke it; `false` when the
    /// model does not allow it, the answer cannot be continued (a tool call), no candidate is
    /// left that accepts the prefill, or every continuation attempt failed. The client's
    /// stream then ends with `error`, never with a continuation's own rejection.
    async fn recover(&mut self, error: &AttemptError) -> bool {
        let (Some(recovery), Some(relay)) = (&self.recovery, &self.relay) else {
            return false;
        };
        let Some(delivered) = relay.translator.delivered().map(str::to_owned) else {
            return false;
        };
        // An answer tool's input streamed as text cannot be continued as a prefill: the
        // continuation would be a fresh call of the tool.
        if recovery
            .request
            .answer_tool(&self.served.deployment)
            .is_some()
        {
            return false;
        }
        let needs_prefill = !delivered.trim().is_empty();
        let tried: HashSet<&str> = self
            .served
            .attempts
            .iter()
            .map(|a| &*a.deployment)
            .collect();
        let plan = recovery.plan.narrowed(|c| {
            !tried.contains(&*c.deployment.id) && (!needs_prefill || c.deployment.accepts_prefill)
        });
        let elapsed = self.ctx.started.elapsed();
        let budget = Budget {
            max_attempts: recovery
                .budget
                .max_attempts
                .saturating_sub(self.served.attempts.len()),
            time: recovery.budget.time.saturating_sub(elapsed),
            backoff: recovery.budget.backoff,
        };
        if plan.candidates.is_empty() || budget.max_attempts == 0 || budget.time.is_zero() {
            metrics::stream_recovery(&self.ctx.model, false);
            return false;
        }
        // The broken part is over: its upstream is billed for what it produced.
        if let Some(last) = self.served.attempts.last_mut() {
            last.error = Some(error.kind);
            last.retryable = true;
        }
        if let Some(part) = self.close_part(false) {
            self.parts.push(part);
        }
        let Some(recovery) = &self.recovery else {
            return false;
        };
        let spent: u64 = self.parts.iter().map(|p| p.usage.output).sum();
        let request = &recovery.request;
        let state = &recovery.state;
        let result = switchyard_router::execute(&plan, &state.health, &budget, |d| {
            let body = request.continuation_body(&d, &delivered, spent);
            let settings = &recovery.snapshot.settings;
            let limits = settings.attempt_limits(plan.model_of(&d), &d, true, recovery.translate);
            async move {
                let sent = state
                    .upstream
                    .send(
                        &d.provider,
                        &d.endpoints,
                        Operation::Chat { stream: true },
                        body?,
                        limits.timeouts,
                    )
                    .await?;
                Ok(sent)
            }
        })
        .await;
        match result {
            Ok(served) => {
                tracing::info!(request_id = ?self.ctx.request_id, deployment = %served.deployment.id, "stream continued on another deployment");
                metrics::stream_recovery(&self.ctx.model, true);
                self.served.attempts.extend(served.attempts);
                self.served.deployment = served.deployment.clone();
                self.unpriced = recovery.snapshot.unpriced.contains(&served.deployment.id);
                self.permit = Some(served.permit);
                if let Some(relay) = self.relay.as_mut() {
                    relay.switch(served.value, served.deployment.provider.clone());
                }
                true
            }
            Err(failed) => {
                tracing::warn!(request_id = ?self.ctx.request_id, kind = %failed.error.kind, error = %failed.error.message, "no deployment could continue the stream");
                metrics::stream_recovery(&self.ctx.model, false);
                self.served.attempts.extend(failed.attempts);
                false
            }
        }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if !self.recorded {
            // Queued without waiting: a stream's end (or its client's departure) cannot wait.
            let _ = self.record();
        }
    }
}

impl Forwarding {
    /// Settles what is still held and writes the request's one record.
    fn record(&mut self) -> Option<observe::Durable> {
        self.recorded = true;
        let outcome = self.outcome.unwrap_or(Outcome::ClientDisconnected);
        let last = self.close_part(outcome == Outcome::Ok);
        let mut parts = std::mem::take(&mut self.parts);
        parts.extend(last);
        let mut usage = TokenUsage::default();
        let mut cost = Money::ZERO;
        for p in &parts {
            usage.add(&p.usage);
            cost = Money(cost.0 + p.cost.0);
        }
        let estimated = parts.iter().any(|p| p.estimated);
        let malformed: u32 = parts.iter().map(|p| p.malformed_events).sum();
        if malformed > 0 {
            metrics::malformed_events(&self.ctx.model, &self.served.deployment.id, malformed);
        }
        // On a tracked task: the budget learns the real cost even when the client went away.
        if let Some(admission) = self.admission.take() {
            admission.settle_detached(usage, cost);
        }
        // One part with nothing unusual: the record's totals say it all.
        if parts.len() == 1 && malformed == 0 {
            parts.clear();
        }
        let end = RequestEnd {
            ctx: &self.ctx,
            served: Some(&self.served),
            failed_attempts: &[],
            usage: Some(usage),
            cost,
            usage_estimated: estimated,
            ttft: self.ttft,
            outcome,
            unpriced: self.unpriced,
            parts: &parts,
        };
        observe::emit(&end, &self.meters)
    }
}
