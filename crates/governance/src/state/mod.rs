//! Limit and budget state: the `StateStore` trait and its plans, with an in-memory backend
//! (one process) and a Redis backend (many processes, atomic Lua scripts).
//!
//! Every admission is one atomic operation over all the checks it needs (key and team,
//! requests, tokens, every budget): either all pass and all are consumed, or nothing is
//! consumed and the first failing check is reported.
//!
//! Rate limits are exact sliding windows: a log of (time, weight) per limit, so in *any*
//! window of `window_ms` the admitted weight never exceeds the limit (the property test in
//! `memory.rs` checks this against generated arrival times).
//!
//! Budget reservations are holds with identity: each is stored under its admission id with
//! an expiry, so settling uses the amount the hold really reserved, a settle or release that
//! runs twice (a retry after a timeout whose first try still ran) counts once, a release
//! that arrives before a late admission makes that admission refuse, and a hold nobody
//! settles is released when it expires (and counted as expired in the budget report).
//!
//! A budget's counter is *seeded* before its first admission: the store reports
//! [`Verdict::Unseeded`] and the governor raises the counter to the ledger's spend for the
//! period ([`StateStore::seed`]), so a restarted process or an emptied Redis does not start
//! from zero.

mod memory;
mod redis;

pub use self::memory::MemoryState;
pub use self::redis::{OnRedisError, RedisState, RedisStateConfig};

use crate::error::GovernanceError;
use crate::keys::BoxFuture;
use crate::model::{BudgetMode, Period, RateKind, Scope};
use serde::Serialize;
use switchyard_types::Money;

/// The rate-limit window: limits are per minute.
pub const WINDOW_MS: i64 = 60_000;

/// One rate limit to check and consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCheck {
    /// The state key of this limit's log (see [`rate_key`]).
    pub key: String,
    /// The most weight allowed in any window.
    pub limit: u64,
    /// The weight this request takes (1 request, or its estimated tokens).
    pub amount: u64,
    /// The window length, milliseconds.
    pub window_ms: i64,
    /// Whether settling may change the weight (tokens: estimate → actual).
    pub adjustable: bool,
}

/// One budget to check (hard) or watch (alert), and reserve from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    /// The state key of this budget's current period (see [`budget_key`]).
    pub key: String,
    /// The budget's amount, nano-USD.
    pub limit: i64,
    /// The estimated cost to reserve, nano-USD.
    pub amount: i64,
    /// Hard budgets deny; alert budgets report a first crossing.
    pub mode: BudgetMode,
    /// How long the period's counters must live, milliseconds.
    pub ttl_ms: i64,
}

/// Everything one admission checks and consumes, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitPlan {
    /// A unique admission id (the member in rate logs).
    pub id: String,
    /// `Some(now)` from an injected clock (tests); `None`: the store's own clock (Redis `TIME`).
    pub now_ms: Option<i64>,
    /// Rate limits.
    pub rates: Vec<RateCheck>,
    /// Budgets.
    pub budgets: Vec<BudgetCheck>,
    /// How long the budget holds live unsettled before they are released, milliseconds.
    pub hold_ttl_ms: i64,
}

/// The store's answer to an [`AdmitPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// All checks passed and everything was consumed.
    Admitted {
        /// Indices into `plan.budgets` of alert budgets this admission crossed first.
        crossed_alerts: Vec<usize>,
        /// Admitted by the local fallback because Redis was unreachable (`fail_open`).
        local: bool,
    },
    /// `plan.rates[index]` has no room; it will in `retry_after_ms`.
    RateLimited {
        /// Which rate check failed.
        index: usize,
        /// When the request would fit, milliseconds from now.
        retry_after_ms: i64,
    },
    /// `plan.budgets[index]` (hard) cannot take the estimate.
    OverBudget {
        /// Which budget check failed.
        index: usize,
        /// Settled spend in the period, nano-USD.
        spent: i64,
        /// Reserved by in-flight requests, nano-USD.
        reserved: i64,
    },
    /// `plan.budgets[index]`'s counter has not been seeded from the ledger in this period (or
    /// its store lost it): seed it ([`StateStore::seed`]) and admit again. Nothing was consumed.
    Unseeded {
        /// Which budget check needs seeding.
        index: usize,
        /// Reported by Redis's local fallback (seed the fallback, not Redis).
        local: bool,
    },
}

/// What an admitted request holds until it is settled or released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    /// The admission id.
    pub id: String,
    /// Keys of adjustable (token) rate logs holding this admission's estimated weight.
    pub token_rates: Vec<String>,
    /// Budgets reserved from: key, reserved amount, limit and mode (for alert crossings).
    pub budgets: Vec<HeldBudget>,
    /// Held by the local fallback, not Redis.
    pub local: bool,
    /// The hold's time to live (how long its settled marker must outlast it), milliseconds.
    pub ttl_ms: i64,
}

