//! Limits and budgets in Redis, shared exactly by many gateway processes.
//!
//! Each operation is one Lua script (`lua/admit_v1.lua`, `lua/settle_v1.lua`; the version is in
//! the name, so a changed script is a new file and old and new gateways can run side by side
//! during a deploy). Scripts read Redis's own `TIME`, so gateway clock skew does not matter for
//! rate windows; tests pass `now` instead (see [`crate::Clock::Manual`]), which is how a minute
//! of traffic is simulated without sleeping. No read-modify-write ever spans round trips.
//!
//! When Redis is unreachable the [`OnRedisError`] policy applies: `fail_open` decides with a
//! local [`MemoryState`] (limits become per-process for the outage; admissions are flagged),
//! `fail_closed` denies. Either way the outage is counted in [`StateStats`] and logged, and
//! after a failure Redis is not retried for `retry_after_failure`, so an outage costs one
//! timeout per second rather than one per request.

use super::{Actual, AdmitPlan, Hold, MemoryState, StateStats, StateStore, Tally, Verdict};
use crate::error::GovernanceError;
use crate::keys::BoxFuture;
use crate::model::BudgetMode;
use crate::period::system_now_ms;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_types::Money;

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Keep serving with per-process limits and budgets from memory (flagged and counted).
    #[default]
    FailOpen,
    /// Deny requests with 503 until Redis is back.
    FailClosed,
}

/// Connection settings for [`RedisState`].
#[derive(Debug, Clone)]
pub struct RedisStateConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prepended to every key (`{prefix}:rl:…`), so several deployments can share a Redis.
    pub key_prefix: String,
    /// The outage policy.
    pub on_error: OnRedisError,
    /// Per-command timeout: an admission waits at most this long for Redis.
    pub response_timeout: Duration,
    /// Connect timeout.
    pub connection_timeout: Duration,
    /// After a failure, skip Redis (use the policy) for this long before trying again.
    pub retry_after_failure: Duration,
}

impl RedisStateConfig {
    /// Defaults for `url`: prefix `switchyard`, fail open, 500 ms timeouts, 1 s retry.
    pub fn new(url: impl Into<String>) -> RedisStateConfig {
        RedisStateConfig {
            url: url.into(),
            key_prefix: "switchyard".into(),
            on_error: OnRedisError::FailOpen,
            response_timeout: Duration::from_millis(500),
            connection_timeout: Duration::from_millis(500),
            retry_after_failure: Duration::from_secs(1),
        }
    }
}

/// Redis-backed `StateStore` with an outage policy.
pub struct RedisState {
    conn: ConnectionManager,
    prefix: String,
    on_error: OnRedisError,
    retry_after_failure_ms: i64,
    admit_script: Script,
    settle_script: Script,
    fallback: MemoryState,
    down_until_ms: AtomicI64,
    down: AtomicBool,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    redis_errors: AtomicU64,
    fail_open_admissions: AtomicU64,
    fail_closed_denials: AtomicU64,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Creates the client without connecting: the first command connects, so a gateway can
    /// start (and fail open) while Redis is down. Errors only on a malformed URL.
    pub fn new(config: RedisStateConfig) -> Result<RedisState, GovernanceError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        Ok(RedisState {
            conn,
            prefix: config.key_prefix,
            on_error: config.on_error,
            retry_after_failure_ms: i64::try_from(config.retry_after_failure.as_millis())
                .unwrap_or(i64::MAX),
            admit_script: Script::new(include_str!("lua/admit_v1.lua")),
            settle_script: Script::new(include_str!("lua/settle_v1.lua")),
            fallback: MemoryState::new(),
            down_until_ms: AtomicI64::new(0),
            down: AtomicBool::new(false),
            counters: Arc::default(),
        })
    }

    /// The full Redis key for a logical state key.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// Whether to skip Redis right now because it failed recently.
    fn skipping(&self) -> bool {
        system_now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn mark_failure(&self, op: &str, error: &redis::RedisError) {
        self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
        self.down_until_ms.store(
            system_now_ms().saturating_add(self.retry_after_failure_ms),
            Ordering::Relaxed,
        );
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(op, %error, policy = ?self.on_error, "redis unreachable: limits and budgets fall back to the outage policy");
        } else {
            tracing::warn!(op, %error, "redis still unreachable");
        }
    }

    fn mark_success(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("redis reachable again: limits and budgets are shared again");
        }
    }

    async fn admit_redis(&self, plan: &AdmitPlan) -> Result<Verdict, redis::RedisError> {
        let mut inv = self.admit_script.prepare_invoke();
        for rate in &plan.rates {
            let log = self.redis_key(&rate.key);
            inv.key(&log).key(format!("{log}:w"));
        }
        for budget in &plan.budgets {
            inv.key(self.redis_key(&budget.key));
        }
        inv.arg(plan.now_ms.map(|n| n.to_string()).unwrap_or_default())
            .arg(&plan.id)
            .arg(plan.rates.len())
            .arg(plan.budgets.len());
        for rate in &plan.rates {
            inv.arg(rate.limit).arg(rate.amount).arg(rate.window_ms);
        }
        for budget in &plan.budgets {
            inv.arg(budget.limit)
                .arg(budget.amount)
                .arg(u8::from(budget.mode == BudgetMode::Hard))
                .arg(budget.ttl_ms);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = inv.invoke_async(&mut conn).await?;
        parse_admit(&reply).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected reply from switchyard_admit_v1",
            ))
        })
    }

    async fn settle_redis(
        &self,
        hold: &Hold,
        actual: Actual,
    ) -> Result<Vec<usize>, redis::RedisError> {
        let mut inv = self.settle_script.prepare_invoke();
        for key in &hold.token_rates {
            inv.key(format!("{}:w", self.redis_key(key)));
        }
        for b in &hold.budgets {
            inv.key(self.redis_key(&b.key));
        }
        inv.arg(&hold.id)
            .arg(hold.token_rates.len())
            .arg(hold.budgets.len())
            .arg(actual.tokens)
            .arg(actual.cost);
        for b in &hold.budgets {
            inv.arg(b.reserved)
                .arg(b.limit)
                .arg(u8::from(b.mode == BudgetMode::Hard))
                .arg(b.ttl_ms);
        }
        let mut conn = self.conn.clone();
        let crossed: Vec<i64> = inv.invoke_async(&mut conn).await?;
        Ok(crossed
            .into_iter()
            .filter_map(|i| usize::try_from(i).ok())
            .collect())
    }

    async fn tally_redis(&self, key: &str) -> Result<Tally, redis::RedisError> {
        let mut conn = self.conn.clone();
        let (spent, reserved): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.redis_key(key))
            .arg("spent")
            .arg("reserved")
            .query_async(&mut conn)
            .await?;
        Ok(Tally {
            spent: Money(spent.unwrap_or(0)),
            reserved: Money(reserved.unwrap_or(0)),
        })
    }

    /// Applies the outage policy to an admission Redis could not decide.
    fn admit_during_outage(&self, plan: &AdmitPlan) -> Result<Verdict, GovernanceError> {
        match self.on_error {
            OnRedisError::FailOpen => {
                self.counters
                    .fail_open_admissions
                    .fetch_add(1, Ordering::Relaxed);
                Ok(match self.fallback.admit_now(plan) {
                    Verdict::Admitted { crossed_alerts, .. } => Verdict::Admitted {
                        crossed_alerts,
                        local: true,
                    },
                    denied => denied,
                })
            }
            OnRedisError::FailClosed => {
                self.counters
                    .fail_closed_denials
                    .fetch_add(1, Ordering::Relaxed);
                Err(GovernanceError::Unavailable(
                    "redis unreachable and on_redis_error = fail_closed".into(),
                ))
            }
        }
    }
}

