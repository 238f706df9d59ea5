//! The request path every endpoint runs, in explicit phases:
//! authenticate → decode → route → admit → attempt loop → answer → record.
//!
//! An [`Endpoint`] supplies only what differs (what the decoded request asks for, and one
//! upstream attempt); [`run`] drives the phases, each a small function in [`phases`]. From
//! authentication on, the request owes exactly one end-of-request record (an
//! [`observe::Pending`]): paid here on success or failure, by the stream relay when a stream
//! ends, or on drop when the client goes away mid-request.

pub(crate) mod phases;

use crate::egress::IngressRequest;
use crate::error::ApiError;
use crate::observe::{self, Pending, Tracker};
use crate::relay::{Recovery, Relay};
pub(crate) use crate::request::AttemptLimits;
use crate::request::{Api, Caller, ClientProtocol, Context};
use crate::{AppState, Snapshot};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use std::future::Future;
use std::sync::Arc;
use switchyard_protocol::translate::Options;
use switchyard_providers::AttemptError;
use switchyard_router::{AttemptLog, Deployment, Estimate, Model, Plan, StreamRecovery};
use switchyard_types::TokenUsage;
use tokio::time::Instant;
use tracing::Instrument;

/// Where a request came in: the client's protocol and the endpoint's operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Front {
    /// The protocol errors and answers are written in.
    pub dialect: ClientProtocol,
    /// The operation, for logs, metrics and spans.
    pub api: Api,
}

/// What a decoded request asks for, as routing and governance need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// The model name the client sent.
    pub model: &'a str,
    /// Whether the answer streams.
    pub stream: bool,
    /// Tokens in and (at most) out, for routing limits and the budget reservation.
    pub estimate: Estimate,
    /// Free operations (token counting) reserve and settle no cost.
    pub free: bool,
    /// The output cap the client set, if any (else the deployment's maximum applies).
    pub output_cap: Option<u64>,
    /// Answers asked for (`n`): the output is paid once per answer.
    pub choices: u64,
    /// The body's `switchyard` routing extension, raw JSON.
    pub extension: Option<&'a str>,
}

/// What one successful attempt produced.
pub(crate) enum Answer {
    /// A complete body in the client's protocol, with the usage the upstream reported.
    Complete {
        /// The client's body.
        body: Bytes,
        /// Token counts, when the upstream reported them.
        usage: Option<TokenUsage>,
    },
    /// A stream whose first event has arrived (so the attempt is committed).
    Stream(Relay),
}

/// One endpoint: the parts of the request path that differ between chat, embeddings and
/// token counting. The decoded request is the endpoint value.
pub(crate) trait Endpoint: Send + Sync + 'static {
    /// What the request asks for.
    fn ask(&self) -> Ask<'_>;

    /// Refuses, before routing, a model whose deployments can never serve this endpoint.
    fn check(&self, _model: &Model) -> Result<(), ApiError> {
        Ok(())
    }

    /// Removes planned deployments that cannot serve this endpoint.
    fn narrow(&self, _plan: &mut Plan) {}

    /// The request a broken stream is continued from, when this endpoint streams text.
    fn continuation(&self) -> Option<Arc<IngressRequest>> {
        None
    }

    /// One upstream attempt on `d`.
    fn attempt(
        &self,
        state: &Arc<AppState>,
        d: Arc<Deployment>,
        limits: AttemptLimits,
    ) -> impl Future<Output = Result<Answer, AttemptError>> + Send;
}

/// A request that failed after authentication: the client's error and what was tried.
pub(crate) struct Failure {
    error: ApiError,
    attempts: AttemptLog,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error,
            attempts: AttemptLog::new(),
        }
    }
}

/// Serves one request through every phase and answers in the client's protocol.
pub(crate) async fn run<E: Endpoint>(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    front: Front,
    decode: impl FnOnce(&HeaderMap, Bytes) -> Result<E, ApiError>,
) -> Response {
    let id = crate::request::request_id();
    let started = Instant::now();
    let span = phases::request_span(&id, front.api);
    let result = async {
        let snapshot = state.snapshot();
        // Before the caller is known there is no one to record against: an unauthenticated
        // request is logged and counted (in `finish`), never written to the ledger, so
        // anonymous traffic cannot grow the audit trail.
        let caller = phases::authenticate(&state, &snapshot, &headers)
            .await
            .inspect_err(|e| {
                tracing::info!(kind = %e.kind, error = %e.message, "request rejected");
            })?;
        let ctx = Context::new(&id, front, &caller, &state.runtime.ledger, started);
        let mut pending = Pending::new(ctx, snapshot.meters.clone());
        let served = serve(
            &state,
            &snapshot,
            &headers,
            body,
            decode,
            &caller,
            &mut pending,
        )
        .await;
        served.map_err(|f| {
            pending.failed(f.error.kind, &f.attempts);
            f.error
        })
    }
    .instrument(span)
    .await;
    phases::finish(result, id, front.dialect)
}

