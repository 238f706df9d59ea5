//! `switchyard drill` and `/admin/drill` against a real gateway's ledger: traffic served on
//! AWS, replayed offline with AWS down, moves to Azure at Azure's prices, exactly.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;
use std::process::Command;
use switchyard_sim::SimProtocol;

#[tokio::test]
async fn a_drill_replays_the_ledger_with_a_cloud_down_offline() {
    let on_aws = sim("p-aws", SimProtocol::Anthropic).await;
    let on_azure = sim("p-azure", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}\
         [deployments.on-aws]\nprovider = \"p-aws\"\nupstream_model = \"claude-sonnet-4-5\"\nprice = {{ input = 1.0, output = 4.0 }}\n\n\
         [deployments.on-azure]\nprovider = \"p-azure\"\nupstream_model = \"gpt-4o\"\nprice = {{ input = 2.0, output = 8.0 }}\n\n\
         [models.m]\ndeployments = [\"on-aws\", \"on-azure\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("p-aws", &on_aws, SimProtocol::Anthropic),
        provider_toml("p-azure", &on_azure, SimProtocol::OpenAi),
    );
    let mut gw = Gateway::start(&config);
    for i in 0..8 {
        let r = gw
            .post("/v1/chat/completions", &chat("m", &"word ".repeat(i + 1)))
            .await;
        assert_eq!(r.status(), 200);
    }
    let upstream_calls = stats(&on_azure).await["requests"].as_u64();
    let (status, admin) = {
        // The writer flushes off the request path: wait for all eight records.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, spend) = gw.admin(Method::GET, "/spend?by=deployment", None).await;
            let n: u64 = spend["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["requests"].as_u64().unwrap())
                .sum();
            if n == 8 || std::time::Instant::now() > deadline {
                break gw.admin(Method::GET, "/drill?down=cloud=aws", None).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    assert_eq!(status, 200, "{admin}");
    assert_eq!(
        stats(&on_azure).await["requests"].as_u64(),
        upstream_calls,
        "a drill calls no upstream"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["drill", "--down", "cloud=aws", "--json", "--config"])
        .arg(gw.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, admin["data"], "the CLI and the admin API agree");

    gw.stop();
    let records = gw.ledger().await;
    assert_eq!(records.len(), 8);
    let (input, output): (u64, u64) = records
        .iter()
        .map(|r| (r.record.usage.input, r.record.usage.output))
        .fold((0, 0), |(a, b), (i, o)| (a + i, b + o));
    let m = &cli["models"][0];
    assert_eq!(m["model"], "m");
    assert_eq!(
        (m["requests"].as_u64(), m["served"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(m["served_by"], serde_json::json!({"on-azure": 8}));
    // $1/$4 and $2/$8 per million tokens: whole nano-dollars per token, so sums are exact.
    let baseline = (input * 1_000 + output * 4_000) as i64;
    let drilled = (input * 2_000 + output * 8_000) as i64;
    assert_eq!(m["spend_baseline_nanos"].as_i64(), Some(baseline));
    assert_eq!(m["spend_nanos"].as_i64(), Some(drilled));
    assert_eq!(m["extra_cost_nanos"].as_i64(), Some(drilled - baseline));
    assert!(m["latency_p50_baseline_ms"].is_u64(), "{m}");
    assert!(
        m["latency_p50_ms"].is_null(),
        "azure served nothing, so has no observed latency"
    );

    // A typo drills nothing, so it is an error.
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["drill", "--down", "region=nowhere", "--config"])
        .arg(gw.config_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no deployment in the config matches it"),
        "{err}"
    );
}

/// The drill's prediction for a cloud outage, request for request, against what the live
/// gateway does when that cloud's simulated provider fails: the same deployment (or a
/// failure) and the same cost for every request, capacity and residency included.
#[tokio::test]
async fn a_drill_predicts_what_the_gateway_does_when_the_cloud_fails() {
    let aws = sim("p-aws", SimProtocol::OpenAi).await;
    let azure = sim("p-az", SimProtocol::OpenAi).await;
    let provider = |name: &str, s: &switchyard_sim::RunningSim, place: &str| {
        format!(
            "[providers.{name}]\nkind = \"openai\"\nbase_url = \"{}/v1\"\napi_key = \"{UPSTREAM_KEY}\"\n{place}\n\n",
            s.base_url()
        )
    };
    let config = format!(
        "{}{}{}{}\
         [deployments.m-aws]\nprovider = \"p-aws\"\nupstream_model = \"gpt-4o\"\nprice = {{ input = 1.0, output = 4.0 }}\n\n\
         [deployments.m-az]\nprovider = \"p-az\"\nupstream_model = \"gpt-4o\"\nprice = {{ input = 2.0, output = 8.0 }}\nlimits = {{ rpm = 4 }}\n\n\
         [models.m]\ndeployments = [\"m-aws\", \"m-az\"]\n\n\
         [models.eu]\ndeployments = [\"m-aws\", \"m-az\"]\nconstraints = {{ jurisdictions = [\"eu\"] }}\n",
        server_toml(""),
        admin_toml(),
        provider("p-aws", &aws, "cloud = \"aws\"\nregion = \"eu-central-1\"\njurisdiction = \"eu\""),
        provider("p-az", &azure, "cloud = \"azure\"\nregion = \"eastus\"\njurisdiction = \"us\""),
    );
    let gw = Gateway::start(&config);
    let bodies: Vec<Value> = (0..8)
        .map(|i| chat("m", &"word ".repeat(i + 1)))
        .chain((0..2).map(|i| chat("eu", &"mot ".repeat(i + 1))))
        .collect();
    // Healthy: everything runs on AWS and is recorded.
    for b in &bodies {
        let r = gw.post("/v1/chat/completions", b).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-deployment"], "m-aws");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let predicted = loop {
        let (status, v) = gw
            .admin(Method::GET, "/drill?down=cloud=aws&detail=true", None)
            .await;
        assert_eq!(status, 200, "{v}");
        let requests = v["data"]["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if requests.len() == bodies.len() || std::time::Instant::now() > deadline {
            break requests;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(predicted.len(), bodies.len(), "every request replayed");

    // The outage, live: the same requests, in the same order.
    set_faults(
        &aws,
        serde_json::json!({"fail_always": true, "fail_status": 503}),
    )
    .await;
    for (i, (b, p)) in bodies.iter().zip(&predicted).enumerate() {
        let r = gw.post("/v1/chat/completions", b).await;
        let status = r.status().as_u16();
        match p["deployment"].as_str() {
            Some(d) => {
                assert_eq!(status, 200, "request {i}: predicted {p}");
                assert_eq!(r.headers()["x-switchyard-deployment"], d, "request {i}");
                let cost: f64 = r.headers()["x-switchyard-cost"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    (cost * 1e9).round() as i64,
                    p["cost_nanos"].as_i64().unwrap(),
                    "request {i}: cost"
                );
            }
            None => assert_ne!(status, 200, "request {i}: predicted {p}"),
        }
    }
    // What the prediction was: 4 fit the survivor's rpm, 4 do not; EU residency has no survivor.
    let failures: Vec<&str> = predicted
        .iter()
        .filter_map(|p| p["failure"].as_str())
        .collect();
    assert_eq!(
        failures,
        [
            "capacity_exhausted",
            "capacity_exhausted",
            "capacity_exhausted",
            "capacity_exhausted",
            "all_eligible_down",
            "all_eligible_down"
        ]
    );
}
