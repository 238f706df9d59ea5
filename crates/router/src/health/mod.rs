//! Per-deployment health and capacity, shared by every request and kept across config
//! reloads (keyed by deployment id): circuit breaker, Retry-After cooldown, RPM/TPM buckets,
//! in-flight count, latency estimates and prepaid spend.
//!
//! Planning reads it through [`DeploymentView`]s; only the attempt loop changes it, through
//! [`Health::admit`] (which takes capacity and returns a [`Permit`]) and the permit's outcome.

use crate::catalog::{Commitment, Deployment};
use crate::constraints::Exclusion;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use switchyard_providers::AttemptError;
use switchyard_types::{ErrorKind, Money, TokenUsage};
use tokio::time::Instant;

mod breaker;
mod meters;

pub use breaker::{BreakerConfig, BreakerStatus, TripReason};
use meters::{Bucket, Ewma, Recent, Spend};

/// Which limit has no headroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
    /// Requests in flight.
    Concurrency,
}

impl LimitKind {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Tpm => "tpm",
            LimitKind::Concurrency => "concurrency",
        }
    }
}

#[derive(Debug, Default)]
struct State {
    breaker: breaker::Breaker,
    cooling_until: Option<Instant>,
    rpm: Bucket,
    tpm: Bucket,
    latency: Ewma,
    ttft: Ewma,
    recent: Recent,
    prepaid: Spend,
    admitted: u64,
    probes: u64,
}

#[derive(Debug, Default)]
struct Slot {
    in_flight: AtomicU32,
    state: Mutex<State>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the meters inconsistent enough to matter.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What planning and `route explain` see of one deployment at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeploymentView {
    /// The breaker's state.
    pub breaker: BreakerStatus,
    /// Until when it is cooling down, if it is.
    pub cooling_until: Option<Instant>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Requests left in the RPM bucket (`None`: no limit).
    pub rpm_headroom: Option<u32>,
    /// Tokens left in the TPM bucket (`None`: no limit).
    pub tpm_headroom: Option<u64>,
    /// Free concurrency slots (`None`: no limit).
    pub concurrency_headroom: Option<u32>,
    /// Decaying estimate of whole-response latency.
    pub latency: Option<Duration>,
    /// Decaying estimate of time to first token (streams).
    pub ttft: Option<Duration>,
    /// What is left of a prepaid commitment this period.
    pub prepaid_remaining: Option<Money>,
    /// Attempts admitted so far.
    pub admitted: u64,
    /// Half-open probes admitted so far.
    pub probes: u64,
    /// Times the breaker opened.
    pub trips: u64,
}

impl DeploymentView {
    /// Why the deployment cannot take a request of `tokens` estimated tokens now, if so.
    pub fn unavailable(&self, tokens: u64, now: Instant) -> Option<Exclusion> {
        if let Some(until) = self.cooling_until.filter(|u| *u > now) {
            return Some(Exclusion::CoolingDown { until });
        }
        match self.breaker {
            BreakerStatus::Open { reason, .. }
            | BreakerStatus::HalfOpen {
                reason,
                probe_in_flight: true,
            } => return Some(Exclusion::BreakerOpen(reason)),
            _ => {}
        }
        if self.concurrency_headroom == Some(0) {
            return Some(Exclusion::AtCapacity(LimitKind::Concurrency));
        }
        if self.rpm_headroom == Some(0) {
            return Some(Exclusion::AtCapacity(LimitKind::Rpm));
        }
        if self.tpm_headroom.is_some_and(|h| h < tokens) {
            return Some(Exclusion::AtCapacity(LimitKind::Tpm));
        }
        None
    }

    /// Whether the next attempt would be the breaker's half-open probe.
    pub fn is_probe(&self) -> bool {
        matches!(self.breaker, BreakerStatus::HalfOpen { .. })
    }

    /// The latency estimate that matters for a streamed or a whole response.
    pub fn latency_for(&self, stream: bool) -> Option<Duration> {
        if stream {
            self.ttft.or(self.latency)
        } else {
            self.latency.or(self.ttft)
        }
    }
}

/// Health of every deployment, by deployment id; cheap to clone (shared).
#[derive(Debug, Default, Clone)]
pub struct Health {
    slots: Arc<RwLock<HashMap<Arc<str>, Arc<Slot>>>>,
}

impl Health {
    fn existing(&self, id: &str) -> Option<Arc<Slot>> {
        let map = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        map.get(id).cloned()
    }

    fn slot(&self, id: &Arc<str>) -> Arc<Slot> {
        if let Some(slot) = self.existing(id) {
            return slot;
        }
        let mut map = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(id.clone()).or_default().clone()
    }

    /// A read-only view of `d` at `now` (a deployment never used reads as fresh).
    pub fn view(&self, d: &Deployment, now: Instant) -> DeploymentView {
        let slot = self.existing(&d.id);
        view_of(slot.as_deref(), d, now)
    }

