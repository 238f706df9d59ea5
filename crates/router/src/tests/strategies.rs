use super::*;
use std::collections::HashMap;
use switchyard_types::{Money, TokenUsage};

fn model(strategy: Strategy, deployments: Vec<Arc<Deployment>>) -> Catalog {
    let mut m = Model::new("m", deployments);
    m.strategy = strategy;
    Catalog::new(vec![m])
}

fn counts(catalog: &Catalog, health: &Health, n: usize) -> HashMap<String, usize> {
    let mut r = rng();
    let mut out = HashMap::new();
    for _ in 0..n {
        *out.entry(first(catalog, health, &mut r)).or_default() += 1;
    }
    out
}

/// Serves one request through the attempt loop (so limits and spend are taken) and settles.
async fn serve(catalog: &Catalog, health: &Health, usage: TokenUsage) -> Result<String, Failed> {
    let prefs = Preferences::default();
    let plan = catalog
        .route(health, &req("m", &prefs), &mut rng())
        .map_err(|e| Failed {
            error: AttemptError::new(e.kind(), e.to_string()),
            attempts: vec![],
        })?;
    let served = execute(&plan, health, &Budget::default(), |d| async move {
        Ok::<_, AttemptError>(d.id.to_string())
    })
    .await?;
    let _cost = served.permit.settle(&usage);
    Ok(served.value)
}

#[test]
fn weighted_matches_its_weights_within_two_points_over_10000_decisions() {
    let catalog = model(
        Strategy::Weighted {
            weights: vec![1, 3, 6, 0],
        },
        vec![
            d("a").build(),
            d("b").build(),
            d("c").build(),
            d("z").build(),
        ],
    );
    let c = counts(&catalog, &Health::default(), 10_000);
    let share = |id: &str| *c.get(id).unwrap_or(&0) as f64 / 10_000.0;
    // Stated tolerance: ±0.02 absolute share (over 4 standard deviations at n = 10,000).
    assert!((share("a") - 0.1).abs() < 0.02, "{c:?}");
    assert!((share("b") - 0.3).abs() < 0.02, "{c:?}");
    assert!((share("c") - 0.6).abs() < 0.02, "{c:?}");
    assert_eq!(
        share("z"),
        0.0,
        "weight 0 is never first while others are eligible"
    );
}

#[tokio::test(start_paused = true)]
async fn cheapest_prefers_the_prepaid_commitment_until_it_is_used_up() {
    let prepaid = d("prepaid")
        .price(10.0, 10.0)
        .commit(Commitment::Prepaid {
            amount: Money::from_usd(0.05).unwrap(),
            period: Period::Day,
        })
        .build();
    let catalog = model(
        Strategy::Cheapest,
        vec![
            d("dear").price(5.0, 5.0).build(),
            prepaid,
            d("cheap").price(1.0, 2.0).build(),
        ],
    );
    let h = Health::default();
    // Each request: 1,000 in + 1,000 out = $0.02 at the prepaid deployment's list price.
    let usage = TokenUsage {
        input: 1_000,
        output: 1_000,
        ..TokenUsage::default()
    };
    let mut served = Vec::new();
    for _ in 0..5 {
        served.push(serve(&catalog, &h, usage).await.unwrap());
    }
    // $0.05 prepaid covers three requests ($0.06 drawn); then the cheapest list price wins.
    assert_eq!(served, ["prepaid", "prepaid", "prepaid", "cheap", "cheap"]);
    // A new period brings the commitment back.
    tokio::time::advance(Period::Day.duration()).await;
    assert_eq!(serve(&catalog, &h, usage).await.unwrap(), "prepaid");
}

#[tokio::test(start_paused = true)]
async fn settle_reports_list_cost_and_marginal_cost() {
    let prepaid = d("p")
        .price(10.0, 10.0)
        .commit(Commitment::Prepaid {
            amount: Money::from_usd(0.015).unwrap(),
            period: Period::Day,
        })
        .build();
    let catalog = model(Strategy::Priority, vec![prepaid]);
    let h = Health::default();
    let prefs = Preferences::default();
    let usage = TokenUsage {
        input: 1_000,
        output: 1_000,
        cached_input: 400,
        ..TokenUsage::default()
    };
    let mut costs = Vec::new();
    for _ in 0..2 {
        let plan = catalog.route(&h, &req("m", &prefs), &mut rng()).unwrap();
        let served = execute(&plan, &h, &Budget::default(), |_| async {
            Ok::<_, AttemptError>(())
        })
        .await
        .unwrap();
        costs.push(served.permit.settle(&usage));
    }
    // 600 uncached × $10/M + 400 cached × $5/M + 1,000 out × $10/M = $0.018.
    let cost = Money::from_usd(0.018).unwrap();
    assert_eq!(
        costs[0],
        Settlement {
            cost,
            marginal: Money::from_usd(0.003).unwrap()
        }
    );
    assert_eq!(
        costs[1],
        Settlement {
            cost,
            marginal: cost
        }
    );
}

