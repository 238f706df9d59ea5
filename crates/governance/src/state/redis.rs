//! Limits and budgets in Redis, shared exactly by many gateway processes.
//!
//! Each operation is one Lua script (`lua/admit_v2.lua`, `lua/settle_v2.lua`, `lua/seed_v1.lua`; the version is in
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
//!
//! The fallback does not start from zero: each hard budget's local counter starts at the last
//! spend and reservations Redis reported (or the ledger's spend, when Redis was never
//! reached) plus all of the remaining budget except this process's share of it, the remainder
//! divided by the processes Redis saw admitting in the last minute (at least `fleet_size`).
//! What the fallback spends is added to Redis once it is back, and the fallback is then
//! cleared, so the next outage starts from Redis's figures again.
//!
//! An admission Redis did not answer in time may still run when Redis resumes; the gateway
//! releases it (a settle with zeros, retried until it lands or the hold would have expired),
//! and the release's marker makes a script that runs even later refuse.

use super::{
    Actual, AdmitPlan, BudgetCheck, HeldBudget, Hold, MemoryState, StateStats, StateStore, Tally,
    Verdict,
};
use crate::error::GovernanceError;
use crate::keys::BoxFuture;
use crate::model::BudgetMode;
use crate::period::system_now_ms;
use crate::secret::new_id;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_types::Money;

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Keep serving with per-process limits and a per-process share of each budget's
    /// remainder, from memory (flagged and counted).
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
    /// The fewest processes assumed to share a budget when dividing its remainder during an
    /// outage (Redis's own count of recently admitting processes is used when larger).
    pub fleet_size: u32,
}

impl RedisStateConfig {
    /// Defaults for `url`: prefix `switchyard`, fail open, 500 ms timeouts, 1 s retry, a
    /// fleet of at least one.
    pub fn new(url: impl Into<String>) -> RedisStateConfig {
        RedisStateConfig {
            url: url.into(),
            key_prefix: "switchyard".into(),
            on_error: OnRedisError::FailOpen,
            response_timeout: Duration::from_millis(500),
            connection_timeout: Duration::from_millis(500),
            retry_after_failure: Duration::from_secs(1),
            fleet_size: 1,
        }
    }
}

/// How long an admission keeps retrying a dropped or refused connection before the outage
/// policy applies.
const RECONNECT_GRACE: Duration = Duration::from_millis(500);

/// Redis-backed `StateStore` with an outage policy.
pub struct RedisState {
    remote: Remote,
    on_error: OnRedisError,
    retry_after_failure_ms: i64,
    seed_script: Script,
    process: String,
    fleet_size: u32,
    fallback: MemoryState,
    down_until_ms: AtomicI64,
    down: AtomicBool,
    /// Processes Redis last saw admitting within a minute.
    processes: AtomicU64,
    /// Each budget's spend and reservations as Redis last reported them.
    known: Mutex<HashMap<String, (i64, i64)>>,
    /// Spend settled by the fallback, to add to Redis once it is back.
    unreplayed: Mutex<HashMap<String, HeldBudget>>,
    counters: Arc<Counters>,
}

