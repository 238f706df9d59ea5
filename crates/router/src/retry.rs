//! Which failures are retried, and how much retrying a request may do.
//!
//! An upstream that answered is retried (on the next deployment) when its status is in the
//! retryable-status table of its protocol, or of the provider when the provider has its own;
//! an upstream that did not answer (connect error, timeout, bytes we could not read) is
//! retried when its [`ErrorKind`] is retryable.

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
