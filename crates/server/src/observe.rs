//! The end of every request, in one place: whatever happened, exactly one [`RequestEnd`] is
//! emitted, and logs, metrics and (with the governance issue) the ledger read it.

use crate::ingress::Dialect;
use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use switchyard_router::{AttemptLog, Deployment};
use switchyard_types::{ErrorKind, Money, TokenUsage};
use tokio::time::Instant;

/// Who asked for what; known once the request is decoded.
#[derive(Clone)]
pub(crate) struct Context {
    /// The id returned in `x-request-id`.
    pub request_id: HeaderValue,
    /// The front door used.
    pub dialect: Dialect,
    /// The key's name (never its secret).
    pub key: Arc<str>,
    /// The logical model asked for.
    pub model: Arc<str>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// When the request arrived.
    pub started: Instant,
    /// The request's estimated input tokens, before any upstream counted them.
    pub input_estimate: u64,
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
}

impl RequestEnd<'_> {
    /// The cost of the served attempt at the deployment's prices.
    pub fn cost(&self) -> Money {
        match (self.served, self.usage) {
            (Some(s), Some(u)) => s.deployment.prices.cost(&u),
            _ => Money::ZERO,
        }
    }

    /// Emits the request's end to logs (and metrics, when enabled).
    pub fn emit(&self) {
        let usage = self.usage.unwrap_or_default();
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
            cost_usd = self.cost().as_usd(),
            latency_ms = self.ctx.started.elapsed().as_millis() as u64,
            ttft_ms = self.ttft.map(|t| t.as_millis() as u64),
            outcome = self.outcome.as_str(),
            "request finished"
        );
    }
}