    /// Views of many deployments under one read lock (planning's hot path).
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader(self.slots.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes capacity for one attempt of `tokens` estimated tokens on `d`: checks cooldown,
    /// breaker (claiming the half-open probe), concurrency, RPM and TPM, all under one lock.
    pub fn admit(
        &self,
        d: &Arc<Deployment>,
        tokens: u64,
        breaker: &BreakerConfig,
    ) -> Result<Permit, Exclusion> {
        let slot = self.slot(&d.id);
        let limits = d.effective_limits();
        let now = Instant::now();
        let mut s = slot.lock();
        if let Some(until) = s.cooling_until.filter(|u| *u > now) {
            return Err(Exclusion::CoolingDown { until });
        }
        let in_flight = slot.in_flight.load(Ordering::Relaxed);
        if limits.concurrency.is_some_and(|c| in_flight >= c) {
            return Err(Exclusion::AtCapacity(LimitKind::Concurrency));
        }
        if let Some(cap) = limits.rpm {
            if s.rpm.available(f64::from(cap), now) < 1.0 {
                return Err(Exclusion::AtCapacity(LimitKind::Rpm));
            }
        }
        if let Some(cap) = limits.tpm {
            // A request bigger than the whole bucket may go when the bucket is full.
            if s.tpm.available(cap as f64, now) < tokens.min(cap) as f64 {
                return Err(Exclusion::AtCapacity(LimitKind::Tpm));
            }
        }
        let probe = s.breaker.admit(now).map_err(Exclusion::BreakerOpen)?;
        if let Some(cap) = limits.rpm {
            s.rpm.take(1.0, f64::from(cap), now);
        }
        if let Some(cap) = limits.tpm {
            s.tpm.take(tokens as f64, cap as f64, now);
        }
        s.admitted += 1;
        if probe {
            s.probes += 1;
        }
        // Incremented under the lock so the concurrency check above cannot race.
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        drop(s);
        Ok(Permit {
            slot,
            deployment: d.clone(),
            breaker: *breaker,
            tokens,
            probe,
            reported: false,
        })
    }

    /// Records a latency sample directly (tests and replay; the attempt loop uses permits).
    pub fn record_latency(&self, deployment: &Arc<str>, latency: Duration, stream: bool) {
        let slot = self.slot(deployment);
        let mut s = slot.lock();
        record_latency(&mut s, latency, stream, Instant::now());
    }

    /// The latency percentile (0-100) of recent successful attempts, once known.
    pub fn latency_percentile(&self, deployment: &str, p: f64) -> Option<Duration> {
        self.existing(deployment)?.lock().recent.percentile(p)
    }
}

/// A read lock over every deployment's health, for planning many at once.
pub(crate) struct Reader<'a>(std::sync::RwLockReadGuard<'a, HashMap<Arc<str>, Arc<Slot>>>);

impl Reader<'_> {
    /// A read-only view of `d` at `now`.
    pub(crate) fn view(&self, d: &Deployment, now: Instant) -> DeploymentView {
        view_of(self.0.get(&*d.id).map(|s| &**s), d, now)
    }
}

fn view_of(slot: Option<&Slot>, d: &Deployment, now: Instant) -> DeploymentView {
    let limits = d.effective_limits();
    let Some(slot) = slot else {
        return DeploymentView {
            breaker: BreakerStatus::Closed,
            cooling_until: None,
            in_flight: 0,
            rpm_headroom: limits.rpm,
            tpm_headroom: limits.tpm,
            concurrency_headroom: limits.concurrency,
            latency: None,
            ttft: None,
            prepaid_remaining: match d.commitment {
                Some(Commitment::Prepaid { amount, .. }) => Some(amount),
                _ => None,
            },
            admitted: 0,
            probes: 0,
            trips: 0,
        };
    };
    let in_flight = slot.in_flight.load(Ordering::Relaxed);
    let s = slot.lock();
    DeploymentView {
        breaker: s.breaker.status(now),
        cooling_until: s.cooling_until.filter(|u| *u > now),
        in_flight,
        rpm_headroom: limits
            .rpm
            .map(|cap| s.rpm.available(f64::from(cap), now).max(0.0) as u32),
        tpm_headroom: limits
            .tpm
            .map(|cap| s.tpm.available(cap as f64, now).max(0.0) as u64),
        concurrency_headroom: limits.concurrency.map(|c| c.saturating_sub(in_flight)),
        latency: s.latency.estimate(now),
        ttft: s.ttft.estimate(now),
        prepaid_remaining: match d.commitment {
            Some(Commitment::Prepaid { amount, period }) => {
                Some(s.prepaid.remaining(amount, period.duration(), now))
            }
            _ => None,
        },
        admitted: s.admitted,
        probes: s.probes,
        trips: s.breaker.trips,
    }
}

