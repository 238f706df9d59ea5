//! Enforcement on the request path: `Governor::admit` → `Admission` → `settle`.

use crate::error::{Denied, GovernanceError};
use crate::keys::BoxFuture;
use crate::model::{Budget, Principal, RateKind, Scope};
use crate::period::{bucket, system_now_ms, Clock};
use crate::secret::new_id;
use crate::state::{
    budget_key, rate_key, Actual, AdmitPlan, BudgetCheck, Hold, RateCheck, StateStats, StateStore,
    Verdict, WINDOW_MS,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_types::{Money, TokenUsage};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Budget counters outlive their period by this much, so reports can still read yesterday.
const PERIOD_GRACE_MS: i64 = 86_400_000;
/// Admit rounds at most: Redis unseeded, seed fails, fallback unseeded, seeded fallback.
const ADMIT_ROUNDS: usize = 4;
/// How long a ledger query for seeding or reconciling may take.
const SPEND_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait between two tries of a failed settle.
const SETTLE_MAX_DELAY: Duration = Duration::from_secs(5);

/// The durable record of settled spend (the ledger): budgets are seeded from it before their
/// first admission in a period, and shared state is reconciled with it now and then.
pub trait SpendSource: Send + Sync {
    /// Settled spend of `owner` (a key id or a team name) over records in
    /// `[since_ms, until_ms)`.
    fn spent<'a>(
        &'a self,
        scope: Scope,
        owner: &'a str,
        since_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<Money, GovernanceError>>;
}

/// How a [`Governor`] holds, seeds and reconciles budgets.
#[derive(Clone)]
pub struct GovernorOptions {
    /// How long a reservation lives unsettled before it is released automatically (longer
    /// than any request may run).
    pub hold_ttl: Duration,
    /// Where budgets are seeded and reconciled from (`None`: counters start at zero).
    pub spend: Option<Arc<dyn SpendSource>>,
    /// Before seeding a shared counter that came up unseeded (a new period, or a Redis that
    /// lost its data), wait this long so every process's ledger writer has flushed the
    /// requests that finished before (the ledger's flush interval plus a margin).
    pub seed_delay: Duration,
    /// How often each budget of a shared store is compared with the ledger and raised to it
    /// (catches settles lost in an outage).
    pub reconcile_every: Duration,
}

impl Default for GovernorOptions {
    fn default() -> Self {
        GovernorOptions {
            hold_ttl: Duration::from_secs(600),
            spend: None,
            seed_delay: Duration::ZERO,
            reconcile_every: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for GovernorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorOptions")
            .field("hold_ttl", &self.hold_ttl)
            .field("spend", &self.spend.is_some())
            .field("seed_delay", &self.seed_delay)
            .field("reconcile_every", &self.reconcile_every)
            .finish()
    }
}

/// What a request is expected to cost, known before the upstream call.
///
/// For the overshoot bound to hold, `cost` must be an upper bound of the real cost: price
/// the input tokens and `max_output_tokens` (the request's `max_tokens`, else the model's
/// maximum) at the dearest deployment the router may pick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// The most output tokens the request may produce.
    pub max_output_tokens: u64,
    /// The estimated (upper-bound) cost.
    pub cost: Money,
}

impl Estimate {
    /// Tokens reserved against tokens-per-minute limits.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.max_output_tokens)
    }
}

/// Checks and holds limits and budgets for requests; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Governor {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<dyn StateStore>,
    clock: Clock,
    options: GovernorOptions,
    tracker: TaskTracker,
    /// Cancelled at shutdown: failed settles stop retrying.
    stopping: CancellationToken,
    /// When each shared budget was last reconciled with the ledger (system ms).
    reconciled: Mutex<HashMap<String, i64>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    admitted: AtomicU64,
    denied_model: AtomicU64,
    denied_rate: AtomicU64,
    denied_budget: AtomicU64,
    denied_unavailable: AtomicU64,
    budget_alerts: AtomicU64,
    settled: AtomicU64,
    released: AtomicU64,
    settle_retries: AtomicU64,
    settle_errors: AtomicU64,
    releases_lost: AtomicU64,
    seeded: AtomicU64,
}

