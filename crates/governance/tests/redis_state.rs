//! Rate limits shared through Redis over simulated time, the outage policies, releases on
//! drop, and no secrets in Redis.

// Tests may unwrap: a panic there is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;
use switchyard_governance::state::budget_key;
use switchyard_governance::{
    bucket, Clock, Denied, Estimate, Governor, OnRedisError, Period, RateKind, Scope, StateStore,
};
use switchyard_governance::{BudgetMode, Limits};
use switchyard_types::{Money, TokenUsage};

const START_MS: i64 = 1_773_502_200_000; // 2026-03-14T15:30:00Z

fn estimate() -> Estimate {
    Estimate {
        input_tokens: 50,
        max_output_tokens: 50,
        cost: Money(1_000),
    }
}

/// Three gateway processes, each offering 50 requests per simulated second (9,000 per
/// minute in total) to one key limited to 600 per minute, for two simulated minutes.
///
/// Time is simulated with a shared manual clock: the Lua script takes `now` from it instead
/// of Redis `TIME`, so two minutes of traffic take well under a second of real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_share_a_600_per_minute_limit_within_2_percent() {
    let Some(url) =
        redis_url("three_processes_share_a_600_per_minute_limit_within_2_percent").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let clock = Clock::manual(START_MS);
    let govs: Vec<Governor> = (0..3)
        .map(|_| {
            Governor::with_clock(
                redis_state(&url, &prefix, OnRedisError::FailClosed),
                clock.clone(),
            )
        })
        .collect();
    let (p, _) = principal(|s| {
        s.limits = Limits {
            rpm: Some(600),
            tpm: None,
        }
    })
    .await;

    let step_ms = 20; // each process sends one request per step
    let steps = 2 * 60_000 / step_ms;
    let mut accepted_at = Vec::new();
    let mut retry_hints = Vec::new();
    for step in 0..steps {
        clock.set_ms(START_MS + step * step_ms);
        let attempts = govs.iter().map(|g| {
            let (g, p) = (g.clone(), p.clone());
            tokio::spawn(async move { g.admit(&p, "gpt-4o", &estimate()).await })
        });
        for t in attempts.collect::<Vec<_>>() {
            match t.await.unwrap() {
                Ok(admission) => {
                    accepted_at.push(step * step_ms);
                    admission.release();
                }
                Err(Denied::RateLimited {
                    kind,
                    scope,
                    retry_after,
                    ..
                }) => {
                    assert_eq!((kind, scope), (RateKind::Requests, Scope::Key));
                    retry_hints.push(retry_after);
                }
                Err(other) => panic!("unexpected denial: {other}"),
            }
        }
    }
    let first_minute = accepted_at.iter().filter(|t| **t < 60_000).count();
    let second_minute = accepted_at.len() - first_minute;
    for (name, n) in [
        ("first minute", first_minute),
        ("second minute", second_minute),
    ] {
        assert!((588..=612).contains(&n), "{name}: {n} accepted, limit 600");
    }
    // And in every sliding 60 s window, never more than the limit.
    for (i, start) in accepted_at.iter().enumerate() {
        let inside = accepted_at[i..]
            .iter()
            .take_while(|t| **t < start + 60_000)
            .count();
        assert!(inside <= 600, "window from {start} ms: {inside}");
    }
    assert!(retry_hints
        .iter()
        .all(|d| *d > Duration::ZERO && *d <= Duration::from_secs(60)));
    drain(&govs).await;
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn a_dropped_admission_releases_its_reservation_in_redis() {
    let Some(url) = redis_url("a_dropped_admission_releases_its_reservation_in_redis").await else {
        return;
    };
    let prefix = unique_prefix();
    let state = redis_state(&url, &prefix, OnRedisError::FailClosed);
    let gov = Governor::new(state.clone());
    let (p, _) = principal(|s| {
        s.budgets = vec!["day:1".parse().unwrap()];
        s.limits.tpm = Some(1_000);
    })
    .await;
    let now = Clock::System.now_ms();
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Day,
        BudgetMode::Hard,
        &bucket(Period::Day, now).label,
    );

    let held = gov.admit(&p, "m", &estimate()).await.unwrap();
    assert_eq!(state.tally(&key, now).await.unwrap().reserved, Money(1_000));
    drop(held); // client went away before the upstream call
    gov.shutdown().await;
    let tally = state.tally(&key, now).await.unwrap();
    assert_eq!((tally.spent, tally.reserved), (Money::ZERO, Money::ZERO));
    assert_eq!(gov.stats().released, 1);

    // Tokens: 10 admissions of 100 estimated tokens fill 1,000 TPM; settling each at 10
    // actual tokens gives the room back.
    let mut admissions = Vec::new();
    for _ in 0..10 {
        admissions.push(gov.admit(&p, "m", &estimate()).await.unwrap());
    }
    assert!(matches!(
        gov.admit(&p, "m", &estimate()).await,
        Err(Denied::RateLimited {
            kind: RateKind::Tokens,
            ..
        })
    ));
    for a in admissions {
        let usage = TokenUsage {
            input: 5,
            output: 5,
            ..Default::default()
        };
        a.settle(usage, Money(10)).await.unwrap();
    }
    assert!(gov.admit(&p, "m", &estimate()).await.is_ok());
    gov.shutdown().await;
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn redis_holds_no_secrets() {
    let Some(url) = redis_url("redis_holds_no_secrets").await else {
        return;
    };
    let prefix = unique_prefix();
    let state = redis_state(&url, &prefix, OnRedisError::FailClosed);
    let gov = Governor::new(state);
    let (p, secret) = principal(|s| {
        s.budgets = vec!["month:5".parse().unwrap()];
        s.limits = Limits {
            rpm: Some(100),
            tpm: Some(100_000),
        };
    })
    .await;
    gov.admit(&p, "m", &estimate())
        .await
        .unwrap()
        .settle(TokenUsage::default(), Money(5))
        .await
        .unwrap();
    let keys = keys_under(&url, &prefix).await;
    assert!(keys.len() >= 5, "{keys:?}");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for k in &keys {
        assert!(!k.contains(&secret) && !k.contains(&secret[12..]));
        let kind: String = redis::cmd("TYPE")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(k)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            // A settled admission's marker.
            "string" => vec![redis::cmd("GET")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap()],
            other => panic!("unexpected type {other} for {k}"),
        };
        assert!(values.iter().all(|v| !v.contains(&secret[12..])), "{k}");
    }
    cleanup(&url, &prefix).await;
}