/// Decodes `switchyard_admit_v1`'s reply.
fn parse_admit(reply: &[i64]) -> Option<Verdict> {
    let idx = |i: usize| reply.get(i).and_then(|v| usize::try_from(*v).ok());
    match reply.first()? {
        1 => Some(Verdict::Admitted {
            crossed_alerts: reply[1..]
                .iter()
                .filter_map(|v| usize::try_from(*v).ok())
                .collect(),
            local: false,
        }),
        0 => Some(Verdict::RateLimited {
            index: idx(1)?,
            retry_after_ms: *reply.get(2)?,
        }),
        2 => Some(Verdict::OverBudget {
            index: idx(1)?,
            spent: *reply.get(2)?,
            reserved: *reply.get(3)?,
        }),
        _ => None,
    }
}

impl StateStore for RedisState {
    fn admit<'a>(&'a self, plan: &'a AdmitPlan) -> BoxFuture<'a, Result<Verdict, GovernanceError>> {
        Box::pin(async move {
            if self.skipping() {
                return self.admit_during_outage(plan);
            }
            match self.admit_redis(plan).await {
                Ok(verdict) => {
                    self.mark_success();
                    Ok(verdict)
                }
                Err(e) => {
                    self.mark_failure("admit", &e);
                    self.admit_during_outage(plan)
                }
            }
        })
    }

    fn settle<'a>(
        &'a self,
        hold: &'a Hold,
        actual: Actual,
    ) -> BoxFuture<'a, Result<Vec<usize>, GovernanceError>> {
        Box::pin(async move {
            if hold.local {
                return Ok(self.fallback.settle_now(hold, actual));
            }
            match self.settle_redis(hold, actual).await {
                Ok(crossed) => {
                    self.mark_success();
                    Ok(crossed)
                }
                Err(e) => {
                    self.mark_failure("settle", &e);
                    Err(GovernanceError::Redis(e))
                }
            }
        })
    }

    fn tally<'a>(
        &'a self,
        budget_key: &'a str,
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<Tally, GovernanceError>> {
        Box::pin(async move {
            match self.tally_redis(budget_key).await {
                Ok(t) => Ok(t),
                Err(e) => {
                    self.mark_failure("tally", &e);
                    Err(GovernanceError::Redis(e))
                }
            }
        })
    }

    fn stats(&self) -> StateStats {
        StateStats {
            redis_errors: self.counters.redis_errors.load(Ordering::Relaxed),
            fail_open_admissions: self.counters.fail_open_admissions.load(Ordering::Relaxed),
            fail_closed_denials: self.counters.fail_closed_denials.load(Ordering::Relaxed),
            redis_down: self.down.load(Ordering::Relaxed),
        }
    }
}
