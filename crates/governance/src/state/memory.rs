//! Limits and budgets in process memory: the single-process default, and Redis's fallback
//! when it fails open. Each hold is settled once by construction here (nothing in process
//! times out and retries), so unlike Redis there is no settled-marker set.

use super::{Actual, AdmitPlan, BudgetCheck, Hold, StateStore, Tally, Verdict};
use crate::error::GovernanceError;
use crate::keys::BoxFuture;
use crate::model::BudgetMode;
use crate::period::system_now_ms;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use switchyard_types::Money;

/// Sweep expired state once the maps hold this many entries.
const SWEEP_AT: usize = 10_000;

/// In-memory `StateStore`: one mutex, held only for plain map updates (never across await).
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rates: HashMap<String, RateLog>,
    budgets: HashMap<String, Cell>,
}

/// A sliding-window log: admissions in arrival order, with their current weights. An
/// admission's id is one shared string across every log it enters.
#[derive(Debug, Default)]
struct RateLog {
    entries: VecDeque<(i64, Arc<str>)>,
    weights: HashMap<Arc<str>, u64>,
    sum: u64,
    window_ms: i64,
}

impl RateLog {
    /// Drops entries that left the window `(now - window, now]`.
    fn prune(&mut self, now: i64) {
        let cutoff = now - self.window_ms;
        while let Some((t, _)) = self.entries.front() {
            if *t > cutoff {
                break;
            }
            if let Some((_, id)) = self.entries.pop_front() {
                let w = self.weights.remove(&*id).unwrap_or(0);
                self.sum = self.sum.saturating_sub(w);
            }
        }
    }

    /// How long until `amount` more fits under `limit` (the oldest entries leaving first).
    fn retry_after(&self, now: i64, amount: u64, limit: u64) -> i64 {
        if amount > limit {
            return self.window_ms;
        }
        let need = (self.sum + amount).saturating_sub(limit);
        let mut freed = 0;
        for (t, id) in &self.entries {
            freed += self.weights.get(&**id).copied().unwrap_or(0);
            if freed >= need {
                return (t + self.window_ms - now).max(1);
            }
        }
        self.window_ms
    }
}

#[derive(Debug, Default)]
struct Cell {
    spent: i64,
    reserved: i64,
    alerted: bool,
    /// Raised to the ledger's spend for the period before the first admission.
    seeded: bool,
    expires_ms: i64,
    /// Open holds: admission id → reserved amount.
    holds: HashMap<Arc<str>, i64>,
    /// Open holds' expiries in admission order (one TTL for all, so in expiry order); settled
    /// holds leave it when they reach the front.
    expiry: VecDeque<(i64, Arc<str>)>,
    expired_holds: u64,
    expired: i64,
}