/// A port where nothing listens: Redis "down".
fn dead_redis(on_error: OnRedisError) -> std::sync::Arc<switchyard_governance::RedisState> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    redis_state(
        &format!("redis://127.0.0.1:{port}"),
        &unique_prefix(),
        on_error,
    )
}

#[tokio::test]
async fn fail_open_admits_with_local_limits_and_counts_the_outage() {
    let state = dead_redis(OnRedisError::FailOpen);
    let gov = Governor::new(state.clone());
    let (p, _) = principal(|s| s.limits.rpm = Some(2)).await;
    let first = gov.admit(&p, "m", &estimate()).await.unwrap();
    assert!(first.is_local(), "flagged as decided locally");
    let second = gov.admit(&p, "m", &estimate()).await.unwrap();
    // Local limits still apply.
    assert!(matches!(
        gov.admit(&p, "m", &estimate()).await,
        Err(Denied::RateLimited { .. })
    ));
    first.settle(TokenUsage::default(), Money(1)).await.unwrap();
    second.release();
    gov.shutdown().await;
    let stats = gov.stats();
    assert!(stats.state.redis_errors >= 1);
    assert_eq!(stats.state.fail_open_admissions, 3);
    assert!(stats.state.redis_down);
    assert_eq!(stats.settle_errors, 0, "local holds settle locally");
}

#[tokio::test]
async fn fail_closed_denies_with_unavailable_and_counts_the_outage() {
    let state = dead_redis(OnRedisError::FailClosed);
    let gov = Governor::new(state);
    let (p, _) = principal(|_| {}).await;
    let denied = gov.admit(&p, "m", &estimate()).await.unwrap_err();
    assert_eq!(denied, Denied::Unavailable);
    assert_eq!((denied.status(), denied.retry_after_secs()), (503, Some(1)));
    assert!(gov.admit(&p, "m", &estimate()).await.is_err());
    let stats = gov.stats();
    assert_eq!(stats.denied_unavailable, 2);
    assert_eq!(stats.state.fail_closed_denials, 2);
    assert!(stats.state.redis_errors >= 1 && stats.state.redis_down);
}
