//! The router against the real simulator: attempts go through `switchyard_providers::Upstream`
//! exactly as the server sends them, and every claim is a count.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::{
    AttemptError, Auth, Endpoints, Operation, PoolSettings, ProviderSpec, Timeouts, Upstream,
};
use switchyard_router::{
    execute, BreakerConfig, Catalog, Commitment, Deployment, Estimate, Health, Limits, Model,
    Policy, Preferences, Prices, RetryRules, RouteRequest, Served, Strategy,
};
use switchyard_sim::{Faults, RunningSim, SimProtocol, SimSpec};
use switchyard_types::{Cloud, ErrorKind, Jurisdiction, Money, PricePerMillion, ProviderKind};

struct Fleet {
    sims: Vec<RunningSim>,
    upstream: Upstream,
    timeouts: Timeouts,
}

async fn fleet(n: usize) -> Fleet {
    let mut sims = Vec::new();
    for i in 0..n {
        let spec = SimSpec {
            name: format!("p{i}"),
            protocol: SimProtocol::OpenAi,
            listen: "127.0.0.1:0".parse().unwrap(),
            api_key: None,
        };
        sims.push(RunningSim::start(spec).await.unwrap());
    }
    Fleet {
        sims,
        upstream: Upstream::new(PoolSettings::default()).unwrap(),
        timeouts: Timeouts {
            first_byte: Duration::from_secs(10),
            total: Duration::from_secs(10),
            connect: None,
        },
    }
}

impl Fleet {
    fn deployment(&self, i: usize, price: f64, commitment: Option<Commitment>) -> Arc<Deployment> {
        let usd = |v: f64| PricePerMillion(Money::from_usd(v).unwrap());
        let provider = Arc::new(ProviderSpec {
            id: format!("p{i}").into(),
            kind: ProviderKind::OpenAi,
            base_url: format!("{}/v1", self.sims[i].base_url()),
            auth: Auth::None,
            api_version: None,
            cloud: Cloud::OpenAi,
            region: "us".into(),
            jurisdiction: Jurisdiction::Us,
            http2_prior_knowledge: false,
            extra: Default::default(),
        });
        Arc::new(Deployment {
            id: format!("d{i}").into(),
            endpoints: Endpoints::new(&provider, "gpt-test"),
            provider,
            upstream_model: "gpt-test".into(),
            prices: Prices {
                input: usd(price),
                output: usd(price),
                cached_input: Some(usd(price)),
                cache_write: None,
            },
            limits: Limits::default(),
            tags: vec![],
            commitment,
            accepts_prefill: false,
            max_output_tokens: 16_384,
        })
    }

    fn requests(&self, i: usize) -> u64 {
        self.sims[i].controls().stats().requests
    }

    /// One request, planned and executed the way the server does it.
    async fn send(
        &self,
        catalog: &Catalog,
        health: &Health,
    ) -> Result<Served<Bytes>, AttemptError> {
        let prefs = Preferences::default();
        let request = RouteRequest {
            model: "m",
            data_class: None,
            preferences: &prefs,
            estimate: Estimate {
                input_tokens: 10,
                max_output_tokens: 10,
            },
            stream: false,
        };
        let plan = catalog
            .route(health, &request, &mut rand::rng())
            .map_err(|e| AttemptError::new(e.kind(), e.to_string()))?;
        let budget = catalog.policy().budget;
        execute(&plan, health, &budget, |d| {
            let upstream = self.upstream.clone();
            let timeouts = self.timeouts;
            async move {
                let body = serde_json::json!({
                    "model": d.upstream_model,
                    "messages": [{"role": "user", "content": "hello there"}],
                });
                let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                let sent = upstream
                    .send(
                        &d.provider,
                        &d.endpoints,
                        Operation::Chat { stream: false },
                        body,
                        timeouts,
                    )
                    .await?;
                sent.body(&d.provider, 1 << 20).await
            }
        })
        .await
        .map_err(|f| f.error)
    }
}

fn catalog(deployments: Vec<Arc<Deployment>>, strategy: Strategy, policy: Policy) -> Catalog {
    let mut m = Model::new("m", deployments);
    m.strategy = strategy;
    Catalog::with_policy(vec![m], policy)
}

#[tokio::test]
async fn one_provider_answering_500_loses_its_traffic_to_the_breaker_but_no_request_fails() {
    let f = fleet(3).await;
    f.sims[0].controls().set_faults(Faults {
        fail_always: true,
        fail_status: 500,
        ..Faults::default()
    });
    let ds: Vec<_> = (0..3).map(|i| f.deployment(i, 1.0, None)).collect();
    let policy = Policy {
        breaker: BreakerConfig {
            consecutive_failures: 5,
            open_for: Duration::from_millis(50),
            ..BreakerConfig::default()
        },
        ..Policy::default()
    };
    // Priority puts the failing provider first: without a breaker it would see every request.
    let cat = catalog(ds.clone(), Strategy::Priority, policy);
    let h = Health::default();
    for i in 0..1_000 {
        let served = f
            .send(&cat, &h)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_ne!(&*served.deployment.id, "d0");
    }
    let view = h.view(&ds[0], tokio::time::Instant::now());
    let to_failing = f.requests(0);
    assert!(view.trips >= 1);
    // The failures that tripped the breaker, then only the probes it let through.
    assert_eq!(to_failing, 5 + view.probes, "{view:?}");
    assert!(
        to_failing < 100,
        "{to_failing} of 1,000 requests reached the failing provider"
    );
    assert_eq!(f.requests(1), 1_000, "the next provider served everything");
}

