//! `/metrics` after known traffic: exact counts of requests, failovers and tokens.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use switchyard_sim::SimProtocol;

/// The value of the series `name{labels…}` (labels given as `k="v"` fragments, all required).
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = series.split('{').next().unwrap();
        if metric == name && labels.iter().all(|l| series.contains(l)) {
            total += v.parse::<f64>().unwrap();
        }
    }
    total
}

#[tokio::test]
async fn metrics_count_requests_failovers_and_tokens_exactly() {
    let p1 = sim("p1", SimProtocol::OpenAi).await;
    let p2 = sim("p2", SimProtocol::OpenAi).await;
    let config = format!(
        // A 500 fails over at once under this table (the default retries it in place first).
        "{}{}{}{}{}[models.m]\ndeployments = [\"d1\", \"d2\"]\nretry = {{ on = {{ server_error = \"failover\" }} }}\n",
        server_toml(""),
        provider_toml("p1", &p1, SimProtocol::OpenAi),
        provider_toml("p2", &p2, SimProtocol::OpenAi),
        deployment_toml("d1", "p1", "gpt-4o"),
        deployment_toml("d2", "p2", "gpt-4o"),
    );
    let gw = Gateway::start(&config);
    // 5 plain requests: "hello world" is 3 input tokens, "p1 says: hello world" 4 output.
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", &chat("m", "hello world"))
                .await
                .status(),
            200
        );
    }
    // 2 requests that fail over from p1 (500) to p2.
    set_faults(&p1, json!({"fail_next": 2, "fail_status": 500})).await;
    for _ in 0..2 {
        let r = gw
            .post("/v1/chat/completions", &chat("m", "hello world"))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    }
    // 3 rejected requests (unknown model).
    for _ in 0..3 {
        assert_eq!(
            gw.post("/v1/chat/completions", &chat("nope", "x"))
                .await
                .status(),
            404
        );
    }
    let text = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(
        value(
            &text,
            "switchyard_requests_total",
            &["model=\"m\"", "outcome=\"ok\""]
        ),
        7.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "switchyard_failovers_total", &["model=\"m\""]),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_upstream_attempts_total",
            &["deployment=\"d1\"", "result=\"upstream_server\""]
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_upstream_attempts_total",
            &["deployment=\"d2\"", "result=\"ok\""]
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_tokens_total",
            &["deployment=\"d1\"", "type=\"input\""]
        ),
        15.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_tokens_total",
            &["deployment=\"d1\"", "type=\"output\""]
        ),
        20.0
    );
    // The failed-over requests were answered by p2: "p2 says: hello world".
    assert_eq!(
        value(
            &text,
            "switchyard_tokens_total",
            &["deployment=\"d2\"", "type=\"output\""]
        ),
        8.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_error_responses_total",
            &["kind=\"not_found\""]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_request_duration_seconds_count",
            &["deployment=\"d1\""]
        ),
        5.0
    );
    // $2.50 in / $10 out per million: 5 × (3 × 2.5 + 4 × 10) = 237.5 µ$ = 237,500 nano-USD.
    assert_eq!(
        value(
            &text,
            "switchyard_cost_nano_usd_total",
            &["deployment=\"d1\""]
        ),
        237_500.0
    );
    assert!(text.contains("switchyard_breaker_state{"), "{text}");
    assert!(!text.contains(KEY), "no key in metrics");
}
