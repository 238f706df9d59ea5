//! The end of every request, in one place. Every authenticated request owes exactly one
//! [`RequestEnd`]: the pipeline holds it as a [`Pending`] from authentication on and pays it
//! when the request succeeds or fails, a stream pays it when it ends, and dropping a
//! `Pending` (the client went away mid-request) pays it as a disconnect. Logs, metrics, span
//! attributes and the ledger all read that one record.

use crate::logs::{self, AccessLine};
use crate::metrics::Meters;
use crate::request::{Context, Outcome, RequestEnd, Served};
use opentelemetry::trace::TraceContextExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub(crate) use switchyard_ledger::Durable;
use switchyard_ledger::{AttemptRecord, LedgerRecord, Outcome as LedgerOutcome};
use switchyard_router::{Attempt, AttemptLog, Deployment};
use switchyard_types::{Money, Prices, TokenUsage};
use tokio::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes a request's end to logs, metrics, span attributes and the ledger; in durable mode,
/// returns what the response must wait on before it completes.
pub(crate) fn emit(end: &RequestEnd<'_>, meters: &Meters) -> Option<Durable> {
    let usage = end.usage.unwrap_or_default();
    let latency_ms = end.ctx.started.elapsed().as_millis() as u64;
    let attempts = end.attempts().len();
    if tracing::enabled!(tracing::Level::INFO) {
        let ctx = end.ctx;
        let line = AccessLine {
            at: std::time::SystemTime::now(),
            request_id: ctx.request_id.clone(),
            dialect: ctx.dialect,
            api: ctx.api,
            key: ctx.key.clone(),
            model: ctx.model.clone(),
            stream: ctx.stream,
            served_by: end
                .served
                .map(|s| (s.deployment.id.clone(), s.deployment.provider.id.clone())),
            attempts,
            tokens: [usage.input, usage.output, usage.cached_input],
            usage_estimated: end.usage_estimated,
            cost: end.cost,
            latency_ms,
            ttft_ms: end.ttft.map(|t| t.as_millis() as u64),
            outcome: end.outcome.as_str(),
        };
        logs::access(line);
    }
    meters.record(end);
    if crate::telemetry::traces_enabled() {
        let span = &end.ctx.span;
        span.record("gen_ai.usage.input_tokens", usage.input);
        span.record("gen_ai.usage.output_tokens", usage.output);
        span.record("switchyard.outcome", end.outcome.as_str());
        span.record("switchyard.attempts", attempts as u64);
        if let Some(s) = end.served {
            span.record("switchyard.deployment", &*s.deployment.id);
            span.record("gen_ai.provider.name", s.deployment.kind().as_str());
        }
    }
    match end.ctx.ledger.submit(ledger_record(end, latency_ms)) {
        Ok(durable) => durable,
        Err(e) => {
            tracing::error!(request_id = ?end.ctx.request_id, error = %e, "ledger record dropped");
            None
        }
    }
}

/// Waits until a durable record is committed (durable mode), logging when it is not.
pub(crate) async fn kept(durable: Option<Durable>, request_id: &http::HeaderValue) {
    if let Some(d) = durable {
        if !d.written().await {
            crate::metrics::durable_unconfirmed();
            tracing::error!(request_id = ?request_id, "ledger record not committed in time: the answer is sent without it being durable");
        }
    }
}

/// The request's ledger record.
fn ledger_record(end: &RequestEnd<'_>, latency_ms: u64) -> LedgerRecord {
    let ctx = end.ctx;
    let mut r = LedgerRecord::new(
        ctx.request_id.to_str().unwrap_or_default(),
        ctx.time_ms,
        ctx.model.clone(),
    );
    r.key_id = Some(ctx.key_id.clone());
    r.team = ctx.team.clone();
    r.data_class = ctx.data_class.clone();
    let attempts = end.attempts();
    r.attempts = attempts
        .iter()
        .map(|a| AttemptRecord {
            deployment: a.deployment.clone(),
            provider: a.provider.clone(),
            status: a.status,
            error_kind: a.error,
            latency_ms: a.latency.as_millis() as u64,
            ..AttemptRecord::default()
        })
        .collect();
    // An answer served in parts (or with skipped events) accounts for each part's attempt.
    for part in end.parts {
        if let Some(a) = r.attempts.get_mut(part.attempt) {
            a.usage = Some(part.usage);
            a.cost_nanos = Some(part.cost.nanos());
            a.malformed_events = part.malformed_events;
        }
    }
    if let Some(s) = end.served {
        let d = &s.deployment;
        r.deployment = Some(d.id.clone());
        r.provider = Some(d.provider.id.clone());
        r.cloud = Some(d.provider.cloud);
        r.region = Some(d.provider.region.clone());
        r.jurisdiction = Some(d.provider.jurisdiction);
    } else if let Some(last) = attempts.last() {
        r.deployment = Some(last.deployment.clone());
        r.provider = Some(last.provider.clone());
    }
    r.usage = end.usage.unwrap_or_default();
    // A failed request cost nothing; a served one is priced unless its deployment has no price.
    r.price_known = end.served.is_none() || !end.unpriced;
    r.cost = if r.price_known { end.cost } else { Money::ZERO };
    r.latency_ms = latency_ms;
    r.ttft_ms = end.ttft.map(|t| t.as_millis() as u64);
    r.outcome = match end.outcome {
        Outcome::Ok => LedgerOutcome::Ok,
        Outcome::Failed(kind) => LedgerOutcome::Error(kind),
        Outcome::ClientDisconnected => LedgerOutcome::ClientDisconnected,
    };
    r.stream = ctx.stream;
    r
}

