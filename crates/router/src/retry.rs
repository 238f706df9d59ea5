//! Which failures are retried, where, and how much retrying a request may do.
//!
//! Two tables decide. The retryable-status table (per protocol, or per provider) says
//! whether another attempt may succeed at all: an upstream that answered with a status
//! outside it is final; one that did not answer (connect error, timeout, bytes we could not
//! read) may be retried when its [`ErrorKind`] is retryable. Then the [`RetryRules`] (global,
//! overridable per model) give each [`ErrorClass`] its [`Action`]: retry the same
//! deployment, fail over to the next candidate, or fail. A context-length error is never
//! retried anywhere but on the model's context fallbacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::{AttemptError, ProviderSpec};
use switchyard_types::{ErrorKind, ProviderKind};

/// A set of HTTP statuses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusSet(Vec<u16>);

impl StatusSet {
    /// A set of the given statuses.
    pub fn new(statuses: impl IntoIterator<Item = u16>) -> StatusSet {
        let mut v: Vec<u16> = statuses.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        StatusSet(v)
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0.binary_search(&status).is_ok()
    }

    /// The statuses, ascending.
    pub fn statuses(&self) -> &[u16] {
        &self.0
    }
}

/// The retryable-status tables: one per protocol, optionally one per provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    by_kind: HashMap<ProviderKind, StatusSet>,
    by_provider: HashMap<Arc<str>, StatusSet>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            by_kind: ProviderKind::ALL
                .iter()
                .map(|k| (*k, RetryPolicy::default_statuses(*k)))
                .collect(),
            by_provider: HashMap::new(),
        }
    }
}

impl RetryPolicy {
    /// The built-in table of a protocol: rejected credentials or deployment names (401, 403,
    /// 404: another deployment may be configured right), timeouts, rate limits and server
    /// errors, plus each protocol's own overload signal (Anthropic 529).
    pub fn default_statuses(kind: ProviderKind) -> StatusSet {
        let mut s = vec![401, 403, 404, 408, 429, 500, 502, 503, 504];
        if kind == ProviderKind::Anthropic {
            s.push(529);
        }
        StatusSet::new(s)
    }

    /// Replaces the table of a protocol.
    pub fn set_kind(&mut self, kind: ProviderKind, statuses: StatusSet) {
        self.by_kind.insert(kind, statuses);
    }

    /// Gives a provider its own table.
    pub fn set_provider(&mut self, provider: Arc<str>, statuses: StatusSet) {
        self.by_provider.insert(provider, statuses);
    }

    /// The table that applies to `provider`.
    pub fn table(&self, provider: &ProviderSpec) -> StatusSet {
        self.by_provider
            .get(&provider.id)
            .or_else(|| self.by_kind.get(&provider.kind))
            .cloned()
            .unwrap_or_else(|| RetryPolicy::default_statuses(provider.kind))
    }

    /// Whether another attempt may succeed where `error` from `provider` failed.
    pub fn is_retryable(&self, provider: &ProviderSpec, error: &AttemptError) -> bool {
        // Errors we make up ourselves are never the next deployment's business.
        if matches!(
            error.kind,
            ErrorKind::Internal | ErrorKind::InvalidRequest | ErrorKind::PayloadTooLarge
        ) && error.status.is_none()
        {
            return false;
        }
        match error.status {
            Some(status) => {
                let table = self
                    .by_provider
                    .get(&provider.id)
                    .or_else(|| self.by_kind.get(&provider.kind));
                match table {
                    Some(t) => t.contains(status),
                    None => RetryPolicy::default_statuses(provider.kind).contains(status),
                }
            }
            None => error.kind.retryable(),
        }
    }
}

/// What kind of failure an attempt met, for the [`RetryRules`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The upstream answered 5xx (`UpstreamServer`).
    ServerError,
    /// Could not connect, or the connection broke (reset) or carried bytes we could not read.
    Connect,
    /// The upstream did not answer within the attempt's time limits.
    Timeout,
    /// The upstream said it is overloaded (Anthropic 529, Gemini UNAVAILABLE, Bedrock
    /// ServiceUnavailable): better served elsewhere than retried at once.
    Overloaded,
    /// A rate limit (429); see [`RetryRules::retry_after_wait_max`].
    RateLimited,
    /// The upstream refused the gateway's credentials or deployment name (401, 403, 404).
    Auth,
    /// The upstream's safety filter refused the content.
    ContentFilter,
    /// Any other client error (400, 413, 422), reached only when a status table lists it.
    InvalidRequest,
}

