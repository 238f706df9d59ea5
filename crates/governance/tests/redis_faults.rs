//! Holds with identity against a Redis this test pauses (SIGSTOP) itself: a settle retried
//! after a timeout counts once, and an admission the governor gave up waiting for leaves no
//! reservation once Redis resumes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_governance::state::budget_key;
use switchyard_governance::{
    bucket, BudgetMode, Clock, Denied, Estimate, Governor, OnRedisError, Period, Principal,
    RedisState, Scope, StateStore,
};
use switchyard_types::{Money, TokenUsage};

/// A `redis-server` on its own port, so pausing it disturbs no other test.
struct OwnRedis(Child, u16);

impl OwnRedis {
    fn start(test: &str) -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{test}: redis-server: {e}"
                );
                eprintln!("SKIPPED {test}: redis-server is not installed");
                return None;
            }
        };
        let redis = OwnRedis(child, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.pong() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.1)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.1)
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fail-closed Redis state on `redis`, its governor, a key with a $1 daily hard budget, and
/// that budget's state key.
async fn fail_closed_with_a_budget(
    redis: &OwnRedis,
) -> (std::sync::Arc<RedisState>, Governor, Principal, String) {
    let state = redis_state(&redis.url(), "t", OnRedisError::FailClosed);
    let gov = Governor::new(state.clone());
    let (p, _) = principal(|s| s.budgets = vec!["day:1".parse().unwrap()]).await;
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Day,
        BudgetMode::Hard,
        &bucket(Period::Day, Clock::System.now_ms()).label,
    );
    (state, gov, p, key)
}

fn estimate() -> Estimate {
    Estimate {
        input_tokens: 10,
        max_output_tokens: 10,
        cost: Money(1_000),
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_settle_retried_after_a_timeout_is_counted_once() {
    let Some(redis) = OwnRedis::start("a_settle_retried_after_a_timeout_is_counted_once") else {
        return;
    };
    let (state, gov, p, key) = fail_closed_with_a_budget(&redis).await;
    let admission = gov.admit(&p, "m", &estimate()).await.unwrap();

    // Redis stops answering: the settle times out (500 ms) and is sent again, and again.
    redis.signal("-STOP");
    let settle = tokio::spawn(admission.settle(TokenUsage::default(), Money(700)));
    wait_for("two settle retries", || gov.stats().settle_retries >= 2).await;
    redis.signal("-CONT");
    settle.await.unwrap().unwrap();

    let tally = state.tally(&key, 0).await.unwrap();
    assert_eq!(tally.spent, Money(700), "the settle counted once");
    assert_eq!(tally.reserved, Money(0));
    assert_eq!(tally.open_holds, 0);
    gov.shutdown().await;
}

/// What a timed-out try that still ran looks like to Redis: the same settle twice.
#[tokio::test]
async fn the_same_settle_twice_counts_once() {
    let Some(redis) = OwnRedis::start("the_same_settle_twice_counts_once") else {
        return;
    };
    let (state, gov, p, plan_key) = fail_closed_with_a_budget(&redis).await;
    let admission = gov.admit(&p, "m", &estimate()).await.unwrap();
    let hold = switchyard_governance::state::Hold {
        id: admission.id().to_string(),
        budgets: vec![switchyard_governance::state::HeldBudget {
            key: plan_key.clone(),
            reserved: 1_000,
            limit: 1_000_000_000,
            mode: BudgetMode::Hard,
            ttl_ms: 60_000,
        }],
        ttl_ms: 60_000,
        ..Default::default()
    };
    let actual = switchyard_governance::state::Actual {
        tokens: 0,
        cost: 700,
        now_ms: None,
    };
    state.settle(&hold, actual).await.unwrap();
    state.settle(&hold, actual).await.unwrap();
    // The admission's own settle comes third: still nothing more.
    admission
        .settle(TokenUsage::default(), Money(700))
        .await
        .unwrap();
    let tally = state.tally(&plan_key, 0).await.unwrap();
    assert_eq!(tally.spent, Money(700));
    assert_eq!(tally.reserved, Money(0));
    assert_eq!(state.stats().repeated_settles, 2);
    gov.shutdown().await;
}

#[tokio::test]
async fn an_admission_given_up_on_during_a_stall_leaves_no_reservation() {
    let Some(redis) = OwnRedis::start("an_admission_given_up_on_during_a_stall") else {
        return;
    };
    let (state, gov, p, key) = fail_closed_with_a_budget(&redis).await;
    // Seed the budget, so the stalled admission's script would reserve.
    gov.admit(&p, "m", &estimate()).await.unwrap().release();

    redis.signal("-STOP");
    let denied = gov.admit(&p, "m", &estimate()).await.unwrap_err();
    assert!(matches!(denied, Denied::Unavailable), "{denied:?}");
    assert_eq!(state.stats().abandoned_admissions, 1);
    redis.signal("-CONT");

    // The late script ran (or was refused by the release's marker): either way nothing stays.
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = state.tally(&key, 0).await {
            if t.reserved == Money(0) && t.open_holds == 0 {
                break;
            }
            last = Some(t);
        }
        assert!(
            Instant::now() < deadline,
            "reservation left behind: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gov.shutdown().await;
}
