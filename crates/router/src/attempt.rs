//! The attempt loop: try the plan's candidates in order, fail over on retryable errors, retry
//! the plan in rounds with backoff while the budget lasts, optionally hedge non-streaming
//! requests, and stop on the first success or on an error another deployment cannot fix.
//!
//! The caller's attempt function decides when a response is committed (for streams: after
//! the first event), so nothing here can fail over after a byte has reached the client.

use crate::health::Permit;
use crate::plan::{Candidate, Plan};
use crate::retry::{Attempted, Budget, Decision, ErrorClass};
use crate::{Deployment, Health};
use std::future::Future;
use std::pin::pin;
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
    /// `None` on success (or when cancelled), else the error kind.
    pub error: Option<ErrorKind>,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Time until the attempt succeeded (was committed), failed or was cancelled.
    pub latency: Duration,
    /// Whether the failure was one another attempt may fix.
    pub retryable: bool,
    /// Started as a hedge while an earlier attempt was still running.
    pub hedge: bool,
    /// The breaker's half-open probe.
    pub probe: bool,
    /// Cancelled because a concurrent (hedged) attempt answered first.
    pub cancelled: bool,
}

/// Every attempt of one request, in order.
pub type AttemptLog = Vec<Attempt>;

/// Every attempt failed (or none could start).
#[derive(Debug)]
pub struct Failed {
    /// The error to report to the client (the last one).
    pub error: AttemptError,
    /// What was tried.
    pub attempts: AttemptLog,
}

/// A served request.
#[derive(Debug)]
#[must_use = "the permit must be held until the response ends, then settled"]
pub struct Served<T> {
    /// What the winning attempt returned.
    pub value: T,
    /// Where it ran.
    pub deployment: Arc<Deployment>,
    /// The model it served (the requested one or a fallback).
    pub model: Arc<str>,
    /// Every attempt, the winner included.
    pub attempts: AttemptLog,
    /// The capacity taken; hold it until the body ends, then settle it with the usage.
    pub permit: Permit,
}

struct Running<'p> {
    candidate: &'p Candidate,
    /// Its position in the list being tried.
    index: usize,
    permit: Permit,
    started: Instant,
    hedge: bool,
}

impl Running<'_> {
    fn entry(&self, error: Option<&AttemptError>, retryable: bool, cancelled: bool) -> Attempt {
        let d = &self.candidate.deployment;
        Attempt {
            deployment: d.id.clone(),
            provider: d.provider.id.clone(),
            error: error.map(|e| e.kind),
            status: if cancelled {
                None
            } else {
                error.map_or(Some(200), |e| e.status)
            },
            latency: self.started.elapsed(),
            retryable,
            hedge: self.hedge,
            probe: self.permit.is_probe(),
            cancelled,
        }
    }
}

/// What to do after an attempt ended.
enum Step<T> {
    /// The request is over (served, or failed for good).
    Done(Result<Served<T>, Failed>),
    /// Try the next candidate.
    Next,
}

/// What failures did to one position of the list being tried.
#[derive(Debug, Clone, Copy, Default)]
struct Tried {
    /// Same-deployment retries made.
    retries: u32,
    /// Not to be tried again in this request.
    ruled_out: bool,
}

struct Loop<'p> {
    plan: &'p Plan,
    /// The candidates being tried: the plan's, or its context fallbacks' after a
    /// context-length error.
    list: &'p [Candidate],
    /// `list` is the context fallbacks'.
    on_context: bool,
    /// What failures did to each position in `list`; empty until the first failure, so a
    /// request served at once allocates nothing for it.
    tried: Vec<Tried>,
    /// The next attempt goes to this position (a same-deployment retry, or the start of the
    /// context fallbacks) ...
    rewind: Option<usize>,
    /// ... after this pause (a backoff or the upstream's Retry-After).
    pause: Option<Duration>,
    health: &'p Health,
    budget: &'p Budget,
    deadline: Instant,
    log: AttemptLog,
    last_error: Option<AttemptError>,
    last_retryable: bool,
    hedged: bool,
}

impl<'p> Loop<'p> {
    fn out_of_budget(&self) -> bool {
        self.log.len() >= self.budget.max_attempts.max(1) || Instant::now() >= self.deadline
    }