impl ErrorClass {
    /// Every class, in table order.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::ServerError,
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Overloaded,
        ErrorClass::RateLimited,
        ErrorClass::Auth,
        ErrorClass::ContentFilter,
        ErrorClass::InvalidRequest,
    ];

    /// The class of an error kind; `None` for the kinds no table decides (context length,
    /// and the gateway's own errors).
    pub fn of(kind: ErrorKind) -> Option<ErrorClass> {
        Some(match kind {
            ErrorKind::UpstreamServer => ErrorClass::ServerError,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamProtocol => ErrorClass::Connect,
            ErrorKind::UpstreamTimeout => ErrorClass::Timeout,
            ErrorKind::Overloaded | ErrorKind::NoCapacity => ErrorClass::Overloaded,
            ErrorKind::RateLimited => ErrorClass::RateLimited,
            ErrorKind::UpstreamRejected
            | ErrorKind::Authentication
            | ErrorKind::PermissionDenied => ErrorClass::Auth,
            ErrorKind::ContentFilter => ErrorClass::ContentFilter,
            ErrorKind::InvalidRequest | ErrorKind::PayloadTooLarge | ErrorKind::NotFound => {
                ErrorClass::InvalidRequest
            }
            ErrorKind::ContextLengthExceeded | ErrorKind::Internal => return None,
        })
    }

    /// Whether a deployment that failed so is left out of the request's later rounds too:
    /// rejected credentials stay rejected.
    pub fn rules_out_deployment(self) -> bool {
        self == ErrorClass::Auth
    }

    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::ServerError => "server_error",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Auth => "auth",
            ErrorClass::ContentFilter => "content_filter",
            ErrorClass::InvalidRequest => "invalid_request",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the attempt loop does after a failure of one [`ErrorClass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Retry the same deployment (up to [`RetryRules::same_deployment`] times; for rate
    /// limits: once, after the Retry-After, on the preferred deployment), then fail over.
    Retry,
    /// Try the next candidate at once.
    Failover,
    /// Answer the client with this error.
    Fail,
}

/// The retry table: an [`Action`] per [`ErrorClass`] and the limits of same-deployment
/// retries. Global in `[retry]`, overridable per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRules {
    actions: [Action; ErrorClass::ALL.len()],
    /// Retries on the same deployment for a class whose action is [`Action::Retry`] (a
    /// rate limit is waited out at most once).
    pub same_deployment: u32,
    /// The longest Retry-After waited out on the preferred deployment; a longer one fails
    /// over at once.
    pub retry_after_wait_max: Duration,
}

impl Default for RetryRules {
    /// Transient failures (5xx, connect errors and resets) retry the same deployment once;
    /// a rate limit with a Retry-After up to 2 s is waited out on the preferred deployment;
    /// timeouts, overload and rejected credentials fail over; content the upstream refused
    /// and other client errors fail.
    fn default() -> Self {
        let mut actions = [Action::Failover; ErrorClass::ALL.len()];
        for (class, action) in [
            (ErrorClass::ServerError, Action::Retry),
            (ErrorClass::Connect, Action::Retry),
            (ErrorClass::RateLimited, Action::Retry),
            (ErrorClass::ContentFilter, Action::Fail),
            (ErrorClass::InvalidRequest, Action::Failover),
        ] {
            actions[class.index()] = action;
        }
        RetryRules {
            actions,
            same_deployment: 1,
            retry_after_wait_max: Duration::from_secs(2),
        }
    }
}

impl RetryRules {
    /// The action for a class.
    pub fn action(&self, class: ErrorClass) -> Action {
        self.actions[class.index()]
    }

    /// Sets the action for a class.
    pub fn set_action(&mut self, class: ErrorClass, action: Action) {
        self.actions[class.index()] = action;
    }
}

/// Where the attempt that failed stood, for [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempted {
    /// Same-deployment retries already made on this deployment.
    pub retries: u32,
    /// The deployment is the plan's first candidate.
    pub preferred: bool,
    /// Time left in the request's budget.
    pub time_left: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same deployment again after this wait.
    RetrySame(Duration),
    /// Try the next candidate.
    Failover,
    /// Go on with the model's context fallbacks (or fail with the error if it has none).
    ContextFallback,
    /// Answer the client with the error.
    Stop,
}

impl Decision {
    /// Whether another attempt follows (somewhere).
    pub fn retries(self) -> bool {
        !matches!(self, Decision::Stop)
    }
}

/// Exponential backoff with full jitter between retry rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first round's ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The wait before retry round `round` (1-based): uniform in [0, min(max, base·2^(round-1))]
    /// given `unit` in [0, 1).
    pub fn delay(&self, round: u32, unit: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << round.saturating_sub(1).min(20))
            .min(self.max);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

impl RetryPolicy {
    /// The decision the `rules` give for `error` from `provider`. `backoff_wait` is the
    /// pause before a transient retry (the caller's jittered backoff).
    pub fn decide(
        &self,
        rules: &RetryRules,
        provider: &ProviderSpec,
        error: &AttemptError,
        at: Attempted,
        backoff_wait: Duration,
    ) -> Decision {
        if error.kind == ErrorKind::ContextLengthExceeded {
            return Decision::ContextFallback;
        }
        if !self.is_retryable(provider, error) {
            return Decision::Stop;
        }
        let Some(class) = ErrorClass::of(error.kind) else {
            return Decision::Stop;
        };
        match rules.action(class) {
            Action::Fail => Decision::Stop,
            Action::Failover => Decision::Failover,
            Action::Retry if class == ErrorClass::RateLimited => match error.retry_after {
                Some(wait)
                    if at.preferred
                        && at.retries == 0
                        && wait <= rules.retry_after_wait_max
                        && wait < at.time_left =>
                {
                    Decision::RetrySame(wait)
                }
                _ => Decision::Failover,
            },
            Action::Retry => {
                // A 5xx that asks for a pause gets it, bounded like a rate limit's.
                let wait = error.retry_after.unwrap_or(backoff_wait);
                if at.retries < rules.same_deployment
                    && wait <= rules.retry_after_wait_max.max(backoff_wait)
                    && wait < at.time_left
                {
                    Decision::RetrySame(wait)
                } else {
                    Decision::Failover
                }
            }
        }
    }
}

/// How much one request may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Upstream attempts at most, hedges and retries included.
    pub max_attempts: usize,
    /// No attempt starts (and none runs on) past this long after the request began.
    pub time: Duration,
    /// Waits between retry rounds over the plan.
    pub backoff: Backoff,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_attempts: 3,
            time: Duration::from_secs(600),
            backoff: Backoff::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::provider;

    fn answered(status: u16, kind: ErrorKind) -> AttemptError {
        let mut e = AttemptError::new(kind, "x");
        e.status = Some(status);
        e
    }

    #[test]
    fn tables_decide_answered_errors_and_kinds_decide_the_rest() {
        let mut policy = RetryPolicy::default();
        let anthropic = provider("a", ProviderKind::Anthropic);
        let openai = provider("o", ProviderKind::OpenAi);
        let overloaded = answered(529, ErrorKind::Overloaded);
        assert!(policy.is_retryable(&anthropic, &overloaded));
        assert!(!policy.is_retryable(&openai, &answered(400, ErrorKind::InvalidRequest)));
        assert!(policy.is_retryable(&openai, &answered(503, ErrorKind::UpstreamServer)));
        assert!(policy.is_retryable(
            &openai,
            &AttemptError::new(ErrorKind::UpstreamTimeout, "slow")
        ));
        assert!(!policy.is_retryable(&openai, &AttemptError::new(ErrorKind::Internal, "bug")));
        // A provider that signals overload with 400 gets its own table.
        policy.set_provider("o".into(), StatusSet::new([400, 429]));
        assert!(policy.is_retryable(&openai, &answered(400, ErrorKind::InvalidRequest)));
        assert!(!policy.is_retryable(&openai, &answered(503, ErrorKind::UpstreamServer)));
    }

    fn at(retries: u32, preferred: bool) -> Attempted {
        Attempted {
            retries,
            preferred,
            time_left: Duration::from_secs(60),
        }
    }

    const PAUSE: Duration = Duration::from_millis(10);

    #[test]
    fn the_default_table_decides_each_class() {
        let policy = RetryPolicy::default();
        let rules = RetryRules::default();
        let p = provider("o", ProviderKind::OpenAi);
        let decide = |e: &AttemptError, a: Attempted| policy.decide(&rules, &p, e, a, PAUSE);
        let server = answered(500, ErrorKind::UpstreamServer);
        assert_eq!(decide(&server, at(0, true)), Decision::RetrySame(PAUSE));
        assert_eq!(decide(&server, at(0, false)), Decision::RetrySame(PAUSE));
        assert_eq!(decide(&server, at(1, true)), Decision::Failover);
        let reset = AttemptError::new(ErrorKind::UpstreamConnect, "reset");
        assert_eq!(decide(&reset, at(0, false)), Decision::RetrySame(PAUSE));
        let timeout = AttemptError::new(ErrorKind::UpstreamTimeout, "slow");
        assert_eq!(decide(&timeout, at(0, true)), Decision::Failover);
        for status in [401, 403] {
            let e = answered(status, ErrorKind::UpstreamRejected);
            assert_eq!(decide(&e, at(0, true)), Decision::Failover, "{status}");
        }
        let mut limited = answered(429, ErrorKind::RateLimited);
        assert_eq!(decide(&limited, at(0, true)), Decision::Failover, "no hint");
        limited.retry_after = Some(Duration::from_secs(1));
        assert_eq!(
            decide(&limited, at(0, true)),
            Decision::RetrySame(Duration::from_secs(1))
        );
        assert_eq!(decide(&limited, at(0, false)), Decision::Failover);
        assert_eq!(decide(&limited, at(1, true)), Decision::Failover);
        limited.retry_after = Some(Duration::from_secs(3));
        assert_eq!(
            decide(&limited, at(0, true)),
            Decision::Failover,
            "too long"
        );
        let filtered = answered(400, ErrorKind::ContentFilter);
        assert_eq!(decide(&filtered, at(0, true)), Decision::Stop);
        let invalid = answered(400, ErrorKind::InvalidRequest);
        assert_eq!(decide(&invalid, at(0, true)), Decision::Stop);
        let long = answered(400, ErrorKind::ContextLengthExceeded);
        assert_eq!(decide(&long, at(0, true)), Decision::ContextFallback);
    }

    #[test]
    fn rules_override_actions_and_limits() {
        let policy = RetryPolicy::default();
        let mut rules = RetryRules::default();
        rules.set_action(ErrorClass::ServerError, Action::Failover);
        rules.set_action(ErrorClass::Auth, Action::Fail);
        rules.same_deployment = 3;
        let p = provider("o", ProviderKind::OpenAi);
        let decide = |e: &AttemptError, a: Attempted| policy.decide(&rules, &p, e, a, PAUSE);
        assert_eq!(
            decide(&answered(500, ErrorKind::UpstreamServer), at(0, true)),
            Decision::Failover
        );
        assert_eq!(
            decide(&answered(401, ErrorKind::UpstreamRejected), at(0, true)),
            Decision::Stop
        );
        let reset = AttemptError::new(ErrorKind::UpstreamConnect, "reset");
        assert_eq!(decide(&reset, at(2, true)), Decision::RetrySame(PAUSE));
        assert_eq!(decide(&reset, at(3, true)), Decision::Failover);
        // A wait longer than the budget has left is not worth it.
        let mut limited = answered(429, ErrorKind::RateLimited);
        limited.retry_after = Some(Duration::from_secs(1));
        let short = Attempted {
            time_left: Duration::from_millis(500),
            ..at(0, true)
        };
        assert_eq!(decide(&limited, short), Decision::Failover);
    }

    proptest::proptest! {
        /// Whatever the table says, a status outside the retryable-status table is final,
        /// a context-length error goes to the context fallbacks, and a same-deployment retry
        /// happens only within the configured count and the budget.
        #[test]
        fn decisions_respect_the_tables(
            status in 400u16..600,
            class in 0usize..ErrorClass::ALL.len(),
            action in 0usize..3,
            retries in 0u32..4,
            same in 0u32..3,
            preferred: bool,
            wait_ms in proptest::option::of(0u64..5_000),
            left_ms in 0u64..5_000,
        ) {
            let kinds = [
                ErrorKind::UpstreamServer, ErrorKind::UpstreamConnect, ErrorKind::UpstreamTimeout,
                ErrorKind::Overloaded, ErrorKind::RateLimited, ErrorKind::UpstreamRejected,
                ErrorKind::ContentFilter, ErrorKind::InvalidRequest,
            ];
            let mut rules = RetryRules { same_deployment: same, ..RetryRules::default() };
            let class = ErrorClass::ALL[class];
            rules.set_action(class, [Action::Retry, Action::Failover, Action::Fail][action]);
            let mut e = answered(status, kinds[class.index()]);
            e.retry_after = wait_ms.map(Duration::from_millis);
            let policy = RetryPolicy::default();
            let p = provider("o", ProviderKind::OpenAi);
            let a = Attempted { retries, preferred, time_left: Duration::from_millis(left_ms) };
            let d = policy.decide(&rules, &p, &e, a, PAUSE);
            if !RetryPolicy::default_statuses(ProviderKind::OpenAi).contains(status) {
                proptest::prop_assert_eq!(d, Decision::Stop);
            }
            if rules.action(class) == Action::Fail {
                proptest::prop_assert_eq!(d, Decision::Stop);
            }
            if let Decision::RetrySame(wait) = d {
                proptest::prop_assert_eq!(rules.action(class), Action::Retry);
                proptest::prop_assert!(wait < a.time_left);
                if class == ErrorClass::RateLimited {
                    proptest::prop_assert!(preferred && retries == 0);
                    proptest::prop_assert!(wait <= rules.retry_after_wait_max);
                } else {
                    proptest::prop_assert!(retries < same);
                }
            }
            let mut long = e.clone();
            long.kind = ErrorKind::ContextLengthExceeded;
            proptest::prop_assert_eq!(policy.decide(&rules, &p, &long, a, PAUSE), Decision::ContextFallback);
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(350));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(175));
    }
}
