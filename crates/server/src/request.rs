//! The request path's shared vocabulary: who is calling ([`Caller`]), what they asked
//! ([`Context`]), where it ran ([`Served`]) and how it ended ([`Outcome`]). A leaf module:
//! every request-path module imports it and it imports none of them.

use http::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::Principal;
use switchyard_ledger::LedgerWriter;
pub(crate) use switchyard_protocol::client::ClientProtocol;
use switchyard_router::{Attempt, AttemptLog, DataClass, Deployment};
use switchyard_types::{ErrorKind, Money, TokenUsage};
use tokio::time::Instant;

/// A client key from the config.
#[derive(Debug)]
pub struct KeyEntry {
    /// The key's name (never the secret).
    pub name: Arc<str>,
    /// Model patterns this key may use: exact names, `*`, or a `prefix*`.
    pub models: Vec<String>,
    /// The data class of this key's requests, when it has one.
    pub data_class: Option<DataClass>,
}

impl KeyEntry {
    /// Whether this key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => p == model,
        })
    }
}

/// What an endpoint does, as logs, metrics and spans name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Chat completions / messages, streamed or not.
    Chat,
    /// Embeddings.
    Embeddings,
    /// Counting a request's input tokens.
    CountTokens,
}

impl Api {
    /// The GenAI operation name (`gen_ai.operation.name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Embeddings => "embeddings",
            Api::CountTokens => "count_tokens",
        }
    }
}

/// The request id header, set on every response and in every log line of the request.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A fresh request id: 16 random bytes in hex.
pub(crate) fn request_id() -> HeaderValue {
    let id: u128 = rand::random();
    HeaderValue::from_str(&format!("req_{id:032x}"))
        .unwrap_or(HeaderValue::from_static("req_unknown"))
}

/// Who is calling: a key from the config file, or a managed key with its team, limits and
/// budgets.
pub(crate) struct Caller {
    /// The key's id (its name for config keys); never the secret.
    pub key_id: Arc<str>,
    /// The key's name.
    pub key_name: Arc<str>,
    /// The owning team (managed keys).
    pub team: Option<Arc<str>>,
    /// The data class of the key's requests.
    pub data_class: Option<DataClass>,
    pub(crate) who: Who,
}

/// Where a caller's key came from.
pub(crate) enum Who {
    /// The config file (no limits or budgets).
    Config(Arc<KeyEntry>),
    /// The keys database.
    Managed(Box<Principal>),
}

impl Caller {
    /// Whether the key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        match &self.who {
            Who::Config(k) => k.allows(model),
            Who::Managed(p) => p.allows_model(model),
        }
    }

    /// The governance principal (managed keys only: config keys carry no limits or budgets).
    pub fn principal(&self) -> Option<&Principal> {
        match &self.who {
            Who::Config(_) => None,
            Who::Managed(p) => Some(p),
        }
    }
}

/// Who asked for what: known from authentication on, the model once the body is decoded.
#[derive(Clone)]
pub(crate) struct Context {
    /// The id returned in `x-request-id`.
    pub request_id: HeaderValue,
    /// The front door used.
    pub dialect: ClientProtocol,
    /// What the endpoint does.
    pub api: Api,
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
    /// The logical model asked for: a configured name once resolved, else what the client
    /// sent (bounded), or empty before the body was decoded.
    pub model: Arc<str>,
    /// Whether `model` is a configured model (metrics label only those, so cardinality stays
    /// bounded).
    pub model_known: bool,
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
    pub failed_attempts: &'a [Attempt],
    /// Token counts reported by the upstream.
    pub usage: Option<TokenUsage>,
    /// What the served attempt cost at its deployment's prices (computed once, when the
    /// capacity permit was settled).
    pub cost: Money,
    /// Whether `usage` is partly estimated (a stream that broke before its usage arrived).
    pub usage_estimated: bool,
    /// Time to the first byte of a stream reaching the client.
    pub ttft: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// The serving deployment has no known price.
    pub unpriced: bool,
    /// The answer's parts, when it came in several (a stream continued elsewhere) or one
    /// had events skipped; empty otherwise.
    pub parts: &'a [Part],
}

/// One deployment's share of a streamed answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part {
    /// Its attempt, as an index into the request's attempts.
    pub attempt: usize,
    /// What it consumed.
    pub usage: TokenUsage,
    /// What that cost at its deployment's prices.
    pub cost: Money,
    /// The usage is partly estimated (the part broke before its usage arrived).
    pub estimated: bool,
    /// Unreadable events skipped in it.
    pub malformed_events: u32,
}

impl RequestEnd<'_> {
    /// Every attempt of the request, in order.
    pub fn attempts(&self) -> &[Attempt] {
        self.served.map_or(self.failed_attempts, |s| &s.attempts)
    }
}

/// Time limits of one attempt, and how its stream is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptLimits {
    /// Until the response headers and until the end.
    pub timeouts: switchyard_providers::Timeouts,
    /// Longest silence inside a stream.
    pub stall: Duration,
    /// Unreadable events, and whether the delivered text is kept for a continuation.
    pub translate: switchyard_protocol::translate::Options,
}
