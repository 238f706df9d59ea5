//! The governor over the in-memory state: denials, scopes, alerts, settle and release.

use super::*;
use crate::keys::{KeyStore, MemoryKeyStore};
use crate::model::{BudgetMode, KeySpec, Limits, ModelPattern, Period, TeamSpec};
use crate::state::{budget_key, MemoryState};

const NOW: i64 = 1_773_502_200_000; // 2026-03-14T15:30:00Z

async fn setup(
    team: TeamSpec,
    key: impl FnOnce(&mut KeySpec),
) -> (Governor, Principal, Arc<MemoryState>) {
    let store = MemoryKeyStore::new();
    let team_name = team.name.clone();
    store.create_team(&team).await.unwrap();
    let mut spec = KeySpec::new(team_name, "k");
    key(&mut spec);
    let issued = store.create_key(&spec).await.unwrap();
    let p = store.authenticate(&issued.secret).await.unwrap().unwrap();
    let state = Arc::new(MemoryState::new());
    (
        Governor::with_clock(state.clone(), Clock::manual(NOW)),
        p,
        state,
    )
}

fn team(name: &str) -> TeamSpec {
    TeamSpec {
        name: name.into(),
        ..Default::default()
    }
}

fn est(cost_usd: f64) -> Estimate {
    Estimate {
        input_tokens: 100,
        max_output_tokens: 400,
        cost: Money::from_usd(cost_usd).unwrap(),
    }
}

#[tokio::test]
async fn models_outside_the_allow_list_are_denied() {
    let (gov, p, _) = setup(team("t"), |s| {
        s.allowed_models = vec![ModelPattern::new("claude-*").unwrap()]
    })
    .await;
    let denied = gov.admit(&p, "gpt-4o", &est(0.01)).await.unwrap_err();
    assert_eq!(denied.status(), 403);
    assert!(denied.to_string().contains("gpt-4o"));
    gov.admit(&p, "claude-sonnet-4", &est(0.01))
        .await
        .unwrap()
        .release();
    assert_eq!(gov.stats().denied_model_not_allowed, 1);
}

#[tokio::test]
async fn team_limits_apply_on_top_of_the_key_limits() {
    let mut t = team("t");
    t.limits = Limits {
        rpm: Some(3),
        tpm: None,
    };
    let (gov, p, _) = setup(t, |s| {
        s.limits = Limits {
            rpm: Some(2),
            tpm: Some(1_000),
        }
    })
    .await;
    let a = gov.admit(&p, "m", &est(0.0)).await.unwrap();
    let b = gov.admit(&p, "m", &est(0.0)).await.unwrap();
    match gov.admit(&p, "m", &est(0.0)).await.unwrap_err() {
        Denied::RateLimited {
            kind,
            scope,
            limit,
            retry_after,
        } => {
            assert_eq!((kind, scope, limit), (RateKind::Requests, Scope::Key, 2));
            assert_eq!(retry_after, Duration::from_secs(60));
        }
        other => panic!("{other:?}"),
    }
    // A second key of the same team shares the team's 3 rpm.
    let mut q = p.clone();
    q.key_id = "key_other".into();
    let c = gov.admit(&q, "m", &est(0.0)).await.unwrap();
    let denied = gov.admit(&q, "m", &est(0.0)).await.unwrap_err();
    assert!(
        matches!(
            denied,
            Denied::RateLimited {
                scope: Scope::Team,
                ..
            }
        ),
        "{denied:?}"
    );
    assert_eq!(denied.retry_after_secs(), Some(60));
    assert!(
        denied
            .to_string()
            .contains("team rate limit of 3 requests per minute"),
        "{denied}"
    );
    // A minute later the window has moved on.
    gov.clock().advance_ms(60_000);
    gov.admit(&p, "m", &est(0.0)).await.unwrap().release();
    for x in [a, b, c] {
        x.release();
    }
}

#[tokio::test]
async fn tokens_per_minute_hold_the_estimate_until_settled() {
    let (gov, p, _) = setup(team("t"), |s| s.limits.tpm = Some(1_000)).await;
    let a = gov.admit(&p, "m", &est(0.0)).await.unwrap(); // 500 tokens
    let b = gov.admit(&p, "m", &est(0.0)).await.unwrap(); // 1,000
    let denied = gov.admit(&p, "m", &est(0.0)).await.unwrap_err();
    assert!(matches!(
        denied,
        Denied::RateLimited {
            kind: RateKind::Tokens,
            ..
        }
    ));
    let used = TokenUsage {
        input: 100,
        output: 50,
        ..Default::default()
    };
    a.settle(used, Money::ZERO).await.unwrap(); // 150 actual + 500 held by b = 650
    let small = Estimate {
        input_tokens: 100,
        max_output_tokens: 250,
        cost: Money::ZERO,
    };
    let c = gov.admit(&p, "m", &small).await.unwrap(); // 1,000: full again
    assert!(gov.admit(&p, "m", &small).await.is_err());
    drop(c);
    drop(b);
    gov.shutdown().await; // both drops refunded their estimates: 150 used
    let d = gov.admit(&p, "m", &est(0.0)).await.unwrap(); // 650
    assert!(gov.admit(&p, "m", &est(0.0)).await.is_err()); // 1,150 would not fit
    d.release();
    gov.shutdown().await;
    assert_eq!(gov.stats().settled, 1);
    assert_eq!(gov.stats().released, 3);
}

