use super::*;
use switchyard_ledger::AttemptRecord;
use switchyard_types::{Cloud, ErrorKind, TokenUsage};

const T0: i64 = 1_800_000_000_000; // a round minute

fn dep(id: &str, provider: &str, cloud: &str, region: &str) -> CatalogDeployment {
    CatalogDeployment {
        id: id.into(),
        provider: provider.into(),
        cloud: cloud.into(),
        region: region.into(),
    }
}

fn catalog() -> CatalogView {
    CatalogView {
        models: vec![
            CatalogModel {
                name: "gpt-4o".into(),
                deployments: vec![
                    dep("gpt-azure", "azure-eastus", "azure", "eastus"),
                    dep("gpt-openai", "openai-us", "openai", "us-east"),
                ],
                fallbacks: vec![],
            },
            CatalogModel {
                name: "llama".into(),
                deployments: vec![dep("llama-cw", "coreweave", "coreweave", "us-east-04")],
                fallbacks: vec!["mini".into()],
            },
            CatalogModel {
                name: "mini".into(),
                deployments: vec![dep("mini-openai", "openai-us", "openai", "us-east")],
                fallbacks: vec!["llama".into()],
            },
            CatalogModel {
                name: "solo".into(),
                deployments: vec![dep("solo-azure", "azure-eastus", "azure", "eastus")],
                fallbacks: vec![],
            },
        ],
    }
}

fn place(d: &str) -> (&'static str, Cloud, &'static str) {
    match d {
        "gpt-azure" | "solo-azure" => ("azure-eastus", Cloud::Azure, "eastus"),
        "llama-cw" => ("coreweave", Cloud::Coreweave, "us-east-04"),
        _ => ("openai-us", Cloud::OpenAi, "us-east"),
    }
}

/// A request for `model` at `t`, tried on `tried` (all failed) and then served by `served`.
fn rec(t: i64, model: &str, tried: &[&str], served: &str, cost: i64) -> LedgerRecord {
    let mut r = LedgerRecord::new(format!("req-{t}-{model}"), t, model);
    let (provider, cloud, region) = place(served);
    r.deployment = Some(served.into());
    r.provider = Some(provider.into());
    r.cloud = Some(cloud);
    r.region = Some(region.into());
    r.team = Some("search".into());
    for d in tried {
        r.attempts.push(AttemptRecord {
            deployment: (*d).into(),
            provider: place(d).0.into(),
            status: Some(500),
            error_kind: Some(ErrorKind::UpstreamServer),
            latency_ms: 3,
            ..Default::default()
        });
    }
    r.attempts.push(AttemptRecord {
        deployment: served.into(),
        provider: provider.into(),
        status: Some(200),
        error_kind: None,
        latency_ms: 10,
        ..Default::default()
    });
    r.usage = TokenUsage {
        input: 100,
        output: 20,
        ..TokenUsage::default()
    };
    r.cost = Money(cost);
    r.price_known = true;
    r.latency_ms = 10;
    r
}

fn window() -> Window {
    Window::ending_at(T0 + 60_000, 60)
}

fn healthy(_: &str) -> HealthView {
    HealthView::default()
}

fn overview(records: &[LedgerRecord], filter: &Filter) -> Overview {
    build(records, window(), filter, &catalog(), &healthy, &[], false)
}

#[test]
fn windows_parse_with_units_and_bounds() {
    assert_eq!(parse_window("15m"), Ok(900));
    assert_eq!(parse_window("90"), Ok(90));
    assert_eq!(parse_window("6h"), Ok(21_600));
    assert_eq!(parse_window("7d"), Ok(604_800));
    assert!(parse_window("5s").is_err());
    assert!(parse_window("40d").is_err());
    assert!(parse_window("15x").is_err());
    assert!(parse_window("m").is_err());
    assert!(parse_window("").is_err());
}

#[test]
fn buckets_are_round_and_at_most_ninety() {
    assert_eq!(bucket_secs(60), 1);
    assert_eq!(bucket_secs(900), 10);
    assert_eq!(bucket_secs(3_600), 60);
    assert_eq!(bucket_secs(86_400), 1_800);
    for w in [10, 61, 899, 901, 7 * 86_400, MAX_WINDOW_SECS] {
        assert!(
            (w + bucket_secs(w) - 1) / bucket_secs(w) <= MAX_BUCKETS,
            "{w}"
        );
    }
}

