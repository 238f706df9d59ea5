//! The overshoot bound: 50 concurrent requests against a budget that fits 10, for one process
//! (memory) and three processes sharing Redis; with exact, lower and higher actual costs.

// Tests may unwrap: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use switchyard_governance::state::budget_key;
use switchyard_governance::{
    bucket, BudgetMode, Denied, Estimate, Governor, MemoryState, OnRedisError, Period, Principal,
    Scope, StateStore,
};
use switchyard_types::{Money, TokenUsage};

const CONCURRENT: usize = 50;
/// Each request is estimated at $0.10; the daily budget of $1.00 fits 10 of them.
const ESTIMATE: Money = Money(100_000_000);
const BUDGET_USD: f64 = 1.0;

struct Outcome {
    admitted: usize,
    settled_sum: Money,
    spent: Money,
    reserved: Money,
    max_actual: Money,
}

/// Spawns 50 admissions spread over `govs`, each settling `actual(i)` after a short random
/// delay, and reads the budget's counters back from `state`.
async fn run(
    govs: &[Governor],
    state: &dyn StateStore,
    p: &Principal,
    actual: fn(usize) -> Money,
) -> Outcome {
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT {
        let gov = govs[i % govs.len()].clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let estimate = Estimate {
                input_tokens: 100,
                max_output_tokens: 100,
                cost: ESTIMATE,
            };
            match gov.admit(&p, "gpt-4o", &estimate).await {
                Ok(admission) => {
                    let pause = rand::random::<u64>() % 5;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    admission
                        .settle(TokenUsage::default(), actual(i))
                        .await
                        .unwrap();
                    Some(actual(i))
                }
                Err(Denied::OverBudget { .. }) => None,
                Err(other) => panic!("unexpected denial: {other}"),
            }
        }));
    }
    let mut admitted = 0;
    let mut settled_sum = Money::ZERO;
    let mut max_actual = Money::ZERO;
    for t in tasks {
        if let Some(cost) = t.await.unwrap() {
            admitted += 1;
            settled_sum += cost;
            max_actual = max_actual.max(cost);
        }
    }
    drain(govs).await;
    let now = switchyard_governance::Clock::System.now_ms();
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Day,
        BudgetMode::Hard,
        &bucket(Period::Day, now).label,
    );
    let tally = state.tally(&key, now).await.unwrap();
    Outcome {
        admitted,
        settled_sum,
        spent: tally.spent,
        reserved: tally.reserved,
        max_actual,
    }
}

async fn budget_principal() -> Principal {
    principal(|spec| spec.budgets = vec![format!("day:{BUDGET_USD}").parse().unwrap()])
        .await
        .0
}

fn limit() -> Money {
    Money::from_usd(BUDGET_USD).unwrap()
}

/// Actual = estimate.
fn exact(_: usize) -> Money {
    ESTIMATE
}

/// Actual between 40% and 100% of the estimate (estimates are upper bounds).
fn lower(i: usize) -> Money {
    Money(ESTIMATE.0 * (40 + (i as i64 * 13) % 61) / 100)
}

/// Actual 10% above the estimate (an estimate that was not an upper bound).
fn higher(_: usize) -> Money {
    Money(ESTIMATE.0 + ESTIMATE.0 / 10)
}

fn check(o: &Outcome, case: &str) {
    assert_eq!(
        o.spent, o.settled_sum,
        "{case}: state spent == sum of settlements"
    );
    assert_eq!(o.reserved, Money::ZERO, "{case}: nothing left reserved");
    // The bound: never more than one request's cost over the budget.
    assert!(
        o.spent.0 <= limit().0 + o.max_actual.0,
        "{case}: spent {} > budget {} + one request {}",
        o.spent,
        limit(),
        o.max_actual
    );
}

async fn all_cases(govs: &[Governor], state: &dyn StateStore, label: &str) {
    let o = run(govs, state, &budget_principal().await, exact).await;
    check(&o, &format!("{label}/exact"));
    // Upper-bound estimates: exactly the 10 that fit, and no overshoot at all.
    assert_eq!(o.admitted, 10, "{label}/exact");
    assert_eq!(o.spent, limit(), "{label}/exact");

    let o = run(govs, state, &budget_principal().await, lower).await;
    check(&o, &format!("{label}/lower"));
    assert!(
        o.admitted >= 10,
        "{label}/lower: refunds make room ({})",
        o.admitted
    );
    assert!(
        o.spent <= limit(),
        "{label}/lower: no overshoot with upper-bound estimates"
    );

    let o = run(govs, state, &budget_principal().await, higher).await;
    check(&o, &format!("{label}/higher"));
    // The documented bound: limit + the sum of under-estimates of admitted requests.
    let under = Money(ESTIMATE.0 / 10 * o.admitted as i64);
    assert!(
        o.spent.0 <= limit().0 + under.0,
        "{label}/higher: {} > {} + {}",
        o.spent,
        limit(),
        under
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_process_with_memory_state_overshoots_by_at_most_one_request() {
    let state = Arc::new(MemoryState::new());
    let gov = Governor::new(state.clone());
    all_cases(&[gov], state.as_ref(), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_sharing_redis_overshoot_by_at_most_one_request() {
    let Some(url) =
        redis_url("three_processes_sharing_redis_overshoot_by_at_most_one_request").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let states: Vec<_> = (0..3)
        .map(|_| redis_state(&url, &prefix, OnRedisError::FailClosed))
        .collect();
    let govs: Vec<Governor> = states.iter().map(|s| Governor::new(s.clone())).collect();
    all_cases(&govs, states[0].as_ref(), "redis").await;
    for s in &states {
        assert_eq!(s.stats().redis_errors, 0);
    }
    cleanup(&url, &prefix).await;
}
