use super::*;
use crate::escape::Place;
use crate::store::MemoryStore;
use crate::LedgerRecord;
use std::sync::Arc;

/// A routed record of `model` on (cloud, provider, region) costing `nanos` (unpriced when None).
fn rec(i: usize, model: &str, at: Option<(Cloud, &str, &str)>, nanos: Option<i64>) -> LedgerRecord {
    let mut r = LedgerRecord::new(format!("r{i}"), 1_000 + i as i64, model);
    if let Some((cloud, provider, region)) = at {
        r.cloud = Some(cloud);
        r.provider = Some(Arc::from(provider));
        r.region = Some(Arc::from(region));
        r.deployment = Some(Arc::from(format!("{model}@{provider}")));
    }
    r.price_known = nanos.is_some();
    r.cost = Money(nanos.unwrap_or(0));
    r
}

fn place(cloud: Cloud, jurisdiction: Jurisdiction) -> Place {
    Place {
        deployment: format!("d-{cloud}"),
        provider: format!("p-{cloud}"),
        cloud,
        region: "r".into(),
        jurisdiction,
        prices: None,
        prepaid: None,
    }
}

const AWS: (Cloud, &str, &str) = (Cloud::Aws, "bedrock-us", "us-east-1");
const AZURE: (Cloud, &str, &str) = (Cloud::Azure, "azure-eu", "swedencentral");
const LAB: (Cloud, &str, &str) = (Cloud::SelfHosted, "vllm", "lab");

/// A small ledger whose figures are worked out by hand in the test below.
async fn small_ledger() -> (MemoryStore, Footprint) {
    let store = MemoryStore::new();
    let records = vec![
        rec(0, "m1", Some(AWS), Some(300)),
        rec(1, "m1", Some(AZURE), Some(100)),
        rec(2, "m2", Some(AWS), Some(200)),
        rec(3, "m2", Some(AWS), Some(200)),
        rec(4, "m3", Some(LAB), None),
        rec(5, "m3", Some(LAB), None),
        // Refused before routing: counted apart, in no share.
        rec(6, "m1", None, Some(0)),
    ];
    store.append_batch(&records).await.unwrap();
    let footprint = Footprint {
        models: vec![
            (
                "m1".into(),
                vec![
                    place(Cloud::Aws, Jurisdiction::Us),
                    place(Cloud::Azure, Jurisdiction::Eu),
                ],
            ),
            ("m2".into(), vec![place(Cloud::Aws, Jurisdiction::Us)]),
            (
                "m3".into(),
                vec![place(Cloud::SelfHosted, Jurisdiction::Us)],
            ),
            (
                "m4".into(),
                vec![
                    place(Cloud::Aws, Jurisdiction::Eu),
                    place(Cloud::Gcp, Jurisdiction::Eu),
                ],
            ),
        ],
        ..Default::default()
    };
    (store, footprint)
}

