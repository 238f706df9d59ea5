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