#[tokio::test]
async fn hard_budgets_deny_with_the_budget_and_its_reset_time() {
    let (gov, p, state) = setup(team("t"), |s| s.budgets = vec!["day:1".parse().unwrap()]).await;
    let a = gov.admit(&p, "m", &est(0.6)).await.unwrap();
    let denied = gov.admit(&p, "m", &est(0.6)).await.unwrap_err();
    assert_eq!(denied.status(), 429);
    assert_eq!(denied.retry_after_secs(), None);
    let text = denied.to_string();
    assert!(
        text.contains("key daily budget of $1.00 is used up"),
        "{text}"
    );
    assert!(text.contains("$0.60 reserved"), "{text}");
    assert!(text.contains("resets at 2026-03-15T00:00:00Z"), "{text}");
    // Settling below the estimate frees the difference.
    a.settle(TokenUsage::default(), Money::from_usd(0.3).unwrap())
        .await
        .unwrap();
    let b = gov.admit(&p, "m", &est(0.6)).await.unwrap();
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Day,
        BudgetMode::Hard,
        "2026-03-14",
    );
    let tally = state.tally_now(&key, NOW);
    assert_eq!(
        (tally.spent, tally.reserved),
        (Money::from_usd(0.3).unwrap(), Money::from_usd(0.6).unwrap())
    );
    b.release();
    // The next day is a new period.
    gov.clock().advance_ms(86_400_000);
    gov.admit(&p, "m", &est(0.9)).await.unwrap().release();
    gov.shutdown().await;
}

#[tokio::test]
async fn alert_budgets_never_deny_and_alert_once_per_period() {
    let mut t = team("t");
    t.budgets = vec!["week:1:alert".parse().unwrap()];
    let (gov, p, _) = setup(t, |_| {}).await;
    for _ in 0..5 {
        let a = gov.admit(&p, "m", &est(0.5)).await.unwrap();
        a.settle(TokenUsage::default(), Money::from_usd(0.5).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(gov.stats().budget_alerts, 1);
    assert_eq!(gov.stats().admitted, 5);
}

#[tokio::test]
async fn settle_detached_and_drop_outside_a_runtime_are_accounted() {
    let (gov, p, state) = setup(team("t"), |s| s.budgets = vec!["month:1".parse().unwrap()]).await;
    let a = gov.admit(&p, "m", &est(0.2)).await.unwrap();
    a.settle_detached(TokenUsage::default(), Money::from_usd(0.1).unwrap());
    let b = gov.admit(&p, "m", &est(0.2)).await.unwrap();
    gov.shutdown().await;
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Month,
        BudgetMode::Hard,
        "2026-03",
    );
    assert_eq!(
        state.tally_now(&key, NOW).spent,
        Money::from_usd(0.1).unwrap()
    );
    // Dropped on a thread without a runtime: cannot release, but says so.
    std::thread::spawn(move || drop(b)).join().unwrap();
    assert_eq!(gov.stats().releases_lost, 1);
}

/// A ledger stand-in that says the key already spent `0.8` today.
struct Ledger(Money);

impl SpendSource for Ledger {
    fn spent<'a>(
        &'a self,
        _scope: Scope,
        _owner: &'a str,
        _since_ms: i64,
        _until_ms: i64,
    ) -> BoxFuture<'a, Result<Money, GovernanceError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

#[tokio::test]
async fn a_fresh_process_starts_from_the_ledgers_spend_not_zero() {
    let (_, p, _) = setup(team("t"), |s| s.budgets = vec!["day:1".parse().unwrap()]).await;
    let state = Arc::new(MemoryState::new());
    let options = GovernorOptions {
        spend: Some(Arc::new(Ledger(Money::from_usd(0.8).unwrap()))),
        ..GovernorOptions::default()
    };
    let gov = Governor::with_options(state.clone(), Clock::manual(NOW), options);
    // 0.8 spent + 0.3 > 1: refused, although this process never admitted anything.
    let denied = gov.admit(&p, "m", &est(0.3)).await.unwrap_err();
    assert!(matches!(denied, Denied::OverBudget { .. }), "{denied:?}");
    gov.admit(&p, "m", &est(0.2)).await.unwrap().release();
    assert_eq!(gov.stats().seeded, 1);
}

#[tokio::test]
async fn a_hold_nobody_settles_is_released_at_its_expiry_and_reported() {
    let (_, p, _) = setup(team("t"), |s| s.budgets = vec!["day:1".parse().unwrap()]).await;
    let state = Arc::new(MemoryState::new());
    let clock = Clock::manual(NOW);
    let options = GovernorOptions {
        hold_ttl: Duration::from_secs(60),
        ..GovernorOptions::default()
    };
    let gov = Governor::with_options(state.clone(), clock.clone(), options);
    let stuck = gov.admit(&p, "m", &est(0.9)).await.unwrap();
    assert!(gov.admit(&p, "m", &est(0.2)).await.is_err(), "0.9 is held");
    clock.advance_ms(61_000);
    gov.admit(&p, "m", &est(0.2)).await.unwrap().release();
    let key = budget_key(
        Scope::Key,
        &p.key_id,
        Period::Day,
        BudgetMode::Hard,
        "2026-03-14",
    );
    let tally = state.tally_now(&key, clock.now_ms());
    assert_eq!(tally.expired_holds, 1);
    assert_eq!(tally.expired, Money::from_usd(0.9).unwrap());
    // Its late settle still counts the spend, once, and releases nothing twice.
    stuck
        .settle(TokenUsage::default(), Money::from_usd(0.5).unwrap())
        .await
        .unwrap();
    gov.shutdown().await;
    let tally = state.tally_now(&key, clock.now_ms());
    assert_eq!(tally.spent, Money::from_usd(0.5).unwrap());
    assert_eq!((tally.reserved, tally.open_holds), (Money::ZERO, 0));
}