#[tokio::test(start_paused = true)]
async fn spillover_fills_the_committed_deployment_to_its_limit_then_overflows_by_price() {
    let ptu = d("ptu")
        .price(10.0, 10.0)
        .commit(Commitment::Provisioned {
            rpm: Some(5),
            tpm: None,
        })
        .build();
    let catalog = model(
        Strategy::Spillover,
        vec![
            d("dear").price(5.0, 5.0).build(),
            ptu,
            d("cheap").price(1.0, 1.0).build(),
        ],
    );
    let h = Health::default();
    let mut served = Vec::new();
    for _ in 0..8 {
        served.push(serve(&catalog, &h, TokenUsage::default()).await.unwrap());
    }
    assert_eq!(
        served,
        ["ptu", "ptu", "ptu", "ptu", "ptu", "cheap", "cheap", "cheap"]
    );
    // The bucket refills at 5 per minute: one more request after 12 s.
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(
        serve(&catalog, &h, TokenUsage::default()).await.unwrap(),
        "ptu"
    );
    assert_eq!(
        serve(&catalog, &h, TokenUsage::default()).await.unwrap(),
        "cheap"
    );
}

#[tokio::test(start_paused = true)]
async fn fastest_moves_traffic_away_from_a_deployment_whose_latency_rises() {
    let catalog = model(
        Strategy::Fastest,
        vec![d("a").build(), d("b").build(), d("c").build()],
    );
    let h = Health::default();
    for (id, ms) in [("a", 20), ("b", 50), ("c", 80)] {
        for _ in 0..5 {
            h.record_latency(&id.into(), Duration::from_millis(ms), false);
        }
    }
    let before = counts(&catalog, &h, 3_000);
    // Power of two choices: the fastest wins every pair it is in (2 of 3 pairs).
    assert!(before["a"] > 1_800, "{before:?}");
    for _ in 0..10 {
        h.record_latency(&"a".into(), Duration::from_millis(400), false);
    }
    let after = counts(&catalog, &h, 3_000);
    assert!(after.get("a").copied().unwrap_or(0) < 100, "{after:?}");
    assert!(after["b"] > 1_800, "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn least_busy_avoids_deployments_with_requests_in_flight() {
    let a = d("a").build();
    let b = d("b").build();
    let catalog = model(Strategy::LeastBusy, vec![a.clone(), b]);
    let h = Health::default();
    let cfg = BreakerConfig::default();
    let held: Vec<Permit> = (0..3).map(|_| h.admit(&a, 10, &cfg).unwrap()).collect();
    let c = counts(&catalog, &h, 100);
    assert_eq!(c.get("b"), Some(&100), "{c:?}");
    drop(held);
    let c = counts(&catalog, &h, 1_000);
    assert!(c["a"] > 400 && c["b"] > 400, "ties break at random: {c:?}");
}

#[tokio::test(start_paused = true)]
async fn every_strategy_respects_rpm_tpm_and_concurrency_limits() {
    let strategies = [
        Strategy::Priority,
        Strategy::Weighted {
            weights: vec![9, 1],
        },
        Strategy::Cheapest,
        Strategy::Fastest,
        Strategy::LeastBusy,
        Strategy::Spillover,
    ];
    for strategy in strategies {
        let name = strategy.as_str();
        let limited = d("limited").limits(Some(3), None, None).build();
        let catalog = model(
            strategy,
            vec![limited, d("other").price(50.0, 50.0).build()],
        );
        let h = Health::default();
        let mut on_limited = 0;
        for _ in 0..20 {
            if serve(&catalog, &h, TokenUsage::default()).await.unwrap() == "limited" {
                on_limited += 1;
            }
        }
        assert!(on_limited <= 3, "{name}: {on_limited} requests over rpm 3");
    }
    // TPM: estimates are charged up front (2,000 tokens each), real usage settled after.
    let tpm = d("tpm").limits(None, Some(5_000), None).build();
    let catalog = model(Strategy::Priority, vec![tpm.clone(), d("other").build()]);
    let h = Health::default();
    let served: Vec<String> = futures_served(&catalog, &h, 3).await;
    assert_eq!(served, ["tpm", "tpm", "other"]);
    // Concurrency: a held permit is a slot; dropping it frees the slot.
    let one = d("one").limits(None, None, Some(1)).build();
    let h = Health::default();
    let cfg = BreakerConfig::default();
    let permit = h.admit(&one, 0, &cfg).unwrap();
    assert_eq!(
        h.admit(&one, 0, &cfg).unwrap_err(),
        Exclusion::AtCapacity(LimitKind::Concurrency)
    );
    drop(permit);
    assert!(h.admit(&one, 0, &cfg).is_ok());
}

async fn futures_served(catalog: &Catalog, h: &Health, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        // Settling with the estimate itself keeps the bucket where admission left it.
        let usage = TokenUsage {
            input: 1_000,
            output: 1_000,
            ..TokenUsage::default()
        };
        out.push(serve(catalog, h, usage).await.unwrap());
    }
    out
}
