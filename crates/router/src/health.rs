//! Per-deployment health shared by every request and kept across config reloads: after a
//! failure a deployment cools down (Retry-After when given, else a backoff that doubles with
//! consecutive failures) and is tried after healthy ones until it succeeds again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use switchyard_providers::AttemptError;
use switchyard_types::ErrorKind;
use tokio::time::Instant;

const BASE_COOLDOWN: Duration = Duration::from_secs(1);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

/// Health of every deployment, by deployment id.
#[derive(Debug, Default, Clone)]
pub struct Health {
    inner: Arc<Mutex<HashMap<Arc<str>, State>>>,
}

impl Health {
    /// Whether the deployment is cooling down now.
    pub fn is_cooling(&self, deployment: &str) -> bool {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(deployment)
            .and_then(|s| s.cooling_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Records a successful attempt.
    pub fn success(&self, deployment: &Arc<str>) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = map.get_mut(deployment) {
            *state = State::default();
        }
    }

    /// Records a failed attempt; failures that say nothing about the deployment's health
    /// (the client's own mistakes) are ignored.
    pub fn failure(&self, deployment: &Arc<str>, error: &AttemptError) {
        if !error.kind.retryable() && error.kind != ErrorKind::UpstreamRejected {
            return;
        }
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let state = map.entry(deployment.clone()).or_default();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let backoff = BASE_COOLDOWN
            .saturating_mul(1 << state.consecutive_failures.min(6).saturating_sub(1))
            .min(MAX_COOLDOWN);
        let cooldown = error.retry_after.unwrap_or(backoff);
        state.cooling_until = Some(Instant::now() + cooldown);
    }
}