#[test]
fn percentiles_use_nearest_rank() {
    assert_eq!(percentiles(&mut []), None);
    let mut one = [7];
    assert_eq!(
        percentiles(&mut one),
        Some(Percentiles {
            p50: 7,
            p95: 7,
            samples: 1
        })
    );
    let mut hundred: Vec<u64> = (1..=100).rev().collect();
    let p = percentiles(&mut hundred).unwrap();
    assert_eq!((p.p50, p.p95, p.samples), (50, 95, 100));
    let mut four = [40, 10, 30, 20];
    let p = percentiles(&mut four).unwrap();
    assert_eq!((p.p50, p.p95), (20, 40));
}

#[test]
fn totals_timeline_and_breakdowns_add_up() {
    let mut err = rec(T0 + 30_500, "gpt-4o", &["gpt-azure"], "gpt-openai", 0);
    err.outcome = Outcome::Error(ErrorKind::UpstreamServer);
    err.attempts.last_mut().unwrap().error_kind = Some(ErrorKind::UpstreamServer);
    let mut streamed = rec(T0 + 2_000, "llama", &[], "llama-cw", 500);
    streamed.stream = true;
    streamed.ttft_ms = Some(4);
    let mut no_team = rec(T0 + 59_999, "mini", &[], "mini-openai", 300);
    no_team.team = None;
    let records = vec![
        rec(T0, "gpt-4o", &[], "gpt-azure", 1_000),
        rec(T0 + 1_500, "gpt-4o", &["gpt-azure"], "gpt-openai", 1_200),
        streamed,
        err,
        no_team,
        // Outside the window on both sides: ignored.
        rec(T0 - 1, "gpt-4o", &[], "gpt-azure", 9_999),
        rec(T0 + 60_000, "gpt-4o", &[], "gpt-azure", 9_999),
    ];
    let o = overview(&records, &Filter::default());
    let t = &o.totals;
    assert_eq!((t.requests, t.ok, t.errors, t.failovers), (5, 4, 1, 2));
    assert_eq!(t.attempts, 7);
    assert_eq!(t.streams, 1);
    assert_eq!((t.input_tokens, t.output_tokens, t.tokens), (500, 100, 600));
    assert_eq!(t.cost_nanos, 3_000);
    assert!((t.cost_usd - 0.000_003).abs() < 1e-12);
    assert!((t.error_rate - 0.2).abs() < 1e-12);
    assert_eq!(t.latency_ms.unwrap().samples, 4);
    assert_eq!(t.ttft_ms.unwrap().p50, 4);
    assert_eq!(
        t.errors_by_kind,
        vec![KindCount {
            kind: "upstream_server".into(),
            count: 1
        }]
    );

    // One-second buckets over the minute; each record in the bucket of its arrival.
    assert_eq!(o.window.bucket_seconds, 1);
    assert_eq!(o.timeline.len(), 60);
    assert_eq!(o.timeline[0].start_ms, T0);
    assert_eq!(o.timeline[0].requests, 1);
    assert_eq!(o.timeline[1].requests, 1);
    assert_eq!(o.timeline[1].failovers, 1);
    assert_eq!(o.timeline[30].errors, 1);
    assert_eq!(o.timeline[59].cost_nanos, 300);
    let sum: u64 = o.timeline.iter().map(|b| b.requests).sum();
    let cost: i64 = o.timeline.iter().map(|b| b.cost_nanos).sum();
    assert_eq!((sum, cost), (5, 3_000));

    // Breakdowns: every grouping sums to the totals, costliest first, with shares.
    for groups in [
        &o.breakdowns.cloud,
        &o.breakdowns.provider,
        &o.breakdowns.region,
        &o.breakdowns.model,
        &o.breakdowns.team,
    ] {
        assert_eq!(groups.iter().map(|g| g.requests).sum::<u64>(), 5);
        assert_eq!(groups.iter().map(|g| g.cost_nanos).sum::<i64>(), 3_000);
        let shares: f64 = groups.iter().map(|g| g.cost_share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert!(groups
            .windows(2)
            .all(|w| w[0].cost_nanos >= w[1].cost_nanos));
    }
    let cloud: Vec<(&str, u64, i64)> = o
        .breakdowns
        .cloud
        .iter()
        .map(|g| (g.name.as_str(), g.requests, g.cost_nanos))
        .collect();
    assert_eq!(
        cloud,
        vec![
            ("openai", 3, 1_500),
            ("azure", 1, 1_000),
            ("coreweave", 1, 500)
        ]
    );
    let teams: Vec<&str> = o.breakdowns.team.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(teams, vec!["search", "(none)"]);
    assert_eq!(o.breakdowns.cloud[0].errors, 1);
    assert!((o.breakdowns.cloud[0].request_share - 0.6).abs() < 1e-12);
}

#[test]
fn deployments_count_attempts_failovers_and_latency() {
    let mut slow = rec(T0 + 3_000, "gpt-4o", &[], "gpt-openai", 10);
    slow.latency_ms = 200;
    let records = vec![
        rec(T0, "gpt-4o", &["gpt-azure"], "gpt-openai", 10),
        rec(T0 + 1_000, "gpt-4o", &["gpt-azure"], "gpt-openai", 10),
        rec(T0 + 2_000, "gpt-4o", &[], "gpt-azure", 10),
        slow,
    ];
    let health = |id: &str| {
        if id == "gpt-azure" {
            HealthView {
                breaker: BreakerState::Open,
                reason: Some("the half-open probe failed".into()),
                trips: 3,
                failed_probes: 2,
                next_probe_ms: Some(4_000),
                ..HealthView::default()
            }
        } else {
            HealthView::default()
        }
    };
    let o = build(
        &records,
        window(),
        &Filter::default(),
        &catalog(),
        &health,
        &[],
        false,
    );
    // Every catalog deployment is listed, busiest first.
    let ids: Vec<&str> = o
        .deployments
        .iter()
        .map(|d| d.deployment.as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            "gpt-openai",
            "gpt-azure",
            "llama-cw",
            "mini-openai",
            "solo-azure"
        ]
    );
    let openai = &o.deployments[0];
    assert_eq!(
        (openai.requests, openai.attempts, openai.failovers),
        (3, 3, 0)
    );
    let lat = openai.latency_ms.unwrap();
    assert_eq!((lat.p50, lat.p95, lat.samples), (10, 200, 3));
    assert_eq!(openai.ttft_ms, None);
    assert_eq!(openai.models, vec!["gpt-4o"]);
    assert_eq!(openai.cloud, "openai");
    assert_eq!(openai.cost_nanos, 30);
    let azure = &o.deployments[1];
    assert_eq!((azure.requests, azure.attempts), (1, 3));
    assert_eq!((azure.failed_attempts, azure.failovers), (2, 2));
    assert_eq!(azure.breaker, BreakerState::Open);
    assert_eq!(
        azure.breaker_reason.as_deref(),
        Some("the half-open probe failed")
    );
    assert_eq!(
        (
            azure.trips,
            azure.breaker_failed_probes,
            azure.breaker_next_probe_ms
        ),
        (3, 2, Some(4_000))
    );
    assert!(azure.in_catalog);
    assert_eq!(o.deployments[2].requests, 0);
    assert_eq!(o.deployments[2].latency_ms, None);
}