    /// Admits the next candidate from `*next` on, skipping those without health or capacity
    /// (they may have changed since planning).
    fn admit_next(&mut self, next: &mut usize, hedge: bool) -> Option<Running<'p>> {
        let plan = self.plan;
        while let Some(candidate) = self.list.get(*next) {
            let index = *next;
            *next += 1;
            if self.tried.get(index).is_some_and(|t| t.ruled_out) {
                continue;
            }
            match self.health.admit(
                &candidate.deployment,
                plan.estimate.tokens(),
                &plan.policy.breaker,
            ) {
                Ok(permit) => {
                    return Some(Running {
                        candidate,
                        index,
                        permit,
                        started: Instant::now(),
                        hedge,
                    })
                }
                Err(reason) => {
                    tracing::debug!(deployment = %candidate.deployment.id, %reason, "skipped");
                }
            }
        }
        None
    }

    /// Records how an attempt ended and decides what comes next.
    fn conclude<T>(&mut self, mut run: Running<'p>, result: Result<T, AttemptError>) -> Step<T> {
        match result {
            Ok(value) => {
                run.permit
                    .succeeded(run.started.elapsed(), self.plan.stream);
                self.log.push(run.entry(None, false, false));
                Step::Done(Ok(Served {
                    value,
                    deployment: run.candidate.deployment.clone(),
                    model: run.candidate.model.clone(),
                    attempts: std::mem::take(&mut self.log),
                    permit: run.permit,
                }))
            }
            Err(error) => {
                let d = &run.candidate.deployment;
                run.permit
                    .failed(&error, self.plan.policy.rate_limit_cooldown);
                let decision = self.decide(&run, &error);
                let retryable = decision.retries();
                tracing::warn!(
                    deployment = %d.id,
                    provider = %d.provider.id,
                    kind = %error.kind,
                    ?decision,
                    error = %error.message,
                    "attempt failed"
                );
                self.log.push(run.entry(Some(&error), retryable, false));
                if ErrorClass::of(error.kind).is_some_and(ErrorClass::rules_out_deployment) {
                    self.tried(run.index).ruled_out = true;
                }
                self.last_error = Some(error);
                self.last_retryable = retryable;
                self.follow(decision, run.index)
            }
        }
    }

    /// The failure record of position `index` of `list`.
    fn tried(&mut self, index: usize) -> &mut Tried {
        if self.tried.len() < self.list.len() {
            self.tried.resize(self.list.len(), Tried::default());
        }
        &mut self.tried[index]
    }

    /// What the retry table says about `error`. Hedged requests never retry in place: their
    /// rival is already running elsewhere.
    fn decide(&self, run: &Running<'p>, error: &AttemptError) -> Decision {
        let at = Attempted {
            retries: self.tried.get(run.index).map_or(0, |t| t.retries),
            preferred: run.index == 0 && !self.on_context,
            time_left: self.deadline.saturating_duration_since(Instant::now()),
        };
        let pause = self.budget.backoff.delay(1, rand::random::<f64>());
        let provider = &run.candidate.deployment.provider;
        match (self.plan.policy.retry).decide(&self.plan.retry, provider, error, at, pause) {
            Decision::RetrySame(_) if self.hedged => Decision::Failover,
            // Among the context fallbacks, the next one may be larger still.
            Decision::ContextFallback if self.on_context => Decision::Failover,
            Decision::ContextFallback if self.plan.context_candidates.is_empty() => Decision::Stop,
            d => d,
        }
    }

    /// Sets up the attempt a decision calls for.
    fn follow<T>(&mut self, decision: Decision, index: usize) -> Step<T> {
        match decision {
            Decision::Stop => Step::Done(Err(self.fail())),
            Decision::Failover => Step::Next,
            Decision::RetrySame(wait) => {
                self.tried(index).retries += 1;
                self.rewind = Some(index);
                self.pause = Some(wait);
                Step::Next
            }
            // The other deployments of a model share its context window: go straight to
            // the larger models.
            Decision::ContextFallback => {
                let context = &self.plan.context_candidates[..];
                self.on_context = true;
                self.list = context;
                self.tried.clear();
                self.rewind = Some(0);
                Step::Next
            }
        }
    }

    /// Logs an attempt dropped because its rival answered first; dropping the permit frees
    /// its slot (and a half-open probe) without judging the deployment.
    fn cancel(&mut self, run: Running<'p>) {
        self.log.push(run.entry(None, false, true));
    }

    fn fail(&mut self) -> Failed {
        let error = self.last_error.take().unwrap_or_else(|| {
            AttemptError::new(
                ErrorKind::NoCapacity,
                "no eligible deployment had the health or capacity to take the request",
            )
        });
        Failed {
            error,
            attempts: std::mem::take(&mut self.log),
        }
    }
}

