//! The attempt loop: try deployments in plan order, fail over on retryable errors, stop on
//! the first success or on an error another deployment cannot fix. The caller's attempt
//! function decides when a response is committed (for streams: after the first event), so
//! nothing here can fail over after a byte has reached the client.

use crate::{Deployment, Health};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::AttemptError;
use switchyard_types::ErrorKind;
use tokio::time::Instant;

/// What one attempt did, for response headers, logs and the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The deployment tried.
    pub deployment: Arc<str>,
    /// Its provider.
    pub provider: Arc<str>,
    /// `None` on success, else the error kind.
    pub error: Option<ErrorKind>,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Time until the attempt succeeded (was committed) or failed.
    pub latency: Duration,
}

/// Every attempt of one request, in order.
pub type AttemptLog = Vec<Attempt>;

/// Every attempt failed.
#[derive(Debug)]
pub struct Failed {
    /// The error to report to the client (the last one).
    pub error: AttemptError,
    /// What was tried.
    pub attempts: AttemptLog,
}

/// Runs `attempt` on the deployments of `plan` in order, at most `max_attempts` times.
pub async fn run<T, F, Fut>(
    plan: &[Arc<Deployment>],
    health: &Health,
    max_attempts: usize,
    mut attempt: F,
) -> Result<(T, Arc<Deployment>, AttemptLog), Failed>
where
    F: FnMut(Arc<Deployment>) -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut log = AttemptLog::new();
    let mut last_error = None;
    for deployment in plan.iter().take(max_attempts.max(1)) {
        let started = Instant::now();
        let result = attempt(deployment.clone()).await;
        let latency = started.elapsed();
        match result {
            Ok(value) => {
                health.success(&deployment.id);
                log.push(Attempt {
                    deployment: deployment.id.clone(),
                    provider: deployment.provider.id.clone(),
                    error: None,
                    status: Some(200),
                    latency,
                });
                return Ok((value, deployment.clone(), log));
            }
            Err(error) => {
                health.failure(&deployment.id, &error);
                tracing::warn!(
                    deployment = %deployment.id,
                    provider = %deployment.provider.id,
                    kind = %error.kind,
                    error = %error.message,
                    "attempt failed"
                );
                log.push(Attempt {
                    deployment: deployment.id.clone(),
                    provider: deployment.provider.id.clone(),
                    error: Some(error.kind),
                    status: error.status,
                    latency,
                });
                let retryable = error.kind.retryable();
                last_error = Some(error);
                if !retryable {
                    break;
                }
            }
        }
    }
    let error = last_error.unwrap_or_else(|| {
        AttemptError::new(
            ErrorKind::NoCapacity,
            "no deployment is configured for this model",
        )
    });
    Err(Failed {
        error,
        attempts: log,
    })
}
