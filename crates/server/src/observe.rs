//! The end of every request, in one place: whatever happened, exactly one [`RequestEnd`] is
//! emitted, and logs, metrics and (with the governance issue) the ledger read it.

use crate::ingress::{Caller, Dialect};
use http::HeaderValue;
use opentelemetry::trace::TraceContextExt;
use std::sync::Arc;
use std::time::Duration;
use switchyard_ledger::{AttemptRecord, LedgerRecord, LedgerWriter, Outcome as LedgerOutcome};
use switchyard_router::{AttemptLog, Deployment};
use switchyard_types::{ErrorKind, Money, TokenUsage};
use tokio::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Who asked for what; known once the request is decoded.
#[derive(Clone)]
pub(crate) struct Context {
    /// The id returned in `x-request-id`.
    pub request_id: HeaderValue,
    /// The front door used.
    pub dialect: Dialect,
    /// The key's id (never its secret).
    pub key_id: Arc<str>,
    /// The key's name.
    pub key: Arc<str>,
    /// The key's team, for managed keys.
    pub team: Option<Arc<str>>,
    /// The request's data class label.
    pub data_class: Option<Arc<str>>,
    /// Where the end of the request is recorded.
    pub ledger: LedgerWriter,
    /// Arrival time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The request's trace span (attempt spans are its children).
    pub span: tracing::Span,
    /// The logical model asked for.
    pub model: Arc<str>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// When the request arrived.
    pub started: Instant,
    /// The request's estimated input tokens, before any upstream counted them.
    pub input_estimate: u64,
}

impl Context {
    /// The context of a request that arrived at `started`, asking `model`.
    pub fn new(
        request_id: &HeaderValue,
        dialect: Dialect,
        caller: &Caller,
        ledger: &LedgerWriter,
        started: Instant,
        (operation, model, stream, input_estimate): (&str, Arc<str>, bool, u64),
    ) -> Context {
        let span = tracing::Span::current();
        if crate::telemetry::traces_enabled() {
            span.record("gen_ai.request.model", &*model);
            // The OTel span has started by now, so its name is set through the OTel API.
            span.context()
                .span()
                .update_name(format!("{operation} {model}"));
        }
        Context {
            span,
            request_id: request_id.clone(),
            dialect,
            key_id: caller.key_id.clone(),
            key: caller.key_name.clone(),
            team: caller.team.clone(),
            data_class: caller.data_class.as_ref().map(|d| d.as_str().into()),
            ledger: ledger.clone(),
            time_ms: switchyard_ledger::now_ms() - started.elapsed().as_millis() as i64,
            model,
            stream,
            started,
            input_estimate,
        }
    }
}

/// Which deployment served a request, after which attempts.
#[derive(Clone)]
pub(crate) struct Served {
    /// The deployment that answered.
    pub deployment: Arc<Deployment>,
    /// Every attempt, the successful one last.
    pub attempts: AttemptLog,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The whole answer reached the client.
    Ok,
    /// It failed; before the first byte the client got an error response, after it an error event.
    Failed(ErrorKind),
    /// The client went away before the answer was complete.
    ClientDisconnected,
}

impl Outcome {
    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed(kind) => kind.as_str(),
            Outcome::ClientDisconnected => "client_disconnected",
        }
    }
}

/// Everything known about a finished request.
pub(crate) struct RequestEnd<'a> {
    /// Who and what.
    pub ctx: &'a Context,
    /// Where it ran (None when no attempt succeeded).
    pub served: Option<&'a Served>,
    /// All attempts when none succeeded (otherwise in `served`).
    pub failed_attempts: &'a AttemptLog,
    /// Token counts reported by the upstream.
    pub usage: Option<TokenUsage>,
    /// Whether `usage` is partly estimated (a stream that broke before its usage arrived).
    pub usage_estimated: bool,
    /// Time to the first byte of a stream reaching the client.
    pub ttft: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// The serving deployment has no known price.
    pub unpriced: bool,
}

impl RequestEnd<'_> {
    /// The cost of the served attempt at the deployment's prices.
    pub fn cost(&self) -> Money {
        match (self.served, self.usage) {
            (Some(s), Some(u)) => s.deployment.prices.cost(&u),
            _ => Money::ZERO,
        }
    }

    /// Emits the request's end to logs, metrics, span attributes and the ledger.
    pub fn emit(&self) {
        let usage = self.usage.unwrap_or_default();
        let cost = self.cost();
        let attempts = self
            .served
            .map_or(self.failed_attempts.len(), |s| s.attempts.len());
        let (deployment, provider) = match self.served {
            Some(s) => (&*s.deployment.id, &*s.deployment.provider.id),
            None => ("", ""),
        };
        tracing::info!(
            request_id = ?self.ctx.request_id,
            dialect = self.ctx.dialect.as_str(),
            key = %self.ctx.key,
            model = %self.ctx.model,
            stream = self.ctx.stream,
            deployment,
            provider,
            attempts,
            input_tokens = usage.input,
            output_tokens = usage.output,
            cached_tokens = usage.cached_input,
            usage_estimated = self.usage_estimated,
            cost_usd = cost.as_usd(),
            latency_ms = self.ctx.started.elapsed().as_millis() as u64,
            ttft_ms = self.ttft.map(|t| t.as_millis() as u64),
            outcome = self.outcome.as_str(),
            "request finished"
        );
        crate::metrics::record(self, cost);
        if crate::telemetry::traces_enabled() {
            let span = &self.ctx.span;
            span.record("gen_ai.usage.input_tokens", usage.input);
            span.record("gen_ai.usage.output_tokens", usage.output);
            span.record("switchyard.outcome", self.outcome.as_str());
            span.record("switchyard.attempts", attempts as u64);
            if let Some(s) = self.served {
                span.record("switchyard.deployment", &*s.deployment.id);
                span.record("gen_ai.provider.name", s.deployment.kind().as_str());
            }
        }
        if let Err(e) = self.ctx.ledger.try_record(self.record(cost)) {
            tracing::error!(request_id = ?self.ctx.request_id, error = %e, "ledger record dropped");
        }
    }

    /// The request's ledger record.
    fn record(&self, cost: Money) -> LedgerRecord {
        let ctx = self.ctx;
        let mut r = LedgerRecord::new(
            ctx.request_id.to_str().unwrap_or_default(),
            ctx.time_ms,
            ctx.model.clone(),
        );
        r.key_id = Some(ctx.key_id.clone());
        r.team = ctx.team.clone();
        r.data_class = ctx.data_class.clone();
        let attempts = self.served.map_or(self.failed_attempts, |s| &s.attempts);
        r.attempts = attempts
            .iter()
            .map(|a| AttemptRecord {
                deployment: a.deployment.clone(),
                provider: a.provider.clone(),
                status: a.status,
                error_kind: a.error,
                latency_ms: a.latency.as_millis() as u64,
            })
            .collect();
        if let Some(s) = self.served {
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
        r.usage = self.usage.unwrap_or_default();
        // A failed request cost nothing; a served one is priced unless its deployment has no price.
        r.price_known = self.served.is_none() || !self.unpriced;
        r.cost = if r.price_known { cost } else { Money::ZERO };
        r.latency_ms = ctx.started.elapsed().as_millis() as u64;
        r.ttft_ms = self.ttft.map(|t| t.as_millis() as u64);
        r.outcome = match self.outcome {
            Outcome::Ok => LedgerOutcome::Ok,
            Outcome::Failed(kind) => LedgerOutcome::Error(kind),
            Outcome::ClientDisconnected => LedgerOutcome::ClientDisconnected,
        };
        r.stream = ctx.stream;
        r
    }
}