fn record_latency(s: &mut State, latency: Duration, stream: bool, now: Instant) {
    if stream {
        s.ttft.record(latency, now);
    } else {
        s.latency.record(latency, now);
        s.recent.record(latency);
    }
}

/// Whether a failure says something about the deployment's health (not the client's).
fn counts_against_health(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Overloaded
            | ErrorKind::UpstreamServer
            | ErrorKind::UpstreamRejected
            | ErrorKind::UpstreamProtocol
            | ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamTimeout
    )
}

fn record_failure(
    s: &mut State,
    error: &AttemptError,
    cfg: &BreakerConfig,
    rate_cooldown: Duration,
) {
    let now = Instant::now();
    if error.kind == ErrorKind::RateLimited {
        // Capacity, not health: rest as asked, without counting towards the breaker.
        let until = now + error.retry_after.unwrap_or(rate_cooldown);
        s.cooling_until = Some(s.cooling_until.map_or(until, |u| u.max(until)));
        // A probe that met a 429 found the deployment alive.
        s.breaker.success(now, cfg);
        return;
    }
    if let Some(wait) = error.retry_after {
        let until = now + wait;
        s.cooling_until = Some(s.cooling_until.map_or(until, |u| u.max(until)));
    }
    if counts_against_health(error.kind) {
        s.breaker.failure(now, cfg);
    } else {
        // The upstream answered sensibly (a client error): it is alive.
        s.breaker.success(now, cfg);
    }
}

/// Capacity taken for one attempt on one deployment. Holds a concurrency slot until dropped
/// (for streams: keep it until the body ends), then [`Permit::settle`] with the usage.
#[must_use = "dropping a permit frees its concurrency slot at once"]
#[derive(Debug)]
pub struct Permit {
    slot: Arc<Slot>,
    deployment: Arc<Deployment>,
    breaker: BreakerConfig,
    tokens: u64,
    probe: bool,
    reported: bool,
}

/// What a served request cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settlement {
    /// The usage at list prices (for `x-switchyard-cost` and the ledger).
    pub cost: Money,
    /// What the request added to the bill: zero under provisioned capacity, and only the
    /// part beyond what is left of a prepaid commitment.
    pub marginal: Money,
}

impl Permit {
    /// The deployment this permit is for.
    pub fn deployment(&self) -> &Arc<Deployment> {
        &self.deployment
    }

    /// Whether this attempt is the breaker's half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The attempt committed. A complete answer is a success; a stream has only started, so
    /// its time to first event is recorded and the verdict waits for its end
    /// ([`Permit::stream_completed`] or [`Permit::stream_broke`]).
    pub(crate) fn succeeded(&mut self, latency: Duration, stream: bool) {
        let now = Instant::now();
        let mut s = self.slot.lock();
        record_latency(&mut s, latency, stream, now);
        if !stream {
            self.reported = true;
            s.breaker.success(now, &self.breaker);
        }
    }

    pub(crate) fn failed(&mut self, error: &AttemptError, rate_cooldown: Duration) {
        self.reported = true;
        let mut s = self.slot.lock();
        record_failure(&mut s, error, &self.breaker, rate_cooldown);
    }

    /// The stream this permit is for delivered its whole answer: a success for the breaker.
    pub fn stream_completed(&mut self) {
        if !self.reported {
            self.reported = true;
            self.slot
                .lock()
                .breaker
                .success(Instant::now(), &self.breaker);
        }
    }

    /// The stream broke after it started (cut, stalled, malformed, an error event): a failure
    /// against the deployment's health, as if the attempt had failed before its first event.
    /// A permit dropped with neither verdict (the client left) judges nothing.
    pub fn stream_broke(&mut self, error: &AttemptError, rate_cooldown: Duration) {
        if !self.reported {
            self.failed(error, rate_cooldown);
        }
    }

    /// Settles the served request's real usage: corrects the TPM estimate, draws on a
    /// prepaid commitment, frees the concurrency slot and returns the cost.
    pub fn settle(self, usage: &TokenUsage) -> Settlement {
        let d = &self.deployment;
        let cost = d.prices.cost(usage);
        let now = Instant::now();
        let mut s = self.slot.lock();
        if let Some(cap) = d.effective_limits().tpm {
            let extra = usage.total() as f64 - self.tokens as f64;
            s.tpm.take(extra, cap as f64, now);
        }
        let marginal = match d.commitment {
            None => cost,
            Some(Commitment::Provisioned { .. }) => Money::ZERO,
            Some(Commitment::Prepaid { amount, period }) => {
                let remaining = s.prepaid.remaining(amount, period.duration(), now);
                s.prepaid.add(cost, period.duration(), now);
                Money((cost.0 - remaining.0).max(0))
            }
        };
        Settlement { cost, marginal }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.probe && !self.reported {
            self.slot.lock().breaker.release_probe();
        }
    }
}