/// Counters for `/metrics` (monotonic, except `state.redis_down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GovernanceStats {
    /// Requests admitted.
    pub admitted: u64,
    /// Denied: model not allowed for the key.
    pub denied_model_not_allowed: u64,
    /// Denied: rate limit.
    pub denied_rate_limited: u64,
    /// Denied: hard budget.
    pub denied_over_budget: u64,
    /// Denied: state unavailable (`fail_closed`).
    pub denied_unavailable: u64,
    /// Alert-mode budgets crossed (one per budget and period).
    pub budget_alerts: u64,
    /// Admissions settled with real usage.
    pub settled: u64,
    /// Admissions released without usage (dropped before settling).
    pub released: u64,
    /// Settle or release tries that failed and were tried again.
    pub settle_retries: u64,
    /// Settlements or releases that failed until their hold expired (or shutdown): the
    /// reservation is released by its expiry, the spend by the next reconcile with the ledger
    /// (logged with the admission id).
    pub settle_errors: u64,
    /// Admissions dropped outside a Tokio runtime, so their release could not run.
    pub releases_lost: u64,
    /// Budget counters seeded from the ledger.
    pub seeded: u64,
    /// The state backend's own counters (Redis errors, outage policy use).
    pub state: StateStats,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor").finish_non_exhaustive()
    }
}

/// Which limit or budget each plan entry came from, to name it in a denial.
struct RateMeta {
    scope: Scope,
    kind: RateKind,
    limit: u64,
}

#[derive(Debug, Clone)]
struct BudgetMeta {
    scope: Scope,
    owner: String,
    budget: Budget,
    starts_at_ms: i64,
    resets_at_ms: i64,
}

impl Governor {
    /// A governor over `state`, on the system clock.
    pub fn new(state: Arc<dyn StateStore>) -> Governor {
        Governor::with_clock(state, Clock::System)
    }

    /// A governor with an injected clock (tests and simulations).
    pub fn with_clock(state: Arc<dyn StateStore>, clock: Clock) -> Governor {
        Governor::with_options(state, clock, GovernorOptions::default())
    }