/// The phases after authentication; every error return is recorded by the caller.
async fn serve<E: Endpoint>(
    state: &Arc<AppState>,
    snapshot: &Arc<Snapshot>,
    headers: &HeaderMap,
    body: Body,
    decode: impl FnOnce(&HeaderMap, Bytes) -> Result<E, ApiError>,
    caller: &Caller,
    pending: &mut Pending,
) -> Result<Response, Failure> {
    // Decode.
    let bytes = phases::read_body(headers, body, snapshot.settings.max_body_bytes).await?;
    let endpoint = decode(headers, bytes)?;
    let ask = endpoint.ask();
    pending.ctx.asks(&ask);
    let model = phases::resolve_model(snapshot, caller, ask.model)?;
    pending.ctx.resolved(model);
    endpoint.check(model)?;
    // Route.
    let preferences = phases::preferences(headers, ask.extension)?;
    let mut plan = phases::route(state, snapshot, &model.name, caller, &preferences, &ask)?;
    endpoint.narrow(&mut plan);
    // Admit.
    let admission = phases::admit(state, caller, &model.name, &plan, &ask).await?;
    // Attempt loop.
    let recovery = model.streams.recovery == StreamRecovery::Continue && ask.stream;
    let translate = Options {
        malformed: model.streams.malformed,
        keep_text: recovery,
    };
    let budget = snapshot.catalog.policy().budget;
    let (ctx, tracker): (&Context, &Tracker) = (&pending.ctx, &pending.tracker);
    let planned = &plan;
    let served = switchyard_router::execute(planned, &state.health, &budget, |d| {
        let limits =
            (snapshot.settings).attempt_limits(planned.model_of(&d), &d, ask.stream, translate);
        let i = tracker.start(&d);
        let span = phases::attempt_span(ctx, &d);
        let attempt = endpoint.attempt(state, d, limits);
        async move {
            let result = phases::traced(attempt, span).await;
            tracker.end(i, &result);
            result
        }
    })
    .await
    .map_err(|f| {
        // The client gets a stable message; the provider's own words are kept here.
        tracing::info!(kind = %f.error.kind, error = %f.error.message, "every attempt failed");
        Failure {
            error: ApiError::from(f.error),
            attempts: f.attempts,
        }
    })?;
    // Answer and record.
    let recovery = endpoint
        .continuation()
        .filter(|_| recovery)
        .map(|request| Recovery {
            state: state.clone(),
            request,
            snapshot: snapshot.clone(),
            plan,
            budget,
            translate,
        });
    Ok(phases::respond(
        served, admission, pending, snapshot, recovery,
    ))
}

impl Context {
    /// The context of an authenticated request that arrived at `started`.
    pub fn new(
        request_id: &HeaderValue,
        front: Front,
        caller: &Caller,
        ledger: &switchyard_ledger::LedgerWriter,
        started: Instant,
    ) -> Context {
        Context {
            span: tracing::Span::current(),
            request_id: request_id.clone(),
            dialect: front.dialect,
            api: front.api,
            key_id: caller.key_id.clone(),
            key: caller.key_name.clone(),
            team: caller.team.clone(),
            data_class: caller.data_class.as_ref().map(|d| d.as_str().into()),
            ledger: ledger.clone(),
            time_ms: switchyard_ledger::now_ms() - started.elapsed().as_millis() as i64,
            model: Arc::from(""),
            model_known: false,
            stream: false,
            started,
            input_estimate: 0,
        }
    }

    /// Notes what the decoded request asks for; the model as sent, bounded, until resolved.
    fn asks(&mut self, ask: &Ask<'_>) {
        const MAX_MODEL_BYTES: usize = 256;
        let mut end = ask.model.len().min(MAX_MODEL_BYTES);
        while !ask.model.is_char_boundary(end) {
            end -= 1;
        }
        self.model = Arc::from(&ask.model[..end]);
        self.stream = ask.stream;
        self.input_estimate = ask.estimate.input_tokens;
    }

    /// Notes the configured model the request resolved to.
    fn resolved(&mut self, model: &Model) {
        self.model = model.name.clone();
        self.model_known = true;
        observe::name_span(self);
    }
}
