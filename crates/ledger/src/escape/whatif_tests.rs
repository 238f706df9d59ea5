use super::*;
use crate::store::MemoryStore;
use crate::testing::traffic;
use crate::LedgerRecord;
use std::sync::Arc;
use switchyard_types::{Jurisdiction, PricePerMillion, TokenUsage};

fn per_m(nanos: i64) -> PricePerMillion {
    PricePerMillion(Money(nanos))
}

/// $3 in, $0.30 cache read, $3.75 cache write, $15 out per million tokens.
fn sonnet() -> Prices {
    Prices {
        input: per_m(3_000_000_000),
        output: per_m(15_000_000_000),
        cached_input: Some(per_m(300_000_000)),
        cache_write: Some(per_m(3_750_000_000)),
    }
}

fn place(deployment: &str, cloud: Cloud, prices: Option<Prices>) -> Place {
    Place {
        deployment: deployment.into(),
        provider: format!("p-{deployment}"),
        cloud,
        region: "r".into(),
        jurisdiction: Jurisdiction::Us,
        prices,
        prepaid: None,
    }
}

fn rec(
    i: i64,
    model: &str,
    deployment: &str,
    cloud: Cloud,
    usage: TokenUsage,
    cost: i64,
) -> LedgerRecord {
    let mut r = LedgerRecord::new(format!("r{i}"), 1_000 + i, model);
    r.deployment = Some(Arc::from(deployment));
    r.provider = Some(Arc::from(format!("p-{deployment}")));
    r.cloud = Some(cloud);
    r.usage = usage;
    r.cost = Money(cost);
    r.price_known = true;
    r
}

fn usage(input: u64, cached: u64, write: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input,
        output,
        cached_input: cached,
        cache_write: write,
        reasoning: 0,
    }
}