/// The attempts a request has started, kept outside the attempt loop so that a request
/// dropped mid-attempt (client gone) can still record what it tried.
#[derive(Clone, Default)]
pub(crate) struct Tracker(Arc<Mutex<Vec<(Attempt, Instant, Prices)>>>);

impl Tracker {
    /// Notes an attempt on `d` starting now; returns its index for [`Tracker::end`].
    pub fn start(&self, d: &Deployment) -> usize {
        let attempt = Attempt {
            deployment: d.id.clone(),
            provider: d.provider.id.clone(),
            error: None,
            status: None,
            latency: Duration::ZERO,
            retryable: false,
            hedge: false,
            probe: false,
            // Until it ends, an attempt counts as cancelled: that is what it is if the request
            // is dropped now.
            cancelled: true,
        };
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.push((attempt, Instant::now(), d.prices));
        log.len() - 1
    }

    /// Notes how attempt `i` ended.
    pub fn end<T>(&self, i: usize, result: &Result<T, switchyard_providers::AttemptError>) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((a, started, _)) = log.get_mut(i) {
            a.latency = started.elapsed();
            a.cancelled = false;
            match result {
                Ok(_) => a.status = Some(200),
                Err(e) => {
                    a.error = Some(e.kind);
                    a.status = e.status;
                }
            }
        }
    }

    /// The attempts so far; ones still running are cancelled, with their time until now.
    fn snapshot(&self) -> AttemptLog {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .map(|(a, started, _)| {
                let mut a = a.clone();
                if a.cancelled {
                    a.latency = started.elapsed();
                }
                a
            })
            .collect()
    }

    /// What the attempts still running may be billed for when the request is dropped: the
    /// input (estimated at `input_tokens`) at each one's price. Output is unknown, so this is
    /// a lower bound.
    fn abandoned(&self, input_tokens: u64) -> (TokenUsage, Money) {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut usage = TokenUsage::default();
        let mut cost = Money::ZERO;
        for (_, _, prices) in log.iter().filter(|(a, _, _)| a.cancelled) {
            usage.input += input_tokens;
            cost += prices.estimate(input_tokens, 0);
        }
        (usage, cost)
    }
}

/// The end-of-request record an authenticated request still owes; paid at most once.
pub(crate) struct Pending {
    /// Who and what (the model is filled in once decoded).
    pub ctx: Context,
    /// The request's metric handles.
    pub meters: Arc<Meters>,
    /// What has been tried so far.
    pub tracker: Tracker,
    owed: bool,
}

impl Pending {
    /// A request that owes its record from now on.
    pub fn new(ctx: Context, meters: Arc<Meters>) -> Pending {
        Pending {
            ctx,
            meters,
            tracker: Tracker::default(),
            owed: true,
        }
    }

    /// Records a request that failed after `attempts` (none when it never reached upstream).
    pub fn failed(&mut self, kind: switchyard_types::ErrorKind, attempts: &[Attempt]) {
        if !std::mem::take(&mut self.owed) {
            return;
        }
        let end = RequestEnd {
            ctx: &self.ctx,
            served: None,
            failed_attempts: attempts,
            usage: None,
            cost: Money::ZERO,
            usage_estimated: false,
            ttft: None,
            outcome: Outcome::Failed(kind),
            unpriced: false,
            parts: &[],
        };
        emit(&end, &self.meters);
    }

    /// Records a complete answer from `served`.
    pub fn answered(
        &mut self,
        served: &Served,
        usage: Option<TokenUsage>,
        cost: Money,
        unpriced: bool,
    ) -> Option<Durable> {
        if !std::mem::take(&mut self.owed) {
            return None;
        }
        let end = RequestEnd {
            ctx: &self.ctx,
            served: Some(served),
            failed_attempts: &[],
            usage,
            cost,
            usage_estimated: false,
            ttft: None,
            outcome: Outcome::Ok,
            unpriced,
            parts: &[],
        };
        emit(&end, &self.meters)
    }

    /// Hands the record over to whoever ends the request later (a stream's relay).
    pub fn hand_over(&mut self) -> (Context, Arc<Meters>) {
        self.owed = false;
        (self.ctx.clone(), self.meters.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.owed {
            let attempts = self.tracker.snapshot();
            // An upstream call in progress when the client left is likely billed: record an
            // estimate of its input rather than nothing.
            let (usage, cost) = self.tracker.abandoned(self.ctx.input_estimate);
            let billed = usage.input > 0;
            let end = RequestEnd {
                ctx: &self.ctx,
                served: None,
                failed_attempts: &attempts,
                usage: billed.then_some(usage),
                cost,
                usage_estimated: billed,
                ttft: None,
                outcome: Outcome::ClientDisconnected,
                unpriced: false,
                parts: &[],
            };
            emit(&end, &self.meters);
        }
    }
}

/// Names the request's span after its model, once known (OpenTelemetry only).
pub(crate) fn name_span(ctx: &Context) {
    if crate::telemetry::traces_enabled() {
        ctx.span.record("gen_ai.request.model", &*ctx.model);
        // The OTel span has started by now, so its name is set through the OTel API.
        ctx.span
            .context()
            .span()
            .update_name(format!("{} {}", ctx.api.as_str(), ctx.model));
    }
}
