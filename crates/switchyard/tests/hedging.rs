//! A hedged request's losing attempt is in its ledger record beside the winner.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use switchyard_sim::SimProtocol;

#[tokio::test]
async fn the_hedged_loser_is_recorded_with_the_winner() {
    let slow = sim("slow", SimProtocol::OpenAi).await;
    slow.controls()
        .set_faults(serde_json::from_value(json!({"latency_ms": 3000})).unwrap());
    let fast = sim("fast", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{}{}{}[models.m]\ndeployments = [\"d-slow\", \"d-fast\"]\nhedging = {{ delay_ms = 50 }}\n",
        server_toml(""),
        provider_toml("slow", &slow, SimProtocol::OpenAi),
        provider_toml("fast", &fast, SimProtocol::OpenAi),
        deployment_toml("d-slow", "slow", "gpt-4o"),
        deployment_toml("d-fast", "fast", "gpt-4o"),
    );
    let mut gw = Gateway::start(&config);
    let r = gw.post("/v1/chat/completions", &chat("m", "hello")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-deployment"], "d-fast");
    gw.stop();
    let records = gw.ledger().await;
    assert_eq!(records.len(), 1, "one record for the request");
    let rec = &records[0].record;
    assert_eq!(rec.deployment.as_deref(), Some("d-fast"));
    let mut tried: Vec<&str> = rec.attempts.iter().map(|a| &*a.deployment).collect();
    tried.sort_unstable();
    assert_eq!(tried, ["d-fast", "d-slow"], "{rec:?}");
    let loser = rec
        .attempts
        .iter()
        .find(|a| &*a.deployment == "d-slow")
        .unwrap();
    assert_eq!(
        loser.status, None,
        "cancelled before it answered: {loser:?}"
    );
}