impl Cell {
    /// Releases the holds whose expiry passed.
    fn expire(&mut self, now: i64) {
        while let Some((at, id)) = self.expiry.front() {
            // Settled already (holds settle roughly in order, so the queue stays short).
            if !self.holds.contains_key(id) {
                self.expiry.pop_front();
                continue;
            }
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.expiry.pop_front() {
                if let Some(amount) = self.holds.remove(&id) {
                    self.reserved = (self.reserved - amount).max(0);
                    self.expired_holds += 1;
                    self.expired += amount;
                }
            }
        }
    }
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters stay usable after a panic elsewhere; refusing every request would be worse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks and consumes a plan (the synchronous core, shared with Redis's fallback).
    pub(crate) fn admit_now(&self, plan: &AdmitPlan) -> Verdict {
        let now = plan.now_ms.unwrap_or_else(system_now_ms);
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.rates.len() + inner.budgets.len() > SWEEP_AT {
            inner.budgets.retain(|_, c| c.expires_ms > now);
            inner.rates.retain(|_, log| {
                log.prune(now);
                !log.entries.is_empty()
            });
        }
        for (index, check) in plan.rates.iter().enumerate() {
            // Look up before inserting: the key is only copied the first time it is seen.
            if !inner.rates.contains_key(&check.key) {
                inner.rates.insert(check.key.clone(), RateLog::default());
            }
            let Some(log) = inner.rates.get_mut(&check.key) else {
                continue;
            };
            log.window_ms = check.window_ms;
            log.prune(now);
            if log.sum + check.amount > check.limit {
                return Verdict::RateLimited {
                    index,
                    retry_after_ms: log.retry_after(now, check.amount, check.limit),
                };
            }
        }
        for (index, check) in plan.budgets.iter().enumerate() {
            let Some(cell) = live_cell(&mut inner.budgets, &check.key, now) else {
                continue;
            };
            if !cell.seeded {
                return Verdict::Unseeded {
                    index,
                    local: false,
                };
            }
            if cell.holds.contains_key(plan.id.as_str()) {
                // The same admission again: it already holds everything.
                return Verdict::Admitted {
                    crossed_alerts: Vec::new(),
                    local: false,
                };
            }
            cell.expire(now);
            if check.mode == BudgetMode::Hard
                && cell.spent + cell.reserved + check.amount > check.limit
            {
                return Verdict::OverBudget {
                    index,
                    spent: cell.spent,
                    reserved: cell.reserved,
                };
            }
        }
        // One allocation for the id, shared by every log and hold it enters.
        let id: Arc<str> = plan.id.as_str().into();
        if !plan.rates.is_empty() {
            for check in &plan.rates {
                if let Some(log) = inner.rates.get_mut(&check.key) {
                    log.entries.push_back((now, id.clone()));
                    log.weights.insert(id.clone(), check.amount);
                    log.sum += check.amount;
                }
            }
        }
        let mut crossed_alerts = Vec::new();
        for (index, check) in plan.budgets.iter().enumerate() {
            let Some(cell) = live_cell(&mut inner.budgets, &check.key, now) else {
                continue;
            };
            cell.reserved += check.amount;
            cell.holds.insert(id.clone(), check.amount);
            cell.expiry.push_back((now + plan.hold_ttl_ms, id.clone()));
            cell.expires_ms = cell.expires_ms.max(now + check.ttl_ms);
            if check.mode == BudgetMode::Alert
                && cell.spent + cell.reserved > check.limit
                && !cell.alerted
            {
                cell.alerted = true;
                crossed_alerts.push(index);
            }
        }
        Verdict::Admitted {
            crossed_alerts,
            local: false,
        }
    }

    /// Settles or releases a hold (the synchronous core).
    pub(crate) fn settle_now(&self, hold: &Hold, actual: Actual) -> Vec<usize> {
        let now = actual.now_ms.unwrap_or_else(system_now_ms);
        let mut guard = self.lock();
        let inner = &mut *guard;
        for key in &hold.token_rates {
            if let Some(log) = inner.rates.get_mut(key) {
                // Entries that already left the window are gone: nothing to adjust.
                if let Some(w) = log.weights.get_mut(hold.id.as_str()) {
                    log.sum = log.sum.saturating_sub(*w) + actual.tokens;
                    *w = actual.tokens;
                }
            }
        }
        let mut crossed = Vec::new();
        for (index, b) in hold.budgets.iter().enumerate() {
            let Some(cell) = live_cell(&mut inner.budgets, &b.key, now) else {
                continue;
            };
            // The hold's own amount: gone means it expired (already released) or never
            // reached this store.
            if let Some(amount) = cell.holds.remove(hold.id.as_str()) {
                cell.reserved = (cell.reserved - amount).max(0);
            }
            cell.spent += actual.cost;
            cell.expires_ms = cell.expires_ms.max(now + b.ttl_ms);
            if b.mode == BudgetMode::Alert && cell.spent + cell.reserved > b.limit && !cell.alerted
            {
                cell.alerted = true;
                crossed.push(index);
            }
        }
        crossed
    }

    /// The counters of one budget period (the synchronous core).
    pub(crate) fn tally_now(&self, key: &str, now: i64) -> Tally {
        self.lock()
            .budgets
            .get(key)
            .filter(|c| c.expires_ms > now || c.expires_ms == 0)
            .map(|c| Tally {
                spent: Money(c.spent),
                reserved: Money(c.reserved),
                open_holds: c.holds.len() as u64,
                expired_holds: c.expired_holds,
                expired: Money(c.expired),
            })
            .unwrap_or_default()
    }

    /// Raises a budget's spend to at least `spent` and marks it seeded (the synchronous core).
    pub(crate) fn seed_now(&self, budget: &BudgetCheck, spent: i64, now: i64) {
        let mut guard = self.lock();
        if let Some(cell) = live_cell(&mut guard.budgets, &budget.key, now) {
            cell.spent = cell.spent.max(spent);
            cell.seeded = true;
            cell.expires_ms = cell.expires_ms.max(now + budget.ttl_ms);
        }
    }

    /// Forgets everything (Redis's fallback, when Redis is back: the next outage starts from
    /// what Redis knew then).
    pub(crate) fn clear(&self) {
        *self.lock() = Inner::default();
    }
}

/// The cell for `key` (created if missing, reset if its period's TTL ran out); `None` never
/// happens in practice.
fn live_cell<'a>(
    budgets: &'a mut HashMap<String, Cell>,
    key: &str,
    now: i64,
) -> Option<&'a mut Cell> {
    // Look up before inserting: the key is only copied the first time it is seen.
    if !budgets.contains_key(key) {
        budgets.insert(key.to_owned(), Cell::default());
    }
    let cell = budgets.get_mut(key)?;
    if cell.expires_ms != 0 && cell.expires_ms <= now {
        *cell = Cell::default();
    }
    Some(cell)
}