/// What talking to Redis needs, cheap to clone into a background release.
#[derive(Clone)]
struct Remote {
    conn: ConnectionManager,
    prefix: String,
    admit_script: Script,
    settle_script: Script,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    redis_errors: AtomicU64,
    fail_open_admissions: AtomicU64,
    fail_closed_denials: AtomicU64,
    repeated_settles: AtomicU64,
    abandoned_admissions: AtomicU64,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.remote.prefix)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Remote {
    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    async fn settle(&self, hold: &Hold, actual: Actual) -> Result<Vec<usize>, redis::RedisError> {
        let mut inv = self.settle_script.prepare_invoke();
        for key in &hold.token_rates {
            inv.key(format!("{}:w", self.key(key)));
        }
        for b in &hold.budgets {
            let k = self.key(&b.key);
            inv.key(&k).key(format!("{k}:h")).key(format!("{k}:ha"));
        }
        inv.key(self.key(&format!("done:{}", hold.id)));
        inv.arg(&hold.id)
            .arg(hold.token_rates.len())
            .arg(hold.budgets.len())
            .arg(actual.tokens)
            .arg(actual.cost)
            .arg(hold.ttl_ms.max(1));
        for b in &hold.budgets {
            inv.arg(b.limit)
                .arg(u8::from(b.mode == BudgetMode::Hard))
                .arg(b.ttl_ms);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = inv.invoke_async(&mut conn).await?;
        if reply.first() == Some(&-1) {
            self.counters
                .repeated_settles
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(admission = %hold.id, "settle already applied; nothing changed");
            return Ok(Vec::new());
        }
        Ok(reply
            .into_iter()
            .filter_map(|i| usize::try_from(i).ok())
            .collect())
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
        let counters = Arc::<Counters>::default();
        Ok(RedisState {
            remote: Remote {
                conn,
                prefix: config.key_prefix,
                admit_script: Script::new(include_str!("lua/admit_v2.lua")),
                settle_script: Script::new(include_str!("lua/settle_v2.lua")),
                counters: counters.clone(),
            },
            on_error: config.on_error,
            retry_after_failure_ms: i64::try_from(config.retry_after_failure.as_millis())
                .unwrap_or(i64::MAX),
            seed_script: Script::new(include_str!("lua/seed_v1.lua")),
            process: new_id("proc"),
            fleet_size: config.fleet_size.max(1),
            fallback: MemoryState::new(),
            down_until_ms: AtomicI64::new(0),
            down: AtomicBool::new(false),
            processes: AtomicU64::new(0),
            known: Mutex::default(),
            unreplayed: Mutex::default(),
            counters,
        })
    }

    /// The full Redis key for a logical state key.
    pub fn redis_key(&self, key: &str) -> String {
        self.remote.key(key)
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
            // The next outage starts again from what Redis reports from now on.
            self.fallback.clear();
            tracing::info!("redis reachable again: limits and budgets are shared again");
        }
    }

    async fn admit_redis(&self, plan: &AdmitPlan) -> Result<Verdict, redis::RedisError> {
        let r = &self.remote;
        let mut inv = r.admit_script.prepare_invoke();
        for rate in &plan.rates {
            let log = r.key(&rate.key);
            inv.key(&log).key(format!("{log}:w"));
        }
        for budget in &plan.budgets {
            let k = r.key(&budget.key);
            inv.key(&k).key(format!("{k}:h")).key(format!("{k}:ha"));
        }
        inv.key(r.key(&format!("done:{}", plan.id)))
            .key(r.key("procs"));
        inv.arg(plan.now_ms.map(|n| n.to_string()).unwrap_or_default())
            .arg(&plan.id)
            .arg(plan.rates.len())
            .arg(plan.budgets.len())
            .arg(plan.hold_ttl_ms.max(1))
            .arg(&self.process);
        for rate in &plan.rates {
            inv.arg(rate.limit).arg(rate.amount).arg(rate.window_ms);
        }
        for budget in &plan.budgets {
            inv.arg(budget.limit)
                .arg(budget.amount)
                .arg(u8::from(budget.mode == BudgetMode::Hard))
                .arg(budget.ttl_ms);
        }
        let mut conn = r.conn.clone();
        let reply: Vec<i64> = inv.invoke_async(&mut conn).await?;
        let parsed = parse_admit(&reply).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected reply from switchyard_admit_v2",
            ))
        })?;
        let mut known = lock(&self.known);
        if let Some(processes) = parsed.processes {
            self.processes.store(processes, Ordering::Relaxed);
        }
        for (j, counters) in parsed.budgets {
            if let Some(b) = plan.budgets.get(j) {
                known.insert(b.key.clone(), counters);
            }
        }
        Ok(parsed.verdict)
    }

    /// Replays, then admits; a dropped or refused connection is tried again for up to
    /// [`RECONNECT_GRACE`], since it is often Redis restarting: riding it out keeps the fleet
    /// from splitting between Redis and fallbacks that cannot see each other's spend. A try
    /// whose script did run is harmless: admissions are idempotent per id.
    async fn admit_riding_reconnects(
        &self,
        plan: &AdmitPlan,
    ) -> Result<Verdict, redis::RedisError> {
        let give_up = tokio::time::Instant::now() + RECONNECT_GRACE;
        loop {
            let result = match self.replay().await {
                Ok(()) => self.admit_redis(plan).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if !e.is_timeout()
                        && (e.is_io_error()
                            || e.is_connection_dropped()
                            || e.is_connection_refusal())
                        && tokio::time::Instant::now() < give_up =>
                {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                result => return result,
            }
        }
    }

    /// Adds what the fallback spent during an outage to Redis (once: each replay is a settle
    /// with its own id).
    async fn replay(&self) -> Result<(), redis::RedisError> {
        let pending: Vec<HeldBudget> = {
            let mut map = lock(&self.unreplayed);
            if map.is_empty() {
                return Ok(());
            }
            map.drain().map(|(_, b)| b).collect()
        };
        let mut rest = pending.into_iter();
        while let Some(b) = rest.next() {
            let cost = b.reserved;
            let hold = Hold {
                id: new_id("replay"),
                budgets: vec![HeldBudget {
                    reserved: 0,
                    ..b.clone()
                }],
                ttl_ms: 60_000,
                ..Hold::default()
            };
            let actual = Actual {
                tokens: 0,
                cost,
                now_ms: None,
            };
            if let Err(e) = self.remote.settle(&hold, actual).await {
                // Put this and the rest back for the next try.
                let mut map = lock(&self.unreplayed);
                for b in std::iter::once(b).chain(rest) {
                    add_unreplayed(&mut map, &b, b.reserved);
                }
                return Err(e);
            }
        }
        tracing::info!("spend admitted during the redis outage added to redis");
        Ok(())
    }

    async fn tally_redis(&self, key: &str) -> Result<Tally, redis::RedisError> {
        let mut conn = self.remote.conn.clone();
        let k = self.redis_key(key);
        #[allow(clippy::type_complexity)]
        let ((spent, reserved, expired_holds, expired), open): (
            (Option<i64>, Option<i64>, Option<u64>, Option<i64>),
            u64,
        ) = redis::pipe()
            .cmd("HMGET")
            .arg(&k)
            .arg("spent")
            .arg("reserved")
            .arg("expired_holds")
            .arg("expired_nanos")
            .cmd("ZCARD")
            .arg(format!("{k}:h"))
            .query_async(&mut conn)
            .await?;
        Ok(Tally {
            spent: Money(spent.unwrap_or(0)),
            reserved: Money(reserved.unwrap_or(0)),
            open_holds: open,
            expired_holds: expired_holds.unwrap_or(0),
            expired: Money(expired.unwrap_or(0)),
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
                    Verdict::Unseeded { index, .. } => Verdict::Unseeded { index, local: true },
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

    /// Releases an admission whose script Redis did not answer in time, in the background,
    /// retrying until it lands or the hold would have expired anyway.
    fn abandon(&self, plan: &AdmitPlan) {
        if plan.budgets.is_empty() && !plan.rates.iter().any(|r| r.adjustable) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.counters
            .abandoned_admissions
            .fetch_add(1, Ordering::Relaxed);
        let remote = self.remote.clone();
        let hold = Hold::from_plan(plan.clone(), false);
        let give_up = system_now_ms().saturating_add(plan.hold_ttl_ms);
        runtime.spawn(async move {
            let release = Actual {
                tokens: 0,
                cost: 0,
                now_ms: None,
            };
            while remote.settle(&hold, release).await.is_err() && system_now_ms() < give_up {
                // Redis is still away: try again shortly (each try is idempotent).
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// The fallback's starting spend for a hard budget: everything but this process's share
    /// of what remained when Redis was last heard from (or of what the ledger says remains).
    fn outage_start(&self, budget: &BudgetCheck, ledger_spent: i64) -> i64 {
        let known = lock(&self.known).get(&budget.key).copied();
        let base = known.map_or(ledger_spent, |(s, r)| s.saturating_add(r).max(ledger_spent));
        if budget.mode != BudgetMode::Hard {
            return base;
        }
        let processes = self
            .processes
            .load(Ordering::Relaxed)
            .max(u64::from(self.fleet_size))
            .max(1);
        let remaining = budget.limit.saturating_sub(base).max(0);
        budget.limit - remaining / i64::try_from(processes).unwrap_or(i64::MAX)
    }
}

/// Adds `cost` to the replay entry of `b`'s budget.
fn add_unreplayed(map: &mut HashMap<String, HeldBudget>, b: &HeldBudget, cost: i64) {
    map.entry(b.key.clone())
        .or_insert_with(|| HeldBudget {
            reserved: 0,
            ..b.clone()
        })
        .reserved += cost;
}

/// `switchyard_admit_v2`'s reply: the verdict, plus what Redis reported along the way.
struct AdmitReply {
    verdict: Verdict,
    processes: Option<u64>,
    /// Budget index → (spent, reserved).
    budgets: Vec<(usize, (i64, i64))>,
}

/// Decodes `switchyard_admit_v2`'s reply.
fn parse_admit(reply: &[i64]) -> Option<AdmitReply> {
    let idx = |i: usize| reply.get(i).and_then(|v| usize::try_from(*v).ok());
    let plain = |verdict| AdmitReply {
        verdict,
        processes: None,
        budgets: Vec::new(),
    };
    match reply.first()? {
        1 => {
            let processes = u64::try_from(*reply.get(1)?).ok();
            let nb = idx(2)?;
            let pairs = reply.get(3..3 + 2 * nb)?;
            Some(AdmitReply {
                verdict: Verdict::Admitted {
                    crossed_alerts: reply[3 + 2 * nb..]
                        .iter()
                        .filter_map(|v| usize::try_from(*v).ok())
                        .collect(),
                    local: false,
                },
                processes,
                budgets: pairs
                    .chunks_exact(2)
                    .enumerate()
                    .map(|(j, p)| (j, (p[0], p[1])))
                    .collect(),
            })
        }
        0 => Some(plain(Verdict::RateLimited {
            index: idx(1)?,
            retry_after_ms: *reply.get(2)?,
        })),
        2 => {
            let (index, spent, reserved) = (idx(1)?, *reply.get(2)?, *reply.get(3)?);
            Some(AdmitReply {
                verdict: Verdict::OverBudget {
                    index,
                    spent,
                    reserved,
                },
                processes: None,
                budgets: vec![(index, (spent, reserved))],
            })
        }
        3 => Some(plain(Verdict::Unseeded {
            index: idx(1)?,
            local: false,
        })),
        _ => None,
    }
}

impl StateStore for RedisState {
    fn admit<'a>(&'a self, plan: &'a AdmitPlan) -> BoxFuture<'a, Result<Verdict, GovernanceError>> {
        Box::pin(async move {
            if self.skipping() {
                return self.admit_during_outage(plan);
            }
            match self.admit_riding_reconnects(plan).await {
                Ok(verdict) => {
                    self.mark_success();
                    Ok(verdict)
                }
                Err(e) => {
                    self.mark_failure("admit", &e);
                    if e.is_timeout() || e.is_io_error() {
                        // The script may still run when Redis resumes.
                        self.abandon(plan);
                    }
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
                let crossed = self.fallback.settle_now(hold, actual);
                if actual.cost > 0 {
                    let mut map = lock(&self.unreplayed);
                    for b in &hold.budgets {
                        add_unreplayed(&mut map, b, actual.cost);
                    }
                }
                return Ok(crossed);
            }
            match self.remote.settle(hold, actual).await {
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

    fn seed<'a>(
        &'a self,
        budget: &'a BudgetCheck,
        spent: i64,
        local: bool,
        now_ms: Option<i64>,
    ) -> BoxFuture<'a, Result<(), GovernanceError>> {
        Box::pin(async move {
            if local {
                let start = self.outage_start(budget, spent);
                self.fallback
                    .seed_now(budget, start, now_ms.unwrap_or_else(system_now_ms));
                return Ok(());
            }
            let mut conn = self.remote.conn.clone();
            let result: Result<i64, _> = self
                .seed_script
                .key(self.redis_key(&budget.key))
                .arg(spent)
                .arg(budget.ttl_ms)
                .invoke_async(&mut conn)
                .await;
            match result {
                Ok(_) => {
                    self.mark_success();
                    Ok(())
                }
                Err(e) => {
                    self.mark_failure("seed", &e);
                    Err(GovernanceError::Redis(e))
                }
            }
        })
    }

    fn stats(&self) -> StateStats {
        let c = &self.counters;
        StateStats {
            redis_errors: c.redis_errors.load(Ordering::Relaxed),
            fail_open_admissions: c.fail_open_admissions.load(Ordering::Relaxed),
            fail_closed_denials: c.fail_closed_denials.load(Ordering::Relaxed),
            redis_down: self.down.load(Ordering::Relaxed),
            repeated_settles: c.repeated_settles.load(Ordering::Relaxed),
            abandoned_admissions: c.abandoned_admissions.load(Ordering::Relaxed),
        }
    }

    fn can_fall_behind(&self) -> bool {
        true
    }

    fn fails_closed(&self) -> bool {
        self.on_error == OnRedisError::FailClosed
    }
}