    /// A governor with holds, seeding and reconciling set by `options`.
    pub fn with_options(
        state: Arc<dyn StateStore>,
        clock: Clock,
        options: GovernorOptions,
    ) -> Governor {
        Governor {
            inner: Arc::new(Inner {
                state,
                clock,
                options,
                tracker: TaskTracker::new(),
                stopping: CancellationToken::new(),
                reconciled: Mutex::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// The state store (for reports).
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.inner.state
    }

    /// The clock in use.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Checks the model, every rate limit and every budget of the key and its team, and on
    /// success holds 1 request, the estimated tokens and the estimated cost.
    pub async fn admit(
        &self,
        p: &Principal,
        model: &str,
        estimate: &Estimate,
    ) -> Result<Admission, Denied> {
        let c = &self.inner.counters;
        if !p.allows_model(model) {
            c.denied_model.fetch_add(1, Ordering::Relaxed);
            return Err(Denied::ModelNotAllowed {
                model: model.to_string(),
            });
        }
        let now = self.inner.clock.now_ms();
        let mut rates = Vec::new();
        let mut rate_meta = Vec::new();
        for (scope, owner, limits) in [
            (Scope::Key, &p.key_id, p.limits),
            (Scope::Team, &p.team, p.team_limits),
        ] {
            for (kind, limit, amount) in [
                (RateKind::Requests, limits.rpm, 1),
                (RateKind::Tokens, limits.tpm, estimate.tokens()),
            ] {
                let Some(limit) = limit else { continue };
                rates.push(RateCheck {
                    key: rate_key(scope, owner, kind),
                    limit,
                    amount,
                    window_ms: WINDOW_MS,
                    adjustable: kind == RateKind::Tokens,
                });
                rate_meta.push(RateMeta { scope, kind, limit });
            }
        }
        let mut budgets = Vec::new();
        let mut budget_meta = Vec::new();
        for (scope, owner, list) in [
            (Scope::Key, &p.key_id, &p.budgets),
            (Scope::Team, &p.team, &p.team_budgets),
        ] {
            for budget in list {
                let b = bucket(budget.period, now);
                budgets.push(BudgetCheck {
                    key: budget_key(scope, owner, budget.period, budget.mode, &b.label),
                    limit: budget.amount.0,
                    amount: estimate.cost.0.max(0),
                    mode: budget.mode,
                    ttl_ms: (b.end_ms - now).max(1) + PERIOD_GRACE_MS,
                });
                budget_meta.push(BudgetMeta {
                    scope,
                    owner: owner.clone(),
                    budget: *budget,
                    starts_at_ms: b.start_ms,
                    resets_at_ms: b.end_ms,
                });
            }
        }
        let plan = AdmitPlan {
            id: new_id("adm"),
            now_ms: self.inner.clock.override_ms(),
            rates,
            budgets,
            hold_ttl_ms: i64::try_from(self.inner.options.hold_ttl.as_millis()).unwrap_or(i64::MAX),
        };
        let mut verdict = Verdict::Unseeded {
            index: 0,
            local: false,
        };
        for _ in 0..ADMIT_ROUNDS {
            verdict = match self.inner.state.admit(&plan).await {
                Ok(Verdict::Unseeded { index, local }) => {
                    if let Err(denied) = self.inner.seed(&plan, &budget_meta, index, local).await {
                        c.denied_unavailable.fetch_add(1, Ordering::Relaxed);
                        return Err(denied);
                    }
                    continue;
                }
                Ok(v) => v,
                Err(error) => {
                    c.denied_unavailable.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, key_id = %p.key_id, "request denied: limit state unavailable");
                    return Err(Denied::Unavailable);
                }
            };
            break;
        }
        match verdict {
            Verdict::Unseeded { .. } => {
                c.denied_unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key_id = %p.key_id, "request denied: a budget could not be seeded");
                Err(Denied::Unavailable)
            }
            Verdict::RateLimited {
                index,
                retry_after_ms,
            } => {
                c.denied_rate.fetch_add(1, Ordering::Relaxed);
                let (scope, kind, limit) = rate_meta
                    .get(index)
                    .map(|m| (m.scope, m.kind, m.limit))
                    .unwrap_or((Scope::Key, RateKind::Requests, 0));
                Err(Denied::RateLimited {
                    kind,
                    scope,
                    limit,
                    retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(1)),
                })
            }
            Verdict::OverBudget {
                index,
                spent,
                reserved,
            } => {
                c.denied_budget.fetch_add(1, Ordering::Relaxed);
                let Some(m) = budget_meta.get(index) else {
                    return Err(Denied::Unavailable);
                };
                Err(Denied::OverBudget {
                    scope: m.scope,
                    period: m.budget.period,
                    limit: m.budget.amount,
                    spent: Money(spent),
                    reserved: Money(reserved),
                    resets_at_ms: m.resets_at_ms,
                })
            }
            Verdict::Admitted {
                crossed_alerts,
                local,
            } => {
                c.admitted.fetch_add(1, Ordering::Relaxed);
                self.inner.alert(&budget_meta, &crossed_alerts, p);
                if !local {
                    self.inner.reconcile(&plan, &budget_meta);
                }
                let hold = Hold::from_plan(plan, local);
                Ok(Admission {
                    governor: Some(self.inner.clone()),
                    hold,
                    budget_meta,
                    principal_key: p.key_id.clone(),
                    estimate: *estimate,
                })
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GovernanceStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GovernanceStats {
            admitted: get(&c.admitted),
            denied_model_not_allowed: get(&c.denied_model),
            denied_rate_limited: get(&c.denied_rate),
            denied_over_budget: get(&c.denied_budget),
            denied_unavailable: get(&c.denied_unavailable),
            budget_alerts: get(&c.budget_alerts),
            settled: get(&c.settled),
            released: get(&c.released),
            settle_retries: get(&c.settle_retries),
            settle_errors: get(&c.settle_errors),
            releases_lost: get(&c.releases_lost),
            seeded: get(&c.seeded),
            state: self.inner.state.stats(),
        }
    }

    /// Waits for every pending settle/release (call on graceful shutdown, after the server
    /// stopped accepting requests).
    pub async fn shutdown(&self) {
        self.inner.stopping.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

/// Fetches `owner`'s spend over `meta`'s period, bounded by [`SPEND_QUERY_TIMEOUT`].
async fn ledger_spend(source: &dyn SpendSource, meta: &BudgetMeta) -> Result<i64, String> {
    match tokio::time::timeout(
        SPEND_QUERY_TIMEOUT,
        source.spent(
            meta.scope,
            &meta.owner,
            meta.starts_at_ms,
            meta.resets_at_ms,
        ),
    )
    .await
    {
        Ok(Ok(m)) => Ok(m.0),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            SPEND_QUERY_TIMEOUT.as_millis()
        )),
    }
}

impl Inner {
    /// Seeds `plan.budgets[index]` from the ledger. Refuses only when the state fails closed
    /// and the ledger or the state cannot answer; otherwise a failure seeds from what the
    /// state itself knows.
    async fn seed(
        &self,
        plan: &AdmitPlan,
        meta: &[BudgetMeta],
        index: usize,
        local: bool,
    ) -> Result<(), Denied> {
        let (Some(check), Some(m)) = (plan.budgets.get(index), meta.get(index)) else {
            return Err(Denied::Unavailable);
        };
        let closed = self.state.fails_closed();
        let spent = match &self.options.spend {
            None => 0,
            Some(source) => {
                if !local && self.state.can_fall_behind() && !self.options.seed_delay.is_zero() {
                    tokio::time::sleep(self.options.seed_delay).await;
                }
                match ledger_spend(source.as_ref(), m).await {
                    Ok(spent) => spent,
                    Err(error) if closed => {
                        tracing::warn!(%error, budget = %check.key, "request denied: the ledger cannot seed a budget");
                        return Err(Denied::Unavailable);
                    }
                    Err(error) => {
                        tracing::warn!(%error, budget = %check.key, "the ledger cannot seed a budget: counting from the state's own figures");
                        0
                    }
                }
            }
        };
        match self.state.seed(check, spent, local, plan.now_ms).await {
            Ok(()) => {
                self.counters.seeded.fetch_add(1, Ordering::Relaxed);
                lock(&self.reconciled).insert(check.key.clone(), system_now_ms());
                tracing::info!(budget = %check.key, spent_usd = Money(spent).as_usd(), local, "budget seeded from the ledger");
                Ok(())
            }
            // Redis failed meanwhile: the next round goes to the outage policy.
            Err(error) if !closed => {
                tracing::warn!(%error, budget = %check.key, "seeding failed");
                Ok(())
            }
            Err(_) => Err(Denied::Unavailable),
        }
    }

    /// Raises each shared budget of `plan` to the ledger's spend when its last reconcile is
    /// older than `reconcile_every`, on a tracked task off the request path.
    fn reconcile(&self, plan: &AdmitPlan, meta: &[BudgetMeta]) {
        // Checked before anything else: in-process state never falls behind, and this runs
        // on every admission.
        if !self.state.can_fall_behind() {
            return;
        }
        let Some(source) = &self.options.spend else {
            return;
        };
        let now = system_now_ms();
        let every = i64::try_from(self.options.reconcile_every.as_millis()).unwrap_or(i64::MAX);
        for (check, m) in plan.budgets.iter().zip(meta) {
            {
                let mut last = lock(&self.reconciled);
                if last.get(&check.key).is_some_and(|t| now - *t < every) {
                    continue;
                }
                last.insert(check.key.clone(), now);
                if last.len() > 10_000 {
                    last.retain(|_, t| now - *t < PERIOD_GRACE_MS);
                }
            }
            let (state, source, check, m) =
                (self.state.clone(), source.clone(), check.clone(), m.clone());
            self.tracker.spawn(async move {
                match ledger_spend(source.as_ref(), &m).await {
                    Ok(spent) => {
                        if let Err(error) = state.seed(&check, spent, false, None).await {
                            tracing::debug!(%error, budget = %check.key, "reconcile with the ledger failed");
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%error, budget = %check.key, "reconcile: ledger unavailable");
                    }
                }
            });
        }
    }

    /// Emits one alert event (log + counter) per newly crossed alert budget.
    fn alert(&self, meta: &[BudgetMeta], crossed: &[usize], p: &Principal) {
        for m in crossed.iter().filter_map(|i| meta.get(*i)) {
            self.counters.budget_alerts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                scope = %m.scope,
                owner = %m.owner,
                team = %p.team,
                period = %m.budget.period,
                limit_usd = m.budget.amount.as_usd(),
                resets_at = %crate::period::rfc3339(m.resets_at_ms),
                "budget alert: {} {} budget of ${:.2} crossed",
                m.scope,
                m.budget.period.adjective(),
                m.budget.amount.as_usd()
            );
        }
    }

    /// Settles (or releases) a hold, retrying a failed state store a few times.
    async fn finish(
        &self,
        hold: Hold,
        meta: Vec<BudgetMeta>,
        key_id: String,
        actual: Actual,
        release: bool,
    ) -> Result<(), GovernanceError> {
        let counter = if release {
            &self.counters.released
        } else {
            &self.counters.settled
        };
        if hold.token_rates.is_empty() && hold.budgets.is_empty() {
            // Only requests-per-minute were consumed, and a request stays counted: no round trip.
            counter.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut delay = Duration::from_millis(200);
        let give_up = system_now_ms().saturating_add(hold.ttl_ms);
        loop {
            match self.state.settle(&hold, actual).await {
                Ok(crossed) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                    for m in crossed.iter().filter_map(|i| meta.get(*i)) {
                        self.counters.budget_alerts.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            scope = %m.scope, owner = %m.owner, period = %m.budget.period,
                            limit_usd = m.budget.amount.as_usd(),
                            "budget alert: {} {} budget of ${:.2} crossed",
                            m.scope, m.budget.period.adjective(), m.budget.amount.as_usd()
                        );
                    }
                    return Ok(());
                }
                // Settles are idempotent per hold, so trying again cannot count twice; keep
                // trying until the hold would have expired anyway, or shutdown.
                Err(error) if system_now_ms() < give_up && !self.stopping.is_cancelled() => {
                    self.counters.settle_retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, admission = %hold.id, "settle failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stopping.cancelled() => {}
                    }
                    delay = (delay * 2).min(SETTLE_MAX_DELAY);
                }
                Err(error) => {
                    self.counters.settle_errors.fetch_add(1, Ordering::Relaxed);
                    let reserved: i64 = hold.budgets.iter().map(|b| b.reserved).max().unwrap_or(0);
                    tracing::error!(
                        %error, admission = %hold.id, %key_id, release,
                        reserved_usd = Money(reserved).as_usd(),
                        "settle failed: the reservation is released when its hold expires, the spend at the next reconcile with the ledger"
                    );
                    return Err(error);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An admitted request's hold on limits and budgets.
///
/// Settle it with the real usage once known ([`Admission::settle`]); if it is dropped
/// instead (client gone, error before any upstream call), the budget reservation and the
/// token estimate are released on a tracked background task. The request itself still counts
/// against requests-per-minute.
#[must_use = "settle the admission with the real usage; dropping it releases the reservation"]
pub struct Admission {
    governor: Option<Arc<Inner>>,
    hold: Hold,
    budget_meta: Vec<BudgetMeta>,
    principal_key: String,
    estimate: Estimate,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("id", &self.hold.id)
            .field("estimate", &self.estimate)
            .field("local", &self.hold.local)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The admission id (for logs and the ledger).
    pub fn id(&self) -> &str {
        &self.hold.id
    }

    /// The estimate this admission reserved.
    pub fn estimate(&self) -> Estimate {
        self.estimate
    }

    /// Whether it was admitted by the local fallback during a Redis outage (`fail_open`).
    pub fn is_local(&self) -> bool {
        self.hold.local
    }

    /// Replaces the reservation with the real cost and the token estimate with the real
    /// tokens. Runs on a tracked task, so it completes even if the caller is cancelled.
    pub async fn settle(mut self, usage: TokenUsage, cost: Money) -> Result<(), GovernanceError> {
        let Some(gov) = self.governor.take() else {
            return Ok(());
        };
        let actual = Actual {
            tokens: usage.total(),
            cost: cost.0.max(0),
            now_ms: gov.clock.override_ms(),
        };
        let (hold, meta, key) = self.take_parts();
        let task = gov.clone();
        let handle = gov
            .tracker
            .spawn(async move { task.finish(hold, meta, key, actual, false).await });
        handle
            .await
            .map_err(|e| GovernanceError::Unavailable(format!("settle task failed: {e}")))?
    }

    /// Like [`Admission::settle`], without waiting (for sync contexts such as a stream's
    /// `Drop`). Needs a Tokio runtime; without one the failure is logged and counted.
    pub fn settle_detached(mut self, usage: TokenUsage, cost: Money) {
        if let Some(gov) = self.governor.take() {
            let actual = Actual {
                tokens: usage.total(),
                cost: cost.0.max(0),
                now_ms: gov.clock.override_ms(),
            };
            let (hold, meta, key) = self.take_parts();
            spawn_finish(gov, hold, meta, key, actual, false);
        }
    }

    /// Releases the reservation now (same as dropping the admission).
    pub fn release(self) {
        drop(self);
    }

    fn take_parts(&mut self) -> (Hold, Vec<BudgetMeta>, String) {
        (
            std::mem::take(&mut self.hold),
            std::mem::take(&mut self.budget_meta),
            std::mem::take(&mut self.principal_key),
        )
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(gov) = self.governor.take() {
            let actual = Actual {
                tokens: 0,
                cost: 0,
                now_ms: gov.clock.override_ms(),
            };
            let (hold, meta, key) = self.take_parts();
            spawn_finish(gov, hold, meta, key, actual, true);
        }
    }
}

/// Runs `finish` on the governor's tracker, or counts and logs why it cannot.
fn spawn_finish(
    gov: Arc<Inner>,
    hold: Hold,
    meta: Vec<BudgetMeta>,
    key: String,
    actual: Actual,
    release: bool,
) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let task = gov.clone();
            gov.tracker.spawn_on(
                async move {
                    // Errors are counted and logged inside `finish`.
                    let _ = task.finish(hold, meta, key, actual, release).await;
                },
                &handle,
            );
        }
        Err(_) => {
            gov.counters.releases_lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                admission = %hold.id, key_id = %key,
                "admission dropped outside a Tokio runtime: its reservation stays held until the period ends"
            );
        }
    }
}

#[cfg(test)]
#[path = "governor_tests.rs"]
mod tests;
