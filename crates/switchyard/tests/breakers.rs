//! Breakers that come back: a primary that is down for a minute gets its traffic back within
//! seconds of recovering (the open period starts short and doubles per failed probe, up to
//! `open_ms`), and a deployment that cuts every stream after its first event loses its
//! traffic, because failures after a stream started count against it. The breaker's state is
//! visible in `/metrics` and `route explain` meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use switchyard_sim::{RunningSim, SimProtocol};

/// Model `m` on `d-first` (provider `first`) then `d-second` (provider `second`), in
/// priority order, with the admin API on and `breaker` as the `[breaker]` table.
async fn setup(breaker: &str) -> (RunningSim, RunningSim, Gateway) {
    let first = sim("first", SimProtocol::OpenAi).await;
    let second = sim("second", SimProtocol::OpenAi).await;
    let config = format!(
        "{}{}{breaker}\n{}{}{}{}[models.m]\ndeployments = [\"d-first\", \"d-second\"]\n",
        server_toml(""),
        admin_toml(),
        provider_toml("first", &first, SimProtocol::OpenAi),
        provider_toml("second", &second, SimProtocol::OpenAi),
        deployment_toml("d-first", "first", "gpt-4o"),
        deployment_toml("d-second", "second", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    (first, second, gw)
}

/// The value of the series of `name` whose labels include `deployment="d"`.
fn series(metrics: &str, name: &str, d: &str) -> f64 {
    let label = format!("deployment=\"{d}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for {d} in:\n{metrics}"))
}

async fn scrape(gw: &Gateway) -> String {
    let r = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

/// `route explain` of model `m` against the gateway's live health.
async fn explain(gw: &Gateway) -> String {
    let r = client()
        .get(format!("{}/admin/route/explain?model=m", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()[name].to_str().unwrap().to_string()
}

/// The gateway's default breaker (no `[breaker]` table): 5 failures in a row open it, the
/// first probe goes after 1 s, each failed probe doubles the wait up to 10 s. The primary
/// answers 503 for 60 s, a request every 4 s: the secondary serves every request meanwhile,
/// and the primary is back within 3 requests (12 s) of recovering, where the issue allows
/// 15 s. Requests are paced in real time; what is asserted is who served what, not latency.
#[tokio::test]
async fn a_primary_down_for_a_minute_serves_again_within_seconds_of_recovering() {
    const PACE: Duration = Duration::from_secs(4);
    const REQUESTS: usize = 20;
    /// The primary recovers just before this request (at 60 s).
    const RECOVERY: usize = 15;
    let (first, second, gw) = setup("").await;
    set_faults(&first, json!({"fail_always": true, "fail_status": 503})).await;
    let start = tokio::time::Instant::now();
    let mut served_by = Vec::new();
    let mut request_ids = Vec::new();
    let mut while_down = None;
    for i in 0..REQUESTS {
        tokio::time::sleep_until(start + PACE * i as u32).await;
        if i == RECOVERY {
            set_faults(&first, json!({})).await;
        }
        let r = gw.post("/v1/chat/completions", &chat("m", "hello")).await;
        assert_eq!(r.status(), 200, "request {i} is served");
        served_by.push(header(&r, "x-switchyard-deployment"));
        request_ids.push(header(&r, "x-request-id"));
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert!(body["choices"][0]["message"]["content"].is_string());
        // Two probes have failed by now (the breaker opened at request 4 at the latest).
        if i == 7 {
            while_down = Some((scrape(&gw).await, explain(&gw).await));
        }
    }

    let back = served_by
        .iter()
        .position(|d| d == "d-first")
        .unwrap_or_else(|| panic!("the primary never served again: {served_by:?}"));
    assert!(
        (RECOVERY..=RECOVERY + 3).contains(&back),
        "the primary served again at request {back}, recovery was before {RECOVERY}: {served_by:?}"
    );
    assert!(
        served_by[..back].iter().all(|d| d == "d-second")
            && served_by[back..].iter().all(|d| d == "d-first"),
        "the secondary until the primary was back, then the primary: {served_by:?}"
    );
    let (first_stats, second_stats) = (stats(&first).await, stats(&second).await);
    assert_eq!(second_stats["requests"], back as u64);
    let failed = first_stats["failures_injected"].as_u64().unwrap();
    assert_eq!(
        first_stats["requests"].as_u64().unwrap() - failed,
        (REQUESTS - back) as u64,
        "{first_stats}"
    );

    // While it was down: the breaker was not closed, had tripped and reopened after failed
    // probes, and said so.
    let (metrics, text) = while_down.unwrap();
    assert_ne!(series(&metrics, "switchyard_breaker_state", "d-first"), 0.0);
    assert!(series(&metrics, "switchyard_breaker_trips_total", "d-first") >= 2.0);
    assert!(series(&metrics, "switchyard_breaker_failed_probes", "d-first") >= 1.0);
    assert_eq!(
        series(&metrics, "switchyard_breaker_state", "d-second"),
        0.0
    );
    let row = text
        .lines()
        .find(|l| l.contains("d-first"))
        .unwrap_or_else(|| panic!("no row for d-first:\n{text}"));
    assert!(
        row.contains("open") && row.contains("failed probe") && row.contains("opened "),
        "{text}"
    );
    // Back to closed, the backoff reset.
    let metrics = scrape(&gw).await;
    assert_eq!(series(&metrics, "switchyard_breaker_state", "d-first"), 0.0);
    assert_eq!(
        series(&metrics, "switchyard_breaker_failed_probes", "d-first"),
        0.0
    );

    // The ledger agrees, and shows the breaker keeping traffic off the primary: some requests
    // while it was down never tried it.
    let mut gw = gw;
    assert_eq!(gw.stop(), Some(0));
    let records = gw.ledger().await;
    let by_id: HashMap<&str, &switchyard_ledger::LedgerRecord> = records
        .iter()
        .map(|r| (&*r.record.request_id, &r.record))
        .collect();
    let mut skipped = 0;
    for (i, id) in request_ids.iter().enumerate() {
        let r = by_id[id.as_str()];
        assert_eq!(r.deployment.as_deref(), Some(served_by[i].as_str()));
        if i < RECOVERY && r.attempts.iter().all(|a| &*a.deployment != "d-first") {
            skipped += 1;
        }
    }
    assert!(
        skipped >= 4,
        "only {skipped} requests skipped the down primary"
    );
    let tried: usize = records
        .iter()
        .map(|r| {
            r.record
                .attempts
                .iter()
                .filter(|a| &*a.deployment == "d-first" && a.error_kind.is_some())
                .count()
        })
        .sum();
    assert_eq!(
        tried as u64, failed,
        "every failure on the primary is recorded"
    );
}

/// Streams `prompt` as an OpenAI client and returns (serving deployment, SSE text).
async fn stream(gw: &Gateway, prompt: &str) -> (String, String) {
    let mut body = chat("m", prompt);
    body["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let deployment = header(&r, "x-switchyard-deployment");
    (deployment, r.text().await.unwrap())
}

/// The default breaker's trip (5 failures in a row), with the open period made long
/// (`probe_initial_ms = open_ms = 600000`) so no probe blurs the count: the cutter gets
/// exactly the 5 streams that tripped it, and every later stream completes on the healthy
/// deployment.
#[tokio::test]
async fn a_deployment_that_cuts_every_stream_loses_its_traffic_to_the_healthy_one() {
    let (cutter, healthy, gw) =
        setup("[breaker]\nprobe_initial_ms = 600000\nopen_ms = 600000\n").await;
    set_faults(&cutter, json!({"drop_after_tokens": 1})).await;
    const TRIP: usize = 5;
    const REQUESTS: usize = 15;
    for i in 0..REQUESTS {
        let (deployment, text) = stream(&gw, "one two three four").await;
        if i < TRIP {
            // The stream started on the cutter; how it ends is the relay's business.
            assert_eq!(deployment, "d-first", "request {i}");
        } else {
            assert_eq!(deployment, "d-second", "request {i}: {text}");
            assert!(
                text.contains("data: [DONE]"),
                "request {i} completes: {text}"
            );
            assert!(!text.contains("\"error\""), "{text}");
        }
    }
    let (c, h) = (stats(&cutter).await, stats(&healthy).await);
    assert_eq!(c["requests"], TRIP as u64, "{c}");
    assert_eq!(c["streams_dropped"], TRIP as u64, "{c}");
    // The later requests, and any the relay recovered on the healthy one.
    assert!(
        h["stream_requests"].as_u64().unwrap() >= (REQUESTS - TRIP) as u64,
        "{h}"
    );
    let text = explain(&gw).await;
    assert!(
        text.contains("5 consecutive failures"),
        "the breaker says why it opened:\n{text}"
    );
    let metrics = scrape(&gw).await;
    assert_eq!(series(&metrics, "switchyard_breaker_state", "d-first"), 2.0);
    assert_eq!(
        series(&metrics, "switchyard_breaker_trips_total", "d-first"),
        1.0
    );
}