fn budget_timeout<T>(_: tokio::time::error::Elapsed) -> Result<T, AttemptError> {
    Err(AttemptError::new(
        ErrorKind::UpstreamTimeout,
        "the request's time budget ran out before an upstream answered",
    ))
}

/// Runs `attempt` over the plan's candidates under `budget`: attempts per admitted candidate,
/// in order, as the plan's retry table says (the same deployment again, the next one, the
/// context fallbacks, or stop); when a round over the plan ends in retryable failures and
/// budget is left, waits a jittered exponential backoff and goes round again. Hedges non-streaming
/// requests when the plan says so (at most one hedge per request).
pub async fn execute<T, F, Fut>(
    plan: &Plan,
    health: &Health,
    budget: &Budget,
    mut attempt: F,
) -> Result<Served<T>, Failed>
where
    F: FnMut(Arc<Deployment>) -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut l = Loop {
        plan,
        list: &plan.candidates,
        on_context: false,
        tried: Vec::new(),
        rewind: None,
        pause: None,
        health,
        budget,
        deadline: Instant::now() + budget.time,
        log: AttemptLog::new(),
        last_error: None,
        last_retryable: false,
        hedged: false,
    };
    let mut round = 0u32;
    loop {
        let mut next = 0usize;
        let mut admitted = false;
        while !l.out_of_budget() {
            if let Some(i) = l.rewind.take() {
                next = i;
            }
            if let Some(wait) = l.pause.take() {
                tokio::time::sleep_until((Instant::now() + wait).min(l.deadline)).await;
                if l.out_of_budget() {
                    break;
                }
            }
            let Some(first) = l.admit_next(&mut next, false) else {
                break;
            };
            admitted = true;
            let deadline = l.deadline;
            let mut f1 = pin!(tokio::time::timeout_at(
                deadline,
                attempt(first.candidate.deployment.clone())
            ));
            let hedging = plan
                .hedging
                .filter(|_| !plan.stream && !l.hedged && l.log.len() + 2 <= budget.max_attempts);
            let Some(hedging) = hedging else {
                let result = f1.await.unwrap_or_else(budget_timeout);
                match l.conclude(first, result) {
                    Step::Done(done) => return done,
                    Step::Next => continue,
                }
            };
            let delay = hedging
                .percentile
                .and_then(|p| health.latency_percentile(&first.candidate.deployment.id, p))
                .unwrap_or(hedging.delay);
            let early = tokio::select! {
                r = &mut f1 => Some(r.unwrap_or_else(budget_timeout)),
                () = tokio::time::sleep(delay) => None,
            };
            if let Some(result) = early {
                match l.conclude(first, result) {
                    Step::Done(done) => return done,
                    Step::Next => continue,
                }
            }
            l.hedged = true;
            let Some(second) = l.admit_next(&mut next, true) else {
                let result = f1.await.unwrap_or_else(budget_timeout);
                match l.conclude(first, result) {
                    Step::Done(done) => return done,
                    Step::Next => continue,
                }
            };
            let mut f2 = pin!(tokio::time::timeout_at(
                deadline,
                attempt(second.candidate.deployment.clone())
            ));
            let (first_done, result) = tokio::select! {
                r = &mut f1 => (true, r.unwrap_or_else(budget_timeout)),
                r = &mut f2 => (false, r.unwrap_or_else(budget_timeout)),
            };
            let (done, other, other_future) = if first_done {
                (first, second, f2)
            } else {
                (second, first, f1)
            };
            match l.conclude(done, result) {
                Step::Done(Ok(mut served)) => {
                    // First answer wins; dropping the other future cancels its request.
                    served.attempts.push(other.entry(None, false, true));
                    return Ok(served);
                }
                Step::Done(Err(mut failed)) => {
                    failed.attempts.push(other.entry(None, false, true));
                    return Err(failed);
                }
                Step::Next => {
                    if l.out_of_budget() {
                        l.cancel(other);
                        break;
                    }
                    let result = other_future.await.unwrap_or_else(budget_timeout);
                    match l.conclude(other, result) {
                        Step::Done(done) => return done,
                        Step::Next => continue,
                    }
                }
            }
        }
        round += 1;
        if !admitted || !l.last_retryable || l.out_of_budget() {
            break;
        }
        let wait = budget.backoff.delay(round, rand::random::<f64>());
        tokio::time::sleep_until((Instant::now() + wait).min(l.deadline)).await;
    }
    Err(l.fail())
}