#[tokio::test]
async fn repricing_at_a_deployment_is_exact_to_the_nano_dollar() {
    let store = MemoryStore::new();
    store
        .append_batch(&[
            rec(
                0,
                "m",
                "a",
                Cloud::Azure,
                usage(1_000, 200, 100, 500),
                9_000_000,
            ),
            rec(1, "m", "a", Cloud::Azure, usage(10, 0, 0, 0), 25),
            rec(2, "other", "a", Cloud::Azure, usage(5, 0, 0, 5), 7),
        ])
        .await
        .unwrap();
    let footprint = Footprint {
        models: vec![(
            "m".into(),
            vec![
                place("a", Cloud::Azure, None),
                place("b", Cloud::Aws, Some(sonnet())),
            ],
        )],
        ..Default::default()
    };
    let r = whatif(
        &store,
        TimeRange::ALL,
        &["model=m".parse().unwrap()],
        &"deployment=b".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    assert_eq!(r.rows.len(), 1, "only model m moves");
    let t = r.rows[0].totals;
    // Record 0: 700 uncached × $3 + 200 × $0.30 + 100 × $3.75 + 500 × $15 (per million)
    //   = 2,100,000 + 60,000 + 375,000 + 7,500,000 nano-USD.
    // Record 1: 10 × $3 per million = 30,000 nano-USD.
    assert_eq!(t.whatif_nanos, 10_035_000 + 30_000);
    assert_eq!(t.current_nanos, 9_000_025);
    assert_eq!(t.difference_nanos, 10_065_000 - 9_000_025);
    assert_eq!(
        (
            t.requests,
            t.input_tokens,
            t.cached_input_tokens,
            t.cache_write_tokens,
            t.output_tokens
        ),
        (2, 1_010, 200, 100, 500)
    );
    assert_eq!(r.rows[0].to.as_deref(), Some("b"));
    assert_eq!(r.total, t);
}

#[tokio::test]
async fn each_record_rounds_on_its_own_like_the_ledger() {
    // $0.0015 per million: one token costs 1.5 nano-USD, which rounds up to 2 per record.
    let tiny = Prices {
        input: per_m(1_500_000),
        output: per_m(1_500_000),
        cached_input: None,
        cache_write: None,
    };
    let store = MemoryStore::new();
    let records: Vec<LedgerRecord> = (0..3)
        .map(|i| rec(i, "m", "a", Cloud::Azure, usage(1, 0, 0, 1), 0))
        .collect();
    store.append_batch(&records).await.unwrap();
    let footprint = Footprint {
        models: vec![("m".into(), vec![place("t", Cloud::Gcp, Some(tiny))])],
        ..Default::default()
    };
    let r = whatif(
        &store,
        TimeRange::ALL,
        &[],
        &"cloud=gcp".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    // 3 records × (2 + 2), not round(6 × 1.5) = 9.
    assert_eq!(r.total.whatif_nanos, 12);
    assert_eq!(
        r.total.whatif_nanos,
        records
            .iter()
            .map(|x| tiny.cost(&x.usage).nanos())
            .sum::<i64>()
    );
}

#[tokio::test]
async fn a_cloud_target_picks_the_cheapest_deployment_there_and_reports_models_it_cannot_move() {
    let store = MemoryStore::new();
    store
        .append_batch(&[
            rec(0, "m", "a", Cloud::Azure, usage(1_000_000, 0, 0, 0), 1),
            rec(1, "lonely", "x", Cloud::Azure, usage(1_000, 0, 0, 0), 1),
        ])
        .await
        .unwrap();
    let mut cheap = sonnet();
    cheap.input = per_m(1_000_000_000);
    let footprint = Footprint {
        models: vec![
            (
                "m".into(),
                vec![
                    place("a", Cloud::Azure, Some(sonnet())),
                    place("aws-dear", Cloud::Aws, Some(sonnet())),
                    place("aws-cheap", Cloud::Aws, Some(cheap)),
                ],
            ),
            (
                "lonely".into(),
                vec![place("x", Cloud::Azure, Some(sonnet()))],
            ),
        ],
        ..Default::default()
    };
    let r = whatif(
        &store,
        TimeRange::ALL,
        &["cloud=azure".parse().unwrap()],
        &"cloud=aws".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    let m = r.rows.iter().find(|x| x.model == "m").unwrap();
    assert_eq!(
        (m.status, m.to.as_deref()),
        (RowStatus::Repriced, Some("aws-cheap"))
    );
    assert_eq!(
        m.totals.whatif_nanos, 1_000_000_000,
        "1M input tokens at $1/M"
    );
    let lonely = r.rows.iter().find(|x| x.model == "lonely").unwrap();
    assert_eq!(lonely.status, RowStatus::NoDeployment);
    assert_eq!(r.not_repriced_requests, 1);
    assert_eq!(r.total.requests, 1, "the unmovable row is not in the total");
    let table = r.render(ViewFormat::Table).unwrap();
    assert!(table.contains("(no deployment)"), "{table}");
}

#[tokio::test]
async fn repricing_on_the_recorded_deployments_gives_the_ledger_totals_exactly() {
    let store = MemoryStore::new();
    let records = traffic(11, 0, 400);
    store.append_batch(&records).await.unwrap();
    // The prices crate::testing::traffic charged every priced deployment.
    let prices = Prices {
        input: per_m(2_500_000_000),
        output: per_m(10_000_000_000),
        cached_input: Some(per_m(1_250_000_000)),
        cache_write: None,
    };
    let mut places: Vec<Place> = Vec::new();
    for r in &records {
        let d = r.deployment.as_deref().unwrap();
        if !places.iter().any(|p| p.deployment == d) {
            let priced = r.price_known.then_some(prices);
            places.push(place(d, r.cloud.unwrap(), priced));
        }
    }
    let footprint = Footprint {
        models: vec![("all".into(), places)],
        ..Default::default()
    };
    let r = whatif(&store, TimeRange::ALL, &[], &Target::Recorded, &footprint)
        .await
        .unwrap();
    let ledger: i64 = records
        .iter()
        .filter(|r| r.price_known)
        .map(|r| r.cost.nanos())
        .sum();
    assert!(ledger > 0);
    assert_eq!(r.total.current_nanos, ledger);
    assert_eq!(r.total.whatif_nanos, ledger);
    assert_eq!(r.total.difference_nanos, 0);
    let unpriced = records.iter().filter(|r| !r.price_known).count() as u64;
    assert!(unpriced > 0);
    assert_eq!(
        r.not_repriced_requests, unpriced,
        "the unpriced deployment cannot be repriced"
    );
    assert!(r.rows.iter().all(|x| x.from.is_some()));
}

#[test]
fn selectors_and_targets_parse_into_enums() {
    let s: Selector = "cloud=aws".parse().unwrap();
    assert_eq!((s.dimension, s.value.as_str()), (Dimension::Cloud, "aws"));
    assert!("cloud=mars".parse::<Selector>().is_err());
    assert!("colour=red".parse::<Selector>().is_err());
    assert!("model=".parse::<Selector>().is_err());
    assert_eq!(
        "cloud=gcp".parse::<Target>().unwrap(),
        Target::Cloud(Cloud::Gcp)
    );
    assert_eq!("recorded".parse::<Target>().unwrap(), Target::Recorded);
    assert_eq!(
        "deployment=d".parse::<Target>().unwrap(),
        Target::Deployment("d".into())
    );
    assert!("region=x".parse::<Target>().is_err());
}

#[tokio::test]
async fn an_unknown_target_deployment_is_an_error() {
    let store = MemoryStore::new();
    let e = whatif(
        &store,
        TimeRange::ALL,
        &[],
        &"deployment=nope".parse().unwrap(),
        &Footprint::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[tokio::test]
async fn every_lists_each_deployment_and_totals_the_cheapest() {
    let store = MemoryStore::new();
    store
        .append_batch(&[
            rec(
                0,
                "m",
                "a",
                Cloud::Azure,
                usage(2_000_000, 0, 0, 0),
                5_000_000_000,
            ),
            rec(1, "z", "zz", Cloud::Azure, usage(10, 0, 0, 0), 1),
        ])
        .await
        .unwrap();
    let mut cheap = sonnet();
    cheap.input = per_m(1_000_000_000);
    let footprint = Footprint {
        models: vec![(
            "m".into(),
            vec![
                place("a", Cloud::Azure, Some(sonnet())),
                place("b", Cloud::Aws, Some(cheap)),
                place("c", Cloud::Gcp, None),
            ],
        )],
        ..Default::default()
    };
    let r = whatif(
        &store,
        TimeRange::ALL,
        &[],
        &"every".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    let m: Vec<&WhatifRow> = r.rows.iter().filter(|x| x.model == "m").collect();
    assert_eq!(m.len(), 3, "one row per deployment of m");
    let at = |d: &str| m.iter().find(|x| x.to.as_deref() == Some(d)).unwrap();
    // 2M input tokens: $3/M at a, $1/M at b.
    assert_eq!(at("a").totals.whatif_nanos, 6_000_000_000);
    assert_eq!(at("b").totals.whatif_nanos, 2_000_000_000);
    assert!(at("b").in_total && !at("a").in_total);
    assert_eq!(
        m.iter().filter(|x| x.status == RowStatus::Unpriced).count(),
        1
    );
    assert_eq!(r.total.whatif_nanos, 2_000_000_000);
    assert_eq!(r.total.difference_nanos, 2_000_000_000 - 5_000_000_000);
    // z is not in the config: not repriced, and counted once.
    assert_eq!(r.not_repriced_requests, 1);
}

#[tokio::test]
async fn a_prepaid_commitment_covers_moved_traffic_up_to_its_unused_part() {
    let store = MemoryStore::new();
    store
        .append_batch(&[
            rec(
                0,
                "m",
                "a",
                Cloud::Azure,
                usage(1_000_000, 0, 0, 0),
                5_000_000_000,
            ),
            // Traffic staying on b uses $0.50 of b's commitment.
            rec(1, "o", "b", Cloud::Aws, usage(10, 0, 0, 0), 500_000_000),
        ])
        .await
        .unwrap();
    let mut b = place("b", Cloud::Aws, Some(sonnet()));
    b.prepaid = Some(crate::escape::Prepaid {
        amount: Money(1_000_000_000),
        period_ms: 86_400_000,
    });
    let footprint = Footprint {
        models: vec![
            ("m".into(), vec![place("a", Cloud::Azure, Some(sonnet()))]),
            ("o".into(), vec![b]),
        ],
        ..Default::default()
    };
    let two_days = TimeRange {
        since_ms: 0,
        until_ms: 2 * 86_400_000,
    };
    let r = whatif(
        &store,
        two_days,
        &["model=m".parse().unwrap()],
        &"deployment=b".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    let t = r.total;
    // 1M input tokens at $3/M; $2 prepaid over two days, $0.50 of it already used.
    assert_eq!(t.whatif_nanos, 3_000_000_000);
    assert_eq!(t.commitment_credit_nanos, 1_500_000_000);
    assert_eq!(
        t.difference_nanos,
        3_000_000_000 - 1_500_000_000 - 5_000_000_000
    );
    // Without a bounded start there is nothing to prorate: list prices.
    let open = whatif(
        &store,
        TimeRange::ALL,
        &["model=m".parse().unwrap()],
        &"deployment=b".parse().unwrap(),
        &footprint,
    )
    .await
    .unwrap();
    assert_eq!(open.total.commitment_credit_nanos, 0);
    assert_eq!(open.total.difference_nanos, 3_000_000_000 - 5_000_000_000);
}