#[test]
fn filters_apply_to_everything() {
    let mut other_team = rec(T0 + 4_000, "gpt-4o", &[], "gpt-azure", 100);
    other_team.team = Some("legal".into());
    let records = vec![
        rec(T0, "gpt-4o", &[], "gpt-azure", 100),
        rec(T0 + 1_000, "gpt-4o", &[], "gpt-openai", 200),
        rec(T0 + 2_000, "llama", &[], "llama-cw", 400),
        rec(T0 + 3_000, "mini", &[], "mini-openai", 800),
        other_team,
    ];
    let azure = Filter {
        cloud: Some("azure".into()),
        ..Filter::default()
    };
    let o = overview(&records, &azure);
    assert_eq!(o.totals.requests, 2);
    assert_eq!(o.totals.cost_nanos, 200);
    assert_eq!(o.timeline.iter().map(|b| b.requests).sum::<u64>(), 2);
    assert_eq!(o.breakdowns.cloud.len(), 1);
    assert_eq!(o.breakdowns.cloud[0].name, "azure");
    assert_eq!(o.breakdowns.cloud[0].request_share, 1.0);
    let ids: Vec<&str> = o
        .deployments
        .iter()
        .map(|d| d.deployment.as_str())
        .collect();
    assert_eq!(ids, vec!["gpt-azure", "solo-azure"]);
    assert_eq!(o.concentration.clouds.len(), 1);
    assert_eq!(o.filters, azure);
    // The options stay unfiltered, so the select can switch back.
    assert_eq!(o.options.clouds, vec!["azure", "coreweave", "openai"]);
    assert_eq!(o.options.teams, vec!["legal", "search"]);

    let both = Filter {
        model: Some("gpt-4o".into()),
        team: Some("search".into()),
        ..Filter::default()
    };
    let o = overview(&records, &both);
    assert_eq!(o.totals.requests, 2);
    assert_eq!(o.totals.cost_nanos, 300);
    let ids: Vec<&str> = o
        .deployments
        .iter()
        .map(|d| d.deployment.as_str())
        .collect();
    assert_eq!(ids, vec!["gpt-azure", "gpt-openai"]);
    assert_eq!(o.concentration.models.len(), 1);

    let none = Filter {
        team: Some("(none)".into()),
        ..Filter::default()
    };
    assert_eq!(overview(&records, &none).totals.requests, 0);
}