/// One budget reservation inside a [`Hold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBudget {
    /// The budget's state key.
    pub key: String,
    /// Reserved amount, nano-USD.
    pub reserved: i64,
    /// The budget's amount, nano-USD.
    pub limit: i64,
    /// Its mode.
    pub mode: BudgetMode,
    /// How long the period's counters must live, milliseconds.
    pub ttl_ms: i64,
}

impl Hold {
    /// What an admitted `plan` holds (`local`: admitted by Redis's outage fallback); takes the
    /// plan, so the request path moves its keys rather than copying them.
    pub fn from_plan(plan: AdmitPlan, local: bool) -> Hold {
        Hold {
            id: plan.id,
            token_rates: plan
                .rates
                .into_iter()
                .filter(|r| r.adjustable)
                .map(|r| r.key)
                .collect(),
            budgets: plan
                .budgets
                .into_iter()
                .map(|b| HeldBudget {
                    key: b.key,
                    reserved: b.amount,
                    limit: b.limit,
                    mode: b.mode,
                    ttl_ms: b.ttl_ms,
                })
                .collect(),
            local,
            ttl_ms: plan.hold_ttl_ms,
        }
    }
}

/// The real outcome that replaces a hold's estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actual {
    /// Tokens used (input + output); 0 releases the token estimate.
    pub tokens: u64,
    /// Real cost, nano-USD; 0 with `tokens = 0` is a release.
    pub cost: i64,
    /// `Some(now)` from an injected clock; `None`: the store's own clock.
    pub now_ms: Option<i64>,
}

/// A budget period's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Settled spend.
    pub spent: Money,
    /// Reserved by in-flight requests.
    pub reserved: Money,
    /// Holds not yet settled or released.
    pub open_holds: u64,
    /// Holds that expired unsettled and were released automatically this period.
    pub expired_holds: u64,
    /// What the expired holds had reserved.
    pub expired: Money,
}

/// Counters of a state backend, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateStats {
    /// Redis operations that failed (connection refused, timeout, script error).
    pub redis_errors: u64,
    /// Admissions decided by the local fallback during a Redis outage (`fail_open`).
    pub fail_open_admissions: u64,
    /// Admissions refused because Redis was unreachable (`fail_closed`).
    pub fail_closed_denials: u64,
    /// Whether the backend currently considers Redis down.
    pub redis_down: bool,
    /// Settles or releases that arrived a second time (a retry whose first try had run) and
    /// changed nothing.
    pub repeated_settles: u64,
    /// Admissions Redis did not answer in time, released afterwards so a late run of their
    /// script holds nothing.
    pub abandoned_admissions: u64,
}

/// Where limits and budgets are counted.
pub trait StateStore: Send + Sync {
    /// Checks and consumes a plan atomically. `Err` only when the state is unreachable and
    /// the policy is to fail closed.
    fn admit<'a>(&'a self, plan: &'a AdmitPlan) -> BoxFuture<'a, Result<Verdict, GovernanceError>>;
    /// Replaces a hold's estimates with the actual outcome (or releases it with zeros);
    /// returns indices into `hold.budgets` of alert budgets crossed now.
    fn settle<'a>(
        &'a self,
        hold: &'a Hold,
        actual: Actual,
    ) -> BoxFuture<'a, Result<Vec<usize>, GovernanceError>>;
    /// The counters of one budget period, as of `now_ms` (for expiry of in-memory periods).
    fn tally<'a>(
        &'a self,
        budget_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Tally, GovernanceError>>;
    /// Raises a budget's settled spend to at least `spent` (the ledger's figure for the
    /// period) and marks its counter seeded. `local`: seed Redis's outage fallback instead.
    fn seed<'a>(
        &'a self,
        budget: &'a BudgetCheck,
        spent: i64,
        local: bool,
        now_ms: Option<i64>,
    ) -> BoxFuture<'a, Result<(), GovernanceError>>;
    /// Backend counters (zeros for backends without a remote dependency).
    fn stats(&self) -> StateStats {
        StateStats::default()
    }
    /// Whether the store is shared and can lose or miss updates (Redis), so the governor
    /// should reconcile it with the ledger now and then.
    fn can_fall_behind(&self) -> bool {
        false
    }
    /// Whether admissions are refused while the store is unreachable (`fail_closed`); the
    /// governor then also refuses when the ledger cannot seed a budget.
    fn fails_closed(&self) -> bool {
        false
    }
}

/// The state key of a rate limit: `rl:{scope}:{id}:{kind}`.
pub fn rate_key(scope: Scope, id: &str, kind: RateKind) -> String {
    format!("rl:{scope}:{id}:{kind}")
}

/// The state key of a budget period: `bg:{scope}:{id}:{period}:{mode}:{bucket}`.
///
/// The mode is part of the key so a hard and an alert budget of the same period do not
/// reserve twice from one counter.
pub fn budget_key(
    scope: Scope,
    id: &str,
    period: Period,
    mode: BudgetMode,
    bucket: &str,
) -> String {
    format!("bg:{scope}:{id}:{period}:{}:{bucket}", mode.as_str())
}