impl StateStore for MemoryState {
    fn admit<'a>(&'a self, plan: &'a AdmitPlan) -> BoxFuture<'a, Result<Verdict, GovernanceError>> {
        Box::pin(async move { Ok(self.admit_now(plan)) })
    }

    fn settle<'a>(
        &'a self,
        hold: &'a Hold,
        actual: Actual,
    ) -> BoxFuture<'a, Result<Vec<usize>, GovernanceError>> {
        Box::pin(async move { Ok(self.settle_now(hold, actual)) })
    }

    fn tally<'a>(
        &'a self,
        budget_key: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Tally, GovernanceError>> {
        Box::pin(async move { Ok(self.tally_now(budget_key, now_ms)) })
    }

    fn seed<'a>(
        &'a self,
        budget: &'a BudgetCheck,
        spent: i64,
        _local: bool,
        now_ms: Option<i64>,
    ) -> BoxFuture<'a, Result<(), GovernanceError>> {
        Box::pin(async move {
            self.seed_now(budget, spent, now_ms.unwrap_or_else(system_now_ms));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RateCheck, WINDOW_MS};
    use proptest::prelude::*;

    fn plan(id: usize, now: i64, limit: u64, amount: u64) -> AdmitPlan {
        AdmitPlan {
            id: format!("a{id}"),
            now_ms: Some(now),
            rates: vec![RateCheck {
                key: "rl:key:k:requests".into(),
                limit,
                amount,
                window_ms: WINDOW_MS,
                adjustable: false,
            }],
            budgets: vec![],
            hold_ttl_ms: 60_000,
        }
    }

    proptest! {
        /// In every window `(t - 60 s, t]`, the admitted weight never exceeds the limit.
        #[test]
        fn sliding_window_never_admits_more_than_the_limit_in_any_window(
            gaps in proptest::collection::vec(0i64..3_000, 1..400),
            weights in proptest::collection::vec(1u64..5, 400),
            limit in 1u64..40,
        ) {
            let state = MemoryState::new();
            let mut now = 1_700_000_000_000i64;
            let mut admitted: Vec<(i64, u64)> = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                let w = weights[i];
                if let Verdict::Admitted { .. } = state.admit_now(&plan(i, now, limit, w)) {
                    admitted.push((now, w));
                }
            }
            // Every window ending at an admission is the worst case for windows ending there.
            for &(end, _) in &admitted {
                let inside: u64 = admitted
                    .iter()
                    .filter(|(t, _)| *t > end - WINDOW_MS && *t <= end)
                    .map(|(_, w)| w)
                    .sum();
                prop_assert!(inside <= limit, "window ending {end}: {inside} > {limit}");
            }
        }
    }

    #[test]
    fn a_denial_says_when_the_oldest_entry_leaves_the_window() {
        let state = MemoryState::new();
        let t0 = 1_700_000_000_000;
        assert!(matches!(
            state.admit_now(&plan(0, t0, 2, 1)),
            Verdict::Admitted { .. }
        ));
        assert!(matches!(
            state.admit_now(&plan(1, t0 + 10_000, 2, 1)),
            Verdict::Admitted { .. }
        ));
        match state.admit_now(&plan(2, t0 + 20_000, 2, 1)) {
            Verdict::RateLimited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 40_000),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(matches!(
            state.admit_now(&plan(3, t0 + 60_000, 2, 1)),
            Verdict::Admitted { .. }
        ));
    }
}