#[tokio::test]
async fn figures_match_the_hand_computed_values() {
    let (store, footprint) = small_ledger().await;
    let r = concentration(&store, TimeRange::ALL, &footprint)
        .await
        .unwrap();
    assert_eq!(r.routed_requests, 6);
    assert_eq!(r.unrouted_requests, 1);
    assert_eq!(r.cost_nanos, Money(800));
    assert_eq!(r.models_served, 3);
    // Spend: aws 700, azure 100, self_hosted 0 of 800 → 0.875² + 0.125² + 0².
    assert_eq!(r.overall_basis, Basis::Spend);
    assert_eq!(r.overall_hhi, Some(0.875 * 0.875 + 0.125 * 0.125));
    assert_eq!(r.overall_hhi, Some(0.78125));

    let cloud = |c: Cloud| r.clouds.iter().find(|d| d.cloud == c).unwrap();
    let aws = cloud(Cloud::Aws);
    assert_eq!(
        (aws.requests, aws.cost_nanos, aws.models),
        (3, Money(700), 2)
    );
    assert_eq!(aws.request_share, 0.5);
    assert_eq!(aws.cost_share, 0.875);
    assert_eq!(aws.model_share, 2.0 / 3.0);
    // m1 (aws and azure in the config) can leave aws; m2 cannot; the unrouted m1 is not here.
    assert_eq!((aws.stranded_requests, aws.stranded_share), (2, 2.0 / 3.0));
    let azure = cloud(Cloud::Azure);
    assert_eq!(azure.stranded_requests, 0);
    let lab = cloud(Cloud::SelfHosted);
    assert_eq!(lab.stranded_requests, 2, "m3 has only the lab");

    // With m1 as m2's fallback, m2 can leave aws too.
    let mut with_fallback = footprint.clone();
    with_fallback.fallbacks = vec![("m2".into(), vec!["m1".into()])];
    let r2 = concentration(&store, TimeRange::ALL, &with_fallback)
        .await
        .unwrap();
    let aws2 = r2.clouds.iter().find(|d| d.cloud == Cloud::Aws).unwrap();
    assert_eq!(aws2.stranded_requests, 0);
    assert!(
        r2.models.iter().any(|m| m.model == "m2" && m.single_cloud),
        "single_cloud counts own deployments"
    );
    assert_eq!((lab.requests, lab.cost_share, lab.models), (2, 0.0, 1));
    assert_eq!(r.clouds[0].cloud, Cloud::Aws, "costliest first");
    assert_eq!(r.providers.len(), 3);
    assert_eq!(r.regions.iter().map(|d| d.requests).sum::<u64>(), 6);

    // The cloud wins the tie with its provider and region.
    let big = r.biggest_dependency.as_ref().unwrap();
    assert_eq!((big.kind, big.cloud), (DependencyKind::Cloud, Cloud::Aws));

    let model = |m: &str| r.models.iter().find(|x| x.model == m).unwrap();
    // m1: 300 on aws, 100 on azure → 0.75² + 0.25².
    assert_eq!(model("m1").hhi, Some(0.625));
    assert_eq!(
        model("m1").top_cloud,
        Some(CloudShare {
            cloud: Cloud::Aws,
            share: 0.75
        })
    );
    assert!(!model("m1").single_cloud && !model("m1").single_jurisdiction);
    assert_eq!(model("m2").hhi, Some(1.0));
    assert!(model("m2").single_cloud && model("m2").single_jurisdiction);
    // m3 is unpriced: its score falls back to request shares, and says so.
    assert_eq!(
        (model("m3").hhi, model("m3").basis),
        (Some(1.0), Basis::Requests)
    );
    // m4 has no traffic but is a config model in one jurisdiction over two clouds.
    assert_eq!((model("m4").hhi, model("m4").requests), (None, 0));
    assert!(!model("m4").single_cloud && model("m4").single_jurisdiction);
    assert_eq!(r.single_cloud_models, ["m2", "m3"]);
    assert_eq!(r.single_jurisdiction_models, ["m2", "m3", "m4"]);
    // Most concentrated first; the traffic-less model last.
    assert_eq!(r.models.last().unwrap().model, "m4");
}

#[tokio::test]
async fn the_window_limits_the_records_and_the_renderings_carry_the_figures() {
    let (store, footprint) = small_ledger().await;
    // Records 2..4 only (time_ms 1002, 1003): m2 on aws alone.
    let range = TimeRange {
        since_ms: 1_002,
        until_ms: 1_004,
    };
    let r = concentration(&store, range, &footprint).await.unwrap();
    assert_eq!(r.routed_requests, 2);
    assert_eq!(r.overall_hhi, Some(1.0));
    assert!(r.since.is_some() && r.until.is_some());

    let json: serde_json::Value =
        serde_json::from_str(&r.render(ViewFormat::Json).unwrap()).unwrap();
    assert_eq!(json["routed_requests"], 2);
    assert_eq!(json["clouds"][0]["cost_nanos"], 400);
    assert_eq!(json["overall_hhi"], 1.0);
    assert_eq!(json["formula"], FORMULA);
    let table = r.render(ViewFormat::Table).unwrap();
    assert!(table.contains("overall HHI over clouds: 1.0000"), "{table}");
    assert!(table.contains(FORMULA), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("m2 ") && l.contains("single cloud")),
        "{table}"
    );
}