#[tokio::test]
async fn a_hanging_provider_costs_each_request_exactly_one_timeout_and_one_failover() {
    let mut f = fleet(2).await;
    f.timeouts = Timeouts {
        first_byte: Duration::from_millis(200),
        total: Duration::from_millis(200),
        connect: None,
    };
    f.sims[0].controls().set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let policy = Policy {
        // Keep the breaker out of it: every request must meet the hang and fail over.
        breaker: BreakerConfig {
            consecutive_failures: 0,
            min_requests: u32::MAX,
            ..BreakerConfig::default()
        },
        ..Policy::default()
    };
    let cat = catalog(
        vec![f.deployment(0, 1.0, None), f.deployment(1, 1.0, None)],
        Strategy::Priority,
        policy,
    );
    let h = Health::default();
    for _ in 0..4 {
        let served = f.send(&cat, &h).await.unwrap();
        assert_eq!(&*served.deployment.id, "d1");
        let kinds: Vec<Option<ErrorKind>> = served.attempts.iter().map(|a| a.error).collect();
        assert_eq!(kinds, [Some(ErrorKind::UpstreamTimeout), None]);
    }
    assert_eq!(f.sims[0].controls().stats().hangs, 4);
}

#[tokio::test]
async fn retry_after_keeps_traffic_away_until_it_expires_then_traffic_returns() {
    let f = fleet(2).await;
    f.sims[0].controls().set_faults(Faults {
        fail_next: 1,
        fail_status: 429,
        retry_after_s: Some(1),
        ..Faults::default()
    });
    // Never waited out in place, so the cooldown is what keeps traffic away.
    let mut rules = RetryRules::default();
    rules.retry_after_wait_max = Duration::ZERO;
    let policy = Policy {
        retry_rules: rules,
        ..Policy::default()
    };
    let cat = catalog(
        vec![f.deployment(0, 1.0, None), f.deployment(1, 1.0, None)],
        Strategy::Priority,
        policy,
    );
    let h = Health::default();
    let limited_at = tokio::time::Instant::now();
    let first = f.send(&cat, &h).await.unwrap();
    assert_eq!(first.attempts.len(), 2);
    assert_eq!(first.attempts[0].status, Some(429));
    let mut served_elsewhere = 0u32;
    // Real traffic until the deployment takes requests again (bounded).
    for _ in 0..1_000_000 {
        let served = f.send(&cat, &h).await.unwrap();
        if &*served.deployment.id == "d0" {
            break;
        }
        served_elsewhere += 1;
        assert_eq!(
            f.requests(0),
            1,
            "a request reached the deployment during its cooldown"
        );
    }
    assert!(limited_at.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        f.requests(0),
        2,
        "the 429 and the first request after the cooldown"
    );
    assert!(served_elsewhere > 0);
    assert_eq!(u64::from(served_elsewhere) + 1, f.requests(1));
}

#[tokio::test]
async fn a_short_retry_after_on_the_preferred_deployment_is_waited_out_there() {
    let f = fleet(2).await;
    f.sims[0].controls().set_faults(Faults {
        fail_next: 1,
        fail_status: 429,
        retry_after_s: Some(1),
        ..Faults::default()
    });
    let cat = catalog(
        vec![f.deployment(0, 1.0, None), f.deployment(1, 1.0, None)],
        Strategy::Priority,
        Policy::default(),
    );
    let served = f.send(&cat, &Health::default()).await.unwrap();
    assert_eq!(&*served.deployment.id, "d0");
    let statuses: Vec<_> = served.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
    assert_eq!((f.requests(0), f.requests(1)), (2, 0));
}

#[tokio::test]
async fn spillover_fills_provisioned_capacity_then_overflows_to_pay_as_you_go() {
    let f = fleet(3).await;
    let ptu = f.deployment(
        0,
        20.0,
        Some(Commitment::Provisioned {
            rpm: Some(20),
            tpm: None,
        }),
    );
    let cat = catalog(
        vec![f.deployment(1, 5.0, None), ptu, f.deployment(2, 1.0, None)],
        Strategy::Spillover,
        Policy::default(),
    );
    let h = Health::default();
    for _ in 0..50 {
        f.send(&cat, &h)
            .await
            .unwrap()
            .permit
            .settle(&Default::default());
    }
    assert_eq!((f.requests(0), f.requests(2), f.requests(1)), (20, 30, 0));
}

#[tokio::test]
async fn fastest_moves_traffic_away_from_a_provider_whose_latency_rises() {
    let f = fleet(3).await;
    let slow = |ms| Faults {
        latency_ms: ms,
        ..Faults::default()
    };
    f.sims[1].controls().set_faults(slow(5));
    f.sims[2].controls().set_faults(slow(5));
    let ds: Vec<_> = (0..3).map(|i| f.deployment(i, 1.0, None)).collect();
    let cat = catalog(ds, Strategy::Fastest, Policy::default());
    let h = Health::default();
    for _ in 0..300 {
        let _ = f.send(&cat, &h).await.unwrap();
    }
    // The fast one wins every pair it is drawn into (two pairs in three).
    let before = f.requests(0);
    assert!(
        before >= 150,
        "{before} of 300 went to the fastest provider"
    );
    f.sims[0].controls().set_faults(slow(100));
    for _ in 0..200 {
        let _ = f.send(&cat, &h).await.unwrap();
    }
    // One slow answer lifts its estimate above the others'; after that it loses every pair.
    let after = f.requests(0) - before;
    assert!(
        after <= 3,
        "{after} of 200 requests went to the provider that slowed down"
    );
}
