//! The cost of one routing decision for a model with 20 deployments (target: under 5 µs).

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::sync::Arc;
use switchyard_providers::{Auth, Endpoints, ProviderSpec};
use switchyard_router::{
    Catalog, Constraints, DataClass, Deployment, Estimate, Filter, Health, Limits, Model, Policy,
    Preferences, Prices, RouteRequest, Strategy,
};
use switchyard_types::{Cloud, Jurisdiction, Money, PricePerMillion, ProviderKind};

fn deployment(i: usize) -> Arc<Deployment> {
    let usd = |v: f64| PricePerMillion(Money::from_usd(v).unwrap_or_default());
    let provider = Arc::new(ProviderSpec {
        id: format!("p{i}").into(),
        kind: ProviderKind::OpenAi,
        base_url: "http://127.0.0.1:1/v1".into(),
        auth: Auth::None,
        api_version: None,
        cloud: [Cloud::Aws, Cloud::Azure, Cloud::Gcp, Cloud::OpenAi][i % 4],
        region: format!("region-{}", i % 5).into(),
        jurisdiction: [Jurisdiction::Eu, Jurisdiction::Us][i % 2],
        http2_prior_knowledge: false,
        extra: Default::default(),
    });
    Arc::new(Deployment {
        id: format!("d{i}").into(),
        endpoints: Endpoints::new(&provider, "m"),
        provider,
        upstream_model: "m".into(),
        prices: Prices {
            input: usd(1.0 + i as f64),
            output: usd(2.0 + i as f64),
            cached_input: Some(usd(0.5)),
            cache_write: None,
        },
        limits: Limits {
            rpm: Some(10_000),
            tpm: Some(10_000_000),
            concurrency: Some(512),
        },
        tags: if i.is_multiple_of(3) {
            vec!["zdr".into()]
        } else {
            vec![]
        },
        commitment: None,
        accepts_prefill: false,
        max_output_tokens: 16_384,
    })
}

fn bench(c: &mut Criterion) {
    let deployments: Vec<_> = (0..20).map(deployment).collect();
    let class = DataClass::new("internal").unwrap_or_else(|e| panic!("{e}"));
    for strategy in [
        Strategy::Priority,
        Strategy::Cheapest,
        Strategy::Fastest,
        Strategy::Weighted {
            weights: (1..=20).collect(),
        },
    ] {
        let name = strategy.as_str();
        let mut model = Model::new("m", deployments.clone());
        model.strategy = strategy;
        let mut policy = Policy::default();
        policy.data_classes.insert(
            class.clone(),
            Constraints {
                jurisdictions: Filter {
                    allow: vec![Jurisdiction::Eu, Jurisdiction::Us],
                    deny: vec![],
                },
                ..Constraints::default()
            },
        );
        let catalog = Catalog::with_policy(vec![model], policy);
        let health = Health::default();
        // Touch every deployment so the health map holds live state, as in a running gateway.
        for d in &deployments {
            health.record_latency(&d.id, std::time::Duration::from_millis(100), false);
        }
        let prefs = Preferences::default();
        let request = RouteRequest {
            model: "m",
            data_class: Some(&class),
            preferences: &prefs,
            estimate: Estimate {
                input_tokens: 1_000,
                max_output_tokens: 500,
            },
            stream: false,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let _guard = rt.enter();
        c.bench_function(&format!("route_20_deployments_{name}"), |b| {
            b.iter(|| black_box(catalog.route(&health, black_box(&request), &mut rng)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
