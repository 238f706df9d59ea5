//! Errors of the admin side (stores, CLI) and the typed reasons a request is denied.

use crate::model::{Period, RateKind, Scope};
use std::fmt;
use std::time::Duration;
use switchyard_types::{ErrorKind, Money};

/// A failure of a key store, a state store or an admin operation.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// Bad input (a name, a pattern, a budget).
    #[error("{0}")]
    Invalid(String),
    /// No key or team with that id/name.
    #[error("{0} not found")]
    NotFound(String),
    /// A key with that name already exists in the team, or a team with that name.
    #[error("{0} already exists")]
    Conflict(String),
    /// The SQL database failed.
    #[error("key database: {0}")]
    Database(#[from] sqlx::Error),
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Shared state is unreachable and the policy is to fail closed.
    #[error("limit and budget state unavailable: {0}")]
    Unavailable(String),
    /// The key database did not answer within the configured limit.
    #[error("key database did not answer within {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// A stored value could not be decoded (a bug or a hand-edited row).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Writing CLI output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// An unsupported `--db`/`state` URL.
    #[error("unsupported URL `{0}`: use sqlite://PATH, postgres://… or redis://…")]
    UnsupportedUrl(String),
}

impl From<serde_json::Error> for GovernanceError {
    fn from(e: serde_json::Error) -> Self {
        GovernanceError::Corrupt(e.to_string())
    }
}

/// Why a request was refused before reaching any upstream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denied {
    /// The key may not call this model.
    #[error("this key may not use model `{model}`")]
    ModelNotAllowed {
        /// The model asked for.
        model: String,
    },
    /// A requests- or tokens-per-minute limit is used up.
    #[error("{scope} rate limit of {limit} {kind} per minute reached; retry after {}s", retry_secs(*retry_after))]
    RateLimited {
        /// Requests or tokens.
        kind: RateKind,
        /// The key's or the team's limit.
        scope: Scope,
        /// The limit per minute.
        limit: u64,
        /// When the request would fit (Retry-After, rounded up to whole seconds).
        retry_after: Duration,
    },
    /// A hard budget cannot take this request's estimated cost.
    #[error(
        "{scope} {} budget of ${} is used up (${} spent, ${} reserved by requests in flight); it resets at {}",
        period.adjective(), usd(*limit), usd(*spent), usd(*reserved), crate::period::rfc3339(*resets_at_ms)
    )]
    OverBudget {
        /// The key's or the team's budget.
        scope: Scope,
        /// Its period.
        period: Period,
        /// The budget's amount.
        limit: Money,
        /// Settled spend in the current period.
        spent: Money,
        /// Reserved by admitted requests not yet settled.
        reserved: Money,
        /// When the period ends, Unix milliseconds.
        resets_at_ms: i64,
    },
    /// The shared state (Redis) is unreachable and the policy is `fail_closed`.
    #[error("rate limit and budget state is unavailable; try again shortly")]
    Unavailable,
}

fn retry_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

fn usd(m: Money) -> String {
    // Cents are what people budget in; nano-dollars stay in the ledger.
    format!("{:.2}", m.as_usd())
}

impl Denied {
    /// The protocol-neutral kind, for metrics and the generic error mapping.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            Denied::ModelNotAllowed { .. } => ErrorKind::PermissionDenied,
            Denied::RateLimited { .. } | Denied::OverBudget { .. } => ErrorKind::RateLimited,
            Denied::Unavailable => ErrorKind::Overloaded,
        }
    }

    /// The HTTP status to answer with (OpenAI-style; see the crate docs for Anthropic).
    pub fn status(&self) -> u16 {
        match self {
            Denied::ModelNotAllowed { .. } => 403,
            Denied::RateLimited { .. } | Denied::OverBudget { .. } => 429,
            Denied::Unavailable => 503,
        }
    }

    /// The `Retry-After` header value in whole seconds, when there is one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Denied::RateLimited { retry_after, .. } => Some(retry_secs(*retry_after)),
            Denied::Unavailable => Some(1),
            Denied::ModelNotAllowed { .. } | Denied::OverBudget { .. } => None,
        }
    }

    /// A short, stable label for metrics.
    pub fn reason(&self) -> DenyReason {
        match self {
            Denied::ModelNotAllowed { .. } => DenyReason::ModelNotAllowed,
            Denied::RateLimited { .. } => DenyReason::RateLimited,
            Denied::OverBudget { .. } => DenyReason::OverBudget,
            Denied::Unavailable => DenyReason::Unavailable,
        }
    }
}

/// The low-cardinality kind of a denial, for metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// See [`Denied::ModelNotAllowed`].
    ModelNotAllowed,
    /// See [`Denied::RateLimited`].
    RateLimited,
    /// See [`Denied::OverBudget`].
    OverBudget,
    /// See [`Denied::Unavailable`].
    Unavailable,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenyReason::ModelNotAllowed => "model_not_allowed",
            DenyReason::RateLimited => "rate_limited",
            DenyReason::OverBudget => "over_budget",
            DenyReason::Unavailable => "unavailable",
        })
    }
}