#[test]
fn concentration_finds_single_cloud_models_and_their_escape() {
    let records = vec![
        rec(T0, "gpt-4o", &[], "gpt-azure", 100),
        rec(T0 + 1_000, "llama", &[], "llama-cw", 300),
        rec(T0 + 2_000, "solo", &[], "solo-azure", 600),
    ];
    let c = overview(&records, &Filter::default()).concentration;
    assert_eq!(c.single_cloud_models, vec!["llama", "mini", "solo"]);
    let by: HashMap<&str, &ModelSpread> = c.models.iter().map(|m| (m.model.as_str(), m)).collect();
    assert_eq!(by["gpt-4o"].clouds, vec!["azure", "openai"]);
    assert!(!by["gpt-4o"].single_cloud && !by["gpt-4o"].no_escape);
    // llama is on one cloud but falls back to mini on another: an escape, not a lock-in.
    assert!(by["llama"].single_cloud && !by["llama"].no_escape);
    assert_eq!(by["llama"].fallback_clouds, vec!["openai"]);
    assert!(by["solo"].single_cloud && by["solo"].no_escape);
    assert!((c.single_cloud_request_share - 2.0 / 3.0).abs() < 1e-12);
    assert!((c.single_cloud_cost_share - 0.9).abs() < 1e-12);
    let clouds: Vec<(&str, u64, u64)> = c
        .clouds
        .iter()
        .map(|s| (s.cloud.as_str(), s.requests, s.deployments))
        .collect();
    assert_eq!(
        clouds,
        vec![("azure", 2, 2), ("coreweave", 1, 1), ("openai", 0, 2)]
    );
    assert!((c.clouds[0].cost_share - 0.7).abs() < 1e-12);
    assert_eq!(c.clouds[0].models, vec!["gpt-4o", "solo"]);
}

#[test]
fn an_empty_window_is_all_zeros_without_dividing_by_zero() {
    let o = overview(&[], &Filter::default());
    assert_eq!(o.totals.requests, 0);
    assert_eq!(o.totals.error_rate, 0.0);
    assert_eq!(o.timeline.len(), 60);
    assert!(o.breakdowns.cloud.is_empty());
    assert_eq!(o.deployments.len(), 5);
    assert_eq!(o.concentration.single_cloud_request_share, 0.0);
    let json = serde_json::to_value(&o).unwrap();
    assert!(json["totals"]["latency_ms"].is_null());
    assert_eq!(json["deployments"][0]["breaker"], "closed");
}
